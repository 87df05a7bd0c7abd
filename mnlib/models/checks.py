"""Input and argument checks shared by the models: a clear error instead of a cryptic one."""

from __future__ import annotations

import torch
import torch.fx


def check_image_batch(
    x: torch.Tensor, *, channels: int, min_size: int, model: str, exact: bool = False
) -> None:
    """Raise ``ValueError`` unless ``x`` is ``[N, channels, H, W]`` with ``H, W >= min_size``.

    ``min_size`` is the smallest input the network can reduce to a 1×1 map (its total stride);
    ``exact=True`` demands ``H == W == min_size`` (the MLP, whose first layer fixes the size).

    While ``torch.fx`` traces a model, ``x`` is a placeholder without a shape, so the check is
    skipped: tracing records the network, not the learner's input. ``torch.export`` runs the
    check on its example input, which is what it exports for.
    """
    if is_symbolic_tracing():
        return
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
    if exact and (height, width) != (min_size, min_size):
        raise ValueError(f"{model} expects {min_size}×{min_size} images; got {height}×{width}")
    if height < min_size or width < min_size:
        raise ValueError(
            f"{model} needs images of at least {min_size}×{min_size}; got {height}×{width}"
        )


def is_symbolic_tracing() -> bool:
    """Whether ``torch.fx.symbolic_trace`` is tracing the model right now."""
    fx_trace = torch.fx._symbolic_trace
    # torch >= 2.7 tells fx tracing apart from torch.export; older versions report both.
    is_tracing = getattr(fx_trace, "is_fx_symbolic_tracing", fx_trace.is_fx_tracing)
    return is_tracing()


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
