"""Choose the training recipes on the validation split, never on the test set.

Chapter 2's ``MLP_RECIPE`` and chapter 3's ``CNN_RECIPE`` (:mod:`mnlib.train.recipes`) are
compared here with a few neighbouring candidates (``--dataset mnist``, the default), and so is
Part II's ``CIFAR_RECIPE`` (``--dataset cifar10``: ResNet-20, peak lr x label smoothing). Every
candidate trains on the training images that ``mnlib.data.loaders`` keeps after carving out the
class-balanced validation split (MNIST: 55,000 of the 60,000; CIFAR-10: 45,000 of the 50,000,
or a subset), once per seed, and is scored by its accuracy on the 5,000 validation images after
its last epoch. The test set is never loaded.

A difference between two candidates counts only when it is larger than the spread between the
seeds of one candidate; the script prints both. Seed 0 with the current recipe is exactly the
run a chapter makes (``seed_everything(0)`` right before ``create_model``, loader seed 0).

Usage::

    python benchmarks/recipes_on_validation.py           # 18 training runs, see below
    python benchmarks/recipes_on_validation.py --quick   # smoke run: 2,000 images, one seed
    python benchmarks/recipes_on_validation.py --dataset cifar10              # CPU proxy run
    python benchmarks/recipes_on_validation.py --dataset cifar10 --epochs 200 --subset 0  # GPU

``CIFAR_RECIPE`` is meant for 200 epochs on a GPU. On a 2-core CPU only a *proxy* fits: the
same recipe shortened to ``--epochs`` (default 4) on a class-balanced ``--subset`` (default
5,000 images; 0 means all 45,000). A proxy can tell whether the peak lr is in a sensible range;
it cannot choose the lr of a 200-epoch run, so its report says which budget it measured.

The full run took 752 s on a 2-vCPU machine shared with other jobs; from the epoch times in
``benchmarks/RESULTS.md``, about 8 minutes are expected on 2 idle cores.

The full run writes its table to ``benchmarks/results/recipes_on_validation.md`` (MNIST) or
``benchmarks/results/recipes_on_validation_cifar10.md`` (with date, machine, torch version and
commit); ``--quick`` only prints unless ``--output`` is given. Needs the data set
(``MNLIB_DATA`` or a download).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

import mnlib
from mnlib.data import loaders
from mnlib.models import create_model
from mnlib.train import fit
from mnlib.train.recipes import (
    CIFAR_RECIPE,
    CNN_RECIPE,
    MLP_RECIPE,
    Recipe,
    fit_scheduler,
    make_optimizer,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_OUTPUT = {
    "mnist": RESULTS / "recipes_on_validation.md",
    "cifar10": RESULTS / "recipes_on_validation_cifar10.md",
}
QUICK_SUBSET = 2_000  # training images per run with --quick
CIFAR_PROXY = {"epochs": 4, "subset": 5_000}  # what fits a 2-core CPU (about a minute a run)


@dataclass(frozen=True)
class Candidate:
    """One recipe for one registered model; ``current`` marks the recipe mnlib ships."""

    model: str
    recipe: Recipe
    current: bool


@dataclass(frozen=True)
class Result:
    """Validation accuracy (a fraction) after the last epoch, and training seconds, per seed."""

    candidate: Candidate
    accuracies: list[float]
    seconds: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def spread(self) -> float:
        """max - min over the seeds: how much the seed alone moves the result."""
        return max(self.accuracies) - min(self.accuracies)


def candidates(dataset: str, cifar_epochs: int) -> list[Candidate]:
    """The current recipes and their neighbours.

    MNIST: CNN epochs x peak lr, MLP peak lr. CIFAR-10: ResNet-20 with ``CIFAR_RECIPE``
    shortened to ``cifar_epochs``, peak lr x label smoothing.
    """
    if dataset == "cifar10":
        current = replace(CIFAR_RECIPE, epochs=cifar_epochs)
        grid = [
            replace(current, lr=lr, label_smoothing=smoothing)
            for smoothing in (0.0, 0.1)
            for lr in (0.05, 0.1, 0.2)
        ]
        return [Candidate("resnet20", r, r == current) for r in grid]
    cnn = [
        replace(CNN_RECIPE, epochs=epochs, lr=lr) for epochs in (2, 3) for lr in (0.005, 0.01, 0.02)
    ]
    mlp = [replace(MLP_RECIPE, lr=lr) for lr in (1e-3, 2e-3, 4e-3)]
    return [Candidate("cnn", r, r == CNN_RECIPE) for r in cnn] + [
        Candidate("mlp", r, r == MLP_RECIPE) for r in mlp
    ]


def train_on_validation(
    dataset: str,
    model_name: str,
    recipe: Recipe,
    seed: int,
    subset: int | None,
    device: torch.device,
) -> tuple[float, float]:
    """Train ``model_name`` with ``recipe``; return (validation accuracy, training seconds)."""
    train, val, _ = loaders(
        dataset,
        batch_size=recipe.batch_size,
        augment=recipe.augment,
        subset=subset,
        seed=seed,
        device=device,
    )
    mnlib.seed_everything(seed)  # right before the model, as the chapters do
    if dataset == "cifar10":
        model = create_model(model_name, num_classes=10, cifar=True)
        optimizer = make_optimizer(model, recipe)  # SGD, weight decay on weights only
    else:  # the MNIST chapters' optimizer: AdamW on every parameter
        model = create_model(model_name)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay
        )
    start = time.perf_counter()
    history = fit(
        model,
        train,
        val,
        epochs=recipe.epochs,
        optimizer=optimizer,
        scheduler=fit_scheduler(recipe),
        label_smoothing=recipe.label_smoothing,
        device=device,
        channels_last=dataset == "cifar10",  # 1.3-1.6x faster for the CIFAR nets, CPU too
        progress=False,
    )
    return history.val_accuracy[-1], time.perf_counter() - start


def run(args: argparse.Namespace, device: torch.device, verbose: bool = True) -> list[Result]:
    results = []
    for candidate in candidates(args.dataset, args.epochs):
        accuracies, seconds = [], []
        for seed in args.seeds:
            accuracy, took = train_on_validation(
                args.dataset, candidate.model, candidate.recipe, seed, args.subset, device
            )
            accuracies.append(accuracy)
            seconds.append(took)
            if verbose:
                print(f"  {describe(candidate)} seed {seed}: {accuracy:.2%} in {took:.0f} s")
        results.append(Result(candidate, accuracies, seconds))
    return results


def describe(candidate: Candidate) -> str:
    recipe = candidate.recipe
    text = f"{candidate.model} epochs {recipe.epochs} lr {recipe.lr:g}"
    return text + (f" ls {recipe.label_smoothing:g}" if recipe.label_smoothing else "")


def table(results: list[Result]) -> str:
    """A plain-text table, one row per candidate, the current recipes marked with *."""
    lines = [
        f"{'model':<9}{'batch':>6}{'epochs':>7}{'lr':>8}{'wd':>8}{'ls':>5}"
        f"{'val acc (mean)':>16}{'per seed':>20}{'max-min':>9}{'train s':>9}"
    ]
    for result in results:
        recipe = result.candidate.recipe
        per_seed = ", ".join(f"{100 * a:.2f}" for a in result.accuracies)
        mark = " *" if result.candidate.current else ""
        lines.append(
            f"{result.candidate.model:<9}{recipe.batch_size:>6}{recipe.epochs:>7}{recipe.lr:>8g}"
            f"{recipe.weight_decay:>8g}{recipe.label_smoothing:>5g}{result.mean:>15.2%} "
            f"{per_seed:>20}"
            f"{100 * result.spread:>8.2f}%{statistics.fmean(result.seconds):>9.0f}{mark}"
        )
    return "\n".join(lines)


def verdicts(results: list[Result]) -> list[str]:
    """Per model: the best candidate, and whether the current recipe is within seed noise of it."""
    lines = []
    for model in sorted({r.candidate.model for r in results}):
        rows = [r for r in results if r.candidate.model == model]
        best = max(rows, key=lambda r: r.mean)
        current = next(r for r in rows if r.candidate.current)
        noise = max(r.spread for r in rows)  # the largest seed-to-seed spread of any candidate
        gap = best.mean - current.mean
        if len(current.accuracies) < 2:
            verdict = "one seed only, so no seed spread to compare the gap with"
        else:
            within = "within" if gap <= noise else "OUTSIDE"
            verdict = f"{within} the largest seed spread ({100 * noise:.2f} points)"
        lines.append(
            f"{model}: best mean {best.mean:.2%} ({describe(best.candidate)}); current recipe "
            f"{current.mean:.2%}; gap {100 * gap:.2f} points, {verdict}"
        )
    return lines


def commit() -> str:
    """The short commit hash, marked when the working tree has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown (git not available)"
    if not head:
        return "unknown (not a git checkout)"
    return f"{head} with uncommitted changes" if dirty else head


