"""Run the real ``nbgrader`` command line in a course directory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path


class NbgraderError(RuntimeError):
    """An nbgrader command failed; the message holds the command and the end of its log."""


def nbgrader_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment nbgrader needs: this interpreter's ``bin`` first on PATH (nbgrader shells
    out to ``alembic``), plus ``extra``."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra or {})
    return env


def run_command(
    command: Sequence[str],
    cwd: Path,
    *,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``command`` in its own session with :func:`nbgrader_env` plus ``env``, stdout and
    stderr together; on ``timeout`` kill the whole process group and raise TimeoutExpired."""
    with subprocess.Popen(
        list(command),
        cwd=cwd,
        env=nbgrader_env(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.communicate()
            raise
    return subprocess.CompletedProcess(list(command), process.returncode, output, "")


def run_nbgrader(
    args: Sequence[str],
    course_dir: Path,
    *,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """``nbgrader <args>`` run in ``course_dir`` (so its nbgrader_config.py applies).

    Raises :class:`NbgraderError` on a non-zero exit when ``check`` is true, and
    ``subprocess.TimeoutExpired`` (after killing the process group) when ``timeout`` passes.
    """
    result = run_command(
        [sys.executable, "-m", "nbgrader", *args], course_dir, timeout=timeout, env=env
    )
    if check and result.returncode != 0:
        tail = "\n".join(result.stdout.strip().splitlines()[-25:])
        raise NbgraderError(
            f"'nbgrader {' '.join(args)}' failed (exit {result.returncode}) "
            f"in {course_dir}:\n{tail}"
        )
    return result
