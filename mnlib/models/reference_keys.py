"""Where each weight of a course model lives in its reference implementation (torchvision, timm).

The model files show the architecture only; this module holds the bookkeeping needed to load
the references' weights. :func:`reference_key_map` gives, for every state-dict key of a course
model, the reference's key. Inside a module the parameter and buffer names (``weight``,
``running_mean``, …) are the same on both sides, so each map is written module by module and
expanded to keys by :func:`expand_module_map`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import nn

from mnlib.blocks import (
    Bottleneck,
    ConvBNAct,
    FusedInvertedBottleneck,
    MobileMQA,
    UniversalInvertedBottleneck,
)


def expand_module_map(model: nn.Module, modules: Mapping[str, str]) -> dict[str, str]:
    """Turn an own-module → reference-module map into the full state-dict key map.

    ``{"stem.conv": "features.0.0"}`` maps ``stem.conv.weight`` to ``features.0.0.weight``.
    Keys of modules missing from ``modules`` are left out, and ``load_reference_weights``
    reports them.
    """
    key_map = {}
    for key in model.state_dict():
        module, name = key.rsplit(".", 1)
        if module in modules:
            key_map[key] = f"{modules[module]}.{name}"
    return key_map


def numbered_conv_bn(own: str, reference: str) -> dict[str, str]:
    """Module map of a :class:`~mnlib.blocks.conv.ConvBNAct` onto a numbered conv-BN Sequential.

    torchvision numbers the layers of its ``Conv2dNormActivation`` and of ResNet's
    ``downsample``: ``0`` is the conv, ``1`` the BatchNorm. ``numbered_conv_bn("stem",
    "features.0")`` is ``{"stem.conv": "features.0.0", "stem.bn": "features.0.1"}``.
    """
    return {f"{own}.conv": f"{reference}.0", f"{own}.bn": f"{reference}.1"}


def blocks_of(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``("stages.s.b", block)`` for every block of ``model.stages``, in order."""
    return [
        (f"stages.{s}.{b}", block)
        for s, stage in enumerate(model.stages)
        for b, block in enumerate(stage)
    ]


def resnet_modules(model: nn.Module) -> dict[str, str]:
    """torchvision ResNet: ``conv1``, ``bn1``, ``layer{s+1}.{b}.conv1``…, ``downsample``, ``fc``."""
    modules = {"stem.conv": "conv1", "stem.bn": "bn1", "classifier": "fc"}
    for s, stage in enumerate(model.stages):
        for b, block in enumerate(stage):
            ours, theirs = f"stages.{s}.{b}", f"layer{s + 1}.{b}"
            convs = 3 if isinstance(block, Bottleneck) else 2
            for i in range(1, convs + 1):
                modules[f"{ours}.conv{i}.conv"] = f"{theirs}.conv{i}"
                modules[f"{ours}.conv{i}.bn"] = f"{theirs}.bn{i}"
            if isinstance(block.shortcut, ConvBNAct):  # option B = torchvision's downsample
                modules.update(numbered_conv_bn(f"{ours}.shortcut", f"{theirs}.downsample"))
    return modules


def mobilenet_v1_modules(model: nn.Module) -> dict[str, str]:
    """timm ``mobilenetv1_100``: ``conv_stem``/``bn1``, then ``blocks.{s}.{b}`` with
    ``conv_dw``, ``bn1``, ``conv_pw``, ``bn2`` (grouped in stages as ours)."""
    modules = {"stem.conv": "conv_stem", "stem.bn": "bn1", "classifier": "classifier"}
    for ours, _ in blocks_of(model):
        theirs = ours.replace("stages", "blocks")
        modules[f"{ours}.depthwise.conv"] = f"{theirs}.conv_dw"
        modules[f"{ours}.depthwise.bn"] = f"{theirs}.bn1"
        modules[f"{ours}.pointwise.conv"] = f"{theirs}.conv_pw"
        modules[f"{ours}.pointwise.bn"] = f"{theirs}.bn2"
    return modules


def mobilenet_v2_modules(model: nn.Module) -> dict[str, str]:
    """torchvision ``mobilenet_v2``: one flat ``features`` list.

    ``features.0`` is the stem, ``features.1`` to ``features.17`` the blocks, ``features.18``
    the last 1×1 conv. Inside a block, ``conv`` is a flat list too: [expand (absent when
    t = 1)], depthwise, project conv, project BN. ``classifier.0`` is the dropout.
    """
    modules = numbered_conv_bn("stem", "features.0")
    blocks = blocks_of(model)
    for index, (ours, block) in enumerate(blocks, start=1):
        theirs = f"features.{index}.conv"
        position = 0  # position in torchvision's `conv` list
        if isinstance(block.expand, ConvBNAct):
            modules.update(numbered_conv_bn(f"{ours}.expand", f"{theirs}.0"))
            position = 1
        modules.update(numbered_conv_bn(f"{ours}.depthwise", f"{theirs}.{position}"))
        modules[f"{ours}.project.conv"] = f"{theirs}.{position + 1}"
        modules[f"{ours}.project.bn"] = f"{theirs}.{position + 2}"
    modules.update(numbered_conv_bn("last_conv", f"features.{len(blocks) + 1}"))
    modules["classifier"] = "classifier.1"
    return modules


