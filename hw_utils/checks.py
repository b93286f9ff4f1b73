"""Checks for visible and hidden tests, with messages that say what is wrong.

Every failed check raises :class:`CheckFailed` (an ``AssertionError``) whose message names the
thing under test, what was expected, what came out, and a hint when one is given, e.g.::

    CheckFailed: conv2d_forward(stride=2): shape (1, 2, 4, 4), expected (1, 2, 3, 3).
    Hint: check the +1 and the floor division in the output size.

The helpers mark their own frames hidden (``__tracebackhide__``) so that IPython shows the test
line, not the inside of this module. Tensors are never dumped: one differing index and its values.

Partial credit: :func:`score_cases` runs named cases, prints one line per failure to stdout and
returns the points earned as a float; an nbgrader test cell ends with it as its last expression.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import torch

__all__ = [
    "Case",
    "CheckFailed",
    "assert_close",
    "assert_equal",
    "assert_overfit",
    "assert_raises",
    "assert_shape",
    "numerical_gradient",
    "score_cases",
]


class CheckFailed(AssertionError):
    """A check found a difference; the message explains it."""


PLAIN_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)


def _fail(name: str, problem: str, hint: str | None) -> None:
    __tracebackhide__ = True
    message = f"{name}: {problem}"
    if hint:
        message += f"\nHint: {hint}"
    raise CheckFailed(message)


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def default_tolerance(dtype: torch.dtype) -> tuple[float, float]:
    """``(atol, rtol)`` that a correct loop implementation meets for ``dtype``."""
    if dtype == torch.float64:
        return 1e-9, 1e-7
    if dtype in (torch.float16, torch.bfloat16):
        return 1e-2, 1e-2
    return 1e-5, 1e-4


def assert_shape(actual: Any, expected: Sequence[int], name: str, hint: str | None = None) -> None:
    """``actual`` is a tensor of shape ``expected``."""
    __tracebackhide__ = True
    if not isinstance(actual, torch.Tensor):
        _fail(name, f"returned {type(actual).__name__}, expected a torch.Tensor", hint)
    if type(actual) not in PLAIN_TENSOR_TYPES:
        # A subclass can answer comparisons itself (__torch_function__): only plain tensors
        # (and a module's nn.Parameter) are checked.
        _fail(
            name,
            f"returned a {type(actual).__name__}, a subclass of torch.Tensor; return a plain "
            "tensor (e.g. built with torch.zeros or computed from the inputs).",
            hint,
        )
    if tuple(actual.shape) != tuple(expected):
        _fail(name, f"shape {tuple(actual.shape)}, expected {tuple(expected)}.", hint)


def assert_close(
    actual: Any,
    expected: torch.Tensor,
    name: str,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    check_dtype: bool = True,
    hint: str | None = None,
) -> None:
    """``actual`` equals ``expected`` in type, shape, dtype and values (within tolerances).

    Tolerances default to :func:`default_tolerance` of the expected dtype. The message reports how
    many positions differ, the first differing index with both values, and the largest error.
    """
    __tracebackhide__ = True
    assert_shape(actual, expected.shape, name, hint)
    if check_dtype and actual.dtype != expected.dtype:
        _fail(
            name,
            f"dtype {actual.dtype}, expected {expected.dtype}: keep the input's dtype "
            "(create new tensors with dtype=x.dtype).",
            hint,
        )
    default_atol, default_rtol = default_tolerance(expected.dtype)
    atol = default_atol if atol is None else atol
    rtol = default_rtol if rtol is None else rtol
    got = actual.detach().to(torch.float64).cpu()
    want = expected.detach().to(torch.float64).cpu()
    if got.numel() == 0:
        return
    if bool(torch.isnan(got).any()) and not bool(torch.isnan(want).any()):
        index = tuple(int(i) for i in torch.nonzero(torch.isnan(got))[0])
        _fail(name, f"NaN at index {index}, expected {_fmt(want[index].item())}.", hint)
    error = (got - want).abs()
    bad = error > atol + rtol * want.abs()
    if bool(bad.any()):
        index = tuple(int(i) for i in torch.nonzero(bad)[0])
        _fail(
            name,
            f"values differ at {int(bad.sum())} of {bad.numel()} positions; first at index "
            f"{index}: got {_fmt(got[index].item())}, expected {_fmt(want[index].item())}; "
            f"largest error {_fmt(error.max().item())}.",
            hint,
        )


def assert_equal(actual: Any, expected: Any, name: str, hint: str | None = None) -> None:
    """Exact equality for ints, tuples, strings (not tensors: use :func:`assert_close`)."""
    __tracebackhide__ = True
    if isinstance(actual, torch.Tensor) and actual.numel() == 1:
        actual = actual.item()
    if type(expected) is int and isinstance(actual, float) and actual.is_integer():
        _fail(name, f"got {actual!r}, a float; expected the int {expected!r} (use // not /).", hint)
    if actual != expected:
        _fail(name, f"got {actual!r}, expected {expected!r}.", hint)


def assert_raises(
    exception: type[BaseException],
    function: Callable[[], Any],
    name: str,
    *,
    match: str | None = None,
    hint: str | None = None,
) -> BaseException:
    """``function()`` raises ``exception`` (whose message contains ``match``, case-insensitive)."""
    __tracebackhide__ = True
    try:
        function()
    except exception as error:
        if match is not None and match.lower() not in str(error).lower():
            _fail(
                name,
                f"raised {exception.__name__}({str(error)!r}), expected a message "
                f"that mentions {match!r}.",
                hint,
            )
        return error
    except NotImplementedError:
        raise  # an untouched stub: stop with the stub's own message
    except Exception as error:
        _fail(name, f"raised {type(error).__name__}: {error}; expected {exception.__name__}.", hint)
    _fail(name, f"returned normally, expected it to raise {exception.__name__}.", hint)
    raise AssertionError("unreachable")


def assert_overfit(accuracy: float, threshold: float = 95.0, hint: str | None = None) -> None:
    """Training accuracy (percent) on a tiny subset reached ``threshold`` percent."""
    __tracebackhide__ = True
    if not 0.0 <= accuracy <= 100.0:
        _fail(
            "overfit check",
            f"accuracy {_fmt(accuracy)} is not a percentage; report accuracy in 0-100.",
            hint,
        )
    if accuracy < threshold:
        _fail(
            "overfit check",
            f"reached {accuracy:.1f}% on the tiny training subset, expected at least "
            f"{threshold:.0f}%.",
            hint
            or "a model that cannot memorise 100 images has a bug: check zero_grad(), "
            "model.train(), the loss and the learning rate.",
        )


def numerical_gradient(
    function: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """Central-difference gradient of the scalar ``function(x).sum()`` with respect to ``x``.

    Use float64 inputs; costs two calls of ``function`` per element of ``x``.
    """
    x = x.detach().clone().to(torch.float64)
    grad = torch.zeros_like(x)
    flat_x, flat_grad = x.view(-1), grad.view(-1)
    for i in range(flat_x.numel()):
        original = flat_x[i].item()
        flat_x[i] = original + eps
        plus = function(x).sum().item()
        flat_x[i] = original - eps
        minus = function(x).sum().item()
        flat_x[i] = original
        flat_grad[i] = (plus - minus) / (2 * eps)
    return grad


class Case(NamedTuple):
    """One named test case: ``check()`` raises on failure."""

    name: str
    check: Callable[[], Any]


def score_cases(cases: Iterable[Case], points: float) -> float:
    """Run every case; print one line per failure; return ``points * passed / total``.

    Errors other than failed checks (a crash inside the student's code) count as failures and are
    reported with their type, so one bug costs its cases and not the whole cell. A
    ``NotImplementedError`` (an untouched stub) propagates: the cell stops with the stub's message.
    """
    __tracebackhide__ = True
    cases = list(cases)
    if not cases:
        raise ValueError("score_cases needs at least one case")
    passed = 0
    for case in cases:
        try:
            case.check()
        except NotImplementedError:
            raise  # an untouched stub: stop here with the stub's own message
        except CheckFailed as failure:
            message = str(failure)  # usually starts with the case's name already
            print(
                f"FAILED {message if message.startswith(case.name) else f'{case.name}: {message}'}"
            )
        except Exception as error:
            print(f"FAILED {case.name}: {type(error).__name__}: {error}")
        else:
            passed += 1
    print(f"{passed} of {len(cases)} cases passed.")
    return float(points * passed / len(cases))
