"""Notebook 01 (setup): the environment checks as table rows, and the sanity forward pass.

Each ``*_checks`` function returns a DataFrame of checks with columns ``section, check, ok,
detail``; :func:`run_setup_table` joins them and marks each ``[OK]``, ``[--]`` (optional and not
available: hub models, online sources) or ``[FAIL]``. :func:`run_sanity_pass` loads nothing: it
runs one forward pass of Z = [e, m × N] with random vectors through an already loaded model.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import pandas as pd
import torch

from prototokens import envcheck
from prototokens.engine.arrangements import DEFAULT_ARRANGEMENT
from prototokens.engine.decoding import predict
from prototokens.engine.metrics import h_lm

CHECK_COLUMNS = ["section", "check", "ok", "detail"]
REQUIRED_SECTIONS = ("package", "sanity")  # a failure here fails notebook 01
OPTIONAL_SECTIONS = ("model", "source")  # "[--]" when not available (hub, network)
SANITY_TEXT = "It was the best of times, it was the worst of times, it was the age of wisdom."


def _checks(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def package_checks(kernel: str = "python3") -> pd.DataFrame:
    """Every requirement of the installed project against what is installed, plus the kernel."""
    checks = envcheck.check_environment() + [envcheck.kernel_check(kernel)]
    return _checks([("package", c.name, c.ok, c.message or c.found_version or "") for c in checks])


def device_checks() -> pd.DataFrame:
    """The torch device (and GPU name) this process sees."""
    dev = envcheck.device_report()
    detail = f"{dev['device']} {dev.get('gpu_name') or ''}".strip()
    return _checks([("device", "torch device", True, detail)])


def model_checks() -> pd.DataFrame:
    """Which embedded model specs are installed (available offline)."""
    from prototokens.inputs.models import embedded_status

    return _checks(
        [("model", name, state == "installed", state) for name, state in embedded_status().items()]
    )


def source_checks() -> pd.DataFrame:
    """Which text sources of the paper can be loaded here, with their labels."""
    from prototokens.inputs.data import source_status

    return _checks(
        [
            ("source", name, bool(st["available"]), f"{st['label']} · {st['message']}")
            for name, st in source_status().items()
        ]
    )


@dataclass
class SanityPass:
    """One forward pass of the chosen model with random proto-tokens, and H_LM of a short text."""

    model: str
    num_tokens: int
    token_ids: list[int]
    predicted_ids: list[int]
    ce_nats: float
    h_lm_nats: float
    forward_s: float

    @property
    def ok(self) -> bool:
        """Both numbers finite and one prediction per target token."""
        finite = math.isfinite(self.ce_nats) and math.isfinite(self.h_lm_nats)
        return finite and len(self.predicted_ids) == len(self.token_ids)

    def checks(self) -> pd.DataFrame:
        detail = f"CE {self.ce_nats:.1f} nats, H_LM {self.h_lm_nats:.1f} nats"
        return _checks([("sanity", f"forward pass of {self.model}", self.ok, detail)])


def run_sanity_pass(
    lm,
    num_tokens: int = 16,
    seed: int = 0,
    arrangement: str = DEFAULT_ARRANGEMENT,
    text: str = SANITY_TEXT,
) -> SanityPass:
    """Random e and m (seeded), the first ``num_tokens`` tokens of ``text``: the CE of the one-pass
    prediction and H_LM of the text under the plain model (both in nats)."""
    if num_tokens < 1:
        raise ValueError(f"num_tokens must be at least 1, got {num_tokens}")
    gen = torch.Generator().manual_seed(seed)
    vectors = {name: torch.randn(lm.d_model, generator=gen) for name in ("e", "m")}  # (d,)
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"][:num_tokens]
    t0 = time.perf_counter()
    pred, ce = predict(lm, arrangement, vectors, len(ids), ids)
    forward_s = time.perf_counter() - t0
    return SanityPass(lm.name, len(ids), list(ids), list(pred), ce, h_lm(lm, [ids])[0], forward_s)


def run_setup_table(*sections: pd.DataFrame, strict_packages: bool = True) -> pd.DataFrame:
    """The checks of every section in one table with a ``status`` column: ``[OK]``, ``[--]``
    (an optional check that is not available) or ``[FAIL]``. ``strict_packages=False`` (a machine
    whose image we do not control, such as the lent H200 of profile ``gpu``) reports version pins
    without requiring them; the kernel and interpreter checks stay required."""
    table = pd.concat(sections, ignore_index=True)[CHECK_COLUMNS]
    optional = table.section.isin(OPTIONAL_SECTIONS)
    if not strict_packages:
        pinned = (table.section == "package") & ~table.check.str.startswith(("kernel", "python"))
        optional |= pinned
        table.loc[pinned, "section"] = "package (reported)"
    table["status"] = [
        "[OK]" if ok else ("[--]" if opt else "[FAIL]") for ok, opt in zip(table.ok, optional)
    ]
    return table


def failed_checks(table: pd.DataFrame) -> pd.DataFrame:
    """The required checks (packages, sanity pass) that failed."""
    required = table[table.section.isin(REQUIRED_SECTIONS)]
    return required[~required.ok.astype(bool)]


def raise_on_failures(table: pd.DataFrame) -> None:
    """Stop notebook 01 with every failed required check named (nothing when all passed)."""
    failed = failed_checks(table)
    if len(failed):
        named = "; ".join(f"{r.check}: {r.detail}" for r in failed.itertuples())
        raise RuntimeError(f"setup check FAILED: {named}")


def setup_metrics(lm, table: pd.DataFrame, sources: pd.DataFrame, sanity: SanityPass,
                  load_s: float) -> dict:  # fmt: skip
    """Notebook 01's metrics: checks run and failed, load and forward times, the sanity numbers
    and the text sources available here."""
    return {
        "device": str(lm.device),
        "model": lm.name,
        "num_checks": len(table),
        "num_failed": len(failed_checks(table)),
        "load_s": load_s,
        "forward_s": sanity.forward_s,
        "sanity_ce_nats": sanity.ce_nats,
        "sanity_h_lm_nats": sanity.h_lm_nats,
        "sources_available": sources.check[sources.ok].tolist(),
    }
