"""What may cross the grading boundary: data, never objects.

A value crosses as *data* when it is built only from

- ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``;
- plain CPU tensors (``torch.Tensor`` or ``nn.Parameter``, never a subclass; they cross detached,
  as plain tensors), ``torch.Size``, ``torch.dtype``, ``torch.device``;
- ``tuple``, ``list`` and ``dict`` (keys: ``str``, ``int`` or tuples of them) of data;
- the NamedTuples of ``hw_utils`` (e.g. ``hw_utils.training.EpochResult``), rebuilt as themselves;
  any other NamedTuple crosses as a plain tuple.

NumPy scalars become Python numbers. Everything else (modules, NumPy arrays, generators, a tensor
subclass, an object of the student's own class) is refused with :class:`NotDataError`, whose
message names the value and its type. On the wire, data is ``torch.save`` bytes read back with
``torch.load(weights_only=True)``, which can rebuild only data, never an arbitrary object.
"""

from __future__ import annotations

import importlib
import io
import warnings
from typing import Any

import torch

from hw_utils.boundary.protocol import BoundaryError, NotDataError

MAX_DEPTH = 32
MAX_ITEMS = 1_000_000
MAX_BYTES = 256 * 2**20  # tensor and string bytes in one value
RECORD = "__hw_record__"  # marker key of a hw_utils NamedTuple on the wire
PLAIN_TENSORS = (torch.Tensor, torch.nn.Parameter)
SCALARS = (type(None), bool, int, float, complex, str, bytes)


def type_name(value: Any) -> str:
    """``numpy.ndarray``, ``MyConv2d``, ``int``: a short name of the value's type."""
    kind = type(value)
    module = kind.__module__
    if module in ("builtins", "__main__") or module.startswith("IPython"):
        return kind.__qualname__
    return f"{module.split('.')[0]}.{kind.__qualname__}"


def _is_numpy_scalar(value: Any) -> bool:
    kind = type(value)
    return kind.__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0


def _record_path(value: Any) -> str | None:
    """``hw_utils.training.EpochResult`` for a NamedTuple of hw_utils, else ``None``."""
    kind = type(value)
    if not (isinstance(value, tuple) and hasattr(kind, "_fields")):
        return None
    module = kind.__module__
    return f"{module}.{kind.__qualname__}" if module.startswith("hw_utils.") else None


class _Budget:
    def __init__(self) -> None:
        self.items = 0
        self.bytes = 0

    def spend(self, items: int, size: int, what: str) -> None:
        self.items += items
        self.bytes += size
        if self.items > MAX_ITEMS or self.bytes > MAX_BYTES:
            raise NotDataError(
                f"{what} is too large to check: more than {MAX_ITEMS:,} items or "
                f"{MAX_BYTES // 2**20} MB."
            )


def to_data(value: Any, what: str = "the result") -> Any:
    """``value`` as data (copied: tensors are detached clones on the CPU), or
    :class:`NotDataError` naming ``what`` and the first part that is not data."""
    return _convert(value, what, 0, _Budget())


def _convert(value: Any, what: str, depth: int, budget: _Budget) -> Any:
    if depth > MAX_DEPTH:
        raise NotDataError(f"{what} is nested more than {MAX_DEPTH} levels deep.")
    kind = type(value)
    if kind in SCALARS:
        budget.spend(1, len(value) if kind in (str, bytes) else 8, what)
        return value
    if isinstance(value, torch.Tensor):
        if kind not in PLAIN_TENSORS:
            raise NotDataError(
                f"{what} is a {type_name(value)}, a subclass of torch.Tensor; return a plain "
                "tensor (e.g. built with torch.zeros or computed from the inputs)."
            )
        if value.layout != torch.strided or value.is_meta:
            raise NotDataError(f"{what} is a {value.layout} tensor; return a dense tensor.")
        budget.spend(value.numel(), value.numel() * value.element_size(), what)
        return value.detach().to("cpu", copy=True)
    if kind in (torch.Size, torch.dtype, torch.device):
        return value
    if _is_numpy_scalar(value):
        return _convert(value.item(), what, depth + 1, budget)
    if isinstance(value, tuple):
        path = _record_path(value)
        items = [_convert(v, f"{what}[{i}]", depth + 1, budget) for i, v in enumerate(value)]
        budget.spend(len(items), 0, what)
        return {RECORD: path, "values": items} if path else tuple(items)
    if kind is list:
        budget.spend(len(value), 0, what)
        return [_convert(v, f"{what}[{i}]", depth + 1, budget) for i, v in enumerate(value)]
    if kind is dict:
        budget.spend(len(value), 0, what)
        converted = {}
        for key, item in value.items():
            if not _is_key(key):
                raise NotDataError(
                    f"{what} has a key of type {type_name(key)}; use str or int keys."
                )
            converted[key] = _convert(item, f"{what}[{key!r}]", depth + 1, budget)
        return converted
    raise NotDataError(
        f"{what} is a {type_name(value)}, which cannot be checked: the tests need tensors, "
        "numbers, strings, or tuples, lists and dicts of them."
    )


