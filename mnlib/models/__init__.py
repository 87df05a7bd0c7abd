"""Every model of the course by name, e.g. ``create_model("mobilenet_v2", cifar=True)``."""

# Importing each model module registers its builders.
from mnlib.models import (  # noqa: F401
    mnist,
    mobilenet_v1,
    mobilenet_v2,
    mobilenet_v3,
    mobilenet_v4,
    resnet,
)
from mnlib.models.registry import create_model, list_models, register_model
from mnlib.models.weights import build_reference, load_pretrained, load_reference_weights

__all__ = [
    "build_reference",
    "create_model",
    "list_models",
    "load_pretrained",
    "load_reference_weights",
    "register_model",
]
