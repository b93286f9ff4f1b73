"""``course similarity``: a copy with renamed variables and reordered functions scores high, two
independent correct solutions score low, a blank pair is not reported, given code does not make
students alike; the report never changes a grade.

The samples (``fixtures/similarity/``) are loop implementations of three hw1 functions:
``original``, ``renamed`` (original with every name changed and the functions in another order),
``independent`` (another algorithm) and ``independent_loops`` (loops like the original, written
separately).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re

import pytest
from graded_course import ADDED, ASSIGNMENT, BLANK, graded_course, sample_code

from hw_utils.cli import main
from hw_utils.grading import cells as C
from hw_utils.grading.outcomes import GradingOutputError
from hw_utils.grading.similarity import (
    DEFAULT_THRESHOLD,
    StudentCode,
    compare,
    own_lines,
    release_code,
    similarity_report,
    student_code,
)
from hw_utils.manifest import get_assignment

STUBS = '''
def conv_output_size(in_size, kernel_size, stride=1, padding=0, dilation=1):
    """Number of output positions along one axis."""
    raise NotImplementedError("conv_output_size: replace this line with your code")


def max_pool2d_forward(x, kernel_size, stride=None):
    """Max pooling with loops."""
    raise NotImplementedError("max_pool2d_forward: replace this line with your code")


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution with loops."""
    raise NotImplementedError("conv2d_forward: replace this line with your code")
'''

GIVEN_HELPER = '''
def as_pair(value):
    """An int or a pair as a pair of ints, for stride, padding, dilation and kernel sizes."""
    if isinstance(value, int):
        return (value, value)
    first, second = value
    return (int(first), int(second))


def randn(*shape, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64)
'''


def _codes(**samples: str) -> list[StudentCode]:
    return [StudentCode(student, code) for student, code in samples.items()]


def _similarities(codes: list[StudentCode], boilerplate: str = STUBS) -> dict[frozenset, float]:
    pairs, _, _ = compare(codes, boilerplate, threshold=0.0)
    return {frozenset((p.student_a, p.student_b)): p.similarity for p in pairs}


def test_a_renamed_and_reordered_copy_scores_high():
    names = ("original", "renamed")
    found = _similarities(_codes(**{n: sample_code(n) for n in names}))
    assert found[frozenset(names)] >= 0.9


def test_independent_correct_solutions_score_low():
    names = ("original", "independent", "independent_loops")
    found = _similarities(_codes(**{n: sample_code(n) for n in names}))
    for pair in itertools.combinations(names, 2):
        assert found.get(frozenset(pair), 0.0) < 0.35, pair


def test_only_the_copy_is_reported_at_the_default_threshold():
    names = ("original", "renamed", "independent", "independent_loops")
    pairs, scores, without = compare(_codes(**{n: sample_code(n) for n in names}), STUBS)
    assert [(p.student_a, p.student_b) for p in pairs] == [("original", "renamed")]
    assert len(scores) == 6 and without == ()
    (pair,) = pairs
    assert pair.spans_a.shape[0] == 2 and pair.spans_a.size > 0, "the matching code is located"


def test_a_blank_pair_is_not_reported():
    codes = _codes(blank=STUBS, empty="", other_blank=STUBS, original=sample_code("original"))
    pairs, scores, without = compare(codes, STUBS)
    assert pairs == [] and scores == []
    assert without == ("blank", "empty", "other_blank")


def test_given_code_does_not_make_students_alike():
    codes = _codes(
        one=GIVEN_HELPER + sample_code("original"), two=GIVEN_HELPER + sample_code("independent")
    )
    assert _similarities(codes, STUBS + GIVEN_HELPER).get(frozenset(("one", "two")), 0) < 0.35
    assert _similarities(codes, STUBS)[frozenset(("one", "two"))] > _similarities(
        codes, STUBS + GIVEN_HELPER
    ).get(frozenset(("one", "two")), 0), "the helper alone made them look alike"


def test_own_lines_leave_the_signature_docstring_and_stub_out():
    released = 'def f(x):\n    """Doc."""\n    # YOUR CODE HERE\n    raise NotImplementedError("f")'
    assert own_lines(released, 'def f(x):\n    """Doc."""\n    y = x + 1\n    return y') == (
        "    y = x + 1\n    return y"
    )
    assert own_lines(released, released) == ""


def test_student_code_is_solution_cells_and_added_cells(fixture_course):
    assignment = get_assignment(fixture_course, ASSIGNMENT)
    (notebook,) = assignment.notebooks
    released = release_code(fixture_course, assignment)[notebook]
    release = json.loads(C.release_notebook(fixture_course, ASSIGNMENT, notebook).read_text())
    assert student_code(release, notebook, released) == "", "the release is all boilerplate"
    solution = next(
        c
        for c in release["cells"]
        if c["metadata"].get("nbgrader", {}).get("solution") and c["cell_type"] == "code"
    )
    setup = next(
        c for c in release["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "setup"
    )
    solution["source"] = C.strip_solution_markers("".join(solution["source"])).replace(
        "raise NotImplementedError", "value = 41 + 1  # raise NotImplementedError"
    )
    release["cells"].append(
        {
            "cell_type": "code",
            "metadata": {},
            "outputs": [],
            "source": "def helper():\n    return 42\n",
        }
    )
    # the given setup code pasted into a new cell of the student's (no nbgrader metadata)
    release["cells"].append({**setup, "metadata": {}})
    code = student_code(release, notebook, released)
    assert "value = 41 + 1" in code and "def helper():" in code
    assert code.count("# ---") == 2, "a pasted copy of given code is not the student's"


def test_errors_name_the_missing_piece(fixture_course):
    with pytest.raises(GradingOutputError, match=f"No autograded notebooks of {ASSIGNMENT}"):
        similarity_report(fixture_course, ASSIGNMENT)
    (fixture_course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").unlink()
    with pytest.raises(GradingOutputError, match=f"course build {ASSIGNMENT}"):
        similarity_report(fixture_course, ASSIGNMENT)


# --- a real grading run ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return graded_course(tmp_path_factory)


def test_graded_batch_reports_the_copy_and_changes_no_grade(graded, tmp_path, capsys):
    gradebook = graded.course / "gradebook.db"
    before = hashlib.sha256(gradebook.read_bytes()).hexdigest()
    out = tmp_path / "reports"
    assert (
        main(["--course-dir", str(graded.course), "similarity", ASSIGNMENT, "--out", str(out)]) == 0
    )
    assert "no grade was changed" in capsys.readouterr().out
    assert hashlib.sha256(gradebook.read_bytes()).hexdigest() == before
    page = (out / f"{ASSIGNMENT}-similarity.html").read_text()
    assert "never changes a grade" in page
    reported = re.findall(r'<section class="pair" data-pair="([^"]+)"', page)
    copier, copied = sorted(s for s, name in ADDED.items() if name in ("original", "renamed"))
    assert reported[0] == f"{copier} {copied}"
    independent = next(s for s, name in ADDED.items() if name == "independent")
    assert not any(independent in pair.split() for pair in reported)
    assert not any(set(pair.split()) == set(BLANK) for pair in reported)
    assert "<mark>" in page, "the matching code is highlighted"
    report = similarity_report(graded.course, ASSIGNMENT, DEFAULT_THRESHOLD)
    assert set(BLANK) <= set(report.without_code)
