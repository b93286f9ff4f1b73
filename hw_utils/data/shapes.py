"""The procedural offline dataset: coloured shapes (:data:`SHAPE_CLASSES`) on noisy, textured,
cluttered backgrounds, deterministic from its arguments (:func:`make_shapes`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import torch
from torch import Tensor

from hw_utils.data.datasets import ImageDataset

# Each shape is a signed distance (negative inside) in shape-local units: the shape is centred at
# the origin and fits in a disc of radius _SHAPE_EXTENT. Exact distances are not needed, only the
# sign and a slope of about one unit per unit near the edge, for antialiasing. Pixel-level maths
# uses only +, -, *, /, sqrt, abs, min and max (exactly rounded everywhere, one operation at a time:
# no fused or vectorised reductions in float32), and every random number comes from torch.rand, so
# the images are the same bits on any machine.

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
    alpha = alpha.unsqueeze(1)
    # images + alpha * (colour - images), one exactly rounded operation at a time (lerp_ may
    # fuse a multiply-add on some CPUs and not on others, which changes the last bit).
    return images.add_(alpha * (colour.view(-1, 3, 1, 1) - images))


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
    # No reductions in float32: their summation order depends on the CPU's vector width.
    squares = direction * direction
    length = (squares[:, 0:1] + squares[:, 1:2] + squares[:, 2:3]).sqrt().clamp_(min=1e-3)
    offset = direction / length * (contrast * math.sqrt(3)).view(n, 1)
    base = image.double().mean(dim=(2, 3)).float()
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
