"""nbgrader preprocessors of the course, wired in by nbgrader_config.py.

- :class:`RestoreCellMetadata` (autograde, before OverwriteCells): puts back the nbgrader metadata
  (grade, solution, locked, points) of every known cell from the gradebook, so a test cell whose
  flags a student changed is restored and run like any other, instead of crashing nbgrader.
- :class:`BoundaryExecute` (autograde): nbgrader's Execute with the grading boundary (student
  cells in the student's kernel, test cells in a checker kernel that reaches student code only
  through :mod:`hw_utils.boundary`), a time budget for the whole notebook, a cap on the output a
  cell may produce, and survival of a dead kernel or of a cell that ignores the timeout interrupt:
  cells after the failure are marked "not run" (so their tests score 0) while earlier cells keep
  their points; the outcome goes to a JSON status file read by the grader.
- :class:`NamedStubClearSolutions` (generate_assignment): each solution region becomes
  ``raise NotImplementedError("<function>: ...")`` naming the function or method to write.
- :class:`StderrToStdout` (autograde, after Execute): nbgrader zeroes a test cell that wrote
  anything to stderr, so a passing test that triggered a warning would score 0; errors still
  score 0 because they are separate ``error`` outputs.
- :class:`HideTestInternals` (generate_feedback): removes hidden-test regions from test cells,
  reduces test-cell tracebacks to their last line and removes hidden-test lines from every
  cell's output, so feedback never shows hidden-test source.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbformat.v4 import new_output
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.preprocessors import ClearSolutions, Execute, NbGraderPreprocessor
from traitlets import Integer, Unicode

from hw_utils.grading.checker import discard as discard_checker
from hw_utils.grading.checker import warm_checker

_DEFINITION = re.compile(r"^(\s*)(?:async\s+)?(def|class)\s+(\w+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def enclosing_name(lines: list[str], index: int) -> str | None:
    """Qualified name (``Class.method``) of the definitions enclosing ``lines[index]``."""
    indent = len(lines[index]) - len(lines[index].lstrip())
    names = []
    for line in reversed(lines[:index]):
        match = _DEFINITION.match(line)
        if match and len(match.group(1)) < indent:
            names.append(match.group(3))
            indent = len(match.group(1))
    return ".".join(reversed(names)) or None


class NamedStubClearSolutions(ClearSolutions):
    """ClearSolutions whose code stub names the function the student must write."""

    def _replace_solution_region(self, cell: NotebookNode, language: str) -> bool:
        if cell.cell_type != "code":
            return super()._replace_solution_region(cell, language)
        lines = cell.source.split("\n")
        new_lines: list[str] = []
        in_solution = replaced = False
        for index, line in enumerate(lines):
            if self.begin_solution_delimeter in line:
                if in_solution:
                    raise RuntimeError(
                        f"nested '{self.begin_solution_delimeter}' in:\n{cell.source}"
                    )
                in_solution = replaced = True
                indent = re.match(r"\s*", line).group(0)
                name = enclosing_name(lines, index) or cell.metadata.get("nbgrader", {}).get(
                    "grade_id", "this cell"
                )
                new_lines.append(f"{indent}# YOUR CODE HERE")
                new_lines.append(
                    f'{indent}raise NotImplementedError("{name}: replace this line with your code")'
                )
            elif self.end_solution_delimeter in line:
                in_solution = False
            elif not in_solution:
                new_lines.append(line)
        if in_solution:
            raise RuntimeError(f"no '{self.end_solution_delimeter}' in:\n{cell.source}")
        cell.source = "\n".join(new_lines)
        return replaced


class StderrToStdout(NbGraderPreprocessor):
    """Turn stderr stream outputs of code cells into stdout, prefixed ``[stderr]``."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            for output in cell.outputs:
                if output.output_type == "stream" and output.name == "stderr":
                    output.name = "stdout"
                    output.text = "".join(
                        f"[stderr] {line}" for line in output.text.splitlines(True)
                    )
        return cell, resources


