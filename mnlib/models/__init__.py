"""Every model of the course by name, e.g. ``create_model("mobilenet_v2", cifar=True)``.

All image models use the same names for their parts, in the order of the forward pass:

* ``stem``: the first conv on the image;
* ``stages``: the body, an ``nn.Sequential`` of stages, each an ``nn.Sequential`` of blocks
  (one row, or one group of rows, of the paper's architecture table);
* ``last_conv``: a 1×1 conv that widens the last feature map before pooling (MobileNetV2/V3);
* ``pool``: global average pooling;
* ``head``: the layers between pooling and the classifier (MobileNetV3/V4);
* ``dropout`` and ``classifier``: the final linear layer.

``cifar=True`` adapts an ImageNet model to 32×32 images without changing any weight shape
(fewer early strides); a block that adds its input to its output says so in ``use_residual``.
"""

# Importing each model module registers its builders.
from mnlib.models import (  # noqa: F401
    mnist,
    mobilenet_v1,
    mobilenet_v2,
    mobilenet_v3,
    mobilenet_v4,
    resnet,
)
from mnlib.models.reference_keys import reference_key_map
from mnlib.models.registry import create_model, list_models, register_model
from mnlib.models.weights import build_reference, load_pretrained, load_reference_weights

__all__ = [
    "build_reference",
    "create_model",
    "list_models",
    "load_pretrained",
    "load_reference_weights",
    "reference_key_map",
    "register_model",
]
