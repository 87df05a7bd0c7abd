"""Input and argument checks shared by the models: a clear error instead of a cryptic one."""

from __future__ import annotations

import torch


def check_image_batch(x: torch.Tensor, *, channels: int, min_size: int, model: str) -> None:
    """Raise ``ValueError`` unless ``x`` is ``[N, channels, H, W]`` with ``H, W >= min_size``.

    ``min_size`` is the smallest input the network can reduce to a 1×1 map (its total stride).
    """
    if x.ndim != 4:
        raise ValueError(
            f"{model} expects a batch of images [N, {channels}, H, W]; got shape {tuple(x.shape)}"
        )
    if x.shape[1] != channels:
        raise ValueError(
            f"{model} expects {channels} input channels; got {x.shape[1]} "
            f"(input shape {tuple(x.shape)})"
        )
    height, width = x.shape[-2:]
    if height < min_size or width < min_size:
        raise ValueError(
            f"{model} needs images of at least {min_size}×{min_size}; got {height}×{width}"
        )


def check_width_mult(width_mult: float) -> float:
    """Width multipliers from 0.1 to 4.0 make sense; anything else is an error."""
    if not 0.1 <= width_mult <= 4.0:
        raise ValueError(f"width_mult must be between 0.1 and 4.0, got {width_mult!r}")
    return width_mult


def check_dropout(dropout: float) -> float:
    """A dropout probability must lie in [0, 1)."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    return dropout


def check_pretrained_layout(name: str, *, num_classes: int, cifar: bool, width_mult: float) -> None:
    """ImageNet weights exist only for the reference layout: 1000 classes, no CIFAR, width 1."""
    if num_classes != 1000 or cifar or width_mult != 1.0:
        raise ValueError(
            f"pretrained {name} weights exist only for num_classes=1000, cifar=False and "
            f"width_mult=1.0; got num_classes={num_classes}, cifar={cifar}, "
            f"width_mult={width_mult}. Load them first, then replace the classifier."
        )
