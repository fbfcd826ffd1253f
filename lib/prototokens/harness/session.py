"""The derived-configuration step every notebook shares: seed, outputs, cache, model, banner.

``start(...)`` turns a notebook's parameters into a :class:`Session` (the loaded model, the
outputs folder, the result store) and prints the versions and device the run used, so that the
notebooks themselves stay short orchestrations.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from prototokens.engine.store import ResultStore, engine_version
from prototokens.envcheck import device_report, package_versions
from prototokens.harness import artifacts
from prototokens.inputs.models import LoadedModel, load_model
from prototokens.paths import output_dir as resolve_output_dir


@dataclass
class Session:
    """What a notebook works with after its parameters cell."""

    lm: LoadedModel | None
    output_dir: Path
    store: ResultStore
    device: str
    notebook: str = ""  # e.g. "02_optimization": the name metrics are written under

    def save_figure(self, fig, name: str) -> list[Path]:
        """``figures/<name>.png`` and ``.pdf`` under this session's outputs folder."""
        return artifacts.save_figure(fig, name, output_dir=self.output_dir)

    def save_table(self, df, name: str, **kwargs) -> list[Path]:
        """``tables/<name>.csv`` and ``.md`` under this session's outputs folder."""
        return artifacts.save_table(df, name, output_dir=self.output_dir, **kwargs)

    def write_metrics(self, metrics, notebook: str | None = None) -> Path:
        """``metrics/<notebook>.json`` (the session's notebook unless named)."""
        name = notebook or self.notebook
        if not name:
            raise ValueError(
                "this session has no notebook name: start(..., notebook='NN_name') "
                "or pass notebook="
            )
        return artifacts.write_metrics(name, metrics, output_dir=self.output_dir)


def banner(lm: LoadedModel | None = None) -> str:
    """Versions, interpreter and device, one per line (the per-notebook printout)."""
    dev = device_report()
    lines = [
        f"python      {platform.python_version()} ({sys.executable})",
        f"prototokens {engine_version()}",
    ]
    lines += [
        f"{name:<11} {ver}" for name, ver in package_versions().items() if name != "prototokens"
    ]
    gpu = f" · {dev['gpu_name']}" if dev.get("gpu_name") else ""
    lines.append(f"device      {dev['device']}{gpu} · torch threads {dev['torch_threads']}")
    if lm is not None:
        lines.append(
            f"model       {lm.name}: {lm.title} · d={lm.d_model} · |V|={lm.vocab_size} · "
            f"{lm.dtype} on {lm.device}"
        )
    return "\n".join(lines)


def start(
    model: str | None,
    device: str = "auto",
    output_dir: str = "",
    seed: int = 0,
    dtype: str = "auto",
    notebook: str = "",
) -> Session:
    """Seed torch, resolve the outputs folder, open the result store and load ``model`` (if any)."""
    torch.manual_seed(seed)
    out = resolve_output_dir(output_dir or None)
    lm = load_model(model, device=device, dtype=dtype) if model else None
    return Session(
        lm=lm,
        output_dir=out,
        store=ResultStore(out / "cache" / "runs"),
        device=str(lm.device) if lm else device,
        notebook=notebook,
    )
