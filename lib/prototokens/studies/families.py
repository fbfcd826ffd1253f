"""Capacity across model families and sizes (paper section 5 and Table 3; notebook 05).

``run_model_families(models, texts_for, ...)`` loads each model spec in turn, runs the capacity
search of :mod:`prototokens.studies.capacity` on it (the same module and cached rows as notebook
03, no second implementation), and releases the model before the next, so that one process can
walk from a 135M to an 8B model. A model that cannot be loaded (hub unreachable, package
missing, out of memory, a typo) becomes a ``skipped`` row with the reason; the loop goes on and
fails only when no model loads.

``family_table`` summarises the capacity rows per model x source x setting beside the model's
size facts; ``plot_capacity_vs_model_size`` draws capacity and H_LM against parameters, one colour
per family, with the paper's six models beside ours; ``family_claims`` gives the verdicts on the
paper's claims about size and family.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from prototokens.studies.capacity import capacity_per_text, run_capacity
from prototokens.studies.paper_tables import paper_table3

# config.model_type -> the family name used in tables and colours
FAMILIES = {
    "llama": "Llama",
    "gpt_neox": "Pythia (GPT-NeoX)",
    "gemma3_text": "Gemma-3",
    "gemma3": "Gemma-3",
    "gemma2": "Gemma-2",
    "qwen2": "Qwen2",
    "mistral": "Mistral",
}
SIMILAR_SIZE = 1.5  # two models are "of similar size" when their parameter counts differ < 1.5x


@dataclass
class ModelRun:
    """One model of the sweep: its facts, its capacity rows, or why it was skipped."""

    spec: str
    status: str  # "ok" or "skipped"
    reason: str = ""
    facts: dict = field(default_factory=dict)
    attempts: pd.DataFrame = field(default_factory=pd.DataFrame)


def model_facts(lm) -> dict:
    """Parameter count, width, vocabulary, family and where it ran, for the family table."""
    cfg = lm.model.config
    model_type = getattr(cfg, "model_type", "unknown")
    return {
        "model": lm.name,
        "title": lm.title,
        "family": FAMILIES.get(model_type, model_type),
        "model_type": model_type,
        "params": int(sum(p.numel() for p in lm.model.parameters())),
        "d_model": lm.d_model,
        "vocab_size": lm.vocab_size,
        "dtype": str(lm.dtype).replace("torch.", ""),
        "device": str(lm.device),
    }


def free_memory() -> None:
    """Collect garbage and hand cached GPU blocks back, once the caller dropped its model."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_model_families(
    models: Sequence[str],
    texts_for: Callable[[object], Mapping[str, Sequence]],
    *,
    loader: Callable[[str], object] | None = None,
    settings: Sequence[str | None] = (None, "m"),
    on_model: Callable[[ModelRun], None] | None = None,
    **capacity_kwargs,
) -> list[ModelRun]:
    """Capacity search for every model spec, loaded one at a time and released after its run.

    ``texts_for(lm) -> {source: [Text, ...]}`` tokenises the texts for that model (tokenizers
    differ between families). ``loader(spec)`` loads a model (default
    :func:`prototokens.inputs.models.load_model` with ``device``/``dtype`` from
    ``capacity_kwargs``). Remaining keyword arguments go to :func:`run_capacity`. Raises
    ``RuntimeError`` listing every reason when no model could be loaded.
    """
    import torch

    if isinstance(models, str) or not models:
        raise ValueError(f"models must be a non-empty list of model specs, got {models!r}")
    device = capacity_kwargs.pop("device", "auto")
    dtype = capacity_kwargs.pop("dtype", "auto")
    if loader is None:
        from prototokens.inputs.models import load_model

        def loader(spec):
            return load_model(spec, device=device, dtype=dtype)

    runs = []
    for spec in models:
        try:
            lm = loader(spec)
        except Exception as exc:  # noqa: BLE001 - any failure to load becomes a skipped row
            run = ModelRun(spec, "skipped", f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
        else:
            try:
                texts = texts_for(lm)
                attempts = run_capacity(lm, texts, settings=settings, **capacity_kwargs)
                run = ModelRun(spec, "ok", facts=model_facts(lm), attempts=attempts)
            except torch.OutOfMemoryError as exc:  # too large to train here: skipped, not fatal
                run = ModelRun(spec, "skipped", f"out of memory during the search: {exc}"[:300])
            finally:
                lm = None  # the only reference: the model is freed before the next one loads
                free_memory()
        runs.append(run)
        if on_model is not None:
            on_model(run)
    if not any(r.status == "ok" for r in runs):
        reasons = "; ".join(f"{r.spec}: {r.reason}" for r in runs)
        raise RuntimeError(f"no model of {list(models)} could be loaded: {reasons}")
    return runs


def seconds_per_length(runs: Sequence[ModelRun]) -> pd.DataFrame:
    """Training seconds per text at each length, per model (from the rows' own wall times)."""
    frames = []
    for r in runs:
        if r.status != "ok" or r.attempts.empty:
            continue
        a = r.attempts
        g = a.groupby(["num_tokens"], as_index=False).agg(
            seconds_per_text=("wall_time_s", "median"),
            steps=("steps", "median"),
            rows=("wall_time_s", "size"),
        )
        g.insert(0, "model", r.spec)
        g["device"] = r.facts.get("device")
        frames.append(g)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def family_table(runs: Sequence[ModelRun]) -> pd.DataFrame:
    """One row per model x source x setting (or one ``skipped`` row per model): best capacity
    over texts (the paper's aggregation), median and IQR over texts, H_LM mean ± std (nats and
    bits) at capacity, theoretical capacity d·16/log2|V| and utilisation = best / theoretical."""
    rows = []
    for r in runs:
        if r.status != "ok":
            rows.append({"model": r.spec, "status": "skipped", "reason": r.reason})
            continue
        per_text = capacity_per_text(r.attempts)
        for (source, setting), g in per_text.groupby(["source", "setting"], sort=False):
            cap = g["capacity"].astype(float)
            best = float(cap.max())
            theo = float(g["theoretical_capacity"].iloc[0])
            rows.append(
                {
                    **{
                        k: r.facts[k]
                        for k in ("model", "family", "params", "d_model", "vocab_size")
                    },
                    "status": "ok",
                    "reason": "",
                    "source": g["label"].iloc[0] if "label" in g else source,
                    "setting": setting,
                    "texts": len(g),
                    "capacity_best": int(best),
                    "capacity_median": float(cap.median()),
                    "capacity_q25": float(cap.quantile(0.25)),
                    "capacity_q75": float(cap.quantile(0.75)),
                    "censored_texts": int(g["censored"].sum()),
                    "h_lm_nats_mean": float(g["h_lm_nats"].mean()),
                    "h_lm_nats_std": float(g["h_lm_nats"].std(ddof=0)),
                    "h_lm_bits_mean": float(g["h_lm_bits"].mean()),
                    "theoretical_capacity": theo,
                    "utilisation": best / theo if theo else float("nan"),
                    "device": r.facts["device"],
                    "dtype": r.facts["dtype"],
                }
            )
    return pd.DataFrame(rows)


def _verdict(ok: bool | None) -> str:
    return "not measurable here" if ok is None else ("holds" if ok else "does not hold")


def family_claims(table: pd.DataFrame, setting: str = "per-text") -> pd.DataFrame:
    """The paper's claims about size and family, judged on this run's ``family_table``.

    1. Within a family, capacity grows with size (paper: Llama yes, Pythia no): judged per family
       with >= 2 loaded models, as "capacity non-decreasing with parameters and larger at the
       largest model than at the smallest".
    2. Across families at similar size (< 1.5x parameters apart) capacities differ by >= 2x
       (paper: Llama-3.2-1B about 3x Pythia-1.4B): judged on every such pair.
    Each claim needs models this run did not load when it says "not measurable here".
    """
    ok = table[(table.get("status") == "ok")] if len(table) else table
    if len(ok):
        ok = ok[ok["setting"] == setting]
    per_model = (
        ok.groupby(["model", "family", "params"], as_index=False)["capacity_best"].mean()
        if len(ok)
        else pd.DataFrame(columns=["model", "family", "params", "capacity_best"])
    )
    out = []
    for family, g in per_model.groupby("family"):
        g = g.sort_values("params")
        if len(g) < 2:
            continue
        caps = g["capacity_best"].to_numpy(float)
        grows = bool(np.all(np.diff(caps) >= 0) and caps[-1] > caps[0])
        evidence = ", ".join(f"{m}: {c:g}" for m, c in zip(g["model"], caps))
        out.append(
            {
                "claim": f"{family}: capacity grows with model size",
                "verdict": _verdict(grows),
                "evidence": evidence,
            }
        )
    if not any(o["claim"].endswith("grows with model size") for o in out):
        fams = ", ".join(sorted(per_model["family"].unique())) or "none"
        out.append(
            {
                "claim": "within a family, capacity grows with size (Llama yes, Pythia no)",
                "verdict": _verdict(None),
                "evidence": f"needs >= 2 models of one family; loaded families: {fams}",
            }
        )
    pairs = []
    recs = per_model.to_dict("records")
    for i, a in enumerate(recs):
        for b in recs[i + 1 :]:
            if a["family"] != b["family"]:
                ratio = max(a["params"], b["params"]) / max(1, min(a["params"], b["params"]))
                if ratio < SIMILAR_SIZE:
                    pairs.append((a, b))
    if pairs:
        for a, b in pairs:
            hi, lo = (a, b) if a["capacity_best"] >= b["capacity_best"] else (b, a)
            factor = hi["capacity_best"] / max(lo["capacity_best"], 1e-9)
            out.append(
                {
                    "claim": "at similar size, families differ in capacity by >= 2x",
                    "verdict": _verdict(factor >= 2),
                    "evidence": f"{hi['model']} {hi['capacity_best']:g} vs {lo['model']} "
                    f"{lo['capacity_best']:g} tokens ({factor:.1f}x)",
                }
            )
    else:
        sizes = ", ".join(f"{r['model']} {r['params'] / 1e6:.0f}M" for r in recs) or "none"
        out.append(
            {
                "claim": "at similar size, families differ in capacity by >= 2x (Llama ~3x Pythia)",
                "verdict": _verdict(None),
                "evidence": f"no two families within {SIMILAR_SIZE}x in size here ({sizes})",
            }
        )
    return pd.DataFrame(out)


def plot_capacity_vs_model_size(table: pd.DataFrame, setting: str = "per-text", title: str = ""):
    """Capacity (left) and H_LM at capacity (right) against parameters, log axes, one colour per
    family; the paper's six models (Table 3, PG-19 and random, m per text) drawn as hollow marks
    and labelled as the paper's."""
    import matplotlib.pyplot as plt

    ours = table[(table["status"] == "ok") & (table["setting"] == setting)] if len(table) else table
    paper = paper_table3()
    paper = paper[(~paper["shared_m"]) & paper["source"].isin(["pg19", "random"])]
    families = sorted(set(ours.get("family", pd.Series(dtype=str))) | set(paper["family"]))
    colours = {f: plt.cm.tab10(i % 10) for i, f in enumerate(families)}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, (col_ours, col_paper, label) in zip(
        axes,
        [
            ("capacity_best", "c_tokens", "capacity (tokens, best over texts)"),
            ("h_lm_nats_mean", "h_lm", "H_LM at capacity (nats, mean over texts)"),
        ],
    ):
        for fam, g in paper.groupby("family"):
            ax.scatter(
                g["params"],
                g[col_paper],
                facecolors="none",
                edgecolors=[colours[fam]],
                marker="s",
                s=40,
                label=f"{fam} (paper)",
            )
        for fam, g in ours.groupby("family"):
            ax.scatter(g["params"], g[col_ours], color=colours[fam], s=50, label=f"{fam} (ours)")
            for _, r in g.iterrows():
                ax.annotate(
                    f"{r['model']}\n{r['source']}",
                    (r["params"], r[col_ours]),
                    fontsize=7,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
        ax.set_xscale("log")
        ax.set_yscale("log", base=2)
        ax.set_xlabel("parameters")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    handles, labels = axes[0].get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    axes[1].legend(uniq.values(), uniq.keys(), fontsize=7, loc="lower right")
    fig.suptitle(title or f"capacity against model size ({setting} m)")
    return fig


def texts_for_sources(
    sources: Sequence[str], n: int, num_tokens: int, seed: int = 0
) -> Callable[[object], dict[str, list]]:
    """A ``texts_for(lm)`` for :func:`run_model_families`: ``n`` texts of ``num_tokens`` tokens
    per source, tokenised for that model; an unavailable source (fanfics offline) is left out
    with a printed reason."""
    from prototokens.inputs import data

    def texts_for(lm) -> dict[str, list]:
        out = {}
        for source in sources:
            try:
                out[source] = data.load_texts(
                    source, n, num_tokens, lm.tokenizer, seed=seed, model=lm.model
                )
            except data.SourceUnavailable as exc:
                print(f"{lm.name}: source {source} skipped ({exc})")
        return out

    return texts_for
