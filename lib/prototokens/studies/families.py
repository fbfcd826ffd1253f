"""Capacity across model families and sizes (paper section 5 and Table 3; notebook 05).

``run_model_families(models, texts_for, ...)`` loads each model spec in turn, runs the capacity
search of :mod:`prototokens.studies.capacity` on it (the same module and cached rows as notebook
03, no second implementation), and releases the model before the next, so that one process can
walk from a 135M to an 8B model. A model that cannot be loaded (hub unreachable, package
missing, out of memory, a typo) becomes a ``skipped`` row with the reason; the loop goes on and
fails only when no model loads.

``family_table`` summarises the capacity rows per model x source x setting beside the model's
size facts; ``plot_capacity_vs_model_size`` draws capacity and H_LM against parameters, one colour
per family, with the paper's six models beside ours; ``family_claims`` (from
:mod:`prototokens.studies.family_claims`) judges the paper's claims about size and family.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import pandas as pd

from prototokens.engine.arrangements import DEFAULT_ARRANGEMENT
from prototokens.studies.capacity import capacity_per_text, run_capacity
from prototokens.studies.claims import verdicts
from prototokens.studies.family_claims import family_claims  # noqa: F401 (05 calls it here)
from prototokens.studies.measures import seconds_per_text, trained_vectors_per_text, utilisation
from prototokens.studies.paper_tables import PAPER_ARRANGEMENT, paper_model, paper_table3
from prototokens.studies.plotting import SOURCE_MARKERS, count_axis, label_points

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


def model_arrangements(spec: str) -> list[str]:
    """The arrangements a model is searched with, its primary one first: for one of the paper's
    models the paper's plain Eq. 1 (``e+m*(N-1)``: Pythia's tokenizer adds no BOS) with ours
    (``bos+e+m*(N-1)``) beside it; for any other model ours alone."""
    if paper_model(spec):
        return [PAPER_ARRANGEMENT, DEFAULT_ARRANGEMENT]
    return [DEFAULT_ARRANGEMENT]


def primary_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of each model's primary arrangement (:func:`model_arrangements`, first), or of
    the first arrangement in the rows where that one is absent: the paper's claims, figures and
    headline metrics read one arrangement per model, never two pooled (a paper model is searched
    with plain Eq. 1 and ours beside it). Rows without ``model`` or ``arrangement`` pass whole."""
    if rows.empty or not {"model", "arrangement"} <= set(rows.columns):
        return rows
    keep = {}
    for model, arrangements in rows.groupby("model", sort=False)["arrangement"]:
        present = list(dict.fromkeys(arrangements))
        want = model_arrangements(str(model))[0]
        keep[model] = want if want in present else present[0]
    return rows[rows["arrangement"] == rows["model"].map(keep)]


def run_model_families(
    models: Sequence[str],
    texts_for: Callable[[object], Mapping[str, Sequence]],
    *,
    loader: Callable[[str], object] | None = None,
    settings: Sequence[str | None] = (None, "m"),
    on_model: Callable[[ModelRun], None] | None = None,
    search: Callable[[object, Mapping[str, Sequence]], pd.DataFrame] | None = None,
    require_one: bool = True,
    arrangements: Sequence[str] | None = None,
    **capacity_kwargs,
) -> list[ModelRun]:
    """Capacity search for every model spec, loaded one at a time and released after its run.

    ``texts_for(lm) -> {source: [Text, ...]}`` tokenises the texts for that model (tokenizers
    differ between families). ``loader(spec)`` loads a model (default
    :func:`prototokens.inputs.models.load_model` with ``device``/``dtype`` from
    ``capacity_kwargs``). Remaining keyword arguments go to :func:`run_capacity`, unless
    ``search(lm, texts) -> rows`` replaces that call (notebook 03 adds its autoregressive
    searches there). ``on_model(run)`` sees each run as it ends (:func:`print_run`). Raises
    ``RuntimeError`` listing every reason when no model could be loaded (unless
    ``require_one=False``: notebook 03's further models, beside the one already loaded).
    ``arrangements``: searched in turn for every model (the first is the model's primary one,
    ``facts["arrangements"]``); default :func:`model_arrangements`: the paper's models get plain
    Eq. 1 with ours beside it, other models ours.
    """
    import torch

    if isinstance(models, str) or not models:
        raise ValueError(f"models must be a non-empty list of model specs, got {models!r}")
    if "arrangement" in capacity_kwargs:
        raise ValueError("pass arrangements=[...] (one list for every model), not arrangement=")
    if arrangements is not None and (isinstance(arrangements, str) or not arrangements):
        raise ValueError(f"arrangements must be a non-empty list, got {arrangements!r}")
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
                arrs = list(arrangements or model_arrangements(spec))
                if search is not None:
                    attempts = search(lm, texts)
                else:
                    kw = dict(settings=settings, **capacity_kwargs)
                    parts = [run_capacity(lm, texts, arrangement=a, **kw) for a in arrs]
                    attempts = pd.concat(parts, ignore_index=True)
                facts = {**model_facts(lm), "arrangements": arrs if search is None else []}
                run = ModelRun(spec, "ok", facts=facts, attempts=attempts)
            except torch.OutOfMemoryError as exc:  # too large to train here: skipped, not fatal
                run = ModelRun(spec, "skipped", f"out of memory during the search: {exc}"[:300])
            finally:
                lm = None  # the only reference: the model is freed before the next one loads
                free_memory()
        runs.append(run)
        if on_model is not None:
            on_model(run)
    if require_one and not any(r.status == "ok" for r in runs):
        reasons = "; ".join(f"{r.spec}: {r.reason}" for r in runs)
        raise RuntimeError(f"no model of {list(models)} could be loaded: {reasons}")
    return runs


