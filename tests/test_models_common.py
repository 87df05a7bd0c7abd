"""Behaviour every image model of the course shares, checked on its CIFAR variant at 32×32.

Each model is built once (10 classes, ``cifar=True``) and cached for the whole module; tests
that change a model (training step, memory format) work on a copy.
"""

from __future__ import annotations

import copy
import functools
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mnlib.models import create_model, list_models

MNIST_MODELS = ("mlp", "cnn")
COURSE_IMAGE_MODELS = (
    "resnet18",
    "resnet50",
    "resnet20",
    "resnet56",
    "mobilenet_v1",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "mobilenet_v4_conv_small",
    "mobilenet_v4_conv_medium",
    "mobilenet_v4_conv_large",
    "mobilenet_v4_hybrid_medium",
    "mobilenet_v4_hybrid_large",
)
IMAGE_MODELS = [name for name in list_models() if name not in MNIST_MODELS]


@functools.cache
def cifar_model(name: str) -> nn.Module:
    """The 10-class CIFAR variant (for the CIFAR-native ResNet-20/56 ``cifar`` changes nothing)."""
    torch.manual_seed(0)
    return create_model(name, num_classes=10, cifar=True)


def cifar_batch(channels: int = 3, size: int = 32) -> torch.Tensor:
    return torch.randn(2, channels, size, size, generator=torch.Generator().manual_seed(0))


def test_every_course_model_is_registered():
    missing = sorted(set(COURSE_IMAGE_MODELS + MNIST_MODELS) - set(list_models()))
    assert not missing, f"not registered: {missing}"


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_training_step_gives_finite_gradients(name):
    model = copy.deepcopy(cifar_model(name)).train()
    logits = model(cifar_batch())
    assert logits.shape == (2, 10)
    F.cross_entropy(logits, torch.tensor([3, 7])).backward()
    gradients = {n: p.grad for n, p in model.named_parameters()}
    no_gradient = [n for n, g in gradients.items() if g is None]
    not_finite = [n for n, g in gradients.items() if g is not None and not g.isfinite().all()]
    assert not no_gradient, f"parameters without a gradient: {no_gradient}"
    assert not not_finite, f"parameters with inf/nan gradients: {not_finite}"


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_channels_last_gives_the_same_output(name):
    model = copy.deepcopy(cifar_model(name)).eval()
    batch = cifar_batch()
    with torch.no_grad():
        expected = model(batch)
        model.to(memory_format=torch.channels_last)
        actual = model(batch.to(memory_format=torch.channels_last))
    # Different kernels sum in a different order: equal up to float32 rounding.
    scale = expected.abs().max().item()
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5 * max(scale, 1.0))


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_wrong_number_of_channels_is_a_clear_error(name):
    with pytest.raises(ValueError) as error, torch.no_grad():
        cifar_model(name).eval()(cifar_batch(channels=5))
    numbers = set(re.findall(r"\d+", str(error.value)))
    assert {"3", "5"} <= numbers, f"message should name expected 3 and got 5: {error.value}"


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_too_small_image_is_a_clear_error(name):
    with pytest.raises(ValueError) as error, torch.no_grad():
        cifar_model(name).eval()(cifar_batch(size=2))
    sizes = [(int(h), int(w)) for h, w in re.findall(r"(\d+)\s*[×x]\s*(\d+)", str(error.value))]
    assert (2, 2) in sizes, f"message should name the size it got (2×2): {error.value}"
    assert any(h > 2 for h, _ in sizes), f"message should name the minimum size: {error.value}"


def test_unknown_model_name_lists_the_available_ones():
    with pytest.raises(ValueError, match="no_such_model") as error:
        create_model("no_such_model")
    assert all(name in str(error.value) for name in list_models())


@pytest.mark.parametrize("name", IMAGE_MODELS)
@pytest.mark.parametrize("width_mult", [0, 10])
def test_unreasonable_width_mult_is_rejected(name, width_mult):
    with pytest.raises(ValueError, match="width_mult"):
        create_model(name, num_classes=10, cifar=True, width_mult=width_mult)


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_zero_classes_is_rejected(name):
    with pytest.raises(ValueError, match="num_classes"):
        create_model(name, num_classes=0)
