"""The checker kernel: where test cells run during grading, never student code.

One checker kernel serves every notebook an nbgrader process grades (a batch of students): it
is trusted, so it is kept warm, and before each notebook it is reset (its namespace cleared,
working folder set, connected to that notebook's student kernel through
:func:`hw_utils.boundary.connect`). Starting it costs a Python with PyTorch; reusing it costs a
few milliseconds.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient

from hw_utils.boundary.protocol import CHECKER_ENV

KERNEL = "course-checker"


class CheckerError(RuntimeError):
    """The checker kernel could not be prepared for a notebook; the tests cannot be run."""


class WarmChecker:
    """A running checker kernel and its client (``threads``: math threads it may use)."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.runtime = Path(tempfile.mkdtemp(prefix="course-checker-"))
        spec_dir = self.runtime / "kernels" / KERNEL
        spec_dir.mkdir(parents=True)
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "course checker",
            "language": "python",
            "interrupt_mode": "signal",
        }
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        self.km = AsyncKernelManager(
            kernel_name=KERNEL,
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(self.runtime / "kernels")]),
            transport="ipc",
            ip=str(self.runtime / "checker"),
            connection_file=str(self.runtime / "checker.json"),
        )
        env = {**os.environ, CHECKER_ENV: "1"}
        if threads:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
        run_sync(self.km.start_kernel)(
            extra_arguments=["--HistoryManager.hist_file=:memory:"], env=env, cwd=str(self.runtime)
        )  # returns once launched: it boots while the student's kernel boots
        self.kc = None

    def alive(self) -> bool:
        return bool(run_sync(self.km.is_alive)())

    def client(self, nb, timeout: int, **options) -> NotebookClient:
        """A notebook client of this kernel for ``nb`` (the kernel is ready once it returns)."""
        client = NotebookClient(nb, km=self.km, timeout=timeout, **options)
        if self.kc is None:
            client.start_new_kernel_client()
            self.kc = client.kc
        client.kc = self.kc
        return client

    def prepare(self, client: NotebookClient, student_connection: str, folder: str) -> None:
        """Reset the kernel for a new notebook: empty namespace, working folder ``folder``,
        calls going to the student kernel of ``student_connection``."""
        code = (
            "get_ipython().run_line_magic('reset', '-f')\n"
            "import os as _os, hw_utils.boundary as _boundary\n"
            f"_os.chdir({folder!r})\n"
            f"_boundary.connect({student_connection!r}, {float(client.timeout)!r})\n"
            "del _os, _boundary"
        )
        reply = run_sync(self.kc.execute_interactive)(
            code, silent=True, store_history=False, timeout=client.timeout
        )
        if reply["content"]["status"] != "ok":
            content = reply["content"]
            raise CheckerError(f"{content.get('ename')}: {content.get('evalue')}"[:300])

    def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            if self.kc is not None:
                self.kc.stop_channels()
            run_sync(self.km.shutdown_kernel)(now=True)
        shutil.rmtree(self.runtime, ignore_errors=True)


_warm: WarmChecker | None = None


def warm_checker(threads: int) -> WarmChecker:
    """This process's checker kernel, started now if there is none (or it died)."""
    global _warm
    if _warm is not None and not (_warm.threads == threads and _warm.alive()):
        discard()
    if _warm is None:
        _warm = WarmChecker(threads)
    return _warm


def discard() -> None:
    """Shut the checker kernel down (after it failed: the next notebook gets a new one)."""
    global _warm
    if _warm is not None:
        _warm.shutdown()
        _warm = None


atexit.register(discard)