class HideTestInternals(NbGraderPreprocessor):
    """Strip hidden tests and test-cell tracebacks from notebooks before feedback is rendered,
    and remove every hidden-test line from what any cell printed (student code can read the
    executed cells, e.g. IPython's ``In``, and print them)."""

    begin = "### BEGIN HIDDEN TESTS"
    end = "### END HIDDEN TESTS"
    removed = "[a hidden test line was removed]"

    def preprocess(self, nb, resources):
        secret: set[str] = set()
        for cell in nb.cells:
            if utils.is_grade(cell) and cell.cell_type == "code":
                cell.source, hidden = self._split(cell.source)
                secret |= {line.strip() for line in hidden if len(line.strip()) >= 8}
                for output in cell.outputs:
                    if output.output_type == "error":
                        last = _ANSI.sub("", output.traceback[-1]) if output.traceback else ""
                        output.traceback = [last or f"{output.ename}: {output.evalue}"]
        secret |= {self.begin, self.end}
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                self._scrub(output, secret)
        return nb, resources

    def _split(self, source: str) -> tuple[str, list[str]]:
        """The source without its hidden region(s), and the hidden lines."""
        kept, hidden_lines, hidden = [], [], False
        for line in source.split("\n"):
            if self.begin in line:
                hidden = True
                kept.append(line.replace(self.begin, "(hidden tests were run here)"))
            elif self.end in line:
                hidden = False
            elif hidden:
                hidden_lines.append(line)
            else:
                kept.append(line)
        return "\n".join(kept), hidden_lines

    def _scrub(self, output, secret: set[str]) -> None:
        def shows_secret(line: str) -> bool:
            plain = _ANSI.sub("", line)
            return any(s in plain for s in secret)

        def clean(text: str) -> str:
            return "\n".join(
                self.removed if shows_secret(line) else line for line in text.split("\n")
            )

        if "text" in output:
            output.text = clean(output.text)
        for mime, value in output.get("data", {}).items():
            if mime.startswith("text/") and isinstance(value, str):
                output.data[mime] = clean(value)
        if output.get("output_type") == "error":
            output.evalue = clean(output.evalue)
            output.traceback = [clean(line) for line in output.traceback]


def record_outcome(
    status_dir: str,
    student: str | None,
    *,
    status: str | None = None,
    message: str = "",
    flags: list[str] | tuple[str, ...] = (),
    seconds: float | None = None,
) -> None:
    """Merge an outcome into the JSON status file of ``student`` in ``status_dir`` (shared by
    the autograde preprocessors; read by the grader)."""
    if not status_dir or not student:
        return
    path = Path(status_dir) / f"{student}.json"
    outcome = json.loads(path.read_text()) if path.exists() else {"status": "graded", "flags": []}
    if status is not None:
        outcome["status"], outcome["message"] = status, message
    outcome["flags"] = sorted(set(outcome.get("flags", [])) | set(flags))
    if seconds is not None:
        outcome["seconds"] = seconds
    path.write_text(json.dumps(outcome))


class RestoreCellMetadata(NbGraderPreprocessor):
    """Reset the nbgrader flags of every cell the gradebook knows; flag each change."""

    status_dir = Unicode("", help="Folder of the JSON files where changed cells are flagged.").tag(
        config=True
    )

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            master = gb.find_notebook(info["notebook"], info["assignment"])
            graded = {cell.name: float(cell.max_score) for cell in master.grade_cells}
            solutions = {cell.name for cell in master.solution_cells}
            locked = {cell.name: bool(cell.locked) for cell in master.source_cells}
        changed = []
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader")
            if not meta or meta.get("grade_id") not in locked:
                continue
            name = meta["grade_id"]
            wanted = {
                "grade": name in graded,
                "solution": name in solutions,
                "locked": locked[name],
            }
            if name in graded:
                wanted["points"] = graded[name]
            if any(meta.get(key) != value for key, value in wanted.items()):
                changed.append(f"metadata_changed:{name}")
                meta.update(wanted)
                if name not in graded:
                    meta.pop("points", None)
        record_outcome(self.status_dir, info.get("student"), flags=changed)
        return nb, resources


def _error_output(ename: str, evalue: str) -> NotebookNode:
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


STUDENT, CHECKER, BOTH = "student", "checker", "both"


