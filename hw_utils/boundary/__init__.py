"""How tests call the student's code: across a boundary that only data crosses.

In a student's own JupyterLab there is one kernel and no boundary: a test cell calls the
student's functions in the same process. During grading, test cells run in a *checker kernel*
that never executes student code, and every call crosses to the sandboxed student kernel; only
data comes back (see :mod:`hw_utils.boundary.data`). Tests are written once, for both::

    from hw_utils.boundary import student

    out = student.conv2d_forward(x, weight, stride=2)     # call a student function
    shapes = student.value("lenet_shapes")                # read a student variable
    report = student.run(probes.conv_layer, student.MyConv2d, (3, 4, 3), {}, x)  # observe objects

    with student.standing_in(conv_output_size=probes.conv_output_size_by_pytorch):
        out = student.conv2d_forward(x, weight)          # their conv with PyTorch's size helper
    with student.forbidding("torch.nn.functional.conv2d", reason="use unfold"):
        out = student.conv2d_vectorized(x, weight)

Arguments are data, ``student.<name>`` references and importable functions; results are data.
Objects (a layer, a model, an optimizer) never cross: a *probe* (an importable function of
:mod:`hw_utils.probes`) builds and observes them where the student's code runs, and returns data.
Exceptions the student's code raises reach the test as the nearest builtin exception with the
same message. Details for authors: ``docs/authoring.md``.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from collections.abc import Iterator
from typing import Any

from hw_utils.boundary.protocol import (
    CHECKER_ENV,
    FUNCTION,
    STUDENT,
    BoundaryError,
    ForbiddenCallError,
    NotDataError,
    StudentTimeout,
    StudentUnavailable,
)

__all__ = [
    "BoundaryError",
    "ForbiddenCallError",
    "NotDataError",
    "StudentName",
    "StudentTimeout",
    "StudentUnavailable",
    "student",
]


# PyTorch is imported on the first call, not here: nbgrader's own process imports this package.


def _prepare(value: Any, where: str) -> Any:
    """A test's argument as it crosses: references become markers, the rest must be data."""
    from hw_utils.boundary.calls import function_marker, student_marker
    from hw_utils.boundary.data import to_data

    if isinstance(value, StudentName):
        return student_marker(value.__name__)
    if type(value) is tuple:
        return tuple(_prepare(v, where) for v in value)
    if type(value) is list:
        return [_prepare(v, where) for v in value]
    if type(value) is dict:
        return {k: _prepare(v, where) for k, v in value.items()}
    if inspect.isroutine(value) or inspect.isclass(value):
        return function_marker(value)
    try:
        return to_data(value, where)
    except NotDataError as error:
        raise BoundaryError(
            f"a test sends {where} to the student's code, but it is not data ({error}); build "
            "objects on the student's side with student.run(probe, ...)."
        ) from None


class _Context:
    """Stand-ins and forbidden functions of the enclosing ``with`` blocks."""

    def __init__(self) -> None:
        self.standing_in: dict[str, str] = {}
        self.forbidden: list[tuple[str, str]] = []
        self.reason = ""


_context = _Context()


class LocalBackend:
    """No boundary: the student's notebook is this kernel's namespace."""

    @staticmethod
    def namespace() -> dict[str, Any]:
        from IPython import get_ipython

        shell = get_ipython()
        return shell.user_ns if shell is not None else sys.modules["__main__"].__dict__

    def request(self, request: dict[str, Any]) -> Any:
        __tracebackhide__ = True
        from hw_utils.boundary.calls import perform
        from hw_utils.boundary.data import decode, encode

        # The same copy and the same conversion as across the boundary, errors unchanged (so
        # that a student sees the traceback into their own code).
        crossed = decode(encode(request))
        return decode(encode(perform(crossed, self.namespace(), quiet=False)))


_backend: Any = None


