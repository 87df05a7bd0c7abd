"""MobileNetV1's depthwise-separable convolution (Howard et al., arXiv:1704.04861, §3.1, Fig. 3).

A standard k×k convolution filters and mixes channels in one step. MobileNetV1 splits it in two:

1. a **depthwise** k×k convolution filters each channel on its own (``groups = channels``);
2. a **pointwise** 1×1 convolution mixes the channels.

Each is followed by BatchNorm and ReLU6. The cost falls by a factor ``1/N + 1/k²`` (Eq. 5),
8–9× for 3×3 kernels, at a small loss in accuracy (Table 4).
"""

from __future__ import annotations

import torch
from torch import nn

from mnlib.blocks.conv import ActivationFactory, ConvBNAct


class DepthwiseSeparableConv(nn.Module):
    """Depthwise k×k conv (``stride``) → BN → act → pointwise 1×1 conv → BN → act.

    Shapes: ``[N, in_channels, H, W] → [N, in_channels, H', W'] → [N, out_channels, H', W']``
    with ``H' = ceil(H / stride)``. No shortcut (MobileNetV1 has none). The arguments come in
    the order of :class:`~mnlib.blocks.conv.ConvBNAct`: ``(in, out, kernel_size, stride)``.
    State-dict keys: ``depthwise.{conv,bn}.*``, ``pointwise.{conv,bn}.*``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        *,
        activation: ActivationFactory = nn.ReLU6,
    ) -> None:
        super().__init__()
        self.depthwise = ConvBNAct(
            in_channels, in_channels, kernel_size, stride, groups=in_channels, activation=activation
        )
        self.pointwise = ConvBNAct(in_channels, out_channels, 1, activation=activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))
