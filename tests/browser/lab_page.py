"""What a student or an instructor does in JupyterLab, as Playwright steps, and what the page
shows, as values.

Every wait is on a concrete state (a kernel status, a prompt number, a dialog's text, a server
answer), never a fixed sleep. Several notebooks may be open in one JupyterLab page; the steps act
on the one on screen. Cells are read from its DOM: :class:`CellView` is what the student sees of
one cell.
"""

from __future__ import annotations

import re
import time
from typing import NamedTuple

from playwright.sync_api import Locator, Page, expect

from .lab_server import LabServer

# How long JupyterLab may take to load, open a notebook or start a kernel; a wait ends as soon
# as the page reaches its state. Runs are bounded by the assignment's grading limits instead.
LOAD_TIMEOUT_MS = 90_000

# How often a wait re-reads the page (instead of on every animation frame, which keeps a core busy
# during a long run).
POLL_MS = 100

STDERR = "application/vnd.jupyter.stderr"  # stderr streams and errors (tracebacks) alike
STDOUT = "application/vnd.jupyter.stdout"


class OutputView(NamedTuple):
    """One output of a cell as rendered: its MIME type, its text and the images it shows."""

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


_PANEL = "[...document.querySelectorAll('.jp-NotebookPanel')].find(p => p.checkVisibility())"

# Every cell of the notebook on screen, in one round trip (textContent: cells scrolled out of
# view are not laid out, so their innerText would be empty).
_READ_CELLS = f"""() => {{
  const panel = {_PANEL};
  if (!panel) return [];
  return [...panel.querySelectorAll('.jp-Notebook .jp-Cell')].map((cell, index) => ({{
    index,
    kind: cell.classList.contains('jp-CodeCell') ? 'code'
        : cell.classList.contains('jp-MarkdownCell') ? 'markdown' : 'raw',
    prompt: (cell.querySelector('.jp-InputPrompt')?.textContent ?? '').trim(),
    outputs: [...cell.querySelectorAll('.jp-OutputArea-output')].map(o => ({{
      mime: o.getAttribute('data-mime-type') ?? '',
      text: o.textContent,
      images: o.querySelectorAll('img').length,
    }})),
  }}));
}}"""

# True once a run has ended: every code cell has a prompt number, or the run stopped at an error
# (later cells stay "[ ]") and nothing is queued or running any more.
_RUN_ENDED = f"""() => {{
  const panel = {_PANEL};
  if (!panel) return false;
  const prompts = [...panel.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
    .map(p => p.textContent.trim());
  if (prompts.some(p => p === '[*]:')) return false;
  if (prompts.every(p => /^\\[\\d+\\]:$/.test(p))) return true;
  return panel.querySelector('.jp-OutputArea-output[data-mime-type="{STDERR}"]') !== null;
}}"""

# True once code cell ``index`` shows a prompt number other than ``before``.
_CELL_RAN = f"""({{index, before}}) => {{
  const cell = {_PANEL}?.querySelectorAll('.jp-Notebook .jp-Cell')[index];
  const prompt = (cell?.querySelector('.jp-InputPrompt')?.textContent ?? '').trim();
  return prompt !== before && /^\\[\\d+\\]:$/.test(prompt);
}}"""


def notebook_panel(page: Page) -> Locator:
    """The notebook on screen."""
    return page.locator(".jp-NotebookPanel:visible")


def open_lab(page: Page, server: LabServer) -> None:
    """Load JupyterLab (the token logs the browser in) and wait for nbgrader's menu."""
    page.goto(server.url("lab"))
    nbgrader = page.locator("#jp-menu-panel").get_by_role("menuitem", name="Nbgrader")
    expect(nbgrader).to_be_visible(timeout=LOAD_TIMEOUT_MS)


def menu(page: Page, *labels: str) -> None:
    """Click through the menu bar, e.g. ``menu(page, "Nbgrader", "Assignment List")``."""
    page.locator("#jp-menu-panel").get_by_role("menuitem", name=labels[0], exact=True).click()
    for label in labels[1:]:
        page.locator(".lm-Menu").get_by_role("menuitem", name=label, exact=True).last.click()


def open_notebook(page: Page, server: LabServer, path: str, cell_count: int) -> None:
    """*File → Open from Path…* ``path`` (relative to the server root); wait until all its
    ``cell_count`` cells are on the page and its kernel is idle, then *View → Expand All Code*
    so that collapsed cells show their prompts too."""
    panels = page.locator(".jp-NotebookPanel")
    opened = panels.count()
    menu(page, "File", "Open from Path…")
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input").fill(path)
    dialog.locator(".jp-mod-accept").click()
    expect(panels).to_have_count(opened + 1, timeout=LOAD_TIMEOUT_MS)
    cells = notebook_panel(page).locator(".jp-Notebook .jp-Cell")
    expect(cells).to_have_count(cell_count, timeout=LOAD_TIMEOUT_MS)
    _wait_for_session_idle(page, server, path)
    wait_for_kernel_idle(page)
    menu(page, "View", "Expand All Code")
    expect(notebook_panel(page).locator(".jp-Placeholder-prompt")).to_have_count(0)