def cell_roles(db_url: str, notebook: str, assignment: str) -> dict[str, str]:
    """Which kernel runs each instructor cell, from the gradebook (never from the submitted
    notebook): test cells and locked ``test_*`` helper cells run in the checker, other locked
    cells (setup) in both kernels; a cell not listed is the student's."""
    with Gradebook(db_url) as gb:
        master = gb.find_notebook(notebook, assignment)
        graded = {c.name for c in master.grade_cells}
        solutions = {c.name for c in master.solution_cells}
        locked = {c.name for c in master.source_cells if c.locked}
    roles = {}
    for name in (graded | locked) - solutions:
        roles[name] = CHECKER if name in graded or name.startswith("test_") else BOTH
    return roles


class _CappedOutput:
    """nbclient output handling with a byte budget per cell (the rest is dropped, flagged)."""

    max_output_bytes: int
    _flags: list[str]
    _output_bytes: dict[int, int]

    def output(self, outs, msg, display_id, cell_index):
        size = len(json.dumps(msg.get("content", {})))
        used = self._output_bytes.get(cell_index, 0)
        self._output_bytes[cell_index] = used + size
        if used + size > self.max_output_bytes:
            if used <= self.max_output_bytes:
                self._flags.append(f"output_truncated:{cell_index}")
                outs.append(new_output("stream", name="stdout", text="... output truncated ...\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)


class _CheckerClient(_CappedOutput, NotebookClient):
    """A client of the checker kernel that shares the flags and output budget of its executor."""

    @classmethod
    def wrap(cls, client: NotebookClient, executor) -> _CheckerClient:
        client.__class__ = cls
        client.max_output_bytes = executor.max_output_bytes
        client._flags, client._output_bytes = executor._flags, {}
        return client


class BoundaryExecute(_CappedOutput, Execute):
    """nbgrader's Execute with the grading boundary: the student's cells run in the student's
    kernel (the sandboxed one in grading), test cells in a checker kernel that never runs
    student code and reaches it only through :mod:`hw_utils.boundary` (data only), setup cells
    in both (:func:`cell_roles`). Scores come from the checker's outputs.

    Always returns a notebook nbgrader can score, and reports what happened in a JSON status
    file: a time budget for the whole notebook, a cap on each cell's output, survival of a dead
    student kernel or of a cell that ignores the timeout interrupt (cells after it are marked
    "not run" and score 0, earlier cells keep their points). A failure of the checker itself is
    an ``error`` (the instructor's problem, never silently 0)."""

    notebook_timeout = Integer(
        0, help="Wall-clock budget of the whole notebook in seconds (0: none)."
    ).tag(config=True)
    max_output_bytes = Integer(
        2_000_000, help="Outputs a cell may produce before the rest is dropped."
    ).tag(config=True)
    status_dir = Unicode("", help="Where to write each student's outcome as JSON.").tag(config=True)
    checker_dir = Unicode(
        "", help="Working folder of the checker kernel (default: the assignment's source folder)."
    ).tag(config=True)
    threads = Integer(0, help="Math-library threads of the checker kernel (0: default).").tag(
        config=True
    )

    def preprocess(self, nb, resources=None, km=None):
        self._stopped: tuple[str, str] | None = None
        self._flags: list[str] = []
        self._output_bytes: dict[int, int] = {}
        self._started = time.monotonic()
        self._deadline = self._started + self.notebook_timeout if self.notebook_timeout else None
        info = (resources or {}).get("nbgrader", {})
        self._student = info.get("student")
        self._roles = (
            cell_roles(info["db_url"], info["notebook"], info["assignment"]) if info else None
        )
        runtime = Path(tempfile.mkdtemp(prefix="boundary-"))
        self._student_connection = str(runtime / "student.json")
        self._checker_dir = self.checker_dir or self._default_checker_dir(info)
        self._warm = warm_checker(self.threads)  # boots while the student's kernel boots
        self._checker: _CheckerClient | None = None
        try:
            return super().preprocess(nb, resources, km)
        finally:
            shutil.rmtree(runtime, ignore_errors=True)
            self._write_status()

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        km.connection_file = self._student_connection  # the checker connects to it
        return km

    def _default_checker_dir(self, info: dict) -> str:
        if not info:
            return os.getcwd()
        root = self.config.get("CourseDirectory", {}).get("root") or os.getcwd()
        return str(Path(root) / "source" / info["assignment"])

    def _checker_execute(self, cell, index) -> None:
        if self._checker is None:
            client = self._warm.client(
                self.nb,
                self.timeout,
                allow_errors=True,
                interrupt_on_timeout=True,
                error_on_timeout=self.error_on_timeout,
            )
            self._checker = _CheckerClient.wrap(client, self)
            self._warm.prepare(self._checker, self._student_connection, self._checker_dir)
        self._checker.execute_cell(cell, index, store_history=True)

    # -- cells ---------------------------------------------------------------------------
    def _role(self, cell) -> str:
        name = cell.metadata.get("nbgrader", {}).get("grade_id")
        if self._roles is None:  # outside autograde: trust the notebook's own metadata
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution"):
                return CHECKER
            if meta.get("locked"):
                return CHECKER if str(name).startswith("test_") else BOTH
            return STUDENT
        return self._roles.get(name, STUDENT)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if self._stopped is None and self._deadline and time.monotonic() > self._deadline:
            self._stop("timeout", f"the notebook used its {self.notebook_timeout} s budget")
        if self._stopped is not None:
            cell.outputs = [_error_output("NotRun", f"not run: {self._stopped[1]}")]
            return cell, resources
        role = self._role(cell)
        if role in (STUDENT, BOTH):
            self._student_execute(cell, resources, index)
        if role in (CHECKER, BOTH) and self._stopped is None:
            target = cell if role == CHECKER else copy.deepcopy(cell)
            self._run_in_checker(target, index, graded=role == CHECKER and _is_test(cell))
        return cell, resources

    def _student_execute(self, cell, resources, index) -> None:
        try:
            super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            cell.outputs.append(
                _error_output(
                    "KernelDied",
                    "the kernel stopped while running this cell (exit, crash, or memory limit)",
                )
            )
            self._stop("kernel_died", f"the kernel died in cell {index}")
            return
        except CellTimeoutError:
            cell.outputs.append(
                _error_output(
                    "CellTimeout",
                    f"this cell ran longer than {self.timeout} s and did not stop when interrupted",
                )
            )
            self._stop("timeout", f"cell {index} did not finish and ignored the interrupt")
            return
        except Exception as error:  # e.g. garbled messages from a kernel that forked itself
            detail = f"{type(error).__name__}: {error}"[:200]
            cell.outputs.append(_error_output("KernelError", f"lost the kernel: {detail}"))
            self._stop(
                "kernel_died", f"the connection to the kernel broke in cell {index} ({detail})"
            )
            return
        if any(o.output_type == "error" and o.ename == "CellTimeoutError" for o in cell.outputs):
            self._flags.append(f"cell_timeout:{index}")

    def _run_in_checker(self, cell, index, graded: bool) -> None:
        """A test cell's errors are test results; any other failure of the checker means the
        tests cannot be trusted: the run stops with status ``error``."""
        try:
            self._checker_execute(cell, index)
        except Exception as error:
            discard_checker()  # a new one for the next notebook
            detail = f"{type(error).__name__}: {error}"[:300]
            cell.outputs.append(_error_output("CheckerError", f"the checker failed: {detail}"))
            self._stop("error", f"the checker kernel failed in cell {index} ({detail})")
            return
        failed = [o for o in cell.outputs if o.output_type == "error"]
        if failed and not graded:
            self._stop(
                "error",
                f"instructor cell {index} failed in the checker kernel "
                f"({failed[0].ename}: {str(failed[0].evalue)[:200]})",
            )

    def _stop(self, status: str, message: str) -> None:
        self._stopped = (status, message)

    def _write_status(self) -> None:
        status, message = self._stopped or ("graded", "")
        record_outcome(
            self.status_dir,
            self._student,
            status=status,
            message=message,
            flags=self._flags,
            seconds=round(time.monotonic() - self._started, 2),
        )


def _is_test(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")
