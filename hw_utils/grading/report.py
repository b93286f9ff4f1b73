"""``course report``: how the class did, from what ``course grade`` produced.

For one assignment (:func:`assignment_report`, :func:`write_assignment_report`): the score
distribution; per test cell, the share of students who lost points there and the most frequent
failure messages (no hidden-test text: :mod:`hw_utils.grading.failures`), the cell most students
failed first; the points lost per function; the seconds per submission; the flagged submissions.
For the whole course (:func:`course_report`, :func:`write_course_report`): one row per student,
one column per graded assignment, the totals. Both write a self-contained HTML page, its PNG
figures and a CSV for an LMS.

Scores come from the gradebook as it is now (manual grades included); status, flags and seconds
from the ``grades.csv`` of the grading run; failure messages from the autograded notebooks.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from hw_utils.grading import htmlpage as H
from hw_utils.grading.autograde import GRADED
from hw_utils.grading.batch import NEEDS_MANUAL_GRADE
from hw_utils.grading.failures import Failure, GradedTest, HiddenText, cell_failures, graded_tests
from hw_utils.grading.outcomes import (
    BatchRow,
    StudentResult,
    gradebook_url,
    read_autograded,
    read_course,
    read_grades_csv,
    read_results,
)
from hw_utils.manifest import Assignment, get_assignment, load_manifest

MESSAGES_PER_CELL = 3
SLOWEST_SHOWN = 5
NO_FUNCTION = "(before any solution cell)"
BAR_COLOR = "#c0392b"
HIST_COLOR = "#4a6fa5"


class Distribution(NamedTuple):
    """Scores of a group of students; quartiles interpolate linearly (as numpy.percentile)."""

    count: int
    minimum: float
    q1: float
    median: float
    q3: float
    maximum: float
    mean: float
    max_score: float


class MessageCount(NamedTuple):
    """A failure message (its most frequent wording), how many students got it, and how many
    wordings differing only in their numbers were grouped with it."""

    text: str
    hint: str
    students: int
    variants: int


class CellSummary(NamedTuple):
    """One test cell over the submissions whose notebook ran it."""

    test: GradedTest
    graded: int
    lost: int
    points_lost: float
    messages: tuple[MessageCount, ...]

    @property
    def share(self) -> float:
        """Share of the students who lost points in this cell."""
        return self.lost / self.graded if self.graded else 0.0


class FunctionSummary(NamedTuple):
    """The test cells of one solution cell (a function), over the students who ran them."""

    function: str
    tests: tuple[str, ...]
    points: float
    students: int
    points_lost: float

    @property
    def share(self) -> float:
        """Share of the function's points the class lost."""
        possible = self.points * self.students
        return self.points_lost / possible if possible else 0.0


class TimeSummary(NamedTuple):
    """Seconds the submissions' notebooks ran, and the slowest ones."""

    count: int
    median: float
    p90: float
    maximum: float
    slowest: tuple[tuple[str, float], ...]


class AssignmentReport(NamedTuple):
    assignment: Assignment
    db_url: str
    grades_csv: Path
    batch: dict[str, BatchRow]
    results: list[StudentResult]
    distribution: Distribution
    pending_manual: int
    statuses: dict[str, int]
    cells: list[CellSummary]
    functions: list[FunctionSummary]
    time: TimeSummary | None
    flagged: list[BatchRow]


class CourseRow(NamedTuple):
    """One student over the course; ``None`` where the student has no submission."""

    student_id: str
    scores: tuple[float | None, ...]
    total: float


class CourseReport(NamedTuple):
    db_url: str
    assignments: list[Assignment]
    maxima: dict[str, float]
    rows: list[CourseRow]
    per_assignment: dict[str, Distribution]
    totals: Distribution

    @property
    def max_total(self) -> float:
        return sum(self.maxima.values())


class ReportFiles(NamedTuple):
    html: Path
    csv: Path
    figures: tuple[Path, ...]


def distribution(scores: list[float], max_score: float) -> Distribution:
    """Count, range, quartiles and mean of ``scores`` (at least one)."""
    ordered = sorted(scores)
    if len(ordered) == 1:
        q1 = median = q3 = ordered[0]
    else:
        q1, median, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return Distribution(
        len(ordered),
        ordered[0],
        q1,
        median,
        q3,
        ordered[-1],
        statistics.fmean(ordered),
        max_score,
    )


