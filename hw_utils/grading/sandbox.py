"""The grading sandbox: each student's kernel runs under bubblewrap, the grader stays outside.

nbgrader (trusted) runs as usual; only the kernel it starts is confined. For that, a grading run
gets its own kernelspec ``python3`` whose command is :mod:`hw_utils.grading.sandbox_kernel` (a
trusted launcher) and its kernel talks to nbgrader over unix sockets (ZeroMQ ``ipc`` transport)
in a folder shared with the sandbox, because the sandbox has no network at all.

Inside the sandbox the kernel sees: the Python installation and hw_utils read-only, a size-limited
scratch copy of its working folder whose pre-existing files (assets) are read-only, an empty
``/tmp``, and nothing else of the machine: no course folder, no gradebook, no notebook (not even
the one being graded, which holds the hidden tests), no other submission, no network. It runs as
an unprivileged user id with limits on memory, number of processes and file size taken from the
manifest.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
from pathlib import Path
from typing import NamedTuple

import hw_utils
from hw_utils.manifest import Assignment


class SandboxUnavailableError(RuntimeError):
    """bubblewrap cannot be used here; the message says how to install it or how to opt out."""


class SandboxPolicy(NamedTuple):
    """How student kernels run; ``enabled=False`` is plain nbgrader (trusted submissions only).
    ``threads``: math-library threads per kernel (cores shared by the jobs running at once)."""

    enabled: bool = True
    threads: int = 1


BWRAP = "bwrap"
FIRST_SANDBOX_UID = 61000


def require_bwrap() -> str:
    """Path of bwrap, or :class:`SandboxUnavailableError` with the fix."""
    path = shutil.which(BWRAP)
    if path is None:
        raise SandboxUnavailableError(
            "bubblewrap (bwrap) is not installed, and student code must not run unconfined. "
            "Install it (Debian/Ubuntu: sudo apt-get install bubblewrap), or, only for "
            "submissions you trust, pass --no-sandbox."
        )
    return path


def python_roots() -> list[str]:
    """Folders the kernel needs to run this Python with hw_utils: venv, base install, package."""
    roots = {Path(sys.prefix), Path(sys.base_prefix), Path(hw_utils.__file__).resolve().parent}
    roots.add(Path(os.path.realpath(sys.executable)).parent.parent)
    kept = []
    for root in sorted(roots, key=lambda p: len(p.parts)):
        if str(root) in ("/", "/usr") or any(root.is_relative_to(k) for k in kept):
            continue
        kept.append(root)
    return [str(p) for p in kept]


def prepare(
    policy: SandboxPolicy, assignment: Assignment, scratch: Path, status_file: Path
) -> tuple[list[str], dict[str, str]]:
    """nbgrader arguments and environment for one autograde run in ``scratch``.

    Always: the notebook-level time budget and the status file of
    :class:`hw_utils.grading.nbgrader_plugins.ResilientExecute`. With the sandbox: a kernelspec
    that starts the kernel through the launcher, and the ``ipc`` transport.
    """
    limits = assignment.limits
    args = [
        f"--ResilientExecute.notebook_timeout={limits.notebook_timeout_s}",
        f"--ResilientExecute.status_file={status_file}",
        f"--RestoreCellMetadata.status_file={status_file}",
    ]
    if not policy.enabled:
        return args, {}
    bwrap = require_bwrap()
    scratch = Path(scratch)
    kernel_dir = scratch / "jupyter" / "kernels" / "python3"
    kernel_dir.mkdir(parents=True)
    (scratch / "runtime").mkdir()
    ipc = scratch / "ipc"
    ipc.mkdir()
    ipc.chmod(0o1777)
    settings = {
        "bwrap": bwrap,
        "python": sys.executable,
        "python_roots": python_roots(),
        "pythonpath": str(Path(hw_utils.__file__).resolve().parent.parent),
        "ipc_dir": str(ipc),
        "uid": FIRST_SANDBOX_UID + random.randrange(4000) if os.geteuid() == 0 else None,
        "memory_mb": limits.memory_mb,
        "max_processes": limits.max_processes,
        "disk_mb": limits.disk_mb,
        "threads": policy.threads,
        "env": {k: os.environ[k] for k in ("HW_PROFILE", "LANG") if k in os.environ},
    }
    (scratch / "sandbox.json").write_text(json.dumps(settings, indent=1))
    spec = {
        "argv": [
            sys.executable,
            "-m",
            "hw_utils.grading.sandbox_kernel",
            str(scratch / "sandbox.json"),
            "{connection_file}",
        ],
        "display_name": "Python 3 (grading sandbox)",
        "language": "python",
        "interrupt_mode": "message",
    }
    (kernel_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    args += ["--KernelManager.transport=ipc", f"--KernelManager.ip={ipc / 'kernel'}"]
    env = {
        "JUPYTER_PATH": str(scratch / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"),
    }
    return args, env