def backend() -> Any:
    """The student's side: a student kernel once :func:`connect` was called (grading), else this
    kernel's own notebook. A checker kernel (``HW_BOUNDARY_CHECKER`` set) never falls back."""
    global _backend
    if _backend is None:
        if os.environ.get(CHECKER_ENV):
            raise BoundaryError("this checker kernel is not connected to a student kernel.")
        _backend = LocalBackend()
    return _backend


def connect(connection_file: str, timeout: float) -> None:
    """Grading only: from now on, calls go to the student kernel of ``connection_file`` (a
    Jupyter connection file) and may take ``timeout`` seconds each."""
    global _backend
    from hw_utils.boundary.remote import RemoteBackend

    if isinstance(_backend, RemoteBackend):
        _backend.close()
    _backend = RemoteBackend(connection_file, timeout)


def _send(op: str, target: str, args: tuple, kwargs: dict, label: str) -> Any:
    # IPython leaves the boundary's frames out of tracebacks: a student's error shows the test
    # and then their own code (every function on the way marks itself the same way).
    __tracebackhide__ = True
    request = {
        "op": op,
        "target": target,
        "args": list(_prepare(list(args), f"an argument of {label}")),
        "kwargs": _prepare(dict(kwargs), f"a keyword argument of {label}"),
        "standing_in": dict(_context.standing_in),
        "forbidden": list(_context.forbidden),
        "reason": _context.reason,
    }
    return backend().request(request)


class StudentName:
    """``student.<name>``: a function or class of the student's notebook, called across the
    boundary; also a reference that ``student.run`` and ``student.forbidding`` accept."""

    __slots__ = ("__name__", "__qualname__")

    def __init__(self, name: str) -> None:
        self.__name__ = self.__qualname__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        return _send("call", self.__name__, args, kwargs, self.__name__)

    def __repr__(self) -> str:
        return f"student.{self.__name__}"


class Student:
    """The student's notebook as the tests see it (the module-level :data:`student`)."""

    def __getattr__(self, name: str) -> StudentName:
        if name.startswith("_"):
            raise AttributeError(name)
        return StudentName(name)

    def __getitem__(self, name: str) -> StudentName:
        return StudentName(name)

    def value(self, name: str) -> Any:
        """The current value of the student's variable ``name``, as data."""
        __tracebackhide__ = True
        return _send("value", name, (), {}, name)

    def run(self, probe: Any, *args: Any, **kwargs: Any) -> Any:
        """``probe(*args, **kwargs)`` run where the student's code runs; ``student.<name>``
        arguments arrive as the student's objects. ``probe`` must be importable by name (a
        function of :mod:`hw_utils.probes`) and return data."""
        __tracebackhide__ = True
        from hw_utils.boundary.calls import function_path

        path = function_path(probe)
        return _send("run", path, args, kwargs, path.rpartition(":")[2])

    @contextlib.contextmanager
    def standing_in(self, **replacements: Any) -> Iterator[None]:
        """Inside the block, calls of the student's code see each named student function
        replaced by an importable stand-in (so a function is tested on its own, with a correct
        version of the helper it calls)."""
        from hw_utils.boundary.calls import function_marker

        saved = dict(_context.standing_in)
        _context.standing_in.update(
            {name: function_marker(f)[1] for name, f in replacements.items()}
        )
        try:
            yield
        finally:
            _context.standing_in = saved

    @contextlib.contextmanager
    def forbidding(self, *functions: Any, reason: str) -> Iterator[None]:
        """Inside the block, the student's code raises :class:`ForbiddenCallError` if it calls
        one of ``functions``: dotted paths (``"torch.nn.functional.conv2d"``) or
        ``student.<name>`` references."""
        saved = (list(_context.forbidden), _context.reason)
        for function in functions:
            if isinstance(function, StudentName):
                _context.forbidden.append((STUDENT, function.__name__))
            elif isinstance(function, str):
                _context.forbidden.append((FUNCTION, function))
            else:
                raise BoundaryError(
                    f"forbidding({function!r}): give a dotted path or a student.<name>"
                )
        _context.reason = reason
        try:
            yield
        finally:
            _context.forbidden, _context.reason = saved


student = Student()
