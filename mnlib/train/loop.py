"""The training loop: fit a classifier, evaluate it, collect its predictions.

One loop serves every chapter, from the MNIST MLP to MobileNetV4 on a Colab GPU. Each epoch
trains on every batch (the learning-rate scheduler steps after each batch), evaluates on the
validation loader, appends a row to the :class:`History`, prints one summary line and, when
asked, writes a checkpoint from which an interrupted run resumes exactly where it stopped.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn
from tqdm import TqdmWarning

from mnlib.config import budget_name, get_device
from mnlib.train.checkpoint import (
    load_checkpoint,
    restore_model,
    restore_training,
    save_checkpoint,
    training_state,
)
from mnlib.train.history import History

with warnings.catch_warnings():
    # Without ipywidgets, tqdm.auto warns (quoting a machine-specific path) and falls back to
    # text bars. Text bars are fine; the warning would only make notebook outputs differ.
    warnings.simplefilter("ignore", TqdmWarning)
    from tqdm.auto import tqdm

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
SchedulerFactory = Callable[[torch.optim.Optimizer, int], torch.optim.lr_scheduler.LRScheduler]
SCHEDULERS = ("onecycle", "cosine")
AMP_CHOICES = (None, True, False, "bf16", "fp16")
DEFAULT_LR = 1e-3


def fit(
    model: nn.Module,
    train_loader: Batches,
    val_loader: Batches | None = None,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float | None = None,
    scheduler: str | SchedulerFactory | None = None,
    loss_fn: nn.Module | None = None,
    label_smoothing: float = 0.0,
    device: str | torch.device | None = None,
    amp: bool | str | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: bool | None = None,
) -> History:
    """Train ``model`` for ``epochs`` epochs and return the per-epoch :class:`History`.

    Args:
        model: a classifier mapping images [B, C, H, W] to logits [B, classes].
        train_loader, val_loader: iterables of (images, labels) batches with ``len()``. A loader
            with ``set_epoch(epoch)`` is told the 0-based epoch before each epoch, so it can
            reshuffle reproducibly.
        optimizer: a ready optimizer, or None for ``AdamW(lr=lr or 1e-3)``.
        scheduler: None, ``"onecycle"`` (peaking at the optimizer's lr), ``"cosine"``, or
            ``make(optimizer, total_steps)``; it steps after every batch.
        loss_fn: None for cross-entropy with ``label_smoothing``; also used for validation.
        device: None keeps a model that is already on a GPU there and otherwise uses
            :func:`mnlib.get_device`. The model and the batches are moved to it.
        amp: mixed precision, CUDA only. None: bf16 on GPUs with compute capability >= 8.0,
            fp16 with a GradScaler on older ones (Colab's T4), off on the CPU and MPS.
            True, False, "bf16" or "fp16" choose explicitly.
        checkpoint: a file written (atomically) after every epoch.
        resume: continue from ``checkpoint`` if it exists (otherwise start fresh). The result
            is the same, bit for bit on the CPU, as a run that was never interrupted.
        progress: batch progress bars and one summary line per epoch; None shows them unless
            the budget is "quick" (CI), False is silent.
    """
    _check_arguments(epochs, optimizer, lr, scheduler, loss_fn, label_smoothing, checkpoint, resume)
    steps_per_epoch = _batch_count(train_loader, "train_loader")
    if val_loader is not None:
        _batch_count(val_loader, "val_loader")
    device = _resolve_device(model, device)
    amp_dtype = _resolve_amp(amp, device)
    show = progress if progress is not None else budget_name() != "quick"

    model.to(device)
    if optimizer is None:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr if lr is not None else DEFAULT_LR)
    total_steps = epochs * steps_per_epoch
    lr_scheduler = _make_scheduler(scheduler, optimizer, total_steps)
    # fp16 gradients can underflow to zero; the GradScaler multiplies the loss to keep them
    # representable. bf16 has float32's range and needs no scaler (disabled = pass-through).
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    loss_fn = (
        loss_fn if loss_fn is not None else nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    )

    history, done = History(), 0
    if resume and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint)
        restore_model(model, state, checkpoint)
        history, done = History.from_dict(state["history"], str(checkpoint)), state["epoch"]
        if done >= epochs:
            _say(show, f"{checkpoint} already holds {done} epochs; nothing to train")
            return history
        restore_training(
            state,
            checkpoint,
            optimizer=optimizer,
            scheduler=lr_scheduler,
            scaler=scaler,
            total_steps=total_steps,
        )
        _say(show, f"resuming from {checkpoint} after epoch {done}")
    elif resume:
        _say(show, f"no checkpoint at {checkpoint} yet; starting fresh")

    for epoch in range(done + 1, epochs + 1):
        start = time.perf_counter()
        if hasattr(train_loader, "set_epoch"):
            train_loader.set_epoch(epoch - 1)
        train_loss, train_accuracy, images = _train_one_epoch(
            model,
            train_loader,
            optimizer,
            lr_scheduler,
            scaler,
            loss_fn,
            device,
            amp_dtype,
            epoch=epoch,
            epochs=epochs,
            show=show,
        )
        train_seconds = time.perf_counter() - start
        val = {"loss": None, "accuracy": None}
        if val_loader is not None:
            val = _evaluate(model, val_loader, loss_fn, device, amp_dtype)
        history.append(
            train_loss=train_loss,
            train_accuracy=train_accuracy,
            val_loss=val["loss"],
            val_accuracy=val["accuracy"],
            lr=optimizer.param_groups[0]["lr"],
            seconds=time.perf_counter() - start,
            images_per_second=images / train_seconds,
        )
        if checkpoint is not None:
            state = training_state(
                epoch=epoch,
                model=model,
                optimizer=optimizer,
                scheduler=lr_scheduler,
                scaler=scaler,
                history=history,
                total_steps=total_steps,
            )
            save_checkpoint(checkpoint, state)
        _say(show, _epoch_summary(history, epochs))
    return history


def evaluate(
    model: nn.Module,
    loader: Batches,
    *,
    loss_fn: nn.Module | None = None,
    device: str | torch.device | None = None,
) -> dict[str, float]:
    """Mean loss (cross-entropy by default) and accuracy (a fraction) of ``model`` on ``loader``.

    Runs in eval mode without gradients, weights every batch by its size, and leaves each
    submodule in the train/eval mode it had before. ``device`` works as in :func:`fit`.
    """
    _batch_count(loader, "loader")
    device = _resolve_device(model, device)
    model.to(device)
    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
    return _evaluate(model, loader, loss_fn, device, amp_dtype=None)


def predict(
    model: nn.Module, loader: Batches, *, device: str | torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's logits [N, classes] and the true labels [N] for every image, on the CPU.

    For confusion matrices (``logits.argmax(1)``) and for finding the worst errors.
    ``device`` works as in :func:`fit`; the model's train/eval modes are restored.
    """
    _batch_count(loader, "loader")
    device = _resolve_device(model, device)
    model.to(device)
    all_logits, all_labels = [], []
    modes = _training_modes(model)
    model.eval()
    try:
        with torch.no_grad():
            for images, labels in loader:
                all_logits.append(model(images.to(device, non_blocking=True)).float().cpu())
                all_labels.append(labels.cpu())
    finally:
        _restore_training_modes(modes)
    return torch.cat(all_logits), torch.cat(all_labels)


def _train_one_epoch(
    model: nn.Module,
    loader: Batches,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    scaler: torch.amp.GradScaler,
    loss_fn: nn.Module,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    *,
    epoch: int,
    epochs: int,
    show: bool,
) -> tuple[float, float, int]:
    """One pass over ``loader``; returns mean loss, accuracy and the number of images."""
    model.train()
    loss_sum, correct, seen = 0.0, torch.zeros((), dtype=torch.long, device=device), 0
    # Pass disable only to switch the bar off: an explicit disable=False would override
    # TQDM_DISABLE=1, the environment variable that keeps bars out of committed outputs.
    switch_off = {} if show else {"disable": True}
    batches = tqdm(loader, desc=f"epoch {epoch}/{epochs}", unit="batch", leave=False, **switch_off)
    with batches:
        for batch, (images, labels) in enumerate(batches, start=1):
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = model(images)
                loss = loss_fn(logits, labels)
            # Reading the loss waits for the GPU, but catches a diverging run before a NaN
            # update ruins the weights, and feeds the progress bar.
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise FloatingPointError(
                    f"the loss is {loss_value} at epoch {epoch}, batch {batch} (both counted "
                    "from 1); training stopped. A lower learning rate usually helps."
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if scheduler is not None:
                scheduler.step()
            loss_sum += loss_value * len(labels)
            correct += (logits.argmax(dim=1) == labels).sum()
            seen += len(labels)
            batches.set_postfix(loss=f"{loss_sum / seen:.4f}", refresh=False)
    return loss_sum / seen, correct.item() / seen, seen


def _evaluate(
    model: nn.Module,
    loader: Batches,
    loss_fn: nn.Module,
    device: torch.device,
    amp_dtype: torch.dtype | None,
) -> dict[str, float]:
    modes = _training_modes(model)
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    try:
        with torch.no_grad():
            for images, labels in loader:
                images = images.to(device, non_blocking=True)
                labels = labels.to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    logits = model(images)
                    loss = loss_fn(logits, labels)
                loss_sum += loss.double() * len(labels)  # loss_fn averages over the batch
                correct += (logits.argmax(dim=1) == labels).sum()
                seen += len(labels)
    finally:
        _restore_training_modes(modes)
    if seen == 0:
        raise ValueError("the loader yielded no images")
    return {"loss": loss_sum.item() / seen, "accuracy": correct.item() / seen}


def _check_arguments(
    epochs, optimizer, lr, scheduler, loss_fn, label_smoothing, checkpoint, resume
):
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if optimizer is not None and lr is not None:
        raise ValueError(
            "pass either lr= (for the default AdamW) or a ready optimizer, not both: "
            "the optimizer already has its learning rate"
        )
    if scheduler is not None and not callable(scheduler) and scheduler not in SCHEDULERS:
        raise ValueError(
            f"unknown scheduler {scheduler!r}; use None, one of {SCHEDULERS}, "
            "or a function (optimizer, total_steps) -> LRScheduler"
        )
    if loss_fn is not None and label_smoothing:
        raise ValueError("label_smoothing applies to the default loss; build it into loss_fn")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=<path> to resume from")


def _batch_count(loader: Batches, name: str) -> int:
    try:
        count = len(loader)
    except TypeError as error:
        raise TypeError(f"{name} must have a length (len(loader) = batches per epoch)") from error
    if count == 0:
        raise ValueError(f"{name} is empty")
    return count


def _resolve_device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    parameter = next(model.parameters(), None)
    if parameter is not None and parameter.device.type != "cpu":
        return parameter.device
    return get_device()


def _resolve_amp(amp: bool | str | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full float32."""
    if amp not in AMP_CHOICES:
        raise ValueError(f"amp must be one of {AMP_CHOICES}, got {amp!r}")
    if device.type != "cuda":
        if amp is None or amp is False:
            return None
        raise ValueError(
            f"amp={amp!r} needs a CUDA GPU, but this run is on {device.type}; "
            "use amp=None or amp=False"
        )
    if amp is False:
        return None
    # bf16 needs Ampere (compute capability 8.0) or newer; Colab's T4 is 7.5.
    major, minor = torch.cuda.get_device_capability(device)
    if amp == "bf16" and major < 8:
        raise ValueError(f"this GPU (compute capability {major}.{minor}) has no bf16; use 'fp16'")
    if amp == "fp16" or major < 8:
        return torch.float16
    return torch.bfloat16


def _make_scheduler(
    scheduler: str | SchedulerFactory | None, optimizer: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    if scheduler is None:
        return None
    if callable(scheduler):
        return scheduler(optimizer, total_steps)
    if scheduler == "onecycle":
        # Smith & Topin's 1cycle policy: warm up to the optimizer's lr, then anneal far below it.
        max_lr = [group["lr"] for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lr, total_steps=total_steps
        )
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)


def _training_modes(model: nn.Module) -> dict[nn.Module, bool]:
    return {module: module.training for module in model.modules()}


def _restore_training_modes(modes: dict[nn.Module, bool]) -> None:
    for module, training in modes.items():
        module.training = training


def _epoch_summary(history: History, epochs: int) -> str:
    row = history.to_rows()[-1]
    text = (
        f"epoch {row['epoch']}/{epochs}  train loss {row['train_loss']:.4f} "
        f"acc {100 * row['train_accuracy']:.2f}%"
    )
    if row["val_loss"] is not None:
        text += f"  val loss {row['val_loss']:.4f} acc {100 * row['val_accuracy']:.2f}%"
    return text + (
        f"  lr {row['lr']:.2e}  {row['seconds']:.1f} s  {row['images_per_second']:.0f} img/s"
    )


def _say(show: bool, message: str) -> None:
    if show:
        print(message)
