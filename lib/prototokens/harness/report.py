"""The run report: one HTML page over everything a ``make reproduce`` produced.

``build_report`` renders each executed notebook (``outputs/notebooks/NN_*.ipynb``) to HTML with
nbconvert and writes ``outputs/report/index.html``, which links every notebook, figure (PNG
thumbnail, PDF link) and table (shown inline), and states the profile, model, device and git
commit the numbers came from (read from the run manifests). All links are relative, so the
``outputs/`` folder can be zipped or published as it is.

Called by :func:`prototokens.harness.runner.run_all` after a run, by ``make report`` and by
``python -m prototokens.harness.report [OUTPUT_DIR]``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import html
import json
import os
import re
import sys
from pathlib import Path

from prototokens.io import write_text
from prototokens.paths import output_dir as _output_dir

MAX_TABLE_ROWS = 60  # longer tables are cut in the page (the CSV link has them all)

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; font-size: .9rem; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; width: 22rem; } figure img { width: 100%; border: 1px solid #ddd; }
.ok { color: #176f2c; } .bad { color: #b00020; font-weight: bold; }
code { background: #f4f4f4; padding: 0 .2rem; }
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


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
    if not rows:
        return "<p><em>empty table</em></p>"
    number = re.compile(r"^-?[0-9.]+(e[-+]?[0-9]+)?$", re.IGNORECASE)
    head = "".join(f"<th>{_e(c)}</th>" for c in rows[0])
    body = []
    for row in rows[1 : MAX_TABLE_ROWS + 1]:
        cells = "".join(
            f'<td class="num">{_e(c)}</td>' if number.match(c) else f"<td>{_e(c)}</td>" for c in row
        )
        body.append(f"<tr>{cells}</tr>")
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
    distinct = sorted({str(v) for v in values if v not in (None, "")})
    return ", ".join(distinct) if distinct else "unknown"


def _device_text(device: dict) -> str:
    if not device:
        return ""
    name = device.get("gpu_name")
    return f"{device.get('device', '?')}" + (f" ({name})" if name else "")


def build_report(output_dir: str | os.PathLike | None = None) -> Path:
    """Render ``<output_dir>/report/index.html`` (and one HTML page per executed notebook).

    Works on whatever is there: a partial run gives a partial report, with failed notebooks
    marked. Returns the path of ``index.html``.
    """
    out = _output_dir(output_dir)
    report = out / "report"
    (report / "notebooks").mkdir(parents=True, exist_ok=True)
    notebooks = sorted(p for p in (out / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    errors = _render_notebooks(notebooks, report / "notebooks")
    manifests = {
        p.name.removesuffix(".manifest.json"): _read_json(p)
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
        "<h2>Notebooks</h2>",
    ]
    if notebooks:
        parts.append(
            "<table><tr><th>Notebook</th><th>Status</th><th>Wall time</th><th>Profile</th>"
            "<th>Model</th><th>Device</th><th>Files</th></tr>"
        )
        for nb in notebooks:
            m = manifests.get(nb.stem, {})
            status = m.get("status", "unknown")
            css = "ok" if status == "ok" else "bad"
            wall = m.get("wall_time_s")
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
                f'<tr><td>{_e(nb.stem)}</td><td class="{css}">{_e(status)}</td>'
                f'<td class="num">{"" if wall is None else f"{wall:.0f} s"}</td>'
                f"<td>{_e(p.get('profile'))}</td><td>{_e(p.get('model'))}</td>"
                f"<td>{_e(_device_text(m.get('device', {})))}</td><td>{' · '.join(links)}</td></tr>"
            )
        parts.append("</table>")
        for nb in notebooks:
            message = manifests.get(nb.stem, {}).get("message")
            if message:
                parts.append(f'<p class="bad">{_e(nb.stem)}:</p><pre>{_e(message)}</pre>')
    else:
        parts.append("<p><em>No executed notebooks yet: run <code>make reproduce</code>.</em></p>")

    metric_files = sorted(
        p for p in (out / "metrics").glob("*.json") if not p.name.endswith(".manifest.json")
    )
    if metric_files:
        parts.append("<h2>Key metrics</h2>")
        for path in metric_files:
            rows = "".join(
                f'<tr><td>{_e(k)}</td><td class="num">{_e(v)}</td></tr>'
                for k, v in _scalar_metrics(_read_json(path))
            )
            parts.append(
                f"<details><summary>{_e(path.stem)}</summary><table>{rows}</table></details>"
            )

    pngs = sorted((out / "figures").glob("*.png"))
    pdfs = {p.stem for p in (out / "figures").glob("*.pdf")}
    parts.append("<h2>Figures</h2>")
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

    tables = sorted((out / "tables").glob("*.csv"))
    parts.append("<h2>Tables</h2>")
    for path in tables:
        md = path.with_suffix(".md")
        md_link = f' · <a href="../tables/{_e(md.name)}">Markdown</a>' if md.exists() else ""
        parts.append(
            f'<h3 id="{_e(path.stem)}"><code>{_e(path.stem)}</code></h3>'
            f'<p><a href="../tables/{_e(path.name)}">CSV</a>{md_link}</p>' + _csv_table(path)
        )
    if not tables:
        parts.append("<p><em>No tables yet.</em></p>")
    parts.append("</body></html>")
    return write_text(report / "index.html", "\n".join(parts) + "\n")


if __name__ == "__main__":
    print(build_report(sys.argv[1] if len(sys.argv) > 1 else None))