def print_run(run: ModelRun) -> None:
    """One line per model of the sweep (an ``on_model`` for :func:`run_model_families`)."""
    if run.status != "ok":
        print(f"{run.spec}: {run.status} ({run.reason})")
    else:
        params = run.facts["params"] / 1e6
        print(f"{run.spec}: ok, {params:.0f}M parameters, {len(run.attempts)} attempt rows")


def seconds_per_length(runs: Sequence[ModelRun]) -> pd.DataFrame:
    """Training seconds per text at each length, per model (and arrangement, setting and
    ``warm_started`` where the rows say: a progressive search's warm-started increment is never
    pooled with a run from scratch): the median over rows of the row's wall time divided by the
    rows of its batch (:func:`measures.seconds_per_text`), with the median wall time of a batch
    (``seconds_per_batch``) and the median batch size beside it."""
    frames = []
    for r in runs:
        if r.status != "ok" or r.attempts.empty:
            continue
        a = r.attempts.assign(_per_text=seconds_per_text(r.attempts))
        if "batch_size" not in a:
            a["batch_size"] = 1
        if "warm_started" in a:  # older rows without the flag count as from scratch
            a["warm_started"] = a["warm_started"].fillna(False).astype(bool)
        keys = [k for k in ("arrangement", "setting", "warm_started") if k in a] + ["num_tokens"]
        g = a.groupby(keys, as_index=False).agg(
            seconds_per_text=("_per_text", "median"),
            seconds_per_batch=("wall_time_s", "median"),
            batch_size=("batch_size", "median"),
            steps=("steps", "median"),
            rows=("wall_time_s", "size"),
        )
        g.insert(0, "model", r.spec)
        g["device"] = r.facts.get("device")
        frames.append(g)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def family_table(runs: Sequence[ModelRun]) -> pd.DataFrame:
    """One row per model x arrangement x source x setting (or one ``skipped`` row per model;
    ``primary``: the model's own arrangement, :func:`model_arrangements`): best capacity
    over texts (the paper's aggregation), median and IQR over texts, H_LM mean ± std (nats and
    bits) at capacity, the theoretical capacity of the vectors one text owns
    (``vectors_per_text`` x d·16/log2|V|; a shared m is shared by the texts of one source) and
    utilisation = best C_tokens over texts / that (:mod:`prototokens.studies.measures`), the
    same numerator as Table 3 (C_tokens: the tokens reconstructed right at capacity, which
    can fall short of the capacity length, since accuracy >= 0.99 allows a miss)."""
    rows = []
    for r in runs:
        if r.status != "ok":
            rows.append({"model": r.spec, "status": "skipped", "reason": r.reason})
            continue
        per_text = capacity_per_text(r.attempts)
        primary = (r.facts.get("arrangements") or [None])[0]
        keys = ["arrangement", "source", "setting"]
        for (arrangement, source, setting), g in per_text.groupby(keys, sort=False):
            cap = g["capacity"].astype(float)
            best = float(cap.max())
            c_tokens_best = int(g["c_tokens"].max())  # utilisation's numerator, as in Table 3
            vectors = trained_vectors_per_text(setting, len(g))
            one = float(g["theoretical_capacity"].iloc[0])  # one vector's d·16/log2|V|
            rows.append(
                {
                    **{
                        k: r.facts[k]
                        for k in ("model", "family", "params", "d_model", "vocab_size")
                    },
                    "status": "ok",
                    "reason": "",
                    "arrangement": arrangement,
                    "primary": primary is None or arrangement == primary,
                    "source": g["label"].iloc[0] if "label" in g else source,
                    "setting": setting,
                    "texts": len(g),
                    "capacity_best": int(best),
                    "c_tokens_best": c_tokens_best,
                    "capacity_median": float(cap.median()),
                    "capacity_q25": float(cap.quantile(0.25)),
                    "capacity_q75": float(cap.quantile(0.75)),
                    "censored_texts": int(g["censored"].sum()),
                    "h_lm_nats_mean": float(g["h_lm_nats"].mean()),
                    "h_lm_nats_std": float(g["h_lm_nats"].std(ddof=0)),
                    "h_lm_bits_mean": float(g["h_lm_bits"].mean()),
                    "vectors_per_text": vectors,
                    "theoretical_capacity": one * vectors,
                    "utilisation": utilisation(c_tokens_best, one, vectors),
                    "device": r.facts["device"],
                    "dtype": r.facts["dtype"],
                }
            )
    return pd.DataFrame(rows)