def _messages(failures: list[list[Failure]]) -> tuple[MessageCount, ...]:
    """The most frequent messages of a cell; ``failures`` has one list per student."""
    students: Counter = Counter()
    wordings: dict[tuple[str, str], Counter] = {}
    for found in failures:
        for key in {failure.key for failure in found}:
            students[key] += 1
        for failure in found:
            wordings.setdefault(failure.key, Counter())[failure.text] += 1
    return tuple(
        MessageCount(wordings[key].most_common(1)[0][0], key[1], count, len(wordings[key]))
        for key, count in students.most_common(MESSAGES_PER_CELL)
    )


def _cell_summaries(
    course_root: Path, assignment: Assignment, results: list[StudentResult]
) -> list[CellSummary]:
    """Every test cell, in notebook order."""
    tests = graded_tests(course_root, assignment)
    hidden = HiddenText(course_root, assignment)
    scores = {(r.student_id, c.notebook, c.grade_id): c for r in results for c in r.cells}
    ran: dict[tuple[str, str], dict[str, dict]] = {}
    for result in results:
        for notebook in assignment.notebooks:
            graded = read_autograded(course_root, result.student_id, assignment.id, notebook)
            if graded is not None:
                ran[result.student_id, notebook] = {
                    cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"): cell
                    for cell in graded.get("cells", [])
                }
    summaries = []
    for test in tests:
        graded = lost = 0
        points_lost = 0.0
        failures = []
        for result in results:
            cell = scores.get((result.student_id, test.notebook, test.grade_id))
            cells = ran.get((result.student_id, test.notebook))
            if cell is None or cell.score is None or cells is None:
                continue
            graded += 1
            missing = cell.max_score - cell.score
            if missing > 1e-9:
                lost += 1
                points_lost += missing
                output = cells.get(test.grade_id)
                failures.append(cell_failures(output or {}, hidden))
        summaries.append(CellSummary(test, graded, lost, points_lost, _messages(failures)))
    return summaries


def _most_failed_first(cells: list[CellSummary]) -> list[CellSummary]:
    """By share of students who lost points, then points lost, then notebook order."""
    order = {id(cell): i for i, cell in enumerate(cells)}
    return sorted(cells, key=lambda c: (-c.share, -c.points_lost, order[id(c)]))


def _function_summaries(cells: list[CellSummary]) -> list[FunctionSummary]:
    """Per function (its test cells in notebook order), the most points lost first."""
    grouped: dict[str, list[CellSummary]] = {}
    for cell in cells:
        grouped.setdefault(cell.test.function or NO_FUNCTION, []).append(cell)
    summaries = [
        FunctionSummary(
            function,
            tuple(c.test.grade_id for c in group),
            sum(c.test.points for c in group),
            max(c.graded for c in group),
            sum(c.points_lost for c in group),
        )
        for function, group in grouped.items()
    ]
    return sorted(summaries, key=lambda f: (-f.points_lost, -f.share, f.function))


def _time(batch: dict[str, BatchRow]) -> TimeSummary | None:
    timed = [r for r in batch.values() if r.seconds is not None and r.seconds > 0]
    if not timed:
        return None
    ordered = sorted(r.seconds for r in timed)
    slowest = sorted(timed, key=lambda r: (-r.seconds, r.student_id))[:SLOWEST_SHOWN]
    return TimeSummary(
        len(ordered),
        statistics.median(ordered),
        statistics.quantiles(ordered, n=10, method="inclusive")[-1]
        if len(ordered) > 1
        else ordered[0],
        ordered[-1],
        tuple((r.student_id, r.seconds) for r in slowest),
    )


def assignment_report(
    course_root: Path, assignment_id: str, grades_dir: Path, db_url: str | None = None
) -> AssignmentReport:
    """Everything the page of one assignment shows, read from the gradebook, the grading run's
    ``grades.csv`` (``grades_dir`` is the ``--out`` folder of ``course grade``) and the
    autograded notebooks."""
    course_root = Path(course_root).resolve()
    assignment = get_assignment(course_root, assignment_id)
    url = gradebook_url(course_root, db_url)
    batch = read_grades_csv(grades_dir)
    results = read_results(url, assignment_id)
    cells = _cell_summaries(course_root, assignment, results)
    flagged = [
        row
        for _, row in sorted(batch.items())
        if row.flags or row.status not in (GRADED, NEEDS_MANUAL_GRADE)
    ]
    return AssignmentReport(
        assignment,
        url,
        Path(grades_dir) / "grades.csv",
        batch,
        results,
        distribution([r.score for r in results], max(r.max_score for r in results)),
        sum(r.needs_manual_grade for r in results),
        dict(Counter(row.status for row in batch.values()).most_common()),
        _most_failed_first(cells),
        _function_summaries(cells),
        _time(batch),
        flagged,
    )


