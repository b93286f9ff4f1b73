"""Data for the course, offline first (one module per job, everything re-exported here).

Images are ``(3, H, W)`` (one) or ``(N, 3, H, W)`` (a batch) float32 tensors in [0, 1] (NCHW);
labels are int64 class indices ``0..K-1``.

- :func:`profile`: ``ci`` (CI, nbgrader autograde/validate) or ``full``; it only picks how much data
  and how many epochs experiments use, never what a test checks.
- :class:`ImageDataset`: an in-memory labelled image set (also a ``torch.utils.data.Dataset``).
- :func:`make_shapes`: the procedural offline dataset: coloured shapes (:data:`SHAPE_CLASSES`) on
  noisy, textured, cluttered backgrounds; deterministic from its arguments.
- :func:`load_dataset`: ``"shapes"`` offline, or torchvision's CIFAR-10/100 when on disk or
  downloadable, in the same layout; :class:`DatasetUnavailableError` says how to get them.
- :func:`train_val_split`, :class:`BatchLoader` (a fast in-memory ``DataLoader``) and
  :func:`random_flip_crop` (batched flip + padded crop augmentation).
- :func:`load_photo`: a real photograph from scikit-learn's bundled sample images.

Randomness always comes from an explicitly seeded ``torch.Generator`` on the CPU, never from the
global RNG, so the same arguments give bit-identical tensors.
"""

from hw_utils.data.augment import random_flip_crop
from hw_utils.data.datasets import (
    DATASET_NAMES,
    DatasetUnavailableError,
    ImageDataset,
    load_dataset,
    train_val_split,
)
from hw_utils.data.loader import BatchLoader
from hw_utils.data.photos import PHOTO_NAMES, load_photo
from hw_utils.data.profile import PROFILE_NAMES, Profile, profile
from hw_utils.data.shapes import SHAPE_CLASSES, make_shapes

__all__ = [
    "DATASET_NAMES",
    "PHOTO_NAMES",
    "PROFILE_NAMES",
    "SHAPE_CLASSES",
    "BatchLoader",
    "DatasetUnavailableError",
    "ImageDataset",
    "Profile",
    "load_dataset",
    "load_photo",
    "make_shapes",
    "profile",
    "random_flip_crop",
    "train_val_split",
]
