"""Load weights of the reference implementations (torchvision, timm) into the course's models.

Every course model that has a reference implements ``reference_key_map()``: a readable dict
from each of its own state-dict keys to the reference's key. Loading is strict: a key missing
on either side or a shape that differs is an error that lists every offender.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

LIBRARIES = ("torchvision", "timm")


def build_reference(library: str, name: str, *, pretrained: bool = False, **kwargs) -> nn.Module:
    """Build a reference model, e.g. ``build_reference("timm", "mobilenetv4_conv_small")``.

    ``pretrained=True`` downloads ImageNet weights and needs the internet (and timm for
    the timm models).
    """
    if library == "torchvision":
        import torchvision

        weights = "DEFAULT" if pretrained else None
        return torchvision.models.get_model(name, weights=weights, **kwargs)
    if library == "timm":
        try:
            import timm
        except ImportError as error:
            raise ImportError(f"the reference for {name!r} is in timm: pip install timm") from error
        return timm.create_model(name, pretrained=pretrained, **kwargs)
    raise ValueError(f"unknown reference library {library!r}; expected one of {LIBRARIES}")


def expand_module_map(model: nn.Module, modules: Mapping[str, str]) -> dict[str, str]:
    """Turn an own-module → reference-module map into the full state-dict key map.

    Inside a module the parameter and buffer names (``weight``, ``running_mean``, …) are the
    same on both sides, so ``{"stem.conv": "features.0.0"}`` maps ``stem.conv.weight`` to
    ``features.0.0.weight``. Keys of modules missing from ``modules`` are left out, and
    :func:`load_reference_weights` reports them.
    """
    key_map = {}
    for key in model.state_dict():
        module, name = key.rsplit(".", 1)
        if module in modules:
            key_map[key] = f"{modules[module]}.{name}"
    return key_map


def numbered_conv_bn(own: str, reference: str) -> dict[str, str]:
    """Module map of a :class:`~mnlib.blocks.conv.ConvBNAct` onto a numbered conv-BN Sequential.

    torchvision numbers the layers of its ``Conv2dNormActivation`` and of ResNet's
    ``downsample``: ``0`` is the conv, ``1`` the BatchNorm. ``numbered_conv_bn("stem",
    "features.0")`` is ``{"stem.conv": "features.0.0", "stem.bn": "features.0.1"}``.
    """
    return {f"{own}.conv": f"{reference}.0", f"{own}.bn": f"{reference}.1"}


def load_reference_weights(
    model: nn.Module, reference: nn.Module | Mapping[str, torch.Tensor]
) -> nn.Module:
    """Copy a reference model's weights (a module or its state_dict) into ``model``, in place.

    Raises ``ValueError`` listing missing, unexpected and shape-mismatched keys; on error the
    model is left unchanged.
    """
    if not hasattr(model, "reference_key_map"):
        raise TypeError(f"{type(model).__name__} has no reference implementation to load from")
    source = reference.state_dict() if isinstance(reference, nn.Module) else dict(reference)
    key_map: dict[str, str] = model.reference_key_map()
    own = model.state_dict()

    missing = [f"{k} (from {key_map[k]})" for k in own if key_map.get(k) not in source]
    unmapped = [k for k in own if k not in key_map]
    unexpected = sorted(set(source) - set(key_map.values()))
    mismatched = [
        f"{k}: {tuple(own[k].shape)} vs {key_map[k]}: {tuple(source[key_map[k]].shape)}"
        for k in own
        if key_map.get(k) in source and own[k].shape != source[key_map[k]].shape
    ]
    problems = {
        "own keys with no mapping": unmapped,
        "missing in the reference": missing,
        "unexpected in the reference": unexpected,
        "shape mismatch": mismatched,
    }
    if any(problems.values()):
        report = "; ".join(f"{what}: {', '.join(keys)}" for what, keys in problems.items() if keys)
        raise ValueError(f"cannot load reference weights into {type(model).__name__}: {report}")
    model.load_state_dict({k: source[key_map[k]] for k in own}, strict=True)
    return model


def load_pretrained(model: nn.Module, library: str, name: str) -> nn.Module:
    """Load ImageNet weights into ``model`` from the reference ``library``/``name``.

    Needs the internet; offline it raises ``RuntimeError`` rather than returning an
    untrained model.
    """
    try:
        reference = build_reference(library, name, pretrained=True)
    except ImportError:
        raise
    except Exception as error:  # urllib, huggingface_hub and torch.hub raise many types
        raise RuntimeError(
            f"could not download the ImageNet weights of {library} {name!r} ({error}). "
            "pretrained=True needs the internet; use pretrained=False offline."
        ) from error
    return load_reference_weights(model, reference)
