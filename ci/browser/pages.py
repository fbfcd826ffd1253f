"""What a static HTML page links, shows and tabulates, and which of its local targets exist.

Used on the run report (``outputs/report/index.html``) before the browser opens it: every
``<a href>`` and ``<img src>`` that points into the outputs tree must name an existing file
(a ``#fragment`` must name an ``id`` on the target page), every ``<table>`` must have a row of
cells. The browser part (:mod:`ci.browser.driver`) then checks the same links over HTTP and that
every image really decodes (``naturalWidth > 0``). Pure Python (``html.parser``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class PageScan:
    """Everything :func:`scan_page` found in one page."""

    links: list[str] = field(default_factory=list)  # <a href>, in page order
    images: list[str] = field(default_factory=list)  # <img src>
    ids: set[str] = field(default_factory=set)  # id= and <a name=> anchors
    tables: list[int] = field(default_factory=list)  # rows with at least one cell, per <table>


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scan = PageScan()
        self._open_tables: list[int] = []  # index into scan.tables, innermost last
        self._row_cells: list[int] = []  # cells seen in the current <tr>, per open table

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.scan.ids.add(a["id"])
        if tag == "a":
            if a.get("name"):
                self.scan.ids.add(a["name"])
            if a.get("href") is not None:
                self.scan.links.append(a["href"])
        elif tag == "img" and a.get("src") is not None:
            self.scan.images.append(a["src"])
        elif tag == "table":
            self.scan.tables.append(0)
            self._open_tables.append(len(self.scan.tables) - 1)
            self._row_cells.append(0)
        elif tag == "tr" and self._open_tables:
            self._row_cells[-1] = 0
        elif tag in ("td", "th") and self._open_tables:
            if self._row_cells[-1] == 0:
                self.scan.tables[self._open_tables[-1]] += 1
            self._row_cells[-1] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._open_tables:
            self._open_tables.pop()
            self._row_cells.pop()


def scan_page(html: str) -> PageScan:
    """Links, images, anchors and table sizes of an HTML document."""
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.scan


def is_external(url: str) -> bool:
    """True for URLs that leave the outputs tree (another scheme or host); data: URIs are inline."""
    parts = urlsplit(url)
    return bool(parts.scheme and parts.scheme not in ("file",)) or bool(parts.netloc)


def local_target(page: Path, url: str) -> tuple[Path | None, str]:
    """``(file, fragment)`` a relative URL of ``page`` points to (``file`` None for ``#x``)."""
    parts = urlsplit(url)
    if not parts.path:
        return None, unquote(parts.fragment)
    path = unquote(parts.path)
    target = Path(path) if path.startswith("/") else page.parent / path
    return target, unquote(parts.fragment)


def check_page(page: str | Path) -> tuple[PageScan, list[str]]:
    """Scan ``page`` and list its problems: local links and images whose file is missing,
    fragments that name no anchor, tables without rows, a page without any table."""
    page = Path(page)
    scan = scan_page(page.read_text(encoding="utf-8"))
    problems: list[str] = []
    pages: dict[Path, PageScan] = {}
    for kind, urls in (("link", scan.links), ("image", scan.images)):
        for url in urls:
            if url.startswith("data:"):
                continue
            if is_external(url):
                continue  # the CI machine cannot reach other hosts; see external_links()
            target, fragment = local_target(page, url)
            if target is None:
                if fragment and fragment not in scan.ids:
                    problems.append(f"{kind} {url!r}: no element with id {fragment!r} on the page")
                continue
            if not target.is_file():
                problems.append(f"{kind} {url!r}: {target} does not exist")
                continue
            if fragment and target.suffix in (".html", ".htm"):
                if target not in pages:
                    pages[target] = scan_page(target.read_text(encoding="utf-8", errors="replace"))
                if fragment not in pages[target].ids:
                    problems.append(f"{kind} {url!r}: no element with id {fragment!r} in {target}")
    for i, rows in enumerate(scan.tables):
        if rows == 0:
            problems.append(f"table #{i + 1} has no rows")
    return scan, problems


def external_links(scan: PageScan) -> list[str]:
    """Links and images of a scanned page that leave the outputs tree (not checked offline)."""
    return [u for u in scan.links + scan.images if is_external(u) and not u.startswith("data:")]