def mobilenet_v3_modules(model: nn.Module) -> dict[str, str]:
    """torchvision ``mobilenet_v3_*``: stem, bottlenecks and last conv in one ``features`` list.

    Inside a bottleneck's ``block`` only the layers that exist are numbered: ``block.0`` is
    the expand conv, or the depthwise conv when there is no expansion. The head is
    ``classifier.0`` and the classifier ``classifier.3`` (``1`` and ``2`` are h-swish and
    dropout).
    """
    blocks = blocks_of(model)
    modules = {
        **numbered_conv_bn("stem", "features.0"),
        **numbered_conv_bn("last_conv", f"features.{len(blocks) + 1}"),
        "head.fc": "classifier.0",
        "classifier": "classifier.3",
    }
    for index, (ours, block) in enumerate(blocks, start=1):
        theirs = f"features.{index}.block"
        present = [
            name
            for name in ("expand", "depthwise", "se", "project")
            if not isinstance(getattr(block, name), nn.Identity)
        ]
        for position, name in enumerate(present):
            if name == "se":
                modules[f"{ours}.se.fc1"] = f"{theirs}.{position}.fc1"
                modules[f"{ours}.se.fc2"] = f"{theirs}.{position}.fc2"
            else:
                modules.update(numbered_conv_bn(f"{ours}.{name}", f"{theirs}.{position}"))
    return modules


# MobileNetV4, inside one block: our module name → timm's module name.
TIMM_BLOCK_NAMES: dict[type[nn.Module], dict[str, str]] = {
    ConvBNAct: {"conv": "conv", "bn": "bn1"},  # timm ConvBnAct
    FusedInvertedBottleneck: {  # timm EdgeResidual
        "conv_exp.conv": "conv_exp",
        "conv_exp.bn": "bn1",
        "pw_proj.conv": "conv_pwl",
        "pw_proj.bn": "bn2",
    },
    UniversalInvertedBottleneck: {  # timm UniversalInvertedResidual: the same names
        "dw_start.conv": "dw_start.conv",
        "dw_start.bn": "dw_start.bn",
        "pw_exp.conv": "pw_exp.conv",
        "pw_exp.bn": "pw_exp.bn",
        "dw_mid.conv": "dw_mid.conv",
        "dw_mid.bn": "dw_mid.bn",
        "pw_proj.conv": "pw_proj.conv",
        "pw_proj.bn": "pw_proj.bn",
        "layer_scale": "layer_scale",
    },
    MobileMQA: {  # timm MobileAttention with a MultiQueryAttention2d called "attn"
        "norm": "norm",
        "query": "attn.query.proj",
        "key_down.conv": "attn.key.down_conv",
        "key_down.bn": "attn.key.norm",
        "key": "attn.key.proj",
        "value_down.conv": "attn.value.down_conv",
        "value_down.bn": "attn.value.norm",
        "value": "attn.value.proj",
        "output": "attn.output.proj",
        "layer_scale": "layer_scale",
    },
}


def mobilenet_v4_modules(model: nn.Module) -> dict[str, str]:
    """timm ``mobilenetv4_*``: ``conv_stem``/``bn1``, ``blocks.{s}.{b}`` (inside a block see
    :data:`TIMM_BLOCK_NAMES`) and the head ``conv_head``/``norm_head``."""
    modules = {
        "stem.conv": "conv_stem",
        "stem.bn": "bn1",
        "head.conv": "conv_head",
        "head.bn": "norm_head",
        "classifier": "classifier",
    }
    for ours, block in blocks_of(model):
        theirs = ours.replace("stages", "blocks")
        for own_name, timm_name in TIMM_BLOCK_NAMES[type(block)].items():
            modules[f"{ours}.{own_name}"] = f"{theirs}.{timm_name}"
    return modules


# Model class name → the function that maps its modules onto the reference's.
MODULE_MAPS: dict[str, Callable[[nn.Module], dict[str, str]]] = {
    "ResNet": resnet_modules,
    "MobileNetV1": mobilenet_v1_modules,
    "MobileNetV2": mobilenet_v2_modules,
    "MobileNetV3": mobilenet_v3_modules,
    "MobileNetV4": mobilenet_v4_modules,
}


def reference_key_map(model: nn.Module) -> dict[str, str]:
    """Own state-dict key → the reference implementation's key, for every key of ``model``."""
    name = type(model).__name__
    if name not in MODULE_MAPS:
        raise TypeError(f"{name} has no reference implementation to load from")
    return expand_module_map(model, MODULE_MAPS[name](model))
