"""Tests of hw_utils.data: shapes, dtypes, ranges, determinism and error messages."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from hw_utils import data
from hw_utils.data import (
    SHAPE_CLASSES,
    BatchLoader,
    DatasetUnavailableError,
    ImageDataset,
    load_dataset,
    make_shapes,
    random_flip_crop,
    train_val_split,
)


def indexed_dataset(labels: list[int], classes=("a", "b", "c")) -> ImageDataset:
    """Images whose every pixel is ``i / n``, so a batch tells which samples it holds."""
    n = len(labels)
    images = (torch.arange(n, dtype=torch.float32) / n).view(n, 1, 1, 1).expand(n, 3, 2, 2)
    return ImageDataset(images.contiguous(), torch.tensor(labels), classes)


def sample_ids(images: torch.Tensor, n: int) -> list[int]:
    return (images[:, 0, 0, 0] * n).round().long().tolist()


def epoch_order(loader: BatchLoader, n: int) -> list[int]:
    """The sample ids of one pass over ``loader``, in the order they come."""
    return [i for images, _ in loader for i in sample_ids(images, n)]


# ------------------------------------------------------------------------------ profile


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("HW_PROFILE", "CI", "NBGRADER_EXECUTION"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_profile_defaults_to_full_without_variables(clean_env):
    assert data.profile() == data.Profile("full")
    assert not data.profile().is_ci
    assert data.profile().pick(ci=1, full=2) == 2


@pytest.mark.parametrize("variable", ["CI", "NBGRADER_EXECUTION"])
def test_profile_is_ci_under_ci_or_nbgrader(clean_env, variable):
    clean_env.setenv(variable, "1")
    assert data.profile().name == "ci"
    assert data.profile().is_ci
    assert data.profile().pick(ci=1, full=2) == 1


def test_profile_ignores_empty_ci_variable(clean_env):
    clean_env.setenv("CI", "")
    assert data.profile().name == "full"


def test_profile_explicit_variable_wins(clean_env):
    clean_env.setenv("CI", "true")
    clean_env.setenv("HW_PROFILE", "full")
    assert data.profile().name == "full"
    clean_env.delenv("CI")
    clean_env.setenv("HW_PROFILE", "ci")
    assert data.profile().name == "ci"


def test_profile_rejects_unknown_value(clean_env):
    clean_env.setenv("HW_PROFILE", "fast")
    with pytest.raises(ValueError, match="HW_PROFILE") as error:
        data.profile()
    assert "'ci'" in str(error.value) and "'full'" in str(error.value)


# ------------------------------------------------------------------------------ ImageDataset


def test_image_dataset_is_a_torch_dataset():
    dataset = indexed_dataset([0, 1, 2, 1])
    assert isinstance(dataset, torch.utils.data.Dataset)
    assert len(dataset) == 4 and dataset.num_classes == 3
    image, label = dataset[3]
    assert image.shape == (3, 2, 2) and label == 1
    images, labels = next(iter(DataLoader(dataset, batch_size=4)))
    assert torch.equal(images, dataset.images) and torch.equal(labels, dataset.labels)
    assert "4 images" in repr(dataset)


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (torch.zeros(2, 3, 4), torch.zeros(2, dtype=torch.long), r"\(N, 3, H, W\)"),
        (torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long), r"\(N, 3, H, W\)"),
        (torch.zeros(2, 3, 4, 4, dtype=torch.float64), torch.zeros(2, dtype=torch.long), "float32"),
        (torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.int32), "int64"),
        (torch.zeros(2, 3, 4, 4), torch.zeros(3, dtype=torch.long), "2 images but 3 labels"),
        (torch.full((2, 3, 4, 4), 255.0), torch.zeros(2, dtype=torch.long), r"\[0, 1\]"),
        (torch.zeros(2, 3, 4, 4), torch.tensor([0, 2]), r"0\.\.1"),
        (torch.zeros(2, 3, 4, 4), torch.tensor([-1, 0]), r"0\.\.1"),
    ],
)
def test_image_dataset_rejects_bad_tensors(images, labels, message):
    with pytest.raises(ValueError, match=message):
        ImageDataset(images, labels, ("a", "b"))


def test_image_dataset_subset_keeps_order_and_classes():
    dataset = indexed_dataset([0, 1, 2, 1, 0])
    part = dataset.subset([4, 1])
    assert sample_ids(part.images, 5) == [4, 1]
    assert part.labels.tolist() == [0, 1] and part.classes == dataset.classes


# ------------------------------------------------------------------------------ make_shapes


def test_shape_classes_are_many_and_distinct():
    assert len(SHAPE_CLASSES) >= 10
    assert len(set(SHAPE_CLASSES)) == len(SHAPE_CLASSES)


def test_make_shapes_layout_and_range():
    dataset = make_shapes(50, seed=3)
    assert dataset.images.shape == (50, 3, 32, 32)
    assert dataset.images.dtype == torch.float32 and dataset.labels.dtype == torch.int64
    assert dataset.images.min() >= 0.0 and dataset.images.max() <= 1.0
    assert dataset.images.std() > 0.1, "images should not be flat"
    assert dataset.classes == SHAPE_CLASSES


def test_make_shapes_labels_balanced_shuffled_in_range():
    dataset = make_shapes(50, classes=4)
    counts = torch.bincount(dataset.labels, minlength=4)
    assert counts.max() - counts.min() <= 1, counts.tolist()
    assert counts.sum() == 50 and dataset.labels.min() >= 0 and dataset.labels.max() <= 3
    assert not torch.equal(dataset.labels, torch.arange(50) % 4), "labels must be shuffled"
    assert not torch.equal(dataset.labels, dataset.labels.sort().values)


def test_make_shapes_is_deterministic_per_seed():
    first, again = make_shapes(20, seed=7), make_shapes(20, seed=7)
    assert torch.equal(first.images, again.images) and torch.equal(first.labels, again.labels)
    other = make_shapes(20, seed=8)
    assert not torch.equal(first.images, other.images)


def test_make_shapes_is_pinned_bit_for_bit():
    # Weights pretrained on shapes and stored notebook outputs depend on these exact bits. If a
    # change to make_shapes is intended, update the digest and retrain / re-execute those.
    dataset = make_shapes(24, difficulty=0.8, seed=11)
    digest = hashlib.sha256(dataset.images.numpy().tobytes())
    digest.update(dataset.labels.numpy().tobytes())
    assert digest.hexdigest() == (
        "619199e378ca46cb31fcde687a8c75c8f768c201935be8fecfc5517547fa79da"
    ), "make_shapes no longer produces the same images for the same arguments"


def test_make_shapes_leaves_global_state_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    make_shapes(5)
    assert torch.equal(torch.rand(3), expected), "make_shapes must not use the global RNG"
    assert torch.get_num_threads() == threads


def test_make_shapes_class_subset_by_names_maps_labels_to_shapes():
    # The random draws do not depend on the classes, so image i of a two-class set is image i
    # of the one-class set of its label's shape.
    names = ["star", "circle"]
    pair = make_shapes(24, classes=names, difficulty=0.2, seed=5)
    assert pair.classes == ("star", "circle")
    assert sorted(set(pair.labels.tolist())) == [0, 1]
    singles = [make_shapes(24, classes=[name], difficulty=0.2, seed=5) for name in names]
    assert not torch.equal(singles[0].images, singles[1].images)
    for i, label in enumerate(pair.labels.tolist()):
        assert torch.equal(pair.images[i], singles[label].images[i]), f"sample {i}"


def test_make_shapes_first_k_classes():
    dataset = make_shapes(12, classes=3)
    assert dataset.classes == SHAPE_CLASSES[:3]
    assert set(dataset.labels.tolist()) == {0, 1, 2}


def test_make_shapes_other_image_size():
    dataset = make_shapes(6, image_size=20)
    assert dataset.images.shape == (6, 3, 20, 20)


def roughness(images: torch.Tensor) -> float:
    """Mean absolute difference between horizontally neighbouring pixels."""
    return (images[..., 1:] - images[..., :-1]).abs().mean().item()


def test_difficulty_adds_noise_and_clutter():
    values = [roughness(make_shapes(40, difficulty=d, seed=1).images) for d in (0.0, 0.5, 1.0)]
    assert values[0] < values[1] < values[2], values
    assert values[2] > 2 * values[0], values


def test_difficulty_lowers_shape_contrast():
    # Same draws, different shape: the pixels that change are the shape's; their change is the
    # shape's colour difference to the background, which should shrink with difficulty.
    def contrast(difficulty):
        circles = make_shapes(40, classes=["circle"], difficulty=difficulty, seed=2).images
        squares = make_shapes(40, classes=["square"], difficulty=difficulty, seed=2).images
        change = (circles - squares).abs().amax(dim=1)
        return change[change > 0.02].mean().item()

    easy, medium, hard = (contrast(difficulty) for difficulty in (0.0, 0.5, 1.0))
    assert easy > medium > hard and easy > 1.15 * hard, (easy, medium, hard)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"difficulty": 1.5}, r"\[0, 1\]"),
        ({"difficulty": -0.1}, r"\[0, 1\]"),
        ({"classes": ["circle", "blob"]}, "blob.*circle"),
        ({"classes": ["circle", "circle"]}, "distinct"),
        ({"classes": "circle"}, "list of names"),
        ({"classes": 0}, "between 1 and"),
        ({"classes": len(SHAPE_CLASSES) + 1}, "between 1 and"),
        ({"image_size": 4}, "image_size"),
    ],
)
def test_make_shapes_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_shapes(4, **kwargs)


def test_make_shapes_rejects_non_positive_size():
    with pytest.raises(ValueError, match="num_samples"):
        make_shapes(0)


# ------------------------------------------------------------------------------ load_dataset


def test_load_dataset_shapes_train_and_test_differ():
    train = load_dataset("shapes", train=True, num_samples=30, classes=3)
    test = load_dataset("shapes", train=False, num_samples=30, classes=3)
    assert train.classes == test.classes == SHAPE_CLASSES[:3]
    flat_train, flat_test = train.images.flatten(1), test.images.flatten(1)
    assert torch.cdist(flat_train, flat_test).min() > 1.0, "train and test share an image"
    assert torch.equal(train.images, make_shapes(30, classes=3, seed=0).images)
    assert not torch.equal(load_dataset("shapes", num_samples=30, seed=1).images, train.images), (
        "the seed must reach make_shapes"
    )


def test_load_dataset_unknown_name_lists_names():
    with pytest.raises(ValueError, match=r"shapes.*cifar10.*cifar100"):
        load_dataset("mnist")


def test_load_dataset_rejects_shape_options_for_cifar(tmp_path):
    with pytest.raises(TypeError, match="difficulty"):
        load_dataset("cifar10", root=tmp_path, difficulty=0.3)


CIFAR10_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def write_fake_cifar10(root: Path, per_batch: int = 3) -> dict[str, tuple[np.ndarray, list]]:
    """torchvision's on-disk CIFAR-10 layout with ``per_batch`` random images per file."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for index, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        pixels = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [(index + j) % 10 for j in range(per_batch)]
        with open(folder / name, "wb") as file:
            pickle.dump({"data": pixels, "labels": labels}, file)
        batches[name] = (pixels, labels)
    with open(folder / "batches.meta", "wb") as file:
        pickle.dump({"label_names": list(CIFAR10_NAMES)}, file)
    return batches


