"""The run report: ``outputs/report/index.html`` over everything a ``make reproduce`` produced.

It opens on the claims ledger (:mod:`.ledger`), then the paper's Tables 1-4 and Figs 1-7 in its
order, each beside every committed reference's (``outputs/reference/*``, :mod:`.references`; one
verdict column each), the run table, other artefacts and key metrics; 3 significant digits with
units; relative links (the folder can be zipped); notebooks rendered by nbconvert. Called by
``runner.run_all``, ``make report`` and ``python -m prototokens.harness.report [OUTPUT_DIR]``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import html
import os
import re
import sys
from pathlib import Path

from prototokens.files import write_text
from prototokens.harness.ledger import read_ledger, write_ledger
from prototokens.harness.references import REFERENCES, Reference, list_references, read_json
from prototokens.paths import output_dir as _output_dir
from prototokens.studies.claims import FAILS, HOLDS, VERDICTS, sig

MAX_TABLE_ROWS = 60  # longer tables are cut in the page (the CSV link has them all)

# The paper's artefacts in the paper's order: (label, artefact name, what it shows, notebook)
PAPER_ARTEFACTS = [
    ("Table 1", "tab1_arrangements", "reconstruction accuracy per input arrangement", "04"),
    ("Table 2", "tab2_sharing", "sharing e or m within groups of S_g texts", "04"),
    ("Table 3", "tab3_capacity", "capacity C_tokens and H_LM per model and source", "03"),
    ("Table 4", "tab4_training_time", "training seconds to convergence per length", "07"),
    ("Fig. 1", "fig1_capacity", "one pass, many tokens: capacity per model", "03"),
    ("Fig. 2", "fig2_schematic", "the method: two trained vectors, one forward pass", "02"),
    ("Fig. 3", "fig3_one_pass_vs_ar", "H_LM at capacity, one pass against autoregressive", "03"),
    ("Fig. 4", "fig4_throughput", "throughput, one pass against autoregressive decoding", "07"),
    ("Fig. 5", "fig5_proto_vs_text_distance", "proto-token distance against text distance", "06"),
    ("Fig. 6", "fig6_distance_densities", "densities of distances between solutions", "06"),
    ("Fig. 7", "fig7_bezier_connectivity", "accuracy along the line and the Bezier curve", "06"),
]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 80rem; color: #222; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; font-size: .88rem; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.figures, .pair { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
.pair > div { flex: 1 1 30rem; min-width: 0; overflow-x: auto; } .pair figure { width: 100%; }
figure { margin: 0; width: 22rem; } figure img { width: 100%; border: 1px solid #ddd; }
.ok, .holds { color: #176f2c; } .bad, .fails { color: #b00020; font-weight: bold; }
.inconclusive { color: #8a5a00; } code { background: #f4f4f4; padding: 0 .2rem; }
"""
_NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$", re.IGNORECASE)
_VERDICT_CSS = {HOLDS: "holds", FAILS: "fails"}


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _rel(path: Path, start: Path) -> str:
    """A relative URL from the report folder ``start`` to ``path``."""
    return Path(os.path.relpath(path, start)).as_posix()


def unit(name: str) -> str:
    """The unit a column or metric name implies ('' when none): ``median_s`` -> 's'."""
    leaf = name.rsplit(".", 1)[-1].lower()
    if leaf.endswith("tok_s"):
        return "tokens/s"
    if leaf.endswith(("_s", "_seconds")) or leaf == "seconds":
        return "s"
    if "_nats" in leaf:
        return "nats"
    if "_bits" in leaf:
        return "bits"
    return ""


def _head(name: str) -> str:
    u = unit(name)
    return f"{_e(name)} ({_e(u)})" if u else _e(name)


def _cell(value) -> str:
    """A table cell: numbers at 3 significant digits, right-aligned; text escaped."""
    text = "" if value is None else str(value)
    if _NUMBER.match(text.strip()):
        shown = text if re.fullmatch(r"-?\d+", text.strip()) else sig(float(text))
        return f'<td class="num">{_e(shown)}</td>'
    return f"<td>{_e(text)}</td>"


