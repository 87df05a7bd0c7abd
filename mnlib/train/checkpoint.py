"""Checkpoints that survive a lost Colab session and resume a run bit for bit.

A checkpoint is one file holding everything the next epoch depends on: the model's and the
optimizer's state (Adam's moment estimates), the learning-rate scheduler's step, the AMP
GradScaler's scale, the history so far, and the states of every random number generator
(dropout masks and data order come from them). It contains only tensors, numbers, strings,
lists and dicts, so it loads with ``torch.load(weights_only=True)``, which cannot run code
hidden in a downloaded file.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mnlib.files import save_atomic
from mnlib.train.history import History

CHECKPOINT_KEYS = (
    "epoch",
    "model",
    "optimizer",
    "optimizer_class",
    "scheduler",
    "scheduler_class",
    "total_steps",
    "scaler",
    "rng",
    "history",
)


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically: a crash mid-write keeps the previous checkpoint."""
    save_atomic(state, path)


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by :func:`mnlib.train.fit`; tensors are loaded to the CPU."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated zip, a pickle with code in it, a random file...
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise RuntimeError(
            f"cannot read the checkpoint {path}: {type(error).__name__}: {reason}. "
            "The file is corrupt or not a checkpoint; delete it to start fresh."
        ) from error
    missing = [key for key in CHECKPOINT_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise RuntimeError(
            f"{path} is not a checkpoint written by mnlib.train.fit (missing: {', '.join(missing)})"
        )
    return state


def training_state(
    *,
    epoch: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    scaler: torch.amp.GradScaler,
    history: History,
    total_steps: int,
    hyperparameters: list[dict] | None = None,
    rng_per_rank: list[dict] | None = None,
) -> dict:
    """Everything needed to continue training after ``epoch`` (1-based) as it would have gone on.

    ``hyperparameters`` are the optimizer's settings as the run asked for them
    (:func:`optimizer_hyperparameters` before a scheduler changed the lr); a resumed run must
    ask for the same. ``rng_per_rank`` (distributed runs) holds every rank's generator states,
    so that each rank resumes with its own dropout masks.
    """
    return {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "optimizer_class": type(optimizer).__name__,
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "scheduler_class": None if scheduler is None else type(scheduler).__name__,
        "total_steps": total_steps,
        "scaler": scaler.state_dict(),
        "rng": rng_state(),
        "history": history.to_dict(),
        "hyperparameters": hyperparameters,
        "rng_per_rank": rng_per_rank,
    }


def restore_model(model: nn.Module, state: dict, path: str | Path) -> None:
    """Load the checkpoint's weights into ``model``; any key or shape difference is an error."""
    saved, own = state["model"], model.state_dict()
    missing = [key for key in own if key not in saved]
    unexpected = [key for key in saved if key not in own]
    mismatched = [
        f"{key} {_shape(saved[key])} in the file vs {_shape(own[key])} in the model"
        for key in own
        if key in saved and _shape(saved[key]) != _shape(own[key])
    ]
    problems = {
        "missing in the checkpoint": missing,
        "unexpected in the checkpoint": unexpected,
        "shape mismatch": mismatched,
    }
    if any(problems.values()):
        report = "; ".join(f"{what}: {', '.join(keys)}" for what, keys in problems.items() if keys)
        raise RuntimeError(
            f"the checkpoint {path} was written for a different model than "
            f"{type(model).__name__}: {report}"
        )
    model.load_state_dict(saved)


def restore_training(
    state: dict,
    path: str | Path,
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    scaler: torch.amp.GradScaler,
    total_steps: int,
    rank: int = 0,
) -> None:
    """Restore optimizer, scheduler, GradScaler and random number generators from ``state``.

    Rank ``rank`` of a distributed run gets its own saved generator states back when the
    checkpoint holds them for that rank (else rank 0's). Call it after the scheduler is built:
    building OneCycleLR resets the optimizer's learning rate, loading the optimizer's state
    afterwards puts the saved one back.
    """
    _check_same(path, "optimizer", state["optimizer_class"], type(optimizer).__name__)
    _check_optimizer_shapes(optimizer, state["optimizer"], path)
    try:
        optimizer.load_state_dict(state["optimizer"])
    except (ValueError, KeyError) as error:
        raise RuntimeError(f"the optimizer state in {path} does not fit: {error}") from error

    current_scheduler = None if scheduler is None else type(scheduler).__name__
    _check_same(path, "scheduler", state["scheduler_class"], current_scheduler)
    if scheduler is not None:
        if state["total_steps"] != total_steps:
            raise RuntimeError(
                f"the checkpoint {path} was written for a schedule of {state['total_steps']} "
                f"steps, this run has {total_steps} (epochs x batches per epoch); resume with "
                "the epochs and the loader of the original run"
            )
        scheduler.load_state_dict(state["scheduler"])
    if state["scaler"]:  # empty when the run had no fp16 GradScaler
        scaler.load_state_dict(state["scaler"])
    per_rank = state.get("rng_per_rank") or []
    set_rng_state(per_rank[rank] if rank < len(per_rank) else state["rng"])


def optimizer_hyperparameters(optimizer: torch.optim.Optimizer) -> list[dict]:
    """Each parameter group's settings (lr, weight_decay, betas, ...) without its parameters.

    Only plain values are kept (numbers, strings, booleans, None, tuples of numbers), so the
    result fits in a checkpoint that loads with ``weights_only=True``.
    """
    return [
        {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in group.items()
            if key != "params" and _is_plain(value)
        }
        for group in optimizer.param_groups
    ]


def check_hyperparameters(
    state: dict, path: str | Path, optimizer: torch.optim.Optimizer, hyperparameters: list[dict]
) -> None:
    """RuntimeError if this run uses another optimizer, or other settings, than the saved run.

    Resuming restores the optimizer's saved state, settings included, so a changed lr would
    otherwise be ignored without a word. Checkpoints from before this check have no record.
    """
    _check_same(path, "optimizer", state["optimizer_class"], type(optimizer).__name__)
    saved = state.get("hyperparameters")
    if saved is None:
        return
    if len(saved) != len(hyperparameters):
        raise RuntimeError(
            f"the checkpoint {path} was written with {len(saved)} parameter groups, this run's "
            f"optimizer has {len(hyperparameters)}"
        )
    differences = [
        f"{key} {old[key]!r} in the checkpoint, {new[key]!r} now"
        + (f" (parameter group {index})" if len(saved) > 1 else "")
        for index, (old, new) in enumerate(zip(saved, hyperparameters, strict=True))
        for key in sorted(old.keys() & new.keys())  # a scheduler adds keys such as max_lr
        if old[key] != new[key]
    ]
    if differences:
        raise RuntimeError(
            f"the checkpoint {path} was written with other optimizer settings than this run "
            f"asks for: {'; '.join(differences)}. Resuming would keep the saved ones; pass the "
            "original settings to continue that run, or overwrite=True (without resume) to "
            "start a new one"
        )


def rng_state() -> dict:
    """The states of Python's, NumPy's and PyTorch's (CPU and every GPU) generators.

    NumPy's and Python's states are tuples with arrays inside; they are stored as lists and
    ints so that ``torch.load(weights_only=True)`` accepts them.
    """
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [name, keys.tolist(), int(position), int(has_gauss), float(cached_gaussian)],
        "python": [version, list(python_state), gauss_next],
    }


