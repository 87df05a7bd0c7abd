"""Figures for the chapters: training curves, image grids, confusion matrices, worst errors.

Every function returns its matplotlib Figure and leaves showing it to the notebook (end the
cell with ``;`` or ``plt.show()``). Figures stay small because they are committed as PNGs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mnlib.train import History

MAX_IMAGES = 100
WRONG_COLOR = "tab:red"


def plot_history(history: History) -> Figure:
    """Loss (left) and accuracy (right) per epoch, training and, if present, validation."""
    epochs = range(1, len(history) + 1)
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(8, 3), layout="constrained")
    panels = [
        (loss_axes, "loss", history.train_loss, history.val_loss, 1),
        (accuracy_axes, "accuracy (%)", history.train_accuracy, history.val_accuracy, 100),
    ]
    for axes, name, train, val, scale in panels:
        axes.plot(epochs, [scale * value for value in train], marker=".", label="train")
        if any(value is not None for value in val):
            points = [(e, scale * v) for e, v in zip(epochs, val, strict=True) if v is not None]
            axes.plot(*zip(*points, strict=True), marker=".", label="validation")
        axes.set(xlabel="epoch", ylabel=name)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # no "epoch 1.5"
        axes.grid(alpha=0.3)
        axes.legend()
    return figure


def show_images(
    images: torch.Tensor,
    labels: Sequence[int] | torch.Tensor | None = None,
    predictions: Sequence[int] | torch.Tensor | None = None,
    class_names: Sequence[str] | None = None,
    ncols: int = 8,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Figure:
    """A grid of images titled "label" or "label → prediction" (red when wrong).

    ``images`` is [N, C, H, W] (or [N, H, W] for grey) with C = 1 or 3: uint8 in 0..255, or
    floats. Normalized floats are mapped back with ``mean`` and ``std`` (per channel) when
    given; otherwise floats outside [0, 1] are rescaled per image to fill [0, 1].
    """
    pictures = _displayable(images, mean, std)
    true = _as_list(labels, len(pictures), "labels")
    guessed = _as_list(predictions, len(pictures), "predictions")
    titles, colors = [], []
    for index in range(len(pictures)):
        parts = [_class_name(values[index], class_names) for values in (true, guessed) if values]
        titles.append(" → ".join(parts))
        wrong = bool(true and guessed) and true[index] != guessed[index]
        colors.append(WRONG_COLOR if wrong else "black")
    return _image_grid(pictures, titles, colors, ncols)


def plot_confusion_matrix(
    labels: Sequence[int] | torch.Tensor,
    predictions: Sequence[int] | torch.Tensor,
    class_names: Sequence[str] | None = None,
    normalize: bool = False,
) -> Figure:
    """Counts of (true class, predicted class) pairs, written in the cells.

    ``normalize=True`` divides each row by its class's count, so the diagonal is the recall
    of each class. ``predictions`` are class indices (``logits.argmax(1)``).
    """
    labels, predictions = torch.as_tensor(labels), torch.as_tensor(predictions)
    if predictions.dim() == 2:
        raise ValueError(
            "predictions must be class indices [N]; for logits [N, classes] pass logits.argmax(1)"
        )
    if labels.dim() != 1 or labels.shape != predictions.shape:
        raise ValueError(
            f"labels {tuple(labels.shape)} and predictions "
            f"{tuple(predictions.shape)} must be two vectors of equal length"
        )
    if len(labels) == 0 or min(labels.min(), predictions.min()) < 0:
        raise ValueError("labels and predictions must be non-empty and non-negative")
    largest = int(max(labels.max(), predictions.max()))
    count = len(class_names) if class_names is not None else largest + 1
    if largest >= count:
        raise ValueError(f"class index {largest} is out of range for {count} class names")
    matrix = torch.bincount(labels * count + predictions, minlength=count * count)
    matrix = matrix.reshape(count, count).double()
    if normalize:
        matrix = matrix / matrix.sum(dim=1, keepdim=True).clamp(min=1)

    size = min(2.0 + 0.45 * count, 8.0)
    figure, axes = plt.subplots(figsize=(size, size), layout="constrained")
    axes.imshow(matrix.numpy(), cmap="Blues")
    for true in range(count):
        for guess in range(count):
            value = matrix[true, guess].item()
            text = f"{value:.2f}" if normalize else f"{value:.0f}"
            color = "white" if value > matrix.max().item() / 2 else "black"  # readable on dark
            axes.text(guess, true, text, ha="center", va="center", fontsize=8, color=color)
    if class_names is None:
        axes.set_xticks(range(count))
        axes.set_yticks(range(count))
    else:
        axes.set_xticks(range(count), class_names, rotation=45, ha="right")
        axes.set_yticks(range(count), class_names)
    axes.set(xlabel="predicted", ylabel="true")
    return figure


def show_worst_errors(
    images: torch.Tensor,
    logits: torch.Tensor,
    labels: Sequence[int] | torch.Tensor,
    k: int = 16,
    class_names: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Figure:
    """The ``k`` misclassified images the model was most sure of, most confident first.

    Titles read "label → prediction (probability of the prediction)". ``logits`` is
    [N, classes] from :func:`mnlib.train.predict`, aligned with ``images`` and ``labels``.
    """
    labels = torch.as_tensor(labels).cpu()
    probabilities = torch.softmax(logits.detach().float().cpu(), dim=1)
    if probabilities.shape[0] != len(labels) or len(images) != len(labels):
        raise ValueError(
            f"images ({len(images)}), logits ({probabilities.shape[0]}) and labels "
            f"({len(labels)}) must have the same length"
        )
    confidence, guesses = probabilities.max(dim=1)
    wrong = (guesses != labels).nonzero().flatten()
    if len(wrong) == 0:
        figure, axes = plt.subplots(figsize=(3, 1))
        axes.text(0.5, 0.5, "no misclassified images", ha="center", va="center")
        axes.axis("off")
        return figure
    worst = wrong[confidence[wrong].argsort(descending=True)[:k]]
    pictures = _displayable(images[worst], mean, std)
    titles = [
        f"{_class_name(labels[i], class_names)} → {_class_name(guesses[i], class_names)}"
        f"\n{100 * confidence[i]:.0f}%"
        for i in worst.tolist()
    ]
    return _image_grid(pictures, titles, [WRONG_COLOR] * len(titles), ncols=8)


def _displayable(
    images: torch.Tensor, mean: Sequence[float] | None, std: Sequence[float] | None
) -> np.ndarray:
    """Images as a float array [N, H, W, C] with values in [0, 1], ready for ``imshow``."""
    images = torch.as_tensor(images).detach().cpu()
    if images.dim() == 3:
        images = images.unsqueeze(1)  # [N, H, W] -> [N, 1, H, W]
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"images must be [N, C, H, W] with 1 or 3 channels, got {tuple(images.shape)}"
        )
    if not 0 < len(images) <= MAX_IMAGES:
        raise ValueError(f"show between 1 and {MAX_IMAGES} images (got {len(images)}); slice them")
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std, or neither")
    if images.dtype == torch.uint8:
        images = images.float() / 255
    else:
        images = images.float()
        if mean is not None:
            # Undo transforms.Normalize: x = (pixel - mean) / std per channel.
            images = images * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(
                1, -1, 1, 1
            )
        elif images.min() < 0 or images.max() > 1:
            low = images.amin(dim=(1, 2, 3), keepdim=True)
            high = images.amax(dim=(1, 2, 3), keepdim=True)
            images = (images - low) / (high - low).clamp(min=1e-12)
    return images.clamp(0, 1).permute(0, 2, 3, 1).numpy()


def _image_grid(pictures: np.ndarray, titles: list[str], colors: list[str], ncols: int) -> Figure:
    """One small axes per picture [N, H, W, C], ``ncols`` per row, with coloured titles."""
    if ncols < 1:
        raise ValueError(f"ncols must be at least 1, got {ncols}")
    count = len(pictures)
    ncols = min(ncols, count)
    nrows = math.ceil(count / ncols)
    title_lines = max(len(title.splitlines()) for title in titles)
    cell_height = 1.2 + 0.13 * title_lines  # inches: the picture and its title
    figure, grid = plt.subplots(
        nrows,
        ncols,
        figsize=(1.2 * ncols, cell_height * nrows),
        squeeze=False,
        layout="constrained",
    )
    figure.get_layout_engine().set(w_pad=0.02, h_pad=0.02, wspace=0.02, hspace=0.02)
    for index, axes in enumerate(grid.flat):
        if index >= count:
            axes.remove()  # an empty cell in the last row
            continue
        picture = pictures[index]
        if picture.shape[-1] == 1:
            axes.imshow(picture[..., 0], cmap="gray", vmin=0, vmax=1)
        else:
            axes.imshow(picture)
        axes.set_title(titles[index], fontsize=7, color=colors[index])
        axes.axis("off")
    return figure


def _as_list(values, count: int, name: str) -> list[int]:
    if values is None:
        return []
    values = torch.as_tensor(values).flatten().tolist()
    if len(values) != count:
        raise ValueError(f"{name} has {len(values)} entries for {count} images")
    return values


def _class_name(index, class_names: Sequence[str] | None) -> str:
    index = int(index)
    return class_names[index] if class_names is not None else str(index)
