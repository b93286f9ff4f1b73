"""Trusted kernel launcher of the grading sandbox (see :mod:`hw_utils.grading.sandbox`).

``python -m hw_utils.grading.sandbox_kernel SETTINGS.json CONNECTION_FILE [KERNEL_ARGS]`` is the
command of the grading kernelspec. jupyter_client starts it; it joins the run's cgroup, sets the
remaining limits, starts bubblewrap running ``ipykernel`` as an unprivileged user, links the
sandbox's socket folder where the grader expects it (``/proc/<pid>/root/sandbox/ipc``), forwards
signals, and exits with the kernel's status.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from hw_utils.grading.limits import Cgroup, Support

MB = 2**20
SANDBOX = "/sandbox"  # the one writable tmpfs inside
WORK = f"{SANDBOX}/work"
IPC = f"{SANDBOX}/ipc"
CONNECTION = f"{SANDBOX}/connection.json"


def _ancestors(path: Path) -> list[str]:
    args = []
    for parent in reversed(path.parents):
        if str(parent) != "/":
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def _system_dirs() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for name in ("/bin", "/sbin", "/lib", "/lib64", "/lib32"):
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    return args


def bwrap_command(
    settings: dict, connection_copy: Path, assets: Path, kernel_args: list[str], info_fd: int
) -> list[str]:
    """The bubblewrap command line of a kernel whose working folder shows the files of
    ``assets`` (read-only); ``kernel_args`` go to ipykernel (e.g. nbgrader's in-memory history)."""
    threads = str(settings["threads"])
    command = [
        settings["bwrap"],
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--info-fd",
        str(info_fd),
        *_system_dirs(),
        "--ro-bind-try",
        "/sys/devices/system/cpu",
        "/sys/devices/system/cpu",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
    ]
    for root in settings["python_roots"]:
        command += [*_ancestors(Path(root)), "--ro-bind", root, root]
    # The writable places: /dev/shm and one tmpfs for everything else; their sizes add up to
    # the disk limit. /dev itself is read-only.
    disk = settings["disk_mb"] * MB
    shm = min(64 * MB, disk // 4)
    command += [
        "--perms",
        "1777",
        "--size",
        str(shm),
        "--tmpfs",
        "/dev/shm",
        "--remount-ro",
        "/dev",
    ]
    command += ["--perms", "1777", "--size", str(disk - shm), "--tmpfs", SANDBOX]
    for folder in ("work", "tmp", "ipc"):
        command += ["--perms", "1777", "--dir", f"{SANDBOX}/{folder}"]
    command += ["--symlink", f"{SANDBOX}/tmp", "/tmp"]
    # Assets are bound read-only; notebooks are not (the one nbgrader runs has hidden tests).
    for entry in sorted(assets.iterdir()):
        if entry.suffix != ".ipynb" and entry.name != ".ipynb_checkpoints":
            command += ["--ro-bind", str(entry), f"{WORK}/{entry.name}"]
    command += ["--ro-bind", str(connection_copy), CONNECTION]
    environment = {
        "PATH": f"{Path(settings['python']).parent}:/usr/bin:/bin",
        "HOME": "/tmp",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        # The hw_utils the grader runs (a checkout may shadow the installed one).
        "PYTHONPATH": settings["pythonpath"],
        **settings["env"],
    }
    if os.environ.get("NBGRADER_EXECUTION"):
        environment["NBGRADER_EXECUTION"] = os.environ["NBGRADER_EXECUTION"]
    command += ["--chdir", WORK, "--clearenv"]
    for key, value in environment.items():
        command += ["--setenv", key, value]
    command.append("--")
    if settings["uid"] is not None:
        uid = str(settings["uid"])
        command += [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--no-new-privs",
        ]
    command += [settings["python"], "-m", "ipykernel_launcher", "-f", CONNECTION, *kernel_args]
    return command


def set_limits(settings: dict) -> None:
    """File size, no core dumps; without a cgroup also address space and (as root, under the
    sandbox's own user id) processes and threads."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (settings["disk_mb"] * MB,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if settings["address_space_mb"]:
        limit = settings["address_space_mb"] * MB
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if settings["uid"] is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (settings["max_processes"],) * 2)


def _inside_connection(connection_file: str) -> Path:
    """A copy of the connection file with the socket prefix the kernel sees inside."""
    info = json.loads(Path(connection_file).read_text())
    info["ip"] = f"{IPC}/kernel"
    handle, name = tempfile.mkstemp(prefix="sandbox-connection-", suffix=".json")
    with os.fdopen(handle, "w") as f:
        json.dump(info, f)
    os.chmod(name, 0o444)
    return Path(name)


def _child_pid(fd: int) -> int | None:
    """The sandbox's first process, from bwrap's ``--info-fd`` JSON; ``None`` if bwrap failed."""
    text = b""
    try:
        while True:
            chunk = os.read(fd, 4096)
            text += chunk
            with contextlib.suppress(ValueError, KeyError):
                return int(json.loads(text)["child-pid"])
            if not chunk:
                return None
    finally:
        os.close(fd)


def _own_cgroup(settings: dict) -> Cgroup | None:
    """This kernel's cgroup (memory, processes, CPU), created and joined now."""
    spec = settings["cgroup"]
    if not spec:
        return None
    support = Support(spec["kind"], {k: Path(v) for k, v in spec["parent"].items()}, "")
    cgroup = Cgroup.create(
        support, spec["prefix"], spec["memory_mb"], settings["max_processes"], settings["threads"]
    )
    cgroup.join()
    return cgroup


def main(argv: list[str]) -> None:
    settings_path, connection_file, *kernel_args = argv
    settings = json.loads(Path(settings_path).read_text())
    if settings["uids"]:  # a user id of its own: no other kernel's processes are its own
        settings["uid"] = random.randrange(*settings["uids"])
    else:
        settings["uid"] = None
    _die_with_parent()
    cgroup = _own_cgroup(settings)
    copy = _inside_connection(connection_file)
    link = Path(settings["ipc_link"])
    with contextlib.suppress(FileNotFoundError):
        link.unlink()  # left by a kernel that was killed
    read_end, write_end = os.pipe()
    command = bwrap_command(settings, copy, Path.cwd(), kernel_args, write_end)
    set_limits(settings)
    process = subprocess.Popen(command, pass_fds=(write_end,))
    os.close(write_end)
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, lambda signum, _frame: process.send_signal(signum))
    child = _child_pid(read_end)  # bwrap reports it once the sandbox exists
    if child is not None:
        link.symlink_to(f"/proc/{child}/root{IPC}")
    status = process.wait()
    with contextlib.suppress(OSError):
        link.unlink()
        copy.unlink()
    if cgroup is not None:
        cgroup.remove()
    sys.exit(status if status >= 0 else 128 - status)


def _die_with_parent() -> None:
    """Die when the grading process dies (then bubblewrap, and the sandbox, die with us)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


if __name__ == "__main__":
    main(sys.argv[1:])
