"""Tests of hw_utils.data: shapes, dtypes, ranges, determinism and error messages."""

from __future__ import annotations

import pytest
import torch

from hw_utils import data


@pytest.mark.parametrize("name", data.PHOTO_NAMES)
def test_load_photo_full_size(name):
    photo = data.load_photo(name)
    assert photo.shape == (3, 427, 640)
    assert photo.dtype == torch.float32
    assert 0.0 <= photo.min() < 0.1 and 0.9 < photo.max() <= 1.0
    assert not torch.equal(photo[0], photo[1]), "a colour photo has distinct channels"


def test_load_photo_resizes_shorter_side_keeping_aspect():
    photo = data.load_photo("flower", size=64)
    assert photo.shape == (3, 64, 96)
    assert photo.dtype == torch.float32
    assert photo.min() >= 0.0 and photo.max() <= 1.0
    full = data.load_photo("flower")
    assert abs(photo.mean().item() - full.mean().item()) < 0.01


def test_load_photo_unknown_name_lists_choices():
    with pytest.raises(ValueError, match=r"china.*flower"):
        data.load_photo("cat")