@pytest.fixture
def fake_cifar10(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: Path(path).is_file())
    return tmp_path, write_fake_cifar10(tmp_path)


def expected_images(pixels: np.ndarray) -> torch.Tensor:
    # A CIFAR row is 1024 red, then 1024 green, then 1024 blue values, row-major.
    return torch.from_numpy(pixels.astype(np.float32) / 255).view(-1, 3, 32, 32)


def test_cifar10_from_disk_converted_to_tensor_layout(fake_cifar10):
    root, batches = fake_cifar10
    train = load_dataset("cifar10", train=True, root=root)
    assert train.images.shape == (15, 3, 32, 32) and train.images.dtype == torch.float32
    assert train.labels.dtype == torch.int64
    assert train.images.min() >= 0.0 and train.images.max() <= 1.0
    assert train.classes == CIFAR10_NAMES
    names = [f"data_batch_{i}" for i in range(1, 6)]
    pixels = np.concatenate([batches[name][0] for name in names])
    labels = [label for name in names for label in batches[name][1]]
    assert torch.allclose(train.images, expected_images(pixels))
    assert train.labels.tolist() == labels

    test = load_dataset("cifar10", train=False, root=str(root), num_samples=2)
    assert torch.allclose(test.images, expected_images(batches["test_batch"][0][:2]))
    assert test.labels.tolist() == batches["test_batch"][1][:2]


