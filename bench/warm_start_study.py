"""The warm-start study on SmolLM2-135M (CPU, fp32): what the progressive search costs.

    python bench/warm_start_study.py                              # 4 pg19 texts, up to 64 tokens
    python bench/warm_start_study.py --texts 2 --max-length 16 --budget 100   # a quick look

Every variant of :mod:`prototokens.studies.warm_starts` (the paper's fresh grid, the grid warm-
started with moments kept or reset, growth by 4, 8 and 16 tokens) searches the same texts with
the same recipe and budget per length. Rows are cached (``outputs/cache/runs``): an interrupted
study resumes. Writes ``bench/results/warm_start_study_rows.csv`` (one line per attempt),
``warm_start_study.csv`` / ``.md`` (per variant), ``warm_start_study_per_length.csv`` (a warm
length against a fresh one), the run record ``warm_start_study.json`` and the figure ``.png``,
after each variant.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import prototokens.engine.forward as forward
import torch
from prototokens import load_model, load_texts
from prototokens.harness.artifacts import markdown_table
from prototokens.studies import optimizers
from prototokens.studies import warm_starts as study

RESULTS = Path(__file__).parent / "results"
ROW_COLUMNS = [
    "variant", "text_id", "seed", "num_tokens", "round", "warm_started", "warm_moments",
    "success", "accuracy", "steps", "steps_to_1", "evals", "wall_time_s", "cache_key", "init_from",
]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--budget", type=int, default=300, help="evaluations per length")
    ap.add_argument("--recipe", default="paper", help="a method of the optimiser study")
    ap.add_argument("--patience", type=int, default=1, help="failed lengths before a text stops")
    ap.add_argument("--variants", nargs="*", default=None)
    ap.add_argument("--source", default="pg19")
    args = ap.parse_args()
    forward.DEFAULT_CHUNK_ELEMENTS = 2**26  # one logits chunk at these sizes: same numbers
    torch.manual_seed(0)
    lm = load_model("smollm2-135m", device="cpu")
    recipe = optimizers.study_methods(args.budget, [args.recipe])[args.recipe]
    variants = study.study_variants(args.variants)
    texts = load_texts(args.source, args.texts, args.max_length, lm.tokenizer, seed=0)
    t0 = time.perf_counter()
    frames = []
    for name, variant in variants.items():
        frames.append(
            study.run_warm_start_study(
                lm, texts, {name: variant}, recipe, max_length=args.max_length,
                seeds=list(range(args.seeds)), patience=args.patience,
                log=lambda m: print(f"[{time.perf_counter() - t0:7.0f} s] {m}", flush=True),
            )
        )  # fmt: skip
        save(pd.concat(frames, ignore_index=True), args, time.perf_counter() - t0)
    print(markdown_table(study.summarize_warm_starts(pd.concat(frames)), floatfmt=".3g"))


def save(rows: pd.DataFrame, args, wall: float) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows.reindex(columns=ROW_COLUMNS).to_csv(RESULTS / "warm_start_study_rows.csv", index=False)
    summary = study.summarize_warm_starts(rows)
    summary.to_csv(RESULTS / "warm_start_study.csv", index=False)
    (RESULTS / "warm_start_study.md").write_text(markdown_table(summary, floatfmt=".3g"))
    study.cost_per_length(rows).to_csv(RESULTS / "warm_start_study_per_length.csv", index=False)
    meta = {
        "model": "smollm2-135m", "device": "cpu", "dtype": "float32",
        "threads": torch.get_num_threads(), "source": args.source, "texts": args.texts,
        "seeds": args.seeds, "max_length": args.max_length, "budget": args.budget,
        "recipe": args.recipe, "patience": args.patience, "wall_s": round(wall, 1),
    }  # fmt: skip
    (RESULTS / "warm_start_study.json").write_text(json.dumps(meta, indent=2))
    fig = study.plot_warm_starts(rows, f"SmolLM2-135M, CPU fp32, {args.recipe}, "
                                       f"{args.budget} evaluations per length")  # fmt: skip
    fig.savefig(RESULTS / "warm_start_study.png", dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    main()
