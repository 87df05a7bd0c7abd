"""Tests of mnlib.plot: each function returns a modest Figure showing what it was given."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from mnlib.plot import plot_confusion_matrix, plot_history, show_images, show_worst_errors
from mnlib.train import History

matplotlib.use("Agg")  # headless here; never via MPLBACKEND, which would leak into notebooks

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def make_history(with_validation: bool) -> History:
    history = History()
    for epoch in range(1, 4):
        history.append(
            train_loss=1 / epoch,
            train_accuracy=0.5 + 0.1 * epoch,
            val_loss=1.2 / epoch if with_validation else None,
            val_accuracy=0.45 + 0.1 * epoch if with_validation else None,
            lr=1e-3,
            seconds=1.0,
            images_per_second=100.0,
        )
    return history


def uint8_images(count: int, channels: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (count, channels, 6, 6), generator=generator, dtype=torch.uint8)


def displayed(axes) -> np.ndarray:
    return np.asarray(axes.get_images()[0].get_array())


def assert_modest(figure: Figure) -> None:
    width, height = figure.get_size_inches()
    assert width <= 10 and height <= 10


@pytest.mark.parametrize(("with_validation", "lines"), [(True, 2), (False, 1)])
def test_plot_history(with_validation, lines):
    figure = plot_history(make_history(with_validation))
    assert isinstance(figure, Figure) and len(figure.axes) == 2
    loss_axes, accuracy_axes = figure.axes
    assert [len(axes.get_lines()) for axes in figure.axes] == [lines, lines]
    assert list(loss_axes.get_lines()[0].get_ydata()) == pytest.approx([1, 1 / 2, 1 / 3])
    assert list(accuracy_axes.get_lines()[0].get_ydata()) == pytest.approx([60, 70, 80])
    figure.canvas.draw()
    for axes in figure.axes:  # epochs are whole numbers: no tick at 1.5
        ticks = [tick for tick in axes.get_xticks() if axes.get_xlim()[0] <= tick]
        assert all(float(tick).is_integer() for tick in ticks)
    assert_modest(figure)


def test_show_images_uint8_grey_with_labels_and_predictions():
    images = uint8_images(10, channels=1)
    labels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    predictions = [0, 1, 2, 3, 4, 5, 6, 7, 3, 9]  # image 8 is wrong
    figure = show_images(images, labels, predictions, ncols=4)
    assert isinstance(figure, Figure) and len(figure.axes) == 10  # 3 rows, 2 empty cells removed
    assert all(len(axes.get_images()) == 1 for axes in figure.axes)
    assert figure.axes[8].get_title() == "8 → 3"
    assert figure.axes[8].title.get_color() == "tab:red"
    assert figure.axes[0].get_title() == "0 → 0" and figure.axes[0].title.get_color() == "black"
    assert figure.axes[0].get_images()[0].get_cmap().name == "gray"
    np.testing.assert_allclose(displayed(figure.axes[3]), images[3, 0].numpy() / 255, rtol=1e-6)
    assert_modest(figure)


def test_show_images_undoes_normalization_with_mean_and_std():
    images = uint8_images(3, channels=3)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    normalized = (images.float() / 255 - mean) / std
    figure = show_images(
        normalized, labels=[2, 0, 1], class_names=["cat", "dog", "frog"], mean=MEAN, std=STD
    )
    assert [axes.get_title() for axes in figure.axes] == ["frog", "cat", "dog"]
    expected = images[1].permute(1, 2, 0).numpy() / 255
    np.testing.assert_allclose(displayed(figure.axes[1]), expected, atol=1e-5)


def test_show_images_rescales_normalized_floats_without_mean_and_std():
    images = torch.randn(4, 28, 28, generator=torch.Generator().manual_seed(0))  # [N, H, W]
    figure = show_images(images)
    assert len(figure.axes) == 4
    pixels = displayed(figure.axes[0])
    assert pixels.min() == pytest.approx(0) and pixels.max() == pytest.approx(1)
    assert figure.axes[0].get_title() == ""


def test_show_images_rejects_bad_input():
    with pytest.raises(ValueError, match="1 or 3 channels"):
        show_images(torch.zeros(2, 2, 4, 4))
    with pytest.raises(ValueError, match="between 1 and 100 images"):
        show_images(torch.zeros(101, 1, 4, 4))
    with pytest.raises(ValueError, match="labels has 3 entries for 2 images"):
        show_images(torch.zeros(2, 1, 4, 4), labels=[0, 1, 2])
    with pytest.raises(ValueError, match="both mean and std"):
        show_images(torch.zeros(2, 1, 4, 4), mean=[0.5])


def cell_texts(figure: Figure) -> list[str]:
    return [text.get_text() for text in figure.axes[0].texts]


def test_plot_confusion_matrix_counts_and_normalizes():
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    predictions = torch.tensor([0, 1, 1, 2, 0, 2])
    figure = plot_confusion_matrix(labels, predictions)
    assert isinstance(figure, Figure) and len(figure.axes) == 1
    assert len(figure.axes[0].get_images()) == 1
    assert cell_texts(figure) == ["1", "1", "0", "0", "1", "0", "1", "0", "2"]  # row by row
    assert_modest(figure)

    normalized = plot_confusion_matrix(
        labels.tolist(), predictions.tolist(), normalize=True, class_names=["a", "b", "c"]
    )
    assert cell_texts(normalized)[6:] == ["0.33", "0.00", "0.67"]
    assert [label.get_text() for label in normalized.axes[0].get_xticklabels()] == ["a", "b", "c"]


def test_plot_confusion_matrix_rejects_logits_and_bad_classes():
    with pytest.raises(ValueError, match=r"logits.argmax\(1\)"):
        plot_confusion_matrix(torch.tensor([0, 1]), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="out of range for 2 class names"):
        plot_confusion_matrix([0, 2], [0, 1], class_names=["a", "b"])


def test_show_worst_errors_orders_by_confidence():
    images = uint8_images(5, channels=3).float() / 255
    labels = torch.tensor([0, 1, 0, 1, 0])
    # wrong: image 1 (p(0) = 0.73), image 2 (p(1) = 0.95), image 4 (p(1) = 0.88)
    logits = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0], [0.0, 1.0], [0.0, 2.0]])
    figure = show_worst_errors(images, logits, labels, k=2, class_names=["cat", "dog"])
    assert isinstance(figure, Figure) and len(figure.axes) == 2
    assert [axes.get_title() for axes in figure.axes] == ["cat → dog\n95%", "cat → dog\n88%"]
    assert all(axes.title.get_color() == "tab:red" for axes in figure.axes)
    np.testing.assert_allclose(displayed(figure.axes[0]), images[2].permute(1, 2, 0).numpy())

    all_errors = show_worst_errors(images, logits, labels, mean=MEAN, std=STD)
    assert len(all_errors.axes) == 3


def test_show_worst_errors_without_errors():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    figure = show_worst_errors(uint8_images(2, channels=1), logits, [0, 1])
    assert len(figure.axes) == 1 and "no misclassified images" in cell_texts(figure)
