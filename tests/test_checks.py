"""hw_utils.checks: each helper passes what is right and says precisely what is wrong."""

from __future__ import annotations

import pytest
import torch

from hw_utils import checks
from hw_utils.checks import Case, CheckFailed


def test_assert_close_passes_equal_tensors_within_tolerance():
    x = torch.rand(2, 3, dtype=torch.float64)
    checks.assert_close(x + 1e-12, x, "f")


@pytest.mark.parametrize(
    ("actual", "fragment"),
    [
        ([1.0, 2.0], "returned list, expected a torch.Tensor"),
        (torch.zeros(2, 4, dtype=torch.float64), "shape (2, 4), expected (2, 3)"),
        (torch.zeros(2, 3, dtype=torch.float32), "dtype torch.float32, expected torch.float64"),
    ],
)
def test_assert_close_names_type_shape_and_dtype(actual, fragment):
    with pytest.raises(CheckFailed) as info:
        checks.assert_close(actual, torch.zeros(2, 3, dtype=torch.float64), "conv(x)")
    assert str(info.value).startswith("conv(x): ") and fragment in str(info.value)


class _Agreeable(torch.Tensor):
    """A tensor that says it equals anything (a red-team trick)."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in ("gt", "__gt__", "isnan", "any"):
            return torch.zeros((), dtype=torch.bool)
        return super().__torch_function__(func, types, args, kwargs or {})


def test_assert_close_refuses_tensor_subclasses_but_takes_parameters():
    expected = torch.ones(2, 3, dtype=torch.float64)
    liar = torch.zeros(2, 3, dtype=torch.float64).as_subclass(_Agreeable)
    with pytest.raises(CheckFailed, match=r"a _Agreeable, a subclass of torch\.Tensor"):
        checks.assert_close(liar, expected, "conv(x)")
    checks.assert_close(torch.nn.Parameter(expected.clone()), expected, "weight")


def test_assert_close_reports_first_index_values_count_and_hint():
    expected = torch.zeros(2, 3, 4, dtype=torch.float64)
    actual = expected.clone()
    actual[1, 2, 0] = 0.5
    actual[1, 2, 3] = -2.0
    with pytest.raises(CheckFailed) as info:
        checks.assert_close(actual, expected, "out", hint="check the stride")
    message = str(info.value)
    assert "2 of 24 positions" in message
    assert "first at index (1, 2, 0): got 0.5, expected 0" in message
    assert "largest error 2" in message
    assert message.endswith("Hint: check the stride")


def test_assert_close_reports_nan():
    actual = torch.tensor([1.0, float("nan")])
    with pytest.raises(CheckFailed, match=r"NaN at index \(1,\)"):
        checks.assert_close(actual, torch.tensor([1.0, 2.0]), "y")


def test_assert_equal_spots_true_division():
    with pytest.raises(CheckFailed, match="use // not /"):
        checks.assert_equal(5.0, 5, "size")
    with pytest.raises(CheckFailed, match="got 4, expected 5"):
        checks.assert_equal(4, 5, "size")
    checks.assert_equal(torch.tensor(5), 5, "size")


def test_assert_raises_checks_type_and_message():
    def bad():
        raise ValueError("kernel size must be odd")

    checks.assert_raises(ValueError, bad, "filter2d", match="odd")
    with pytest.raises(CheckFailed, match="expected a message that mentions 'even'"):
        checks.assert_raises(ValueError, bad, "filter2d", match="even")
    with pytest.raises(CheckFailed, match="returned normally"):
        checks.assert_raises(ValueError, lambda: None, "filter2d")
    with pytest.raises(CheckFailed, match="raised TypeError"):
        checks.assert_raises(ValueError, lambda: len(3), "filter2d")


def test_assert_raises_lets_an_untouched_stub_stop_the_cell():
    def stub():
        raise NotImplementedError("filter2d: replace this line with your code")

    with pytest.raises(NotImplementedError, match="filter2d"):
        checks.assert_raises(ValueError, stub, "filter2d")


def test_assert_overfit_threshold_and_percent_scale():
    checks.assert_overfit(96.0)
    with pytest.raises(CheckFailed, match=r"reached 80\.0%"):
        checks.assert_overfit(80.0)
    with pytest.raises(CheckFailed, match="not a percentage"):
        checks.assert_overfit(0.99 * 200)


def test_numerical_gradient_matches_autograd():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    (x.sin() * x).sum().backward()
    numeric = checks.numerical_gradient(lambda t: t.sin() * t, x)
    torch.testing.assert_close(numeric, x.grad, atol=1e-6, rtol=1e-6)


def test_score_cases_gives_partial_credit_and_reports_each_failure(capsys):
    def fail():
        raise CheckFailed("case b: wrong")

    def crash():
        raise IndexError("out of range")

    score = checks.score_cases([Case("a", lambda: None), Case("b", fail), Case("c", crash)], 3)
    assert score == 1.0 and type(score) is float
    out = capsys.readouterr().out
    assert "FAILED b: case b: wrong" in out and "FAILED c: IndexError: out of range" in out
    checks.score_cases([Case("size(3)", lambda: checks.assert_equal(4, 3, "size(3)"))], 1)
    assert "FAILED size(3): got 4, expected 3." in capsys.readouterr().out
    assert "1 of 3 cases passed." in out


def test_score_cases_lets_an_untouched_stub_stop_the_cell():
    def stub():
        raise NotImplementedError("conv2d_forward: replace this line with your code")

    with pytest.raises(NotImplementedError, match="conv2d_forward"):
        checks.score_cases([Case("a", stub)], 2)