def report(
    results: list[Result], args: argparse.Namespace, device: torch.device, seconds: float
) -> str:
    today = datetime.date.today().isoformat()
    train, val, _ = loaders(args.dataset, subset=args.subset, device="cpu")
    title = "Recipes chosen" if args.dataset == "mnist" else "The CIFAR-10 recipe checked"
    return (
        f"# {title} on validation (`benchmarks/recipes_on_validation.py "
        f"--dataset {args.dataset}`)\n\n"
        f"Measured {today} on the development machine ({args.machine}, "
        f"{platform.machine()}), torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"device {device.type}, commit {commit()}. Training images per run: "
        f"{train.dataset_size:,}; validation: the {val.dataset_size:,}-image split of "
        "`mnlib.data.loaders` (never the test set). "
        f"Seeds {', '.join(map(str, args.seeds))}. Accuracy after the last epoch; "
        "`*` marks the recipe in `mnlib/train/recipes.py`. Times are wall-clock seconds of one "
        "training run (mean over seeds), indicative only on a shared machine; the whole script "
        f"took {seconds:.0f} s.\n\n"
        f"```text\n{table(results)}\n\n" + "\n".join(verdicts(results)) + "\n```\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DEFAULT_OUTPUT), default="mnist")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000 images, 1 seed")
    parser.add_argument(
        "--epochs", type=int, default=CIFAR_PROXY["epochs"], help="CIFAR-10 only: proxy epochs"
    )
    parser.add_argument(
        "--subset",
        type=int,
        default=CIFAR_PROXY["subset"],
        help="CIFAR-10 only: training images per run (0: all)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 0 1")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=None, help="default: mnlib.get_device()")
    parser.add_argument("--output", type=Path, default=None, help="Markdown file to write")
    parser.add_argument("--machine", default="2 vCPU", help="how the report names the machine")
    args = parser.parse_args()
    args.seeds = args.seeds or ([0] if args.quick else [0, 1])
    if args.quick:
        args.subset, args.epochs = QUICK_SUBSET, 1
    elif args.dataset == "mnist" or args.subset == 0:
        args.subset = None  # every training image (the MNIST recipes are chosen at full size)
    output = args.output or (None if args.quick else DEFAULT_OUTPUT[args.dataset])

    torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else mnlib.get_device()
    print(f"torch {torch.__version__}, {args.threads} threads, device {device}, seeds {args.seeds}")
    start = time.perf_counter()
    results = run(args, device)
    print(table(results))
    print("\n".join(verdicts(results)))
    seconds = time.perf_counter() - start
    print(f"total {seconds:.0f} s")
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report(results, args, device, seconds))
        print(f"wrote {output}")


if __name__ == "__main__":
    main()