def course_report(course_root: Path, db_url: str | None = None) -> CourseReport:
    """One row per student with a submission, one column per assignment that has submissions
    in the gradebook, the totals (a missing submission counts 0 in the total)."""
    course_root = Path(course_root).resolve()
    url = gradebook_url(course_root, db_url)
    assignments, maxima, scores = read_course(url, list(load_manifest(course_root).values()))
    rows = []
    for student in sorted(scores):
        values = tuple(scores[student].get(a.id) for a in assignments)
        rows.append(CourseRow(student, values, sum(v for v in values if v is not None)))
    per_assignment = {
        a.id: distribution(
            [row.scores[i] for row in rows if row.scores[i] is not None], maxima[a.id]
        )
        for i, a in enumerate(assignments)
    }
    total = sum(maxima.values())
    return CourseReport(
        url, assignments, maxima, rows, per_assignment, distribution([r.total for r in rows], total)
    )


# --- figures -------------------------------------------------------------------------------


def _histogram(values: list[float], low: float, high: float, xlabel: str, title: str) -> Figure:
    figure = Figure(figsize=(6.4, 3.0))
    ax = figure.subplots()
    span = max(high - low, 1.0)
    bins = min(30, max(5, math.ceil(span)))
    ax.hist(values, bins=bins, range=(low, high), color=HIST_COLOR, edgecolor="white")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("students")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title, fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    return figure


def _score_figure(dist: Distribution, scores: list[float], name: str, what: str) -> H.PageFigure:
    figure = _histogram(
        scores,
        0.0,
        dist.max_score,
        f"points (of {dist.max_score:g})",
        f"{what}: {dist.count} students",
    )
    ax = figure.axes[0]
    ax.axvline(dist.median, color="black", linewidth=1.5, label=f"median {_fmt(dist.median)}")
    ax.axvline(dist.q1, color="black", linestyle="--", linewidth=1, label="quartiles")
    ax.axvline(dist.q3, color="black", linestyle="--", linewidth=1)
    ax.legend(frameon=False, fontsize=9, loc="best")
    return H.PageFigure(
        name,
        H.png(figure),
        f"Score distribution; median {_fmt(dist.median)} of {_fmt(dist.max_score)}.",
    )


