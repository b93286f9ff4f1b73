"""New SQLite gradebooks are copies of one empty gradebook made once per nbgrader version."""

from __future__ import annotations

from nbgrader.api import Gradebook

from hw_utils.grading.fresh_gradebook import ensure_sqlite_gradebook


def test_a_missing_sqlite_file_becomes_an_empty_gradebook_nbgrader_opens(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("a.db", "b.db"):  # the second one is copied from the cache
        url = f"sqlite:///{tmp_path / 'course' / name}?timeout=120"
        ensure_sqlite_gradebook(url)
        with Gradebook(url.split("?")[0]) as gb:
            assert gb.assignments == [] and gb.students == []
            gb.add_student("alice")
    assert len(list((tmp_path / "cache" / "hw_utils").glob("empty-gradebook-*.db"))) == 1
    with Gradebook(f"sqlite:///{tmp_path / 'course' / 'a.db'}") as gb:
        assert [s.id for s in gb.students] == ["alice"], "each course has its own copy"


def test_an_existing_gradebook_and_other_databases_are_left_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    existing = tmp_path / "gradebook.db"
    existing.write_bytes(b"not touched")
    ensure_sqlite_gradebook(f"sqlite:///{existing}")
    assert existing.read_bytes() == b"not touched"
    ensure_sqlite_gradebook("postgresql+psycopg://grader@/course?host=/tmp/nowhere")
    assert not (tmp_path / "cache").exists(), "nothing made for a server's gradebook"