def test_cifar10_num_samples_beyond_size_is_an_error(fake_cifar10):
    root, _ = fake_cifar10
    with pytest.raises(ValueError, match="only 3"):
        load_dataset("cifar10", train=False, root=root, num_samples=4)


@pytest.mark.parametrize(("name", "folder"), [("cifar10", "cifar-10"), ("cifar100", "cifar-100")])
def test_cifar_missing_offline_explains_fixes(tmp_path, name, folder):
    with pytest.raises(DatasetUnavailableError) as error:
        load_dataset(name, root=tmp_path, download=False)
    message = str(error.value)
    assert isinstance(error.value, RuntimeError)
    assert name in message and str(tmp_path.resolve()) in message and folder in message
    assert "download=True" in message and "copy" in message and "'shapes'" in message


# ------------------------------------------------------------------------------ train_val_split


def test_split_exact_disjoint_stratified():
    labels = [0] * 50 + [1] * 30 + [2] * 23
    dataset = indexed_dataset(labels)
    train, val = train_val_split(dataset, 0.2, seed=1)
    assert len(val) == round(0.2 * 103) and len(train) == 103 - len(val)
    train_ids, val_ids = sample_ids(train.images, 103), sample_ids(val.images, 103)
    assert set(train_ids).isdisjoint(val_ids) and set(train_ids) | set(val_ids) == set(range(103))
    assert train_ids == sorted(train_ids) and val_ids == sorted(val_ids)
    assert [labels[i] for i in val_ids] == val.labels.tolist()
    assert torch.bincount(val.labels).tolist() == [10, 6, 5]
    assert train.classes == val.classes == dataset.classes