def _wait_for_session_idle(page: Page, server: LabServer, path: str) -> None:
    """Poll the server until the kernel of ``path``'s session has started and is idle (so the
    status bar, which shows the notebook on screen, cannot be read before it switched)."""
    deadline = time.monotonic() + LOAD_TIMEOUT_MS / 1000
    while True:
        sessions = page.request.get(server.url("api/sessions")).json()
        states = [s["kernel"]["execution_state"] for s in sessions if s["path"] == path]
        if states == ["idle"]:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the kernel of {path} did not start: sessions {sessions}")
        page.wait_for_timeout(POLL_MS)


def wait_for_kernel_idle(page: Page, timeout: float = LOAD_TIMEOUT_MS) -> None:
    """The status bar says the kernel of the notebook on screen is idle."""
    status = page.locator("#jp-main-statusbar").get_by_text(re.compile(r"\| Idle$"))
    expect(status).to_be_visible(timeout=timeout)


def read_cells(page: Page) -> list[CellView]:
    return [
        CellView(c["index"], c["kind"], c["prompt"], tuple(OutputView(**o) for o in c["outputs"]))
        for c in page.evaluate(_READ_CELLS)
    ]


def restart_and_run_all(page: Page) -> None:
    """*Restart the kernel and run all cells* (the toolbar's ⏩ button), confirmed."""
    notebook_panel(page).locator("[data-command='notebook:restart-run-all']").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Restart Kernel?")
    dialog.locator(".jp-mod-accept").click()
    expect(dialog).to_have_count(0)


def wait_for_run_to_end(page: Page, timeout: float) -> list[CellView]:
    """Wait until the notebook has run to its end (or stopped at an error); returns its cells."""
    page.wait_for_function(_RUN_ENDED, timeout=timeout, polling=POLL_MS)
    wait_for_kernel_idle(page, timeout)
    return read_cells(page)


def run_cells_from(page: Page, start: int, timeout: float) -> list[CellView]:
    """Run the cells from ``start`` to the end one at a time with Shift+Enter (Ctrl+Enter on the
    last, which would otherwise add a cell), each after the previous one finished, so that an
    error does not cancel the cells after it as it does in Run All; ``timeout`` is per cell."""
    prompts = [cell.prompt for cell in read_cells(page)]
    if start >= len(prompts):
        return read_cells(page)
    cells = notebook_panel(page).locator(".jp-Notebook .jp-Cell")
    cells.nth(start).locator(".jp-InputPrompt").click()
    for index in range(start, len(prompts)):
        page.keyboard.press("Shift+Enter" if index < len(prompts) - 1 else "Control+Enter")
        if prompts[index]:  # a code cell: wait for its new prompt number
            page.wait_for_function(
                _CELL_RAN,
                arg={"index": index, "before": prompts[index]},
                timeout=timeout,
                polling=POLL_MS,
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


def show_cell(page: Page, index: int) -> None:
    """Scroll the notebook so that cell ``index`` and its outputs are on screen, painted."""
    cell = notebook_panel(page).locator(".jp-Notebook .jp-Cell").nth(index)
    outputs = cell.locator(".jp-OutputArea")
    target = outputs if outputs.count() else cell
    target.scroll_into_view_if_needed()
    expect(target).to_be_in_viewport()


def click_validate(page: Page) -> None:
    """The nbgrader *Validate* button of the notebook toolbar."""
    notebook_panel(page).locator(".jp-NotebookPanel-toolbar").get_by_role(
        "button", name="Validate"
    ).click()


class ValidationResult(NamedTuple):
    """What the *Validation Results* dialog says."""

    text: str
    succeeded: bool
    failed_sources: tuple[str, ...]  # source of each cell listed as failed, in order
    failed_errors: tuple[str, ...]  # the error shown under each


def read_validation(page: Page, timeout: float) -> ValidationResult:
    """Wait for the *Validation Results* dialog, read it and leave it open."""
    dialog = page.locator(".jp-Dialog").filter(has_text="Validation Results")
    expect(dialog).to_be_visible(timeout=timeout)
    body = dialog.locator(".jp-Dialog-body")
    blocks = body.locator(".jp-RenderedText pre").all_inner_texts()  # <br> as newlines
    return ValidationResult(
        text=body.inner_text(),
        succeeded=dialog.locator(".jp-Dialog-body.validation-success").count() == 1,
        failed_sources=tuple(blocks[0::2]),
        failed_errors=tuple(blocks[1::2]),
    )


def close_dialog(page: Page) -> None:
    dialog = page.locator(".jp-Dialog")
    dialog.locator(".jp-mod-accept").click()
    expect(dialog).to_have_count(0)


def assignment_row(page: Page, listing: str, assignment_id: str) -> Locator:
    """The row of ``assignment_id`` in a list of nbgrader's *Assignments* panel: ``released``,
    ``fetched`` or ``submitted``."""
    rows = page.locator(f"#{listing}_assignments_list > .list_item")
    return rows.filter(has=page.locator(".item_name", has_text=assignment_id))
