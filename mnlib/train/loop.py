"""The training loop: train one epoch, evaluate, fit a classifier, collect its predictions.

:func:`train_one_epoch` is the loop itself, the one chapter 2 writes by hand: forward, loss,
backward, update, for every batch. :func:`evaluate` is its counterpart without gradients.
:func:`fit` runs the two once per epoch and adds what a real run needs around them: mixed
precision and ``channels_last`` on a GPU, progress bars, a check that the run has not diverged,
a :class:`History` of per-epoch metrics, and checkpoints from which an interrupted run resumes
exactly where it stopped. Started by ``torchrun``, the same call trains data-parallel on every
process (:mod:`mnlib.train.distributed`).
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import TqdmWarning

from mnlib.config import budget_name, get_device
from mnlib.data.splits import check_bool
from mnlib.train import distributed
from mnlib.train.batchnorm import recompute_batchnorm_statistics
from mnlib.train.checkpoint import (
    check_hyperparameters,
    load_checkpoint,
    optimizer_hyperparameters,
    restore_model,
    restore_training,
    rng_state,
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
LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SchedulerFactory = Callable[[torch.optim.Optimizer, int], torch.optim.lr_scheduler.LRScheduler]
SCHEDULERS = ("onecycle", "cosine")
AMP_CHOICES = (None, True, False, "bf16", "fp16")
DEFAULT_LR = 1e-3
# On a GPU, fit reads the loss (which makes the CPU wait for the GPU) only every this many
# batches; on the CPU reading is free and it checks every batch.
GPU_CHECK_EVERY = 50


class EpochStats(NamedTuple):
    """What :func:`train_one_epoch` measured. ``loss`` and ``accuracy`` are 0-d tensors on the
    training device (``float(stats.loss)`` reads one); ``images`` is the number of images."""

    loss: torch.Tensor
    accuracy: torch.Tensor
    images: int


def train_one_epoch(
    model: nn.Module,
    loader: Batches,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFunction,
    *,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    device: str | torch.device | None = None,
) -> EpochStats:
    """Train ``model`` on every batch of ``loader`` once: the loop :func:`fit` runs each epoch.

    A batch is images [B, C, H, W] and labels [B]; the model maps the images to logits
    [B, classes], ``loss_fn`` maps logits and labels to the batch's mean loss (a 0-d tensor).
    ``device`` (None: the model's) receives every batch. The returned loss and accuracy are
    means over the epoch's images. They stay on the device: reading a GPU tensor makes the CPU
    wait for the GPU, so the loop never does.
    """
    device = device if device is not None else next(model.parameters()).device
    model.train()  # dropout on; BatchNorm normalizes with batch statistics and updates its own
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    images_seen = 0
    for images, labels in loader:
        images = images.to(device, non_blocking=True)  # no-ops when already there
        labels = labels.to(device, non_blocking=True)
        logits = model(images)  # [B, classes]
        loss = loss_fn(logits, labels)  # 0-d: the mean over the batch
        optimizer.zero_grad()  # backward() adds to .grad, so clear the previous batch's
        loss.backward()  # d loss / d parameter, into each parameter's .grad
        optimizer.step()  # move every parameter against its gradient
        if scheduler is not None:
            scheduler.step()  # the learning rate for the next batch
        loss_sum += loss.detach() * len(labels)  # detach: keep the value, drop the graph
        correct += (logits.argmax(dim=1) == labels).sum()
        images_seen += len(labels)
    if images_seen == 0:
        raise ValueError("the loader yielded no batches")
    return EpochStats(loss_sum / images_seen, correct / images_seen, images_seen)


def evaluate(
    model: nn.Module,
    loader: Batches,
    *,
    loss_fn: LossFunction | None = None,
    device: str | torch.device | None = None,
) -> dict[str, float]:
    """Mean loss (cross-entropy by default) and accuracy (a fraction) of ``model`` on ``loader``.

    The counterpart of :func:`train_one_epoch`: eval mode, no gradients, no updates. Batches
    are images [B, C, H, W] and labels [B]; every batch is weighted by its size. Each submodule
    gets back the train/eval mode it had. ``device`` works as in :func:`fit`.

    Under ``torchrun`` each rank evaluates its shard of ``loader`` and the sums of losses,
    correct predictions and images are added across ranks before dividing: every rank returns
    the exact accuracy on the whole split.
    """
    device = _resolve_device(model, device)
    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
    model.to(device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    images_seen = 0
    with torch.no_grad(), _eval_mode(model):
        for images, labels in loader:
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            logits = model(images)  # [B, classes]
            loss_sum += loss_fn(logits, labels) * len(labels)
            correct += (logits.argmax(dim=1) == labels).sum()
            images_seen += len(labels)
    # Sum over ranks, then divide: the global accuracy, not a mean of per-rank accuracies.
    count = torch.tensor(images_seen, device=device)
    loss_sum, correct, count = distributed.all_reduce_sum(loss_sum, correct, count)
    if count.item() == 0:
        raise ValueError("the loader yielded no images")
    return {"loss": loss_sum.item() / count.item(), "accuracy": correct.item() / count.item()}


def predict(
    model: nn.Module, loader: Batches, *, device: str | torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's logits [N, classes] and the true labels [N] for every image, on the CPU.

    For confusion matrices (``logits.argmax(1)``) and for finding the worst errors.
    ``device`` works as in :func:`fit`; the model's train/eval modes are restored. Under
    ``torchrun`` each rank returns the rows of its own shard of ``loader`` only.
    """
    _batch_count(loader, "loader")
    device = _resolve_device(model, device)
    model.to(device)
    all_logits, all_labels = [], []
    with torch.no_grad(), _eval_mode(model):
        for images, labels in loader:
            all_logits.append(model(images.to(device, non_blocking=True)).float().cpu())
            all_labels.append(labels.cpu())
    return torch.cat(all_logits), torch.cat(all_labels)


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
    overwrite: bool = False,
    progress: bool | None = None,
    channels_last: bool | None = None,
    sync_batchnorm: bool = False,
    precise_bn: bool = False,
) -> History:
    """Train ``model`` for ``epochs`` epochs and return the per-epoch :class:`History`.

    Each epoch is :func:`train_one_epoch` on ``train_loader``, then :func:`evaluate` on
    ``val_loader``; the rest of this function is what a long run needs around that loop.

    Args:
        model: a classifier mapping images [B, C, H, W] to logits [B, classes].
        train_loader: iterable of (images, labels) batches with ``len()``. A loader with
            ``set_epoch(epoch)`` is told the 0-based epoch before each epoch, so it can
            reshuffle reproducibly.
        val_loader: the *validation* loader (images held out from training, not the test
            set), evaluated after every epoch; the ``val_*`` columns of the History. Keep the
            test set for one final :func:`evaluate`.
        optimizer: a ready optimizer, or None for ``AdamW(lr=lr or 1e-3)``.
        scheduler: None, ``"onecycle"`` (peaking at the optimizer's lr), ``"cosine"``, or
            ``make(optimizer, total_steps)``; it steps after every batch.
        loss_fn: None for cross-entropy with ``label_smoothing``; also used for validation.
        device: None keeps a model that is already on a GPU there and otherwise uses
            :func:`mnlib.get_device`. The model and the batches are moved to it.
        amp: mixed precision, CUDA only. None: bf16 on GPUs with compute capability >= 8.0,
            fp16 with a GradScaler on older ones (Colab's T4), off on the CPU and MPS.
            True, False, "bf16" or "fp16" choose explicitly.
        checkpoint: a file written (atomically) after every epoch. An existing file is never
            replaced silently: pass ``resume=True`` to continue it or ``overwrite=True``.
        resume: continue from ``checkpoint`` if it exists (otherwise start fresh). The result
            is the same, bit for bit on the CPU, as a run that was never interrupted. The
            optimizer's settings (lr, weight decay, ...) must be the ones of the saved run: a
            different value is a RuntimeError naming both, not silently ignored.
        overwrite: start a new run even if ``checkpoint`` exists, replacing it after epoch 1.
        progress: batch progress bars and one summary line per epoch; None shows them unless
            the budget is "quick" (CI), False is silent.
        channels_last: store conv weights and images channel-last (NHWC), the layout GPU
            convolution kernels are fastest with. None: on for CUDA with a model that has
            ``nn.Conv2d`` layers, off otherwise. The model gets its layout back at the end.
        sync_batchnorm: under torchrun with GPUs, replace every BatchNorm by ``SyncBatchNorm``
            (in place), which normalizes with the statistics of the global batch instead of
            each rank's share of it. Worth it when the per-GPU batch is small (below ~32);
            costs one extra all-reduce per BatchNorm layer. Ignored on one process.
        precise_bn: after every epoch, before validating (and checkpointing), measure every
            BatchNorm's statistics again over ``train_loader`` with the epoch's final weights
            (:func:`mnlib.train.batchnorm.recompute_batchnorm_statistics`). One extra forward
            pass over the training data per epoch. Needed when a run is only tens of steps
            long: the running averages have not yet forgotten their starting values, and a
            MobileNet that trains well can be at chance in evaluation mode.

    Under ``torchrun`` (``python -m torch.distributed.run --nproc_per_node=N``) the same call
    trains data-parallel: the model is wrapped in ``DistributedDataParallel`` (gradients are
    averaged across ranks after every backward pass), each rank trains on its shard of every
    batch (:func:`mnlib.data.loaders` shards by itself), the History holds metrics summed over
    all ranks, and only rank 0 prints and writes the checkpoint. Every rank returns the same
    History and ends with the same weights.

    Raises:
        FloatingPointError: as soon as a training loss, the weights, the BatchNorm statistics
            or the validation loss stop being finite, naming the epoch; that epoch is never
            checkpointed. On a GPU the training loss is read every 50 batches, not every batch
            (reading waits for the GPU), so a few NaN updates may happen before it stops.
    """
    _check_arguments(
        epochs, optimizer, lr, scheduler, loss_fn, label_smoothing, checkpoint, resume, overwrite
    )
    check_bool(precise_bn, "precise_bn")
    distributed.init_from_env()  # under torchrun: join the process group (once)
    steps_per_epoch = _batch_count(train_loader, "train_loader")
    if val_loader is not None:
        _batch_count(val_loader, "val_loader")
    device = _resolve_device(model, device)
    amp_dtype = _resolve_amp(amp, device)
    channels_last = _resolve_channels_last(channels_last, model, device)
    show = progress if progress is not None else budget_name() != "quick"
    show = show and distributed.is_main_process()  # N ranks would print every line N times

    model.to(device)
    if optimizer is None:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr if lr is not None else DEFAULT_LR)
    hyperparameters = optimizer_hyperparameters(optimizer)  # before a scheduler changes the lr
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
        check_hyperparameters(state, checkpoint, optimizer, hyperparameters)
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
            rank=distributed.rank(),
        )
        _say(show, f"resuming from {checkpoint} after epoch {done}")
    elif resume:
        _say(show, f"no checkpoint at {checkpoint} yet; starting fresh")

    # What train_one_epoch is given: the same model, optimizer and loss, with fit's extras.
    tuned = amp_dtype is not None or channels_last
    stepper = _ScaledStepper(optimizer, scaler) if scaler.is_enabled() else optimizer
    watch = _LossWatch(loss_fn, scaler, check_every=_check_interval(device))
    with _memory_format(model, channels_last):
        # Wrapped after the layout change: DDP's gradient buckets copy the parameters' strides.
        trained = _data_parallel(model, device, sync_batchnorm)
        forward = _TunedForward(trained, amp_dtype, channels_last) if tuned else trained
        # Evaluation runs the plain model: each rank measures its shard, evaluate() sums them.
        evaluated = _TunedForward(model, amp_dtype, channels_last) if tuned else model
        for epoch in range(done + 1, epochs + 1):
            start = time.perf_counter()
            _set_epoch(train_loader, epoch - 1)
            batches = _batches(train_loader, "train_loader")
            with _progress_bar(batches, steps_per_epoch, f"epoch {epoch}/{epochs}", show) as bar:
                watch.start_epoch(epoch, bar)
                stats = train_one_epoch(
                    forward, bar, stepper, watch, scheduler=lr_scheduler, device=device
                )
                watch.finish_epoch()
            # Reading a result waits for all the GPU work queued before it: the epoch is done.
            train_loss, train_accuracy, train_images = _global_epoch_stats(stats)
            train_seconds = time.perf_counter() - start
            if precise_bn:
                recompute_batchnorm_statistics(
                    evaluated, _batches(train_loader, "train_loader"), device=device
                )
            _check_finite_state(model, epoch)
            val = {"loss": None, "accuracy": None}
            if val_loader is not None:
                val_batches = _batches(val_loader, "val_loader")
                val = evaluate(evaluated, val_batches, loss_fn=loss_fn, device=device)
                if not math.isfinite(val["loss"]):
                    raise FloatingPointError(
                        f"the validation loss is {val['loss']} after epoch {epoch} (counted from "
                        "1); training stopped and the epoch was not checkpointed"
                    )
            history.append(
                train_loss=train_loss,
                train_accuracy=train_accuracy,
                val_loss=val["loss"],
                val_accuracy=val["accuracy"],
                lr=optimizer.param_groups[0]["lr"],
                seconds=time.perf_counter() - start,
                images_per_second=train_images / train_seconds,
            )
            if checkpoint is not None:
                # Every rank's random state (dropout masks), collected on every rank...
                rng_per_rank = distributed.gather_objects(rng_state())
                state = training_state(
                    epoch=epoch,
                    model=model,
                    optimizer=optimizer,
                    scheduler=lr_scheduler,
                    scaler=scaler,
                    history=history,
                    total_steps=total_steps,
                    hyperparameters=hyperparameters,
                    rng_per_rank=rng_per_rank,
                )
                if distributed.is_main_process():  # ...but one file, written by rank 0 only
                    save_checkpoint(checkpoint, state)
                distributed.barrier()  # nobody reads the file before rank 0 has written it
            _say(show, _epoch_summary(history, epochs))
    return history


