"""A name → builder registry, so chapters create any model of the course with one call."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

ModelBuilder = Callable[..., nn.Module]
_BUILDERS: dict[str, ModelBuilder] = {}


def register_model(builder: ModelBuilder) -> ModelBuilder:
    """Decorator: make ``builder`` available to :func:`create_model` under its function name."""
    name = builder.__name__
    if name in _BUILDERS:
        raise ValueError(f"a model named {name!r} is already registered")
    _BUILDERS[name] = builder
    return builder


def list_models() -> list[str]:
    """The names :func:`create_model` accepts, sorted."""
    return sorted(_BUILDERS)


def create_model(name: str, num_classes: int | None = None, **kwargs) -> nn.Module:
    """Build the model registered as ``name``.

    ``num_classes=None`` keeps the model's own default (10 for the MNIST models, 1000 for the
    ImageNet models). Other keyword arguments (``cifar``, ``width_mult``, ``dropout``,
    ``pretrained``, ...) go to the model's builder; one it does not take is an error.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    builder = _BUILDERS[name]
    accepted = inspect.signature(builder).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(
            f"model {name!r} does not take {', '.join(unknown)}; it takes: {', '.join(accepted)}"
        )
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        kwargs["num_classes"] = num_classes
    return builder(**kwargs)
