"""Throughput of ``engine.optimize`` against a bare forward+backward+AdamW loop at the same shape.

For each batch size B it measures texts x steps per second of

- engine:    ``prototokens.engine.train.optimize`` on B texts of N random token ids (arrangement
             ``e+m*N``, paper recipe, early stopping made impossible), timed between two host syncs
             after warm-up, so set-up and the final per-row evaluation are excluded;
- reference: a plain loop at the same shape: an (B, N+1, d) fp32 ``inputs_embeds`` parameter ->
             cast to the model dtype -> ``model(...).logits`` -> CE on the N target positions ->
             backward -> ``torch.optim.AdamW``,

and prints both with the engine's overhead in percent (positive = engine slower). JSON goes to
--out.

Examples::

    python bench/engine_throughput.py --steps 3 --batch-sizes 1,4           # CPU, embedded SmolLM2
    python bench/engine_throughput.py --random-init llama-3.2-1b --device cuda --n-tokens 256
    python bench/engine_throughput.py --quick --random-init smollm2-135m
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import torch
from prototokens.inputs.architectures import ARCHITECTURES, random_lm
from step_timing import time_bare_loop, time_optimize

ARCHS = sorted(a for a, spec in ARCHITECTURES.items() if not spec.tiny)


def log(msg: str = "") -> None:
    print(msg, flush=True)


def build_random(arch: str, device: torch.device, dtype: torch.dtype, attn: str):
    """A random-init model of a known architecture, built on ``device`` (the one factory)."""
    lm = random_lm(arch, device=device, dtype=dtype, attn=attn)
    n = sum(p.numel() for p in lm.model.parameters()) / 1e6
    log(f"built {lm.title} on {device} in {dtype} in {lm.build_s:.1f}s ({n:.0f}M parameters)")
    return lm


def load(args, device: torch.device, dtype: torch.dtype):
    from prototokens.inputs.models import load_model

    if args.random_init:
        return build_random(args.random_init, device, dtype, args.attn)
    t0 = time.perf_counter()
    lm = load_model(args.model, device=device, dtype=dtype)
    if args.attn and hasattr(lm.model, "set_attn_implementation"):
        lm.model.set_attn_implementation(args.attn)
    elif args.attn:
        lm.model.config._attn_implementation = args.attn
    log(f"loaded {args.model} on {lm.device} in {lm.dtype} in {time.perf_counter() - t0:.1f}s")
    return lm


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--model", default="smollm2-135m", help="model spec for load_model (default smollm2-135m)"
    )
    ap.add_argument(
        "--random-init",
        choices=ARCHS,
        default=None,
        help="benchmark a random-init model of this architecture instead of --model",
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--dtype", default="auto", help="auto (bf16 on CUDA, fp32 on CPU), fp32, bf16, fp16"
    )
    ap.add_argument(
        "--n-tokens", type=int, default=None, help="N target tokens per text (default 32; quick 16)"
    )
    ap.add_argument(
        "--batch-sizes", default=None, help="comma-separated B values (default 1,32; quick 1,8)"
    )
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 20; quick 4)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up steps (default 3; quick 1)")
    ap.add_argument(
        "--sync-every", type=int, default=None, help="engine host-sync period (default: engine's)"
    )
    ap.add_argument("--tf32", action="store_true", help="allow TF32 matmuls (CUDA, fp32)")
    ap.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument(
        "--compiled", default="", help="engine step: '' eager, auto, graph (CUDA), compile, eager"
    )
    ap.add_argument(
        "--quick", action="store_true", help="a few steps at small shapes: a smoke test"
    )
    ap.add_argument("--out", default="outputs/bench/engine_throughput.json")
    args = ap.parse_args(argv)

    quick = args.quick
    N = args.n_tokens or (16 if quick else 32)
    batch_sizes = [
        int(b) for b in (args.batch_sizes or ("1,8" if quick else "1,32")).split(",") if b.strip()
    ]
    steps = args.steps or (4 if quick else 20)
    warmup = args.warmup if args.warmup is not None else (1 if quick else 3)
    if args.threads:
        torch.set_num_threads(args.threads)
    from prototokens.inputs.models import resolve_device, resolve_dtype

    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    if args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "hostname": platform.node(),
    }
    try:
        import transformers

        env["transformers"] = transformers.__version__
    except ImportError:
        pass
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    log(
        f"engine throughput: N={N} B={batch_sizes} steps={steps} warmup={warmup} dtype={dtype} "
        f"tf32={args.tf32} attn={args.attn} env={env}"
    )
    lm = load(args, device, dtype)
    out = Path(args.out)
    if not out.is_absolute():
        out = Path.cwd() / out
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "model": args.random_init and f"random:{args.random_init}" or args.model,
        "random_init": args.random_init,
        "n_tokens": N,
        "dtype": str(dtype).replace("torch.", ""),
        "attn": args.attn,
        "tf32": args.tf32,
        "steps": steps,
        "warmup": warmup,
        "d_model": lm.d_model,
        "vocab_size": lm.vocab_size,
        "env": env,
        "results": [],
    }

    def save():
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(report, indent=2))
        os.replace(tmp, out)

    failures = 0
    for B in batch_sizes:
        row: dict = {"batch_size": B, "n_tokens": N}
        for kind in ("engine", "reference"):
            if kind == "reference" and args.skip_reference:
                continue
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            try:
                r = (
                    time_optimize(lm, B, N, warmup, steps, args.sync_every, args.compiled or False)
                    if kind == "engine"
                    else time_bare_loop(lm, B, N, warmup, steps)
                )
                if device.type == "cuda":
                    r["peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
            except Exception as exc:  # an OOM at one shape must not lose the others
                failures += 1
                r = {"error": f"{type(exc).__name__}: {exc}"}
                traceback.print_exc()
            row[kind] = r
            extra = f" peak {r['peak_mem_gib']:.1f} GiB" if "peak_mem_gib" in r else ""
            log(
                f"B={B:4d} N={N:4d} {kind:9s} "
                + (
                    f"{r['texts_steps_per_s']:10.2f} texts*steps/s  "
                    f"{r['step_ms']:9.1f} ms/step{extra}"
                    if "error" not in r
                    else f"FAILED {r['error']}"
                )
            )
        e, f = row.get("engine", {}), row.get("reference", {})
        if "step_ms" in e and "step_ms" in f:
            row["engine_overhead_pct"] = 100.0 * (e["step_ms"] / f["step_ms"] - 1.0)
            overhead = row["engine_overhead_pct"]
            log(f"B={B:4d} N={N:4d} engine overhead vs bare loop: {overhead:+.1f}%")
        report["results"].append(row)
        save()
    save()
    log(f"wrote {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
