"""Test-wide settings and fixtures.

The CI profile and a non-interactive matplotlib backend are set before anything imports hw_utils
or starts a kernel, so nbval's kernels and the grading subprocesses inherit them.
"""

import os
import shutil
from pathlib import Path

import pytest
import torch

os.environ["HW_PROFILE"] = "ci"
os.environ["MPLBACKEND"] = "Agg"

REPO = Path(__file__).resolve().parent.parent
FIXTURE_COURSE = Path(__file__).resolve().parent / "fixtures" / "course"
COURSE_FILES = ("nbgrader_config.py", "assignments", "source", "release", "samples")


@pytest.fixture
def repo_root() -> Path:
    return REPO


def scratch_course(destination: Path) -> Path:
    """A copy of the repository's course files (config, manifest, source, release, samples), so
    that grading writes its gradebook and folders elsewhere."""
    destination.mkdir(parents=True)
    for name in COURSE_FILES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, destination / name)
        elif (REPO / name).is_file():
            shutil.copy(REPO / name, destination / name)
    return destination


def make_fixture_course(destination: Path) -> Path:
    """A scratch course: the real nbgrader_config.py plus the tiny fixture assignment, built."""
    from hw_utils.grading.build import build_release
    from hw_utils.manifest import get_assignment

    shutil.copytree(FIXTURE_COURSE, destination)
    shutil.copy(REPO / "nbgrader_config.py", destination)
    build_release(destination, get_assignment(destination, "hw9_fixture"))
    return destination


def hidden_test_lines(course: Path, assignment_id: str) -> set[str]:
    """Lines that exist only in the hidden tests of the source (not in the release, not in the
    solutions or anywhere else outside a hidden region): what must never reach a student."""
    from hw_utils.grading import cells as C
    from hw_utils.manifest import get_assignment

    assignment = get_assignment(course, assignment_id)
    seen, hidden = set(), set()
    for notebook in assignment.notebooks:
        release = C.read_notebook(C.release_notebook(course, assignment_id, notebook))
        source = C.read_notebook(C.source_notebook(course, assignment_id, notebook))
        for cell in [*release.cells, *source.cells]:
            regions = C.regions(cell.source, C.BEGIN_HIDDEN, C.END_HIDDEN)
            outside = cell.source
            for region in regions:
                outside = outside.replace(region, "")
                hidden |= {line.strip() for line in region.splitlines()}
            seen |= {line.strip() for line in outside.splitlines()}
    return {line for line in hidden - seen if len(line) > 8}


@pytest.fixture(scope="session")
def _built_fixture_course(tmp_path_factory) -> Path:
    return make_fixture_course(tmp_path_factory.mktemp("fixture") / "course")


@pytest.fixture
def fixture_course(_built_fixture_course: Path, tmp_path: Path) -> Path:
    """A private copy of the built fixture course (release included)."""
    return Path(shutil.copytree(_built_fixture_course, tmp_path / "course"))


@pytest.fixture(scope="module")
def single_thread():
    """One math thread for a module's tests (``pytestmark = usefixtures("single_thread")``):
    small tensors run faster without thread start-ups, and results do not depend on the core
    count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
