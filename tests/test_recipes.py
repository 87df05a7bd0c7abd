"""Tests of mnlib.train.recipes: the recipes' fields and make_optimizer's parameter groups."""

from dataclasses import replace

import pytest
import torch
from torch import nn

from mnlib.models import create_model
from mnlib.train.recipes import (
    CIFAR_RECIPE,
    CNN_RECIPE,
    MLP_RECIPE,
    make_optimizer,
    parameter_groups,
)


def small_net() -> nn.Sequential:
    """conv (weight 4-D, no bias) → BN (1-D scale and shift) → linear (2-D weight, 1-D bias)."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, bias=False),
        nn.BatchNorm2d(4),
        nn.Flatten(),
        nn.Linear(4, 2),
    )


def test_new_fields_default_to_what_the_mnist_recipes_always_meant():
    for recipe in (MLP_RECIPE, CNN_RECIPE):
        assert recipe.optimizer == "adamw"
        assert recipe.label_smoothing == 0.0 and recipe.augment is False


def test_cifar_recipe_is_sgd_nesterov_with_augmentation():
    assert CIFAR_RECIPE.optimizer == "sgd" and CIFAR_RECIPE.nesterov is True
    assert CIFAR_RECIPE.momentum == 0.9 and CIFAR_RECIPE.augment is True
    assert CIFAR_RECIPE.scheduler in ("onecycle", "cosine")


def test_weight_decay_goes_to_weights_only():
    net = small_net()
    optimizer = make_optimizer(net, CIFAR_RECIPE)
    decayed, not_decayed = optimizer.param_groups
    assert decayed["weight_decay"] == CIFAR_RECIPE.weight_decay
    assert not_decayed["weight_decay"] == 0.0
    assert {id(p) for p in decayed["params"]} == {id(net[0].weight), id(net[3].weight)}
    assert {id(p) for p in not_decayed["params"]} == {
        id(net[1].weight),
        id(net[1].bias),
        id(net[3].bias),
    }


def test_sgd_and_adamw_get_the_recipes_settings():
    net = small_net()
    sgd = make_optimizer(net, CIFAR_RECIPE)
    assert isinstance(sgd, torch.optim.SGD)
    group = sgd.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"]) == (0.1, 0.9, True)
    adamw = make_optimizer(net, MLP_RECIPE)
    assert isinstance(adamw, torch.optim.AdamW)
    assert adamw.param_groups[0]["lr"] == MLP_RECIPE.lr
    assert adamw.param_groups[0]["weight_decay"] == MLP_RECIPE.weight_decay


def test_every_trainable_parameter_is_in_exactly_one_group():
    model = create_model("resnet20")
    model.stem.requires_grad_(False)  # frozen parameters stay out of the optimizer
    groups = parameter_groups(model, 1e-4)
    grouped = [id(p) for group in groups for p in group["params"]]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert sorted(grouped) == sorted(trainable) and len(set(grouped)) == len(grouped)


def test_a_model_without_1d_parameters_gets_one_group():
    groups = parameter_groups(nn.Linear(3, 2, bias=False), 0.1)
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.1


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="unknown optimizer 'lamb'"):
        make_optimizer(small_net(), replace(CIFAR_RECIPE, optimizer="lamb"))
    with pytest.raises(ValueError, match="weight_decay must be >= 0, got -0.1"):
        parameter_groups(small_net(), -0.1)
    with pytest.raises(ValueError, match="Sequential has no trainable parameters"):
        parameter_groups(small_net().requires_grad_(False), 0.1)
