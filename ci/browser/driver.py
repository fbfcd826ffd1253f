"""The Playwright part: run a notebook copy in JupyterLab (Run All Cells), operate its Explore
widgets as its table entry says and read every error channel after each step; then the report.
Every failure names the notebook, the step and what was missing (error channels: ci/README.md).
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

from ci.browser import interactions as A  # the table's steps

CHROMIUM = "/usr/bin/chromium"
# Beyond what playwright passes anyway (--no-sandbox, --no-first-run, no background networking).
CHROMIUM_ARGS = ["--disable-gpu", "--disable-quic", "--disable-sync"]
EXPLORE_SCOPE = ".jp-Cell[data-browser-check='explore']"
# Console errors that mean a widget failed to render or sync (other console noise is logged only).
WIDGET_CONSOLE = re.compile(r"widget|comm|Could not create|Error rendering|Traceback", re.I)
# Server-log lines from the kernel's stderr that mean a comm (widget) message handler raised. A
# bare "Traceback" there is not counted: the server logs its own (e.g. a websocket to a kernel
# shut down after the previous notebook); the kernel's tracebacks come from ci.browser.lab's hook.
KERNEL_LOG_ERROR = re.compile(r"Exception in (comm|message handler)")
# In the page: a control (or its input, select, button) that a person can use now; n images shown.
ENABLED = """e => { const t = e.matches('button, input, select, textarea') ? e
                : e.querySelector('button, input, select, textarea'); return !t || !t.disabled; }"""
IMAGES_LOADED = """(imgs, n) => imgs.length >= n && imgs.every(i => i.complete &&
                     i.naturalWidth > 0 && i.getBoundingClientRect().width > 0)"""


class CheckFailed(Exception):
    """One notebook (or the report) failed; the message says which step and what was missing."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


@contextmanager
def browser():
    """One headless Chromium for the whole check; yields a browser context (a fresh profile)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium.new_context(viewport={"width": 1400, "height": 2000})
        finally:
            chromium.close()


def watch(page) -> tuple[list, list]:
    """The page's uncaught errors and console errors, filled in as they come."""
    page_errors, console_errors = [], []
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    return page_errors, console_errors


def _exact(text) -> re.Pattern:
    return re.compile(rf"^\s*{re.escape(str(text))}\s*$")


