"""The Playwright part: open a notebook copy in JupyterLab, Run All Cells, operate its Explore
widgets as the table says, read every error channel; then the report page. Screenshots go to the
output folder; every failure names the notebook, the step (widget) and what was missing.

Error channels read after every step (any of them fails the check):
- a traceback in any output area, an Output widget included (a cell or a callback raised);
- the kernel's tracebacks recorded by the hook of :mod:`ci.browser.lab` (a callback raised and
  ipywidgets showed it only in JupyterLab's log console);
- "Exception in comm" / tracebacks from the kernel's stderr in the server log;
- the widget text matching ``Explore.errors`` (a callback caught its exception and printed it);
- an uncaught JavaScript error in the page, or a console error from the widget manager.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ci.browser.actions import (
    Click,
    ExpectElement,
    ExpectImage,
    ExpectText,
    ExpectWidget,
    Explore,
    Screenshot,
    Set,
)
from ci.browser.pages import check_page, external_links

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
EXPLORE_SCOPE = ".jp-Cell[data-browser-check='explore']"
# Console errors that mean a widget failed to render or sync (other console noise is logged only).
WIDGET_CONSOLE = re.compile(r"widget|comm|Could not create|Error rendering|Traceback", re.I)
# Server-log lines from the kernel's stderr that mean a comm (widget) message handler raised
# (ipykernel logs them so). A bare "Traceback" in that log is not counted: the server writes its
# own there (e.g. a websocket to a kernel shut down after the previous notebook); tracebacks the
# kernel shows are caught by the hook of ci.browser.lab.
KERNEL_LOG_ERROR = re.compile(r"Exception in (comm|message handler)")


class CheckFailed(Exception):
    """One notebook (or the report) failed; the message says which widget and what was missing."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


@dataclass
class Browser:
    """One headless Chromium for the whole check (a fresh profile, closed network flags)."""

    profile_dir: Path
    pw: object = None
    ctx: object = None

    def __enter__(self) -> "Browser":
        from playwright.sync_api import sync_playwright

        self.pw = sync_playwright().start()
        self.ctx = self.pw.chromium.launch_persistent_context(
            str(self.profile_dir),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 2000},
        )
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.ctx.close()
        finally:
            self.pw.stop()


@dataclass
class Watch:
    """What the page and the kernel reported so far (console listeners fill the lists)."""

    page_errors: list = field(default_factory=list)
    console_errors: list = field(default_factory=list)

    def attach(self, page) -> None:
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on(
            "console",
            lambda m: self.console_errors.append(m.text) if m.type == "error" else None,
        )


# --------------------------------------------------------------------------- notebook check