def _render_notebooks(notebooks: list[Path], target: Path) -> dict[str, str]:
    """Convert executed notebooks to HTML; returns ``{stem: error}`` for the ones that failed."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    errors = {}
    for nb in notebooks:
        try:
            body, _ = exporter.from_filename(str(nb))
        except Exception as exc:  # noqa: BLE001 - one unreadable notebook must not hide the rest
            errors[nb.stem] = f"{type(exc).__name__}: {exc}"
            continue
        write_text(target / f"{nb.stem}.html", body)
    return errors


def _csv_table(path: Path) -> str:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if len(rows) < 2:
        return "<p><em>empty table</em></p>"
    head = "".join(f"<th>{_head(c)}</th>" for c in rows[0])
    body = [
        "<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows[1 : MAX_TABLE_ROWS + 1]
    ]
    more = len(rows) - 1 - MAX_TABLE_ROWS
    note = f"<p><em>{more} more rows in the CSV.</em></p>" if more > 0 else ""
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{note}"


def _scalar_metrics(metrics: dict, prefix: str = "") -> list[tuple[str, object]]:
    """Flatten nested metrics to ``(dotted.key, scalar)`` pairs, skipping lists."""
    out = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out += _scalar_metrics(value, f"{name}.")
        elif not isinstance(value, list):
            out.append((name, value))
    return out


def _summary(values: list) -> str:
    return ", ".join(sorted({str(v) for v in values if v not in (None, "")})) or "unknown"


def _device_text(device: dict) -> str:
    name = (device or {}).get("gpu_name")
    return f"{device.get('device', '?')}" + (f" ({name})" if name else "") if device else ""


def _ref_head(ref: Reference, note: str = "") -> str:
    """A reference's column heading: its folder name, then where it ran (``runs.json``)."""
    return f"reference {_e(ref.name)}<br><small>{_e(ref.where)}{_e(note)}</small>"


def _verdict(verdict, reason="") -> str:
    css = _VERDICT_CSS.get(verdict, "inconclusive" if verdict in VERDICTS else "")
    cell = f'<td class="{css}">{_e(verdict)}' if css else f"<td>{_e(verdict)}"
    return cell + (f"<br><small>{_e(reason)}</small></td>" if reason else "</td>")


def _ledger_section(out: Path, report: Path, pages: set[str], refs: list[Reference]) -> list[str]:
    """The claims ledger: counts per verdict, then one row per claim with its verdict in each
    reference ('-' throughout for a reference written before the ledger existed)."""
    write_ledger(out)
    ledger = read_ledger(out)
    parts = ['<h2 id="claims">The paper\'s claims, judged on this run</h2>']
    if ledger.empty:
        parts.append(
            "<p><em>No claims recorded yet: each science notebook's claims cell writes them "
            "(run <code>make reproduce</code>).</em></p>"
        )
        return parts
    counts = ", ".join(f"{(ledger.verdict == v).sum()} {v}" for v in VERDICTS)
    links = " · ".join(
        f'<a href="{_rel(out / "tables" / f"claims.{x}", report)}">{x.upper()}</a>'
        for x in ("csv", "md")
        if (out / "tables" / f"claims.{x}").exists()
    )
    parts.append(
        f"<p>{len(ledger)} claims: {_e(counts)}. An inconclusive verdict names what the run "
        f"lacked (too few samples, not solutions, censored at the longest length, budget too "
        f"small, not run here). {links}</p>"
    )
    judged = [(ref, ref.verdicts()) for ref in refs]
    head = ["notebook", "claim", "where", "paper", "ours", "n", "rule", "verdict"]
    head = [f"<th>{h}</th>" for h in head] + [
        f"<th>{_ref_head(ref, '' if v else '; no claims ledger')}</th>" for ref, v in judged
    ]
    rows = ["<table><tr>" + "".join(head) + "</tr>"]
    for r in ledger.itertuples():
        nb = (
            f'<a href="notebooks/{_e(r.notebook)}.html">{_e(r.notebook)}</a>'
            if r.notebook in pages
            else _e(r.notebook)
        )
        cells = [
            f"<td>{nb}</td>",
            f"<td><code>{_e(r.id)}</code><br>{_e(r.claim)}</td>",
            f"<td>{_e(r.where)}</td>",
            f"<td>{_e(r.paper)}</td>",
            f"<td>{_e(r.ours)}</td>",
            f"<td>{_e(r.n)}</td>",
            f"<td><small>{_e(r.rule)}</small></td>",
            _verdict(r.verdict, r.reason),
        ]
        cells += [_verdict(verdicts.get(r.id, "-")) for _, verdicts in judged]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return parts + ["".join(rows) + "</table>"]


