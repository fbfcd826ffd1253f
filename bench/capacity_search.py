"""Grid search (the paper's, from scratch at each length) against the progressive search (ours:
warm start from the previous length's e, m and optimiser state) on the same texts and seeds.

Prints, per text and search: the capacity found, the lengths tried, total optimisation steps and
seconds (the sum over length rounds of each round's wall time), then the totals and the
progressive/grid ratios. Results go through a fresh result store (``--store``; default a temporary
folder, so the timings are cold). JSON goes to ``--out``.

Examples::

    python bench/capacity_search.py                              # CPU, embedded SmolLM2
    python bench/capacity_search.py --texts 4 --max-length 45 --max-steps 150 --recipe fast
    python bench/capacity_search.py --device cuda --texts 16 --max-length 256 --max-steps 2000
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch
from prototokens.engine.recipe import get_recipe
from prototokens.engine.store import ResultStore
from prototokens.inputs import data
from prototokens.inputs.models import load_model
from prototokens.studies.capacity import capacity_per_text, grid_lengths, search_capacity


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--source", default="pg19")
    ap.add_argument("--texts", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=32)
    ap.add_argument("--max-steps", type=int, default=100)
    ap.add_argument("--recipe", default="fast")
    ap.add_argument("--seeds", default="0", help="comma-separated restarts (side by side)")
    ap.add_argument("--patience", type=int, default=2)
    ap.add_argument("--bisect", action="store_true", help="also pin capacity to the token")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave)")
    ap.add_argument("--store", default="", help="result store folder (default: a fresh temp dir)")
    ap.add_argument("--out", default="", help="write the JSON here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    lm = load_model(args.model, device=args.device)
    recipe = get_recipe(args.recipe).with_(max_steps=args.max_steps)
    texts = data.load_texts(
        args.source, args.texts, args.max_length, lm.tokenizer, seed=0, model=lm.model
    )
    store = ResultStore(args.store or tempfile.mkdtemp(prefix="capbench-"))
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {}
    for mode in ("grid", "progressive"):
        t0 = time.perf_counter()
        rows = search_capacity(
            lm,
            texts,
            mode=mode,
            recipe=recipe,
            seeds=seeds,
            max_length=args.max_length,
            patience=args.patience,
            bisect=args.bisect,
            store=store,
            batch_size=args.batch_size,
        )
        wall = time.perf_counter() - t0
        per = capacity_per_text(rows)
        results[mode] = {
            "wall_s": wall,
            "round_seconds": float(rows.groupby("round").round_seconds.first().sum()),
            "per_text": per[["text_id", "capacity", "lengths_tried", "steps"]].to_dict("records"),
            "total_steps": int(per.steps.sum()),
            "mean_capacity": float(per.capacity.mean()),
        }
        print(f"\n== {mode}: {wall:.1f} s wall")
        print(per[["text_id", "capacity", "c_tokens", "lengths_tried", "steps"]].to_string())
    g, p = results["grid"], results["progressive"]
    print(
        f"\nmodel {lm.name} on {lm.device}; {args.texts} {texts[0].label} texts; lengths "
        f"{grid_lengths(args.max_length)}; recipe {recipe.name} max_steps {recipe.max_steps}; "
        f"seeds {seeds}"
    )
    print(f"{'search':<12} {'mean capacity':>14} {'total steps':>12} {'seconds':>9}")
    for name, r in results.items():
        print(f"{name:<12} {r['mean_capacity']:>14.1f} {r['total_steps']:>12} {r['wall_s']:>9.1f}")
    print(
        f"progressive / grid: steps {p['total_steps'] / max(1, g['total_steps']):.2f}, "
        f"seconds {p['wall_s'] / max(1e-9, g['wall_s']):.2f}, capacity "
        f"{p['mean_capacity'] - g['mean_capacity']:+.1f} tokens"
    )
    if args.out:
        meta = {"args": vars(args), "torch": torch.__version__, "host": platform.node()}
        Path(args.out).write_text(json.dumps({"meta": meta, "results": results}, indent=1))


if __name__ == "__main__":
    main()