def set_rng_state(state: dict) -> None:
    """Undo :func:`rng_state`. GPU states are restored for the GPUs present (none on a CPU)."""
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available():
        for index, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)
    name, keys, position, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state(
        (name, np.array(keys, dtype=np.uint32), position, has_gauss, cached_gaussian)
    )
    version, python_state, gauss_next = state["python"]
    random.setstate((version, tuple(python_state), gauss_next))


def _check_same(path: str | Path, what: str, saved: str | None, current: str | None) -> None:
    if saved != current:
        raise RuntimeError(
            f"the checkpoint {path} was written with {what} {saved}, this run uses {current}"
        )


def _check_optimizer_shapes(optimizer: torch.optim.Optimizer, saved: dict, path) -> None:
    """Per-parameter buffers (momentum, Adam's moments) must have their parameter's shape.

    ``Optimizer.load_state_dict`` matches parameters by position and checks only the group
    sizes, so a model with the same number of differently shaped tensors would load silently.
    """
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    for index, buffers in saved.get("state", {}).items():
        if not isinstance(index, int) or index >= len(parameters):
            raise RuntimeError(
                f"the optimizer state in {path} has a parameter #{index}, the optimizer only "
                f"{len(parameters)} parameters"
            )
        for name, buffer in buffers.items():
            if isinstance(buffer, torch.Tensor) and buffer.dim() > 0:
                if buffer.shape != parameters[index].shape:
                    raise RuntimeError(
                        f"the optimizer state in {path} does not fit: parameter #{index} has "
                        f"shape {tuple(parameters[index].shape)}, its saved {name!r} "
                        f"{tuple(buffer.shape)}"
                    )


def _is_plain(value) -> bool:
    if isinstance(value, tuple | list):
        return all(isinstance(item, int | float) for item in value)
    return value is None or isinstance(value, int | float | str)


def _shape(value) -> tuple | None:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else None
