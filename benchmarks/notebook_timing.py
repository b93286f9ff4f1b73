"""Cell timings of a notebook executed by nbclient with ``record_timing=True`` (for the
benchmark scripts of this folder)."""

from __future__ import annotations

from datetime import datetime

import nbformat


def cell_seconds(cell: nbformat.NotebookNode) -> float:
    """Wall-clock time of one executed cell, from nbclient's recorded timestamps (0 if none)."""
    timing = cell.metadata.get("execution", {})
    start = timing.get("iopub.execute_input") or timing.get("shell.execute_request")
    end = timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