class NotebookRun:
    """Drives one notebook copy; ``run()`` raises :class:`CheckFailed` on the first problem."""

    def __init__(self, page, lab, name: str, copy_name: str, entry: Explore, shots: Path):
        self.page, self.lab, self.name, self.entry, self.shots = page, lab, name, entry, shots
        self.copy_name = copy_name
        self.watch = Watch()
        self.watch.attach(page)
        self.scope = page.locator(f"{EXPLORE_SCOPE} .jp-Cell-outputArea")
        self.errors_seen = len(lab.kernel_errors())
        lab.new_log()
        self.timings: dict = {}
        self.step = "opening the notebook"

    # -- errors ---------------------------------------------------------------------------

    def errors(self) -> list[str]:
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
        if self.watch.page_errors:
            found.append("uncaught browser error: " + "; ".join(self.watch.page_errors[:3]))
        widget_console = [m for m in self.watch.console_errors if WIDGET_CONSOLE.search(m)]
        if widget_console:
            found.append("browser console: " + "; ".join(m[:300] for m in widget_console[:3]))
        return found

    def fail_on_errors(self) -> None:
        found = self.errors()
        if found:
            raise CheckFailed(f"{self.step}: " + "\n".join(found))

    def widget_text(self) -> str:
        try:
            return "\n".join(self.scope.all_inner_texts())
        except Exception:  # noqa: BLE001 - page navigating; nothing to read yet
            return ""

    def wait_for(self, ok, timeout: float, missing: str, shown=None) -> None:
        """Poll ``ok()`` (errors checked too) until true, else fail saying what is ``missing``
        (and, with ``shown``, a callable, what the widgets showed instead)."""
        t_end = time.time() + timeout
        while True:
            self.fail_on_errors()
            if ok():
                return
            if time.time() > t_end:
                instead = f"; the widgets show:\n{_tail(shown(), 1500)}" if shown else ""
                raise CheckFailed(f"{self.step}: {missing} within {timeout:g} s{instead}")
            time.sleep(0.25)

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> dict:
        t0 = time.time()
        self.open_and_run_all()
        self.timings["run_all_s"] = round(time.time() - t0, 1)
        for i, step in enumerate(self.entry.steps):
            self.step = f"step {i} ({step.describe()})"
            t = time.time()
            self.do(step)
            self.fail_on_errors()
            log(f"  {self.name}: {self.step} ok ({time.time() - t:.1f} s)")
        time.sleep(1.0)  # late errors (a callback still running after the last expectation)
        self.step = "after the last step"
        self.fail_on_errors()
        self.timings["steps_s"] = round(time.time() - t0 - self.timings["run_all_s"], 1)
        return self.timings

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
        self.wait_for(
            lambda: page.locator(f"{EXPLORE_SCOPE} .jupyter-widgets").count() > 0,
            60,
            "the Explore section shows no widget",
        )
        self.scope.last.scroll_into_view_if_needed()

    # -- steps -----------------------------------------------------------------------------

    def control(self, desc: str):
        """The labelled control (ipywidgets description) or the button with that text."""
        exact = re.compile(rf"^\s*{re.escape(desc)}\s*$")
        page = self.page
        labelled = self.scope.locator(".widget-inline-hbox, .widget-hbox, .widget-vbox").filter(
            has=page.locator(":scope > label.widget-label", has_text=exact)
        )
        if labelled.count():
            return labelled.last
        checkbox = self.scope.locator(".widget-checkbox").filter(has_text=exact)
        if checkbox.count():
            return checkbox.last
        return self.scope.locator("button").filter(has_text=exact).last

    def do(self, step) -> None:
        page, timeout = self.page, getattr(step, "timeout", 30.0)
        if isinstance(step, Screenshot):
            self.screenshot(step.name)
        elif isinstance(step, ExpectWidget):

            def shown() -> bool:
                ctl = self.control(step.widget)
                if not (ctl.count() > 0 and ctl.is_visible()):
                    return False
                return not step.enabled or _enabled(ctl)

            state = "enabled " if step.enabled else ""
            self.wait_for(shown, timeout, f"no {state}widget {step.widget!r} shown")
        elif isinstance(step, Click):
            button = self.scope.locator("button").filter(
                has_text=re.compile(rf"^\s*{re.escape(step.widget)}\s*$")
            )
            self.wait_for(
                lambda: button.count() > 0 and button.last.is_enabled(),
                30,
                f"no enabled button {step.widget!r} (buttons: {self.buttons()})",
            )
            button.last.click()
        elif isinstance(step, Set):
            self.set_value(step.widget, step.value)
        elif isinstance(step, ExpectText):
            self.wait_for(
                lambda: re.search(step.pattern, self.widget_text()) is not None,
                timeout,
                f"the widgets did not show {step.what or 'the text'} (/{step.pattern}/)",
                shown=self.widget_text,
            )
        elif isinstance(step, ExpectImage):
            imgs = self.scope.locator("img")

            def loaded() -> bool:
                n = imgs.count()
                return n >= step.count and all(
                    imgs.nth(i).evaluate(
                        "i => i.complete && i.naturalWidth > 0"
                        " && i.getBoundingClientRect().width > 0"
                    )
                    for i in range(n)
                )

            self.wait_for(
                loaded, timeout, f"{step.what}: fewer than {step.count} loaded image(s) shown"
            )
        elif isinstance(step, ExpectElement):
            els = self.scope.locator(step.css)
            self.wait_for(
                lambda: els.count() >= step.count,
                timeout,
                f"fewer than {step.count} {step.what or step.css} shown (saw {els.count()})",
            )
        else:  # pragma: no cover - check_table rejects anything else
            raise CheckFailed(f"unknown step {step!r}")
        del page

    def buttons(self) -> list[str]:
        return [t.strip() for t in self.scope.locator("button").all_inner_texts()]

    def set_value(self, desc: str, value) -> None:
        ctl = self.control(desc)
        if ctl.count() == 0:
            labels = self.scope.locator("label.widget-label").all_inner_texts()
            raise CheckFailed(
                f"{self.step}: no control labelled {desc!r} (labels: {[x for x in labels if x]})"
            )
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
            page = self.page
            page.keyboard.press("Control+A")
            page.keyboard.type(str(value))
            page.keyboard.press("Enter")
            readout.blur()
            shown = readout.inner_text().strip()
            if _number(shown) != _number(value):
                raise CheckFailed(f"{self.step}: slider {desc!r} reads {shown!r}, not {value!r}")
        elif "widget-toggle-buttons" in cls:
            ctl.locator("button").filter(
                has_text=re.compile(rf"^\s*{re.escape(str(value))}\s*$")
            ).click()
            shown = str(value)
        elif "widget-radio" in cls:
            ctl.locator("label").filter(
                has_text=re.compile(rf"^\s*{re.escape(str(value))}\s*$")
            ).click()
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

    def screenshot(self, name: str) -> Path:
        path = self.shots / f"{self.name}__{name}.png"
        # the output area, not the whole cell: the notebook panel scrolls, and a screenshot of an
        # element taller than the panel would be clipped
        area = self.page.locator(f"{EXPLORE_SCOPE} .jp-Cell-outputArea:has(.jupyter-widgets)").last
        try:
            area.scroll_into_view_if_needed(timeout=5000)
            area.screenshot(path=str(path), timeout=30_000)
        except Exception:  # noqa: BLE001 - no widget cell (yet): the viewport then
            self.page.screenshot(path=str(path))
        return path


