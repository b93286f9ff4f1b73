"""A synthetic graded batch of a real assignment, for the reports' benchmark and screenshots.

Grading a class of 200 takes an hour; the reports only read what grading left behind, so this
writes that directly, through the grader's own writers where there is one: the assignment is
registered in the gradebook with nbgrader (``register_assignment``), each student's scores are
merged with ``merge_result``, ``grades.csv`` and ``cells.csv`` are written by the batch's writer,
and the autograded notebooks are the release notebooks with the students' code in the solution
cells and the source's test cells (hidden tests included, as nbgrader leaves them) printing
failures the way :func:`hw_utils.checks.score_cases` does (messages made by the real checks).

Students differ in skill: some leave stubs, some lose points in the harder cells, a few are
flagged, time out or hand in nothing. Their code is generated per student (so independent
students share little), and ``copies`` pairs hand in the same code with renamed variables and
the functions in another order.
"""

from __future__ import annotations

import ast
import json
import random
import re
import tempfile
from pathlib import Path
from typing import NamedTuple

import torch

from hw_utils import checks
from hw_utils.grading import autograde as A
from hw_utils.grading import cells as C
from hw_utils.grading.batch import NEEDS_MANUAL_GRADE, GradeRow, _write_csv
from hw_utils.grading.failures import graded_tests
from hw_utils.grading.gradebook import default_db_url, merge_result
from hw_utils.grading.outcomes import autograded_folder
from hw_utils.manifest import Assignment, get_assignment

STUB = re.compile(r"( *)# YOUR CODE HERE\n *raise NotImplementedError\([^\n]*\)")
CASE_NAME = re.compile(r'Case\(\s*f?"([^"{}]+)"')
LONG_TEXT = re.compile(r'"([^"\n{}]{30,}\.)"')
HINT_ARG = re.compile(r'hint\s*=\s*"([^"{}]+)"')
NAMED_HINT = re.compile(r'(\w+_HINTS)\["(\w+)"\]')
HINT_TABLE = re.compile(r"^(\w+_HINTS) = (\{.*?\n\})", re.S | re.M)
WORDS = ["acc", "total", "row", "col", "step", "tap", "grid", "patch", "window", "value", "part"]
FLAGS = ["renamed_notebook", "static:magic", "cell_timeout:1", "static:reference"]


class SyntheticBatch(NamedTuple):
    course: Path
    assignment: Assignment
    grades_dir: Path
    students: list[str]
    copies: list[tuple[str, str]]


def _visible(source: str) -> str:
    for region in C.regions(source, C.BEGIN_HIDDEN, C.END_HIDDEN):
        source = source.replace(region, "")
    return source


def _hint_tables(sources) -> dict[str, dict[str, str]]:
    """Hint dictionaries of the notebooks' helper cells (``CONV_HINTS = {...}``)."""
    return {
        name: ast.literal_eval(table)
        for source in sources.values()
        for cell in source.cells
        for name, table in HINT_TABLE.findall(cell.source)
    }


def _messages(cell, tables: dict[str, dict[str, str]], rng: random.Random) -> list[str]:
    """Two or three failure texts for a test cell, each printed by the real checks with a case
    name and a hint of the cell's visible tests."""
    visible = _visible(cell.source)
    names = CASE_NAME.findall(visible) or [C.grade_id(cell).removeprefix("test_")]
    hints = [
        *(h for h in HINT_ARG.findall(visible) if len(h) >= 10),
        *(t for t in LONG_TEXT.findall(visible) if t not in names),
        *(tables[t][k] for t, k in NAMED_HINT.findall(visible) if k in tables.get(t, {})),
    ] or [None]
    expected = torch.zeros(2, 3, dtype=torch.float64)
    kinds = [
        lambda name, hint: checks.assert_close(expected + 0.5, expected, name, hint=hint),
        lambda name, hint: checks.assert_shape(torch.zeros(2, 4), (2, 3), name, hint),
        lambda name, hint: checks.assert_equal(6, 5, name, hint),
    ]
    texts = []
    for kind in rng.sample(kinds, rng.randint(2, 3)):
        name, hint = rng.choice(names), rng.choice(hints)
        try:
            kind(name, hint)
        except checks.CheckFailed as failure:
            texts.append(str(failure))
    return texts


