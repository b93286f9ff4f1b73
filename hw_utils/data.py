"""Data for the course, offline first.

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

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

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

T = TypeVar("T")

# --------------------------------------------------------------------------------------------
# Profile
# --------------------------------------------------------------------------------------------

PROFILE_NAMES: tuple[str, ...] = ("ci", "full")
"""Values of the ``HW_PROFILE`` environment variable."""


class Profile(NamedTuple):
    """How much work experiments do: ``"ci"`` (small and fast) or ``"full"``.

    Use :meth:`pick` to choose a size, e.g. ``epochs = profile().pick(ci=2, full=20)``.
    """

    name: str

    @property
    def is_ci(self) -> bool:
        """True in the ``ci`` profile."""
        return self.name == "ci"

    def pick(self, ci: T, full: T) -> T:
        """``ci`` in the ``ci`` profile, ``full`` otherwise."""
        return ci if self.is_ci else full


def profile() -> Profile:
    """The current profile, from the environment.

    ``HW_PROFILE`` (``"ci"`` or ``"full"``) wins when set; otherwise the profile is ``ci`` when
    ``CI`` or ``NBGRADER_EXECUTION`` is non-empty (CI, nbgrader autograde/validate), else ``full``.
    """
    explicit = os.environ.get("HW_PROFILE", "").strip().lower()
    if explicit:
        if explicit not in PROFILE_NAMES:
            raise ValueError(
                f"HW_PROFILE={os.environ['HW_PROFILE']!r} is not a profile; set the environment "
                f"variable HW_PROFILE to one of {list(PROFILE_NAMES)} or unset it."
            )
        return Profile(explicit)
    if os.environ.get("CI") or os.environ.get("NBGRADER_EXECUTION"):
        return Profile("ci")
    return Profile("full")


# --------------------------------------------------------------------------------------------
# In-memory dataset
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class ImageDataset(Dataset):
    """Labelled images held in memory.

    Attributes:
        images: ``(N, 3, H, W)`` float32 in [0, 1].
        labels: ``(N,)`` int64 class indices in ``0..len(classes)-1``.
        classes: the class names; ``classes[label]`` names a label.

    ``dataset[i]`` is ``(image, label)`` with ``image`` of shape ``(3, H, W)`` and ``label`` an int,
    so it also works with ``torch.utils.data.DataLoader``; :class:`BatchLoader` is faster.
    """

    images: Tensor
    labels: Tensor
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if not isinstance(images, Tensor) or not isinstance(labels, Tensor):
            raise TypeError(
                "ImageDataset: images and labels must be torch.Tensors, got "
                f"{type(images).__name__} and {type(labels).__name__}."
            )
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"ImageDataset: images must be (N, 3, H, W), got shape {tuple(images.shape)}; "
                "convert (N, H, W, 3) arrays with .permute(0, 3, 1, 2)."
            )
        if images.dtype != torch.float32:
            raise ValueError(
                f"ImageDataset: images must be float32, got {images.dtype}; "
                "for uint8 pixels use images.float() / 255."
            )
        if labels.ndim != 1 or labels.dtype != torch.int64:
            raise ValueError(
                f"ImageDataset: labels must be a 1-D int64 tensor, got shape {tuple(labels.shape)} "
                f"and dtype {labels.dtype}; use labels.long()."
            )
        if len(labels) != len(images):
            raise ValueError(
                f"ImageDataset: {len(images)} images but {len(labels)} labels; they must match."
            )
        object.__setattr__(self, "classes", tuple(self.classes))
        if not self.classes or not all(isinstance(name, str) for name in self.classes):
            raise ValueError(f"ImageDataset: classes must be non-empty names, got {self.classes}.")
        if len(images) == 0:
            return
        low, high = torch.aminmax(images)
        if low < 0 or high > 1:
            raise ValueError(
                "ImageDataset: images must lie in [0, 1], found values in "
                f"[{low.item():.3g}, {high.item():.3g}]; scale them (e.g. / 255) or clamp them."
            )
        low, high = torch.aminmax(labels)
        if low < 0 or high >= len(self.classes):
            raise ValueError(
                f"ImageDataset: labels must lie in 0..{len(self.classes) - 1} "
                f"(one per class name), found {low.item()}..{high.item()}."
            )

    @property
    def num_classes(self) -> int:
        """Number of classes (``len(classes)``)."""
        return len(self.classes)

    def subset(self, indices: Tensor | Sequence[int]) -> ImageDataset:
        """The samples at ``indices`` (in that order), with the same classes."""
        index = torch.as_tensor(indices, dtype=torch.int64)
        return ImageDataset(self.images[index], self.labels[index], self.classes)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.images[index], int(self.labels[index])

    def __repr__(self) -> str:
        size = "x".join(str(s) for s in self.images.shape[1:])
        return f"ImageDataset({len(self)} images of {size}, {self.num_classes} classes)"


# --------------------------------------------------------------------------------------------
# Procedural shapes
# --------------------------------------------------------------------------------------------
# Each shape is a signed distance (negative inside) in shape-local units: the shape is centred at
# the origin and fits in a disc of radius _SHAPE_EXTENT. Exact distances are not needed, only the
# sign and a slope of about one unit per unit near the edge, for antialiasing. Pixel-level maths
# uses only +, -, *, /, sqrt, abs, min and max (exactly rounded everywhere), and every random
# number comes from torch.rand, so the images are the same bits on any machine.

_SHAPE_EXTENT = 1.1


def _length(u: Tensor, v: Tensor) -> Tensor:
    return (u * u + v * v).sqrt()


def _box(u: Tensor, v: Tensor, half_u: float, half_v: float) -> Tensor:
    return torch.maximum(u.abs() - half_u, v.abs() - half_v)


def _polygon(vertices: Sequence[tuple[float, float]]) -> Callable[[Tensor, Tensor], Tensor]:
    """Signed distance of the convex polygon with these counter-clockwise vertices."""
    edges = []
    for (u0, v0), (u1, v1) in zip(vertices, [*vertices[1:], vertices[0]], strict=True):
        length = math.hypot(u1 - u0, v1 - v0)
        normal_u, normal_v = (v1 - v0) / length, (u0 - u1) / length  # outward
        edges.append((normal_u, normal_v, normal_u * u0 + normal_v * v0))

    def distance(u: Tensor, v: Tensor) -> Tensor:
        result = None
        for normal_u, normal_v, offset in edges:
            edge = normal_u * u + normal_v * v - offset
            result = edge if result is None else torch.maximum(result, edge)
        return result

    return distance


def _on_circle(radius: float, degrees: float) -> tuple[float, float]:
    return radius * math.cos(math.radians(degrees)), radius * math.sin(math.radians(degrees))


def _star() -> Callable[[Tensor, Tensor], Tensor]:
    """Five-pointed star: an inner pentagon and five spikes."""
    outer, inner = 1.05, 0.42
    pentagon = _polygon([_on_circle(inner, 126 + 72 * k) for k in range(5)])
    spikes = [
        _polygon([_on_circle(inner, tip - 36), _on_circle(outer, tip), _on_circle(inner, tip + 36)])
        for tip in range(90, 450, 72)
    ]

    def distance(u: Tensor, v: Tensor) -> Tensor:
        result = pentagon(u, v)
        for spike in spikes:
            result = torch.minimum(result, spike(u, v))
        return result

    return distance


_triangle = _polygon([_on_circle(_SHAPE_EXTENT, 90 + 120 * k) for k in range(3)])
_heart_point = _polygon([(0.0, -0.95), (0.98, 0.3), (-0.98, 0.3)])
_arrow_head = _polygon([(0.1, -0.58), (1.0, 0.0), (0.1, 0.58)])

_SHAPES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "circle": lambda u, v: _length(u, v) - 0.9,
    "square": lambda u, v: _box(u, v, 0.72, 0.72),
    "triangle": _triangle,
    "ring": lambda u, v: (_length(u, v) - 0.72).abs() - 0.26,
    "cross": lambda u, v: torch.minimum(_box(u, v, 0.95, 0.3), _box(u, v, 0.3, 0.95)),
    "star": _star(),
    "crescent": lambda u, v: torch.maximum(_length(u, v) - 0.95, 0.75 - _length(u - 0.45, v)),
    "ellipse": lambda u, v: (_length(u, v / 0.45) - 1.0) * 0.45,
    "frame": lambda u, v: (torch.maximum(u.abs(), v.abs()) - 0.6).abs() - 0.16,
    "heart": lambda u, v: torch.minimum(_length(u.abs() - 0.42, v - 0.3) - 0.5, _heart_point(u, v)),
    "arrow": lambda u, v: torch.minimum(
        torch.maximum(v.abs() - 0.17, torch.maximum(-0.95 - u, u - 0.15)), _arrow_head(u, v)
    ),
    "hourglass": lambda u, v: torch.maximum(
        v.abs() - 0.9, (u.abs() - 0.8 * v.abs() - 0.05) / math.hypot(1.0, 0.8)
    ),
}

SHAPE_CLASSES: tuple[str, ...] = tuple(_SHAPES)
"""Class names of :func:`make_shapes`, in label order when all are used."""

_CHUNK = 1024  # samples rendered at once; part of the definition of the random stream
_MAX_CLUTTER = 4  # line segments per image at most


class _Appearance(NamedTuple):
    """What ``difficulty`` controls in :func:`make_shapes`."""

    texture: float  # standard deviation of the smooth background colour texture
    noise: float  # standard deviation of the pixel noise
    clutter: float  # probability of each of the _MAX_CLUTTER segments being drawn
    contrast: tuple[float, float]  # range of the RMS colour difference, shape vs background


def _appearance(difficulty: float) -> _Appearance:
    return _Appearance(
        texture=0.03 + 0.1 * difficulty,
        noise=0.005 + 0.06 * difficulty,
        clutter=0.5 * difficulty,
        contrast=(0.32 - 0.16 * difficulty, 0.52 - 0.16 * difficulty),
    )


def _shape_names(classes: Sequence[str] | int | None) -> tuple[str, ...]:
    if classes is None:
        return SHAPE_CLASSES
    if isinstance(classes, (bool, str)):
        raise ValueError(
            f"make_shapes: classes must be a list of names or an int, got {classes!r}; "
            f"e.g. classes=['circle', 'square'] or classes=4."
        )
    if isinstance(classes, int):
        if not 1 <= classes <= len(SHAPE_CLASSES):
            raise ValueError(
                f"make_shapes: classes={classes} must be between 1 and {len(SHAPE_CLASSES)} "
                "(the number of shape classes)."
            )
        return SHAPE_CLASSES[:classes]
    names = tuple(classes)
    unknown = [name for name in names if name not in _SHAPES]
    if unknown:
        raise ValueError(
            f"make_shapes: unknown shape classes {unknown}; choose from {list(SHAPE_CLASSES)}."
        )
    if not names or len(set(names)) != len(names):
        raise ValueError(f"make_shapes: classes must be distinct and non-empty, got {list(names)}.")
    return names


def _uniform(generator: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> Tensor:
    return torch.rand(shape, generator=generator).mul_(high - low).add_(low)


def _unit_noise(generator: torch.Generator, shape: tuple[int, ...]) -> Tensor:
    """Uniform noise with mean 0 and standard deviation 1."""
    return _uniform(generator, shape, -math.sqrt(3), math.sqrt(3))


def _cos_sin(angle: Tensor) -> tuple[Tensor, Tensor]:
    """``cos`` and ``sin`` of ``angle``, computed in float64 so that rounding to float32 hides
    any last-bit differences between math libraries."""
    angle = angle.double()
    return torch.cos(angle).float(), torch.sin(angle).float()


def _upsample(coarse: Tensor, size: int) -> Tensor:
    """Bilinear upsampling of ``(n, c, g, g)`` to ``(n, c, size, size)`` (pixel centres aligned,
    edges clamped), written with element-wise operations only."""
    cells = coarse.shape[-1]
    centres = torch.arange(size, dtype=torch.float64) + 0.5
    position = (centres * (cells / size) - 0.5).clamp(0, cells - 1)
    low = position.floor().long()
    high = (low + 1).clamp(max=cells - 1)
    weight = (position - low).float()
    rows = coarse[:, :, low, :] * (1 - weight).view(-1, 1) + coarse[:, :, high, :] * weight.view(
        -1, 1
    )
    return rows[..., low] * (1 - weight) + rows[..., high] * weight


def _paint(images: Tensor, alpha: Tensor, colour: Tensor) -> Tensor:
    """Blend ``colour`` ``(m, 3)`` over ``images`` ``(m, 3, S, S)`` with opacity ``alpha``
    ``(m, S, S)``; in place, returns ``images``."""
    return images.lerp_(colour.view(-1, 3, 1, 1), alpha.unsqueeze(1))


def _pixel_grid(size: int) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates ``x`` ``(1, 1, size)`` and ``y`` ``(1, size, 1)``."""
    centres = torch.arange(size, dtype=torch.float32) + 0.5
    return centres.view(1, 1, size), centres.view(1, size, 1)


