"""Load weights of the reference implementations (torchvision, timm) into the course's models.

:func:`build_model` is what every builder with ImageNet weights calls: check that the layout
can take them, build the model, load them. Loading is strict: a key missing on either side or a
shape that differs is an error that lists every offender (the key maps are in
:mod:`mnlib.models.reference_keys`).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple, TypeVar

import torch
from torch import nn

from mnlib.models.reference_keys import reference_key_map

LIBRARIES = ("torchvision", "timm")
# Where each library downloads its weights from: checked before a download is attempted.
WEIGHT_HOSTS = {"torchvision": "download.pytorch.org", "timm": "huggingface.co"}
NETWORK_TIMEOUT_S = 1.5

ModelT = TypeVar("ModelT", bound=nn.Module)


class Reference(NamedTuple):
    """A reference implementation: ``Reference("torchvision", "mobilenet_v2")``."""

    library: str
    name: str


def build_model(
    model_class: Callable[..., ModelT],
    *args,
    reference: Reference,
    pretrained: bool,
    num_classes: int,
    cifar: bool = False,
    width_mult: float = 1.0,
    **kwargs,
) -> ModelT:
    """``model_class(*args, num_classes=…, cifar=…, width_mult=…, **kwargs)``, with ImageNet
    weights from ``reference`` when ``pretrained``.

    The weights exist only for the reference layout (1000 classes, no CIFAR strides, width 1):
    anything else is an error *before* anything is built or downloaded.
    """
    if pretrained:
        if num_classes != 1000 or cifar or width_mult != 1.0:
            raise ValueError(
                f"pretrained {reference.name} weights exist only for num_classes=1000, "
                f"cifar=False and width_mult=1.0; got num_classes={num_classes}, cifar={cifar}, "
                f"width_mult={width_mult}. Load them first, then replace the classifier."
            )
    model = model_class(
        *args, num_classes=num_classes, cifar=cifar, width_mult=width_mult, **kwargs
    )
    if pretrained:
        load_pretrained(model, reference.library, reference.name)
    return model


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


def load_reference_weights(
    model: nn.Module, reference: nn.Module | Mapping[str, torch.Tensor]
) -> nn.Module:
    """Copy a reference model's weights (a module or its state_dict) into ``model``, in place.

    Raises ``ValueError`` listing missing, unexpected and shape-mismatched keys; on error the
    model is left unchanged.
    """
    source = reference.state_dict() if isinstance(reference, nn.Module) else dict(reference)
    key_map = reference_key_map(model)
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

    Weights already in the download cache load offline. Otherwise they are downloaded, which
    needs the internet: offline this fails within about two seconds with a ``RuntimeError``
    (never an untrained model). A cached file that cannot be read is named in the error.
    """
    cached = cached_weights_file(library, name)
    if cached is None:
        require_network(library, name)
    try:
        if library == "timm" and cached is not None:
            import timm

            # Load the cached file directly, without asking the hub for a newer version.
            reference = timm.create_model(
                name, pretrained=True, pretrained_cfg_overlay={"file": str(cached)}
            )
        else:
            reference = build_reference(library, name, pretrained=True)
    except ImportError:
        raise
    except Exception as error:  # urllib, huggingface_hub, safetensors and torch raise many types
        if cached is not None:
            raise RuntimeError(
                f"the cached weights file {cached} of {library} {name!r} is corrupt ({error}). "
                "Delete that file; pretrained=True then downloads it again."
            ) from error
        raise RuntimeError(
            f"could not download the ImageNet weights of {library} {name!r} ({error}). "
            "pretrained=True needs the internet; use pretrained=False offline."
        ) from error
    return load_reference_weights(model, reference)


def cached_weights_file(library: str, name: str) -> Path | None:
    """The weights file of ``library``/``name`` in the local download cache, or ``None``."""
    if library == "torchvision":
        import torchvision

        url = torchvision.models.get_model_weights(name).DEFAULT.url
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
        return path if path.is_file() else None
    if library == "timm":
        try:
            import huggingface_hub
            from timm.models import get_pretrained_cfg
        except ImportError:
            return None
        config = get_pretrained_cfg(name)
        repo = config.hf_hub_id if config is not None else None
        for filename in ("model.safetensors", "pytorch_model.bin"):
            path = repo and huggingface_hub.try_to_load_from_cache(repo, filename)
            if isinstance(path, str):
                return Path(path)
    return None


def require_network(library: str, name: str) -> None:
    """Raise ``RuntimeError`` at once if the weights of ``library`` cannot be downloaded.

    Without this check huggingface_hub retries for most of a minute before it gives up.
    """
    host = WEIGHT_HOSTS.get(library)
    if host is None:
        return
    if library == "timm":
        import huggingface_hub.constants

        if huggingface_hub.constants.HF_HUB_OFFLINE:
            raise RuntimeError(
                f"the ImageNet weights of timm {name!r} are not cached and HF_HUB_OFFLINE is "
                "set. pretrained=True needs the internet; use pretrained=False offline."
            )
    if not host_reachable(host):
        raise RuntimeError(
            f"cannot reach {host} to download the ImageNet weights of {library} {name!r}. "
            "pretrained=True needs the internet; use pretrained=False offline."
        )


def host_reachable(host: str, timeout: float = NETWORK_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``host``:443 opens within ``timeout`` seconds.

    The name lookup has no timeout of its own, so the attempt runs in a background thread
    that is abandoned when the time is up.
    """
    result: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])
