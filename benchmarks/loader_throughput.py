"""How much faster is the fast tensor loader than the classic DataLoader? Measured side by side.

(a) The loader alone: one epoch of CIFAR-10's training loader (45,000 images: the training
    split less the 5,000-image validation split) with random crop (4-pixel padding) and
    horizontal flip. Fast path (``mnlib.data.loaders``) vs ``DataLoader`` with per-sample PIL
    transforms (``mnlib.data.classic_loaders``), the better of ``num_workers`` 0 and 2.
    Target: at least 5x.
(b) End to end: one training epoch of chapter 2's MLP on MNIST (55,000 images; Adam, batch
    128, the same plain training loop for both loaders). Target: at least 1.8x.

Every timing follows a short warm-up (a few batches, so worker processes are running and the
optimizer state exists) and covers one full epoch, batches moved to the device included.

Usage: ``MNLIB_DATA=/path/to/data .venv/bin/python benchmarks/loader_throughput.py [--threads N]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F

import mnlib
from mnlib.data import classic_loaders, loaders
from mnlib.models import create_model

BATCH_SIZE = 128
WORKER_COUNTS = (0, 2)
WARMUP_BATCHES = 5

Step = Callable[[torch.Tensor, torch.Tensor], None]


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that the clock measures finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(loader: Iterable, size: int, device: torch.device, step: Step) -> float:
    """Throughput of one full epoch of ``loader`` with ``step`` run on every batch."""
    for _, (images, labels) in zip(range(WARMUP_BATCHES), loader, strict=False):
        step(images.to(device), labels.to(device))
    synchronize(device)
    start = time.perf_counter()
    for images, labels in loader:
        step(images.to(device, non_blocking=True), labels.to(device, non_blocking=True))
    synchronize(device)
    return size / (time.perf_counter() - start)


def no_step(images: torch.Tensor, labels: torch.Tensor) -> None:
    """Part (a) measures the loader alone."""


def mlp_training_step(device: torch.device) -> Step:
    """A fresh chapter-2 MLP (same seed every time) and one Adam step per batch."""
    torch.manual_seed(0)
    model = create_model("mlp").to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(images: torch.Tensor, labels: torch.Tensor) -> None:
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def compare(
    title: str, name: str, augment: bool, make_step: Callable[[], Step], device: torch.device
) -> float:
    """Print one table (fast path, then each classic worker count) and return the ratio."""
    fast_train = loaders(name, BATCH_SIZE, augment=augment, device=device).train
    size = fast_train.dataset_size
    rows = [(f"fast: uint8 tensor on {device.type}, batched ops", fast_train)]
    for workers in WORKER_COUNTS:
        classic = classic_loaders(name, BATCH_SIZE, augment=augment, num_workers=workers)
        rows.append((f"classic DataLoader, num_workers={workers}", classic.train))

    print(f"\n{title}\n  {'pipeline':<44}{'images/s':>10}{'epoch (s)':>11}")
    results = []
    for label, loader in rows:
        throughput = images_per_second(loader, size, device, make_step())
        results.append(throughput)
        print(f"  {label:<44}{throughput:>10,.0f}{size / throughput:>11.2f}")
    return results[0] / max(results[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = mnlib.get_device()
    print(mnlib.environment_report())
    print(f"batch size {BATCH_SIZE}; classic loaders tried with num_workers {WORKER_COUNTS}")

    ratio_a = compare(
        "(a) CIFAR-10 train, loader alone, random crop (pad 4) + horizontal flip, one epoch",
        "cifar10",
        augment=True,
        make_step=lambda: no_step,
        device=device,
    )
    ratio_b = compare(
        "(b) MNIST train, one epoch of chapter 2's MLP (Adam, end to end)",
        "mnist",
        augment=False,
        make_step=lambda: mlp_training_step(device),
        device=device,
    )
    print("\nfast / best classic:")
    print(f"  (a) CIFAR-10 loader alone   {ratio_a:5.1f}x   (target >= 5x)")
    print(f"  (b) MNIST MLP training      {ratio_b:5.1f}x   (target >= 1.8x)")


if __name__ == "__main__":
    main()