def _is_key(key: Any) -> bool:
    if type(key) in (str, int, bool, float):
        return not (type(key) is str and key.startswith("__hw_"))
    return type(key) is tuple and all(type(k) in (str, int) for k in key)


def from_wire(value: Any) -> Any:
    """Rebuild the hw_utils NamedTuples of a decoded value (their markers)."""
    if isinstance(value, dict):
        if RECORD in value:
            return _record(value[RECORD], [from_wire(v) for v in value["values"]])
        return {key: from_wire(item) for key, item in value.items()}
    if type(value) is list:
        return [from_wire(v) for v in value]
    if type(value) is tuple:
        return tuple(from_wire(v) for v in value)
    return value


def _record(path: Any, values: list) -> Any:
    """``path(*values)`` for a NamedTuple class of hw_utils; a plain tuple for anything else."""
    if not isinstance(path, str) or not path.startswith("hw_utils."):
        return tuple(values)
    module_name, _, name = path.rpartition(".")
    try:
        kind = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):
        return tuple(values)
    if not (isinstance(kind, type) and issubclass(kind, tuple) and hasattr(kind, "_fields")):
        return tuple(values)
    try:
        return kind(*values)
    except TypeError:
        return tuple(values)


def encode(value: Any) -> bytes:
    """``torch.save`` bytes of a value that :func:`to_data` produced (or a request)."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def decode(payload: bytes) -> Any:
    """The value of :func:`encode` bytes, read with ``weights_only=True`` (only data can be
    rebuilt, never an arbitrary object), NamedTuples of hw_utils restored."""
    if not isinstance(payload, bytes | bytearray) or len(payload) > 2 * MAX_BYTES:
        raise NotDataError("the reply is not data of a size the tests can check.")
    try:
        with warnings.catch_warnings():  # e.g. about the pickle protocol: not the tests' business
            warnings.simplefilter("ignore")
            value = torch.load(io.BytesIO(payload), weights_only=True)
    except Exception as error:
        raise NotDataError(f"the reply is not data ({type(error).__name__}).") from None
    return from_wire(value)


# ---- exceptions ---------------------------------------------------------------------------

# Exceptions the student's code may raise that the tests may catch by class. Every other one
# crosses as the nearest of these (a student's class ValueError subclass as ValueError).
BUILTIN_ERRORS: dict[str, type[BaseException]] = {
    kind.__name__: kind
    for kind in (
        ArithmeticError, AssertionError, AttributeError, FloatingPointError, ImportError,
        IndexError, KeyError, LookupError, MemoryError, NameError, NotImplementedError,
        OSError, OverflowError, RecursionError, RuntimeError, TypeError, UnboundLocalError,
        ValueError, ZeroDivisionError, StopIteration,
    )
}  # fmt: skip
MAX_MESSAGE = 2000


def error_to_data(error: BaseException) -> dict[str, Any]:
    """An exception as data: the names of its classes (most derived first) and its message."""
    names = [f"{k.__module__}.{k.__qualname__}" for k in type(error).__mro__]
    try:
        message = str(error)
    except Exception:
        message = f"<{type(error).__name__} whose message cannot be shown>"
    return {"classes": names, "type": type(error).__name__, "message": message[:MAX_MESSAGE]}


def error_from_data(info: Any, known: dict[str, type[BaseException]]) -> BaseException:
    """The exception to raise on this side: the first of ``info``'s classes that is a builtin
    error or in ``known`` (``module.qualname`` -> class), else a ``RuntimeError``; the message
    says the original type when it differs."""
    if not isinstance(info, dict):
        return BoundaryError("the student's side sent a malformed error.")
    message = _printable(str(info.get("message", "")))[:MAX_MESSAGE]
    original = _printable(str(info.get("type", "Exception")))[:100]
    for path in info.get("classes", []) if isinstance(info.get("classes"), list) else []:
        if not isinstance(path, str):
            continue
        kind = known.get(path)
        if kind is None and path.startswith("builtins."):
            kind = BUILTIN_ERRORS.get(path.removeprefix("builtins."))
        if kind is not None:
            if kind.__name__ != original:
                message = f"({original}) {message}"
            return kind(message)
    return RuntimeError(f"{original}: {message}")


def _printable(text: str) -> str:
    """``text`` without control characters (escape sequences could rewrite a terminal or page)."""
    return "".join(c if c.isprintable() or c in "\n\t" else "?" for c in text)
