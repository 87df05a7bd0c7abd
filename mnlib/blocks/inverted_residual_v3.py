"""The MobileNetV3 inverted residual ("bneck" in the paper's Tables 1 and 2).

Howard et al., "Searching for MobileNetV3", ICCV 2019, §5 and Figure 4. It is the MobileNetV2
block (expand 1×1 → depthwise k×k → linear 1×1 projection, residual when shapes allow) with
three changes:

* the depthwise kernel is 3×3 **or 5×5**;
* an optional :class:`~mnlib.blocks.squeeze_excite.SqueezeExcite` after the depthwise conv;
* the activation is a per-block choice, **ReLU** (paper "RE") or **h-swish** (paper "HS"),
  instead of ReLU6 everywhere.

MobileNetV3 passes its BatchNorm settings (``bn_eps=1e-3, bn_momentum=0.01``, the TensorFlow
defaults the paper trained with, kept by torchvision); the eps changes eval outputs, so it
matters for loading weights.
"""

from __future__ import annotations

import torch
from torch import nn

from mnlib.blocks.conv import ActivationFactory, ConvBNAct
from mnlib.blocks.squeeze_excite import SqueezeExcite


class InvertedResidualV3(nn.Module):
    """One MobileNetV3 bottleneck.

    Shapes: ``[N, in_channels, H, W] → [N, out_channels, H / stride, W / stride]``; inside it
    the tensor is ``expanded_channels`` wide.

    Layers, in order (an absent layer is an ``nn.Identity`` without parameters):

    1. ``expand``: 1×1 ConvBNAct to ``expanded_channels``, only if that differs from
       ``in_channels`` (with expansion 1 it would be a wasted conv);
    2. ``depthwise``: k×k depthwise ConvBNAct, carries the stride;
    3. ``se``: squeeze-and-excitation on the expanded channels, only if ``use_se``;
    4. ``project``: 1×1 ConvBN back to ``out_channels``, **no activation** (the "linear
       bottleneck" of MobileNetV2: a ReLU here would destroy information in few channels).

    The input is added to the output iff ``stride == 1`` and ``in_channels == out_channels``.
    """

    def __init__(
        self,
        in_channels: int,
        expanded_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        *,
        use_se: bool,
        activation: ActivationFactory,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
        self.expands = expanded_channels != in_channels
        self.use_se = use_se
        self.use_residual = stride == 1 and in_channels == out_channels

        self.expand = (
            ConvBNAct(in_channels, expanded_channels, 1, activation=activation, **bn)
            if self.expands
            else nn.Identity()
        )
        self.depthwise = ConvBNAct(
            expanded_channels,
            expanded_channels,
            kernel_size,
            stride=stride,
            groups=expanded_channels,
            activation=activation,
            **bn,
        )
        self.se = SqueezeExcite(expanded_channels) if use_se else nn.Identity()
        self.project = ConvBNAct(expanded_channels, out_channels, 1, activation=None, **bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(x)
        out = self.depthwise(out)
        out = self.se(out)
        out = self.project(out)
        if self.use_residual:
            out = out + x
        return out
