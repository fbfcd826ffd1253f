"""Browser check of the reconstruction explorer (notebook 02, section "Explore").

Proves, in a real Chromium driving a real JupyterLab, that the ipywidgets explorer built by
``prototokens.harness.explore.reconstruction_explorer`` works end to end:

1. the widget renders (a "Train" button shows up after Run All Cells);
2. clicking "Train" runs an optimisation, with the status line / progress bar updating;
3. the output area then shows the coloured token-by-token reconstruction
   (``plots.reconstruction_html``), the "decoded:" paragraph and the curves figure (an <img>).

What it does: copies notebooks/02_optimization.ipynb into a temporary folder (the committed
notebook is never touched), rewrites the copy's ``parameters`` cell so it runs in seconds on CPU
(num_tokens 8, num_texts 2, num_seeds 1, max_steps 30, recipes "paper", interactive True), starts
``jupyter lab`` on a free port with a random token and PROTOTOKENS_OUTPUT_DIR=<tmp>/outputs, opens
the notebook in headless Chromium (Playwright), runs all cells from the Run menu, sets the widget's
"max steps" to a value the batch cells did not use (so Train really trains instead of hitting the
result cache), clicks Train, samples the status line while it trains, and checks the output.
Screenshots go to --out. Exit status 0 means everything was seen; anything else prints why.
The server (and its kernels) are always shut down.

Needs: Debian chromium (/usr/bin/chromium) and the ``playwright`` Python package in some venv
(no ``playwright install``: the system Chromium is used). Run, e.g.:

    /tmp/pwvenv/bin/python ci/check_explorer_browser.py \
        --jupyter /work/main/.venv/bin/jupyter --out /tmp/explorer_shots
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "02_optimization.ipynb"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Fast CPU settings written into the copy's parameters cell.
PARAMS = {
    "num_tokens": "8",
    "num_texts": "2",
    "num_seeds": "1",
    "max_steps": "30",
    "interactive": "True",
    "recipes": '"paper"',
}
TRAIN_STEPS = 12  # != PARAMS["max_steps"], so the explorer's run is not a cache hit


class CheckFailed(Exception):
    pass


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_notebook(dest_dir: Path) -> Path:
    """Copy notebook 02 into dest_dir with fast parameters and no stored outputs."""
    nb = json.loads(NOTEBOOK.read_text())
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise CheckFailed(
            f"expected exactly one 'parameters' cell in {NOTEBOOK}, found {len(cells)}"
        )
    src = "".join(cells[0]["source"])
    for name, value in PARAMS.items():
        src, n = re.subn(
            rf"^({name}\s*(?::[^=]+)?=\s*)[^#\n]*?(\s*(#.*)?)$",
            rf"\g<1>{value}\g<2>",
            src,
            count=1,
            flags=re.M,
        )
        if n != 1:
            raise CheckFailed(f"parameter {name!r} not found in the parameters cell")
    cells[0]["source"] = src.splitlines(keepends=True)
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            c["outputs"], c["execution_count"] = [], None
    if not any("reconstruction_explorer" in "".join(c["source"]) for c in nb["cells"]):
        raise CheckFailed("no cell calls reconstruction_explorer in notebook 02")
    out = dest_dir / NOTEBOOK.name
    out.write_text(json.dumps(nb, indent=1))
    log(f"parameters cell of the copy:\n{src}")
    return out


def children_of(pid: int) -> list[int]:
    """Direct children of pid (from /proc), so kernels in their own sessions can be killed too."""
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(d.name))
            except (OSError, ValueError, IndexError):
                pass
    return kids


def stop_server(proc: subprocess.Popen, base: str, token: str) -> None:
    """Ask the server to shut down (it stops its kernels), then kill what is left, by process
    group."""
    kids = children_of(proc.pid)
    if proc.poll() is None:
        try:
            req = urllib.request.Request(
                f"{base}/api/shutdown", method="POST", headers={"Authorization": f"token {token}"}
            )
            urllib.request.urlopen(req, timeout=10).read()
            proc.wait(timeout=15)
        except Exception as exc:  # noqa: BLE001 - fall through to signals
            log(f"graceful shutdown failed ({exc}); killing")
    for pgid in {proc.pid, *kids}:  # server group, then each kernel's own session
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
                time.sleep(0.5)
            except (ProcessLookupError, PermissionError):
                break
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    log("server stopped")


def wait_ready(base: str, token: str, proc: subprocess.Popen, timeout: float) -> None:
    t_end = time.time() + timeout
    while time.time() < t_end:
        if proc.poll() is not None:
            raise CheckFailed(f"jupyter lab exited early with code {proc.returncode}")
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).read()
            return
        except Exception:  # noqa: BLE001
            time.sleep(0.5)
    raise CheckFailed(f"jupyter lab did not answer within {timeout:.0f} s")


def run_browser(url: str, shots: Path, widget_timeout: float, train_timeout: float) -> dict:
    from playwright.sync_api import TimeoutError as PWTimeout
    from playwright.sync_api import sync_playwright

    timings: dict = {}
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                profile,
                executable_path="/usr/bin/chromium",
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1600},
            )
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            console_errors: list[str] = []
            page.on(
                "console", lambda m: console_errors.append(m.text) if m.type == "error" else None
            )
            try:
                return _drive(page, url, shots, widget_timeout, train_timeout, timings, PWTimeout)
            except Exception:
                try:
                    page.screenshot(path=str(shots / "failure.png"), full_page=True)
                    log(f"failure screenshot: {shots / 'failure.png'}")
                except Exception:  # noqa: BLE001
                    pass
                if console_errors:
                    log("browser console errors:\n  " + "\n  ".join(console_errors[-15:]))
                raise
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def accept_dialogs(page) -> None:
    """Accept any modal JupyterLab dialog (e.g. "Select Kernel" keeps the preferred kernel)."""
    dialog = page.locator(".jp-Dialog")
    if dialog.count() > 0 and dialog.first.is_visible():
        title = dialog.first.locator(".jp-Dialog-header").inner_text()
        log(f"accepting dialog {title!r}")
        dialog.first.locator("button.jp-mod-accept").click()
        time.sleep(0.5)


def _drive(page, url, shots, widget_timeout, train_timeout, timings, PWTimeout) -> dict:
    t0 = time.time()
    page.goto(url, wait_until="domcontentloaded", timeout=120_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    # the kernel must be up before Run All, or the run is queued behind a kernel picker
    # (the toolbar indicator reads "idle" before a kernel exists; the status bar's
    # "<kernel> | Idle" appears only once the kernel is connected. Running cells earlier pops a
    # "Select Kernel" dialog.)
    try:
        page.locator("[class*='StatusBar']", has_text=re.compile(r"\|\s*Idle")).first.wait_for(
            timeout=120_000
        )
    except PWTimeout:
        raise CheckFailed("kernel never became idle (is the 'python3' kernelspec registered?)")
    accept_dialogs(page)
    timings["lab_open_s"] = round(time.time() - t0, 1)
    log(f"notebook open, kernel idle after {timings['lab_open_s']} s; Run > Run All Cells")

    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-item:has(.lm-Menu-itemLabel:text-is('Run All Cells'))").click()
    t1 = time.time()

    train = page.locator("button.jupyter-button", has_text="Train")
    deadline = t1 + widget_timeout
    while True:
        if train.count() > 0:
            break
        accept_dialogs(page)
        errors = page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
            has_text="Traceback",
        )
        if errors.count() > 0:
            raise CheckFailed("a cell raised during Run All:\n" + errors.first.inner_text()[-3000:])
        if time.time() > deadline:
            raise CheckFailed(f"no 'Train' button after {widget_timeout:.0f} s of Run All Cells")
        time.sleep(1)
    timings["run_all_to_widget_s"] = round(time.time() - t1, 1)
    log(f"widget rendered {timings['run_all_to_widget_s']} s after Run All")

    widget = page.locator(".jp-OutputArea-output .widget-vbox").filter(has=train).last
    widget.scroll_into_view_if_needed()
    # wait for the kernel to finish Run All (the explorer cell is the last one)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)

    text_pick = widget.locator(".widget-dropdown", has_text="text").locator("select").first
    picked = text_pick.evaluate("s => s.options[s.selectedIndex].text")
    if picked.startswith("(type your own"):
        text_pick.select_option(index=1)
        picked = text_pick.evaluate("s => s.options[s.selectedIndex].text")
    log(f"text selected: {picked}")

    steps_box = widget.locator(".widget-inline-hbox", has_text="max steps").locator("input")
    steps_box.fill(str(TRAIN_STEPS))
    steps_box.press("Enter")
    steps_box.blur()
    time.sleep(0.5)
    widget.screenshot(path=str(shots / "01_widget_before_train.png"))
    page.screenshot(path=str(shots / "01_page_before_train.png"), full_page=True)

    status = widget.locator(".widget-html-content").last
    bar = widget.locator(".progress-bar").first
    log(f"clicking Train (max steps {TRAIN_STEPS})")
    t2 = time.time()
    train.click()
    samples: list[tuple[float, str, str]] = []
    final = None
    while time.time() - t2 < train_timeout:
        s = status.inner_text()
        b = bar.get_attribute("style") or ""
        if not samples or samples[-1][1:] != (s, b):
            samples.append((round(time.time() - t2, 2), s, b))
        if re.search(r"after \d+ steps", s) or "Error" in s:
            final = s
            break
        time.sleep(0.1)
    timings["train_click_to_done_s"] = round(time.time() - t2, 1)
    progress_lines = [x for x in samples if x[1].startswith("step ")]
    log(f"status samples ({len(samples)} distinct, {len(progress_lines)} 'step k/n' lines):")
    for x in samples[:40]:
        log(f"  t+{x[0]:>5}s  {x[1]!r}  bar[{x[2]}]")
    if final is None:
        raise CheckFailed(
            f"status never showed 'after N steps' within {train_timeout:.0f} s "
            f"(last: {samples[-1][1] if samples else ''!r})"
        )
    if "Error" in final:
        raise CheckFailed(f"the explorer reported an error: {final}")
    n_steps = int(re.search(r"after (\d+) steps", final).group(1))
    if not 1 <= n_steps <= TRAIN_STEPS:
        raise CheckFailed(f"status says {n_steps} steps; expected 1..{TRAIN_STEPS}")
    log(f"final status: {final!r} ({timings['train_click_to_done_s']} s after click)")

    out = widget.locator(".widget-output")
    try:
        out.locator("img").first.wait_for(timeout=30_000)
    except PWTimeout:
        pass
    out_text = out.inner_text()
    problems = []
    if not re.search(r"\d+/\d+\s*tokens correct in one forward pass", out_text):
        problems.append("no 'k/N tokens correct in one forward pass' header")
    spans = out.locator("span[style*='background']")
    n_spans = spans.count()
    if n_spans == 0:
        problems.append("no coloured token spans")
    colours = (
        set(spans.evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)"))
        if n_spans
        else set()
    )
    if "decoded:" not in out_text:
        problems.append("no 'decoded:' paragraph")
    imgs = out.locator("img")
    img_ok = imgs.count() > 0 and imgs.first.evaluate("i => i.complete && i.naturalWidth > 0")
    if not img_ok:
        problems.append("no rendered <img> (curves figure)")
    out.scroll_into_view_if_needed()
    time.sleep(0.3)
    widget.screenshot(path=str(shots / "02_widget_after_train.png"))
    page.screenshot(path=str(shots / "02_page_after_train.png"), full_page=True)
    if problems:
        raise CheckFailed(
            "output area incomplete: "
            + "; ".join(problems)
            + f"\noutput text (head):\n{out_text[:800]}\n..."
            + f"\noutput text (tail):\n{out_text[-2500:]}"
        )
    head = re.search(r"\d+/\d+\s*tokens correct in one forward pass", out_text).group(0)
    decoded = next((ln for ln in out_text.splitlines() if ln.startswith("decoded:")), "")
    size = imgs.first.evaluate("i => i.naturalWidth + 'x' + i.naturalHeight")
    log(f"output: {head}; {n_spans} coloured spans {sorted(colours)}; {decoded}; curves img {size}")
    timings["status_samples"] = len(samples)
    timings["live_progress_updates"] = len(progress_lines)
    return timings


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--jupyter",
        default=shutil.which("jupyter") or "jupyter",
        help="the jupyter executable of the project venv (its python3 kernel runs the notebook)",
    )
    ap.add_argument("--out", default="/tmp/explorer_shots", help="folder for the screenshots")
    ap.add_argument(
        "--widget-timeout", type=float, default=600, help="seconds from Run All to the widget"
    )
    ap.add_argument(
        "--train-timeout", type=float, default=300, help="seconds from Train to the final status"
    )
    ap.add_argument(
        "--threads", type=int, default=1, help="OMP/MKL threads for the kernel (shared CPUs)"
    )
    ap.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (notebook, outputs, log)"
    )
    args = ap.parse_args()

    if not Path("/usr/bin/chromium").exists():
        print("FAIL: /usr/bin/chromium missing (apt-get install -y chromium)", file=sys.stderr)
        return 2
    try:
        import playwright  # noqa: F401
    except ImportError:
        print(
            "FAIL: the playwright Python package is not importable from this interpreter",
            file=sys.stderr,
        )
        return 2
    shots = Path(args.out)
    shots.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="explorer-check-"))
    port, token = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    proc = None
    t_start = time.time()
    try:
        nb = prepare_notebook(tmp)
        env = dict(os.environ, PROTOTOKENS_OUTPUT_DIR=str(tmp / "outputs"))
        # keep the kernel lean on a shared machine (torch reads these at import)
        env.update({k: str(args.threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
        cmd = [
            args.jupyter,
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--ServerApp.token={token}",
            f"--ServerApp.root_dir={tmp}",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        if os.geteuid() == 0:  # containers/CI run as root; jupyter refuses that without the flag
            cmd.append("--allow-root")
        server_log = open(tmp / "jupyter.log", "w")
        log(f"starting jupyter lab on port {port} (root {tmp})")
        proc = subprocess.Popen(
            cmd,
            cwd=tmp,
            env=env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_ready(base, token, proc, timeout=120)
        log(f"server up after {time.time() - t_start:.1f} s")
        timings = run_browser(
            f"{base}/lab/tree/{nb.name}?token={token}",
            shots,
            args.widget_timeout,
            args.train_timeout,
        )
        timings["total_s"] = round(time.time() - t_start, 1)
        log(f"PASS {json.dumps(timings)}")
        log(f"screenshots in {shots}: {sorted(p.name for p in shots.glob('*.png'))}")
        return 0
    except CheckFailed as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - any Playwright/IO error is a failed check
        print(f"FAIL: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if proc is not None:
            stop_server(proc, base, token)
            tail = (
                (tmp / "jupyter.log").read_text()[-1500:] if (tmp / "jupyter.log").exists() else ""
            )
            if "Traceback" in tail:
                log(f"jupyter log tail:\n{tail}")
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