class NotebookRun:
    """Drives one notebook copy; ``run()`` raises :class:`CheckFailed` on the first problem."""

    def __init__(self, page, lab, name: str, copy_name: str, entry: A.Explore, shots: Path):
        self.page, self.lab, self.name, self.copy_name = page, lab, name, copy_name
        self.entry, self.shots, self.step = entry, shots, "opening the notebook"
        self.page_errors, self.console_errors = watch(page)
        self.scope = page.locator(f"{EXPLORE_SCOPE} .jp-Cell-outputArea")
        self.errors_seen = len(lab.kernel_errors())
        lab.new_log()

    def fail_on_errors(self) -> None:
        """Fail naming the step if an error channel reported since the notebook was opened."""
        found = []
        tracebacks = self.page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
            has_text="Traceback",
        )
        if tracebacks.count():
            found.append("a traceback in an output area:\n" + _tail(tracebacks.first.inner_text()))
        kernel = self.lab.kernel_errors()[self.errors_seen :]
        if kernel.strip():
            found.append("the kernel raised (widget callback?):\n" + _tail(kernel))
        server = [ln for ln in self.lab.new_log().splitlines() if KERNEL_LOG_ERROR.search(ln)]
        if server:
            found.append("the kernel's stderr: " + "; ".join(server[:5]))
        text = self.widget_text()
        match = re.search(self.entry.errors, text)
        if match:
            line = next((ln for ln in text.splitlines() if match.group(0) in ln), match.group(0))
            found.append(f"the widgets show an error: {line.strip()[:300]!r}")
        if self.page_errors:
            found.append("uncaught browser error: " + "; ".join(self.page_errors[:3]))
        widget_console = [m for m in self.console_errors if WIDGET_CONSOLE.search(m)]
        if widget_console:
            found.append("browser console: " + "; ".join(m[:300] for m in widget_console[:3]))
        if found:
            raise CheckFailed(f"{self.step}: " + "\n".join(found))

    def widget_text(self) -> str:
        try:
            return "\n".join(self.scope.all_inner_texts())
        except Exception:  # noqa: BLE001 - page navigating; nothing to read yet
            return ""

    def wait_for(self, ok, timeout: float, missing: str) -> None:
        """Poll ``ok()`` until true, checking the error channels on every round (an error fails
        at once, not at the timeout); else fail saying what is ``missing`` and what the widgets
        showed instead."""
        t_end = time.time() + timeout
        while True:
            self.fail_on_errors()
            if ok():
                return
            if time.time() > t_end:
                shown = _tail(self.widget_text(), 1500)
                raise CheckFailed(
                    f"{self.step}: {missing} within {timeout:g} s; the widgets show:\n{shown}"
                )
            time.sleep(0.25)

    def run(self) -> dict:
        t0 = time.time()
        self.open_and_run_all()
        run_all_s = round(time.time() - t0, 1)
        for i, step in enumerate(self.entry.steps):
            self.step, t = f"step {i} ({step!r})", time.time()
            self.do(step)
            self.fail_on_errors()
            log(f"  {self.name}: {self.step} ok ({time.time() - t:.1f} s)")
        time.sleep(1.0)  # late errors (a callback still running after the last expectation)
        self.step = "after the last step"
        self.fail_on_errors()
        return {"run_all_s": run_all_s, "steps_s": round(time.time() - t0 - run_all_s, 1)}

    def open_and_run_all(self) -> None:
        page = self.page
        page.goto(self.lab.url(self.copy_name), wait_until="domcontentloaded", timeout=120_000)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        # The status bar reads "<kernel> | Idle" only once the kernel is connected; running cells
        # earlier pops a "Select Kernel" dialog.
        page.locator("[class*='StatusBar']", has_text=re.compile(r"\|\s*Idle")).first.wait_for(
            timeout=120_000
        )
        accept_dialogs(page)
        self.step = "Run All Cells"
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-item:has(.lm-Menu-itemLabel:text-is('Run All Cells'))").click()
        prompts = page.locator(".jp-CodeCell .jp-InputArea-prompt")

        def finished() -> bool:
            accept_dialogs(page)
            texts = prompts.all_inner_texts()
            return bool(texts) and re.search(r"\d", texts[-1]) and not any("*" in t for t in texts)

        self.wait_for(finished, self.entry.run_timeout, "the cells did not all finish")
        marked = page.evaluate(
            """() => {
              const cells = Array.from(document.querySelectorAll('.jp-Notebook .jp-Cell'));
              const at = cells.findIndex(c => c.classList.contains('jp-MarkdownCell') &&
                Array.from(c.querySelectorAll('h1,h2,h3,h4,h5,h6'))
                  .some(h => /^\\s*Explore\\b/.test(h.textContent)));
              if (at < 0) return 0;
              cells.slice(at + 1).forEach(c => c.setAttribute('data-browser-check', 'explore'));
              return cells.length - at - 1;
            }"""
        )
        if not marked:
            raise CheckFailed("no rendered 'Explore' heading followed by cells")
        widgets = page.locator(f"{EXPLORE_SCOPE} .jupyter-widgets")
        self.wait_for(lambda: widgets.count() > 0, 60, "the Explore section shows no widget")
        self.scope.last.scroll_into_view_if_needed()

    def control(self, desc: str):
        """The labelled control (ipywidgets description) or the button with that text."""
        exact = _exact(desc)
        labelled = self.scope.locator(".widget-inline-hbox, .widget-hbox, .widget-vbox").filter(
            has=self.page.locator(":scope > label.widget-label", has_text=exact)
        )
        if labelled.count():
            return labelled.last
        checkbox = self.scope.locator(".widget-checkbox").filter(has_text=exact)
        if checkbox.count():
            return checkbox.last
        return self.scope.locator("button").filter(has_text=exact).last

    def do(self, step) -> None:
        """Act as the step says, or wait (up to its timeout) for what it expects to be shown."""
        if isinstance(step, A.Screenshot):
            self.screenshot(step.name)
        elif isinstance(step, A.Set):
            self.set_value(step.widget, step.value)
        elif isinstance(step, A.Click):
            button = self.scope.locator("button").filter(has_text=_exact(step.widget)).last
            names = [t.strip() for t in self.scope.locator("button").all_inner_texts()]
            missing = f"no enabled button {step.widget!r} (buttons: {names})"
            self.wait_for(lambda: button.count() > 0 and button.is_enabled(), 30, missing)
            button.click()
        else:  # the failure names the step: what it expects is in it
            self.wait_for(lambda: self.shown(step), step.timeout, "not shown")

    def shown(self, step) -> bool:
        """Whether the Explore widgets show what the Expect step expects."""
        if isinstance(step, A.ExpectWidget):
            ctl = self.control(step.widget)
            if not (ctl.count() and ctl.is_visible()):
                return False
            return not step.enabled or ctl.evaluate(ENABLED)  # usable: the callback returned
        if isinstance(step, A.ExpectText):
            return re.search(step.pattern, self.widget_text()) is not None
        if isinstance(step, A.ExpectImage):
            return self.scope.locator("img").evaluate_all(IMAGES_LOADED, step.count)
        return self.scope.locator(step.css).count() >= step.count  # ExpectElement

    def set_value(self, desc: str, value) -> None:
        """Give the control labelled ``desc`` the ``value``, as a person would, per widget kind."""
        ctl = self.control(desc)
        if ctl.count() == 0:
            labels = [x for x in self.scope.locator("label.widget-label").all_inner_texts() if x]
            raise CheckFailed(f"{self.step}: no control labelled {desc!r} (labels: {labels})")
        ctl.scroll_into_view_if_needed()
        cls = ctl.get_attribute("class") or ""
        if "widget-dropdown" in cls or "widget-select" in cls:
            select = ctl.locator("select").first
            options = select.evaluate("s => Array.from(s.options).map(o => o.text)")
            if str(value) not in options:
                raise CheckFailed(f"{self.step}: {desc!r} has no option {value!r} ({options})")
            select.select_option(label=str(value))
            shown = select.evaluate("s => s.options[s.selectedIndex].text")
        elif "widget-slider" in cls:
            readout = ctl.locator(".widget-readout").first
            readout.click()
            self.page.keyboard.press("Control+A")
            self.page.keyboard.type(str(value))
            self.page.keyboard.press("Enter")
            readout.blur()
            shown = readout.inner_text().strip()
            if _number(shown) != _number(value):
                raise CheckFailed(f"{self.step}: slider {desc!r} reads {shown!r}, not {value!r}")
        elif "widget-toggle-buttons" in cls or "widget-radio" in cls:
            tag = "button" if "widget-toggle-buttons" in cls else "label"
            ctl.locator(tag).filter(has_text=_exact(value)).click()
            shown = str(value)
        elif "widget-checkbox" in cls:
            ctl.locator("input[type=checkbox]").set_checked(bool(value))
            shown = str(bool(value))
        else:
            box = ctl.locator("input, textarea").first
            if box.count() == 0:
                raise CheckFailed(f"{self.step}: do not know how to set {desc!r} ({cls})")
            box.fill(str(value))
            if box.evaluate("e => e.tagName") == "INPUT":
                box.press("Enter")
            box.blur()
            shown = box.input_value()
        time.sleep(0.3)  # the change travels to the kernel before the next step
        log(f"  {self.name}: {desc!r} now shows {shown!r}")

    def screenshot(self, name: str) -> None:
        path = self.shots / f"{self.name}__{name}.png"
        # the output area, not the whole cell: the notebook panel scrolls, and a screenshot of an
        # element taller than the panel would be clipped
        area = self.page.locator(f"{EXPLORE_SCOPE} .jp-Cell-outputArea:has(.jupyter-widgets)").last
        try:
            area.scroll_into_view_if_needed(timeout=5000)
            area.screenshot(path=str(path), timeout=30_000)
        except Exception:  # noqa: BLE001 - no widget cell (yet): the viewport then
            self.page.screenshot(path=str(path))