def _background(n: int, size: int, look: _Appearance, generator: torch.Generator) -> Tensor:
    """``(n, 3, size, size)``: a random base colour plus smooth colour texture in two octaves."""
    base = _uniform(generator, (n, 3, 1, 1), 0.2, 0.8)
    image = base.expand(n, 3, size, size).clone()
    for cells, weight in ((4, 1.0), (8, 0.5)):
        coarse = _unit_noise(generator, (n, 3, cells, cells))
        image += (look.texture * weight) * _upsample(coarse, size)
    return image


def _add_clutter(image: Tensor, look: _Appearance, generator: torch.Generator) -> None:
    """Paint up to _MAX_CLUTTER line segments and dots (capsules) of random colour, in place."""
    n, size = len(image), image.shape[-1]
    x, y = _pixel_grid(size)
    start = _uniform(generator, (n, _MAX_CLUTTER, 2), 0.0, size)
    cos, sin = _cos_sin(_uniform(generator, (n, _MAX_CLUTTER), 0.0, 2 * math.pi))
    length = _uniform(generator, (n, _MAX_CLUTTER), 0.0, 0.5 * size)
    thickness = _uniform(generator, (n, _MAX_CLUTTER), 0.3 * size / 32, 0.9 * size / 32)
    colour = torch.rand((n, _MAX_CLUTTER, 3), generator=generator)
    active = torch.rand((n, _MAX_CLUTTER), generator=generator) < look.clutter
    for k in range(_MAX_CLUTTER):
        members = active[:, k].nonzero().squeeze(1)
        if len(members) == 0:
            continue
        dx = (length[members, k] * cos[members, k]).view(-1, 1, 1)
        dy = (length[members, k] * sin[members, k]).view(-1, 1, 1)
        to_x = x - start[members, k, 0].view(-1, 1, 1)
        to_y = y - start[members, k, 1].view(-1, 1, 1)
        along = ((to_x * dx + to_y * dy) / (dx * dx + dy * dy + 1e-6)).clamp_(0.0, 1.0)
        distance = _length(to_x - along * dx, to_y - along * dy)
        alpha = (thickness[members, k].view(-1, 1, 1) + 0.5 - distance).clamp_(0.0, 1.0)
        image[members] = _paint(image[members], alpha, colour[members, k])


