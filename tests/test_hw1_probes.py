"""hw1's probes and stand-ins (hw_utils.probes.hw1)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from hw_utils.probes import hw1
from hw_utils.references import all_references


@pytest.mark.parametrize(
    ("args", "size"),
    [((7, 3), 5), ((8, 3, 2), 3), ((5, 3, 1, 2), 7), ((9, 3, 1, 0, 2), 5), ((11, 3, 2, 1), 6)],
)
def test_conv_output_size_by_pytorch(args, size):
    assert hw1.conv_output_size_by_pytorch(*args) == size


def test_conv_output_size_by_pytorch_raises_when_no_window_fits():
    with pytest.raises(ValueError, match="no window fits"):
        hw1.conv_output_size_by_pytorch(2, 5)


def test_stand_ins_keep_pytorch_while_a_test_forbids_it(monkeypatch):
    x, weight = torch.randn(1, 2, 5, 4), torch.randn(3, 2, 2, 3)
    expected = F.conv2d(x, weight, stride=(2, 1))

    def forbidden(*args, **kwargs):
        raise AssertionError("forbidden")

    monkeypatch.setattr(torch.nn.functional, "conv2d", forbidden)
    assert torch.equal(hw1.conv2d_forward_by_pytorch(x, weight, stride=(2, 1)), expected)
    assert hw1.conv_output_size_by_pytorch(5, 2) == 4


def test_conv_layer_observes_output_and_parameters():
    x = torch.randn(1, 4, 5, 6, dtype=torch.float64)
    report = hw1.conv_layer(nn.Conv2d, (4, 2, (2, 3)), {"groups": 2, "bias": False}, x, seed=3)
    torch.manual_seed(3)
    twin = nn.Conv2d(4, 2, (2, 3), groups=2, bias=False).double()
    assert report["bias"] is None and torch.equal(report["weight"], twin.weight)
    assert torch.allclose(report["output"], twin(x))
    assert not report["output"].requires_grad


def test_stand_ins_are_course_references():
    references = all_references()
    assert references["hw_utils.probes.hw1.conv_output_size_by_pytorch"] == "conv_output_size"
    assert references["hw_utils.probes.hw1.conv2d_forward_by_pytorch"] == "conv2d_forward"
