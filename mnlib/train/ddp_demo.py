"""A small data-parallel run to launch with torchrun: ``python -m mnlib.train.ddp_demo``.

One process::

    python -m mnlib.train.ddp_demo --epochs 2

Two processes on one machine, on the CPU with the gloo backend (also where there are GPUs:
this is a demonstration), with the same global batch of 128, so 64 images per rank and step::

    torchrun --standalone --nproc_per_node=2 -m mnlib.train.ddp_demo --epochs 2

Nothing in the training code changes between the two: :func:`mnlib.data.loaders` gives each
rank its shard, :func:`mnlib.train.fit` wraps the model in ``DistributedDataParallel``, and
:func:`mnlib.train.evaluate` adds up the ranks' correct predictions. Only rank 0 prints and
writes ``--json``. ``--crash-rank`` makes one rank fail on purpose, to see how torchrun stops
the others.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import torch
from torch import nn
from torch.distributed.elastic.multiprocessing.errors import record

from mnlib.config import seed_everything
from mnlib.data import loaders
from mnlib.data.fast import TensorLoader
from mnlib.data.splits import Loaders
from mnlib.train import distributed
from mnlib.train.loop import evaluate, fit


def mlp() -> nn.Module:
    """A 784-128-10 MLP, no BatchNorm (so nothing depends on how the batch is split)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


def synthetic_loaders(size: int, batch_size: int, seed: int) -> Loaders:
    """Learnable MNIST-shaped data without files: class c lights up rows 2c and 2c + 1.

    ``size`` training images (uint8 [size, 1, 28, 28]), a quarter of that for validation and
    for test, all drawn from a generator seeded with ``seed`` (the same on every rank).
    """
    generator = torch.Generator().manual_seed(seed)

    def part(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(0, 10, (count,), generator=generator)
        images = torch.randint(0, 120, (count, 1, 28, 28), generator=generator, dtype=torch.uint8)
        for row in (0, 1):
            images[torch.arange(count), 0, 2 * labels + row + 4] = 255
        return images, labels

    shared = {"name": "mnist", "batch_size": batch_size, "seed": seed, "device": "cpu"}
    return Loaders(
        train=TensorLoader(*part(size), shuffle=True, **shared),
        val=TensorLoader(*part(size // 4), shuffle=False, **shared),
        test=TensorLoader(*part(size // 4), shuffle=False, **shared),
    )


def make_loaders(data: str, subset: int, batch_size: int, seed: int) -> Loaders:
    """MNIST (a class-balanced ``subset``, 2,000 validation images) or synthetic data."""
    if data == "synthetic":
        return synthetic_loaders(subset, batch_size, seed)
    # Rank 0 first: on Colab the first call downloads MNIST, and two downloads into the same
    # folder at once would trip over each other.
    options = {"subset": subset, "val_size": 2000, "test_subset": 2000, "seed": seed}
    options["device"] = "cpu"  # a CPU demo (gloo), also on a machine with one GPU
    distributed.init_from_env()
    if not distributed.is_main_process():
        distributed.barrier()
    parts = loaders("mnist", batch_size, **options)
    if distributed.is_main_process():
        distributed.barrier()
    return parts


def weights_digest(model: nn.Module) -> str:
    """A short fingerprint of the weights: equal on all ranks after a DDP run."""
    digest = hashlib.sha256()
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def crash_on(model: nn.Module, rank: int, step: int) -> None:
    """Make rank ``rank`` raise in its training step number ``step`` (counted from 1)."""
    calls = {"count": 0}

    def hook(module: nn.Module, inputs: tuple) -> None:
        if not module.training:  # validation batches do not count
            return
        calls["count"] += 1
        if distributed.rank() == rank and calls["count"] == step:
            raise RuntimeError(f"simulated failure on rank {rank} at training step {step}")

    model.register_forward_pre_hook(hook)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("mnist", "synthetic"), default="mnist")
    parser.add_argument("--subset", type=int, default=4096, help="training images")
    parser.add_argument("--batch-size", type=int, default=128, help="global batch (all ranks)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads per rank")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="rank 0 writes the results here")
    parser.add_argument("--weights", type=Path, default=None, help="rank 0 saves the weights")
    parser.add_argument("--crash-rank", type=int, default=None, help="this rank fails on purpose")
    parser.add_argument("--crash-step", type=int, default=3)
    return parser.parse_args(argv)


@record  # on a failure, torchrun's summary shows this rank's exception and traceback
def main(argv: list[str] | None = None) -> dict:
    """Train the MLP with :func:`mnlib.train.fit` on every rank; rank 0 reports. Returns results."""
    args = parse_arguments(argv)
    distributed.init_from_env(backend="gloo")  # the demo trains on the CPU, even beside GPUs
    world = distributed.world_size()
    if args.batch_size % world:
        raise ValueError(f"--batch-size {args.batch_size} must be divisible by {world} ranks")
    # Ranks on one machine share its cores: give each its share of intra-op threads.
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    threads = args.threads or max(1, (os.cpu_count() or 1) // local_world)
    torch.set_num_threads(threads)
    seed_everything(args.seed)

    train, val, test = make_loaders(args.data, args.subset, args.batch_size // world, args.seed)
    model = mlp()
    if args.crash_rank is not None:
        crash_on(model, args.crash_rank, args.crash_step)
    start = time.perf_counter()
    history = fit(
        model,
        train,
        val,
        epochs=args.epochs,
        lr=args.lr,
        device="cpu",
        checkpoint=args.checkpoint,
        resume=args.resume,
        overwrite=args.checkpoint is not None and not args.resume,
        progress=False,
    )
    seconds = time.perf_counter() - start
    test_metrics = evaluate(model, test)  # every rank its shard, summed across ranks
    results = {
        "world_size": world,
        "threads_per_rank": threads,
        "batch_per_rank": args.batch_size // world,
        "global_batch": args.batch_size,
        "train_images_per_rank": train.local_size,
        "seconds": seconds,
        "history": history.to_dict(),
        "test_accuracy": test_metrics["accuracy"],
        "weights": weights_digest(model),
    }
    if distributed.is_main_process():
        print(f"{world} process(es) x {threads} thread(s), batch {args.batch_size // world} each")
        print(history)
        print(f"test accuracy {100 * results['test_accuracy']:.2f}%  weights {results['weights']}")
        if args.json is not None:
            args.json.write_text(json.dumps(results, indent=1) + "\n")
        if args.weights is not None:
            torch.save(model.state_dict(), args.weights)
    return results


if __name__ == "__main__":
    main()
