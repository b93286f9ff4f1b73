"""Sample submissions: ``samples/<assignment>/<student>.toml`` (format in docs/authoring.md).

A sample is described relative to the source notebook, so it never goes stale: ``base =
"solution"`` starts from the release notebook with every solution cell filled in as in source
(markers removed, as a student would write it), ``base = "release"`` is the untouched release.
``[cells]`` replaces solution cells by grade id; ``[expected]`` lists the points of every graded
cell that does not earn full marks.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import NamedTuple

import nbformat

from hw_utils.grading import cells as C
from hw_utils.manifest import Assignment, ManifestError


class Sample(NamedTuple):
    student_id: str
    description: str
    base: str
    cells: dict[str, str]
    expected: dict[str, float]
    path: Path


def sample_dir(course_root: Path, assignment_id: str) -> Path:
    return Path(course_root) / "samples" / assignment_id


def load_sample(path: Path) -> Sample:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: not valid TOML ({exc}).") from exc
    base = data.get("base")
    if base not in ("solution", "release"):
        raise ManifestError(f'{path}: base = {base!r}; use "solution" or "release".')
    if base == "release" and data.get("cells"):
        raise ManifestError(
            f"{path}: a 'release' sample cannot replace cells; use base = \"solution\"."
        )
    return Sample(
        student_id=f"sample_{Path(path).stem}",
        description=str(data.get("description", "")),
        base=base,
        cells={k: str(v) for k, v in data.get("cells", {}).items()},
        expected={k: float(v) for k, v in data.get("expected", {}).items()},
        path=Path(path),
    )


def load_samples(course_root: Path, assignment_id: str) -> list[Sample]:
    folder = sample_dir(course_root, assignment_id)
    return [load_sample(p) for p in sorted(folder.glob("*.toml"))]


def graded_cells(course_root: Path, assignment: Assignment) -> dict[str, tuple[str, object]]:
    """Every graded or solution cell of the source notebooks: grade id -> (notebook, cell)."""
    found: dict[str, tuple[str, object]] = {}
    for notebook in assignment.notebooks:
        nb = C.read_notebook(C.source_notebook(course_root, assignment.id, notebook))
        for cell in nb.cells:
            if C.grade_id(cell) and (C.is_graded(cell) or C.is_solution(cell)):
                found[C.grade_id(cell)] = (notebook, cell)
    return found


def validate_sample(sample: Sample, course_root: Path, assignment: Assignment) -> list[str]:
    """Problems with a sample's references to cells, one sentence each."""
    known = graded_cells(course_root, assignment)
    problems = []
    for grade_id in sample.cells:
        if grade_id not in known or not C.is_solution(known[grade_id][1]):
            problems.append(
                f"{sample.path}: [cells] '{grade_id}' is not a solution cell of the source."
            )
    for grade_id, value in sample.expected.items():
        if grade_id not in known or not C.is_graded(known[grade_id][1]):
            problems.append(f"{sample.path}: [expected] '{grade_id}' is not a graded cell.")
        elif C.is_manual_answer(known[grade_id][1]):
            problems.append(f"{sample.path}: [expected] '{grade_id}' is graded by hand; remove it.")
        elif not 0 <= value <= C.points(known[grade_id][1]):
            problems.append(
                f"{sample.path}: [expected] '{grade_id}' = {value} is outside 0..points."
            )
    return problems


SCORE_TOLERANCE = 1e-4
"""How far a total may be from the sum of a sample's expected cell scores and still match: the
expectations are written with 6 significant digits (``12/7`` as ``1.71429``), so a sum of several
rounded partial credits is off by up to a few millionths; a real difference is a whole case's
share of a cell's points, at least a few hundredths."""


def scores_match(score: float, expected: float) -> bool:
    """A graded total equals a sample's expected total, up to the rounding of its expectations."""
    return abs(score - expected) < SCORE_TOLERANCE


def expected_scores(sample: Sample, course_root: Path, assignment: Assignment) -> dict[str, float]:
    """Expected points of every autograded (test) cell for this sample."""
    scores = {}
    for grade_id, (_, cell) in graded_cells(course_root, assignment).items():
        if C.is_test(cell):
            full = C.points(cell) if sample.base == "solution" else 0.0
            scores[grade_id] = sample.expected.get(grade_id, full)
    return scores


def materialise(
    sample: Sample, course_root: Path, assignment: Assignment, submissions: Path
) -> Path:
    """Write the sample as ``<submissions>/<student>/<assignment>/<notebook>.ipynb`` files, built
    from the committed release notebooks; returns the student's folder."""
    target = Path(submissions) / sample.student_id / assignment.id
    target.mkdir(parents=True, exist_ok=True)
    for notebook in assignment.notebooks:
        release = C.read_notebook(C.release_notebook(course_root, assignment.id, notebook))
        nb = copy.deepcopy(release)
        if sample.base == "solution":
            source = C.read_notebook(C.source_notebook(course_root, assignment.id, notebook))
            answers = {
                C.grade_id(cell): C.strip_solution_markers(cell.source)
                for cell in source.cells
                if C.is_solution(cell)
            }
            answers.update(sample.cells)
            for cell in nb.cells:
                if C.is_solution(cell) and C.grade_id(cell) in answers:
                    cell.source = answers[C.grade_id(cell)].strip("\n")
        nbformat.write(nb, target / f"{notebook}.ipynb")
    return target.parent