def _artefact(folder: Path, stem: str, report: Path) -> str | None:
    """Our (or the reference's) copy of one artefact as HTML, None when the folder lacks it."""
    png, pdf, table = (folder / "figures" / f"{stem}.png", folder / "figures" / f"{stem}.pdf",
                       folder / "tables" / f"{stem}.csv")  # fmt: skip
    if png.exists():
        extra = f' · <a href="{_rel(pdf, report)}">PDF</a>' if pdf.exists() else ""
        return (
            f'<figure><a href="{_rel(png, report)}"><img src="{_rel(png, report)}" '
            f'alt="{_e(stem)}" loading="lazy"></a><figcaption><code>{_e(stem)}</code> · '
            f'<a href="{_rel(png, report)}">PNG</a>{extra}</figcaption></figure>'
        )
    if table.exists():
        return f'<p><a href="{_rel(table, report)}">CSV</a></p>' + _csv_table(table)
    return None


def _paper_section(out: Path, report: Path, refs: list[Reference]) -> list[str]:
    """The paper's artefacts in its order: this run's, then one column per committed reference
    that has the artefact."""
    names = "; ".join(f"<code>{_e(ref.name)}</code>: {_e(ref.where)}" for ref in refs)
    beside = (
        f"each committed reference run beside ours where it has the same artefact ({names})"
        if refs
        else f"no reference run in this outputs folder (<code>{_e(REFERENCES)}/*/</code>)"
    )
    parts = [
        '<h2 id="paper">The paper\'s tables and figures</h2>',
        f"<p>In the paper's order; {beside}.</p>",
    ]
    for label, stem, what, nb in PAPER_ARTEFACTS:
        missing = f"<p><em>Not in this run (notebook {nb}).</em></p>"
        ours = _artefact(out, stem, report)
        theirs = [(_ref_head(ref), _artefact(ref.folder, stem, report)) for ref in refs]
        theirs = "".join(f"<div><h4>{h}</h4>{shown}</div>" for h, shown in theirs if shown)
        parts.append(f'<h3 id="{_e(stem)}">{_e(label)} · {_e(what)}</h3>')
        if ours is None and not theirs:
            parts.append(missing)
        elif not theirs:
            parts.append(f"<div><h4>this run</h4>{ours}</div>")
        else:
            parts.append(
                f'<div class="pair"><div><h4>this run</h4>{ours or missing}</div>{theirs}</div>'
            )
    return parts


def _run_table(out: Path, notebooks, manifests, errors) -> list[str]:
    parts = ["<h2>Notebooks</h2>"]
    if not notebooks:
        return parts + [
            "<p><em>No executed notebooks yet: run <code>make reproduce</code>.</em></p>"
        ]
    parts.append(
        "<table><tr><th>Notebook</th><th>Status</th><th>Wall time (s)</th><th>Profile</th>"
        "<th>Model</th><th>Device</th><th>Files</th></tr>"
    )
    for nb in notebooks:
        m = manifests.get(nb.stem, {})
        status = m.get("status", "unknown")
        links = [
            f'<a href="notebooks/{_e(nb.stem)}.html">HTML</a>'
            if nb.stem not in errors
            else f'<span class="bad" title="{_e(errors[nb.stem])}">no HTML</span>',
            f'<a href="../notebooks/{_e(nb.name)}">ipynb</a>',
        ]
        if (out / "metrics" / f"{nb.stem}.json").exists():
            links.append(f'<a href="../metrics/{_e(nb.stem)}.json">metrics</a>')
        if m:
            links.append(f'<a href="../metrics/{_e(nb.stem)}.manifest.json">manifest</a>')
        p = m.get("parameters", {})
        parts.append(
            f'<tr><td>{_e(nb.stem)}</td><td class="{"ok" if status == "ok" else "bad"}">'
            f"{_e(status)}</td>{_cell(m.get('wall_time_s'))}"
            f"<td>{_e(p.get('profile'))}</td><td>{_e(p.get('model'))}</td>"
            f"<td>{_e(_device_text(m.get('device', {})))}</td><td>{' · '.join(links)}</td></tr>"
        )
    parts.append("</table>")
    for nb in notebooks:
        message = manifests.get(nb.stem, {}).get("message")
        if message:
            parts.append(f'<p class="bad">{_e(nb.stem)}:</p><pre>{_e(message)}</pre>')
    return parts


