"""Training throughput of a plain loop and of ``fit``'s tuned loop, side by side in one run.

Every row trains the same model (fresh, same seed) on the same synthetic batches:

- plain loop: the loop a learner writes (chapter 2), with ``loss.item()`` after every batch
  (the way ``fit`` used to feed its NaN check and progress bar), images in NCHW;
- fit, NCHW: :func:`mnlib.train.fit` with ``channels_last=False``: the loss stays on the GPU
  and is read every 50 batches;
- fit, channels_last: ``fit``'s default on a GPU, weights and images channel-last (NHWC).

Both use the precision ``fit`` picks: bf16 autocast on GPUs that have it, else float32 (the
fp16 GradScaler path is left out). ``fit``'s rows are its own ``images_per_second`` for the
second of two epochs, so warm-up (cuDNN's algorithm search, memory allocation) is excluded;
the plain loop gets the same warm-up. Images/s count training images, forward + backward +
update, including the progress bar machinery and the end-of-epoch checks in ``fit``.

Usage, on a machine with a GPU::

    .venv/bin/python benchmarks/gpu_step_throughput.py [--model mobilenet_v2] [--batch-size 256]

``--tiny`` runs a few steps of MobileNetV3-small at batch size 2 on the CPU: it checks that
the script runs; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mnlib.config import get_device
from mnlib.models import create_model
from mnlib.train import fit

Batch = tuple[torch.Tensor, torch.Tensor]


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mobilenet_v2", help="a create_model name (cifar=True)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200, help="batches per epoch")
    parser.add_argument("--device", default=None, help="default: mnlib.get_device()")
    parser.add_argument(
        "--tiny", action="store_true", help="a quick check of the script on the CPU"
    )
    arguments = parser.parse_args(argv)
    if arguments.tiny:
        arguments.model, arguments.batch_size, arguments.steps = "mobilenet_v3_small", 2, 2
        arguments.device = "cpu"
    return arguments


def synthetic_batches(steps: int, batch_size: int, device: torch.device) -> list[Batch]:
    """``steps`` batches of CIFAR-sized images [B, 3, 32, 32] and labels [B], on ``device``."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch_size, 3, 32, 32, generator=generator).to(device)
    labels = torch.randint(0, 10, (batch_size,), generator=generator).to(device)
    return [(images, labels)] * steps


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU has it (compute capability >= 8.0), else None (float32)."""
    if device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8:
        return torch.bfloat16
    return None


def fresh_model(name: str, device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, num_classes=10, cifar=True).to(device)


def plain_loop_speed(model: nn.Module, batches: list[Batch], device: torch.device) -> float:
    """Images/s of the hand-written loop, reading the loss after every batch."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    amp_dtype = autocast_dtype(device)

    def epoch() -> None:
        model.train()
        for images, labels in batches:
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                loss = F.cross_entropy(model(images).float(), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()  # the host sync: the CPU waits until the GPU has finished this step

    epoch()  # warm-up, as fit's first epoch
    start = time.perf_counter()
    epoch()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return len(batches) * len(batches[0][1]) / (time.perf_counter() - start)


def fit_speed(channels_last: bool) -> Callable[[nn.Module, list[Batch], torch.device], float]:
    def measure(model: nn.Module, batches: list[Batch], device: torch.device) -> float:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        history = fit(
            model,
            batches,
            epochs=2,
            optimizer=optimizer,
            device=device,
            progress=False,
            channels_last=channels_last,
        )
        return history.images_per_second[-1]

    return measure


def main(argv: list[str] | None = None) -> dict[str, float]:
    arguments = parse_arguments(argv)
    device = torch.device(arguments.device) if arguments.device else get_device()
    batches = synthetic_batches(arguments.steps, arguments.batch_size, device)
    precision = "bf16 autocast" if autocast_dtype(device) else "float32"
    name = device.type if device.type != "cuda" else torch.cuda.get_device_name(device)
    print(
        f"{arguments.model} (cifar=True), batch {arguments.batch_size}, {arguments.steps} steps "
        f"an epoch, {precision}, SGD; {name}, torch {torch.__version__}"
    )
    rows = {
        "plain loop, loss.item() every batch, NCHW": plain_loop_speed,
        "fit, channels_last=False": fit_speed(channels_last=False),
        "fit, channels_last=True": fit_speed(channels_last=True),
    }
    plain_loop_speed(fresh_model(arguments.model, device), batches[:20], device)  # warm-up
    speeds = {}
    print(f"  {'loop':<44}{'images/s':>10}{'vs plain':>10}")
    for label, measure in rows.items():
        speeds[label] = measure(fresh_model(arguments.model, device), batches, device)
        ratio = speeds[label] / next(iter(speeds.values()))
        print(f"  {label:<44}{speeds[label]:>10,.0f}{ratio:>9.2f}x")
    return speeds


if __name__ == "__main__":
    main()
