"""``course check``: the course is consistent and the release leaks nothing.

- every manifest entry has its source notebooks and every source folder a manifest entry;
- nbgrader metadata: unique grade ids, points on graded cells, test cells locked, solution and
  hidden-test markers only where nbgrader expects them, every solution cell followed by a test,
  points adding up to the manifest's ``total_points``;
- the committed ``release/`` equals a fresh ``course build`` byte for byte;
- no solution or hidden-test text in any released file;
- sample submissions refer to cells that exist.
"""

from __future__ import annotations

import filecmp
import tempfile
from pathlib import Path

from hw_utils.grading import cells as C
from hw_utils.grading.build import build_release
from hw_utils.grading.samples import load_samples, validate_sample
from hw_utils.manifest import Assignment, ManifestError, load_manifest

MIN_SECRET_LINE = 16


def lint_notebook(path: Path) -> tuple[list[str], float]:
    """Metadata problems of one source notebook and the sum of its points."""
    problems: list[str] = []
    nb = C.read_notebook(path)
    seen: set[str] = set()
    pending_solution: str | None = None
    total = 0.0
    for index, cell in enumerate(nb.cells):
        where = f"{path.name} cell {index}"
        meta = C.nbgrader_metadata(cell)
        graded, solution = C.is_graded(cell), C.is_solution(cell)
        has_solution_marker = C.BEGIN_SOLUTION in cell.source
        has_hidden_marker = C.BEGIN_HIDDEN in cell.source
        if has_solution_marker and not solution:
            problems.append(f"{where}: '{C.BEGIN_SOLUTION}' in a cell not marked as solution.")
        if has_hidden_marker and not C.is_test(cell):
            problems.append(f"{where}: '{C.BEGIN_HIDDEN}' in a cell that is not a test cell.")
        if not (graded or solution or meta.get("locked") or meta.get("task")):
            continue
        grade_id = meta.get("grade_id")
        if not grade_id:
            problems.append(f"{where}: nbgrader cell without a grade_id.")
            continue
        if grade_id in seen:
            problems.append(f"{where}: grade_id '{grade_id}' is used twice.")
        seen.add(grade_id)
        if graded or meta.get("task"):
            if C.points(cell) <= 0:
                problems.append(f"{where} ({grade_id}): graded cell without positive points.")
            total += C.points(cell)
        if C.is_test(cell) or meta.get("task"):
            if not meta.get("locked"):
                problems.append(f"{where} ({grade_id}): test and task cells must be locked.")
            if not grade_id.startswith("test_") and not meta.get("task"):
                problems.append(f"{where}: test cell id '{grade_id}' should start with 'test_'.")
            pending_solution = None
        if solution and cell.cell_type == "code":
            if pending_solution:
                problems.append(
                    f"{path.name}: solution cell '{pending_solution}' has no test cell "
                    "after it (before the next solution cell)."
                )
            pending_solution = grade_id
        if C.is_manual_answer(cell) and not grade_id.startswith("answer_"):
            problems.append(f"{where}: manual answer id '{grade_id}' should start with 'answer_'.")
    if pending_solution:
        problems.append(f"{path.name}: solution cell '{pending_solution}' has no test after it.")
    return problems, total


def secret_lines(path: Path) -> set[str]:
    """Lines of solution and hidden-test regions that appear nowhere else in the notebook."""
    nb = C.read_notebook(path)
    secret: set[str] = set()
    public: set[str] = set()
    for cell in nb.cells:
        inside = set()
        for begin, end in ((C.BEGIN_SOLUTION, C.END_SOLUTION), (C.BEGIN_HIDDEN, C.END_HIDDEN)):
            for region in C.regions(cell.source, begin, end):
                inside.update(line.strip() for line in region.split("\n"))
        if C.is_manual_answer(cell) and cell.cell_type == "markdown":
            inside.update(line.strip() for line in cell.source.split("\n"))
        secret |= inside
        public |= {line.strip() for line in cell.source.split("\n")} - inside
    return {line for line in secret - public if len(line) >= MIN_SECRET_LINE}


def check_release(course_root: Path, assignment: Assignment) -> list[str]:
    """Sync of release/ with a fresh build, and the leak scan."""
    problems = []
    committed = Path(course_root) / "release" / assignment.id
    if not committed.is_dir():
        return [f"release/{assignment.id}/ is missing: run 'course build {assignment.id}'."]
    with tempfile.TemporaryDirectory(prefix="course-check-") as scratch:
        fresh = build_release(course_root, assignment, Path(scratch))
        comparison = filecmp.dircmp(fresh, committed, ignore=[])
        stale = _differences(comparison)
        if stale:
            problems.append(
                f"release/{assignment.id}/ is out of sync with source/ ({', '.join(stale)}): "
                f"run 'course build {assignment.id}' and commit the result."
            )
    secrets = set()
    for notebook in assignment.notebooks:
        secrets |= secret_lines(C.source_notebook(course_root, assignment.id, notebook))
    for released in sorted(p for p in committed.rglob("*") if p.is_file()):
        text = released.read_text(encoding="utf-8", errors="ignore")
        for marker in C.MARKERS:
            if marker in text:
                problems.append(f"{released}: contains '{marker}'.")
        leaked = sorted(secrets & _released_lines(released, text))
        if leaked:
            problems.append(f"{released}: contains solution or hidden-test text: {leaked[0]!r}")
    return problems


def _released_lines(path: Path, text: str) -> set[str]:
    """Stripped lines of a released file (of its cells' sources for a notebook)."""
    if path.suffix == ".ipynb":
        text = "\n".join(cell.source for cell in C.read_notebook(path).cells)
    return {line.strip() for line in text.split("\n")}


def _differences(comparison: filecmp.dircmp, prefix: str = "") -> list[str]:
    found = [
        prefix + n for n in comparison.left_only + comparison.right_only + comparison.diff_files
    ]
    # dircmp compares by size and time only; compare contents of the files it calls equal.
    found += [
        prefix + n
        for n in comparison.same_files
        if not filecmp.cmp(Path(comparison.left) / n, Path(comparison.right) / n, shallow=False)
    ]
    for name, sub in comparison.subdirs.items():
        found += _differences(sub, f"{prefix}{name}/")
    return found


def check_course(course_root: Path, *, release: bool = True) -> list[str]:
    """Every problem of the course, one sentence each (empty when all is well)."""
    course_root = Path(course_root)
    try:
        manifest = load_manifest(course_root)
    except ManifestError as error:
        return [str(error)]
    problems: list[str] = []
    source_root = course_root / "source"
    if source_root.is_dir():
        for folder in sorted(p for p in source_root.iterdir() if p.is_dir()):
            if folder.name not in manifest:
                problems.append(
                    f"source/{folder.name}/ has no manifest entry assignments/{folder.name}.toml."
                )
    for assignment in manifest.values():
        total = 0.0
        missing = False
        for notebook in assignment.notebooks:
            path = C.source_notebook(course_root, assignment.id, notebook)
            if not path.is_file():
                problems.append(f"{path} is listed in the manifest but does not exist.")
                missing = True
                continue
            notebook_problems, points = lint_notebook(path)
            problems += notebook_problems
            total += points
        if missing:
            continue
        if abs(total - assignment.total_points) > 1e-9:
            problems.append(
                f"{assignment.id}: graded cells add up to {total:g} points, the "
                f"manifest says total_points = {assignment.total_points:g}."
            )
        for sample in load_samples(course_root, assignment.id):
            problems += validate_sample(sample, course_root, assignment)
        if release:
            problems += check_release(course_root, assignment)
    return problems
