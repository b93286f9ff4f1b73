"""A JupyterLab server for the browser tests: local, token-protected, always stopped.

The server runs on 127.0.0.1 on a free port with a random token, in a folder of its own, with
its own Jupyter config, data, runtime and settings folders (so nothing of the machine's user
leaks in and the test leaves nothing behind), ``--allow-root`` (CI runs as root) and
``HW_PROFILE=ci`` so its kernels run the small CI profile. Its kernels use one thread each
(``OMP_NUM_THREADS=1``): a notebook running while *Validate* runs it again in a second kernel,
beside chromium, would otherwise oversubscribe the two cores of the CI machine (measured: the
hw2 solved-notebook test took 47 s with PyTorch's default threads, 15 s with one). Its log goes
to a file that the browser conftest prints when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

STARTUP_TIMEOUT_S = 90
SHUTDOWN_TIMEOUT_S = 15

# Settings of a fresh user who has answered JupyterLab's "fetch news?" question with no, so no
# toast covers the screenshots and nothing tries to reach the internet.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


class LabServer(NamedTuple):
    """A running server: ``url("lab/tree/x.ipynb")`` gives a page address with the token."""

    root: Path
    port: int
    token: str
    log: Path
    process: subprocess.Popen

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def url(self, path: str = "lab") -> str:
        separator = "&" if "?" in path else "?"
        return f"{self.base}{path}{separator}token={self.token}"

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class LabServerError(RuntimeError):
    """The server did not come up; the message holds the end of its log."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _write_settings(settings_dir: Path) -> None:
    for relative, values in LAB_SETTINGS.items():
        path = settings_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _answers(server: LabServer) -> bool:
    try:
        with urllib.request.urlopen(server.url("api/status"), timeout=2) as reply:
            return reply.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _wait_until_up(server: LabServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise LabServerError(
                f"jupyter lab exited with {server.process.returncode} before answering:\n"
                f"{server.log_tail()}"
            )
        if _answers(server):
            return
        time.sleep(0.2)
    raise LabServerError(
        f"jupyter lab did not answer within {STARTUP_TIMEOUT_S} s:\n{server.log_tail()}"
    )


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (read from Linux's /proc; none found elsewhere)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(stat.parent.name))
    return found


def _stop(server: LabServer) -> None:
    """Shut down through the API (which stops the kernels); if the server does not exit, kill it
    and its kernels (each kernel runs in a session of its own)."""
    if server.process.poll() is not None:
        return
    request = urllib.request.Request(server.url("api/shutdown"), method="POST")
    with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
        urllib.request.urlopen(request, timeout=5).close()
    try:
        server.process.wait(SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        for group in [*_children(server.process.pid), server.process.pid]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        server.process.wait()


class LabSpec(NamedTuple):
    """What a server serves: ``root`` (also its working directory, where nbgrader reads a
    course's ``nbgrader_config.py``), ``state`` (its config, data, settings and log), the user's
    own ``nbgrader_config`` (``~/.jupyter/nbgrader_config.py`` on a real machine: e.g. the
    exchange root) and extra environment variables."""

    root: Path
    state: Path
    nbgrader_config: str = ""
    env: Mapping[str, str] | None = None


def _start(spec: LabSpec) -> LabServer:
    root, state = Path(spec.root).resolve(), Path(spec.state).resolve()
    for name in ("config", "data", "runtime", "settings", "workspaces"):
        (state / name).mkdir(parents=True, exist_ok=True)
    _write_settings(state / "settings")
    (state / "config" / "nbgrader_config.py").write_text(spec.nbgrader_config)
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("MPLBACKEND", "JUPYTER_PLATFORM_DIRS") and not key.startswith("PYTEST_")
    }
    environment.update(
        HW_PROFILE="ci",
        OMP_NUM_THREADS="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        JUPYTER_CONFIG_DIR=str(state / "config"),
        JUPYTER_DATA_DIR=str(state / "data"),
        JUPYTER_RUNTIME_DIR=str(state / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(state / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(state / "workspaces"),
    )
    environment.update(spec.env or {})
    port, token = free_port(), secrets.token_hex(16)
    log = state / "jupyter-lab.log"
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return LabServer(root, port, token, log, process)


@contextlib.contextmanager
def lab_servers(*specs: LabSpec) -> Iterator[list[LabServer]]:
    """Start one ``jupyter lab`` per spec (all at once), wait until each answers, and stop them
    all on exit, also when starting or the test fails."""
    with contextlib.ExitStack() as stack:
        servers = []
        for spec in specs:
            server = _start(spec)
            stack.callback(_stop, server)
            servers.append(server)
        for server in servers:
            _wait_until_up(server)
        yield servers
