"""Probes and stand-ins of hw1_convolution (see :mod:`hw_utils.probes`).

The stand-ins are PyTorch's answers for the functions hw1 asks for, so that a test can check one
function alone: ``conv2d_forward`` with PyTorch's ``conv_output_size``, ``MyConv2d`` with
PyTorch's ``conv2d_forward``::

    with student.standing_in(conv_output_size=probes.hw1.conv_output_size_by_pytorch):
        out = student.conv2d_forward(x, weight, stride=2)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from hw_utils.references import course_reference

# PyTorch's convolution as it was when this module was imported. A test that forbids F.conv2d
# while it watches the student's code imports its stand-ins (this module) before the ban starts,
# so the stand-ins keep their convolution.
_CONV2D = F.conv2d


@course_reference("conv_output_size")
def conv_output_size_by_pytorch(
    in_size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """PyTorch's output length of a convolution along one axis: the height of a convolution of
    a one-pixel-wide dummy. Raises ``ValueError`` when no window fits."""
    try:
        dummy = _CONV2D(
            torch.zeros(1, 1, in_size, 1),
            torch.zeros(1, 1, kernel_size, 1),
            stride=(stride, 1),
            padding=(padding, 0),
            dilation=(dilation, 1),
        )
    except RuntimeError as error:
        raise ValueError(f"conv_output_size: no window fits ({error})") from None
    return dummy.shape[2]


@course_reference("conv2d_forward")
def conv2d_forward_by_pytorch(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> torch.Tensor:
    """``F.conv2d`` with the signature of ``conv2d_forward``."""
    return _CONV2D(x, weight, bias, stride, padding, dilation, groups)


def conv_layer(
    factory: Callable[..., nn.Module],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    x: torch.Tensor,
    seed: int = 0,
) -> dict[str, Any]:
    """Build ``factory(*args, **kwargs)`` (global seed ``seed``), convert it to float64 and run it
    on ``x`` without gradients.

    Returns:
        ``{"output": layer(x), "weight": layer.weight, "bias": layer.bias}`` (``bias`` is
        ``None`` for a layer without one), so that the test can recompute the output with
        ``F.conv2d`` from the layer's own parameters.
    """
    torch.manual_seed(seed)
    layer = factory(*args, **kwargs).double()
    with torch.no_grad():
        output = layer(x)
    return {"output": output, "weight": layer.weight, "bias": layer.bias}
