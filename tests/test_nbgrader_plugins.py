"""The course's nbgrader preprocessors, on cells."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_output

from hw_utils.grading.nbgrader_plugins import (
    HideTestInternals,
    NamedStubClearSolutions,
    StderrToStdout,
    enclosing_name,
)


def _solution(source: str):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "cell_id"}
    return cell


def test_stub_names_the_function_and_method():
    cell = _solution(
        "class MyConv2d:\n"
        "    def __init__(self, k):\n"
        "        ### BEGIN SOLUTION\n"
        "        self.k = k\n"
        "        ### END SOLUTION\n\n"
        "    def forward(self, x):\n"
        "        ### BEGIN SOLUTION\n"
        "        return x\n"
        "        ### END SOLUTION"
    )
    NamedStubClearSolutions()._replace_solution_region(cell, "python")
    assert 'raise NotImplementedError("MyConv2d.__init__: replace this line' in cell.source
    assert 'raise NotImplementedError("MyConv2d.forward: replace this line' in cell.source
    assert "self.k = k" not in cell.source and "return x" not in cell.source
    compile(cell.source, "<stub>", "exec")


def test_top_level_region_is_named_by_grade_id():
    cell = _solution("### BEGIN SOLUTION\nanswer = 3\n### END SOLUTION")
    NamedStubClearSolutions()._replace_solution_region(cell, "python")
    assert 'NotImplementedError("cell_id: replace this line' in cell.source


def test_enclosing_name_skips_sibling_definitions():
    lines = ["def helper():", "    pass", "def target(x):", "    y = 1", "    ### BEGIN SOLUTION"]
    assert enclosing_name(lines, 4) == "target"


def test_stderr_becomes_stdout_and_errors_stay():
    cell = new_code_cell("x")
    cell.outputs = [
        new_output("stream", name="stderr", text="UserWarning: careful\n"),
        new_output("error", ename="ValueError", evalue="bad", traceback=["ValueError: bad"]),
    ]
    StderrToStdout().preprocess_cell(cell, {}, 0)
    assert cell.outputs[0].name == "stdout" and "[stderr] UserWarning" in cell.outputs[0].text
    assert cell.outputs[1].output_type == "error"


def test_feedback_hides_hidden_tests_and_traceback_lines():
    cell = new_code_cell(
        "assert f(1) == 2\n### BEGIN HIDDEN TESTS\nassert f(7) == 49\n### END HIDDEN TESTS"
    )
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "test_f"}
    cell.outputs = [
        new_output(
            "error",
            ename="AssertionError",
            evalue="f(7) wrong",
            traceback=["---> 3 assert f(7) == 49", "\x1b[31mAssertionError\x1b[39m: f(7) wrong"],
        )
    ]
    nb = nbformat.v4.new_notebook(cells=[cell])
    HideTestInternals().preprocess(nb, {})
    assert "f(7) == 49" not in cell.source
    assert cell.outputs[0].traceback == ["AssertionError: f(7) wrong"]


def test_feedback_removes_hidden_test_lines_that_any_cell_printed():
    test = new_code_cell(
        "assert f(1) == 2\n### BEGIN HIDDEN TESTS\nassert f(7) == 49\n### END HIDDEN TESTS"
    )
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "test_f"}
    spy = new_code_cell("print(In)")  # a student cell that printed the executed cells
    spy.outputs = [
        new_output("stream", name="stdout", text="['', 'assert f(1) == 2', 'assert f(7) == 49']\n"),
        new_output(
            "execute_result",
            data={"text/plain": "x\n### BEGIN HIDDEN TESTS\n  assert f(7) == 49\ny"},
        ),
    ]
    nb = nbformat.v4.new_notebook(cells=[spy, test])
    HideTestInternals().preprocess(nb, {})
    shown = spy.outputs[0].text + spy.outputs[1].data["text/plain"]
    assert "f(7)" not in shown and "HIDDEN" not in shown
    assert shown.count(HideTestInternals.removed) == 3
    assert spy.outputs[1].data["text/plain"].startswith("x\n") and shown.endswith("y")
