"""The Part I models and the registry that creates them."""

import pytest
import torch

from mnlib.models import create_model, list_models
from mnlib.models.mnist import CNN, MLP


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_mnist_models_map_digits_to_ten_logits(name):
    model = create_model(name)
    logits = model(torch.randn(4, 1, 28, 28))
    assert logits.shape == (4, 10)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_parameter_counts_follow_the_layer_sizes():
    mlp = create_model("mlp")
    assert sum(p.numel() for p in mlp.parameters()) == (784 * 512 + 512) + (512 * 256 + 256) + (
        256 * 10 + 10
    )
    cnn = create_model("cnn")
    convs = (1 * 16 * 9 + 2 * 16) + (16 * 32 * 9 + 2 * 32) + (32 * 64 * 9 + 2 * 64)
    assert sum(p.numel() for p in cnn.parameters()) == convs + 64 * 3 * 3 * 10 + 10


def test_registry_lists_and_creates_part_one_models():
    assert {"mlp", "cnn"} <= set(list_models())
    assert isinstance(create_model("mlp", num_classes=3), MLP)
    assert create_model("cnn", num_classes=3)(torch.randn(1, 1, 28, 28)).shape == (1, 3)
    assert isinstance(create_model("cnn"), CNN)


def test_unknown_name_lists_the_available_models():
    with pytest.raises(ValueError, match="available: .*cnn.*mlp"):
        create_model("lenet")


def test_unknown_argument_is_an_error():
    with pytest.raises(TypeError, match="does not take cifar"):
        create_model("mlp", cifar=True)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_num_classes_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="num_classes"):
        create_model("cnn", num_classes=bad)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_wrong_channels_or_size_is_a_clear_error(name):
    model = create_model(name)
    with pytest.raises(ValueError, match="expects 1 input channels; got 3"):
        model(torch.randn(2, 3, 28, 28))
    with pytest.raises(ValueError, match="28"):
        model(torch.randn(2, 1, 14, 14))


def test_dropout_out_of_range_is_an_error():
    with pytest.raises(ValueError, match="dropout"):
        create_model("mlp", dropout=1.0)
