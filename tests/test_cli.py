"""The `course` command: help, clear errors, and exit codes."""

from __future__ import annotations

import shutil
import subprocess
import sys

import nbformat
import pytest
from nbgrader.api import Gradebook

from hw_utils.cli import main
from hw_utils.grading import sandbox


def _grade(course, assignment: str, submissions) -> int:
    return main(
        [
            "--course-dir",
            str(course),
            "grade",
            assignment,
            "--submissions",
            str(submissions),
            "--out",
            str(course / "out"),
        ]
    )


def test_help_lists_every_command():
    result = subprocess.run(
        [sys.executable, "-m", "hw_utils", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("build", "check", "execute", "grade", "demo"):
        assert command in result.stdout


def test_outside_a_course_the_error_says_where_to_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COURSE_DIR", raising=False)
    assert main(["check"]) == 2
    assert "No course directory" in capsys.readouterr().err


def test_unknown_assignment_lists_the_known_ones(fixture_course, capsys):
    code = _grade(fixture_course, "hw1_convolutoin", str(fixture_course))
    assert code == 2
    err = capsys.readouterr().err
    assert "Unknown assignment 'hw1_convolutoin'" in err and "hw9_fixture" in err


def test_missing_submissions_folder(fixture_course, capsys):
    code = _grade(fixture_course, "hw9_fixture", str(fixture_course / "nope"))
    assert code == 2
    assert "nope does not exist" in capsys.readouterr().err


def test_grading_refuses_without_bubblewrap(fixture_course, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    code = _grade(fixture_course, "hw9_fixture", str(fixture_course))
    assert code == 2
    err = capsys.readouterr().err
    assert "apt-get install bubblewrap" in err and "--no-sandbox" in err


def test_grading_refuses_a_python_under_tmp_the_sandbox_would_hide(
    fixture_course, monkeypatch, capsys
):
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/bwrap")
    monkeypatch.setattr(sandbox, "python_roots", lambda: ["/usr/lib/python3", "/tmp/ci/.venv"])
    code = _grade(fixture_course, "hw9_fixture", str(fixture_course))
    assert code == 2
    err = capsys.readouterr().err
    assert "/tmp/ci/.venv" in err and "outside /tmp" in err and "--no-sandbox" in err


def test_check_reports_problems_with_exit_1(fixture_course, capsys):
    (fixture_course / "source/hw8_orphan").mkdir()
    assert main(["--course-dir", str(fixture_course), "check"]) == 1
    assert "hw8_orphan" in capsys.readouterr().out


def test_demo_grades_the_samples_into_the_gradebook(fixture_course, capsys):
    code = main(["--course-dir", str(fixture_course), "demo", "--jobs", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    samples = sorted(p.stem for p in (fixture_course / "samples" / "hw9_fixture").glob("*.toml"))
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("sample_")}
    assert sorted(rows) == [f"sample_{name}" for name in samples], out
    assert all(" ok" in row for row in rows.values()) and "MISMATCH" not in out, out
    with Gradebook(f"sqlite:///{fixture_course / 'gradebook.db'}") as gradebook:
        graded = {s.student.id: s.score for s in gradebook.assignment_submissions("hw9_fixture")}
    assert sorted(graded) == sorted(rows), graded
    feedback = fixture_course / "demo" / "hw9_fixture" / "feedback" / "sample_full"
    assert list(feedback.rglob("*.html")), f"no feedback HTML in {feedback}"


def test_jobs_must_be_a_positive_number(fixture_course, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--course-dir", str(fixture_course), "demo", "--jobs", "0"])
    assert stop.value.code == 2
    assert "'0' is not a positive whole number" in capsys.readouterr().err


def test_execute_stores_fresh_outputs_and_writes_nothing_else(fixture_course, capfd):
    path = fixture_course / "source/hw9_fixture/hw9_fixture.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, path)
    files_before = sorted(p.name for p in path.parent.iterdir())

    assert main(["--course-dir", str(fixture_course), "execute", "hw9_fixture"]) == 0
    executed = nbformat.read(path, as_version=4)
    code = [cell for cell in executed.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code)
    assert any(cell.outputs for cell in code)
    assert sorted(p.name for p in path.parent.iterdir()) == files_before
    captured = capfd.readouterr()
    assert "executed source/hw9_fixture/hw9_fixture.ipynb" in captured.out
    assert captured.err == "", captured.err  # no kernel warning, no traceback


def test_demo_shows_a_representative_set_unless_asked_for_every_sample(repo_root):
    from hw_utils.grading.demo import BUGGY_PER_ASSIGNMENT, representative
    from hw_utils.grading.samples import load_samples
    from hw_utils.manifest import load_manifest

    for assignment in load_manifest(repo_root).values():
        samples = load_samples(repo_root, assignment.id)
        chosen = representative(samples, repo_root, assignment)
        ids = [s.student_id for s in chosen]
        assert ids[:2] == ["sample_blank", "sample_full"] or set(ids[:2]) == {
            "sample_full",
            "sample_blank",
        }
        buggy = [s for s in chosen if s.student_id not in ("sample_full", "sample_blank")]
        assert len(buggy) == min(BUGGY_PER_ASSIGNMENT, len(samples) - 2)
        if len(buggy) == 2:  # the second adds cells the first does not lose
            assert set(buggy[1].expected) - set(buggy[0].expected), ids
