"""Behaviour every model of the course shares: registry, argument and input checks, training,
memory format, and tracing (``torch.fx``, ``torch.export``, torchvision's feature extractor).

Image models are checked on their 10-class CIFAR variant at 32×32, built once and cached for the
whole module; tests that change a model (training step, memory format) work on a copy.
"""

from __future__ import annotations

import copy
import functools
import inspect
import re

import pytest
import torch
import torch.fx
import torch.nn.functional as F
from model_helpers import image_batch
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from mnlib.models import create_model, list_models
from mnlib.models.registry import _BUILDERS

MNIST_MODELS = ("mlp", "cnn")
# name → dropout default (that of the reference implementation)
COURSE_IMAGE_MODELS = {
    "resnet18": 0.0,
    "resnet50": 0.0,
    "resnet20": 0.0,
    "resnet56": 0.0,
    "plain20": 0.0,
    "plain56": 0.0,
    "roadmap_mobilenet_v2": 0.0,
    "mobilenet_v1": 0.0,
    "mobilenet_v2": 0.2,
    "mobilenet_v3_small": 0.2,
    "mobilenet_v3_large": 0.2,
    "mobilenet_v4_conv_small": 0.0,
    "mobilenet_v4_conv_medium": 0.0,
    "mobilenet_v4_conv_large": 0.0,
    "mobilenet_v4_hybrid_medium": 0.0,
    "mobilenet_v4_hybrid_large": 0.0,
}
IMAGE_MODELS = [name for name in list_models() if name not in MNIST_MODELS]
# Models with ImageNet weights in torchvision or timm (the CIFAR networks of the ResNet paper
# and the roadmap's CIFAR MobileNetV2 have none).
CIFAR_NATIVE_MODELS = ("resnet20", "resnet56", "plain20", "plain56", "roadmap_mobilenet_v2")
PRETRAINED_MODELS = [name for name in IMAGE_MODELS if name not in CIFAR_NATIVE_MODELS]


@functools.cache
def small_model(name: str) -> nn.Module:
    """The 10-class model in eval mode: MNIST models as they are, image models for CIFAR."""
    torch.manual_seed(0)
    kwargs = {} if name in MNIST_MODELS else {"cifar": True}
    return create_model(name, num_classes=10, **kwargs).eval()


def small_batch(name: str) -> torch.Tensor:
    return image_batch(1, 28) if name in MNIST_MODELS else image_batch(3, 32)


def test_every_course_model_is_registered():
    missing = sorted((set(COURSE_IMAGE_MODELS) | set(MNIST_MODELS)) - set(list_models()))
    assert not missing, f"not registered: {missing}"


def test_builders_have_plain_defaults():
    """Every builder shows its real default (``dropout: float = 0.2``), never ``None``."""
    for name, builder in _BUILDERS.items():
        for parameter in inspect.signature(builder).parameters.values():
            assert parameter.default is not None, f"{name}({parameter.name}=None)"


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_training_step_gives_finite_gradients(name):
    model = copy.deepcopy(small_model(name)).train()
    logits = model(small_batch(name))
    assert logits.shape == (2, 10)
    F.cross_entropy(logits, torch.tensor([3, 7])).backward()
    gradients = {n: p.grad for n, p in model.named_parameters()}
    no_gradient = [n for n, g in gradients.items() if g is None]
    not_finite = [n for n, g in gradients.items() if g is not None and not g.isfinite().all()]
    assert not no_gradient, f"parameters without a gradient: {no_gradient}"
    assert not not_finite, f"parameters with inf/nan gradients: {not_finite}"


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_channels_last_gives_the_same_output(name):
    model = copy.deepcopy(small_model(name))
    batch = small_batch(name)
    with torch.no_grad():
        expected = model(batch)
        model.to(memory_format=torch.channels_last)
        actual = model(batch.to(memory_format=torch.channels_last))
    # Different kernels sum in a different order: equal up to float32 rounding.
    scale = expected.abs().max().item()
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5 * max(scale, 1.0))


@pytest.mark.parametrize("name", list_models())
def test_symbolic_trace_and_export_give_the_eager_output(name):
    """Every model traces with torch.fx and exports with torch.export (deployment chapter)."""
    model, batch = small_model(name), small_batch(name)
    with torch.no_grad():
        expected = model(batch)
        traced = torch.fx.symbolic_trace(model)
        torch.testing.assert_close(traced(batch), expected)
        exported = torch.export.export(model, (batch,))
        torch.testing.assert_close(exported.module()(batch), expected)


@pytest.mark.parametrize(
    ("name", "node", "shape"),
    [("mobilenet_v2", "stages.3", (2, 64, 8, 8)), ("cnn", "features.1", (2, 32, 7, 7))],
)
def test_torchvision_feature_extractor(name, node, shape):
    model = small_model(name)
    extractor = create_feature_extractor(model, return_nodes={node: "features"})
    with torch.no_grad():
        assert extractor(small_batch(name))["features"].shape == shape


@pytest.mark.parametrize("name", list_models())
def test_wrong_number_of_channels_is_a_clear_error(name):
    expected = 1 if name in MNIST_MODELS else 3
    batch = image_batch(5, 28 if name in MNIST_MODELS else 32)
    with pytest.raises(ValueError, match=f"expects {expected} input channels; got 5"):
        small_model(name)(batch)


@pytest.mark.parametrize("name", list_models())
def test_not_a_batch_of_images_is_a_clear_error(name):
    with pytest.raises(ValueError, match=r"expects a batch of images .* got shape \(3, 32, 32\)"):
        small_model(name)(torch.zeros(3, 32, 32))


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_too_small_image_is_a_clear_error(name):
    with pytest.raises(ValueError, match=r"at least \d+×\d+; got 2×2") as error:
        small_model(name)(image_batch(3, size=2))
    minimum = int(re.search(r"at least (\d+)×", str(error.value)).group(1))
    assert minimum > 2, f"message should name the minimum size: {error.value}"


def test_unknown_model_name_lists_the_available_ones():
    with pytest.raises(ValueError, match="no_such_model") as error:
        create_model("no_such_model")
    assert all(name in str(error.value) for name in list_models())


def test_unknown_argument_is_an_error():
    with pytest.raises(TypeError, match="does not take cifar"):
        create_model("mlp", cifar=True)


@pytest.mark.parametrize("name", IMAGE_MODELS)
@pytest.mark.parametrize("width_mult", [0, 10])
def test_unreasonable_width_mult_is_rejected(name, width_mult):
    with pytest.raises(ValueError, match="width_mult"):
        create_model(name, num_classes=10, cifar=True, width_mult=width_mult)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_num_classes_must_be_a_positive_integer(name, bad):
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        create_model(name, num_classes=bad)


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_dropout_default_and_validation(name):
    assert create_model(name, num_classes=10).dropout.p == COURSE_IMAGE_MODELS[name]
    assert create_model(name, num_classes=10, dropout=0.5).dropout.p == 0.5
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
            create_model(name, num_classes=10, dropout=bad)


@pytest.mark.parametrize("name", PRETRAINED_MODELS)
@pytest.mark.parametrize(
    "kwargs", [{"num_classes": 10}, {"cifar": True}, {"width_mult": 0.5}], ids=str
)
def test_pretrained_needs_the_imagenet_layout(name, kwargs):
    # Checked before anything is built or downloaded.
    with pytest.raises(ValueError, match="exist only for num_classes=1000, cifar=False"):
        create_model(name, pretrained=True, **kwargs)