def test_split_deterministic_per_seed():
    dataset = indexed_dataset([0, 1] * 20)
    first = train_val_split(dataset, 0.25, seed=3)[1]
    again = train_val_split(dataset, 0.25, seed=3)[1]
    other = train_val_split(dataset, 0.25, seed=4)[1]
    assert torch.equal(first.images, again.images)
    assert not torch.equal(first.images, other.images)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 0.01])
def test_split_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(indexed_dataset([0, 1, 2, 0, 1]), fraction)


# ------------------------------------------------------------------------------ BatchLoader


def test_loader_in_order_with_short_last_batch():
    dataset = indexed_dataset([0, 1, 2] * 3 + [0])
    loader = BatchLoader(dataset, 4)
    assert len(loader) == 3 and loader.dataset is dataset and len(loader.dataset) == 10
    batches = list(loader)
    assert [len(labels) for _, labels in batches] == [4, 4, 2]
    assert [i for images, _ in batches for i in sample_ids(images, 10)] == list(range(10))
    assert torch.equal(torch.cat([labels for _, labels in batches]), dataset.labels)


def test_loader_drop_last():
    loader = BatchLoader(indexed_dataset([0] * 10), 4, drop_last=True)
    assert len(loader) == 2
    assert [len(labels) for _, labels in loader] == [4, 4]


