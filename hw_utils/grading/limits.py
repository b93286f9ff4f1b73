"""Resource limits of a student kernel that its code cannot step around.

Where the machine lets us (cgroup v2 with the memory, pids and cpu controllers delegated, or the
cgroup v1 hierarchies ``memory``, ``pids`` and ``cpu``), every grading run gets its own cgroup:

- memory: ``memory.max`` (v2) / ``memory.limit_in_bytes`` (v1), swap off; it counts everything
  the kernel's processes use, shared mappings and the tmpfs they write included;
- processes and threads: ``pids.max``;
- CPU: a quota of ``threads`` cores (``cpu.max`` / ``cpu.cfs_quota_us``), whatever the number of
  threads the student's code starts.

Elsewhere :func:`probe` says why not, and the sandbox falls back to ``RLIMIT_AS`` (address
space, which counts shared mappings too, on top of what the Python installation itself maps) and
``RLIMIT_NPROC`` under a dedicated user id.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path
from typing import NamedTuple

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000
MB = 2**20


class Support(NamedTuple):
    """What this machine offers: ``kind`` is ``"v2"``, ``"v1"`` or ``None`` (with the reason)."""

    kind: str | None
    parent: dict[str, Path]  # controller (or "unified") -> the folder to create cgroups in
    reason: str

    def describe(self) -> str:
        if self.kind:
            return f"cgroup {self.kind} (memory, processes and CPU per submission)"
        return (
            f"no cgroups ({self.reason}): memory is limited by address space (RLIMIT_AS, "
            "shared mappings included), processes by RLIMIT_NPROC when run as root"
        )


def _own_paths() -> dict[str, str]:
    """This process's cgroup per hierarchy: ``{"": "/a/b"}`` for v2, ``{"memory": ...}`` v1."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _writable(folder: Path) -> bool:
    test = folder / f"course-probe-{uuid.uuid4().hex[:8]}"
    try:
        test.mkdir()
    except OSError:
        return False
    with contextlib.suppress(OSError):
        test.rmdir()
    return True


def probe() -> Support:
    """Which cgroups this process may create, and where."""
    try:
        own = _own_paths()
    except OSError as error:
        return Support(None, {}, f"/proc/self/cgroup: {error}")
    unified = CGROUP_ROOT if (CGROUP_ROOT / "cgroup.controllers").exists() else None
    if unified is not None:
        parent = unified / own.get("", "/").lstrip("/")
        enabled = (parent / "cgroup.subtree_control").read_text().split() if parent.exists() else []
        missing = [c for c in ("memory", "pids", "cpu") if c not in enabled]
        if missing:
            return Support(None, {}, f"cgroup v2 without {', '.join(missing)} delegated here")
        if not _writable(parent):
            return Support(None, {}, f"{parent} is not writable")
        return Support("v2", {"unified": parent}, "")
    parents = {}
    for controller in V1_CONTROLLERS:
        root = CGROUP_ROOT / controller
        if not (root / "cgroup.procs").exists():
            return Support(None, {}, f"no cgroup v1 '{controller}' hierarchy")
        parent = root / own.get(controller, "/").lstrip("/")
        if not _writable(parent):
            return Support(None, {}, f"{parent} is not writable")
        parents[controller] = parent
    return Support("v1", parents, "")


class Cgroup:
    """One grading run's cgroup (its folders; see the module docstring)."""

    def __init__(self, folders: list[Path]) -> None:
        self.folders = folders

    @classmethod
    def create(
        cls, support: Support, prefix: str, memory_mb: int, max_processes: int, cpus: int
    ) -> Cgroup:
        """A new cgroup named ``<prefix>-<random>`` with these limits."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        memory, quota = str(memory_mb * MB), cpus * CPU_PERIOD_US
        if support.kind == "v2":
            folder = support.parent["unified"] / name
            folder.mkdir()
            _write(folder / "memory.max", memory)
            _write(folder / "memory.swap.max", "0", optional=True)
            _write(folder / "pids.max", str(max_processes))
            _write(folder / "cpu.max", f"{quota} {CPU_PERIOD_US}")
            return cls([folder])
        folders = []
        for controller in V1_CONTROLLERS:
            folder = support.parent[controller] / name
            folder.mkdir()
            folders.append(folder)
        mem, pids, cpu = folders
        _write(mem / "memory.limit_in_bytes", memory)
        _write(mem / "memory.memsw.limit_in_bytes", memory, optional=True)
        _write(pids / "pids.max", str(max_processes))
        _write(cpu / "cpu.cfs_period_us", str(CPU_PERIOD_US))
        _write(cpu / "cpu.cfs_quota_us", str(quota))
        return cls(folders)

    @classmethod
    def existing(cls, support: Support, prefix: str) -> list[Cgroup]:
        """The cgroups whose name starts with ``prefix`` (left behind by killed kernels)."""
        groups: dict[str, list[Path]] = {}
        for parent in support.parent.values():
            for folder in parent.glob(f"{prefix}-*"):
                groups.setdefault(folder.name, []).append(folder)
        return [cls(folders) for folders in groups.values()]

    def join(self, pid: int = 0) -> None:
        """Move process ``pid`` (0: this one) into the cgroup; its children follow."""
        for folder in self.folders:
            _write(folder / "cgroup.procs", str(pid or os.getpid()))

    def pids(self) -> set[int]:
        found: set[int] = set()
        for folder in self.folders:
            with contextlib.suppress(OSError):
                found |= {int(p) for p in (folder / "cgroup.procs").read_text().split()}
        return found

    def remove(self) -> None:
        """Kill whatever still runs in the cgroup, then delete it."""
        for _ in range(50):
            left = self.pids()
            if not left:
                break
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        for folder in self.folders:
            with contextlib.suppress(OSError):
                folder.rmdir()


def _write(path: Path, value: str, optional: bool = False) -> None:
    try:
        path.write_text(value)
    except OSError:
        if not optional:
            raise
