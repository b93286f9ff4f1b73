"""What a student does in JupyterLab, as Playwright steps, and what the page shows, as values.

Every wait is on a concrete state of the page (a kernel status, a prompt number, a dialog's
text), never a fixed sleep. Cells are read from the DOM of the notebook on screen:
:class:`CellView` holds what the student sees of one cell.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from playwright.sync_api import Locator, Page, expect

from .lab_server import LabServer

# Upper bound for JupyterLab to load a page and start a kernel; a wait ends as soon as the page
# reaches its state. Runs are bounded by the assignment's grading limits (the callers pass them).
LOAD_TIMEOUT_MS = 90_000

STDERR = "application/vnd.jupyter.stderr"
STDOUT = "application/vnd.jupyter.stdout"


class OutputView(NamedTuple):
    """One output of a cell as rendered: its MIME type (errors render as stderr), its text and
    the images it shows."""

    mime: str
    text: str
    images: int


class CellView(NamedTuple):
    index: int
    kind: str  # "code", "markdown" or "raw"
    prompt: str  # "[3]:" when run, "[*]:" while running, "[ ]:" when not run
    outputs: tuple[OutputView, ...]

    @property
    def executed(self) -> bool:
        return re.fullmatch(r"\[\d+\]:", self.prompt) is not None

    def text(self, mime: str | None = None) -> str:
        return "\n".join(o.text for o in self.outputs if mime is None or o.mime == mime)

    @property
    def images(self) -> int:
        return sum(o.images for o in self.outputs)


# Reads every cell of the notebook on screen in one round trip.
_READ_CELLS = """() => {
  const panel = [...document.querySelectorAll('.jp-NotebookPanel')]
    .find(p => p.checkVisibility());
  if (!panel) return [];
  return [...panel.querySelectorAll('.jp-Notebook .jp-Cell')].map((cell, index) => ({
    index,
    kind: cell.classList.contains('jp-CodeCell') ? 'code'
        : cell.classList.contains('jp-MarkdownCell') ? 'markdown' : 'raw',
    prompt: (cell.querySelector('.jp-InputPrompt')?.textContent ?? '').trim(),
    outputs: [...cell.querySelectorAll('.jp-OutputArea-output')].map(o => ({
      mime: o.getAttribute('data-mime-type') ?? '',
      text: o.textContent,
      images: o.querySelectorAll('img').length,
    })),
  }));
}"""

# True once a run has ended: every code cell has a prompt number, or the run stopped at an error
# (later cells stay "[ ]") and nothing is queued or running any more.
_RUN_ENDED = """() => {
  const panel = [...document.querySelectorAll('.jp-NotebookPanel')]
    .find(p => p.checkVisibility());
  if (!panel) return false;
  const prompts = [...panel.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
    .map(p => p.textContent.trim());
  if (prompts.some(p => p === '[*]:')) return false;
  if (prompts.every(p => /^\\[\\d+\\]:$/.test(p))) return true;
  return panel.querySelector(
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]') !== null;
}"""


# True once code cell ``index`` shows a prompt number other than ``before``.
_CELL_RAN = """({index, before}) => {
  const panel = [...document.querySelectorAll('.jp-NotebookPanel')]
    .find(p => p.checkVisibility());
  const cell = panel?.querySelectorAll('.jp-Notebook .jp-Cell')[index];
  const prompt = (cell?.querySelector('.jp-InputPrompt')?.textContent ?? '').trim();
  return prompt !== before && /^\\[\\d+\\]:$/.test(prompt);
}"""


def open_notebook(page: Page, server: LabServer, path: str, workspace: str) -> None:
    """Open ``path`` (relative to the server root) alone in a fresh JupyterLab workspace, wait
    until its kernel is idle, and expand collapsed code (*View → Expand All Code*) so that every
    cell shows its prompt."""
    page.goto(server.url(f"lab/workspaces/{workspace}/tree/{path}"))
    wait_for_kernel_idle(page)
    menu(page, "View", "Expand All Code")
    expect(page.locator(".jp-NotebookPanel:visible .jp-Placeholder-prompt")).to_have_count(0)


def wait_for_kernel_idle(page: Page, timeout: float = LOAD_TIMEOUT_MS) -> None:
    status = page.locator("#jp-main-statusbar").get_by_text(re.compile(r"\| Idle$"))
    expect(status).to_be_visible(timeout=timeout)


def read_cells(page: Page) -> list[CellView]:
    return [
        CellView(c["index"], c["kind"], c["prompt"], tuple(OutputView(**o) for o in c["outputs"]))
        for c in page.evaluate(_READ_CELLS)
    ]


def restart_and_run_all(page: Page) -> None:
    """*Kernel → Restart Kernel and Run All Cells* (the toolbar's ⏩ button), confirmed."""
    page.locator("[data-command='notebook:restart-run-all']").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Restart Kernel?")
    dialog.locator(".jp-mod-accept").click()
    expect(dialog).to_have_count(0)


def wait_for_run_to_end(page: Page, timeout: float) -> list[CellView]:
    """Wait until the notebook has run to its end (or stopped at an error); returns its cells."""
    page.wait_for_function(_RUN_ENDED, timeout=timeout)
    wait_for_kernel_idle(page, timeout)
    return read_cells(page)


def run_cell_by_cell(page: Page, timeout: float) -> list[CellView]:
    """Run every cell from the top with Shift+Enter (Ctrl+Enter on the last, which would
    otherwise add a cell), each after the previous one finished, so that an error does not
    cancel the cells queued after it as it does with Run All; ``timeout`` is per cell."""
    prompts = [cell.prompt for cell in read_cells(page)]
    page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell").first.locator(
        ".jp-InputPrompt"
    ).click()
    for index, before in enumerate(prompts):
        page.keyboard.press("Shift+Enter" if index < len(prompts) - 1 else "Control+Enter")
        if before:  # a code cell: wait for its new prompt number
            page.wait_for_function(
                _CELL_RAN, arg={"index": index, "before": before}, timeout=timeout
            )
    wait_for_kernel_idle(page, timeout)
    return read_cells(page)


def shown_score(cell: CellView) -> float | None:
    """The number a partial-credit test cell ends with (its ``Out[n]``), if it shows one."""
    results = [o.text.strip() for o in cell.outputs if o.mime == "text/plain"]
    try:
        return float(results[-1])
    except (IndexError, ValueError):
        return None


def click_validate(page: Page) -> None:
    """The nbgrader *Validate* button of the notebook toolbar."""
    page.locator(".jp-NotebookPanel-toolbar").get_by_role("button", name="Validate").click()


class ValidationResult(NamedTuple):
    """What the *Validation Results* dialog says."""

    text: str
    succeeded: bool
    failed_sources: tuple[str, ...]  # source of each cell listed as failed, in order
    failed_errors: tuple[str, ...]  # the error shown under each


def read_validation(page: Page, timeout: float) -> ValidationResult:
    """Wait for the *Validation Results* dialog, read it and leave it open (see
    :func:`close_dialog`)."""
    dialog = page.locator(".jp-Dialog").filter(has_text="Validation Results")
    expect(dialog).to_be_visible(timeout=timeout)
    body = dialog.locator(".jp-Dialog-body")
    blocks = body.locator(".jp-RenderedText pre").all_inner_texts()
    return ValidationResult(
        text=body.inner_text(),
        succeeded=body.locator(".validation-success").count() == 1,
        failed_sources=tuple(blocks[0::2]),
        failed_errors=tuple(blocks[1::2]),
    )


def close_dialog(page: Page) -> None:
    dialog = page.locator(".jp-Dialog")
    dialog.locator(".jp-mod-accept").click()
    expect(dialog).to_have_count(0)


def show_cell(page: Page, index: int) -> None:
    """Scroll the notebook so that cell ``index`` and its outputs are on screen."""
    cell = page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell").nth(index)
    target = cell.locator(".jp-OutputArea")
    (target if target.count() else cell).scroll_into_view_if_needed()


def menu(page: Page, *labels: str) -> None:
    """Click through the menu bar, e.g. ``menu(page, "Nbgrader", "Assignment List")``."""
    page.locator("#jp-menu-panel").get_by_role("menuitem", name=labels[0], exact=True).click()
    for label in labels[1:]:
        page.locator(".lm-Menu").get_by_role("menuitem", name=label, exact=True).last.click()


def panel(page: Page, title: str) -> Locator:
    """The main-area widget whose tab is titled ``title``."""
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab").filter(has_text=title)
    expect(tab).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    return page.locator(f"#{tab.get_attribute('data-id')}")
