"""The Part I models: an MLP and a small CNN for 1×28×28 digits."""

import pytest
import torch

from mnlib.models import create_model
from mnlib.models.mnist import CNN, MLP
from mnlib.profile import count_params


@pytest.mark.parametrize(("name", "model_class"), [("mlp", MLP), ("cnn", CNN)])
def test_mnist_models_map_digits_to_logits(name, model_class):
    model = create_model(name, num_classes=3)
    assert isinstance(model, model_class)
    logits = model(torch.randn(4, 1, 28, 28))
    assert logits.shape == (4, 3)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_parameter_counts_follow_the_layer_sizes():
    mlp = (784 * 512 + 512) + (512 * 256 + 256) + (256 * 10 + 10)
    assert count_params(create_model("mlp")) == mlp
    convs = (1 * 16 * 9 + 2 * 16) + (16 * 32 * 9 + 2 * 32) + (32 * 64 * 9 + 2 * 64)
    assert count_params(create_model("cnn")) == convs + 64 * 3 * 3 * 10 + 10 == 29_178


def test_mlp_needs_exactly_28x28():
    with pytest.raises(ValueError, match="MLP expects 28×28 images; got 32×32"):
        create_model("mlp")(torch.randn(2, 1, 32, 32))


def test_cnn_needs_at_least_28x28():
    with pytest.raises(ValueError, match="CNN needs images of at least 28×28; got 14×14"):
        create_model("cnn")(torch.randn(2, 1, 14, 14))
