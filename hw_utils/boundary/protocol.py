"""The names the two sides of the grading boundary share: errors, reference markers, and the
environment of a checker kernel. No PyTorch here: nbgrader's own process imports this."""

from __future__ import annotations

CHECKER_ENV = "HW_BOUNDARY_CHECKER"  # set in a checker kernel: never fall back to one kernel
STUDENT = "\x00hw:student"  # marker of a student name in a request: (STUDENT, name)
FUNCTION = "\x00hw:function"  # marker of an importable function: (FUNCTION, "module:qualname")


class BoundaryError(RuntimeError):
    """A test could not observe the student's code across the grading boundary."""


class NotDataError(BoundaryError, TypeError):
    """A value that cannot cross the boundary: it is not data (see :mod:`.data`)."""


class ForbiddenCallError(BoundaryError):
    """The student's code called something a test forbids while it watches (e.g. ``F.conv2d``
    inside ``conv2d_vectorized``)."""


class StudentTimeout(BoundaryError, TimeoutError):
    """A call into the student's code did not return in time (it was interrupted)."""


class StudentUnavailable(BoundaryError):
    """The student's kernel is gone (it died, or ignored an interrupt): nothing can be called."""
