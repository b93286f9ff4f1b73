"""Finding submissions: nbgrader's ``<student>/<assignment>/`` folders, per-student folders, or an
LMS zip (Canvas-style flat files ``<student>_<...>.ipynb``, Moodle-style ``<Name>_<id>_assignsub
mission_file_/`` folders). Submissions are only read, never modified.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path
from typing import NamedTuple

from hw_utils.manifest import Assignment

MAX_NOTEBOOK_BYTES = 50 * 2**20
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_CANVAS_RESUBMISSION = re.compile(r"-\d+$")  # Canvas names a resubmission <name>-1.ipynb


class Submission(NamedTuple):
    """One student's files for one assignment.

    ``notebooks`` maps each notebook name of the assignment to the file to grade (absent when not
    found); ``flags`` notes what was unusual (e.g. ``renamed_notebook``); ``problem`` says why the
    submission cannot be graded at all (``None`` when it can).
    """

    student_id: str
    notebooks: dict[str, Path]
    flags: tuple[str, ...]
    problem: str | None


class SubmissionsError(ValueError):
    """The submissions location itself is unusable (missing, not a folder or zip, unsafe zip)."""


def safe_student_id(raw: str) -> str:
    """A student id nbgrader and file systems accept: letters, digits, ``_ . -``."""
    cleaned = _UNSAFE.sub("_", raw.strip()).strip("._")
    return cleaned or "unnamed"


def extract_zip(archive: Path, destination: Path) -> Path:
    """Extract an LMS zip, refusing absolute paths, ``..``, links and oversized members."""
    try:
        with zipfile.ZipFile(archive) as zf:
            if sum(m.file_size for m in zf.infolist()) > 20 * MAX_NOTEBOOK_BYTES:
                raise SubmissionsError(f"{archive}: more than 1 GB uncompressed; split the batch.")
            for member in zf.infolist():
                name = Path(member.filename)
                if name.is_absolute() or ".." in name.parts:
                    raise SubmissionsError(f"{archive}: unsafe path in zip: {member.filename!r}")
                if (member.external_attr >> 16) & 0o170000 == 0o120000:
                    raise SubmissionsError(
                        f"{archive}: zip contains a symbolic link: {member.filename}"
                    )
                if member.file_size > MAX_NOTEBOOK_BYTES and member.filename.endswith(".ipynb"):
                    raise SubmissionsError(f"{archive}: {member.filename} is larger than 50 MB")
            if not zf.infolist():
                raise SubmissionsError(f"{archive} is an empty zip: no submission to grade.")
            zf.extractall(destination)
    except zipfile.BadZipFile as exc:
        raise SubmissionsError(f"{archive} is not a valid zip file ({exc}).") from exc
    return destination


def _unwrap(folder: Path, assignment: Assignment) -> Path:
    """Descend into a single wrapper folder (``submissions/alice/...``) that is not itself one
    student's submission."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(("__MACOSX", "."))]
    if len(entries) != 1 or not entries[0].is_dir() or (entries[0] / assignment.id).is_dir():
        return folder
    inner = entries[0]
    notebook_prefixes = {p.name.split("_")[0] for p in inner.glob("*.ipynb")}
    has_folders = any(p.is_dir() for p in inner.iterdir())
    return (
        inner if len(notebook_prefixes) > 1 or (has_folders and not notebook_prefixes) else folder
    )


def _match_notebooks(
    files: list[Path], assignment: Assignment
) -> tuple[dict[str, Path], list[str], str | None]:
    notebooks = [f for f in files if f.suffix == ".ipynb" and ".ipynb_checkpoints" not in f.parts]
    found: dict[str, Path] = {}
    flags: list[str] = []
    for name in assignment.notebooks:
        exact = [f for f in notebooks if f.stem == name]
        if exact:
            found[name] = exact[0]
    missing = [n for n in assignment.notebooks if n not in found]
    leftovers = [f for f in notebooks if f not in found.values()]
    if len(missing) == 1 and len(leftovers) == 1:
        found[missing[0]] = leftovers[0]
        flags.append("renamed_notebook")
        missing = []
    if not notebooks:
        return found, flags, "no notebook (.ipynb) in the submission"
    if missing:
        names = ", ".join(f.name for f in leftovers) or "none"
        wanted = ", ".join(m + ".ipynb" for m in missing)
        return found, flags, f"notebook {wanted} not found (other notebooks: {names})"
    return found, flags, None


