"""What the test cells of autograded notebooks printed when a student lost points, without any
hidden-test text; and which function each test cell belongs to.

A failed check prints ``FAILED <case>: <what>, expected <...>.`` and often ``Hint: ...`` on the
next line (:func:`hw_utils.checks.score_cases`); a check outside ``score_cases`` stops the cell
with an error whose message has the same form. Those lines are the failure messages of a cell.
Hidden tests never show: a line is dropped when it contains a line of a hidden region of the
source notebook (the rule of the feedback, :class:`~hw_utils.grading.nbgrader_plugins.
HideTestInternals`), or when its message is text that only a hidden region contains (e.g. the
message of a hidden ``assert``).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import NamedTuple

from hw_utils.grading import cells as C
from hw_utils.manifest import Assignment

FAILED = "FAILED "
HINT = "Hint: "
STDERR = "[stderr] "
SUMMARY = re.compile(r"^\d+ of \d+ cases passed\.?$")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Numbers that are values (not part of a name such as conv2d): masked to group messages.
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
SECRET_MIN_CHARS = 8
MESSAGE_MAX_CHARS = 400
HIDDEN_ONLY = "(a hidden test failed; its text is not shown)"
NO_MESSAGE = "(the cell lost points without printing a failure)"


class GradedTest(NamedTuple):
    """An autograded test cell of the source notebook and the solution cell it tests (the
    nearest solution code cell above it; ``""`` when there is none)."""

    notebook: str
    grade_id: str
    points: float
    function: str


class Failure(NamedTuple):
    """One failure message: the ``what, expected`` text and the hint (``""`` when none)."""

    text: str
    hint: str

    @property
    def key(self) -> tuple[str, str]:
        """Messages that differ only in their numbers (e.g. the values that came out) group."""
        return NUMBER.sub("#", self.text), self.hint


def graded_tests(course_root: Path, assignment: Assignment) -> list[GradedTest]:
    """The autograded test cells of the assignment's source notebooks, in notebook order."""
    found = []
    for notebook in assignment.notebooks:
        source = C.read_notebook(C.source_notebook(course_root, assignment.id, notebook))
        function = ""
        for cell in source.cells:
            if cell.cell_type == "code" and C.is_solution(cell):
                function = C.grade_id(cell) or function
            elif C.is_test(cell):
                found.append(GradedTest(notebook, C.grade_id(cell), C.points(cell), function))
    return found


class HiddenText:
    """The hidden-test text of an assignment's source notebooks: what a report must not show."""

    def __init__(self, course_root: Path, assignment: Assignment) -> None:
        hidden_lines: set[str] = set()
        visible: list[str] = []
        for notebook in assignment.notebooks:
            source = C.read_notebook(C.source_notebook(course_root, assignment.id, notebook))
            for cell in source.cells:
                text = cell.source
                for region in C.regions(text, C.BEGIN_HIDDEN, C.END_HIDDEN):
                    hidden_lines |= {line.strip() for line in region.split("\n")}
                    text = text.replace(region, "")
                visible.append(text)
        self._lines = {line for line in hidden_lines if len(line) >= SECRET_MIN_CHARS}
        self._lines |= {C.BEGIN_HIDDEN, C.END_HIDDEN}
        self._hidden = "\n".join(sorted(self._lines))
        self._visible = "\n".join(visible)
        self.shows = cache(self._shows)

    def _shows(self, line: str) -> bool:
        """Whether ``line`` (printed by a test cell) shows hidden-test text."""
        plain = ANSI.sub("", line)
        if any(secret in plain for secret in self._lines):
            return True
        message = _message_part(plain)
        return (
            len(message) >= SECRET_MIN_CHARS
            and message in self._hidden
            and message not in self._visible
        )


def _message_part(line: str) -> str:
    """The line without the prefixes a test cell adds (``FAILED``, ``Hint:``, an error name)."""
    line = line.strip().removeprefix(STDERR).strip()
    for prefix in (FAILED, HINT):
        line = line.removeprefix(prefix)
    name, sep, rest = line.partition(": ")
    if sep and re.fullmatch(r"[A-Za-z_][\w.]*(Error|Exception|Failed)", name):
        return rest.strip()
    return line


def _records(lines: list[str]) -> list[list[str]]:
    """``FAILED`` records: the FAILED line and its continuation lines (until the next record or
    the ``N of M cases passed.`` summary)."""
    records: list[list[str]] = []
    current: list[str] | None = None
    for raw in lines:
        line = raw.removeprefix(STDERR).rstrip()
        if line.startswith(FAILED):
            current = [line.removeprefix(FAILED)]
            records.append(current)
        elif SUMMARY.match(line.strip()):
            current = None
        elif current is not None and line.strip():
            current.append(line.strip())
    return records


def _failure(lines: list[str], hidden: HiddenText) -> Failure | None:
    """One message from its lines; ``None`` when its ``what`` shows hidden text (a hint that
    does is dropped alone)."""
    what = [line for line in lines if not line.startswith(HINT)]
    hints = [line.removeprefix(HINT) for line in lines if line.startswith(HINT)]
    if not what or any(hidden.shows(line) for line in what):
        return None
    hint = " ".join(h for h in hints if not hidden.shows(HINT + h))
    return Failure(" ".join(what)[:MESSAGE_MAX_CHARS], hint[:MESSAGE_MAX_CHARS])


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def cell_failures(cell: dict, hidden: HiddenText) -> list[Failure]:
    """The failure messages of one test cell (a cell of an autograded notebook as JSON) that
    lost points; never empty: a placeholder says when nothing can be shown."""
    printed: list[str] = []
    errors: list[list[str]] = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            printed.extend(_text(output.get("text")).split("\n"))
        elif output.get("output_type") == "error":
            message = ANSI.sub("", f"{output.get('ename', 'Error')}: {output.get('evalue', '')}")
            errors.append([line.strip() for line in message.split("\n") if line.strip()])
    found = [_failure(lines, hidden) for lines in [*_records(printed), *errors]]
    shown = [failure for failure in found if failure is not None]
    if shown:
        return shown
    if found:
        return [Failure(HIDDEN_ONLY, "")]
    last = next((line for line in reversed(printed) if line.strip()), "")
    if last and not hidden.shows(last):
        return [Failure(ANSI.sub("", last.strip())[:MESSAGE_MAX_CHARS], "")]
    return [Failure(NO_MESSAGE, "")]
