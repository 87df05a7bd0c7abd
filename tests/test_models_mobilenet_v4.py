"""MobileNetV4 Conv-S/M/L and Hybrid-M/L against timm 1.0.31, weight for weight."""

from __future__ import annotations

import pytest
import timm
import torch
from model_helpers import features_and_logits, image_batch, randomize_
from timm.models._efficientnet_blocks import MobileAttention
from torch import nn

from mnlib.blocks import (
    FusedInvertedBottleneck,
    LayerScale,
    MobileMQA,
    UniversalInvertedBottleneck,
)
from mnlib.models import create_model, load_reference_weights, reference_key_map
from mnlib.models.reference_keys import TIMM_BLOCK_NAMES, expand_module_map
from mnlib.profile import count_params

# ours → (timm name, parameters at 1000 classes, parameters with cifar=True and 10 classes),
# measured on timm 1.0.31's models (the CIFAR ones with the same two strides changed).
MODELS = {
    "mobilenet_v4_conv_small": ("mobilenetv4_conv_small", 3_774_024, 2_505_834),
    "mobilenet_v4_conv_medium": ("mobilenetv4_conv_medium", 9_715_512, 8_447_322),
    "mobilenet_v4_conv_large": ("mobilenetv4_conv_large", 32_590_864, 31_322_674),
    "mobilenet_v4_hybrid_medium": ("mobilenetv4_hybrid_medium", 11_074_648, 9_806_458),
    "mobilenet_v4_hybrid_large": ("mobilenetv4_hybrid_large", 37_764_624, 36_496_434),
}


@pytest.fixture(scope="module", params=list(MODELS))
def pair(request):
    """(name, our model, timm model): timm randomized, its weights loaded into ours."""
    name = request.param
    torch.manual_seed(0)
    reference = timm.create_model(MODELS[name][0])
    randomize_(reference, image_batch(3, 64, seed=1), variance_boost=1.0)
    model = create_model(name).eval()
    load_reference_weights(model, reference)
    return name, model, reference


def test_parameter_count_equals_timm(pair):
    name, model, reference = pair
    assert count_params(model) == count_params(reference) == MODELS[name][1]


@pytest.mark.parametrize("size", [(224, 224), (97, 65)], ids=["224x224", "97x65"])
def test_outputs_equal_timm(pair, size):
    """Last feature map and logits; 97×65 gives odd, non-square maps (the hybrids' 14×14
    stage sees 7×5 with 4×3 keys/values). The feature map is compared too because global
    pooling of noise-like features makes the logits depend only weakly on early layers."""
    _, model, reference = pair
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(2))
    features, logits = features_and_logits(model, model.stages, x)
    reference_features, reference_logits = features_and_logits(reference, reference.blocks, x)
    torch.testing.assert_close(features, reference_features)
    torch.testing.assert_close(logits, reference_logits)


def test_cifar_layout(pair):
    """cifar=True: only the stem and the first block of stage 0 lose their stride."""
    name, imagenet_model, _ = pair
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, cifar=True)
    assert count_params(model) == MODELS[name][2]

    def shapes(m: nn.Module) -> dict[str, torch.Size]:
        return {k: v.shape for k, v in m.state_dict().items() if not k.startswith("classifier")}

    assert shapes(model) == shapes(imagenet_model)
    strides = {n: m.stride for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    imagenet = {n: m.stride for n, m in imagenet_model.named_modules() if isinstance(m, nn.Conv2d)}
    changed = sorted(n for n in strides if strides[n] != imagenet[n])
    first_conv = "stages.0.0.conv" if name.endswith("conv_small") else "stages.0.0.conv_exp.conv"
    assert changed == sorted(["stem.conv", first_conv])
    assert all(strides[n] == (1, 1) for n in changed)

    x = torch.randn(2, 3, 32, 32)
    features = model.stages(model.stem(x))
    assert features.shape[-2:] == (4, 4)
    logits = model.train()(x)
    assert logits.shape == (2, 10)
    logits.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_width_mult_matches_timm_conv_small_050():
    """width_mult=0.5 is timm's mobilenetv4_conv_small_050 (whose stem keeps 32 channels)."""
    torch.manual_seed(0)
    reference = timm.create_model("mobilenetv4_conv_small_050")
    x = torch.randn(2, 3, 64, 64)
    randomize_(reference, x, variance_boost=1.0)
    model = create_model("mobilenet_v4_conv_small", width_mult=0.5).eval()
    assert count_params(model) == count_params(reference) == 2_238_952
    load_reference_weights(model, reference)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))


def test_fresh_init_has_timm_scale():
    """Fresh weights have the spread of timm's init (TF-style convs, Xavier in attention)."""
    torch.manual_seed(0)
    model = create_model("mobilenet_v4_hybrid_medium")
    reference = timm.create_model("mobilenetv4_hybrid_medium")
    key_map = reference_key_map(model)
    timm_state = reference.state_dict()
    for key, value in model.state_dict().items():
        expected = timm_state[key_map[key]]
        if key.endswith("gamma"):
            assert torch.equal(value, expected)  # layer scale starts at 1e-5
        elif value.is_floating_point() and value.numel() >= 1000:  # enough for a stable std
            assert value.std().item() == pytest.approx(expected.std().item(), rel=0.1), key
            assert value.mean().item() == pytest.approx(
                expected.mean().item(), abs=0.1 * expected.std().item()
            ), key


# ---- blocks ----


