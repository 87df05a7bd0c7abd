"""LayerScale: a learnable per-channel factor on a residual branch (Touvron et al., CaiT, 2021)."""

from __future__ import annotations

import torch
from torch import nn


class LayerScale(nn.Module):
    """Multiply every channel by its own learnable factor γ_c.

    ``γ`` starts tiny (``1e-5`` in the MobileNetV4 hybrids), so at initialisation a residual block
    is almost the identity and a deep stack trains stably; training grows ``γ`` where useful.
    Shapes: ``[N, C, H, W] → [N, C, H, W]``. State-dict key: ``gamma`` (shape ``[C]``).
    """

    def __init__(self, channels: int, init_value: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels,), init_value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma[:, None, None]  # broadcast γ over the H and W axes
