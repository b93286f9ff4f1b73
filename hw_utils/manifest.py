"""The course manifest: ``assignments/<assignment_id>.toml``, one file per assignment.

It holds what nbgrader does not know: the title and order, the notebooks, the expected total points,
the grading limits and what the assignment needs offline. nbgrader_config.py, the ``course`` command
and the tests read it from here; nothing in it is stated anywhere else.

Example (every key is required except ``needs``)::

    title = "Convolution from scratch"
    order = 1
    notebooks = ["hw1_convolution"]
    total_points = 60

    [limits]
    cell_timeout_s = 30        # one cell, wall clock
    notebook_timeout_s = 300   # the whole notebook, wall clock
    memory_mb = 6144           # address space of the student's kernel
    max_processes = 64         # processes and threads of the sandbox user
    disk_mb = 256              # largest file the kernel may write
    output_max_lines = 1000    # stream lines kept per cell

    [needs]
    datasets = ["shapes"]      # generated or shipped data the notebook uses
    checkpoints = []           # shipped weights (hw_utils/assets)
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import NamedTuple

ASSIGNMENT_ID = re.compile(r"^hw\d+_[a-z0-9_]+$")


class ManifestError(ValueError):
    """A manifest file is missing, malformed or inconsistent; the message names file and fix."""


class Limits(NamedTuple):
    cell_timeout_s: int
    notebook_timeout_s: int
    memory_mb: int
    max_processes: int
    disk_mb: int
    output_max_lines: int


class Assignment(NamedTuple):
    """One entry of the manifest."""

    id: str
    title: str
    order: int
    notebooks: tuple[str, ...]
    total_points: float
    limits: Limits
    datasets: tuple[str, ...]
    checkpoints: tuple[str, ...]


class CourseNotFoundError(FileNotFoundError):
    """No course directory (nbgrader_config.py beside assignments/) around the working directory."""


def find_course_root(start: str | os.PathLike | None = None) -> Path:
    """The course directory: ``$COURSE_DIR`` if set, else the first parent of ``start`` (default:
    the working directory) holding both ``nbgrader_config.py`` and ``assignments/``."""
    if start is None and os.environ.get("COURSE_DIR"):
        start = os.environ["COURSE_DIR"]
    here = Path(start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "nbgrader_config.py").is_file() and (candidate / "assignments").is_dir():
            return candidate
    raise CourseNotFoundError(
        f"No course directory at or above {here}: expected nbgrader_config.py next to an "
        "assignments/ folder. Run the command inside the course checkout, or pass --course-dir."
    )


def _require(table: dict, key: str, kind: type | tuple[type, ...], where: str):
    if key not in table:
        raise ManifestError(
            f"{where}: missing key '{key}'. See hw_utils/manifest.py for the format."
        )
    value = table[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ManifestError(f"{where}: '{key}' = {value!r} should be of type {kind}.")
    return value


def load_assignment(path: Path) -> Assignment:
    """Parse one manifest file; raises :class:`ManifestError` with the file and key at fault."""
    path = Path(path)
    assignment_id = path.stem
    if not ASSIGNMENT_ID.match(assignment_id):
        raise ManifestError(
            f"{path}: file name should be the assignment id, like hw1_convolution.toml"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: not valid TOML ({exc}).") from exc
    where = str(path)
    limits_table = _require(data, "limits", dict, where)
    limits = Limits(
        **{name: _require(limits_table, name, int, f"{where} [limits]") for name in Limits._fields}
    )
    needs = data.get("needs", {})
    notebooks = _require(data, "notebooks", list, where)
    if not notebooks or not all(isinstance(n, str) and not n.endswith(".ipynb") for n in notebooks):
        raise ManifestError(
            f"{where}: 'notebooks' should list notebook names without .ipynb, "
            f'e.g. ["{path.stem}"]'
        )
    return Assignment(
        id=assignment_id,
        title=_require(data, "title", str, where),
        order=_require(data, "order", int, where),
        notebooks=tuple(notebooks),
        total_points=float(_require(data, "total_points", (int, float), where)),
        limits=limits,
        datasets=tuple(needs.get("datasets", ())),
        checkpoints=tuple(needs.get("checkpoints", ())),
    )


def load_manifest(course_root: Path) -> dict[str, Assignment]:
    """All assignments of the course, keyed by id, in course order."""
    folder = Path(course_root) / "assignments"
    entries = [load_assignment(p) for p in sorted(folder.glob("*.toml"))]
    orders = [a.order for a in entries]
    if len(set(orders)) != len(orders):
        raise ManifestError(f"{folder}: two assignments share an 'order' value: {sorted(orders)}")
    return {a.id: a for a in sorted(entries, key=lambda a: a.order)}


def get_assignment(course_root: Path, assignment_id: str) -> Assignment:
    """One assignment; the error lists the known ids when the name is wrong."""
    manifest = load_manifest(course_root)
    if assignment_id not in manifest:
        known = ", ".join(manifest) or "none"
        raise ManifestError(
            f"Unknown assignment '{assignment_id}'. Known assignments: {known} "
            f"(one file each in {Path(course_root) / 'assignments'})."
        )
    return manifest[assignment_id]
