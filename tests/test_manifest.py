"""The course manifest: parsing, errors that name the file and key, course discovery."""

from __future__ import annotations

import pytest

from hw_utils.manifest import (
    CourseNotFoundError,
    ManifestError,
    find_course_root,
    get_assignment,
    load_assignment,
    load_manifest,
)

VALID = """
title = "Fixture"
order = 3
notebooks = ["hw3_thing"]
total_points = 12.5

[limits]
cell_timeout_s = 30
notebook_timeout_s = 120
memory_mb = 2048
max_processes = 64
disk_mb = 128
output_max_lines = 500
"""


def test_repo_manifest_is_valid_and_ordered(repo_root):
    manifest = load_manifest(repo_root)
    orders = [a.order for a in manifest.values()]
    assert orders == sorted(orders)
    for assignment_id in manifest:
        assert (repo_root / "source" / assignment_id).is_dir(), assignment_id


def test_valid_entry_parses(tmp_path):
    path = tmp_path / "hw3_thing.toml"
    path.write_text(VALID)
    entry = load_assignment(path)
    assert entry.id == "hw3_thing" and entry.total_points == 12.5
    assert entry.limits.memory_mb == 2048 and entry.datasets == ()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (VALID.replace("order = 3\n", ""), "missing key 'order'"),
        (VALID.replace("memory_mb = 2048", 'memory_mb = "2G"'), "'memory_mb' = '2G'"),
        (VALID.replace('["hw3_thing"]', '["hw3_thing.ipynb"]'), "without .ipynb"),
        (VALID + "\n[[", "not valid TOML"),
    ],
)
def test_errors_name_file_and_problem(tmp_path, text, fragment):
    path = tmp_path / "hw3_thing.toml"
    path.write_text(text)
    with pytest.raises(ManifestError) as info:
        load_assignment(path)
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_file_name_must_be_an_assignment_id(tmp_path):
    path = tmp_path / "Homework 3.toml"
    path.write_text(VALID)
    with pytest.raises(ManifestError, match="file name should be the assignment id"):
        load_assignment(path)


def test_duplicate_order_and_unknown_id(tmp_path):
    (tmp_path / "assignments").mkdir()
    (tmp_path / "assignments/hw3_thing.toml").write_text(VALID)
    (tmp_path / "assignments/hw4_other.toml").write_text(VALID.replace("hw3_thing", "hw4_other"))
    with pytest.raises(ManifestError, match="share an 'order'"):
        load_manifest(tmp_path)
    (tmp_path / "assignments/hw4_other.toml").unlink()
    with pytest.raises(ManifestError, match="Known assignments: hw3_thing"):
        get_assignment(tmp_path, "hw4_other")


def test_course_root_is_found_from_a_subfolder(repo_root, monkeypatch):
    monkeypatch.delenv("COURSE_DIR", raising=False)
    assert find_course_root(repo_root / "hw_utils" / "grading") == repo_root


def test_no_course_root(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_DIR", raising=False)
    with pytest.raises(CourseNotFoundError, match=r"nbgrader_config\.py"):
        find_course_root(tmp_path)