def accept_dialogs(page) -> None:
    """Accept a modal JupyterLab dialog (e.g. "Select Kernel" keeps the preferred kernel)."""
    dialog = page.locator(".jp-Dialog")
    if dialog.count() > 0 and dialog.first.is_visible():
        dialog.first.locator("button.jp-mod-accept").click()
        time.sleep(0.5)


def check_notebook(browser: Browser, lab, name: str, copy: str, entry: Explore, shots: Path):
    """Run one notebook's table; returns its timings, raises :class:`CheckFailed` naming it."""
    page = browser.ctx.new_page()
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
        noise = [m for m in run.watch.console_errors if not WIDGET_CONSOLE.search(m)]
        extra = f"\n(other browser console errors: {noise[:5]})" if noise else ""
        what = str(exc) if isinstance(exc, CheckFailed) else f"{type(exc).__name__}: {exc}"
        raise CheckFailed(f"{name}: {what}\nscreenshots: {shot} (and _page){extra}") from None
    finally:
        page.close()


# --------------------------------------------------------------------------- the report


def check_report(browser: Browser, index: Path, base_url: str, shots: Path) -> dict:
    """Open the report (served over HTTP from its outputs tree at ``base_url``): every link
    answers 200, every image decodes, every table has visible rows; each local HTML page it
    links is opened too and its images checked. Screenshot ``report.png``."""
    scan, problems = check_page(index)
    ext = external_links(scan)
    page = browser.ctx.new_page()
    watch = Watch()
    watch.attach(page)
    url = f"{base_url}/{index.parent.name}/{index.name}"
    try:
        page.goto(url, wait_until="load", timeout=60_000)
        _open_all_sections(page)
        _load_all_images(page)
        problems += _image_problems(page, "report")
        tables = page.evaluate(
            """() => Array.from(document.querySelectorAll('table')).map(t => ({
                 rows: Array.from(t.rows).filter(r => r.cells.length > 0).length,
                 height: t.getBoundingClientRect().height}))"""
        )
        for i, t in enumerate(tables):
            if t["rows"] == 0 or t["height"] <= 0:
                problems.append(f"report: table #{i + 1} not rendered ({t})")
        hrefs = page.evaluate(
            "() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"
        )
        local = sorted({h.split("#")[0] for h in hrefs if h.startswith(base_url)})
        statuses = page.evaluate(
            """async urls => Promise.all(urls.map(u =>
                 fetch(u).then(r => [u, r.status]).catch(e => [u, String(e)])))""",
            local,
        )
        problems += [f"report: link {u} answered {s}" for u, s in statuses if s != 200]
        page.screenshot(path=str(shots / "report.png"), full_page=True)
        for sub in (u for u in local if u.endswith(".html") and u != url):
            page.goto(sub, wait_until="load", timeout=60_000)
            _load_all_images(page)
            problems += _image_problems(page, sub.removeprefix(base_url + "/"))
        if watch.page_errors:
            problems.append(f"report: uncaught browser errors {watch.page_errors[:3]}")
    finally:
        page.close()
    if problems:
        raise CheckFailed(
            "report " + str(index) + ":\n  " + "\n  ".join(problems[:30]) + f"\nscreenshot: "
            f"{shots / 'report.png'}"
        )
    return {
        "links": len(scan.links),
        "images": len(scan.images),
        "tables": len(scan.tables),
        "pages_opened": 1 + sum(u.endswith(".html") for u in local if u != url),
        "external_not_checked": len(ext),
    }


