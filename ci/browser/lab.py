"""Servers for the browser check: JupyterLab (free port, random token, isolated settings, kernel
error hook) and a tiny static HTTP server for the report. Both always shut down.

The kernel error hook: ``IPYTHONDIR`` points at a temporary profile whose startup file wraps
``InteractiveShell.showtraceback``, which ipywidgets calls when a widget callback raises (and the
Output widget when an exception leaves its ``with`` block). Every traceback is appended to the
file named by ``PROTOTOKENS_BROWSER_ERRORS``, so the driver sees callback errors even when the
frontend shows them nowhere (JupyterLab sends them to its log console, not to a cell).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

ERRORS_ENV = "PROTOTOKENS_BROWSER_ERRORS"

_HOOK = """\
# Installed by ci/browser/lab.py: record every traceback the kernel shows (widget callbacks too).
import os, traceback
from IPython.core.interactiveshell import InteractiveShell

_show = InteractiveShell.showtraceback

def _record(self, *args, **kwargs):
    try:
        with open(os.environ["{env}"], "a", encoding="utf-8") as fh:
            fh.write("".join(traceback.format_exc()) + "\\n----\\n")
    except Exception:
        pass
    return _show(self, *args, **kwargs)

InteractiveShell.showtraceback = _record
""".replace("{env}", ERRORS_ENV)

# JupyterLab user settings for the check: every cell stays in the DOM (no virtual scrolling), no
# news or update checks (the network is closed).
_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


class ServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    """Direct children of pid (from /proc): kernels run in their own sessions."""
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


class JupyterLab:
    """``with JupyterLab(jupyter, root, env) as lab:`` serves ``root``; ``lab.url(path)``."""

    def __init__(self, jupyter: str, root: Path, env: dict | None = None, threads: int = 1):
        self.jupyter, self.root = jupyter, Path(root)
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.state = self.root / ".browser-check"
        self.errors_file = self.state / "kernel_errors.log"
        self.log_file = self.state / "jupyter.log"
        self.env = dict(os.environ, **(env or {}))
        # one thread per kernel: the machine is shared (torch reads these at import)
        self.env.update({k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
        self.proc: subprocess.Popen | None = None
        self._log_offset = 0

    def url(self, path: str) -> str:
        """The notebook in a workspace of its own, reset: JupyterLab would otherwise restore the
        tabs of the notebook checked before (and start their kernels again)."""
        workspace = "".join(c if c.isalnum() else "-" for c in Path(path).stem)
        return f"{self.base}/lab/workspaces/{workspace}/tree/{path}?reset&token={self.token}"

    def _prepare_state(self) -> None:
        ipy = self.state / "ipython" / "profile_default" / "startup"
        ipy.mkdir(parents=True, exist_ok=True)
        (ipy / "00-browser-check.py").write_text(_HOOK)
        settings = self.state / "lab-settings"
        for rel, body in _SETTINGS.items():
            path = settings / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(body))
        (self.state / "lab-workspaces").mkdir(exist_ok=True)
        self.errors_file.write_text("")
        self.env.update(
            {
                "IPYTHONDIR": str(self.state / "ipython"),
                "JUPYTERLAB_SETTINGS_DIR": str(settings),
                "JUPYTERLAB_WORKSPACES_DIR": str(self.state / "lab-workspaces"),
                ERRORS_ENV: str(self.errors_file),
            }
        )

    def __enter__(self) -> "JupyterLab":
        self._prepare_state()
        cmd = [
            self.jupyter,
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            f"--ServerApp.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        if os.geteuid() == 0:  # CI runs as root; jupyter refuses that without the flag
            cmd.append("--allow-root")
        log = open(self.log_file, "w")
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.root,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_ready(120)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        t_end = time.time() + timeout
        while time.time() < t_end:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"jupyter lab exited with code {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2)
                return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.5)
        raise ServerError(f"jupyter lab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def new_log(self) -> str:
        """Server (and kernel stderr) log written since the last call."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        new, self._log_offset = text[self._log_offset :], len(text)
        return new

    def kernel_errors(self) -> str:
        """Tracebacks recorded by the kernel hook so far (see module docstring)."""
        try:
            return self.errors_file.read_text(errors="replace")
        except OSError:
            return ""

    def shutdown_kernels(self) -> None:
        """Stop every running kernel (between notebooks: frees the memory of the last one)."""
        headers = {"Authorization": f"token {self.token}"}
        try:
            req = urllib.request.Request(f"{self.base}/api/kernels", headers=headers)
            kernels = json.loads(urllib.request.urlopen(req, timeout=10).read())
            for k in kernels:
                req = urllib.request.Request(
                    f"{self.base}/api/kernels/{k['id']}", method="DELETE", headers=headers
                )
                urllib.request.urlopen(req, timeout=30).read()
        except Exception:  # noqa: BLE001 - best effort; __exit__ kills what is left
            pass

    def __exit__(self, *exc) -> None:
        proc = self.proc
        if proc is None:
            return
        kids = _children(proc.pid)
        if proc.poll() is None:
            try:
                req = urllib.request.Request(
                    f"{self.base}/api/shutdown",
                    method="POST",
                    headers={"Authorization": f"token {self.token}"},
                )
                urllib.request.urlopen(req, timeout=10).read()
                proc.wait(timeout=15)
            except Exception:  # noqa: BLE001 - fall through to signals
                pass
        for pgid in {proc.pid, *kids}:  # the server's group, then each kernel's own session
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(pgid, sig)
                    time.sleep(0.3)
                except (ProcessLookupError, PermissionError):
                    break
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request log on stderr
        pass


class StaticServer:
    """``with StaticServer(folder) as base:`` serves ``folder`` at ``base`` (a thread)."""

    def __init__(self, folder: Path):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
