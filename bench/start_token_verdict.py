"""The start-token verdict of notebook 04: the two readings of Eq. 1 with and without the model's
start token in front, on the same texts and seeds, with the paper's recipe.

    python bench/start_token_verdict.py --lengths 8,16 --texts 2 --seeds 3 --max-steps 250
    python bench/start_token_verdict.py --report --max-steps 250   # summarise what is stored

Rows go to a result store (cached: a rerun or an interrupted run only computes what is missing);
the summary (exact-match fraction, mean accuracy, position-0-only failures, steps) is printed and
written as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from prototokens.engine.metrics import start_token_id
from prototokens.engine.recipe import get_recipe
from prototokens.engine.store import ResultStore
from prototokens.inputs import data
from prototokens.inputs.models import load_model
from prototokens.studies.arrangement_study import run_tab1_arrangements, summarize_tab1

ARRS = ("e+m*N", "bos+e+m*N", "e+m*(N-1)", "bos+e+m*(N-1)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--lengths", default="8,16")
    ap.add_argument("--texts", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--max-steps", type=int, default=250)
    ap.add_argument("--arrangements", default=",".join(ARRS))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    ap.add_argument("--store", default="outputs/cache/verdict")
    ap.add_argument("--out", default="bench/results/start_token_verdict.json")
    ap.add_argument(
        "--start-token",
        default="<|endoftext|>",
        help="the document-boundary token expected from start_token_id; the run stops when the "
        "function returns another one (the verdict would be about another token)",
    )
    ap.add_argument(
        "--report",
        action="store_true",
        help="only summarise the rows already in --store (e.g. of an interrupted run); no training",
    )
    args = ap.parse_args()
    if args.report:
        rows = ResultStore(args.store).rows()
        rows = rows[rows.recipe_params.map(lambda p: p["max_steps"]) == args.max_steps]
        print(summarize_tab1(rows).to_string(index=False))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    lm = load_model(args.model, device=args.device)
    got = start_token_id(lm.tokenizer)
    want = lm.tokenizer.convert_tokens_to_ids(args.start_token)
    note = f"start_token_id -> {lm.tokenizer.convert_ids_to_tokens([got])[0]!r} ({got})"
    if got != want:
        raise SystemExit(f"{note}, not {args.start_token!r} ({want}): pass --start-token to match")
    print(note, flush=True)
    lengths = [int(x) for x in args.lengths.split(",")]
    texts = data.load_texts("pg19", args.texts, max(lengths), lm.tokenizer, seed=0)
    recipe = get_recipe("paper").with_(max_steps=args.max_steps)
    store = ResultStore(args.store)
    t0 = time.perf_counter()
    frames = []
    for n in lengths:  # one length at a time, so that finished lengths are on disk early
        rows = run_tab1_arrangements(
            lm, texts, args.arrangements.split(","), [n], range(args.seeds), recipe, store
        )
        frames.append(rows)
        s = summarize_tab1(rows)
        print(f"N={n} after {time.perf_counter() - t0:.0f} s", flush=True)
        print(s.to_string(index=False), flush=True)
    import pandas as pd

    summary = summarize_tab1(pd.concat(frames, ignore_index=True))
    out = {
        "model": lm.name,
        "device": str(lm.device),
        "source": texts[0].label,
        "texts": args.texts,
        "seeds": args.seeds,
        "lengths": lengths,
        "recipe": recipe.as_dict(),
        "start_token": note,
        "torch_threads": torch.get_num_threads(),
        "wall_s": time.perf_counter() - t0,
        "summary": json.loads(summary.astype({"arrangement": str}).to_json(orient="records")),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