# --- what fit adds around train_one_epoch ---------------------------------------------------


def _data_parallel(model: nn.Module, device: torch.device, sync_batchnorm: bool) -> nn.Module:
    """``model`` in ``DistributedDataParallel`` when several ranks train, else unchanged.

    DDP broadcasts rank 0's weights at construction (every rank starts equal) and averages the
    gradients across ranks during ``backward()`` (every rank makes the same update).
    """
    if not distributed.is_distributed():
        return model
    if sync_batchnorm:
        if device.type != "cuda":
            raise ValueError(
                f"sync_batchnorm=True needs CUDA GPUs: PyTorch's SyncBatchNorm does not run on "
                f"{device.type}; use sync_batchnorm=False"
            )
        # In place for every nested BatchNorm; the Parameters stay the optimizer's ones.
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def _set_epoch(loader: Batches, epoch: int) -> None:
    """Tell ``loader`` (or its sampler, e.g. a ``DistributedSampler``) the epoch to draw."""
    for owner in (loader, getattr(loader, "sampler", None)):
        if hasattr(owner, "set_epoch"):
            owner.set_epoch(epoch)
            return


def _global_epoch_stats(stats: EpochStats) -> tuple[float, float, int]:
    """Training loss, accuracy and image count of the epoch summed over all ranks."""
    images = torch.tensor(stats.images, device=stats.loss.device)
    loss_sum, correct, images = distributed.all_reduce_sum(
        stats.loss * stats.images, stats.accuracy * stats.images, images
    )
    return loss_sum.item() / images.item(), correct.item() / images.item(), int(images.item())


