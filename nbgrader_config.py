"""nbgrader configuration of the course.

Grading limits come from the manifest (assignments/*.toml); ``course grade`` passes the limits of
the assignment it grades on the command line, the values here cover plain ``nbgrader`` commands.
"""

from pathlib import Path

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbconvert.preprocessors.sanitize import SanitizeHTML
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    ClearOutput,
    ComputeChecksums,
    DeduplicateIds,
    GetGrades,
    IgnorePattern,
    IncludeHeaderFooter,
    InstantiateTests,
    LimitOutput,
    LockCells,
    OverwriteCells,
    OverwriteKernelspec,
    SaveAutoGrades,
    SaveCells,
)

from hw_utils.grading.nbgrader_plugins import (
    BoundaryExecute,
    HideTestInternals,
    NamedStubClearSolutions,
    RestoreCellMetadata,
    StderrToStdout,
)
from hw_utils.manifest import load_manifest

c = get_config()
course_root = Path(__file__).resolve().parent
manifest = load_manifest(course_root)
limits = [assignment.limits for assignment in manifest.values()]

c.CourseDirectory.course_id = "cnn-course"
c.CourseDirectory.root = str(course_root)
# Experiment records a notebook writes (results/) are never part of an assignment.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "results"]

c.GenerateAssignment.preprocessors = [
    IncludeHeaderFooter,
    InstantiateTests,
    LockCells,
    NamedStubClearSolutions,
    ClearOutput,
    CheckCellMetadata,
    ComputeChecksums,
    SaveCells,
    ClearHiddenTests,
    ClearMarkScheme,
    ComputeChecksums,
    CheckCellMetadata,
]

# A deleted or re-flagged test cell is put back from the gradebook before execution.
c.Autograde.sanitize_preprocessors = [
    ClearOutput,
    DeduplicateIds,
    OverwriteKernelspec,
    RestoreCellMetadata,
    OverwriteCells,
    CheckCellMetadata,
]
c.OverwriteCells.add_missing_cells = True
c.Autograde.autograde_preprocessors = [
    BoundaryExecute,
    StderrToStdout,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
    # Last, after the scores are saved: what formgrader and the feedback show of a notebook is
    # never active content (a student's <script> would run in the grader's Jupyter page).
    SanitizeHTML,
]
c.SanitizeHTML.enabled = True  # nbconvert's preprocessors are off unless enabled
if limits:
    c.BoundaryExecute.timeout = max(limit.cell_timeout_s for limit in limits)
    c.LimitOutput.max_lines = max(limit.output_max_lines for limit in limits)
c.LimitOutput.max_traceback = 30

c.GenerateFeedback.preprocessors = [GetGrades, HideTestInternals, CSSHTMLHeaderPreprocessor]