def test_loader_shuffle_covers_each_sample_once_and_reshuffles_per_epoch():
    labels = [0, 1, 2] * 7
    dataset = indexed_dataset(labels)
    loader = BatchLoader(dataset, 5, shuffle=True, seed=2)
    epochs = []
    for _ in range(3):
        order, seen_labels = [], []
        for images, batch_labels in loader:
            order += sample_ids(images, 21)
            seen_labels += batch_labels.tolist()
        assert sorted(order) == list(range(21))
        assert seen_labels == [labels[i] for i in order], "labels must follow their images"
        epochs.append(order)
    assert epochs[0] != list(range(21)) and epochs[0] != epochs[1] != epochs[2]
    replay = BatchLoader(dataset, 5, shuffle=True, seed=2)
    assert [epoch_order(replay, 21) for _ in range(3)] == epochs, "runs must repeat the epochs"
    assert epoch_order(BatchLoader(dataset, 5, shuffle=True, seed=3), 21) != epochs[0]


def test_loader_transform_gets_the_loader_generator():
    dataset = indexed_dataset([0, 1, 2, 0])
    calls = []

    def transform(images, generator):
        calls.append(generator)
        return 1.0 - images

    loader = BatchLoader(dataset, 3, transform=transform)
    images = torch.cat([batch for batch, _ in loader])
    assert torch.allclose(images, 1.0 - dataset.images)
    assert len(calls) == 2 and all(isinstance(g, torch.Generator) for g in calls)


def test_loader_with_random_flip_crop_is_reproducible():
    dataset = make_shapes(16, seed=1)
    runs = [
        torch.cat([x for x, _ in BatchLoader(dataset, 8, transform=random_flip_crop, seed=s)])
        for s in (0, 0, 1)
    ]
    assert runs[0].shape == dataset.images.shape
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    assert not torch.equal(runs[0], dataset.images)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5])
def test_loader_rejects_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        BatchLoader(indexed_dataset([0, 1]), batch_size)


# ------------------------------------------------------------------------------ random_flip_crop


def distinct_images(n: int, height: int = 5, width: int = 6) -> torch.Tensor:
    return torch.rand((n, 2, height, width), generator=torch.Generator().manual_seed(0)) + 1.0


def test_flip_only_flips_about_half_exactly():
    images = distinct_images(64)
    out = random_flip_crop(images, padding=0, generator=torch.Generator().manual_seed(1))
    assert out.shape == images.shape
    same = (out == images).flatten(1).all(1)
    flipped = (out == images.flip(-1)).flatten(1).all(1)
    assert bool((same ^ flipped).all()), "each sample is either unchanged or mirrored"
    assert 16 <= int(flipped.sum()) <= 48


def test_crop_is_a_shifted_window_of_the_padded_image():
    padding = 2
    images = distinct_images(40)
    out = random_flip_crop(images, padding=padding, generator=torch.Generator().manual_seed(2))
    assert out.shape == images.shape and out.dtype == images.dtype
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    offsets, flips = set(), 0
    for i in range(len(images)):
        matches = [
            (dy, dx, flip)
            for flip in (False, True)
            for dy in range(2 * padding + 1)
            for dx in range(2 * padding + 1)
            if torch.equal(
                out[i],
                (padded[i].flip(-1) if flip else padded[i])[:, dy : dy + 5, dx : dx + 6],
            )
        ]
        assert len(matches) == 1, f"sample {i}: no single flip and offset explains the output"
        offsets.add(matches[0][:2])
        flips += matches[0][2]
    assert len(offsets) > 5 and 0 < flips < len(images)


def test_flip_crop_generator_makes_it_reproducible():
    images = distinct_images(8)
    first = random_flip_crop(images, generator=torch.Generator().manual_seed(3))
    again = random_flip_crop(images, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, again)


def test_flip_crop_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        random_flip_crop(torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match="padding"):
        random_flip_crop(torch.zeros(1, 3, 4, 4), padding=-1)


# ------------------------------------------------------------------------------ load_photo


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