def _add_shapes(
    image: Tensor,
    labels: Tensor,
    shapes: Sequence[Callable[[Tensor, Tensor], Tensor]],
    look: _Appearance,
    generator: torch.Generator,
) -> None:
    """Paint shape ``shapes[labels[i]]`` on ``image[i]``, in place: random size, position and
    rotation; its colour differs from the mean background colour by a random direction whose
    length (the contrast) shrinks with difficulty."""
    n, size = len(image), image.shape[-1]
    x, y = _pixel_grid(size)
    radius = _uniform(generator, (n,), 0.24 * size, 0.4 * size)
    margin = 0.95 * radius
    centre_x = margin + torch.rand((n,), generator=generator) * (size - 2 * margin)
    centre_y = margin + torch.rand((n,), generator=generator) * (size - 2 * margin)
    cos, sin = _cos_sin(_uniform(generator, (n,), 0.0, 2 * math.pi))
    contrast = _uniform(generator, (n,), *look.contrast)
    direction = _uniform(generator, (n, 3), -1.0, 1.0)
    length = direction.norm(dim=1, keepdim=True).clamp_(min=1e-3)
    offset = direction / length * (contrast * math.sqrt(3)).view(n, 1)
    base = image.mean(dim=(2, 3))
    colour = base + offset
    outside = (colour < 0) | (colour > 1)
    colour = torch.where(outside, base - offset, colour).clamp_(0.0, 1.0)

    alpha = torch.empty((n, size, size))
    for label, shape in enumerate(shapes):
        members = (labels == label).nonzero().squeeze(1)
        if len(members) == 0:
            continue
        unit = radius[members].view(-1, 1, 1) / _SHAPE_EXTENT  # pixels per shape unit
        rel_x = x - centre_x[members].view(-1, 1, 1)
        rel_y = y - centre_y[members].view(-1, 1, 1)
        c, s = cos[members].view(-1, 1, 1), sin[members].view(-1, 1, 1)
        u = (c * rel_x + s * rel_y) / unit
        v = (c * rel_y - s * rel_x) / unit
        alpha[members] = (0.5 - shape(u, v) * unit).clamp_(0.0, 1.0)
    _paint(image, alpha, colour)


