"""``course similarity``: how alike the students' code is, pair by pair, for a grader to read.

A student's code is what the student wrote in the autograded notebooks: the lines of each
solution cell (code cells with nbgrader ``solution: true``) that its release version does not
have (the signature, docstring and stub stay out), and the code cells the student added. The
boilerplate is every code cell of the release notebooks (stubs, signatures, docstrings, the
instructor's given code and visible tests): its fingerprints are also taken out of every
student's, so two students who only filled in the same stubs, or both pasted a given helper,
do not look alike.

Fingerprints come from copydetect (winnowing, Schleimer, Wilkerson and Aiken, SIGMOD 2003): the
code is tokenised with Pygments, names, function names and strings are replaced by one letter
each (renaming variables changes nothing), comments and spacing go, and the hashes of its
k-character substrings form a set (reordering functions changes nothing). The similarity of a
pair is the larger of the two shares of each student's fingerprinted code found in the other's.

The report never changes a grade: it points a grader at pairs worth reading.
"""

from __future__ import annotations

import csv
import difflib
import io
import itertools
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
from copydetect import CodeFingerprint, compare_files
from copydetect.utils import highlight_overlap
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from hw_utils.grading import cells as C
from hw_utils.grading import htmlpage as H
from hw_utils.grading.outcomes import GradingOutputError, autograded_students, read_autograded
from hw_utils.manifest import Assignment, get_assignment

# copydetect's defaults: k-grams of 25 characters of the filtered code, every one kept.
NOISE_CHARS = 25
GUARANTEE_CHARS = 25
DEFAULT_THRESHOLD = 0.5
# A pair is reported only when at least this much filtered code matches (about two lines), so
# that two students who each wrote one short formula the same way are not listed.
MIN_OVERLAP_CHARS = 60
MAX_PAIRS_SHOWN = 100
NEVER_CHANGES_A_GRADE = (
    "This report never changes a grade. Similar code is a reason to read two submissions side "
    "by side, not a finding: shared notes, the lecture's code and a common textbook idiom look "
    "alike too."
)


class StudentCode(NamedTuple):
    """What one student wrote, the cells joined, each under a comment naming it."""

    student_id: str
    code: str


class Pair(NamedTuple):
    """Two students whose code is alike: the similarity, each one's share found in the other's,
    the matching filtered characters, and the matching spans (2 x N start/end offsets into each
    student's code)."""

    student_a: str
    student_b: str
    similarity: float
    share_a: float
    share_b: float
    overlap: int
    spans_a: np.ndarray
    spans_b: np.ndarray


class Release(NamedTuple):
    """The release version of one notebook: its solution cells' sources by grade id, and the
    sources of all its code cells."""

    solutions: dict[str, str]
    code: list[str]


class SimilarityReport(NamedTuple):
    assignment: Assignment
    threshold: float
    codes: dict[str, StudentCode]
    without_code: tuple[str, ...]
    pairs: list[Pair]
    scores: list[float]


class SimilarityFiles(NamedTuple):
    html: Path
    csv: Path


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def release_code(course_root: Path, assignment: Assignment) -> dict[str, Release]:
    """Notebook -> its release version."""
    code = {}
    for notebook in assignment.notebooks:
        path = C.release_notebook(course_root, assignment.id, notebook)
        if not path.is_file():
            raise GradingOutputError(
                f"No release notebook {path}: build it with course build {assignment.id}."
            )
        released = C.read_notebook(path)
        sources = [c for c in released.cells if c.cell_type == "code"]
        code[notebook] = Release(
            {C.grade_id(c): c.source for c in sources if C.is_solution(c)},
            [c.source for c in sources],
        )
    return code


def own_lines(released: str, written: str) -> str:
    """The lines of ``written`` (a solution cell) that are not in its ``released`` version."""
    given, lines = released.split("\n"), written.split("\n")
    matcher = difflib.SequenceMatcher(None, given, lines, autojunk=False)
    own = [
        line
        for tag, _, _, start, end in matcher.get_opcodes()
        if tag in ("insert", "replace")
        for line in lines[start:end]
    ]
    return "\n".join(own) if any(line.strip() for line in own) else ""


