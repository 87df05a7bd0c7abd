"""The Universal Inverted Bottleneck (UIB) of MobileNetV4.

Qin et al. (2024) observe that the blocks of earlier mobile networks are all one block with two
optional depthwise convolutions around the expanding 1×1 conv:

    x ─► [DW k_start, BN] ─► 1×1 expand, BN, act ─► [DW k_mid, BN, act] ─► 1×1 project, BN
         "start" (optional)                          "middle" (optional)    (linear bottleneck)

Which of the two depthwise convs exist decides what the block is:

=============  =====  ======  =========================================================
instantiation  start  middle  known as
=============  =====  ======  =========================================================
ExtraDW        yes    yes     new in MobileNetV4: cheap extra depth and receptive field
IB             no     yes     MobileNetV2's inverted bottleneck (Sandler et al., 2018)
ConvNeXt       yes    no      ConvNeXt-like: spatial mixing before the expansion
FFN            no     no      two 1×1 convs, the feed-forward block of a transformer
=============  =====  ======  =========================================================

Matches timm's ``UniversalInvertedResidual`` layer for layer (same child names), so its
weights load with an identity key map.
"""

from __future__ import annotations

import torch
from torch import nn

from mnlib.blocks.conv import ActivationFactory, ConvBNAct, make_divisible
from mnlib.blocks.layer_scale import LayerScale


class UniversalInvertedBottleneck(nn.Module):
    """MobileNetV4's UIB (Qin et al., 2024): ExtraDW, IB, ConvNeXt or FFN.

    Args:
        in_channels, out_channels: block input and output width.
        start_kernel: kernel of the depthwise conv *before* the expansion (``None``: absent).
            It has BatchNorm but no activation.
        middle_kernel: kernel of the depthwise conv *after* the expansion (``None``: absent).
        expansion: hidden width = ``make_divisible(in_channels * expansion)``.
        stride: 1 or 2. It goes on the middle conv if there is one, else on the start conv;
            an FFN block has no spatial conv and cannot downsample.
        activation: factory of the activation after the expansion and the middle conv.
        layer_scale_init: initial γ of a :class:`LayerScale` on the block output (``None``: none).

    Shapes: ``[N, in, H, W] → [N, out, ceil(H/stride), ceil(W/stride)]``. The input is added to
    the output (residual) when ``stride == 1`` and ``in_channels == out_channels``.
    Absent convs are ``nn.Identity`` so the forward pass reads the same for all four kinds.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        start_kernel: int | None,
        middle_kernel: int | None,
        expansion: float,
        stride: int = 1,
        activation: ActivationFactory = nn.ReLU,
        layer_scale_init: float | None = None,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        if stride > 1 and start_kernel is None and middle_kernel is None:
            raise ValueError("an FFN block (no depthwise conv) cannot have stride > 1")
        hidden = make_divisible(in_channels * expansion)
        # The stride sits on the middle conv when there is one (it then sees the wide tensor).
        start_stride = stride if middle_kernel is None else 1

        self.dw_start = (
            ConvBNAct(
                in_channels,
                in_channels,
                start_kernel,
                start_stride,
                groups=in_channels,
                activation=None,  # linear: it only mixes space, the 1×1 after it adds the act
            )
            if start_kernel is not None
            else nn.Identity()
        )
        self.pw_exp = ConvBNAct(in_channels, hidden, 1, activation=activation)
        self.dw_mid = (
            ConvBNAct(hidden, hidden, middle_kernel, stride, groups=hidden, activation=activation)
            if middle_kernel is not None
            else nn.Identity()
        )
        # Linear bottleneck: no activation after the projection (MobileNetV2).
        self.pw_proj = ConvBNAct(hidden, out_channels, 1, activation=None)
        self.layer_scale = (
            LayerScale(out_channels, layer_scale_init)
            if layer_scale_init is not None
            else nn.Identity()
        )
        self.use_residual = stride == 1 and in_channels == out_channels

    @property
    def kind(self) -> str:
        """Which of the four instantiations this is: ExtraDW, IB, ConvNeXt or FFN."""
        has_start = not isinstance(self.dw_start, nn.Identity)
        has_middle = not isinstance(self.dw_mid, nn.Identity)
        return {
            (True, True): "ExtraDW",
            (False, True): "IB",
            (True, False): "ConvNeXt",
            (False, False): "FFN",
        }[has_start, has_middle]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dw_start(x)
        out = self.pw_exp(out)
        out = self.dw_mid(out)
        out = self.pw_proj(out)
        out = self.layer_scale(out)  # also on blocks without a residual, as in timm
        return x + out if self.use_residual else out
