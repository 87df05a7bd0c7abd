"""MobileNetV2's inverted residual with a linear bottleneck (Sandler et al., CVPR 2018, §3).

A ResNet bottleneck is wide → narrow → wide, with the shortcut between the wide ends.
MobileNetV2 turns it inside out: narrow → wide → narrow, with the shortcut between the *narrow*
ends (the "bottlenecks"), so the tensors that must be kept for the shortcut are small.

1. **expand**: 1×1 conv from ``in_channels`` to ``t × in_channels`` → BN → ReLU6 (``t`` is the
   expansion ratio);
2. **depthwise**: 3×3 conv on each channel (carries the stride) → BN → ReLU6;
3. **project**: 1×1 conv back to ``out_channels`` → BN, and **no activation**. The paper (§3.2)
   shows that a ReLU in a low-dimensional space destroys information: the bottleneck is linear.

The shortcut ``x + block(x)`` is used only when the shape is unchanged (stride 1, same channels).
"""

from __future__ import annotations

import torch
from torch import nn

from mnlib.blocks.conv import ConvBNAct


class InvertedResidual(nn.Module):
    """Expand 1×1 → depthwise 3×3 → linear project 1×1, plus identity where the shape allows.

    Shapes: ``[N, in_channels, H, W] → [N, hidden, H, W] → [N, hidden, H', W']
    → [N, out_channels, H', W']`` with ``hidden = round(in_channels × expand_ratio)`` and
    ``H' = ceil(H / stride)``. With ``expand_ratio == 1`` there is no expansion conv (the first
    block of MobileNetV2), as in torchvision.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, stride: int, expand_ratio: float
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        # torchvision does not round the hidden width to a multiple of 8.
        hidden = int(round(in_channels * expand_ratio))
        self.use_residual = stride == 1 and in_channels == out_channels
        self.expand = (
            ConvBNAct(in_channels, hidden, 1, activation=nn.ReLU6)
            if expand_ratio != 1
            else nn.Identity()
        )
        self.depthwise = ConvBNAct(hidden, hidden, 3, stride, groups=hidden, activation=nn.ReLU6)
        self.project = ConvBNAct(hidden, out_channels, 1, activation=None)  # linear bottleneck

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.use_residual else out
