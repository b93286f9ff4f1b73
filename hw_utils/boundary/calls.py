"""Requests from the tests to the student's code, and how the student's side performs them.

A request is data plus two kinds of references: to a *student name* (a function, class or value
the student's notebook defines) and to an *importable function* (``torch.nn.functional.conv2d``,
``hw_utils.probes.hw1.conv_layer_report``), each sent as a marker and resolved on the student's
side. The same :func:`perform` runs in a student's own kernel (no boundary) and in the student's
kernel during grading, so a test behaves the same on both sides.

Request fields: ``op`` (``call``: call a student name; ``value``: read one; ``run``: call an
importable probe), ``target``, ``args``, ``kwargs``, ``standing_in`` (student name -> importable
replacement, in place during the call), ``forbidden`` (``(STUDENT, name)`` or ``(FUNCTION,
"dotted.path")`` pairs that raise :class:`ForbiddenCallError` during the call) and ``reason`` (why,
for the message).
"""

from __future__ import annotations

import contextlib
import importlib
import io
from collections.abc import Callable, Iterator
from typing import Any

from hw_utils.boundary.data import error_to_data, to_data
from hw_utils.boundary.protocol import FUNCTION, STUDENT, BoundaryError, ForbiddenCallError

# ---- references (built on the tests' side) ------------------------------------------------


def function_path(function: Any) -> str:
    """``module:qualname`` under which ``function`` can be imported again, or BoundaryError."""
    if isinstance(function, str):
        return function
    module = getattr(function, "__module__", None)
    for name in (getattr(function, "__qualname__", None), getattr(function, "__name__", None)):
        if module and name and "<" not in name:
            try:
                if _import(f"{module}:{name}") is function:
                    return f"{module}:{name}"
            except (ImportError, AttributeError):
                continue
    raise BoundaryError(
        f"cannot send {function!r} to the student's side: only functions and classes that can "
        "be imported by name (defined at module level of an installed package) can be sent."
    )


def _import(path: str) -> Any:
    module_name, _, qualname = path.partition(":")
    if not qualname:  # a dotted path: the last part is the attribute
        module_name, _, qualname = path.rpartition(".")
    value: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


def student_marker(name: str) -> tuple[str, str]:
    return (STUDENT, name)


def function_marker(function: Any) -> tuple[str, str]:
    return (FUNCTION, function_path(function))


# ---- performing a request (on the student's side) -----------------------------------------


def _resolve(value: Any, namespace: dict[str, Any]) -> Any:
    """Markers replaced by the objects they name; containers rebuilt."""
    if type(value) is tuple and len(value) == 2 and value[0] in (STUDENT, FUNCTION):
        return lookup(value[1], namespace) if value[0] == STUDENT else _import(value[1])
    if type(value) is tuple:
        return tuple(_resolve(v, namespace) for v in value)
    if type(value) is list:
        return [_resolve(v, namespace) for v in value]
    if type(value) is dict:
        return {k: _resolve(v, namespace) for k, v in value.items()}
    return value


def lookup(name: str, namespace: dict[str, Any]) -> Any:
    if name not in namespace:
        raise NameError(
            f"name '{name}' is not defined in the notebook: run the cell that defines it "
            "(and keep its name as given)."
        )
    return namespace[name]


def _forbidden_stub(label: str, reason: str) -> Callable[..., Any]:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise ForbiddenCallError(f"{label} was called, which this test does not allow: {reason}")

    return forbidden


@contextlib.contextmanager
def _patched(namespace: dict[str, Any], request: dict[str, Any]) -> Iterator[None]:
    """Stand-ins and forbidden functions in place; everything restored afterwards."""
    undo: list[Callable[[], None]] = []

    def set_name(name: str, value: Any) -> None:
        had, old = name in namespace, namespace.get(name)
        namespace[name] = value
        undo.append(lambda: namespace.__setitem__(name, old) if had else namespace.pop(name, None))

    try:
        for name, path in request.get("standing_in", {}).items():
            set_name(name, _import(path))
        reason = request.get("reason", "")
        for kind, item in request.get("forbidden", []):
            if kind == STUDENT:
                set_name(item, _forbidden_stub(item, reason))
                continue
            module_name, _, attribute = item.rpartition(".")
            module = importlib.import_module(module_name)
            original = getattr(module, attribute)
            stub = _forbidden_stub(item, reason)
            setattr(module, attribute, stub)
            undo.append(lambda m=module, a=attribute, o=original: setattr(m, a, o))
            for name, value in list(namespace.items()):  # `from torch import conv2d` too
                if value is original:
                    set_name(name, stub)
        yield
    finally:
        for step in reversed(undo):
            step()


class _Sink(io.TextIOBase):
    """Swallows what the student's code prints while a test calls it during grading."""

    def write(self, text: str) -> int:
        return len(text)


def perform(request: dict[str, Any], namespace: dict[str, Any], *, quiet: bool) -> Any:
    """The data that ``request`` yields in ``namespace`` (the student's notebook). Raises what
    the student's code raises, or :class:`NotDataError` when the result is not data."""
    __tracebackhide__ = True  # see hw_utils.boundary._send
    op, target = request["op"], request["target"]
    if op == "value":
        return to_data(lookup(target, namespace), f"the value of {target}")
    function = lookup(target, namespace) if op == "call" else _import(target)
    label = target if op == "call" else target.rpartition(":")[2]
    args = _resolve(request.get("args", []), namespace)
    kwargs = _resolve(request.get("kwargs", {}), namespace)
    output = _redirected(_Sink()) if quiet else contextlib.nullcontext()
    with output, _patched(namespace, request):
        result = function(*args, **kwargs)
    return to_data(result, f"the value returned by {label}")


@contextlib.contextmanager
def _redirected(sink: io.TextIOBase) -> Iterator[None]:
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


def respond(request: dict[str, Any], namespace: dict[str, Any]) -> dict[str, Any]:
    """:func:`perform` as a reply envelope, ``{"ok": data}`` or ``{"error": ...}``: nothing the
    student's code raises escapes (``SystemExit`` and ``KeyboardInterrupt`` included)."""
    try:
        return {"ok": perform(request, namespace, quiet=True)}
    except BaseException as error:
        return {"error": error_to_data(error)}
