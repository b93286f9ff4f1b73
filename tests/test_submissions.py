"""Finding submissions in the layouts instructors really get."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from hw_utils.grading.submissions import SubmissionsError, discover, safe_student_id
from hw_utils.manifest import Assignment, Limits

ASSIGNMENT = Assignment(
    id="hw1_convolution",
    title="t",
    order=1,
    notebooks=("hw1_convolution",),
    total_points=10,
    limits=Limits(30, 60, 1024, 32, 64, 100),
    datasets=(),
    checkpoints=(),
)
NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def _put(path: Path, content: bytes = NOTEBOOK) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def _by_student(submissions):
    return {s.student_id: s for s in submissions}


def test_nbgrader_layout_and_plain_student_folders(tmp_path):
    _put(tmp_path / "subs/alice/hw1_convolution/hw1_convolution.ipynb")
    _put(tmp_path / "subs/bob/hw1_convolution.ipynb")
    _put(
        tmp_path / "subs/carol/hw1_convolution/.ipynb_checkpoints/hw1_convolution-checkpoint.ipynb"
    )
    found = _by_student(discover(tmp_path / "subs", ASSIGNMENT, tmp_path / "scratch"))
    assert found["alice"].problem is None and found["alice"].flags == ()
    assert found["bob"].notebooks["hw1_convolution"].name == "hw1_convolution.ipynb"
    assert "no notebook" in found["carol"].problem


def test_renamed_and_ambiguous_notebooks(tmp_path):
    _put(tmp_path / "subs/dave/hw1_convolution/Copy of homework.ipynb")
    _put(tmp_path / "subs/erin/a.ipynb")
    _put(tmp_path / "subs/erin/b.ipynb")
    found = _by_student(discover(tmp_path / "subs", ASSIGNMENT, tmp_path / "scratch"))
    assert found["dave"].flags == ("renamed_notebook",) and found["dave"].problem is None
    assert "hw1_convolution.ipynb not found" in found["erin"].problem
    assert "a.ipynb" in found["erin"].problem


def test_canvas_zip_of_flat_files(tmp_path):
    archive = tmp_path / "canvas.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("doejane_12345_67890_hw1_convolution.ipynb", NOTEBOOK)
        # Canvas adds "-1" to a resubmitted file: not the student's doing.
        zf.writestr("roejohn_late_22222_33333_hw1_convolution-1.ipynb", NOTEBOOK)
        zf.writestr("smithann_44444_55555_my_homework.ipynb", NOTEBOOK)
    found = _by_student(discover(archive, ASSIGNMENT, tmp_path / "scratch"))
    assert set(found) == {"doejane", "roejohn", "smithann"}
    assert found["doejane"].problem is None and found["doejane"].flags == ()
    assert found["roejohn"].problem is None and found["roejohn"].flags == ()
    assert found["smithann"].flags == ("renamed_notebook",)


def test_an_empty_zip_is_a_clear_error(tmp_path):
    archive = tmp_path / "empty.zip"
    zipfile.ZipFile(archive, "w").close()
    with pytest.raises(SubmissionsError, match="empty zip"):
        discover(archive, ASSIGNMENT, tmp_path / "scratch")


def test_moodle_zip_with_wrapper_folder(tmp_path):
    archive = tmp_path / "moodle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("HW1/Jane Doe_111_assignsubmission_file_/hw1_convolution.ipynb", NOTEBOOK)
        zf.writestr("HW1/John Roe_222_assignsubmission_file_/hw1_convolution.ipynb", NOTEBOOK)
    found = _by_student(discover(archive, ASSIGNMENT, tmp_path / "scratch"))
    assert set(found) == {"Jane_Doe_111", "John_Roe_222"}


def test_unsafe_zip_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../escape.ipynb", NOTEBOOK)
    with pytest.raises(SubmissionsError, match="unsafe path"):
        discover(archive, ASSIGNMENT, tmp_path / "scratch")


@pytest.mark.parametrize("name", ["missing", "notes.txt", "broken.zip"])
def test_unusable_location_names_the_problem(tmp_path, name):
    if name != "missing":
        (tmp_path / name).write_text("not a zip")
    with pytest.raises(SubmissionsError, match=name):
        discover(tmp_path / name, ASSIGNMENT, tmp_path / "scratch")


def test_student_ids_are_made_safe():
    assert safe_student_id("Jane Doe (2)") == "Jane_Doe_2"
    assert safe_student_id("../..") == "unnamed"


def test_links_are_never_followed(tmp_path):
    secret = tmp_path / "course/source/hw1_convolution.ipynb"
    _put(secret)
    (tmp_path / "subs/mallory/hw1_convolution").mkdir(parents=True)
    (tmp_path / "subs/mallory/hw1_convolution/hw1_convolution.ipynb").symlink_to(secret)
    _put(tmp_path / "subs/trudy/real/hw1_convolution.ipynb")
    (tmp_path / "subs/trudy/hw1_convolution").symlink_to(tmp_path / "course/source")
    (tmp_path / "subs/eve").symlink_to(tmp_path / "course/source")
    found = _by_student(discover(tmp_path / "subs", ASSIGNMENT, tmp_path / "scratch"))
    assert set(found) == {"mallory", "trudy"}
    assert found["mallory"].notebooks == {}
    assert "symbolic link" in found["mallory"].problem
    assert found["trudy"].notebooks == {
        "hw1_convolution": tmp_path / "subs/trudy/real/hw1_convolution.ipynb"
    }


def test_a_renamed_duplicate_never_takes_another_students_id(tmp_path):
    for folder in ("a", "a_2", "a~"):
        _put(tmp_path / "subs" / folder / "hw1_convolution.ipynb")
    found = discover(tmp_path / "subs", ASSIGNMENT, tmp_path / "scratch")
    ids = [s.student_id for s in found]
    assert sorted(ids) == ["a", "a_2", "a_3"], ids
    assert {s.student_id: s.flags for s in found}["a_3"] == ("duplicate_student",)