def _render(
    labels: Tensor,
    shapes: Sequence[Callable[[Tensor, Tensor], Tensor]],
    size: int,
    look: _Appearance,
    generator: torch.Generator,
) -> Tensor:
    """Images ``(n, 3, size, size)`` in [0, 1] of the given ``labels``; draws from ``generator``
    in an order that does not depend on the labels."""
    image = _background(len(labels), size, look, generator)
    _add_clutter(image, look, generator)
    _add_shapes(image, labels, shapes, look, generator)
    image += look.noise * _unit_noise(generator, tuple(image.shape))
    return image.clamp_(0.0, 1.0)


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread: rendering is many small element-wise operations, which gain
    little from more threads and slow down many times over when the cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def make_shapes(
    num_samples: int,
    *,
    classes: Sequence[str] | int | None = None,
    image_size: int = 32,
    difficulty: float = 0.5,
    seed: int = 0,
) -> ImageDataset:
    """The procedural offline dataset: one coloured shape per image on a cluttered background.

    Each image shows one shape of a random size, position, rotation and colour over a base colour
    with smooth colour texture, random line segments and dots (clutter), and pixel noise.
    ``difficulty`` raises texture, noise and clutter and lowers the shape's contrast.

    Args:
        num_samples: number of images N.
        classes: ``None`` for all of :data:`SHAPE_CLASSES`; a list of names; or an int k for the
            first k. Labels are ``0..K-1`` in the order given and ``dataset.classes`` the names.
        image_size: side S of the square images (at least 8).
        difficulty: in [0, 1]; 0 is clean and high-contrast, 1 is noisy, cluttered and faint.
        seed: the seed of the ``torch.Generator`` that draws everything.

    Returns:
        An :class:`ImageDataset` with images ``(N, 3, S, S)`` float32 in [0, 1] and balanced labels
        (class counts differ by at most one) in shuffled order. The same arguments give
        bit-identical tensors on any machine. The classes do not change the random draws: for
        the same ``num_samples``, ``difficulty`` and ``seed``, image i differs between two class
        choices only in the shape drawn.
    """
    names = _shape_names(classes)
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"make_shapes: num_samples must be a positive int, got {num_samples!r}.")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"make_shapes: image_size must be an int >= 8, got {image_size!r}.")
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(
            f"make_shapes: difficulty must be in [0, 1] (0 easy, 1 hard), got {difficulty!r}."
        )
    generator = torch.Generator().manual_seed(seed)
    balanced = torch.arange(num_samples) % len(names)
    labels = balanced[torch.randperm(num_samples, generator=generator)]
    shapes = [_SHAPES[name] for name in names]
    look = _appearance(float(difficulty))
    images = torch.empty((num_samples, 3, image_size, image_size))
    with _one_thread():
        for begin in range(0, num_samples, _CHUNK):
            end = min(begin + _CHUNK, num_samples)
            images[begin:end] = _render(labels[begin:end], shapes, image_size, look, generator)
    return ImageDataset(images, labels, names)


