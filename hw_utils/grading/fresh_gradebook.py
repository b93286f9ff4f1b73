"""New, empty SQLite gradebooks, copied from one made once per nbgrader version.

nbgrader builds a new gradebook's schema through its migrations (several seconds); every grading
run needs one (the template a sandboxed group writes into) and a new course needs its own. The
empty gradebook is made once, in the grader's cache folder (``$XDG_CACHE_HOME/hw_utils``, else
``~/.cache/hw_utils``), and copied from then on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbgrader
from sqlalchemy.engine import make_url

from hw_utils.grading.nbgrader_cli import nbgrader_env


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hw_utils"


def _empty_gradebook() -> Path:
    """The cached empty gradebook of this nbgrader version (made on first use, by nbgrader in a
    process of its own: it shells out to ``alembic``, which must be on its PATH)."""
    cached = _cache_dir() / f"empty-gradebook-nbgrader-{nbgrader.__version__}.db"
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cached.parent) as scratch:
            made = Path(scratch) / "gradebook.db"
            make = "import sys; from nbgrader.api import Gradebook; Gradebook(sys.argv[1]).close()"
            subprocess.run(
                [sys.executable, "-c", make, f"sqlite:///{made}"],
                env=nbgrader_env(),
                check=True,
                capture_output=True,
            )
            os.replace(made, cached)  # atomic: concurrent runs never see half a file
    return cached


def ensure_sqlite_gradebook(db_url: str) -> None:
    """Give an SQLite ``db_url`` whose file does not exist yet an empty gradebook (a copy);
    other URLs, and files that exist, are left alone."""
    url = make_url(db_url)
    if not url.drivername.startswith("sqlite") or not url.database:
        return
    path = Path(url.database)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_empty_gradebook(), path)
