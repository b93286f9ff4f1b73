"""Batched data augmentation for training batches."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hw_utils.references import course_reference


@course_reference("augment_batch")
def random_flip_crop(
    images: Tensor, *, padding: int = 4, generator: torch.Generator | None = None
) -> Tensor:
    """Per-sample random horizontal flip (p=0.5) and random crop of the zero-padded image.

    Args:
        images: ``(N, C, H, W)``.
        padding: zeros added on every side before cropping back to ``(H, W)``; the crop's offset
            is uniform in ``0..2*padding`` along each axis, so 0 means flips only.
        generator: the random source (the global one when ``None``); a :class:`BatchLoader`
            passes its own, so ``transform=random_flip_crop`` works directly.

    Returns:
        ``(N, C, H, W)``, same dtype and device; vectorised over the batch.
    """
    if images.ndim != 4:
        raise ValueError(
            f"random_flip_crop: images must be (N, C, H, W), got shape {tuple(images.shape)}."
        )
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"random_flip_crop: padding must be an int >= 0, got {padding!r}.")
    n, channels, height, width = images.shape
    flip = torch.rand((n,), generator=generator) < 0.5
    offset_y = torch.randint(0, 2 * padding + 1, (n, 1, 1), generator=generator)
    offset_x = torch.randint(0, 2 * padding + 1, (n, 1, 1), generator=generator)
    # Output pixel (i, j) of sample k is pixel (i + offset_y, j + offset_x) of the padded image,
    # mirrored when flipped (the mirror of a padded image is the padded mirror): one gather.
    padded_width = width + 2 * padding
    rows = offset_y + torch.arange(height).view(1, height, 1)
    cols = offset_x + torch.arange(width).view(1, 1, width)
    cols = torch.where(flip.view(n, 1, 1), padded_width - 1 - cols, cols)
    index = (rows * padded_width + cols).view(n, 1, height * width).to(images.device)
    padded = F.pad(images, (padding, padding, padding, padding)).flatten(2)
    picked = padded.gather(2, index.expand(n, channels, height * width))
    return picked.view(n, channels, height, width)