# --------------------------------------------------------------------------------------------
# Named datasets: shapes offline, CIFAR from torchvision
# --------------------------------------------------------------------------------------------

DATASET_NAMES: tuple[str, ...] = ("shapes", "cifar10", "cifar100")
"""Names :func:`load_dataset` knows."""

_SHAPES_DEFAULT_SIZE = {True: 10_000, False: 2_000}  # train, test


class DatasetUnavailableError(RuntimeError):
    """A real dataset is neither on disk nor downloadable; the message lists the fixes."""


def _load_cifar(
    name: str, train: bool, root: Path, download: bool, num_samples: int | None
) -> ImageDataset:
    from torchvision import datasets

    dataset_class = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    folder = root / dataset_class.base_folder
    try:
        raw = dataset_class(root=str(root), train=train, download=download)
    except (RuntimeError, OSError) as error:  # missing/corrupt files, or no network
        reason = "download=False" if not download else f"downloading failed ({error})"
        raise DatasetUnavailableError(
            f"{name}: not found (or incomplete) in {folder.resolve()} and {reason}. Fixes: run "
            f"load_dataset({name!r}, download=True) once on a machine with internet; or copy the "
            f"folder {dataset_class.base_folder!r} from a machine that has it into "
            f"{root.resolve()}; or work offline with load_dataset('shapes')."
        ) from error
    split = "train" if train else "test"
    if num_samples is not None and num_samples > len(raw.data):
        raise ValueError(
            f"load_dataset: num_samples={num_samples} but the {name} {split} split has only "
            f"{len(raw.data)} images."
        )
    pixels = torch.from_numpy(raw.data[:num_samples])  # (N, H, W, 3) uint8
    images = pixels.permute(0, 3, 1, 2).float().div_(255.0).contiguous()
    labels = torch.as_tensor(raw.targets[:num_samples], dtype=torch.int64)
    return ImageDataset(images, labels, tuple(raw.classes))


