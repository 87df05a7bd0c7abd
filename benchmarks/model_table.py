"""Parameters, MACs and CPU latency of every image model of the course, as a Markdown table.

All models are measured side by side in one run, so the ratios to ResNet-50 (always measured
as the baseline) compare like with like even on a machine whose speed drifts.

    python benchmarks/model_table.py                       # every model, 50 repeats, 2 threads
    python benchmarks/model_table.py --repeats 2 --models resnet18 mobilenet_v2

Columns: parameters with 1000 classes and with 10 (the CIFAR variant, ``cifar=True``); MACs
per image at 224×224 and at 32×32 (CIFAR variant); median CPU latency at batch 1, 224×224,
with its p10–p90 range. ResNet-20/56 are CIFAR networks: they get 32×32 numbers only.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch

from mnlib.models import create_model, list_models
from mnlib.profile import Latency, count_macs, count_params, measure_latency

BASELINE = "resnet50"
MNIST_MODELS = ("mlp", "cnn")
CIFAR_ONLY = ("resnet20", "resnet56")  # He et al. §4.2: designed for 32×32, no ImageNet version
IMAGENET_INPUT = (3, 224, 224)
CIFAR_INPUT = (3, 32, 32)
WARMUP = 5


@dataclass
class ModelNumbers:
    name: str
    params_cifar: int
    macs_32: int
    params_imagenet: int | None = None  # None: CIFAR-only model
    macs_224: int | None = None
    latency: Latency | None = None


def measure(name: str, repeats: int, threads: int) -> ModelNumbers:
    """Build the model's CIFAR and (unless CIFAR-only) ImageNet variants and measure them."""
    cifar = create_model(name, num_classes=10, cifar=True)
    numbers = ModelNumbers(name, count_params(cifar), count_macs(cifar, CIFAR_INPUT))
    if name not in CIFAR_ONLY:
        model = create_model(name)
        numbers.params_imagenet = count_params(model)
        numbers.macs_224 = count_macs(model, IMAGENET_INPUT)
        numbers.latency = measure_latency(
            model, IMAGENET_INPUT, device="cpu", threads=threads, warmup=WARMUP, repeats=repeats
        )
    return numbers


def _millions(value: int | None) -> str:
    return "–" if value is None else f"{value / 1e6:,.2f} M"


def _ratio(value: float | None, baseline: float) -> str:
    return "–" if value is None else f"{value / baseline:.3f}×"


def markdown_table(rows: list[ModelNumbers]) -> str:
    """One Markdown row per model, with MACs and latency relative to the baseline."""
    base = next(row for row in rows if row.name == BASELINE)
    lines = [
        "| model | params (1000 cl.) | params (CIFAR, 10 cl.) | MACs @224 | MACs @32 (CIFAR) "
        "| latency @224 (ms, p10–p90) | MACs / ResNet-50 | latency / ResNet-50 |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        latency = row.latency
        latency_text = (
            "–"
            if latency is None
            else f"{latency.median_ms:.1f} ({latency.p10_ms:.1f}–{latency.p90_ms:.1f})"
        )
        cells = [
            row.name,
            "–" if row.params_imagenet is None else f"{row.params_imagenet:,}",
            f"{row.params_cifar:,}",
            _millions(row.macs_224),
            _millions(row.macs_32),
            latency_text,
            _ratio(row.macs_224, base.macs_224),
            _ratio(None if latency is None else latency.median_ms, base.latency.median_ms),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    image_models = [name for name in list_models() if name not in MNIST_MODELS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50, help="timed forward passes per model")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--models",
        nargs="+",
        choices=image_models,
        default=image_models,
        metavar="NAME",
        help=f"models to measure (default: all); {BASELINE} is always added as the baseline",
    )
    args = parser.parse_args()
    names = args.models if BASELINE in args.models else [BASELINE, *args.models]

    rows = []
    for name in names:
        print(f"measuring {name} ...", flush=True)
        rows.append(measure(name, args.repeats, args.threads))
    print(
        f"\nCPU latency: batch 1, 224×224, {args.threads} threads, median of {args.repeats} "
        f"repeats after {WARMUP} warm-up passes; torch {torch.__version__}.\n"
    )
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
