"""ResNet (He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition", CVPR 2016).

Two families from the same paper, built by one class:

* the ImageNet ResNets of Table 1 (``resnet18``, ``resnet50``), weight for weight compatible with
  torchvision's ``resnet18``/``resnet50`` (stride on the bottleneck's 3×3 conv, "v1.5");
* the CIFAR-10 ResNets of §4.2 (``resnet20``, ``resnet56``): three stages of 16/32/64 channels on
  32×32 inputs and parameter-free "option A" shortcuts.

``cifar=True`` adapts the ImageNet ResNets to 32×32 images the usual way (kuangliu/pytorch-cifar):
a 3×3 stride-1 stem and no max-pool, so the total stride is 8 instead of 32 and the last map is
4×4 instead of 1×1. Every other layer is kept.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn

from mnlib.blocks.conv import ConvBNAct, make_divisible
from mnlib.blocks.residual import BasicBlock, Bottleneck, ShortcutKind
from mnlib.models.checks import check_dropout, check_image_batch, check_width_mult
from mnlib.models.init import init_torchvision_style
from mnlib.models.registry import register_model
from mnlib.models.stages import Stage, repeat_block
from mnlib.models.weights import Reference, build_model

# Paper Table 1. ``channels`` is the width of the 3×3 convs; a block outputs
# channels × block.expansion. The stem (7×7 conv, stride 2, then 3×3 max-pool, stride 2) has
# already divided the 224×224 input by 4 when conv2_x starts.
# fmt: off
RESNET18_STAGES = (
    #     channels  repeats  stride      paper name  output at 224
    Stage(      64,       2,      1),  # conv2_x     56×56
    Stage(     128,       2,      2),  # conv3_x     28×28
    Stage(     256,       2,      2),  # conv4_x     14×14
    Stage(     512,       2,      2),  # conv5_x     7×7
)
RESNET50_STAGES = (  # bottleneck blocks: 1×1 (channels) → 3×3 (channels) → 1×1 (4 × channels)
    Stage(      64,       3,      1),
    Stage(     128,       4,      2),
    Stage(     256,       6,      2),
    Stage(     512,       3,      2),
)
# fmt: on

# Paper §4.2: a 3×3 conv with 16 filters, then 3 stages of n basic blocks (2n layers) on 32×32,
# 16×16 and 8×8 maps with 16, 32 and 64 filters. Depth = 6n + 2: n = 3 → ResNet-20, n = 9 → 56.
RESNET20_STAGES = (Stage(16, 3, 1), Stage(32, 3, 2), Stage(64, 3, 2))
RESNET56_STAGES = (Stage(16, 9, 1), Stage(32, 9, 2), Stage(64, 9, 2))


class ResNet(nn.Module):
    """Stem → stages of residual blocks → global average pool → dropout → linear classifier.

    Shapes (ResNet-50, 224×224): ``[N, 3, 224, 224] → stem [N, 64, 56, 56] → [N, 256, 56, 56]
    → [N, 512, 28, 28] → [N, 1024, 14, 14] → [N, 2048, 7, 7] → pool [N, 2048] → [N, classes]``.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        stages: the stage table, e.g. :data:`RESNET18_STAGES`.
        cifar: ``False``: 7×7 stride-2 conv + 3×3 stride-2 max-pool (ImageNet, total stride
            ÷4). ``True``: 3×3 stride-1 conv, no pool, for 32×32 images (as the CIFAR ResNets
            of the paper, §4.2, and kuangliu/pytorch-cifar).
        shortcut: ``"projection"`` (option B, torchvision) or ``"zero_pad"`` (option A, §4.2).
        use_residual: ``False`` builds the paper's *plain* network: the same layers, no
            additions (§4.1-4.2, the baseline of the degradation experiment).
        width_mult: multiplies every stage width (and the stem, which is as wide as the first
            stage), rounded to a multiple of 8 with ``make_divisible``.
    """

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        stages: tuple[Stage, ...],
        num_classes: int = 1000,
        *,
        cifar: bool = False,
        shortcut: ShortcutKind = "projection",
        use_residual: bool = True,
        width_mult: float = 1.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_width_mult(width_mult)
        check_dropout(dropout)
        stem_channels = make_divisible(stages[0].channels * width_mult)
        if cifar:
            self.stem = ConvBNAct(3, stem_channels, kernel_size=3, stride=1)
            self.max_pool = nn.Identity()
        else:
            self.stem = ConvBNAct(3, stem_channels, kernel_size=7, stride=2)
            self.max_pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        in_channels = stem_channels
        stage_modules = []
        for stage in stages:
            out_channels = make_divisible(stage.channels * width_mult) * block.expansion
            make_block = partial(block, shortcut=shortcut, use_residual=use_residual)
            stage_modules.append(repeat_block(make_block, in_channels, out_channels, stage))
            in_channels = out_channels
        self.stages = nn.Sequential(*stage_modules)

        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(in_channels, num_classes)

        # The smallest input that still reaches the classifier as a 1×1 map.
        self.min_size = (1 if cifar else 4) * math.prod(stage.stride for stage in stages)
        init_torchvision_style(self, linear_std=None)  # torchvision keeps nn.Linear's default

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, channels=3, min_size=self.min_size, model=type(self).__name__)
        x = self.stages(self.max_pool(self.stem(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.classifier(self.dropout(x))


@register_model
def resnet18(
    num_classes: int = 1000,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float = 0.0,
    pretrained: bool = False,
) -> ResNet:
    """ResNet-18 = torchvision ``resnet18``: 11,689,512 parameters, 1.8 G MACs at 224×224.

    ``cifar=True``: 3×3 stride-1 stem, no max-pool (11,173,962 parameters with 10 classes).
    ``dropout`` (default 0, as torchvision) acts before the classifier.
    """
    return imagenet_resnet(
        BasicBlock, RESNET18_STAGES, "resnet18", num_classes, cifar, width_mult, dropout, pretrained
    )


@register_model
def resnet50(
    num_classes: int = 1000,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float = 0.0,
    pretrained: bool = False,
) -> ResNet:
    """ResNet-50 = torchvision ``resnet50``: 25,557,032 parameters, 4.1 G MACs at 224×224.

    ``cifar=True``: 3×3 stride-1 stem, no max-pool (23,520,842 parameters with 10 classes).
    ``dropout`` (default 0, as torchvision) acts before the classifier.
    """
    return imagenet_resnet(
        Bottleneck, RESNET50_STAGES, "resnet50", num_classes, cifar, width_mult, dropout, pretrained
    )


def imagenet_resnet(
    block: type[BasicBlock | Bottleneck],
    stages: tuple[Stage, ...],
    reference: str,
    num_classes: int,
    cifar: bool,
    width_mult: float,
    dropout: float,
    pretrained: bool,
) -> ResNet:
    """ResNet-18/50 with option-B shortcuts; ``reference`` is the torchvision name."""
    return build_model(
        ResNet,
        block,
        stages,
        reference=Reference("torchvision", reference),
        pretrained=pretrained,
        num_classes=num_classes,
        cifar=cifar,
        width_mult=width_mult,
        dropout=dropout,
    )


def cifar_resnet(
    stages: tuple[Stage, ...],
    name: str,
    num_classes: int,
    width_mult: float,
    dropout: float,
    pretrained: bool,
    *,
    use_residual: bool = True,
) -> ResNet:
    """A CIFAR ResNet of §4.2: basic blocks, 3×3 stride-1 stem, option-A shortcuts.

    ``use_residual=False``: the plain network of the same depth (same layers, no additions).
    """
    if pretrained:
        raise ValueError(
            f"no pretrained weights exist for {name}: neither torchvision nor timm has the "
            "paper's CIFAR networks; train it (or use pretrained=False)"
        )
    return ResNet(
        BasicBlock,
        stages,
        num_classes,
        cifar=True,
        shortcut="zero_pad",
        use_residual=use_residual,
        width_mult=width_mult,
        dropout=dropout,
    )


@register_model
def resnet20(
    num_classes: int = 10,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float = 0.0,
    pretrained: bool = False,
) -> ResNet:
    """The CIFAR ResNet-20 of the paper (§4.2): 269,722 parameters with 10 classes (paper 0.27 M).

    Basic blocks, a 3×3 stride-1 stem and option-A shortcuts. The network is designed for 32×32
    inputs, so ``cifar`` changes nothing: ``cifar=False`` and ``cifar=True`` build the same model
    (total stride 4, last map 8×8 at 32×32). No pretrained weights exist (neither torchvision
    nor timm has the paper's CIFAR ResNets).
    """
    del cifar  # CIFAR-native: the same network either way
    return cifar_resnet(RESNET20_STAGES, "resnet20", num_classes, width_mult, dropout, pretrained)


@register_model
def resnet56(
    num_classes: int = 10,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float = 0.0,
    pretrained: bool = False,
) -> ResNet:
    """The CIFAR ResNet-56 of the paper (§4.2): 853,018 parameters with 10 classes (paper 0.85 M).

    CIFAR-native like :func:`resnet20`: ``cifar=False`` and ``cifar=True`` build the same model.
    """
    del cifar  # CIFAR-native: the same network either way
    return cifar_resnet(RESNET56_STAGES, "resnet56", num_classes, width_mult, dropout, pretrained)


@register_model
def plain20(
    num_classes: int = 10,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float = 0.0,
    pretrained: bool = False,
) -> ResNet:
    """The paper's plain-20 (§4.2, Fig. 6): ResNet-20 without its additions, 269,722 parameters.

    The baseline of the degradation experiment: every layer of :func:`resnet20`, the same
    parameters (option-A shortcuts have none), only the shortcuts removed. CIFAR-native.
    """
    del cifar  # CIFAR-native: the same network either way
    return cifar_resnet(
        RESNET20_STAGES, "plain20", num_classes, width_mult, dropout, pretrained, use_residual=False
    )


@register_model
def plain56(
    num_classes: int = 10,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float = 0.0,
    pretrained: bool = False,
) -> ResNet:
    """The paper's plain-56 (§4.2, Fig. 6): ResNet-56 without its additions, 853,018 parameters."""
    del cifar  # CIFAR-native: the same network either way
    return cifar_resnet(
        RESNET56_STAGES, "plain56", num_classes, width_mult, dropout, pretrained, use_residual=False
    )
