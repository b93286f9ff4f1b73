"""The grading sandbox: each student's kernel runs under bubblewrap, everything else outside.

nbgrader (trusted) and the checker kernel that runs the tests (trusted, never runs student code;
see :mod:`hw_utils.grading.nbgrader_plugins`) run as usual; only the student's kernel is
confined. For that, a grading run gets its own kernelspec ``python3`` whose command is
:mod:`hw_utils.grading.sandbox_kernel` (a trusted launcher).

Inside the sandbox the kernel sees the Python installation and hw_utils read-only, and one
size-limited tmpfs, ``/sandbox``, that holds every place it can write: its working folder
``/sandbox/work`` (the assignment's assets bound read-only into it), ``/tmp``, ``/dev/shm`` and the
folder of its ZeroMQ sockets (``/sandbox/ipc``; the sandbox has no network, and the grader reaches
the sockets through ``/proc/<pid>/root``). Nothing else of the machine: no course folder, no
gradebook, no notebook (not even the one being graded, which holds the hidden tests), no other
submission. It runs as an unprivileged user id, in its own cgroup when the machine allows
(:mod:`hw_utils.grading.limits`: memory, processes, CPU), with limits from the manifest.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import hw_utils
from hw_utils.grading.limits import Cgroup, Support
from hw_utils.manifest import Assignment


class SandboxUnavailableError(RuntimeError):
    """bubblewrap cannot be used here; the message says how to install it or how to opt out."""


class SandboxPolicy(NamedTuple):
    """How student kernels run; ``enabled=False`` is plain nbgrader (trusted submissions only).
    ``threads``: CPU cores per kernel (cores shared by the jobs running at once); ``limits``:
    what the machine offers (:func:`hw_utils.grading.limits.probe`)."""

    enabled: bool = True
    threads: int = 1
    limits: Support | None = None


BWRAP = "bwrap"
SANDBOX_TMP = "/tmp"  # inside the sandbox: a link into its own tmpfs, hiding the machine's /tmp
FIRST_SANDBOX_UID = 61000
# Address space that the Python installation maps before any student code runs (PyTorch's
# libraries are large); added to the memory limit when RLIMIT_AS stands in for a cgroup.
LIBRARIES_MB = 6144


def require_bwrap() -> str:
    """Path of bwrap, or :class:`SandboxUnavailableError` with the fix: bwrap is missing, or
    this Python or hw_utils lives under ``/tmp``, which the sandbox replaces with its own
    scratch space (the kernel would find no Python there)."""
    path = shutil.which(BWRAP)
    if path is None:
        raise SandboxUnavailableError(
            "bubblewrap (bwrap) is not installed, and student code must not run unconfined. "
            "Install it (Debian/Ubuntu: sudo apt-get install bubblewrap), or, only for "
            "submissions you trust, pass --no-sandbox."
        )
    under_tmp = [root for root in python_roots() if Path(root).is_relative_to(SANDBOX_TMP)]
    if under_tmp:
        raise SandboxUnavailableError(
            f"The Python installation or hw_utils is under {SANDBOX_TMP} ({', '.join(under_tmp)}),"
            f" which the grading sandbox replaces with its own empty scratch folder, so student"
            f" kernels could not start. Clone the course and make its .venv outside {SANDBOX_TMP}"
            f" (e.g. in your home folder), or, only for submissions you trust, pass --no-sandbox."
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


class Prepared(NamedTuple):
    """What one grading run needs: nbgrader arguments, its environment, and ``cleanup()``
    (removes what killed kernels may have left: their cgroups)."""

    args: list[str]
    env: dict[str, str]
    cleanup: Callable[[], None]


def prepare(
    policy: SandboxPolicy, assignment: Assignment, scratch: Path, status_dir: Path
) -> Prepared:
    """nbgrader arguments and environment for one autograde run in ``scratch``.

    Always: the notebook-level time budget and the status folder of
    :class:`hw_utils.grading.nbgrader_plugins.BoundaryExecute`. With the sandbox: a kernelspec
    that starts each student's kernel through the launcher (its own cgroup and user id), and
    the ``ipc`` transport.
    """
    limits = assignment.limits
    args = [
        f"--BoundaryExecute.notebook_timeout={limits.notebook_timeout_s}",
        f"--BoundaryExecute.status_dir={status_dir}",
        f"--BoundaryExecute.threads={policy.threads}",
        f"--RestoreCellMetadata.status_dir={status_dir}",
    ]
    if not policy.enabled:
        return Prepared(args, {}, lambda: None)
    bwrap = require_bwrap()
    scratch = Path(scratch)
    kernel_dir = scratch / "jupyter" / "kernels" / "python3"
    kernel_dir.mkdir(parents=True)
    (scratch / "runtime").mkdir()
    support = policy.limits if policy.limits is not None and policy.limits.kind else None
    prefix = f"course-grade-{uuid.uuid4().hex[:8]}"
    settings = {
        "bwrap": bwrap,
        "python": sys.executable,
        "python_roots": python_roots(),
        "pythonpath": str(Path(hw_utils.__file__).resolve().parent.parent),
        "ipc_link": str(scratch / "ipc"),
        "uids": [FIRST_SANDBOX_UID, FIRST_SANDBOX_UID + 4000] if os.geteuid() == 0 else None,
        "cgroup": {
            "kind": support.kind,
            "parent": {k: str(v) for k, v in support.parent.items()},
            "prefix": prefix,
            "memory_mb": limits.memory_mb,
        }
        if support
        else None,
        "address_space_mb": None if support else limits.memory_mb + LIBRARIES_MB,
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
    args += ["--KernelManager.transport=ipc", f"--KernelManager.ip={scratch / 'ipc' / 'kernel'}"]
    env = {
        "JUPYTER_PATH": str(scratch / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"),
    }

    def cleanup() -> None:
        for cgroup in Cgroup.existing(support, prefix) if support else ():
            cgroup.remove()

    return Prepared(args, env, cleanup)
