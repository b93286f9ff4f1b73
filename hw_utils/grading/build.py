"""``course build``: generate the student release with nbgrader, and ``course execute``: store the
CI-profile outputs of a source notebook."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import nbformat
from jupyter_client import KernelManager
from nbclient import NotebookClient

from hw_utils.grading.cells import source_notebook
from hw_utils.grading.nbgrader_cli import run_nbgrader
from hw_utils.manifest import Assignment, ManifestError


def check_source_exists(course_root: Path, assignment: Assignment) -> None:
    """Raise :class:`ManifestError` naming the missing notebook and the manifest entry."""
    for notebook in assignment.notebooks:
        path = source_notebook(course_root, assignment.id, notebook)
        if not path.is_file():
            raise ManifestError(
                f"{path} does not exist, but assignments/{assignment.id}.toml lists notebook "
                f"'{notebook}'. Create it, or fix 'notebooks' in the manifest."
            )


def build_release(
    course_root: Path, assignment: Assignment, release_root: Path | None = None
) -> Path:
    """Generate ``<release_root>/<id>/`` (default ``release/``) from ``source/<id>/`` with
    ``nbgrader generate_assignment``; the course gradebook is not touched. Returns the folder."""
    course_root = Path(course_root)
    check_source_exists(course_root, assignment)
    release_root = Path(release_root or course_root / "release").resolve()
    target = release_root / assignment.id
    if target.exists():
        shutil.rmtree(target)
    with tempfile.TemporaryDirectory(prefix="course-build-") as scratch:
        run_nbgrader(
            [
                "generate_assignment",
                assignment.id,
                "--force",
                f"--db=sqlite:///{Path(scratch) / 'gradebook.db'}",
                f"--CourseDirectory.release_directory={release_root}",
            ],
            course_root,
        )
    return target


def execute_source(course_root: Path, assignment: Assignment) -> list[Path]:
    """Run each source notebook of ``assignment`` in the CI profile and store its outputs in the
    source notebook (what nbval later compares). It runs in a scratch copy of the assignment
    folder, so files the notebook writes (experiment records, plots) never land in ``source/``
    and from there in the release. A cell error is raised, with nothing written."""
    check_source_exists(course_root, assignment)
    written = []
    previous = os.environ.get("HW_PROFILE")
    os.environ["HW_PROFILE"] = "ci"
    try:
        with tempfile.TemporaryDirectory(prefix="course-execute-") as scratch:
            work = Path(
                shutil.copytree(course_root / "source" / assignment.id, Path(scratch) / "a")
            )
            for notebook in assignment.notebooks:
                path = source_notebook(course_root, assignment.id, notebook)
                nb = nbformat.read(path, as_version=4)
                # A local unix socket: no network port, and no kernel warning about unencrypted TCP.
                kernel = KernelManager(
                    kernel_name="python3", transport="ipc", ip=str(Path(scratch) / "kernel")
                )
                NotebookClient(
                    nb,
                    km=kernel,
                    timeout=2 * assignment.limits.cell_timeout_s,
                    resources={"metadata": {"path": str(work)}},
                    record_timing=False,
                ).execute()
                nbformat.write(nb, path)
                written.append(path)
    finally:
        if previous is None:
            os.environ.pop("HW_PROFILE", None)
        else:
            os.environ["HW_PROFILE"] = previous
    return written
