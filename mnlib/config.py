"""Run-time settings shared by every chapter: budget, device, seeding, environment report."""

from __future__ import annotations

import os
import platform
import random
import sys
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")

BUDGETS = ("quick", "standard", "full")
_SEED: int | None = None


def budget_name() -> str:
    """The active budget, the first that applies of:

    1. ``MNLIB_BUDGET`` (``quick``, ``standard`` or ``full``), when set;
    2. ``quick`` when ``CI=true`` (the smoke run of the test suite);
    3. ``full`` on Google Colab with a GPU, where the full budget takes minutes;
    4. ``standard`` otherwise (a laptop CPU).
    """
    name = os.environ.get("MNLIB_BUDGET", "").strip().lower()
    if name:
        if name not in BUDGETS:
            raise ValueError(f"MNLIB_BUDGET={name!r} is not one of {', '.join(BUDGETS)}")
        return name
    if os.environ.get("CI", "").lower() == "true":
        return "quick"
    if on_colab() and torch.cuda.is_available():
        return "full"
    return "standard"


def on_colab() -> bool:
    """Whether this runs in a Google Colab kernel (which always imports ``google.colab``)."""
    # Checking sys.modules imports nothing and is not fooled by a stray pip package.
    return "google.colab" in sys.modules


def budget(*, quick: T, standard: T, full: T) -> T:
    """Pick the value for the active budget.

    ``quick`` is CI's smoke run, ``standard`` gives meaningful results on a laptop CPU
    (and produces the book's outputs), ``full`` is what a GPU user runs.

    >>> epochs = budget(quick=1, standard=5, full=30)
    """
    return {"quick": quick, "standard": standard, "full": full}[budget_name()]


def get_device() -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> int:
    """Seed Python, NumPy and PyTorch (CPU and all GPUs) so a run can be repeated."""
    global _SEED
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    _SEED = seed
    return seed


def environment_report() -> str:
    """Versions, device, budget and seed; every notebook prints it in its first and last cells."""
    import torchvision

    device = get_device()
    if device.type == "cuda":
        device_text = f"cuda ({torch.cuda.get_device_name(0)})"
    else:
        device_text = device.type
    lines = [
        f"budget      : {budget_name()}",
        f"device      : {device_text}, {torch.get_num_threads()} CPU threads",
        f"python      : {sys.version.split()[0]} ({platform.system()} {platform.machine()})",
        f"torch       : {torch.__version__}",
        f"torchvision : {torchvision.__version__}",
        f"seed        : {_SEED if _SEED is not None else 'not set'}",
    ]
    return "\n".join(lines)