def load_dataset(
    name: str = "shapes",
    *,
    train: bool = True,
    root: str | os.PathLike = "data",
    download: bool = False,
    num_samples: int | None = None,
    **shape_kwargs,
) -> ImageDataset:
    """A named dataset as an :class:`ImageDataset`: images ``(N, 3, 32, 32)`` in [0, 1]
    (``"shapes"`` takes another ``image_size``).

    Args:
        name: ``"shapes"`` (procedural, offline), ``"cifar10"`` or ``"cifar100"`` (torchvision).
        train: the training split, else the test split.
        root: folder with the CIFAR files (torchvision's layout, e.g. ``data/cifar-10-batches-py``).
        download: let torchvision download CIFAR into ``root`` when missing (needs internet).
        num_samples: for ``"shapes"`` the number of images (default 10,000 train, 2,000 test);
            for CIFAR the first ``num_samples`` images (default all).
        **shape_kwargs: passed to :func:`make_shapes` (``classes``, ``image_size``,
            ``difficulty``, ``seed``); ``"shapes"`` only.

    For ``"shapes"`` the train and test splits use disjoint seeds (``2 * seed`` and
    ``2 * seed + 1``), so they never share images; everything else is the same.

    Raises:
        DatasetUnavailableError: CIFAR is not in ``root`` and cannot be downloaded.
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"load_dataset: unknown dataset {name!r}; choose one of {DATASET_NAMES}.")
    if num_samples is not None and (isinstance(num_samples, bool) or num_samples < 1):
        raise ValueError(f"load_dataset: num_samples must be positive or None, got {num_samples}.")
    if name == "shapes":
        seed = shape_kwargs.pop("seed", 0)
        if num_samples is None:
            num_samples = _SHAPES_DEFAULT_SIZE[bool(train)]
        split_seed = 2 * seed if train else 2 * seed + 1
        return make_shapes(num_samples, seed=split_seed, **shape_kwargs)
    if shape_kwargs:
        raise TypeError(
            f"load_dataset: {sorted(shape_kwargs)} only apply to 'shapes', not to {name!r}."
        )
    return _load_cifar(name, train, Path(root), download, num_samples)


# --------------------------------------------------------------------------------------------
# Splitting, batching, augmentation
# --------------------------------------------------------------------------------------------


def train_val_split(
    dataset: ImageDataset, val_fraction: float = 0.2, *, seed: int = 0
) -> tuple[ImageDataset, ImageDataset]:
    """Split into ``(train, val)``, stratified by class.

    ``val`` has exactly ``round(val_fraction * N)`` samples, each class contributing in proportion
    to its size (largest remainders get the rounding). The split is disjoint, deterministic given
    ``seed``, and both parts keep the original sample order.
    """
    total = len(dataset)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"train_val_split: val_fraction must be in (0, 1), got {val_fraction}.")
    num_val = round(val_fraction * total)
    if not 0 < num_val < total:
        raise ValueError(
            f"train_val_split: val_fraction={val_fraction} of {total} samples leaves "
            f"{num_val} for validation and {total - num_val} for training; both need at least one."
        )
    counts = torch.bincount(dataset.labels, minlength=dataset.num_classes)
    quota = counts.double() * (num_val / total)
    per_class = quota.floor().long()
    remainder = quota - per_class
    shortfall = num_val - int(per_class.sum())
    per_class[torch.argsort(remainder, descending=True, stable=True)[:shortfall]] += 1

    generator = torch.Generator().manual_seed(seed)
    is_val = torch.zeros(total, dtype=torch.bool)
    for label in range(dataset.num_classes):
        members = (dataset.labels == label).nonzero().squeeze(1)
        chosen = torch.randperm(len(members), generator=generator)[: per_class[label]]
        is_val[members[chosen]] = True
    return dataset.subset(torch.where(~is_val)[0]), dataset.subset(torch.where(is_val)[0])


def _take(tensor: Tensor, index: Tensor) -> Tensor:
    """``tensor[index]`` along dim 0, as a new tensor. On the CPU through NumPy: its one-thread
    copy is faster than torch's multi-threaded one, which stalls badly when the cores are busy."""
    if tensor.device.type == "cpu":
        return torch.from_numpy(tensor.numpy().take(index.numpy(), axis=0))
    return tensor[index.to(tensor.device)]


