"""Plots: the structure of the returned figures (axes, lines, labels, titles, images)."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from hw_utils.experiments import ExperimentRecord, save_record
from hw_utils.plot import (
    confusion_matrix,
    filter_grid,
    image_grid,
    plot_confusion_matrix,
    plot_exp_results,
    plot_fit,
)
from hw_utils.training import FitResult

RESULT = FitResult(
    4,
    [2.0, 1.5, 1.2, 1.0],
    [30.0, 50.0, 60.0, 70.0],
    [2.1, 1.7, 1.6, 1.65],
    [25.0, 40.0, 45.0, 44.0],
)


def images_of(axes):
    return [image for ax in axes for image in ax.get_images()]


def test_plot_fit_draws_loss_and_accuracy_per_epoch():
    figure = plot_fit(RESULT, title="K=32, L=2")
    assert isinstance(figure, Figure)
    assert plt.get_fignums() == [], "the figure must not be left open in pyplot"
    loss_ax, acc_ax = figure.axes
    assert figure.get_suptitle() == "K=32, L=2"
    for ax, title, ylabel, train, val in [
        (loss_ax, "Loss", "loss", RESULT.train_loss, RESULT.val_loss),
        (acc_ax, "Accuracy", "accuracy (%)", RESULT.train_acc, RESULT.val_acc),
    ]:
        assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == (title, "epoch", ylabel)
        train_line, val_line = ax.get_lines()
        assert [train_line.get_label(), val_line.get_label()] == ["train", "validation"]
        np.testing.assert_array_equal(train_line.get_xdata(), [1, 2, 3, 4])
        np.testing.assert_array_equal(train_line.get_ydata(), train)
        np.testing.assert_array_equal(val_line.get_ydata(), val)


def test_plot_fit_draws_into_given_axes():
    figure = Figure()
    axes = figure.subplots(2, 1)
    assert plot_fit(RESULT, axes=axes) is figure
    assert [len(ax.get_lines()) for ax in axes] == [2, 2]
    assert figure.get_suptitle() == ""
    with pytest.raises(ValueError, match="2 axes"):
        plot_fit(RESULT, axes=[axes[0]])


def grid_records():
    return [
        ExperimentRecord(f"exp1_K{k}_L{depth}", {"K": k, "L": depth, "lr": 0.01}, RESULT)
        for k in (32, 64)
        for depth in (2, 4)
    ]


def test_plot_exp_results_draws_one_labelled_line_per_run():
    figure = plot_exp_results(grid_records(), metric="val_loss", label_by=["K", "L"])
    (ax,) = figure.axes
    assert [line.get_label() for line in ax.get_lines()] == [
        "K=32, L=2",
        "K=32, L=4",
        "K=64, L=2",
        "K=64, L=4",
    ]
    assert ax.get_legend().get_texts()[0].get_text() == "K=32, L=2"
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), RESULT.val_loss)
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == (
        "Validation loss by K, L",
        "epoch",
        "loss",
    )

    figure = plot_exp_results(grid_records()[:2])
    (ax,) = figure.axes
    assert [line.get_label() for line in ax.get_lines()] == ["exp1_K32_L2", "exp1_K32_L4"]
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), RESULT.val_acc)
    assert ax.get_ylabel() == "accuracy (%)"


def test_plot_exp_results_reads_a_folder_and_pattern(tmp_path):
    for record in grid_records():
        save_record(record, tmp_path)
    figure = plot_exp_results(str(tmp_path / "exp1_K64_*"), label_by="L")
    assert [line.get_label() for line in figure.axes[0].get_lines()] == ["L=2", "L=4"]
    assert len(plot_exp_results(tmp_path).axes[0].get_lines()) == 4
    with pytest.raises(ValueError, match="no experiment records match"):
        plot_exp_results(tmp_path / "exp9_*")


def test_plot_exp_results_rejects_unknown_metrics_and_keys():
    with pytest.raises(ValueError, match="unknown metric 'accuracy'"):
        plot_exp_results(grid_records(), metric="accuracy")
    with pytest.raises(ValueError, match="no config key 'depth'"):
        plot_exp_results(grid_records(), label_by="depth")


def test_confusion_matrix_rows_are_true_classes():
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    predictions = torch.tensor([0, 1, 1, 2, 0, 2])
    expected = torch.tensor([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    torch.testing.assert_close(confusion_matrix(labels, predictions, 3), expected)
    assert confusion_matrix(labels, predictions, 4).shape == (4, 4)
    with pytest.raises(ValueError, match="expected 0 to 1"):
        confusion_matrix(labels, predictions, 2)
    with pytest.raises(ValueError, match="6 labels but 5 predictions"):
        confusion_matrix(labels, predictions[:5], 3)


@pytest.mark.parametrize("normalize", [False, True])
def test_plot_confusion_matrix_shows_the_matrix_with_class_names(normalize):
    labels = torch.tensor([0, 0, 0, 0, 1, 2, 2])
    predictions = torch.tensor([0, 0, 0, 1, 1, 0, 2])
    figure = plot_confusion_matrix(labels, predictions, ["cat", "dog", "bird"], normalize=normalize)
    ax, _colorbar = figure.axes
    (image,) = ax.get_images()
    shown = np.asarray(image.get_array())
    counts = np.array([[3, 1, 0], [0, 1, 0], [1, 0, 1]])
    expected = 100 * counts / counts.sum(axis=1, keepdims=True) if normalize else counts
    np.testing.assert_allclose(shown, expected)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "bird"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog", "bird"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted class", "true class")
    assert ax.get_title().startswith("Confusion matrix")
    assert len(ax.texts) == 9


def test_image_grid_lays_out_colour_images_with_class_captions():
    images = torch.rand(10, 3, 5, 7)
    figure = image_grid(
        images, labels=torch.arange(10) % 3, class_names=["cat", "dog", "bird"], ncols=4
    )
    assert len(figure.axes) == 12  # 3 rows of 4, the last two empty
    shown = images_of(figure.axes)
    assert len(shown) == 10
    assert all(image.get_array().shape == (5, 7, 3) for image in shown)
    np.testing.assert_allclose(shown[1].get_array(), images[1].permute(1, 2, 0).numpy())
    assert [ax.get_title() for ax in figure.axes[:4]] == ["cat", "dog", "bird", "cat"]


def test_image_grid_marks_wrong_predictions():
    images = torch.rand(3, 1, 4, 4)
    figure = image_grid(images, labels=[0, 1, 1], class_names=["cat", "dog"], predictions=[0, 0, 1])
    assert len(figure.axes) == 3
    assert images_of(figure.axes)[0].get_array().shape == (4, 4)
    titles = [ax.title for ax in figure.axes]
    assert [t.get_text() for t in titles] == ["cat", "cat\n(true: dog)", "dog"]
    assert to_rgba(titles[1].get_color()) == to_rgba("tab:red")
    assert to_rgba(titles[0].get_color()) != to_rgba("tab:red")


@pytest.mark.parametrize(
    ("images", "problem"),
    [
        (torch.rand(4, 4, 3), r"\(N, 3, H, W\)"),
        (torch.rand(2, 3, 4, 4) * 2 - 0.5, "undo the normalisation"),
    ],
)
def test_image_grid_rejects_bad_images(images, problem):
    with pytest.raises(ValueError, match=problem):
        image_grid(images)


def test_filter_grid_shows_each_filter_normalised():
    weight = torch.randn(6, 3, 5, 5)
    weight[2] = 0.7  # a constant filter shows as mid-grey, not a division by zero
    figure = filter_grid(weight, ncols=4)
    shown = images_of(figure.axes)
    assert len(figure.axes) == 8 and len(shown) == 6
    assert "6 filters, 5x5 (RGB)" in figure.get_suptitle()
    first = shown[0].get_array()
    assert first.shape == (5, 5, 3)
    assert first.min() == pytest.approx(0.0) and first.max() == pytest.approx(1.0)
    expected = (weight[0] - weight[0].min()) / (weight[0].max() - weight[0].min())
    np.testing.assert_allclose(first, expected.permute(1, 2, 0).numpy(), atol=1e-6)
    np.testing.assert_allclose(shown[2].get_array(), 0.5)


def test_filter_grid_shows_the_first_input_channel_in_grey():
    weight = torch.randn(4, 16, 3, 3)
    shown = images_of(filter_grid(weight).axes)
    assert len(shown) == 4
    assert shown[3].get_array().shape == (3, 3)
    expected = (weight[3, 0] - weight[3, 0].min()) / (weight[3, 0].max() - weight[3, 0].min())
    np.testing.assert_allclose(shown[3].get_array(), expected.numpy(), atol=1e-6)
