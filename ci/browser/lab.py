"""Servers for the browser check: JupyterLab (free port, random token, settings and workspaces of
its own, the kernel error hook) and a static HTTP server for the report. Both always shut down.

The kernel error hook: ``IPYTHONDIR`` points at a profile whose startup file wraps
``InteractiveShell.showtraceback``, which ipywidgets calls when a widget callback raises (and the
Output widget when an exception leaves its ``with`` block). Each traceback is appended to a file
the driver reads: JupyterLab shows such errors only in its log console, not in a cell.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import secrets
import socket
import subprocess
import threading
import time
import urllib.request
from contextlib import contextmanager, suppress
from pathlib import Path

_HOOK = """\
# Installed by ci/browser/lab.py: record every traceback the kernel shows (widget callbacks too).
import os, traceback
from IPython.core.interactiveshell import InteractiveShell

_show = InteractiveShell.showtraceback

def _record(self, *args, **kwargs):
    try:
        with open(os.environ["PROTOTOKENS_BROWSER_ERRORS"], "a", encoding="utf-8") as fh:
            fh.write("".join(traceback.format_exc()) + "\\n----\\n")
    except Exception:
        pass
    return _show(self, *args, **kwargs)

InteractiveShell.showtraceback = _record
"""

# JupyterLab user settings: every cell stays in the DOM (no virtual scrolling), no news or update
# checks (the network is closed).
_SETTINGS = {
    "notebook-extension/tracker": {"windowingMode": "none"},
    "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}
NO_UPDATE_CHECK = "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"


class JupyterLab:
    """``with JupyterLab(jupyter, root, env) as lab:`` serves ``root``; ``lab.url(path)``."""

    def __init__(self, jupyter: str, root: Path, env: dict):
        self.jupyter, self.root, self.token = jupyter, Path(root), secrets.token_hex(16)
        with socket.socket() as s:  # a free port
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.state = self.root / ".browser-check"
        self.errors_file = self.state / "kernel_errors.log"
        self.log_file = self.state / "jupyter.log"
        self._log_offset = 0
        # one thread per kernel: the machine is shared (torch reads these at import)
        self.env = dict(os.environ, **env, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.env.update(
            IPYTHONDIR=str(self.state / "ipython"),
            JUPYTERLAB_SETTINGS_DIR=str(self.state / "lab-settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(self.state / "lab-workspaces"),
            PROTOTOKENS_BROWSER_ERRORS=str(self.errors_file),
        )

    def url(self, path: str) -> str:
        """The notebook in a workspace of its own, reset: JupyterLab would otherwise restore the
        tabs of the notebook checked before (and start their kernels again)."""
        workspace = "".join(c if c.isalnum() else "-" for c in Path(path).stem)
        return f"{self.base}/lab/workspaces/{workspace}/tree/{path}?reset&token={self.token}"

    def api(self, method: str, path: str, timeout: float = 10) -> bytes:
        headers = {"Authorization": f"token {self.token}"}
        req = urllib.request.Request(f"{self.base}/api/{path}", method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            return answer.read()

    def __enter__(self) -> JupyterLab:
        startup = self.state / "ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True, exist_ok=True)
        (startup / "00-browser-check.py").write_text(_HOOK)
        for name, body in _SETTINGS.items():
            path = self.state / "lab-settings" / f"@jupyterlab/{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(body))
        (self.state / "lab-workspaces").mkdir(exist_ok=True)
        self.errors_file.write_text("")
        cmd = [self.jupyter, "lab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}"]
        cmd += [f"--ServerApp.token={self.token}", f"--ServerApp.root_dir={self.root}"]
        cmd += ["--LabApp.news_url=", NO_UPDATE_CHECK]
        if os.geteuid() == 0:  # CI runs as root; jupyter refuses that without the flag
            cmd.append("--allow-root")
        with open(self.log_file, "w") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=self.root, env=self.env, stdout=log, stderr=log, start_new_session=True
            )
        t_end = time.time() + 120
        while self.proc.poll() is None and time.time() < t_end:
            with suppress(Exception):  # not up yet
                self.api("GET", "status", timeout=2)
                return self
            time.sleep(0.5)
        self.__exit__()
        log, code = self.log_file.read_text(errors="replace")[-3000:], self.proc.returncode
        raise RuntimeError(f"jupyter lab did not answer (exit code {code}, 120 s):\n{log}")

    def new_log(self) -> str:
        """Server (and kernel stderr) log written since the last call."""
        text = self.log_file.read_text(errors="replace")
        new, self._log_offset = text[self._log_offset :], len(text)
        return new

    def kernel_errors(self) -> str:
        """Tracebacks recorded by the kernel hook so far (see the module docstring)."""
        return self.errors_file.read_text(errors="replace")

    def shutdown_kernels(self) -> None:
        """Stop every running kernel (between notebooks: frees the memory of the last one)."""
        try:
            for kernel in json.loads(self.api("GET", "kernels")):
                self.api("DELETE", f"kernels/{kernel['id']}", timeout=30)
        except Exception:  # noqa: BLE001 - best effort; __exit__ kills what is left
            pass

    def __exit__(self, *exc) -> None:
        """SIGTERM: jupyter_server shuts its kernels down and exits; SIGKILL if it hangs (its
        kernels then exit by themselves: ipykernel polls its parent process)."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request log on stderr
        pass


@contextmanager
def static_server(folder: Path):
    """``with static_server(folder) as base:`` serves ``folder`` at the URL ``base`` (a thread)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{httpd.server_address[1]}"
        finally:
            httpd.shutdown()
