"""Real photographs, offline: the sample images that ship with scikit-learn."""

from __future__ import annotations

import torch
import torch.nn.functional as F

PHOTO_NAMES: tuple[str, ...] = ("china", "flower")
"""Photographs :func:`load_photo` knows: the sample images that ship with scikit-learn."""


def load_photo(name: str = "china", size: int | None = None) -> torch.Tensor:
    """A real colour photograph as a ``(3, H, W)`` float32 tensor in [0, 1].

    The images ship inside scikit-learn (``sklearn.datasets.load_sample_image``), so this works
    offline. Both are 427 x 640 (H x W) at full size.

    Args:
        name: ``"china"`` (a temple) or ``"flower"``.
        size: if given, the image is resized (with antialiasing) so that its shorter side is
            ``size`` pixels, keeping the aspect ratio; ``None`` keeps full size.
    """
    if name not in PHOTO_NAMES:
        raise ValueError(f"load_photo: unknown photo {name!r}; choose one of {list(PHOTO_NAMES)}.")
    if size is not None and (not isinstance(size, int) or size < 1):
        raise ValueError(f"load_photo: size must be a positive int or None, got {size!r}.")
    from sklearn.datasets import load_sample_image

    pixels = load_sample_image(f"{name}.jpg")  # (H, W, 3) uint8
    photo = torch.from_numpy(pixels.copy()).permute(2, 0, 1).float().div_(255.0)
    if size is None:
        return photo.contiguous()
    height, width = photo.shape[1:]
    scale = size / min(height, width)
    new_size = (max(1, round(height * scale)), max(1, round(width * scale)))
    resized = F.interpolate(
        photo.unsqueeze(0), size=new_size, mode="bilinear", antialias=True, align_corners=False
    )
    return resized.squeeze(0).clamp_(0.0, 1.0)