def student_code(notebook: dict, name: str, released: Release) -> str:
    """What the student wrote in an autograded notebook (JSON): the own lines of each solution
    cell and the code cells that are not in the release."""
    given = {source.strip() for source in released.code}
    parts = []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {}) or {}
        source = _source(cell)
        if meta.get("solution"):
            grade_id = meta.get("grade_id", "")
            own = own_lines(released.solutions.get(grade_id, ""), source)
            if own:
                parts.append(f"# --- {name}: {grade_id} ---\n{own}")
        elif not meta.get("grade_id") and source.strip() and source.strip() not in given:
            parts.append(f"# --- {name}: a cell the student added ---\n{source}")
    return "\n\n".join(parts)


def _fingerprint(
    name: str, code: str, window: int, boilerplate: np.ndarray | None = None
) -> CodeFingerprint:
    return CodeFingerprint(
        f"{name}.py",
        NOISE_CHARS,
        window,
        boilerplate=boilerplate,
        language="python",
        fp=io.StringIO(code),
    )


def compare(
    codes: list[StudentCode], boilerplate: str, threshold: float = DEFAULT_THRESHOLD
) -> tuple[list[Pair], list[float], tuple[str, ...]]:
    """Every pair of ``codes`` compared after removing ``boilerplate``: the pairs at or above
    ``threshold`` (most similar first), every pair's similarity, and the students with no code
    of their own (nothing beyond the boilerplate), who are compared with nobody."""
    # Every k-gram of the boilerplate (window 1), as copydetect does.
    common = np.array(sorted(_fingerprint("boilerplate", boilerplate, 1).hashes))
    window = GUARANTEE_CHARS - NOISE_CHARS + 1
    prints = {c.student_id: _fingerprint(c.student_id, c.code, window, common) for c in codes}
    without = tuple(sorted(s for s, fp in prints.items() if not fp.hashes))
    compared = sorted(s for s, fp in prints.items() if fp.hashes)
    pairs, scores = [], []
    for a, b in itertools.combinations(compared, 2):
        if prints[a].hashes.isdisjoint(prints[b].hashes):
            scores.append(0.0)
            continue
        overlap, (share_a, share_b), (spans_a, spans_b) = compare_files(prints[a], prints[b])
        similarity = float(max(share_a, share_b))
        scores.append(similarity)
        if similarity >= threshold and overlap >= MIN_OVERLAP_CHARS:
            shares = float(share_a), float(share_b)
            pairs.append(Pair(a, b, similarity, *shares, int(overlap), spans_a, spans_b))
    pairs.sort(key=lambda p: (-p.similarity, -p.overlap, p.student_a, p.student_b))
    return pairs, scores, without


def similarity_report(
    course_root: Path, assignment_id: str, threshold: float = DEFAULT_THRESHOLD
) -> SimilarityReport:
    """Compare the code of every student with autograded notebooks of the assignment."""
    course_root = Path(course_root).resolve()
    assignment = get_assignment(course_root, assignment_id)
    released = release_code(course_root, assignment)
    students = autograded_students(course_root, assignment_id)
    if not students:
        raise GradingOutputError(
            f"No autograded notebooks of {assignment_id} in {course_root / 'autograded'}: grade "
            f"first with course grade {assignment_id} --submissions <folder-or-zip> --out <folder>."
        )
    codes = {}
    for student in students:
        parts = []
        for notebook in assignment.notebooks:
            graded = read_autograded(course_root, student, assignment_id, notebook)
            if graded is not None:
                parts.append(student_code(graded, notebook, released[notebook]))
        codes[student] = StudentCode(student, "\n\n".join(p for p in parts if p))
    boilerplate = "\n\n".join(source for r in released.values() for source in r.code)
    pairs, scores, without = compare(list(codes.values()), boilerplate, threshold)
    return SimilarityReport(assignment, threshold, codes, without, pairs, scores)