def _function_figure(functions: list[FunctionSummary], name: str) -> H.PageFigure:
    shown = [f for f in functions if f.points_lost > 0] or functions
    figure = Figure(figsize=(6.4, 0.5 + 0.32 * len(shown)))
    ax = figure.subplots()
    labels = [f.function for f in reversed(shown)]
    values = [f.points_lost for f in reversed(shown)]
    ax.barh(labels, values, color=BAR_COLOR)
    for y, function in enumerate(reversed(shown)):
        ax.text(function.points_lost, y, f" {function.share:.0%}", va="center", fontsize=8)
    ax.set_xlabel("points lost by the class")
    ax.set_title("Points lost per function (share of its points)", fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(axis="y", labelsize=8)
    return H.PageFigure(name, H.png(figure), "Points lost per function, most first.")


def _time_figure(batch: dict[str, BatchRow], time: TimeSummary, name: str) -> H.PageFigure:
    seconds = [r.seconds for r in batch.values() if r.seconds]
    figure = _histogram(
        seconds, 0.0, time.maximum * 1.05, "seconds", "Time per submission (notebook run)"
    )
    figure.axes[0].axvline(time.median, color="black", linewidth=1.5)
    return H.PageFigure(name, H.png(figure), f"Seconds per submission; median {time.median:.1f}.")


# --- pages ---------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _distribution_facts(dist: Distribution, prefix: str = "") -> str:
    return H.facts(
        [
            (f"{prefix}count", "students", str(dist.count)),
            (f"{prefix}median", "median", _fmt(dist.median)),
            (f"{prefix}q1", "first quartile", _fmt(dist.q1)),
            (f"{prefix}q3", "third quartile", _fmt(dist.q3)),
            (f"{prefix}mean", "mean", _fmt(dist.mean)),
            (f"{prefix}range", "lowest – highest", f"{_fmt(dist.minimum)} – {_fmt(dist.maximum)}"),
            (f"{prefix}max-score", "points possible", _fmt(dist.max_score)),
        ]
    )


def _message_list(messages: tuple[MessageCount, ...]) -> str:
    if not messages:
        return ""
    items = []
    for m in messages:
        variants = f" ({m.variants} wordings)" if m.variants > 1 else ""
        hint = f'<br><span class="hint">Hint: {H.esc(m.hint)}</span>' if m.hint else ""
        items.append(
            f'<li><span class="count">{m.students}×</span> '
            f"<code>{H.esc(m.text)}</code>{H.esc(variants)}{hint}</li>"
        )
    return f'<ol class="messages">{"".join(items)}</ol>'


def _cells_table(cells: list[CellSummary]) -> str:
    rows = [
        f'<tr data-grade-id="{H.esc(c.test.grade_id)}">'
        f'<td class="num">{rank}</td><td><code>{H.esc(c.test.grade_id)}</code></td>'
        f"<td><code>{H.esc(c.test.function or NO_FUNCTION)}</code></td>"
        f'<td class="num">{_fmt(c.test.points)}</td>'
        f'<td class="num lost" data-lost="{c.lost}" data-graded="{c.graded}">'
        f"{H.share_bar(c.share)} ({c.lost} of {c.graded})</td>"
        f'<td class="num points-lost">{_fmt(c.points_lost / c.graded if c.graded else 0)}</td>'
        f'<td class="messages">{_message_list(c.messages)}</td></tr>'
        for rank, c in enumerate(cells, 1)
    ]
    return H.table(
        [
            "#",
            "test cell",
            "function",
            "points",
            "students who lost points",
            "mean points lost",
            "most frequent failure messages",
        ],
        rows,
    )


def _functions_table(functions: list[FunctionSummary]) -> str:
    rows = [
        f'<tr data-function="{H.esc(f.function)}"><td><code>{H.esc(f.function)}</code></td>'
        f"<td>{', '.join(f'<code>{H.esc(t)}</code>' for t in f.tests)}</td>"
        f'<td class="num">{_fmt(f.points)}</td>'
        f'<td class="num points-lost">{_fmt(f.points_lost)}</td>'
        f'<td class="num">{H.share_bar(f.share)}</td></tr>'
        for f in functions
    ]
    return H.table(
        ["function", "test cells", "points", "points lost (class)", "share of its points lost"],
        rows,
    )


def _flagged_table(flagged: list[BatchRow]) -> str:
    if not flagged:
        return "<p>No submission was flagged, and every notebook ran to the end.</p>"
    rows = [
        f'<tr data-student="{H.esc(r.student_id)}"><td>{H.esc(r.student_id)}</td>'
        f"<td>{H.esc(r.status)}</td><td>{'<br>'.join(H.esc(f) for f in r.flags)}</td>"
        f"<td>{H.esc(r.message)}</td></tr>"
        for r in flagged
    ]
    return H.table(["student", "status", "flags", "message"], rows)


def _time_section(report: AssignmentReport, figure: H.PageFigure | None) -> str:
    time = report.time
    if time is None or figure is None:
        return (
            '<p class="note">grades.csv has no seconds per submission (graded before the '
            "column existed): grade again to see the times.</p>"
        )
    slowest = ", ".join(f"{H.esc(s)} ({seconds:.1f} s)" for s, seconds in time.slowest)
    return (
        H.facts(
            [
                ("time-count", "submissions timed", str(time.count)),
                ("time-median", "median (s)", f"{time.median:.1f}"),
                ("time-p90", "90th percentile (s)", f"{time.p90:.1f}"),
                ("time-max", "slowest (s)", f"{time.maximum:.1f}"),
            ]
        )
        + H.figure_html(figure)
        + f"<p>Slowest: {slowest}.</p>"
    )


def write_assignment_report(report: AssignmentReport, out_dir: Path) -> ReportFiles:
    """Write ``<assignment>-report.html``, its PNG figures and ``<assignment>-grades.csv``."""
    a = report.assignment
    figures = [
        _score_figure(
            report.distribution, [r.score for r in report.results], f"{a.id}-scores.png", a.id
        ),
        _function_figure(report.functions, f"{a.id}-functions.png"),
    ]
    time_figure = (
        _time_figure(report.batch, report.time, f"{a.id}-time.png") if report.time else None
    )
    if time_figure:
        figures.append(time_figure)
    statuses = ", ".join(f"{n} {H.esc(status)}" for status, n in report.statuses.items())
    pending = (
        f" {report.pending_manual} submission(s) wait for manual grading: their scores count "
        "the graded points so far."
        if report.pending_manual
        else ""
    )
    body = (
        f"<h2>Scores</h2>{_distribution_facts(report.distribution)}"
        f'<p class="note">From the gradebook as it is now (manual grades included).{pending} '
        f"Last grading run: {statuses}.</p>{H.figure_html(figures[0])}"
        "<h2>Test cells, the one most students lost points in first</h2>"
        '<p class="note">Over the submissions whose notebook ran. Messages are what the checks '
        "printed (hidden tests are never shown); messages that differ only in their numbers "
        f"count together.</p>{_cells_table(report.cells)}"
        f"<h2>Points lost per function</h2>{H.figure_html(figures[1])}"
        f"{_functions_table(report.functions)}"
        f"<h2>Time per submission</h2>{_time_section(report, time_figure)}"
        f"<h2>Flagged submissions</h2>{_flagged_table(report.flagged)}"
    )
    lead = (
        f"{H.esc(a.title)}: how the class did. Gradebook <code>{H.esc(report.db_url)}</code>, "
        f"grading run <code>{H.esc(report.grades_csv)}</code>; made "
        f"{datetime.now():%Y-%m-%d %H:%M}."
    )
    document = H.page(f"{a.id}: class report", lead, body)
    html = H.write_page(out_dir, f"{a.id}-report.html", document, figures)
    table = _write_csv(
        Path(out_dir) / f"{a.id}-grades.csv",
        [a.id],
        [(r.student_id, (r.score,), r.score) for r in report.results],
        report.distribution.max_score,
    )
    return ReportFiles(html, table, tuple(Path(out_dir) / f.name for f in figures))


def _write_csv(path: Path, columns: list[str], rows, max_total: float) -> Path:
    """The LMS table: ``student_id``, one column per assignment (empty: no submission),
    ``total`` and ``max_total``."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student_id", *columns, "total", "max_total"])
        for student, scores, total in rows:
            cells = ["" if s is None else f"{s:g}" for s in scores]
            writer.writerow([student, *cells, f"{total:g}", f"{max_total:g}"])
    return path


def write_course_report(report: CourseReport, out_dir: Path) -> ReportFiles:
    """Write ``course-report.html``, its figure and ``course-grades.csv``."""
    ids = [a.id for a in report.assignments]
    figure = _score_figure(
        report.totals, [r.total for r in report.rows], "course-totals.png", "Course totals"
    )
    header = "".join(
        f'<th>{H.esc(a.id)}<br><span class="note">of {_fmt(report.maxima[a.id])}</span></th>'
        for a in report.assignments
    )
    rows = []
    for row in report.rows:
        cells = "".join(f'<td class="num">{"—" if s is None else _fmt(s)}</td>' for s in row.scores)
        rows.append(
            f'<tr data-student="{H.esc(row.student_id)}"><td>{H.esc(row.student_id)}</td>'
            f'{cells}<td class="num total">{_fmt(row.total)}</td></tr>'
        )
    medians = "".join(
        f'<td class="num median">{_fmt(report.per_assignment[i].median)}</td>' for i in ids
    )
    counts = "".join(f'<td class="num">{report.per_assignment[i].count}</td>' for i in ids)
    table = (
        f"<table><thead><tr><th>student</th>{header}<th>total<br>"
        f'<span class="note">of {_fmt(report.max_total)}</span></th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody><tfoot>"
        f"<tr><th>median</th>{medians}<td class='num'>{_fmt(report.totals.median)}</td></tr>"
        f"<tr><th>submissions</th>{counts}<td></td></tr></tfoot></table>"
    )
    body = (
        f"<h2>Totals</h2>{_distribution_facts(report.totals)}{H.figure_html(figure)}"
        '<h2>Students</h2><p class="note">A dash: no submission (it counts 0 in the total). '
        f"Scores from the gradebook as it is now, manual grades included.</p>{table}"
    )
    lead = (
        f"Every graded assignment of the course. Gradebook <code>{H.esc(report.db_url)}</code>; "
        f"made {datetime.now():%Y-%m-%d %H:%M}."
    )
    html = H.write_page(
        out_dir, "course-report.html", H.page("Course report", lead, body), [figure]
    )
    table_path = _write_csv(
        Path(out_dir) / "course-grades.csv",
        ids,
        [(r.student_id, r.scores, r.total) for r in report.rows],
        report.max_total,
    )
    return ReportFiles(html, table_path, (Path(out_dir) / figure.name,))
