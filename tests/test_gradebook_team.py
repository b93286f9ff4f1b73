"""A gradebook for a team of graders: PostgreSQL end to end, and `course grade` runs at once.

Against a real PostgreSQL server that the test starts itself (Debian's package, a throwaway
cluster on a unix socket): `course grade` writes the scores, formgrader (a real Jupyter server,
through its REST API) enters a manual grade, `nbgrader export` reads both. Then three
`course grade` commands run at the same time on one gradebook, SQLite and PostgreSQL: two halves
of a class and a second assignment; every row must arrive.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import urllib.request
from contextlib import nullcontext
from pathlib import Path

import pytest
from browser.lab_server import LabSpec, lab_servers
from conftest import make_fixture_course
from nbgrader.api import Gradebook
from postgres_server import postgres_server
from test_grading_fixture import ASSIGNMENT, require_bwrap

from hw_utils.grading.gradebook import default_db_url
from hw_utils.grading.nbgrader_cli import nbgrader_env
from hw_utils.grading.samples import expected_scores, load_samples, materialise
from hw_utils.manifest import get_assignment

pytestmark = pytest.mark.grading
COURSE = str(Path(sys.executable).parent / "course")
SECOND = "hw8_fixture"


def _use_database(course: Path, url: str) -> None:
    with open(course / "nbgrader_config.py", "a") as f:
        f.write(f"\nc.CourseDirectory.db_url = {url!r}\n")


def _course_grade(course: Path, assignment: str, submissions: Path, out: Path, *extra: str):
    command = [COURSE, "grade", assignment, "--submissions", str(submissions), "--out", str(out)]
    return subprocess.Popen(
        [*command, "--jobs", "1", *extra],
        cwd=course,
        env=nbgrader_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(process: subprocess.Popen) -> None:
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output[-3000:]


def _scores(url: str, assignment: str) -> dict[str, float]:
    with Gradebook(url) as gb:
        return {s.student.id: s.score for s in gb.find_assignment(assignment).submissions}


def _samples(course: Path, assignment_id: str, destination: Path) -> dict[str, float]:
    assignment = get_assignment(course, assignment_id)
    expected = {}
    for sample in load_samples(course, assignment_id):
        materialise(sample, course, assignment, destination)
        expected[sample.student_id] = sum(expected_scores(sample, course, assignment).values())
    return expected


def _api(server, path: str, method: str = "GET", body: dict | None = None):
    request = urllib.request.Request(
        server.url(f"formgrader/api/{path}"),
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"token {server.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


def test_postgresql_gradebook_grade_formgrader_export(tmp_path):
    require_bwrap()
    course = make_fixture_course(tmp_path / "course")
    expected = _samples(course, ASSIGNMENT, tmp_path / "submissions")
    with postgres_server() as url:
        _use_database(course, url)
        assert default_db_url(course) == url, "course grade uses the course's configured db"
        _finish(_course_grade(course, ASSIGNMENT, tmp_path / "submissions", tmp_path / "out"))
        assert _scores(url, ASSIGNMENT) == expected
        assert not (course / "gradebook.db").exists(), "nothing went to SQLite"

        with lab_servers(LabSpec(course, tmp_path / "lab")) as (server,):
            notebooks = _api(server, f"submitted_notebooks/{ASSIGNMENT}/{ASSIGNMENT}")
            full = next(n for n in notebooks if n["student"] == "sample_full")
            grades = _api(server, f"grades?submission_id={full['id']}")
            answer = next(g for g in grades if g["name"] == "answer_empty_mean")
            _api(server, f"grade/{answer['id']}", "PUT", {"manual_score": 2.5})

        subprocess.run(
            [sys.executable, "-m", "nbgrader", "export", "--to=export.csv"],
            cwd=course,
            env=nbgrader_env(),
            check=True,
            capture_output=True,
        )
        with open(course / "export.csv") as f:
            exported = {r["student_id"]: float(r["raw_score"]) for r in csv.DictReader(f)}
        assert exported["sample_full"] == expected["sample_full"] + 2.5
        assert exported["sample_blank"] == 0


def _second_assignment(course: Path) -> None:
    """A copy of the fixture assignment under another id, built."""
    for folder in ("source", "samples"):
        shutil.copytree(course / folder / ASSIGNMENT, course / folder / SECOND)
    (course / "source" / SECOND / f"{ASSIGNMENT}.ipynb").rename(
        course / "source" / SECOND / f"{SECOND}.ipynb"
    )
    manifest = (course / "assignments" / f"{ASSIGNMENT}.toml").read_text()
    manifest = manifest.replace(ASSIGNMENT, SECOND).replace("order = 9", "order = 8")
    (course / "assignments" / f"{SECOND}.toml").write_text(manifest)
    subprocess.run([COURSE, "build", SECOND], cwd=course, env=nbgrader_env(), check=True)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_course_grade_runs_at_the_same_time_keep_every_row(database, tmp_path):
    require_bwrap()
    course = make_fixture_course(tmp_path / "course")
    _second_assignment(course)
    everyone = _samples(course, ASSIGNMENT, tmp_path / "all")
    halves = [tmp_path / "half_a", tmp_path / "half_b"]
    for index, student in enumerate(sorted(everyone)):
        shutil.copytree(tmp_path / "all" / student, halves[index % 2] / student)
    second = _samples(course, SECOND, tmp_path / "second")
    server = postgres_server() if database == "postgresql" else nullcontext(default_db_url(course))
    with server as url:
        if database == "postgresql":
            _use_database(course, url)
        runs = [
            _course_grade(course, ASSIGNMENT, halves[0], tmp_path / "out_a"),
            _course_grade(course, ASSIGNMENT, halves[1], tmp_path / "out_b"),
            _course_grade(course, SECOND, tmp_path / "second", tmp_path / "out_second"),
        ]
        for run in runs:
            _finish(run)
        assert _scores(url, ASSIGNMENT) == everyone
        assert _scores(url, SECOND) == second
    for out, students in [
        ("out_a", sorted(everyone)[0::2]),
        ("out_b", sorted(everyone)[1::2]),
        ("out_second", sorted(second)),
    ]:
        with open(tmp_path / out / "grades.csv") as f:
            assert sorted(r["student_id"] for r in csv.DictReader(f)) == students
        feedback = {p.name for p in (tmp_path / out / "feedback").iterdir()}
        assert feedback == set(students), "each run renders the feedback of its own students"
