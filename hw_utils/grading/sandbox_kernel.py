"""Trusted kernel launcher of the grading sandbox (see :mod:`hw_utils.grading.sandbox`).

``python -m hw_utils.grading.sandbox_kernel SETTINGS.json CONNECTION_FILE [KERNEL_ARGS]`` is the
command of the grading kernelspec. jupyter_client starts it in the notebook's folder; it sets the
resource limits, then replaces itself with bubblewrap running ``ipykernel`` as an unprivileged
user.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
from pathlib import Path

MB = 2**20


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
    settings: dict, connection_file: Path, workdir: Path, kernel_args: list[str]
) -> list[str]:
    """The bubblewrap command line for a kernel working in ``workdir`` (``kernel_args`` go to
    ipykernel, e.g. nbgrader's in-memory history)."""
    disk = str(settings["disk_mb"] * MB)
    threads = str(settings["threads"])
    command = [
        settings["bwrap"],
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        *_system_dirs(),
        "--ro-bind-try",
        "/sys/devices/system/cpu",
        "/sys/devices/system/cpu",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--perms",
        "1777",
        "--tmpfs",
        "/dev/shm",
        "--perms",
        "1777",
        "--size",
        disk,
        "--tmpfs",
        "/tmp",
    ]
    for root in settings["python_roots"]:
        command += [*_ancestors(Path(root)), "--ro-bind", root, root]
    ipc = settings["ipc_dir"]
    command += [*_ancestors(Path(ipc)), "--bind", ipc, ipc]
    # The working folder is a fresh tmpfs; files already there (assets) are bound read-only.
    # Notebooks are not: the one nbgrader is executing holds the hidden tests.
    command += [*_ancestors(workdir), "--perms", "1777", "--size", disk, "--tmpfs", str(workdir)]
    for entry in sorted(workdir.iterdir()):
        if entry.suffix != ".ipynb" and entry.name != ".ipynb_checkpoints":
            command += ["--ro-bind", str(entry), str(entry)]
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
    command += ["--chdir", str(workdir), "--clearenv"]
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
    command += [settings["python"], "-m", "ipykernel_launcher", "-f", str(connection_file)]
    command += kernel_args
    return command


def set_limits(settings: dict) -> None:
    """Memory (data segment), processes/threads of the sandbox user, file size, no core dumps."""
    memory = settings["memory_mb"] * MB
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (settings["disk_mb"] * MB,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if settings["uid"] is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (settings["max_processes"],) * 2)


def main(argv: list[str]) -> None:
    settings_path, connection_file, *kernel_args = argv
    settings = json.loads(Path(settings_path).read_text())
    # The kernel (another user) must read its connection file: a world-readable copy in the
    # shared socket folder, owned by root so the kernel cannot replace it.
    shared = Path(settings["ipc_dir"]) / "connection.json"
    shutil.copyfile(connection_file, shared)
    shared.chmod(0o444)
    command = bwrap_command(settings, shared, Path.cwd(), kernel_args)
    set_limits(settings)
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