def _random_body(rng: random.Random, indent: str) -> tuple[str, list[str]]:
    """A function body of 8-14 statements with fresh names and numbers."""
    names = [f"{rng.choice(WORDS)}_{rng.randrange(1000)}" for _ in range(5)]
    lines = []
    for _ in range(rng.randint(8, 14)):
        a, b, c = rng.sample(names, 3)
        n = rng.randrange(2, 97)
        op = rng.choice(["+", "-", "*", "//", "%"])
        lines += rng.choice(
            [
                [f"{a} = {b} {op} {c} * {n}"],
                [f"for {a} in range({n}):", f"    {b} = {b} {op} {a} + {n}"],
                [f"if {a} > {n}:", f"    {b} = {c} {op} {n}"],
                [f"{a} = torch.stack([{b}, {c} {op} {n}], dim={n % 3})"],
                [f"{a} = [{b} {op} k for k in range({n}, {n + rng.randrange(3, 9)})]"],
            ]
        )
    lines.append(f"return {names[0]}")
    return "\n".join(indent + line for line in lines), names


def _body(rng: random.Random, indent: str, names: list[str]) -> str:
    body, used = _random_body(rng, indent)
    names.extend(used)
    return body


def _rename(code: str, names: list[str], rng: random.Random) -> str:
    for name in names:
        code = re.sub(rf"\b{re.escape(name)}\b", f"{rng.choice(WORDS)}{rng.randrange(10**6)}", code)
    return code


class _Class(NamedTuple):
    """What every student of the batch shares: the notebooks and the test cells' behaviour."""

    sources: dict
    releases: dict
    tests: dict  # grade id -> (source cell, difficulty, failure texts)
    functions: dict  # test grade id -> the function it tests


def _solve(notebook: dict, student: str, rng, skill: float, copy_of, written, names) -> None:
    """Put the student's code into the solution cells: generated bodies (or the stubs left),
    or the renamed code of ``copy_of`` with the functions in another order."""
    solution = [
        i for i, c in enumerate(notebook["cells"]) if c["cell_type"] == "code" and C.is_solution(c)
    ]
    for i in solution:
        cell = notebook["cells"][i]
        grade_id = C.grade_id(cell)
        if copy_of:
            code = _rename(written[copy_of][grade_id], names[copy_of], rng)
        elif rng.random() < skill + 0.15:
            code = STUB.sub(
                lambda m: _body(rng, m.group(1), names.setdefault(student, [])), cell["source"]
            )
        else:
            code = cell["source"]
        written.setdefault(student, {})[grade_id] = cell["source"] = code
    if copy_of:
        moved = [notebook["cells"][i] for i in solution]
        rng.shuffle(moved)
        for i, cell in zip(solution, moved, strict=True):
            notebook["cells"][i] = cell


def _test(cell: dict, klass: _Class, code: str, rng, skill: float, missing: bool) -> float:
    """Fill the test cell as nbgrader leaves it (source version, outputs); returns the points."""
    source, difficulty, texts = klass.tests[C.grade_id(cell)]
    points = C.points(source)
    cell["source"] = source.source
    if missing:
        cell["outputs"] = []
        return 0.0
    if "NotImplementedError" in code:
        function = klass.functions[C.grade_id(cell)]
        cell["outputs"] = [
            _error("NotImplementedError", f"{function}: replace this line with your code")
        ]
        return 0.0
    if rng.random() < difficulty * (1.6 - skill):
        total = rng.randint(3, 8)
        passed = rng.randint(0, total - 1)
        weights = [6, 2, 1][: len(texts)]
        printed = "".join(
            f"FAILED {rng.choices(texts, weights)[0]}\n" for _ in range(total - passed)
        )
        cell["outputs"] = [_stream(f"{printed}{passed} of {total} cases passed.\n")]
        return points * passed / total
    cell["outputs"] = [_stream("all cases passed.\n")]
    return points


