"""ResNet-18/50/20/56 and MobileNetV1/V2 against their torchvision/timm references."""

from __future__ import annotations

import socket

import huggingface_hub.constants
import pytest
import timm
import torch
import torchvision
from torch import nn

from mnlib.blocks import InvertedResidual, ZeroPadShortcut
from mnlib.models import build_reference, create_model, load_reference_weights

# name → (reference library, reference name)
REFERENCES = {
    "resnet18": ("torchvision", "resnet18"),
    "resnet50": ("torchvision", "resnet50"),
    "mobilenet_v1": ("timm", "mobilenetv1_100"),
    "mobilenet_v2": ("torchvision", "mobilenet_v2"),
}
# Parameter counts with 10 classes and cifar=True (architectures.md §10).
CIFAR_PARAMS = {
    "resnet18": 11_173_962,
    "resnet50": 23_520_842,
    "mobilenet_v1": 3_217_226,
    "mobilenet_v2": 2_236_682,
}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def randomize_batchnorm(model: nn.Module, seed: int) -> None:
    """Give every BatchNorm random but realistic parameters and statistics (seeded).

    Purely random running statistics would not match the scale of the activations, and the
    output of a deep network would then hardly depend on its input. So: random γ and β, then
    statistics measured on a random batch, then randomly perturbed.
    """
    generator = torch.Generator().manual_seed(seed)
    batchnorms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [bn.momentum for bn in batchnorms]
    with torch.no_grad():
        for bn in batchnorms:
            bn.weight.copy_(0.5 + torch.rand(bn.num_features, generator=generator))
            bn.bias.copy_(0.1 * torch.randn(bn.num_features, generator=generator))
            bn.reset_running_stats()
            bn.momentum = None  # running statistics = the batch's statistics
        model.train()(torch.randn(2, 3, 112, 112, generator=generator))
        model.eval()
        for bn, momentum in zip(batchnorms, momenta, strict=True):
            noise = torch.randn(bn.num_features, generator=generator)
            bn.running_mean.add_(0.1 * bn.running_var.sqrt() * noise)
            bn.running_var.mul_(0.5 + torch.rand(bn.num_features, generator=generator))
            bn.momentum = momentum


@pytest.fixture(scope="module", params=list(REFERENCES))
def pair(request):
    """(name, our model, reference) with the reference's (randomized) weights loaded into ours."""
    name = request.param
    library, reference_name = REFERENCES[name]
    torch.manual_seed(0)
    model = create_model(name).eval()
    reference = build_reference(library, reference_name).eval()
    randomize_batchnorm(reference, seed=1)
    load_reference_weights(model, reference)
    return name, model, reference


def test_parameter_count_matches_reference(pair):
    _, model, reference = pair
    assert count_parameters(model) == count_parameters(reference)


def test_eval_outputs_match_reference(pair):
    _, model, reference = pair
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    assert ours.shape == (2, 1000)
    # The two images give clearly different outputs: the comparison tests the whole network.
    assert (theirs[0] - theirs[1]).abs().max() > 0.05 * theirs.abs().max()
    torch.testing.assert_close(ours, theirs)


def test_wrong_state_dict_is_rejected_and_model_unchanged(pair):
    _, model, reference = pair
    key_map = model.reference_key_map()
    removed, reshaped = key_map["stem.conv.weight"], key_map["classifier.weight"]
    state = dict(reference.state_dict())
    del state[removed]
    state[reshaped] = torch.zeros(5, state[reshaped].shape[1])
    before = model.classifier.weight.clone()
    with pytest.raises(ValueError, match="missing") as error:
        load_reference_weights(model, state)
    assert removed in str(error.value) and reshaped in str(error.value)
    assert "shape mismatch" in str(error.value)
    torch.testing.assert_close(model.classifier.weight, before, rtol=0, atol=0)


def test_bad_input_is_rejected(pair):
    _, model, _ = pair
    with pytest.raises(ValueError, match="expects 3 input channels; got 1"):
        model(torch.zeros(2, 1, 224, 224))
    with pytest.raises(ValueError, match="at least 32×32; got 16×16"):
        model(torch.zeros(2, 3, 16, 16))


@pytest.mark.parametrize("name", list(REFERENCES))
def test_cifar_layout_trains_at_32x32(name):
    model = create_model(name, num_classes=10, cifar=True).train()
    assert count_parameters(model) == CIFAR_PARAMS[name]
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    logits = model(images)
    assert logits.shape == (2, 10)
    nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize(
    ("name", "cifar", "min_size"),
    [
        ("resnet18", True, 8),
        ("mobilenet_v1", True, 16),
        ("mobilenet_v2", True, 8),
        ("resnet20", False, 4),
        ("mobilenet_v2", False, 32),
    ],
)
def test_smallest_input_is_the_total_stride(name, cifar, min_size):
    model = create_model(name, num_classes=10, cifar=cifar).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, min_size, min_size)).shape == (1, 10)
    with pytest.raises(ValueError, match=f"at least {min_size}×{min_size}"):
        model(torch.zeros(1, 3, min_size - 1, min_size))