def accept_dialogs(page) -> None:
    """Accept a modal JupyterLab dialog (e.g. "Select Kernel" keeps the preferred kernel)."""
    dialog = page.locator(".jp-Dialog")
    if dialog.count() > 0 and dialog.first.is_visible():
        dialog.first.locator("button.jp-mod-accept").click()
        time.sleep(0.5)


def check_notebook(ctx, lab, name: str, copy: str, entry: A.Explore, shots: Path) -> dict:
    """Run one notebook's entry in a new page of ``ctx``; its timings, or :class:`CheckFailed`
    naming it, with the screenshots ``<name>__FAILED.png`` and ``__FAILED_page.png``."""
    page = ctx.new_page()
    run = NotebookRun(page, lab, name, copy, entry, shots)
    try:
        return run.run()
    except Exception as exc:
        shot = shots / f"{name}__FAILED.png"
        try:
            run.screenshot("FAILED")
            page.screenshot(path=str(shots / f"{name}__FAILED_page.png"))
        except Exception:  # noqa: BLE001
            pass
        noise = [m for m in run.console_errors if not WIDGET_CONSOLE.search(m)]
        extra = f"\n(other browser console errors: {noise[:5]})" if noise else ""
        what = str(exc) if isinstance(exc, CheckFailed) else f"{type(exc).__name__}: {exc}"
        raise CheckFailed(f"{name}: {what}\nscreenshots: {shot} (and _page){extra}") from None
    finally:
        page.close()


