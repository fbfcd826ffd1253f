"""Recipe and arrangement comparison on a real model, sized for one GPU call (or a long CPU run).

Trains proto-tokens for the same texts and seeds under several recipes, and under the two readings
of which output predicts t_1 (``e+m*N`` vs the paper's Eq. 1 ``e+m*(N-1)``), through the library's
cached ``reconstruct``. Prints one summary line per configuration and writes ``summary.csv``,
``summary.json`` and ``rows.parquet`` under ``--out``.

    python bench/gpu_recipes.py --model smollm2-135m --texts texts.json --out outputs/bench/recipes

``--texts``: JSON ``{source: [{"text_id", "label", "token_ids", "text"}, ...]}`` (so the GPU machine
needs no text source), or omit it to draw from ``prototokens.inputs.data`` here.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import pandas as pd
import torch
from prototokens.engine.recipe import Recipe, get_recipe
from prototokens.engine.reconstruction import reconstruct
from prototokens.engine.store import ResultStore
from prototokens.inputs.data import prefix
from prototokens.inputs.models import load_model
from prototokens.records import Text
from prototokens.studies.summaries import SUMMARY_COLUMNS, summarise_recipes

EXTRA = {
    "lr3e-2": Recipe(name="lr3e-2", lr=3e-2),
    "betas_0.9_0.99": Recipe(name="betas_0.9_0.99", betas=(0.9, 0.99)),
}


def recipe_by_name(name: str) -> Recipe:
    return EXTRA[name] if name in EXTRA else get_recipe(name)


def load_items(path: str | None, lm, n_texts: int, sources: list[str]) -> dict[str, list[Text]]:
    if path:
        raw = json.loads(Path(path).read_text())
        return {
            s: [
                Text(t["text_id"], s, t["label"], t["text"], tuple(t["token_ids"]))
                for t in raw[s][:n_texts]
            ]
            for s in sources
        }
    from prototokens.inputs import data

    return {s: data.load_texts(s, n_texts, 64, lm.tokenizer, seed=0) for s in sources}


def summarise(df: pd.DataFrame, max_steps: int) -> dict:
    """The project's recipe summary (:mod:`prototokens.studies.summaries`) of one configuration's
    rows, plus the slowest row's wall time; NaN (no run converged) becomes None."""
    line = summarise_recipes(df, max_steps, by=["recipe"]).iloc[0]
    out = {k: line[k] for k in SUMMARY_COLUMNS}
    out = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}
    out["runs"] = int(out["runs"])
    return {**out, "max_wall_time_s": float(df.wall_time_s.max())}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--texts", default=None)
    ap.add_argument("--sources", default="pg19")
    ap.add_argument("--n-texts", type=int, default=32)
    ap.add_argument("--num-tokens", default="32", help="target lengths N, comma-separated")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--max-steps", type=int, default=2000)
    ap.add_argument("--recipes", default="paper,fast,lr3e-2,betas_0.9_0.99,predecessor_init")
    ap.add_argument("--arrangements", default="e+m*N,e+m*(N-1)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", default="outputs/bench/recipes")
    ap.add_argument(
        "--time-budget-s", type=float, default=1e9, help="skip configurations once exceeded"
    )
    args = ap.parse_args()

    torch.backends.cuda.matmul.allow_tf32 = True
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    lm = load_model(args.model, device=args.device, dtype=args.dtype)
    load_s = time.perf_counter() - t_start
    print(f"model {lm.name} on {lm.device} ({lm.dtype}), loaded in {load_s:.1f} s", flush=True)
    sources = args.sources.split(",")
    items = load_items(args.texts, lm, args.n_texts, sources)
    seeds = [int(s) for s in args.seeds.split(",")]
    store = ResultStore(out / "store")
    configs = []
    arrangements = args.arrangements.split(",")
    for n in [int(x) for x in args.num_tokens.split(",")]:
        for src in sources:
            for r in args.recipes.split(","):
                configs.append((src, n, arrangements[0], r))
            for a in arrangements[1:]:
                configs.append((src, n, a, "paper"))
    summary, frames = [], []
    for src, n, arrangement, rname in configs:
        if time.perf_counter() - t_start > args.time_budget_s:
            print(f"time budget reached; skipping {src} N={n} {arrangement} {rname}", flush=True)
            continue
        recipe = recipe_by_name(rname).with_(max_steps=args.max_steps)
        texts = [prefix(t, n, lm.tokenizer) for t in items[src]]
        t0 = time.perf_counter()
        df = reconstruct(
            lm,
            texts,
            arrangement=arrangement,
            recipe=recipe,
            seeds=seeds,
            store=store,
            batch_size=args.batch_size,
            progress=False,
        )
        s = {
            "source": src,
            "num_tokens": n,
            "arrangement": arrangement,
            "recipe": rname,
            "wall_s": time.perf_counter() - t0,
            **summarise(df, args.max_steps),
        }
        if arrangement == "e+m*(N-1)":
            s["first_wrong_is_0_fraction"] = float((df.first_wrong == 0).mean())
        summary.append(s)
        frames.append(df)
        print(json.dumps(s), flush=True)
        pd.DataFrame(summary).to_csv(
            out / "summary.csv", index=False
        )  # after each: a timeout keeps it
    (out / "summary.json").write_text(
        json.dumps(
            {
                "model": lm.name,
                "device": str(lm.device),
                "dtype": str(lm.dtype),
                "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                "torch": torch.__version__,
                "configs": summary,
            },
            indent=2,
        )
    )
    if frames:
        pd.concat(frames).drop(columns=["recipe_params"]).to_parquet(
            out / "rows.parquet", index=False
        )
    print(pd.DataFrame(summary).to_string(index=False))


if __name__ == "__main__":
    main()