def _is_link(path: Path, root: Path) -> bool:
    """``path`` or a folder between ``root`` and it is a symbolic link."""
    return any(p.is_symlink() for p in (path, *path.parents) if p != root and root in p.parents)


def _from_student_folder(student_id: str, folder: Path, assignment: Assignment) -> Submission:
    nested = folder / assignment.id
    root = nested if nested.is_dir() and not nested.is_symlink() else folder
    entries = sorted(root.rglob("*"))
    # A link could point at anything on the grading machine (the instructor's solutions): only
    # regular files are read.
    links = [p for p in entries if _is_link(p, root)]
    files = [p for p in entries if p.is_file() and p not in links]
    found, flags, problem = _match_notebooks(files, assignment)
    linked_notebooks = [p.name for p in links if p.suffix == ".ipynb"]
    if problem and linked_notebooks:
        problem = (
            f"{', '.join(linked_notebooks)}: a symbolic link, not a notebook file; "
            "submit the notebook itself"
        )
    return Submission(safe_student_id(student_id), found, tuple(flags), problem)


def _unique(student_id: str, seen: set[str]) -> str:
    """``student_id``, or ``<student_id>_<k>`` with the smallest k >= 2 that nobody has."""
    if student_id not in seen:
        return student_id
    k = 2
    while f"{student_id}_{k}" in seen:
        k += 1
    return f"{student_id}_{k}"


def _student_from_folder_name(name: str) -> str:
    return name.split("_assignsubmission")[0] if "_assignsubmission" in name else name


def discover(location: Path, assignment: Assignment, scratch: Path) -> list[Submission]:
    """All submissions at ``location`` (a folder or a zip; zips are extracted into ``scratch``).

    Flat notebook files ``<student>_<anything>.ipynb`` (Canvas) are grouped by the text before the
    first underscore; folders give one student each. Student ids are made file-system safe; two
    folders that map to the same id are both kept, the second flagged ``duplicate_student``.
    """
    location = Path(location)
    if not location.exists():
        raise SubmissionsError(f"{location} does not exist: pass the folder or zip of submissions.")
    if location.is_file():
        if location.suffix.lower() != ".zip":
            raise SubmissionsError(
                f"{location} is a file but not a .zip: pass a folder or an LMS zip."
            )
        location = _unwrap(extract_zip(location, Path(scratch) / "unzipped"), assignment)
    if not location.is_dir():
        raise SubmissionsError(f"{location} is not a folder.")

    submissions: list[Submission] = []
    seen: set[str] = set()
    flat: dict[str, list[Path]] = {}
    for entry in sorted(location.iterdir()):
        if entry.name.startswith((".", "__MACOSX")) or entry.is_symlink():
            continue
        if entry.is_dir():
            submission = _from_student_folder(
                _student_from_folder_name(entry.name), entry, assignment
            )
        elif entry.suffix == ".ipynb":
            flat.setdefault(entry.name.split("_")[0], []).append(entry)
            continue
        else:
            continue
        if submission.student_id in seen:
            submission = submission._replace(
                student_id=_unique(submission.student_id, seen),
                flags=(*submission.flags, "duplicate_student"),
            )
        seen.add(submission.student_id)
        submissions.append(submission)
    for raw_student, files in flat.items():
        found, flags, problem = _match_notebooks(files, assignment)
        # Canvas prefixes every file, so the stem never equals the notebook name exactly.
        flags = [f for f in flags if f != "renamed_notebook"]
        if problem is None and any(
            not _CANVAS_RESUBMISSION.sub("", f.stem).endswith(name) for name, f in found.items()
        ):
            flags.append("renamed_notebook")
        student_id = safe_student_id(raw_student)
        if student_id in seen:
            student_id, flags = _unique(student_id, seen), [*flags, "duplicate_student"]
        seen.add(student_id)
        submissions.append(Submission(student_id, found, tuple(flags), problem))
    return submissions


def copy_submission(submission: Submission, destination: Path) -> dict[str, Path]:
    """Copy the notebooks to ``destination/<notebook>.ipynb`` (grading never touches originals)."""
    destination.mkdir(parents=True, exist_ok=True)
    copies = {}
    for name, path in submission.notebooks.items():
        copies[name] = destination / f"{name}.ipynb"
        shutil.copyfile(path, copies[name])
    return copies