# What the report check reads on each page it opens (see report_problems).
READ_PAGE = """() => ({
  images: document.images.length,
  bad_images: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))
    .map(i => (i.getAttribute('src') || '').slice(0, 120)),
  tables: Array.from(document.querySelectorAll('table'), t => ({
    rows: Array.from(t.rows).filter(r => r.cells.length > 0).length,
    height: t.getBoundingClientRect().height})),
  links: Array.from(document.querySelectorAll('a[href]'), a => a.href),
  ids: Array.from(document.querySelectorAll('[id], a[name]'), e => e.id || e.name),
})"""


def report_problems(index: str, pages: dict[str, dict], statuses: dict[str, object]) -> list[str]:
    """What a person would find broken in the report, from what the browser read
    (:data:`READ_PAGE`) on the index at URL ``index`` and on each local page it links (``pages``:
    URL -> what was read) and the status each local link answered (``statuses``): a link that
    did not answer 200, a table of the index without visible rows, a link of the index whose
    ``#fragment`` names no element of its page (the index or an opened one), an image that did
    not decode on any page. Pure, so that its cases are unit-tested without a browser."""
    problems = [f"report: link {u} answered {s}" for u, s in statuses.items() if s != 200]
    for i, table in enumerate(pages[index]["tables"]):
        if table["rows"] == 0 or table["height"] <= 0:
            problems.append(f"report: table #{i + 1} not rendered ({table})")
    for link in pages[index]["links"]:
        target, _, fragment = link.partition("#")
        if fragment and target in pages and unquote(fragment) not in pages[target]["ids"]:
            problems.append(f"report: link {link}: no element with id {unquote(fragment)!r}")
    for url, read in pages.items():
        where = "report" if url == index else url
        problems += [f"{where}: image {src!r} did not load" for src in read["bad_images"]]
    return problems


def check_report(ctx, index: Path, base_url: str, shots: Path) -> dict:
    """Open the report (its outputs tree served at ``base_url``; collapsed sections opened) and
    the local HTML pages it links, fetch each local link, and fail with
    :func:`report_problems` or an uncaught browser error. Screenshot ``report.png``."""
    page = ctx.new_page()
    page_errors, _ = watch(page)
    url = f"{base_url}/{index.parent.name}/{index.name}"
    try:
        pages = {url: read_page(page, url)}
        local = sorted({h.split("#")[0] for h in pages[url]["links"] if h.startswith(base_url)})
        statuses = page.evaluate(
            """async urls => Promise.all(urls.map(u =>
                 fetch(u).then(r => [u, r.status]).catch(e => [u, String(e)])))""",
            local,
        )
        page.screenshot(path=str(shots / "report.png"), full_page=True)
        for sub in (u for u in local if u.endswith(".html") and u != url):
            pages[sub] = read_page(page, sub)
    finally:
        page.close()
    problems = report_problems(url, pages, dict(statuses))
    if page_errors:
        problems.append(f"report: uncaught browser errors {page_errors[:3]}")
    if problems:
        listed = "\n  ".join(problems[:30])
        raise CheckFailed(f"report {index}:\n  {listed}\nscreenshot: {shots}/report.png")
    links = pages[url]["links"]
    return {
        "links": len(links),
        "images": pages[url]["images"],
        "tables": len(pages[url]["tables"]),
        "pages_opened": len(pages),
        "external_not_checked": sum(not h.startswith((base_url, "data:")) for h in links),
    }


def read_page(page, url: str) -> dict:
    """Open ``url`` with its collapsed sections opened and every image loaded (lazy ones load
    when scrolled to: scroll through the page, then wait for them); what :data:`READ_PAGE`
    reads there."""
    page.goto(url, wait_until="load", timeout=60_000)
    page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    height = page.evaluate("() => document.body.scrollHeight")
    for y in range(0, int(height) + 800, 800):
        page.evaluate(f"() => window.scrollTo(0, {y})")
        time.sleep(0.05)
    page.evaluate("() => document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
    try:
        page.wait_for_function(
            "() => Array.from(document.images).every(i => i.complete)", timeout=30_000
        )
    except Exception:  # noqa: BLE001 - READ_PAGE names the stragglers
        pass
    page.evaluate("() => window.scrollTo(0, 0)")
    return page.evaluate(READ_PAGE)


def _number(x) -> float | None:
    try:
        return float(str(x).strip())
    except ValueError:
        return None


def _tail(text: str, n: int = 2500) -> str:
    text = text.strip()
    return text if len(text) <= n else "…" + text[-n:]