@pytest.mark.parametrize(("name", "params"), [("resnet20", 269_722), ("resnet56", 853_018)])
def test_cifar_resnets_of_the_paper(name, params):
    model = create_model(name)
    assert count_parameters(model) == params
    # CIFAR-native: cifar=True builds the same network.
    assert count_parameters(create_model(name, cifar=True)) == params
    # Option A: the two stride-2 stages start with a parameter-free zero-padding shortcut.
    shortcuts = [stage[0].shortcut for stage in model.stages]
    assert [type(s).__name__ for s in shortcuts] == [
        "Identity",
        "ZeroPadShortcut",
        "ZeroPadShortcut",
    ]
    model.eval()
    with torch.no_grad():
        assert model.stages(model.stem(torch.zeros(2, 3, 32, 32))).shape == (2, 64, 8, 8)
    with pytest.raises(ValueError, match="no pretrained weights"):
        create_model(name, pretrained=True)


def test_zero_pad_shortcut_subsamples_and_pads():
    x = torch.randn(2, 16, 9, 9)
    out = ZeroPadShortcut(16, 32, stride=2)(x)
    assert out.shape == (2, 32, 5, 5)
    torch.testing.assert_close(out[:, :16], x[:, :, ::2, ::2], rtol=0, atol=0)
    assert not out[:, 16:].any()


def test_inverted_residual_shortcut_and_expansion():
    assert InvertedResidual(16, 16, 1, expand_ratio=6).use_shortcut
    assert not InvertedResidual(16, 24, 1, expand_ratio=6).use_shortcut
    assert not InvertedResidual(16, 16, 2, expand_ratio=6).use_shortcut
    assert isinstance(InvertedResidual(32, 16, 1, expand_ratio=1).expand, nn.Identity)


@pytest.mark.parametrize(
    ("name", "width_mult", "reference"),
    [
        ("mobilenet_v1", 1.25, lambda: timm.create_model("mobilenetv1_125")),
        ("mobilenet_v2", 0.5, lambda: torchvision.models.mobilenet_v2(width_mult=0.5)),
        ("mobilenet_v2", 1.4, lambda: torchvision.models.mobilenet_v2(width_mult=1.4)),
    ],
)
def test_width_mult_rounds_like_the_reference(name, width_mult, reference):
    # Loading succeeds only if every key and shape agrees.
    load_reference_weights(create_model(name, width_mult=width_mult), reference())


def test_resnet_width_mult_scales_stage_widths():
    model = create_model("resnet20", width_mult=2.0)
    assert [stage[-1].conv2.conv.out_channels for stage in model.stages] == [32, 64, 128]


@pytest.mark.parametrize(
    ("name", "default"), [("resnet20", 0.0), ("mobilenet_v1", 0.0), ("mobilenet_v2", 0.2)]
)
def test_dropout_default_and_validation(name, default):
    assert create_model(name, num_classes=10).dropout.p == default
    assert create_model(name, num_classes=10, dropout=0.5).dropout.p == 0.5
    with pytest.raises(ValueError, match="dropout"):
        create_model(name, num_classes=10, dropout=1.0)
    with pytest.raises(ValueError, match="width_mult"):
        create_model(name, num_classes=10, width_mult=5.0)


@pytest.fixture
def no_internet(monkeypatch, tmp_path):
    """Simulate a machine without internet and with empty weight caches.

    Name lookups fail at once (no hanging on a slow network), torchvision's cache is an empty
    folder, and the Hugging Face hub (timm's weights) is in offline mode, which skips its retries.
    """

    def refuse(*args, **kwargs):
        raise socket.gaierror("no internet (simulated by the test)")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))


@pytest.mark.parametrize("name", list(REFERENCES))
def test_pretrained_offline_is_a_clear_error(name, no_internet):
    with pytest.raises(RuntimeError, match="needs the internet"):
        create_model(name, pretrained=True)


@pytest.mark.parametrize("name", list(REFERENCES))
@pytest.mark.parametrize(
    "kwargs", [{"num_classes": 10}, {"cifar": True}, {"width_mult": 0.5}], ids=str
)
def test_pretrained_needs_the_imagenet_layout(name, kwargs):
    # Checked before anything is built or downloaded.
    with pytest.raises(ValueError, match="exist only for num_classes=1000, cifar=False"):
        create_model(name, pretrained=True, **kwargs)