class _TunedForward(nn.Module):
    """The model as :func:`fit` runs it on a GPU: channel-last images, the forward pass under
    autocast (matrix products in bf16/fp16), and float32 logits [B, classes] for the loss."""

    def __init__(self, model: nn.Module, amp_dtype: torch.dtype | None, channels_last: bool):
        super().__init__()
        self.model, self.amp_dtype, self.channels_last = model, amp_dtype, channels_last

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.channels_last and images.dim() == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        amp_on = self.amp_dtype is not None
        with torch.autocast(images.device.type, dtype=self.amp_dtype, enabled=amp_on):
            return self.model(images).float()


class _ScaledStepper:
    """``optimizer.step()`` through an fp16 GradScaler: unscale the gradients, skip the update
    if any is inf or NaN, and adapt the scale (``scaler.step(optimizer); scaler.update()``)."""

    def __init__(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler):
        self.optimizer, self.scaler = optimizer, scaler

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.scaler.step(self.optimizer)
        self.scaler.update()


class _LossWatch:
    """fit's loss function: ``loss_fn`` plus the bookkeeping :func:`train_one_epoch` leaves out.

    It keeps each batch's loss (0-d) on the device and reads them (a host sync) only every
    ``check_every`` batches and at the end of the epoch. A loss that is not finite then stops
    the run, naming the first bad batch; otherwise the progress bar shows the running mean.
    With ``check_every=1`` (the CPU, where reading is free) a bad loss stops the run before its
    update. With an enabled GradScaler the loss's gradient is multiplied by the scale, as
    ``scaler.scale(loss).backward()`` would, while the loss value itself stays unscaled.
    """

    def __init__(self, loss_fn: LossFunction, scaler: torch.amp.GradScaler, check_every: int):
        self.loss_fn, self.scaler, self.check_every = loss_fn, scaler, check_every
        self.start_epoch(0, None)

    def start_epoch(self, epoch: int, bar) -> None:
        self.epoch, self.bar = epoch, bar
        self.losses: list[torch.Tensor] = []  # one 0-d tensor per batch, on the device
        self.checked, self.loss_sum = 0, 0.0

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = self.loss_fn(logits, labels)
        self.losses.append(loss.detach())
        if len(self.losses) % self.check_every == 0:
            self.check()
        if self.scaler.is_enabled():
            loss.register_hook(self.scaler.scale)  # scales the gradient flowing back from loss
        return loss

    def finish_epoch(self) -> None:
        if self.checked < len(self.losses):
            self.check()

    def check(self) -> None:
        new_sum = torch.stack(self.losses[self.checked :]).sum().item()  # waits for the GPU
        self.checked, self.loss_sum = len(self.losses), self.loss_sum + new_sum
        if not math.isfinite(self.loss_sum):
            finite = torch.isfinite(torch.stack(self.losses)).tolist()
            batch = finite.index(False) + 1 if False in finite else self.checked
            raise FloatingPointError(
                f"the loss is {self.losses[batch - 1].item()} at epoch {self.epoch}, batch {batch} "
                "(both counted from 1); training stopped. A lower learning rate usually helps."
            )
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{self.loss_sum / self.checked:.4f}", refresh=False)


