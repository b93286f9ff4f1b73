"""Shared probes (hw_utils.probes.common): many calls in one, one thread, layers from data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hw_utils.boundary import NotDataError
from hw_utils.checks import CheckFailed
from hw_utils.probes import common


def _size(n: int) -> int:
    if n < 0:
        raise ValueError(f"n={n} is negative")
    if n == 0:
        raise NotImplementedError("_size: write this function")
    if n == 99:
        raise CheckFailed("a check inside")
    if n == 7:
        return np.zeros(2)  # not data
    return n // 2


def test_call_each_keeps_every_value_and_error_and_outcome_replays_them():
    entries = common.call_each(_size, [((n,), {}) for n in (5, -1, 0, 99, 7)])
    assert common.outcome(entries[0]) == 2
    with pytest.raises(ValueError, match="n=-1 is negative"):
        common.outcome(entries[1])
    with pytest.raises(NotImplementedError, match="write this function"):
        common.outcome(entries[2])
    with pytest.raises(CheckFailed, match="a check inside"):
        common.outcome(entries[3])
    with pytest.raises(NotDataError, match=r"numpy\.ndarray"):
        common.outcome(entries[4])


def test_one_thread_restores_the_thread_count_even_after_an_error():
    before = torch.get_num_threads()

    @common.one_thread()
    def inside():
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        inside()
    assert torch.get_num_threads() == before


def test_build_layers_nests_sequentials_and_refuses_other_names():
    torch.manual_seed(0)
    model = common.build_layers(
        [("Conv2d", (3, 4, 3), {"bias": False}), [("Flatten", (), {}), ("Linear", (4, 2), {})]]
    )
    assert isinstance(model, nn.Sequential) and isinstance(model[1], nn.Sequential)
    assert model[0].bias is None and model[1][1].out_features == 2
    torch.manual_seed(0)
    assert torch.equal(nn.Conv2d(3, 4, 3, bias=False).weight, model[0].weight), "seeded alike"
    with pytest.raises(ValueError, match=r"not a layer of torch\.nn"):
        common.build_layers(("init", (), {}))