def _score_figure(report: SimilarityReport, name: str) -> H.PageFigure:
    figure = Figure(figsize=(6.4, 2.8))
    ax = figure.subplots()
    ax.hist(report.scores, bins=20, range=(0.0, 1.0), color="#4a6fa5", edgecolor="white")
    ax.axvline(report.threshold, color="#c0392b", linewidth=1.5, label="threshold")
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.7)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("similarity of a pair")
    ax.set_ylabel("pairs")
    ax.legend(frameon=False, fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    return H.PageFigure(
        name, H.png(figure), f"Similarity of all {len(report.scores)} pairs compared."
    )


def _side(code: str, spans: np.ndarray) -> str:
    marked, _ = highlight_overlap(code, spans, "<mark>", "</mark>", escape_html=True)
    return f"<pre>{marked}</pre>"


def _pair_html(report: SimilarityReport, pair: Pair) -> str:
    a, b = report.codes[pair.student_a], report.codes[pair.student_b]
    return (
        f'<section class="pair" data-pair="{H.esc(pair.student_a)} {H.esc(pair.student_b)}" '
        f'data-similarity="{pair.similarity:.4f}"><h3>{H.esc(pair.student_a)} and '
        f"{H.esc(pair.student_b)}: {pair.similarity:.0%}</h3>"
        f'<p class="note">{pair.share_a:.0%} of {H.esc(pair.student_a)}\'s code is found in '
        f"{H.esc(pair.student_b)}'s, {pair.share_b:.0%} the other way; marked: the matching "
        f'code.</p><div class="sides"><div><b>{H.esc(pair.student_a)}</b>'
        f"{_side(a.code, pair.spans_a)}</div><div><b>{H.esc(pair.student_b)}</b>"
        f"{_side(b.code, pair.spans_b)}</div></div></section>"
    )


def write_similarity_report(report: SimilarityReport, out_dir: Path) -> SimilarityFiles:
    """Write ``<assignment>-similarity.html`` (with its figure) and ``<assignment>-similarity.csv``
    (every pair at or above the threshold)."""
    a = report.assignment
    figure = _score_figure(report, f"{a.id}-similarity.png")
    shown = report.pairs[:MAX_PAIRS_SHOWN]
    more = len(report.pairs) - len(shown)
    rows = [
        f'<tr data-pair="{H.esc(p.student_a)} {H.esc(p.student_b)}"><td>{H.esc(p.student_a)}'
        f'</td><td>{H.esc(p.student_b)}</td><td class="num">{p.similarity:.0%}</td>'
        f'<td class="num">{p.share_a:.0%} / {p.share_b:.0%}</td></tr>'
        for p in shown
    ]
    compared = len(report.codes) - len(report.without_code)
    without = (
        f"{len(report.without_code)} with too little code of their own to fingerprint (not "
        "compared): "
        f"{', '.join(H.esc(s) for s in report.without_code)}."
        if report.without_code
        else "Every student wrote code of their own."
    )
    pairs = (
        H.table(["student", "student", "similarity", "shares"], rows)
        + (f"<p>{more} more pair(s) in the CSV file.</p>" if more else "")
        + "".join(_pair_html(report, p) for p in shown)
        if shown
        else f"<p>No pair reaches {report.threshold:.0%}.</p>"
    )
    body = (
        f'<p class="banner" id="never-changes-a-grade">{H.esc(NEVER_CHANGES_A_GRADE)}</p>'
        + H.facts(
            [
                ("students", "students", str(len(report.codes))),
                ("compared", "compared", str(compared)),
                ("threshold", "threshold", f"{report.threshold:.0%}"),
                ("pairs-reported", "pairs at or above it", str(len(report.pairs))),
            ]
        )
        + f'<p class="note">{without} Solution cells and added cells of the autograded '
        "notebooks; the release notebooks' code (stubs, signatures, docstrings, given code, "
        "visible tests) is removed as boilerplate. Names and strings are normalised, so renamed "
        f"variables and reordered functions still match.</p>{H.figure_html(figure)}"
        f"<h2>Pairs, most similar first</h2>{pairs}"
    )
    lead = (
        f"{H.esc(a.title)}: pairwise similarity of the students' code (copydetect, winnowing "
        f"fingerprints of {NOISE_CHARS}-character k-grams); made {datetime.now():%Y-%m-%d %H:%M}."
    )
    html = H.write_page(
        out_dir, f"{a.id}-similarity.html", H.page(f"{a.id}: code similarity", lead, body), [figure]
    )
    table = Path(out_dir) / f"{a.id}-similarity.csv"
    with open(table, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student_a", "student_b", "similarity", "share_a", "share_b", "overlap"])
        for p in report.pairs:
            writer.writerow(
                [
                    p.student_a,
                    p.student_b,
                    f"{p.similarity:.4f}",
                    f"{p.share_a:.4f}",
                    f"{p.share_b:.4f}",
                    p.overlap,
                ]
            )
    return SimilarityFiles(html, table)
