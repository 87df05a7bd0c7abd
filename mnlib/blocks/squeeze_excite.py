"""Squeeze-and-excitation as MobileNetV3 uses it: a cheap, learned per-channel gate.

Original SE (Hu et al., SENet, CVPR 2018):
    ``x * sigmoid(W2 · ReLU(W1 · GAP(x)))``, squeeze width ``C / r`` with reduction ``r = 16``.

MobileNetV3 SE (Howard et al., ICCV 2019, §5.3), implemented here:
    ``x * hardsigmoid(fc2(ReLU(fc1(GAP(x)))))``

and it differs in three ways:

* the gate is the **hard-sigmoid** ``ReLU6(x + 3) / 6`` instead of the sigmoid: piece-wise linear,
  cheap and friendly to quantization;
* the squeeze width is **a quarter of the expanded width** (``r = 4``), rounded to a multiple of 8
  by :func:`~mnlib.blocks.conv.make_divisible`: ``72 → 18 → 24``, ``960 → 240``;
* it sits inside the inverted residual, after the depthwise convolution, so it gates the
  *expanded* channels.

``fc1`` and ``fc2`` are 1×1 convolutions **with bias** (no BatchNorm), which on a 1×1 map is the
same as a fully connected layer; the inner activation is always ReLU.
"""

from __future__ import annotations

import torch
from torch import nn

from mnlib.blocks.conv import make_divisible


class SqueezeExcite(nn.Module):
    """MobileNetV3 squeeze-and-excitation on ``channels`` (the block's expanded width).

    Shapes: ``[N, C, H, W] → [N, C, H, W]``; the gate it computes is ``[N, C, 1, 1]``.
    State-dict keys: ``fc1.{weight,bias}``, ``fc2.{weight,bias}`` (as in torchvision's
    ``SqueezeExcitation``).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        # Paper §5.3: "1/4 of the number of channels in expansion layer", rounded like
        # every other width (torchvision: _make_divisible(expanded // 4, 8)).
        self.squeeze_channels = make_divisible(channels // 4, 8)
        self.fc1 = nn.Conv2d(channels, self.squeeze_channels, kernel_size=1)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(self.squeeze_channels, channels, kernel_size=1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Squeeze: one number per channel, [N, C, H, W] → [N, C, 1, 1].
        scale = x.mean(dim=(2, 3), keepdim=True)
        # Excite: C → C/4 → C, then a gate in [0, 1] per channel.
        scale = self.gate(self.fc2(self.act(self.fc1(scale))))
        return x * scale
