"""The source roadmap's simplified MobileNetV2 and its recipe (chapter 7): layout, parameter
count, strides, and the optimizer the recipe builds."""

from dataclasses import replace

import pytest
import torch
from torch import nn

from mnlib.blocks.inverted_residual import InvertedResidual
from mnlib.models import create_model
from mnlib.models.mobilenet_v2 import MOBILENET_V2_STAGES, MobileNetV2
from mnlib.profile import count_params
from mnlib.train.recipes import (
    CIFAR_RECIPE,
    ROADMAP_RECIPE,
    Recipe,
    fit_scheduler,
    make_optimizer,
)

# The roadmap's blocks as its code lists them: (in, out, stride, expansion t).
ROADMAP_BLOCKS = [
    (32, 16, 1, 1), (16, 24, 2, 6), (24, 24, 1, 6), (24, 32, 2, 6),
    (32, 32, 1, 6), (32, 32, 1, 6), (32, 64, 2, 6), (64, 64, 1, 6), (64, 64, 1, 6),
    (64, 96, 1, 6), (96, 96, 1, 6), (96, 160, 2, 6), (160, 160, 1, 6), (160, 160, 1, 6),
    (160, 320, 1, 6),
]  # fmt: skip


def block_layout(model: MobileNetV2) -> list[tuple[int, int, int, int]]:
    """(in, out, stride, t) of every inverted residual, read from the built layers."""
    layout = []
    for block in (b for stage in model.stages for b in stage):
        depthwise, project = block.depthwise.conv, block.project.conv
        if isinstance(block.expand, nn.Identity):
            in_channels, expansion = depthwise.in_channels, 1
        else:
            in_channels = block.expand.conv.in_channels
            expansion = depthwise.in_channels // in_channels
        layout.append((in_channels, project.out_channels, depthwise.stride[0], expansion))
    return layout


def test_roadmap_network_has_the_roadmap_layout_and_2_06_m_parameters():
    model = create_model("roadmap_mobilenet_v2", num_classes=10)
    assert count_params(model) == 2_064_138
    assert block_layout(model) == ROADMAP_BLOCKS
    assert model.stem.conv.kernel_size == (3, 3) and model.stem.conv.stride == (1, 1)
    assert model.stem.conv.out_channels == 32
    assert model.last_conv.conv.out_channels == 1280
    assert model.dropout.p == 0.0 and model.classifier.out_features == 10
    assert all(isinstance(b, InvertedResidual) for stage in model.stages for b in stage)


def test_roadmap_network_ends_in_a_2x2_map_at_32_pixels():
    model = create_model("roadmap_mobilenet_v2").eval()  # 10 classes by default
    seen = []
    model.pool.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0].shape))
    with torch.no_grad():
        logits = model(torch.zeros(2, 3, 32, 32))
    assert logits.shape == (2, 10)
    assert seen == [torch.Size([2, 1280, 2, 2])]  # total stride 16
    assert model.min_size == 16
    with pytest.raises(ValueError, match=r"at least 16×16; got 8×8"):
        model(torch.zeros(1, 3, 8, 8))


def test_residuals_only_where_the_shape_is_kept():
    model = create_model("roadmap_mobilenet_v2")
    used = [b.use_residual for stage in model.stages for b in stage]
    expected = [stride == 1 and i == o for i, o, stride, _ in ROADMAP_BLOCKS]
    assert used == expected and sum(used) == 8


def test_roadmap_network_has_no_imagenet_variant_and_scales_with_width():
    with pytest.raises(ValueError, match="defined for 32×32 CIFAR images only"):
        create_model("roadmap_mobilenet_v2", cifar=False)
    half = create_model("roadmap_mobilenet_v2", width_mult=0.5)
    assert half.stem.conv.out_channels == 16
    assert count_params(half) < count_params(create_model("roadmap_mobilenet_v2")) / 2


def test_stage_table_and_stem_stride_arguments_of_mobilenet_v2():
    # The default table and stem are the paper's: unchanged by the new arguments.
    assert count_params(MobileNetV2(10, cifar=True)) == 2_236_682
    explicit = MobileNetV2(10, stages=MOBILENET_V2_STAGES, stem_stride=2)
    assert count_params(explicit) == count_params(MobileNetV2(10))
    assert MobileNetV2(10, stem_stride=1).min_size == 16
    with pytest.raises(ValueError, match="stem_stride must be 1 or 2, got 3"):
        MobileNetV2(10, stem_stride=3)
    with pytest.raises(ValueError, match="stages must be a non-empty sequence of Stage rows"):
        MobileNetV2(10, stages=())
    with pytest.raises(ValueError, match="stages must be a non-empty sequence of Stage rows"):
        MobileNetV2(10, stages=[(16, 1, 1, 1)])


def test_roadmap_recipe_is_the_roadmap_as_written():
    assert ROADMAP_RECIPE == Recipe(
        batch_size=128,
        epochs=30,
        lr=1e-3,
        weight_decay=1e-5,
        scheduler="constant",
        optimizer="adam",
        augment=False,
        label_smoothing=0.0,
        decay_all=True,
    )
    assert fit_scheduler(ROADMAP_RECIPE) is None
    assert fit_scheduler(CIFAR_RECIPE) == "onecycle"
    with pytest.raises(ValueError, match="unknown scheduler 'step'"):
        fit_scheduler(replace(CIFAR_RECIPE, scheduler="step"))


def test_roadmap_optimizer_is_adam_decaying_every_parameter():
    model = create_model("roadmap_mobilenet_v2")
    optimizer = make_optimizer(model, ROADMAP_RECIPE)
    assert type(optimizer) is torch.optim.Adam
    [group] = optimizer.param_groups
    assert group["lr"] == 1e-3 and group["weight_decay"] == 1e-5
    assert sum(p.numel() for p in group["params"]) == count_params(model)


def test_course_optimizer_still_decays_weights_only():
    model = create_model("roadmap_mobilenet_v2")
    optimizer = make_optimizer(model, CIFAR_RECIPE)
    decayed, not_decayed = optimizer.param_groups
    assert type(optimizer) is torch.optim.SGD
    assert decayed["weight_decay"] == 5e-4 and not_decayed["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decayed["params"])
    assert all(p.dim() == 1 for p in not_decayed["params"])


def test_adam_steps_like_torch_adam_with_l2_decay():
    """One step of the recipe's Adam equals torch's Adam(weight_decay=1e-5) on every tensor."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    reference = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    reference.load_state_dict(model.state_dict())
    ours = make_optimizer(model, ROADMAP_RECIPE)
    theirs = torch.optim.Adam(reference.parameters(), lr=1e-3, weight_decay=1e-5)
    batch = torch.randn(8, 4)
    for net, optimizer in ((model, ours), (reference, theirs)):
        net(batch).square().mean().backward()
        optimizer.step()
    for mine, expected in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine, expected, rtol=0, atol=0)