def _open_all_sections(page, limit: int = 500) -> None:
    """Open every collapsed ``<details>`` by clicking its summary, as a reader would. The set of
    closed sections shrinks as they open (and nested ones appear), so take the first visible
    closed one each time rather than indexing a list fixed in advance."""
    closed = page.locator("details:not([open]) > summary").filter(visible=True)
    for _ in range(limit):
        if closed.count() == 0:
            return
        closed.first.click()
    raise CheckFailed(f"report: more than {limit} collapsed sections, or one does not open")


def _load_all_images(page) -> None:
    """Lazy images load when scrolled to: scroll through the page, then wait for them."""
    height = page.evaluate("() => document.body.scrollHeight")
    for y in range(0, int(height) + 800, 800):
        page.evaluate(f"() => window.scrollTo(0, {y})")
        time.sleep(0.05)
    page.evaluate("() => document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
    try:
        page.wait_for_function(
            "() => Array.from(document.images).every(i => i.complete)", timeout=30_000
        )
    except Exception:  # noqa: BLE001 - the per-image check below names the stragglers
        pass
    page.evaluate("() => window.scrollTo(0, 0)")


def _image_problems(page, where: str) -> list[str]:
    bad = page.evaluate(
        """() => Array.from(document.images)
             .filter(i => !(i.complete && i.naturalWidth > 0))
             .map(i => (i.getAttribute('src') || '').slice(0, 120))"""
    )
    return [f"{where}: image {src!r} did not load" for src in bad]


def _enabled(ctl) -> bool:
    """A control (or its input, select, button) that a person can use now."""
    return ctl.evaluate(
        """e => { const t = e.matches('button, input, select, textarea') ? e
                  : e.querySelector('button, input, select, textarea');
                  return !t || !t.disabled; }"""
    )


def _number(x) -> float | None:
    try:
        return float(str(x).strip())
    except ValueError:
        return None


def _tail(text: str, n: int = 2500) -> str:
    text = text.strip()
    return text if len(text) <= n else "…" + text[-n:]
