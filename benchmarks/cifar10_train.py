"""Train one CIFAR-10 model with the course's recipe and record the result as JSON.

The recipe is :data:`mnlib.train.recipes.CIFAR_RECIPE` (``--recipe course``, the default): SGD
with Nesterov momentum, weight decay on weights only (not on BatchNorm or biases), a one-cycle
schedule, random crop + flip, and, on a GPU, bf16 mixed precision and channels-last through
``mnlib.train.fit``. ``--recipe roadmap`` runs :data:`mnlib.train.recipes.ROADMAP_RECIPE`
instead, the source roadmap's recipe as written (Adam 1e-3, constant lr, no augmentation), so
that chapter 7 can measure its claims; mixed precision and channels-last stay as for the course.

Discipline: the run trains on the training images left after carving out a class-balanced
validation split (5,000 images), keeps the weights of the epoch with the best *validation*
accuracy, and only then evaluates the test set, once. The JSON records where the number came
from: device, versions, mnlib commit (and whether the tree had uncommitted changes), UTC date,
the command line, the per-epoch curve, the final validation and test accuracy, the wall time.

Usage::

    python benchmarks/cifar10_train.py --model resnet20                   # the full recipe
    python benchmarks/cifar10_train.py --model resnet56 --epochs 30 --out benchmarks/results/x.json
    python benchmarks/cifar10_train.py --model resnet20 --tiny            # smoke run, seconds
    python benchmarks/cifar10_train.py --model roadmap_mobilenet_v2 --recipe roadmap
    python benchmarks/cifar10_train.py --model mobilenet_v2 --epochs 90 --label-smoothing 0.1

``--tiny`` trains 1 epoch on 256 images on the CPU (500 validation and 500 test images) to
check that everything runs; its accuracy means nothing. Needs CIFAR-10 (``MNLIB_DATA`` or a
download). The default output is ``benchmarks/results/cifar10_<model>.json`` (with
``--recipe roadmap``: ``cifar10_<model>_roadmap.json``).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torchvision
from torch import nn

import mnlib
from mnlib.data import TensorLoader, loaders
from mnlib.models import create_model, list_models
from mnlib.provenance import device_description, provenance, write_json_atomic
from mnlib.train import evaluate, fit
from mnlib.train.recipes import CIFAR_RECIPE, ROADMAP_RECIPE, Recipe, make_optimizer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
VAL_SIZE = 5_000  # the validation split every chapter uses
# --tiny: enough to run every code path (train, validate, select, test, write) in seconds.
TINY = {"epochs": 1, "subset": 256, "val_size": 500, "test_subset": 500}
RECIPES = {"course": CIFAR_RECIPE, "roadmap": ROADMAP_RECIPE}  # --recipe NAME


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, choices=list_models(), metavar="NAME")
    parser.add_argument(
        "--recipe", choices=sorted(RECIPES), default="course", help="default: course"
    )
    parser.add_argument("--epochs", type=int, help="default: the recipe's")
    parser.add_argument("--batch-size", type=int, help="default: the recipe's")
    parser.add_argument("--lr", type=float, help="(peak) learning rate, default: the recipe's")
    parser.add_argument("--label-smoothing", type=float, help="default: the recipe's")
    parser.add_argument("--subset", type=int, help="train on a class-balanced subset of N images")
    parser.add_argument("--seed", type=int, default=0, help="model init and batch order")
    parser.add_argument("--out", type=Path, help="JSON file (default benchmarks/results/...)")
    parser.add_argument("--tiny", action="store_true", help="1 epoch, 256 images, CPU: a check")
    parser.add_argument(
        "--precise-bn",
        action="store_true",
        help="re-measure BatchNorm statistics after every epoch (short CPU runs; chapter 7)",
    )
    arguments = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "subset"):
        value = getattr(arguments, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    if arguments.lr is not None and not arguments.lr > 0:
        parser.error(f"--lr must be positive, got {arguments.lr}")
    smoothing = arguments.label_smoothing
    if smoothing is not None and not 0 <= smoothing < 1:
        parser.error(f"--label-smoothing must be in [0, 1), got {smoothing}")
    if arguments.tiny and (arguments.epochs is not None or arguments.subset is not None):
        parser.error("--tiny sets the epochs and the subset itself; drop --epochs/--subset")
    return arguments


def recipe_for(arguments: argparse.Namespace) -> Recipe:
    """The ``--recipe`` (CIFAR_RECIPE or ROADMAP_RECIPE) with the command line's overrides."""
    overrides = {
        "epochs": TINY["epochs"] if arguments.tiny else arguments.epochs,
        "batch_size": arguments.batch_size,
        "lr": arguments.lr,
        "label_smoothing": arguments.label_smoothing,
    }
    recipe = RECIPES[arguments.recipe]
    return replace(recipe, **{k: v for k, v in overrides.items() if v is not None})