def _rest(out: Path) -> list[str]:
    """Figures and tables that are not the paper's artefacts, then the key metrics."""
    paper = {stem for _, stem, _, _ in PAPER_ARTEFACTS} | {"claims"}
    parts = ["<h2>Other figures</h2>"]
    pngs = sorted(p for p in (out / "figures").glob("*.png") if p.stem not in paper)
    pdfs = {p.stem for p in (out / "figures").glob("*.pdf")} - paper
    if pngs or pdfs:
        parts.append('<div class="figures">')
        for png in pngs:
            pdf = f' · <a href="../figures/{_e(png.stem)}.pdf">PDF</a>' if png.stem in pdfs else ""
            parts.append(
                f'<figure id="{_e(png.stem)}"><a href="../figures/{_e(png.name)}">'
                f'<img src="../figures/{_e(png.name)}" alt="{_e(png.stem)}" loading="lazy"></a>'
                f'<figcaption><code>{_e(png.stem)}</code> · <a href="../figures/{_e(png.name)}">'
                f"PNG</a>{pdf}</figcaption></figure>"
            )
        for stem in sorted(pdfs - {p.stem for p in pngs}):
            parts.append(
                f'<figure id="{_e(stem)}"><a href="../figures/{_e(stem)}.pdf">'
                f"<code>{_e(stem)}</code> (PDF)</a></figure>"
            )
        parts.append("</div>")
    else:
        parts.append("<p><em>No figures yet.</em></p>")
    tables = sorted(p for p in (out / "tables").glob("*.csv") if p.stem not in paper)
    parts.append("<h2>Other tables</h2>")
    for path in tables:
        md = path.with_suffix(".md")
        md_link = f' · <a href="../tables/{_e(md.name)}">Markdown</a>' if md.exists() else ""
        parts.append(
            f'<h3 id="{_e(path.stem)}"><code>{_e(path.stem)}</code></h3>'
            f'<p><a href="../tables/{_e(path.name)}">CSV</a>{md_link}</p>' + _csv_table(path)
        )
    if not tables:
        parts.append("<p><em>No tables yet.</em></p>")
    metric_files = sorted(
        p for p in (out / "metrics").glob("*.json") if not p.name.endswith(".manifest.json")
    )
    if metric_files:
        parts.append("<h2>Key metrics</h2>")
        for path in metric_files:
            rows = "".join(
                f"<tr><td>{_head(k)}</td>{_cell(v)}</tr>"
                for k, v in _scalar_metrics(read_json(path))
            )
            parts.append(
                f"<details><summary>{_e(path.stem)}</summary><table>{rows}</table></details>"
                if rows
                else f"<p>{_e(path.stem)}: <em>no scalar metrics</em></p>"
            )
    return parts


def build_report(output_dir: str | os.PathLike | None = None) -> Path:
    """Render ``<output_dir>/report/index.html`` (and one HTML page per executed notebook),
    after rewriting the claims ledger ``tables/claims.{csv,md}``.

    Works on whatever is there: a partial run gives a partial report, with failed notebooks
    marked. Returns the path of ``index.html``.
    """
    out = _output_dir(output_dir)
    report = out / "report"
    (report / "notebooks").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(exist_ok=True)
    (out / "tables").mkdir(exist_ok=True)
    notebooks = sorted(p for p in (out / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    errors = _render_notebooks(notebooks, report / "notebooks")
    pages = {nb.stem for nb in notebooks if nb.stem not in errors}
    manifests = {
        p.name.removesuffix(".manifest.json"): read_json(p)
        for p in sorted((out / "metrics").glob("*.manifest.json"))
    }
    git = next((m["git"] for m in manifests.values() if m.get("git")), None)
    if git is None:
        from prototokens.harness.provenance import git_info

        git = git_info()
    commit = git.get("commit") or git.get("note") or "unknown"
    if git.get("commit") and git.get("dirty"):
        commit += " (with uncommitted changes)"
    params = [m.get("parameters", {}) for m in manifests.values()]
    devices = [_device_text(m.get("device", {})) for m in manifests.values()]
    now = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>prototokens: reproduction report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>prototokens: reproduction report</h1>",
        "<p>Companion to <em>Exploring the Hidden Capacity of LLMs for One-Step Text "
        "Generation</em> (Mezentsev &amp; Oseledets, EMNLP 2025).</p>",
        "<table>",
        f"<tr><th>Profile</th><td>{_e(_summary([p.get('profile') for p in params]))}</td></tr>",
        f"<tr><th>Model</th><td>{_e(_summary([p.get('model') for p in params]))}</td></tr>",
        f"<tr><th>Device</th><td>{_e(_summary(devices))}</td></tr>",
        f"<tr><th>Git commit</th><td><code>{_e(commit)}</code></td></tr>",
        f"<tr><th>Report built</th><td>{_e(now)}</td></tr>",
        "</table>",
    ]
    refs = list_references(out)
    parts += _ledger_section(out, report, pages, refs)
    parts += _paper_section(out, report, refs)
    parts += _run_table(out, notebooks, manifests, errors)
    parts += _rest(out)
    parts.append("</body></html>")
    return write_text(report / "index.html", "\n".join(parts) + "\n")


if __name__ == "__main__":
    print(build_report(sys.argv[1] if len(sys.argv) > 1 else None))