@pytest.mark.parametrize(
    ("start", "middle", "kind"),
    [(3, 5, "ExtraDW"), (None, 3, "IB"), (5, None, "ConvNeXt"), (None, None, "FFN")],
)
def test_uib_instantiations(start, middle, kind):
    stride = 1 if kind == "FFN" else 2
    block = UniversalInvertedBottleneck(
        16, 24, start_kernel=start, middle_kernel=middle, expansion=4, stride=stride
    )
    assert block.kind == kind
    convs = {n: m for n, m in block.named_modules() if isinstance(m, nn.Conv2d)}
    # name → (kernel, groups, stride, activation after its BN)
    expected = {"pw_exp.conv": (1, 1, 1, nn.ReLU), "pw_proj.conv": (1, 1, 1, nn.Identity)}
    if start is not None:  # linear depthwise conv on the narrow input; strides only w/o middle
        expected["dw_start.conv"] = (start, 16, 1 if middle else stride, nn.Identity)
    if middle is not None:  # depthwise conv on the 64-wide hidden tensor carries the stride
        expected["dw_mid.conv"] = (middle, 64, stride, nn.ReLU)
    assert set(convs) == set(expected)
    for name, (kernel, groups, conv_stride, act) in expected.items():
        conv = convs[name]
        assert (conv.kernel_size, conv.groups, conv.stride) == (
            (kernel, kernel),
            groups,
            (conv_stride, conv_stride),
        )
        assert type(block.get_submodule(name.replace(".conv", ".act"))) is act
    assert block(torch.randn(2, 16, 16, 16)).shape == (2, 24, 16 // stride, 16 // stride)


def test_uib_residual_and_layer_scale():
    block = UniversalInvertedBottleneck(
        16, 16, start_kernel=3, middle_kernel=3, expansion=2, layer_scale_init=1e-5
    )
    assert isinstance(block.layer_scale, LayerScale)
    assert torch.equal(block.layer_scale.gamma, torch.full((16,), 1e-5))
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        gamma = torch.arange(16.0)
        block.layer_scale.gamma.copy_(gamma)  # γ scales channel c by c
        assert torch.equal(block.layer_scale(x), x * gamma.view(1, 16, 1, 1))
        block.layer_scale.gamma.zero_()  # a zero branch leaves exactly the residual
        assert torch.equal(block(x), x)


def test_uib_ffn_cannot_stride():
    with pytest.raises(ValueError, match="FFN"):
        UniversalInvertedBottleneck(
            16, 16, start_kernel=None, middle_kernel=None, expansion=2, stride=2
        )


def test_fused_ib_residual_when_the_shape_is_kept():
    block = FusedInvertedBottleneck(16, 16, kernel_size=3, expansion=2).eval()
    assert block.use_residual
    assert not FusedInvertedBottleneck(16, 16, expansion=2, stride=2).use_residual
    assert not FusedInvertedBottleneck(16, 24, expansion=2).use_residual
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        branch = block.pw_proj(block.conv_exp(x))
        torch.testing.assert_close(block(x), x + branch)
        block.pw_proj.bn.weight.zero_()
        block.pw_proj.bn.bias.zero_()  # a zero branch leaves exactly the input
        assert torch.equal(block(x), x)


def test_fused_ib_layers():
    block = FusedInvertedBottleneck(32, 48, kernel_size=3, expansion=4, stride=2)
    assert (block.conv_exp.conv.kernel_size, block.conv_exp.conv.groups) == ((3, 3), 1)
    assert block.conv_exp.conv.out_channels == 128 and block.conv_exp.conv.stride == (2, 2)
    assert isinstance(block.conv_exp.act, nn.ReLU) and isinstance(block.pw_proj.act, nn.Identity)
    assert block(torch.randn(2, 32, 16, 16)).shape == (2, 48, 8, 8)


@pytest.mark.parametrize("size", [14, 7])
def test_mqa_equals_timm_mobile_attention(size):
    """Hybrid-M's 14×14-stage MQA (kv stride 2): 14×14 → 7×7 and 7×7 → 4×4 keys/values."""
    torch.manual_seed(0)
    reference = MobileAttention(
        160, 160, num_heads=4, key_dim=64, value_dim=64, use_multi_query=True, kv_stride=2
    )
    x = torch.randn(2, 160, size, size, generator=torch.Generator().manual_seed(1))
    randomize_(reference, x, variance_boost=1.0)
    block = MobileMQA(160, num_heads=4, head_dim=64, kv_stride=2, layer_scale_init=1e-5).eval()
    # One query projection per head, but a single key head and a single value head.
    assert block.query.out_channels == 4 * 64
    assert block.key.out_channels == block.value.out_channels == 64
    assert block.key_down.conv.groups == 160 and block.key_down.conv.stride == (2, 2)
    timm_state = reference.state_dict()
    key_map = expand_module_map(block, TIMM_BLOCK_NAMES[MobileMQA])
    assert sorted(key_map.values()) == sorted(timm_state)
    block.load_state_dict({key: timm_state[timm_key] for key, timm_key in key_map.items()})
    with torch.no_grad():
        torch.testing.assert_close(block(x), reference(x))


# ---- errors ----


def test_wrong_state_dict_raises():
    model = create_model("mobilenet_v4_conv_small")
    state = timm.create_model("mobilenetv4_conv_small").state_dict()
    del state["blocks.2.0.dw_start.conv.weight"]
    with pytest.raises(ValueError, match="dw_start"):
        load_reference_weights(model, state)
    with pytest.raises(ValueError, match="shape mismatch"):
        load_reference_weights(model, timm.create_model("mobilenetv4_conv_small_050"))