def _check_interval(device: torch.device) -> int:
    """How many batches pass between two reads of the loss: on the CPU reading is free."""
    return 1 if device.type == "cpu" else GPU_CHECK_EVERY


def _batches(loader: Batches, name: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The batches of ``loader``; a ValueError naming it if it yields none (despite a len)."""
    count = 0
    for count, batch in enumerate(loader, start=1):  # noqa: B007 (count is read after the loop)
        yield batch
    if count == 0:
        raise ValueError(f"{name} yielded no batches, although len({name}) is {len(loader)}")


@contextmanager
def _progress_bar(batches: Iterable, total: int, description: str, show: bool):
    # TQDM_DISABLE=1 keeps bars out of committed outputs. Plain tqdm honours it by itself, but
    # the notebook bars that tqdm.auto picks when ipywidgets is installed do not, so check here.
    switch_off = {} if show and not _tqdm_disabled() else {"disable": True}
    with tqdm(
        batches, total=total, desc=description, unit="batch", leave=False, **switch_off
    ) as bar:
        yield bar


def _tqdm_disabled() -> bool:
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false")


@contextmanager
def _memory_format(model: nn.Module, channels_last: bool):
    """Keep ``model``'s 4-D weights channel-last inside the block, then restore the layout."""
    convert = channels_last and not _is_channels_last(model)
    if convert:
        model.to(memory_format=torch.channels_last)  # same Parameter objects, new strides
    try:
        yield
    finally:
        if convert:
            model.to(memory_format=torch.contiguous_format)


def _is_channels_last(model: nn.Module) -> bool:
    weights = [p for p in model.parameters() if p.dim() == 4]
    return bool(weights) and all(
        p.is_contiguous(memory_format=torch.channels_last) for p in weights
    )


def _check_finite_state(model: nn.Module, epoch: int) -> None:
    """FloatingPointError if a weight or a buffer (BatchNorm's running statistics) is not finite."""
    named = [
        (name, tensor)
        for name, tensor in chain(model.named_parameters(), model.named_buffers())
        if tensor.is_floating_point()
    ]
    if not named:
        return
    finite = torch.stack([torch.isfinite(tensor).all() for _, tensor in named])
    if not finite.all():  # one host sync per epoch
        name = named[int(finite.int().argmin())][0]
        raise FloatingPointError(
            f"{name} is no longer finite after epoch {epoch} (counted from 1), although every "
            "training loss was; training stopped and the epoch was not checkpointed. "
            "A lower learning rate usually helps."
        )


@contextmanager
def _eval_mode(model: nn.Module):
    """Eval mode inside the block; then every submodule gets its own previous mode back."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training


# --- arguments ------------------------------------------------------------------------------


def _check_arguments(
    epochs, optimizer, lr, scheduler, loss_fn, label_smoothing, checkpoint, resume, overwrite
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
    if resume and overwrite:
        raise ValueError(
            "resume=True continues the checkpoint, overwrite=True replaces it: pick one"
        )
    if checkpoint is not None and Path(checkpoint).exists() and not (resume or overwrite):
        raise FileExistsError(
            f"the checkpoint {checkpoint} already exists and would be replaced by this run; "
            "pass resume=True to continue it, overwrite=True to start over, or another path"
        )


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
        device = torch.device(device)
    else:
        parameter = next(model.parameters(), None)
        on_accelerator = parameter is not None and parameter.device.type != "cpu"
        device = parameter.device if on_accelerator else get_device()
    if device.type == "cuda" and device.index is None and distributed.is_distributed():
        # "cuda" means the current GPU, which init_from_env set to this rank's; DDP needs it named.
        return torch.device("cuda", torch.cuda.current_device())
    return device


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


def _resolve_channels_last(
    channels_last: bool | None, model: nn.Module, device: torch.device
) -> bool:
    if channels_last not in (None, True, False):
        raise ValueError(f"channels_last must be None, True or False, got {channels_last!r}")
    if channels_last is None:
        # Measured on an H200 (MobileNetV2, bf16): 10.2k -> 13.2k img/s per training step.
        has_conv = any(isinstance(module, nn.Conv2d) for module in model.modules())
        return device.type == "cuda" and has_conv
    return channels_last


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