def make_schedule(
    optimizer: torch.optim.Optimizer, name: str, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The whole run's learning-rate schedule, stepped after every batch (as ``fit``'s)."""
    if name == "onecycle":  # warm up to the optimizer's lr, then anneal far below it
        peaks = [group["lr"] for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=total_steps)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if name == "constant":  # the roadmap's: the optimizer's lr throughout
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    raise ValueError(
        f"unknown scheduler {name!r} in the recipe; use 'onecycle', 'cosine' or 'constant'"
    )


class EpochOffset:
    """``loader`` as seen by a ``fit`` call that trains epoch ``offset`` of a longer run.

    ``fit(..., epochs=1)`` tells its loader "epoch 0" every time; this shifts that to the real
    epoch, so each epoch gets its own shuffle and augmentation, as in one long ``fit``.
    """

    def __init__(self, loader: TensorLoader, offset: int) -> None:
        self.loader, self.offset = loader, offset

    def set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(self.offset + epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return iter(self.loader)


def train_and_select(
    model: nn.Module,
    train: TensorLoader,
    val: TensorLoader,
    recipe: Recipe,
    device: torch.device,
    precise_bn: bool = False,
) -> tuple[list[dict], int]:
    """Train ``recipe.epochs`` epochs; keep the weights of the best validation epoch.

    ``fit`` runs one epoch at a time (bf16 and channels-last on a GPU) with one optimizer and
    one schedule for the whole run. Returns the per-epoch rows and the best epoch (1-based);
    ``model`` ends with that epoch's weights. (With fp16 on an older GPU, each epoch's ``fit``
    starts a fresh GradScaler, which costs a few skipped steps per epoch; bf16 needs none.)
    """
    optimizer = make_optimizer(model, recipe)
    scheduler = make_schedule(optimizer, recipe.scheduler, recipe.epochs * len(train))
    rows, best_accuracy, best_epoch, best_state = [], -1.0, 0, None
    for epoch in range(1, recipe.epochs + 1):
        history = fit(
            model,
            EpochOffset(train, epoch - 1),
            val,
            epochs=1,
            optimizer=optimizer,
            scheduler=lambda optimizer, steps: scheduler,  # the run's schedule, not a new one
            label_smoothing=recipe.label_smoothing,
            device=device,
            channels_last=True,  # fit's GPU default; also 1.3-1.6x faster on a CPU
            progress=False,
            precise_bn=precise_bn,
        )
        row = {**history.to_rows()[0], "epoch": epoch}
        rows.append(row)
        print(
            f"epoch {epoch}/{recipe.epochs}  train loss {row['train_loss']:.4f} "
            f"acc {row['train_accuracy']:.2%}  val loss {row['val_loss']:.4f} "
            f"acc {row['val_accuracy']:.2%}  {row['seconds']:.1f} s",
            flush=True,
        )
        if row["val_accuracy"] > best_accuracy:
            best_accuracy, best_epoch = row["val_accuracy"], epoch
            best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return rows, best_epoch


def main(argv: list[str] | None = None) -> dict:
    arguments = parse_arguments(argv)
    recipe = recipe_for(arguments)
    device = torch.device("cpu") if arguments.tiny else mnlib.get_device()
    subset = TINY["subset"] if arguments.tiny else arguments.subset
    suffix = "_roadmap" if arguments.recipe == "roadmap" else ""
    suffix += "_tiny" if arguments.tiny else ""
    out = arguments.out or RESULTS / f"cifar10_{arguments.model}{suffix}.json"
    started = datetime.datetime.now(datetime.timezone.utc)
    start = time.perf_counter()

    mnlib.seed_everything(arguments.seed)  # right before the model, as the chapters do
    # Built before the data is loaded, so that a model without a CIFAR variant fails at once.
    model = create_model(arguments.model, num_classes=10, cifar=True)
    train, val, test = loaders(
        "cifar10",
        batch_size=recipe.batch_size,
        augment=recipe.augment,
        subset=subset,
        val_size=TINY["val_size"] if arguments.tiny else VAL_SIZE,
        test_subset=TINY["test_subset"] if arguments.tiny else None,
        device=device,
        seed=arguments.seed,
    )
    print(
        f"{arguments.model}: {mnlib.profile.count_params(model):,} parameters, "
        f"{train.dataset_size:,} training images, {recipe}",
        flush=True,
    )
    rows, best_epoch = train_and_select(model, train, val, recipe, device, arguments.precise_bn)
    val_result = evaluate(model, val, device=device)  # the selected (best-epoch) weights
    test_result = evaluate(model, test, device=device)  # once, after everything is chosen
    result = {
        "model": arguments.model,
        "parameters": mnlib.profile.count_params(model),
        "recipe_name": arguments.recipe,
        "recipe": asdict(recipe),
        "data": {
            "train_images": train.dataset_size,
            "val_images": val.dataset_size,
            "test_images": test.dataset_size,
            "subset": subset,
            "seed": arguments.seed,
        },
        "curve": rows,
        "best_epoch": best_epoch,
        "val_accuracy": val_result["accuracy"],
        "val_loss": val_result["loss"],
        "test_accuracy": test_result["accuracy"],
        "test_loss": test_result["loss"],
        "wall_seconds": time.perf_counter() - start,
        "provenance": {
            **provenance(
                device_description(device),
                "benchmarks/cifar10_train.py",
                argv if argv is not None else sys.argv[1:],
                started,
                torchvision=torchvision.__version__,
            ),
            "arguments": {
                k: str(v) if isinstance(v, Path) else v for k, v in vars(arguments).items()
            },
        },
    }
    if not mnlib.train.distributed.is_main_process():
        return result  # under torchrun every rank got here; rank 0 alone writes the JSON
    write_json_atomic(result, out)
    print(
        f"best epoch {best_epoch}: val {result['val_accuracy']:.2%}, "
        f"test {result['test_accuracy']:.2%} ({result['wall_seconds']:.0f} s); wrote {out}"
    )
    return result


if __name__ == "__main__":
    main()
