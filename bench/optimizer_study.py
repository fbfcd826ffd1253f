"""The optimiser study on SmolLM2-135M (CPU, fp32): cost per solved text by method and length.

    python bench/optimizer_study.py                       # N = 16, 32 for every method, then
                                                          # N = 64 for the best three at N = 32
    python bench/optimizer_study.py --lengths 16 --texts 2 --seeds 1   # a quick look

Each length after the first runs the paper's recipe first (adoption is judged against it), then the
other methods cheapest-first by the previous length's cost per solved text, so a study stopped
part-way has measured the reference and the most promising ones.

Every run is a cached row (``outputs/cache/runs``), so an interrupted study resumes. Writes
``bench/results/optimizer_study_rows.csv`` (one line per run; the study's record: a run adds its
(method, N) pairs to the rows already there and replaces only the pairs it re-ran, so lengths
measured in different sessions, or on a machine without the row cache, add up),
``optimizer_study.csv`` / ``.md`` (the summary of
:func:`prototokens.studies.optimizers.summarize_optimizer_study`), the adoption decision in
``optimizer_study.json`` and the figure ``optimizer_study.png``. Logits are computed in chunks of
2**26 (one chunk at these sizes: no recomputation of the LM head; same numbers).
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
from prototokens.studies import optimizers as study

RESULTS = Path(__file__).parent / "results"
ROW_COLUMNS = [
    "method", "num_tokens", "text_id", "seed", "budget", "exact_match", "accuracy", "steps",
    "steps_to_1", "evals_to_exact", "status", "wall_time_s", "batch_size", "recipe_params",
]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--long", type=int, default=64, help="length for the best three (0: none)")
    ap.add_argument("--texts", type=int, default=6)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--budget", type=int, default=300, help="evaluations per run")
    ap.add_argument("--methods", nargs="*", default=None)
    ap.add_argument("--source", default="pg19")
    args = ap.parse_args()
    forward.DEFAULT_CHUNK_ELEMENTS = 2**26
    torch.manual_seed(0)
    lm = load_model("smollm2-135m", device="cpu")
    methods = study.study_methods(args.budget, args.methods)
    seeds = list(range(args.seeds))
    t0 = time.perf_counter()

    def texts(n):
        return {n: load_texts(args.source, args.texts, n, lm.tokenizer, seed=0)}

    def log(msg):
        print(f"[{time.perf_counter() - t0:7.0f} s] {msg}", flush=True)

    frames = []

    def ranked(n):  # the paper's recipe (what adoption is judged against), then the other
        # methods cheapest-first by their cost per solved text at length n
        summary = study.summarize_optimizer_study(pd.concat(frames, ignore_index=True))
        order = study.best_methods(summary, n, k=len(methods))
        order = [m for m in ["paper", *order] if m in methods]
        return list(dict.fromkeys(order + list(methods)))

    def run(n, names):  # one method at a time, saved after each: a stopped study keeps its rows
        for name in names:
            frames.append(study.run_optimizer_study(lm, texts(n), {name: methods[name]}, seeds,
                                                    log=log))  # fmt: skip
            save(frames, args, time.perf_counter() - t0)

    for i, n in enumerate(args.lengths):
        run(n, ranked(args.lengths[i - 1]) if i else list(methods))
    if args.long:
        summary = study.summarize_optimizer_study(pd.concat(frames, ignore_index=True))
        top = study.best_methods(summary, max(args.lengths), k=3)
        log(f"N={args.long} for the best three at N={max(args.lengths)}: {top}")
        run(args.long, top)
    log("done")


def merged(new: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``new`` rows plus the rows in ``path`` whose (method, N) pair ``new`` does not hold."""
    if not path.exists():
        return new
    old = pd.read_csv(path)
    missing = sorted(set(ROW_COLUMNS) - set(old.columns))
    if missing:
        raise ValueError(f"{path}: columns {missing} missing; move the file aside to start afresh")
    pairs = set(zip(new["method"], new["num_tokens"]))
    keep = [(m, n) not in pairs for m, n in zip(old["method"], old["num_tokens"])]
    return pd.concat([old[keep], new], ignore_index=True).sort_values(
        ["num_tokens", "method", "text_id", "seed"], kind="stable", ignore_index=True
    )


def save(frames, args, wall: float) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "optimizer_study_rows.csv"
    rows = merged(pd.concat(frames, ignore_index=True)[ROW_COLUMNS], path)
    rows.to_csv(path, index=False)
    summary = study.summarize_optimizer_study(rows)
    summary.to_csv(RESULTS / "optimizer_study.csv", index=False)
    (RESULTS / "optimizer_study.md").write_text(markdown_table(summary, floatfmt=".3g"))
    decision = study.adoption(summary)
    meta = {
        "model": "smollm2-135m", "device": "cpu", "dtype": "float32",
        "threads": torch.get_num_threads(), "source": args.source, "texts": args.texts,
        "seeds": args.seeds, "budget": args.budget, "wall_s": round(wall, 1),
        "decision": decision,
    }  # fmt: skip
    (RESULTS / "optimizer_study.json").write_text(json.dumps(meta, indent=2))
    fig = study.plot_optimizer_study(rows, "SmolLM2-135M, CPU fp32: success against evaluations")
    fig.savefig(RESULTS / "optimizer_study.png", dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    main()
