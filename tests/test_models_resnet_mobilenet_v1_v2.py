"""ResNet-18/50/20/56 and MobileNetV1/V2 against their torchvision/timm references."""

from __future__ import annotations

import socket
import threading
import time

import huggingface_hub.constants
import pytest
import safetensors.torch
import timm
import torch
import torchvision
from model_helpers import features_and_logits, image_batch, randomize_
from torch import nn

from mnlib.blocks import InvertedResidual, ZeroPadShortcut
from mnlib.models import build_reference, create_model, load_reference_weights, reference_key_map
from mnlib.models import weights as weights_module
from mnlib.profile import count_params

# name → (reference library, reference name)
REFERENCES = {
    "resnet18": ("torchvision", "resnet18"),
    "resnet50": ("torchvision", "resnet50"),
    "mobilenet_v1": ("timm", "mobilenetv1_100"),
    "mobilenet_v2": ("torchvision", "mobilenet_v2"),
}
# Parameter counts with 10 classes and cifar=True, measured on the references with the same
# stride changes.
CIFAR_PARAMS = {
    "resnet18": 11_173_962,
    "resnet50": 23_520_842,
    "mobilenet_v1": 3_217_226,
    "mobilenet_v2": 2_236_682,
}


@pytest.fixture(scope="module", params=list(REFERENCES))
def pair(request):
    """(name, our model, reference) with the reference's (randomized) weights loaded into ours."""
    name = request.param
    library, reference_name = REFERENCES[name]
    torch.manual_seed(0)
    model = create_model(name).eval()
    reference = build_reference(library, reference_name).eval()
    randomize_(reference, image_batch(3, 64), seed=1)
    load_reference_weights(model, reference)
    return name, model, reference


def test_parameter_count_matches_reference(pair):
    _, model, reference = pair
    assert count_params(model) == count_params(reference)


# name → (our last feature map, the reference's): compared besides the logits because global
# pooling of noise-like features makes the logits depend only weakly on the input.
LAST_FEATURES = {
    "resnet18": ("stages", "layer4"),
    "resnet50": ("stages", "layer4"),
    "mobilenet_v1": ("stages", "blocks"),
    "mobilenet_v2": ("last_conv", "features"),
}


def test_eval_outputs_match_reference(pair):
    name, model, reference = pair
    ours_body, their_body = LAST_FEATURES[name]
    x = image_batch(3, 224, seed=2)
    features, logits = features_and_logits(model, model.get_submodule(ours_body), x)
    reference_features, reference_logits = features_and_logits(
        reference, reference.get_submodule(their_body), x
    )
    assert logits.shape == (2, 1000)
    # The two images give clearly different features: the comparison tests the whole network.
    difference = (reference_features[0] - reference_features[1]).abs().max()
    assert difference > 0.05 * reference_features.abs().max()
    torch.testing.assert_close(features, reference_features)
    torch.testing.assert_close(logits, reference_logits)


def test_wrong_state_dict_is_rejected_and_model_unchanged(pair):
    _, model, reference = pair
    key_map = reference_key_map(model)
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


@pytest.mark.parametrize("name", list(REFERENCES))
def test_cifar_layout_trains_at_32x32(name):
    model = create_model(name, num_classes=10, cifar=True).train()
    assert count_params(model) == CIFAR_PARAMS[name]
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
    assert count_params(model) == params
    # CIFAR-native: cifar=True builds the same network.
    assert count_params(create_model(name, cifar=True)) == params
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


