"""Compare one's own run with a reference run (``outputs/reference/h200`` or ``.../cpu``).

``python -m prototokens.harness.compare [OURS] [REFERENCE]`` (defaults ``outputs`` and
``outputs/reference/h200``; ``outputs/reference/cpu`` is notebooks 03, 05 and 07 at the
``cpu_paper`` profile on the 2-core CPU machine; any outputs folder will do as either) prints the
reference's provenance (its ``runs.json``: device, profile, wall time per notebook), then every
claim whose verdict differs between the two claims ledgers (:func:`compare_claims`; a reference
written before the ledger existed has its claims only in its metrics, keyed by their old wording:
they are listed, not matched), then, per notebook, every numeric metric of the reference beside
ours with the difference, then which tables and figures the reference has that ours lacks.
Numbers differ across devices and profiles (bf16 on the H200, fp32 on a CPU; different sizes per
profile): the point is to see where, not to demand equality, and a CPU run is best compared with
``outputs/reference/cpu``. Exit status 0 unless a folder is missing.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from prototokens.harness.ledger import read_ledger
from prototokens.harness.references import RUNS, read_runs
from prototokens.paths import repo_root

DEFAULT_REFERENCE = "outputs/reference/h200"


def flatten(value, key: str = "") -> dict[str, float | str | bool]:
    """``{"a": {"b": 1}, "c": [2]}`` -> ``{"a.b": 1, "c[0]": 2}`` (scalars only)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(flatten(v, f"{key}.{k}" if key else str(k)))
        return out
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, f"{key}[{i}]"))
        return out
    return {key: value}


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def compare_metrics(ours: dict, ref: dict) -> list[tuple[str, object, object, str]]:
    """Rows ``(key, reference, ours, difference)``; the difference is ``ours - reference`` for
    numbers, ``same``/``differs`` otherwise, ``missing`` when ours lacks the key."""
    a, b = flatten(ref), flatten(ours)
    rows = []
    for key, rv in a.items():
        if key not in b:
            rows.append((key, rv, None, "missing"))
            continue
        ov = b[key]
        rn, on = _number(rv), _number(ov)
        if rn is not None and on is not None:
            diff = on - rn
            rel = f" ({diff / abs(rn):+.0%})" if rn and math.isfinite(diff) else ""
            rows.append((key, rv, ov, f"{diff:+.4g}{rel}"))
        else:
            rows.append((key, rv, ov, "same" if rv == ov else "differs"))
    return rows


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def old_claims(folder: Path) -> dict[str, dict[str, str]]:
    """``{notebook: {claim wording: verdict}}`` from metrics written before the ledger (their
    ``claims`` entry keyed by wording, not id); empty for a folder with a ledger."""
    out = {}
    for path in sorted((folder / "metrics").glob("[0-9][0-9]_*.json")):
        if path.name.endswith(".manifest.json"):
            continue
        claims = json.loads(path.read_text()).get("claims")
        if isinstance(claims, dict) and claims:
            out[path.stem] = {str(k): str(v) for k, v in claims.items()}
    return out


def compare_claims(ours: Path, ref: Path, out=sys.stdout) -> list[tuple[str, str, str, str]]:
    """Rows ``(id, reference verdict, our verdict, "same"/"differs"/"only ours"/"only
    reference")`` over the union of both ledgers' claim ids; prints the rows that are not
    "same". A reference without a ledger (older shape) is said so, its claims listed."""
    a, b = read_ledger(ref), read_ledger(ours)
    if a.empty:
        old = old_claims(ref)
        if old:
            print("claims: the reference predates the claims ledger; its verdicts (old wording, "
                  "not matched to ours):", file=out)  # fmt: skip
            for nb, claims in old.items():
                for claim, verdict in claims.items():
                    print(f"   {nb:<22} {verdict:<20} {claim}", file=out)
        else:
            print("claims: the reference has no claims ledger", file=out)
    rv, ov = dict(zip(a.id, a.verdict)), dict(zip(b.id, b.verdict))
    rows = []
    for cid in list(dict.fromkeys([*rv, *ov])):
        r, o = rv.get(cid), ov.get(cid)
        state = "only ours" if r is None else "only reference" if o is None else (
            "same" if r == o else "differs")  # fmt: skip
        rows.append((cid, r or "-", o or "-", state))
    if not a.empty:
        changed = [row for row in rows if row[3] != "same"]
        print(f"claims: {len(rows) - len(changed)} of {len(rows)} verdicts the same", file=out)
        for cid, r, o, state in changed:
            print(f"   {cid:<36} reference {r:<14} ours {o:<14} {state}", file=out)
    return rows


def compare(ours: Path, ref: Path, out=sys.stdout) -> dict:
    """Print the comparison; returns ``{notebook: metric rows}`` and, under ``"claims"``, the
    rows of :func:`compare_claims`."""
    result = {}
    if runs := read_runs(ref):
        print(
            f"reference: {runs.get('device') or '?'}, profile {runs.get('profile') or '?'}, "
            f"commit {runs.get('commit') or '?'}",
            file=out,
        )
        for nb, info in (runs.get("notebooks") or {}).items():
            print(
                f"  {nb:<24} {info.get('status') or '?':<10} {_fmt(info.get('wall_time_s'))} s",
                file=out,
            )
    else:
        print(f"reference: no {RUNS} in {ref} (no provenance to show)", file=out)
    print("", file=out)
    result["claims"] = compare_claims(ours, ref, out=out)
    for ref_file in sorted((ref / "metrics").glob("[0-9][0-9]_*.json")):
        if ref_file.name.endswith(".manifest.json"):
            continue
        nb = ref_file.stem
        ours_file = ours / "metrics" / ref_file.name
        print(f"\n== {nb}", file=out)
        if not ours_file.exists():
            print(
                f"   no {ours_file} (run it: python -m prototokens.harness.runner --notebook "
                f"{nb[:2]})",
                file=out,
            )
            continue
        rows = compare_metrics(json.loads(ours_file.read_text()), json.loads(ref_file.read_text()))
        result[nb] = rows
        width = max((len(r[0]) for r in rows), default=10)
        print(f"   {'metric':<{width}}  {'reference':>12}  {'ours':>12}  difference", file=out)
        for key, rv, ov, diff in rows:
            print(f"   {key:<{width}}  {_fmt(rv):>12}  {_fmt(ov):>12}  {diff}", file=out)
    for kind, pattern in (("tables", "*.csv"), ("figures", "*.png")):
        names = sorted(p.stem for p in (ref / kind).glob(pattern))
        lacking = [
            n for n in names if not (ours / kind / Path(n).with_suffix(pattern[1:])).exists()
        ]
        print(
            f"\n{kind}: {len(names)} in the reference"
            + (f"; not in yours: {', '.join(lacking)}" if lacking else "; all in yours"),
            file=out,
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m prototokens.harness.compare", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("ours", nargs="?", default="outputs", help="your outputs folder")
    parser.add_argument(
        "reference",
        nargs="?",
        default=DEFAULT_REFERENCE,
        help=f"a reference folder (default {DEFAULT_REFERENCE}; outputs/reference/cpu for the "
        "CPU machine's cpu_paper run) or any outputs folder",
    )
    args = parser.parse_args(argv)
    paths = []
    for raw in (args.ours, args.reference):
        p = Path(raw)
        paths.append(p if p.is_absolute() or p.exists() else repo_root() / p)
    for p in paths:
        if not (p / "metrics").is_dir():
            print(f"{p} has no metrics/ folder", file=sys.stderr)
            return 2
    compare(*paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
