"""Weight initialisation as the reference implementations do it, so a fresh model starts like them.

Two rules are in use. They agree on BatchNorm (γ = 1, β = 0) and on zero biases, but genuinely
differ on the convolutions and the classifier:

* **torchvision** (ResNet, MobileNetV2/V3): He-normal on the fan-out as PyTorch counts it,
  ``std = sqrt(2 / (k·k·out_channels))`` (He et al., ICCV 2015).
* **TensorFlow**, kept by timm as ``_init_weight_goog`` (MobileNetV1/V4): the same formula, but
  the fan-out of a grouped conv is divided by ``groups``. A depthwise 3×3 conv then gets
  ``fan_out = 9`` instead of ``9·channels``: weights ``sqrt(channels)`` times larger.
"""

from __future__ import annotations

import math

from torch import nn


def init_torchvision_style(model: nn.Module, *, linear_std: float | None) -> None:
    """torchvision's init of ResNet and MobileNetV2/V3, in place.

    Convs: He-normal on the fan-out (``kaiming_normal_(mode="fan_out")``; torchvision's MobileNets
    keep its default ``leaky_relu`` with slope 0, the same gain √2 as ``relu``), bias 0.
    BatchNorm: γ = 1, β = 0. Linear: ``N(0, linear_std²)`` and bias 0 (the MobileNets use
    ``linear_std=0.01``); ``None`` keeps PyTorch's default init, as torchvision's ResNet does.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear) and linear_std is not None:
            nn.init.normal_(module.weight, 0.0, linear_std)
            nn.init.zeros_(module.bias)


def init_tensorflow_style(model: nn.Module) -> None:
    """timm's ``_init_weight_goog`` (from TensorFlow's MnasNet/EfficientNet code), in place.

    Convs: ``N(0, 2 / fan_out)`` with ``fan_out = k·k·out_channels / groups``, bias 0.
    BatchNorm: γ = 1, β = 0. Linear: uniform in ``±1/sqrt(out_features)``, bias 0.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            kernel_height, kernel_width = module.kernel_size
            fan_out = kernel_height * kernel_width * module.out_channels // module.groups
            nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            bound = 1.0 / math.sqrt(module.out_features)
            nn.init.uniform_(module.weight, -bound, bound)
            nn.init.zeros_(module.bias)