@pytest.mark.parametrize(("plain", "residual"), [("plain20", "resnet20"), ("plain56", "resnet56")])
def test_plain_networks_are_the_resnets_without_additions(plain, residual):
    plain_model, residual_model = create_model(plain).eval(), create_model(residual).eval()
    # The same layers and parameters: a ResNet's weights load into its plain twin, key for key.
    plain_model.load_state_dict(residual_model.state_dict(), strict=True)
    assert count_params(plain_model) == count_params(residual_model)
    blocks = [block for stage in plain_model.stages for block in stage]
    assert not any(block.use_residual or hasattr(block, "shortcut") for block in blocks)
    # Each block computes ReLU(BN(conv2(ReLU(BN(conv1(x)))))): nothing is added.
    x = torch.randn(2, 16, 32, 32)
    block = blocks[0]
    torch.testing.assert_close(block(x), torch.relu(block.conv2(block.conv1(x))))
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(plain_model(images), residual_model(images))
    with pytest.raises(ValueError, match="no pretrained weights exist for plain"):
        create_model(plain, pretrained=True)


def test_zero_pad_shortcut_subsamples_and_pads():
    x = torch.randn(2, 16, 9, 9)
    out = ZeroPadShortcut(16, 32, stride=2)(x)
    assert out.shape == (2, 32, 5, 5)
    torch.testing.assert_close(out[:, :16], x[:, :, ::2, ::2], rtol=0, atol=0)
    assert not out[:, 16:].any()


def test_inverted_residual_shortcut_and_expansion():
    assert InvertedResidual(16, 16, stride=1, expand_ratio=6).use_residual
    assert not InvertedResidual(16, 24, stride=1, expand_ratio=6).use_residual
    assert not InvertedResidual(16, 16, stride=2, expand_ratio=6).use_residual
    assert isinstance(InvertedResidual(32, 16, stride=1, expand_ratio=1).expand, nn.Identity)


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


@pytest.fixture
def hanging_network(monkeypatch, tmp_path):
    """A network where connections hang (as behind a dead proxy), and empty weight caches."""
    release = threading.Event()

    def hang(*args, **kwargs):
        release.wait(30)
        raise OSError("no route (simulated by the test)")

    monkeypatch.setattr(socket, "create_connection", hang)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    yield
    release.set()


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2"])
def test_pretrained_without_network_fails_fast(name, hanging_network):
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match=r"cannot reach .*needs the internet"):
        create_model(name, pretrained=True)
    assert time.perf_counter() - start < 2.0


def fake_cached_file(tmp_path, name: str) -> str:
    """Where ``load_pretrained`` looks for the cached weights of ``name``, in ``tmp_path``."""
    if name == "mobilenet_v1":  # timm: a Hugging Face hub cache entry
        repo = timm.models.get_pretrained_cfg("mobilenetv1_100").hf_hub_id
        entry = tmp_path / "hf" / f"models--{repo.replace('/', '--')}"
        revision = "0" * 40
        (entry / "refs").mkdir(parents=True)
        (entry / "refs" / "main").write_text(revision)
        path = entry / "snapshots" / revision / "model.safetensors"
    else:  # torchvision: torch.hub's checkpoint folder
        url = torchvision.models.get_model_weights(name).DEFAULT.url
        path = tmp_path / "torch" / "hub" / "checkpoints" / url.rsplit("/", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2"])
def test_corrupt_cached_weights_are_named(name, hanging_network, tmp_path):
    path = fake_cached_file(tmp_path, name)
    with open(path, "wb") as file:
        file.write(b"not a weights file")
    with pytest.raises(RuntimeError, match="is corrupt") as error:
        create_model(name, pretrained=True)
    assert path in str(error.value) and "Delete that file" in str(error.value)


def test_cached_timm_weights_load_offline(hanging_network, tmp_path):
    """Weights in the hub cache load without touching the network."""
    reference = randomize_(timm.create_model("mobilenetv1_100"), image_batch(3, 64))
    safetensors.torch.save_file(reference.state_dict(), fake_cached_file(tmp_path, "mobilenet_v1"))
    model = create_model("mobilenet_v1", pretrained=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(image_batch(3, 64)), reference(image_batch(3, 64)))


def test_network_check_reports_an_unreachable_host(monkeypatch):
    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("refused (simulated by the test)")

    monkeypatch.setattr(socket, "create_connection", refuse)
    assert not weights_module.host_reachable("huggingface.co")