def plot_capacity_vs_model_size(table: pd.DataFrame, setting: str = "per-text", title: str = ""):
    """Capacity (left) and H_LM at capacity (right) against parameters, log axes, one colour per
    family, one marker per source, each of our models named once; the paper's six models (Table 3,
    PG-19 and random, m per text) drawn as hollow squares and labelled as the paper's; the legend
    outside the panels."""
    import matplotlib.pyplot as plt

    ours = table[(table["status"] == "ok") & (table["setting"] == setting)] if len(table) else table
    if "primary" in ours:  # each model on its own arrangement
        ours = ours[ours["primary"].astype(bool)]
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
        for (fam, src), g in ours.groupby(["family", "source"]):
            ax.scatter(
                g["params"],
                g[col_ours],
                color=colours[fam],
                marker=SOURCE_MARKERS.get(src, "o"),
                s=50,
                label=f"{fam} (ours, {src})",
            )
        ax.set_xscale("log")
        count_axis(ax.xaxis)  # 100M, 300M, 1B: default minor labels 2x10^8 ... overprint
        ax.set_yscale("log", base=2)
        ax.set_xlabel("parameters")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    handles, labels = axes[0].get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    fig.legend(uniq.values(), uniq.keys(), fontsize=7, loc="outside right upper")
    for ax, col in zip(axes, ("capacity_best", "h_lm_nats_mean") if len(ours) else ()):
        # one label per model (its sources share the point or sit close): at its highest point
        top = ours.groupby("model", sort=False).agg(params=("params", "first"), y=(col, "max"))
        label_points(ax, list(zip(top["params"], top["y"])), list(top.index))
    fig.suptitle(title or f"capacity against model size ({setting} m)")
    return fig


def family_metrics(models: Sequence[str], runs: Sequence[ModelRun], table: pd.DataFrame,
                   claims=()) -> dict:  # fmt: skip
    """Notebook 05's metrics: which models loaded or were skipped (and why), the best capacity
    per model x arrangement x source x setting, the devices, the claims' verdicts."""
    ok = table[table.status == "ok"]
    return {
        "models": list(models),
        "loaded": sorted(set(ok.model)),
        "skipped": {r.spec: r.reason for r in runs if r.status != "ok"},
        "capacity_best": {  # the arrangement is part of the key: a paper model runs two
            f"{r.model} | {r.arrangement} | {r.source} | {r.setting}": int(r.capacity_best)
            for r in ok.itertuples()
        },
        "claims": verdicts(claims),
        "device": sorted(set(ok.device)),
    }


def texts_for_sources(
    sources: Sequence[str], num_texts: int, num_tokens: int, seed: int = 0
) -> Callable[[object], dict[str, list]]:
    """A ``texts_for(lm)`` for :func:`run_model_families`: ``num_texts`` texts of ``num_tokens``
    tokens per source, tokenised for that model; an unavailable source (fanfics offline) or one
    with too few texts is left out with a printed reason, and no source left is an error."""
    from prototokens.inputs import data

    def texts_for(lm) -> dict[str, list]:
        out = {}
        for source in sources:
            try:
                out[source] = data.load_texts(
                    source, num_texts, num_tokens, lm.tokenizer, seed=seed, model=lm.model
                )
            except (data.SourceUnavailable, data.NotEnoughTexts) as exc:
                print(f"{lm.name}: source {source} skipped ({exc})")
        if not out:
            raise RuntimeError(f"{lm.name}: no text source of {list(sources)} is available here")
        return out

    return texts_for
