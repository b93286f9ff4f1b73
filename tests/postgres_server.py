"""A throwaway PostgreSQL server for tests: Debian's package, a fresh cluster in a temporary
folder, listening on a unix socket only (no TCP port), stopped and deleted afterwards.

PostgreSQL refuses to run as root; as root the server runs as the ``postgres`` user that
Debian's package creates.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

USER = "grader"
DATABASE = "course"


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def require_postgres() -> None:
    if _bin("initdb") is None or _bin("pg_ctl") is None:
        message = "PostgreSQL is not installed (Debian: sudo apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server; yields the SQLAlchemy URL of an empty database ``course``."""
    require_postgres()
    root = Path(tempfile.mkdtemp(prefix="pg-"))
    root.chmod(0o755)
    data, sockets = root / "data", root / "sockets"
    data.mkdir()
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
        shutil.chown(sockets, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, cwd=root)

    try:
        run(_bin("initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8")
        run(
            _bin("pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(sockets / "server.log"),
            "-o",
            f"-k {sockets} -c listen_addresses=''",
            "-w",
            "start",
        )
        run(_bin("createdb"), "-h", str(sockets), "-U", USER, DATABASE)
        yield f"postgresql+psycopg://{USER}@/{DATABASE}?host={sockets}"
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            run(_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)