def make_batch(
    course: Path, assignment_id: str, count: int, *, copies: int = 3, seed: int = 0
) -> SyntheticBatch:
    """Write ``count`` graded submissions of ``assignment_id`` into ``course`` (a scratch copy
    of a course: gradebook, ``autograded/``) and ``grades.csv``/``cells.csv`` into
    ``<course>/graded/<assignment_id>/``; ``copies`` pairs of students hand in the same code."""
    rng = random.Random(seed)
    course = Path(course).resolve()
    assignment = get_assignment(course, assignment_id)
    db_url = default_db_url(course)
    with tempfile.TemporaryDirectory() as scratch:
        A.register_assignment(A.trusted_copy(course, assignment, Path(scratch)), assignment, db_url)
    sources = {
        nb: C.read_notebook(C.source_notebook(course, assignment_id, nb))
        for nb in assignment.notebooks
    }
    tables = _hint_tables(sources)
    klass = _Class(
        sources,
        {nb: C.read_notebook(C.release_notebook(course, assignment_id, nb)) for nb in sources},
        {
            C.grade_id(cell): (cell, rng.uniform(0.05, 0.7), _messages(cell, tables, rng))
            for source in sources.values()
            for cell in source.cells
            if C.is_test(cell)
        },
        {t.grade_id: t.function for t in graded_tests(course, assignment)},
    )
    students = [f"student_{i:03d}" for i in range(count)]
    planted = [(students[2 * i], students[2 * i + 1]) for i in range(min(copies, count // 2))]
    copied_from = {b: a for a, b in planted}
    written: dict[str, dict[str, str]] = {}
    names: dict[str, list[str]] = {}
    rows = []
    for student in students:
        skill = rng.uniform(0.2, 1.0) ** 0.5
        status, message = A.GRADED, ""
        roll = rng.random()
        if roll < 0.03:
            status, message = A.MISSING, "no notebook in the submission"
        elif roll < 0.05:
            status, message = A.TIMEOUT, "the notebook ran past its time limit"
        flags = (rng.choice(FLAGS),) if rng.random() < 0.06 else ()
        cells, score = [], 0.0
        for nb, release in klass.releases.items():
            notebook = json.loads(json.dumps(release))
            _solve(notebook, student, rng, skill, copied_from.get(student), written, names)
            for cell in notebook["cells"]:
                if C.grade_id(cell) in klass.tests:
                    code = written[student].get(klass.functions[C.grade_id(cell)], "")
                    earned = _test(cell, klass, code, rng, skill, status == A.MISSING)
                    cells.append(A.CellScore(nb, C.grade_id(cell), earned, C.points(cell), False))
                    score += earned
            cells += [
                A.CellScore(nb, C.grade_id(cell), None, C.points(cell), True)
                for cell in sources[nb].cells
                if C.is_manual_answer(cell)
            ]
            if status != A.MISSING:
                target = autograded_folder(course, student, assignment_id)
                target.mkdir(parents=True, exist_ok=True)
                (target / f"{nb}.ipynb").write_text(json.dumps(notebook))
        merge_result(
            db_url,
            assignment_id,
            A.SubmissionResult(student, status, flags, tuple(cells), {}, message, 0.0),
        )
        seconds = 0.0 if status == A.MISSING else round(rng.lognormvariate(3.2, 0.35), 1)
        if status == A.TIMEOUT:
            seconds = float(assignment.limits.notebook_timeout_s)
        final = NEEDS_MANUAL_GRADE if status == A.GRADED else status
        rows.append(
            GradeRow(student, score, assignment.total_points, final, flags, message, seconds)
        )
    grades_dir = course / "graded" / assignment_id
    grades_dir.mkdir(parents=True, exist_ok=True)
    _write_csv(grades_dir, rows, db_url, assignment_id)
    return SyntheticBatch(course, assignment, grades_dir, students, planted)


def _stream(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text}


def _error(name: str, value: str) -> dict:
    return {
        "output_type": "error",
        "ename": name,
        "evalue": value,
        "traceback": [f"{name}: {value}"],
    }
