"""ResNet's residual blocks: ``out = ReLU(F(x) + shortcut(x))`` (He et al., CVPR 2016, §3).

The block learns a *residual* ``F(x)`` on top of an identity path, so a very deep stack can
always fall back to the identity and gradients reach early layers through the shortcuts.

* :class:`BasicBlock` (ResNet-18/34 and the CIFAR ResNets): two 3×3 convolutions.
* :class:`Bottleneck` (ResNet-50/101/152): 1×1 reduce → 3×3 → 1×1 expand (×4).

When a block changes the shape (stride 2 or more channels), the identity no longer fits and the
shortcut must change the shape too. The paper (§3.3) compares two options:

* **option A** (:class:`ZeroPadShortcut`): subsample by the stride and append zero channels; no
  parameters. Used by the paper's CIFAR ResNets (§4.2).
* **option B** (projection): a strided 1×1 convolution + BatchNorm, only where the shape changes.
  Used by the ImageNet ResNets and by torchvision (its ``downsample`` module).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from mnlib.blocks.conv import ConvBNAct

ShortcutKind = Literal["projection", "zero_pad"]


class ZeroPadShortcut(nn.Module):
    """Option-A shortcut: keep every ``stride``-th pixel, then pad the new channels with zeros.

    Shapes: ``[N, in_channels, H, W] → [N, out_channels, ceil(H/stride), ceil(W/stride)]``.
    The first ``in_channels`` outputs are the input itself; the rest are zero. No parameters.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                f"a zero-padding shortcut can only add channels; got {in_channels} → {out_channels}"
            )
        self.extra_channels = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        # F.pad's tuple lists (before, after) pairs from the last dim: W, H, then channels.
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))


def make_shortcut(
    in_channels: int, out_channels: int, stride: int, kind: ShortcutKind
) -> nn.Module:
    """The identity where the shape is unchanged, otherwise an option-A or option-B shortcut."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    if kind == "projection":
        return ConvBNAct(in_channels, out_channels, kernel_size=1, stride=stride, activation=None)
    if kind == "zero_pad":
        return ZeroPadShortcut(in_channels, out_channels, stride)
    raise ValueError(f"shortcut must be 'projection' or 'zero_pad', got {kind!r}")


class BasicBlock(nn.Module):
    """Two 3×3 conv layers plus a shortcut (paper Fig. 2 left; ResNet-18/34 and CIFAR ResNets).

    ``conv1`` (3×3, ``stride``) → BN → ReLU → ``conv2`` (3×3) → BN → add shortcut → ReLU.
    ``use_residual=False``: no shortcut and no addition (the plain block).
    Shapes: ``[N, in_channels, H, W] → [N, out_channels, ceil(H/stride), ceil(W/stride)]``.
    """

    expansion = 1  # out_channels = expansion × width of the 3×3 convs

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        shortcut: ShortcutKind = "projection",
        use_residual: bool = True,
    ) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, out_channels, 3, stride)
        # No activation before the addition: the ReLU comes after the sum.
        self.conv2 = ConvBNAct(out_channels, out_channels, 3, activation=None)
        self.use_residual = use_residual
        if use_residual:
            self.shortcut = make_shortcut(in_channels, out_channels, stride, shortcut)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return self.act(out + self.shortcut(x) if self.use_residual else out)


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3, 1×1 expand, plus a shortcut (paper Fig. 5 right; ResNet-50/101/152).

    ``conv1`` (1×1) → BN → ReLU → ``conv2`` (3×3, ``stride``) → BN → ReLU → ``conv3`` (1×1, ×4)
    → BN → add shortcut → ReLU (``use_residual=False``: no addition). The 3×3 conv works on
    ``out_channels / 4`` channels only, which is what makes deep ResNets affordable.

    The stride sits on the 3×3 conv, as in torchvision ("ResNet v1.5"). The paper's original
    model put it on the first 1×1 conv; same weights, but about 6 % fewer MACs and, according to
    NVIDIA, slightly lower accuracy.

    Shapes: ``[N, in_channels, H, W] → [N, out_channels, ceil(H/stride), ceil(W/stride)]``.
    """

    expansion = 4  # out_channels = expansion × width of the 3×3 conv

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        shortcut: ShortcutKind = "projection",
        use_residual: bool = True,
    ) -> None:
        super().__init__()
        width = out_channels // self.expansion
        self.conv1 = ConvBNAct(in_channels, width, 1)
        self.conv2 = ConvBNAct(width, width, 3, stride)
        self.conv3 = ConvBNAct(width, out_channels, 1, activation=None)
        self.use_residual = use_residual
        if use_residual:
            self.shortcut = make_shortcut(in_channels, out_channels, stride, shortcut)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv3(self.conv2(self.conv1(x)))
        return self.act(out + self.shortcut(x) if self.use_residual else out)
