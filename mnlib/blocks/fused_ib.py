"""The fused inverted bottleneck ("FusedIB", "FusedMBConv", timm's ``EdgeResidual``).

An inverted bottleneck whose 1×1 expansion and k×k depthwise conv are *fused* into one full
k×k convolution (Gupta & Tan, EfficientNet-EdgeTPU, 2019; Tan & Le, EfficientNetV2, 2021):

    x ─► k×k conv in→hidden (stride), BN, act ─► 1×1 conv hidden→out, BN ─► (+ x)

It has more multiply-adds than a 1×1 + depthwise pair; the papers use it on early,
high-resolution and narrow layers because there a dense conv makes better use of accelerators.
MobileNetV4 (Qin et al., 2024) opens Conv-M, Conv-L and both hybrids with one FusedIB.
"""

from __future__ import annotations

import torch
from torch import nn

from mnlib.blocks.conv import ActivationFactory, ConvBNAct, make_divisible


class FusedInvertedBottleneck(nn.Module):
    """A k×k conv expanding to ``make_divisible(in * expansion)``, then a linear 1×1 projection.

    Shapes: ``[N, in, H, W] → [N, out, ceil(H/stride), ceil(W/stride)]``. The input is added to
    the output when ``stride == 1`` and ``in_channels == out_channels`` (never in MobileNetV4,
    whose FusedIBs all downsample).
    Children: ``conv_exp`` (k×k conv, BN, act) and ``pw_proj`` (1×1 conv, BN, no activation).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int = 3,
        expansion: float,
        stride: int = 1,
        activation: ActivationFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        hidden = make_divisible(in_channels * expansion)
        self.conv_exp = ConvBNAct(in_channels, hidden, kernel_size, stride, activation=activation)
        self.pw_proj = ConvBNAct(hidden, out_channels, 1, activation=None)  # linear bottleneck
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pw_proj(self.conv_exp(x))
        return x + out if self.use_residual else out
