"""MobileNetV3-Large/-Small against torchvision: same parameters, same outputs, same layout."""

from __future__ import annotations

import pytest
import torch
import torchvision
from model_helpers import image_batch, randomize_
from torch import nn

from mnlib.blocks import InvertedResidualV3, SqueezeExcite
from mnlib.models import create_model, load_reference_weights
from mnlib.profile import count_params

NAMES = ["mobilenet_v3_large", "mobilenet_v3_small"]
# Measured on torchvision 0.29.1's models (the CIFAR ones with the stride changes below).
PARAMS_IMAGENET = {"mobilenet_v3_large": 5_483_032, "mobilenet_v3_small": 2_542_856}
PARAMS_CIFAR10 = {"mobilenet_v3_large": 4_214_842, "mobilenet_v3_small": 1_528_106}
# make_divisible(expanded // 4, 8) for every block with SE, in order (paper §5.3, torchvision).
SE_SQUEEZE_WIDTHS = {
    "mobilenet_v3_large": [24, 32, 32, 120, 168, 168, 240, 240],
    "mobilenet_v3_small": [8, 24, 64, 64, 32, 40, 72, 144, 144],
}
# torchvision's (features index, block layer) of the first stride-2 depthwise conv: the one
# whose stride becomes 1 for CIFAR (with the stem's).
CIFAR_UNSTRIDED_DEPTHWISE = {"mobilenet_v3_large": (2, 1), "mobilenet_v3_small": (1, 0)}


def blocks(model: nn.Module) -> list[nn.Module]:
    return [block for stage in model.stages for block in stage]


@pytest.fixture(scope="module", params=NAMES)
def pair(request) -> tuple[str, nn.Module, nn.Module]:
    """(name, own model with the reference's weights, randomized torchvision reference)."""
    name = request.param
    reference = randomize_(torchvision.models.get_model(name), image_batch(3, 64), seed=0)
    model = load_reference_weights(create_model(name), reference).eval()
    return name, model, reference


@pytest.fixture(scope="module", params=NAMES)
def cifar_pair(request) -> tuple[str, nn.Module, nn.Module]:
    """(name, own 10-class CIFAR model, torchvision 10-class model with the same strides)."""
    name = request.param
    reference = torchvision.models.get_model(name, num_classes=10)
    reference.features[0][0].stride = (1, 1)
    block, layer = CIFAR_UNSTRIDED_DEPTHWISE[name]
    unstrided = reference.features[block]
    unstrided.block[layer][0].stride = (1, 1)
    # torchvision decides the residual when it builds a block: a stride-1 block whose width
    # does not change has one (Small's first bottleneck, 16 → 16).
    unstrided.use_res_connect = unstrided.block[0][0].in_channels == unstrided.out_channels
    return name, create_model(name, num_classes=10, cifar=True), reference


def test_parameter_count_matches_torchvision(pair):
    name, model, reference = pair
    assert count_params(model) == count_params(reference) == PARAMS_IMAGENET[name]


def test_eval_outputs_match_torchvision(pair):
    _, model, reference = pair
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))


def test_squeeze_widths(pair):
    name, model, reference = pair
    own = [m.squeeze_channels for m in model.modules() if isinstance(m, SqueezeExcite)]
    torchvision_widths = [
        m.fc1.out_channels
        for m in reference.modules()
        if isinstance(m, torchvision.ops.SqueezeExcitation)
    ]
    assert own == torchvision_widths == SE_SQUEEZE_WIDTHS[name]


def test_block_structure_matches_torchvision(pair):
    _, model, reference = pair
    own = [block.use_residual for block in blocks(model)]
    theirs = [layer.use_res_connect for layer in reference.features[1:-1]]
    assert own == theirs
    assert all(isinstance(block, InvertedResidualV3) for block in blocks(model))


def test_cifar_layout_is_torchvision_with_two_strides_changed(cifar_pair):
    name, model, reference = cifar_pair
    assert count_params(model) == count_params(reference) == PARAMS_CIFAR10[name]
    load_reference_weights(model, randomize_(reference, image_batch(3, 32), seed=2))
    model.eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))
        assert model.last_conv(model.stages(model.stem(x))).shape[-2:] == (4, 4)


def test_cifar_forward_backward(cifar_pair):
    _, model, _ = cifar_pair
    model.train()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    logits = model(x)
    assert logits.shape == (2, 10)
    nn.functional.cross_entropy(logits, torch.tensor([0, 9])).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.zero_grad(set_to_none=True)


def test_wrong_state_dict_lists_the_keys(pair):
    _, model, reference = pair
    state = dict(reference.state_dict())
    state.pop("features.1.block.0.0.weight")
    state["features.99.weight"] = torch.zeros(1)
    state["classifier.3.bias"] = torch.zeros(10)
    with pytest.raises(ValueError, match="cannot load reference weights") as error:
        load_reference_weights(model, state)
    message = str(error.value)
    assert "features.1.block.0.0.weight" in message
    assert "features.99.weight" in message
    assert "classifier.3.bias" in message


@pytest.mark.parametrize("size", [(16, 224), (224, 31)])
def test_both_sides_must_reach_the_total_stride(pair, size):
    _, model, _ = pair
    with pytest.raises(ValueError, match=f"at least 32×32; got {size[0]}×{size[1]}"):
        model(torch.zeros(2, 3, *size))


def test_cifar_layout_accepts_8x8_but_not_smaller(cifar_pair):
    _, model, _ = cifar_pair
    model.eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 8, 8)).shape == (2, 10)
        with pytest.raises(ValueError, match="8×8"):
            model(torch.zeros(2, 3, 4, 8))


@pytest.mark.parametrize("width_mult", [0.5, 0.75])
def test_width_mult_matches_torchvision(width_mult):
    model = create_model("mobilenet_v3_small", width_mult=width_mult)
    reference = torchvision.models.mobilenet_v3_small(width_mult=width_mult)
    assert count_params(model) == count_params(reference)
    load_reference_weights(model, reference)


@pytest.mark.parametrize("name", NAMES)
def test_pretrained_loads_torchvision_weights(name, monkeypatch):
    """pretrained=True asks load_pretrained for the torchvision model of the same name."""
    calls = []
    monkeypatch.setattr(
        "mnlib.models.weights.load_pretrained",
        lambda model, library, reference: calls.append((library, reference)),
    )
    create_model(name, pretrained=True)
    assert calls == [("torchvision", name)]
