"""Seconds per optimisation step of the embedded SmolLM2 here, by rows x length and dtype.

    python bench/cpu_step_time.py                 # fp32
    python bench/cpu_step_time.py --dtype bfloat16

Per-step time is ``step_timing.time_optimize``: the seconds between the engine's host syncs after
3 warm-up steps and after 10 more, divided by 10, so the fixed cost of a call (H_LM of the
targets, evaluation, row building) drops out; the lr is tiny, so no row stops early. Run it
alone: two torch processes on 2 cores slow each other badly. Used to size the default profile (a
step over a few rows is bound by reading the weights on the 2-core CPU, not by the number of
tokens).
"""

from __future__ import annotations

import argparse

import torch
from prototokens.inputs.models import load_model
from step_timing import time_optimize

SHAPES = [(4, 2), (4, 8), (16, 8), (64, 2), (6, 16), (18, 32)]  # (rows, N)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--arrangement", default="e+m*N")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lm = load_model("smollm2-135m", device="cpu", dtype=getattr(torch, args.dtype))
    time_optimize(lm, 1, 2, warmup=1, steps=1, arrangement=args.arrangement)  # warm-up
    for rows, n in SHAPES:
        t = time_optimize(lm, rows, n, warmup=3, steps=10, arrangement=args.arrangement)
        print(f"{args.dtype} rows={rows:3d} N={n:3d}: {t['step_ms'] / 1e3:.3f} s/step", flush=True)


if __name__ == "__main__":
    main()