class BatchLoader:
    """Batches of an in-memory :class:`ImageDataset`; a fast stand-in for ``DataLoader``.

    Iterating yields ``(images, labels)`` with images ``(B, 3, H, W)`` and labels ``(B,)``; the
    last batch is shorter unless ``drop_last``. ``len(loader)`` is the number of batches and
    ``loader.dataset`` the dataset.

    Each pass (epoch) uses a generator seeded from ``(seed, epoch)``: with ``shuffle`` it draws a
    new permutation every epoch, the same sequence on every run. ``transform``, if given, maps
    each image batch, called as ``transform(images, generator=generator)`` with that generator, so
    :func:`random_flip_crop` (or any ``f(images, generator=None)``) plugs in directly.
    """

    def __init__(
        self,
        dataset: ImageDataset,
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        transform: Callable[[Tensor, torch.Generator], Tensor] | None = None,
        seed: int = 0,
    ) -> None:
        if not isinstance(dataset, ImageDataset):
            raise TypeError(
                f"BatchLoader: dataset must be an ImageDataset, got {type(dataset).__name__}; "
                "use torch.utils.data.DataLoader for other datasets."
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"BatchLoader: batch_size must be a positive int, got {batch_size!r}.")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.transform = transform
        self.seed = seed
        self.epoch = 0
        """Number of passes started so far; the next pass uses this epoch's generator."""

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.dataset) // self.batch_size
        return math.ceil(len(self.dataset) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        self.epoch += 1
        total = len(self.dataset)
        order = torch.randperm(total, generator=generator) if self.shuffle else torch.arange(total)
        for batch in range(len(self)):
            index = order[batch * self.batch_size : (batch + 1) * self.batch_size]
            images = _take(self.dataset.images, index)
            if self.transform is not None:
                images = self.transform(images, generator=generator)
            yield images, _take(self.dataset.labels, index)


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


# --------------------------------------------------------------------------------------------
# Real photographs
# --------------------------------------------------------------------------------------------

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
