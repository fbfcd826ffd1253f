"""Seconds per optimisation step of the embedded SmolLM2 here, by rows x length and dtype.

    python bench/cpu_step_time.py                 # fp32
    python bench/cpu_step_time.py --dtype bfloat16

Per-step time is the difference of a 13-step and a 3-step ``optimize`` call divided by 10, so the
fixed cost of a call (H_LM of the targets, evaluation, row building) drops out. Early stopping
cannot trigger in 13 steps on these targets. Run it alone: two torch processes on 2 cores slow each
other badly. Used to size the default profile (a step over a few rows is bound by reading the
weights on the 2-core CPU, not by the number of tokens).
"""

from __future__ import annotations

import argparse
import time

import torch
from prototokens.engine.recipe import get_recipe
from prototokens.engine.train import optimize
from prototokens.inputs.models import load_model

TEXT = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the "
    "age of foolishness, it was the epoch of belief, it was the epoch of incredulity"
)
SHAPES = [(4, 2), (4, 8), (16, 8), (64, 2), (6, 16), (18, 32)]  # (rows, N)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--arrangement", default="e+m*N")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lm = load_model("smollm2-135m", device="cpu", dtype=getattr(torch, args.dtype))
    ids = lm.tokenizer(TEXT)["input_ids"]

    def call(rows: int, n: int, steps: int) -> float:
        t = time.perf_counter()
        optimize(
            lm,
            [ids[:n]] * rows,
            arrangement=args.arrangement,
            recipe=get_recipe("paper").with_(max_steps=steps),
            seeds=list(range(rows)),
        )
        return time.perf_counter() - t

    call(1, 2, 1)  # warm-up
    for rows, n in SHAPES:
        short, long = call(rows, n, 3), call(rows, n, 13)
        step = (long - short) / 10
        print(f"{args.dtype} rows={rows:3d} N={n:3d}: {step:.3f} s/step", flush=True)


if __name__ == "__main__":
    main()
