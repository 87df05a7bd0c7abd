"""Latency and accuracy of one CIFAR-10 model as fp32 eager PyTorch, fp32 ONNX Runtime and
INT8 ONNX Runtime, at batch 1 and 32, as a Markdown table (chapter 10's deployment table).

    python benchmarks/deployment.py --tiny                       # CPU check, under a minute
    python benchmarks/deployment.py --epochs 30 --out benchmarks/results/deployment.json

The model is trained first (CIFAR recipe of mnlib.train.recipes, on ``--subset`` images for
``--epochs`` epochs; validation split of 5,000 training images), exported with
``mnlib.deploy.export_onnx`` and quantized with ``mnlib.deploy.quantize_int8`` (QDQ, per-channel
int8 weights, calibrated on ``--calibration`` training images). Accuracies: validation for all
three formats, then the test set once each. Latencies: the three formats take turns in
``--rounds`` interleaved rounds (``mnlib.deploy.interleaved_latencies``) with ``--threads``
threads for PyTorch and ONNX Runtime alike; the ratios are computed per round, then the median.
``--out`` writes the numbers as JSON with provenance (device, versions, commit, date).
``--tiny`` trains 1 epoch on 256 images, validates on 500, tests on 500 and times 1 round of
2 passes: a check that everything runs, not a measurement.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import tempfile
import time
from pathlib import Path

import onnx
import onnxruntime
import torch

import mnlib
from mnlib.data import loaders
from mnlib.deploy import (
    calibration_images,
    export_onnx,
    file_megabytes,
    interleaved_latencies,
    max_output_difference,
    onnx_evaluate,
    onnx_session,
    quantize_int8,
)
from mnlib.models import create_model
from mnlib.provenance import device_description, provenance, write_json_atomic
from mnlib.train import evaluate, fit, recompute_batchnorm_statistics
from mnlib.train.recipes import CIFAR_RECIPE, make_optimizer

FORMATS = ("fp32 eager", "fp32 ONNX Runtime", "INT8 ONNX Runtime")
BATCH_SIZES = (1, 32)
# --tiny: every code path (train, export, quantize, evaluate, time, write) in seconds.
TINY = {
    "subset": 256,
    "epochs": 1,
    "val_size": 500,
    "test_subset": 500,
    "calibration": 64,
    "rounds": 1,
    "repeats": 2,
}


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mobilenet_v2", help="an mnlib model name")
    parser.add_argument("--width-mult", type=float, default=None, help="MobileNet width")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--subset", type=int, default=None, help="training images (None: all)")
    parser.add_argument("--calibration", type=int, default=512, help="calibration images")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads, both runtimes")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20, help="timed passes per round")
    parser.add_argument("--tiny", action="store_true", help="1 epoch on 256 images: a check")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    arguments = parser.parse_args(argv)
    if arguments.threads < 1 or arguments.rounds < 1 or arguments.repeats < 1:
        parser.error("--threads, --rounds and --repeats must be positive")
    return arguments


def train_model(arguments: argparse.Namespace) -> tuple[torch.nn.Module, mnlib.data.Loaders]:
    """The trained model (on the CPU) and the CIFAR-10 loaders (CPU tensors)."""
    tiny = arguments.tiny
    data = loaders(
        "cifar10",
        batch_size=CIFAR_RECIPE.batch_size,
        augment=CIFAR_RECIPE.augment,
        subset=TINY["subset"] if tiny else arguments.subset,
        val_size=TINY["val_size"] if tiny else 5000,
        test_subset=TINY["test_subset"] if tiny else None,
        device="cpu",  # ONNX Runtime reads CPU arrays; the model trains where fit puts it
    )
    mnlib.seed_everything(0)
    extra = {} if arguments.width_mult is None else {"width_mult": arguments.width_mult}
    model = create_model(arguments.model, num_classes=10, cifar=True, **extra)
    fit(
        model,
        data.train,
        data.val,
        epochs=TINY["epochs"] if tiny else arguments.epochs,
        optimizer=make_optimizer(model, CIFAR_RECIPE),
        scheduler=CIFAR_RECIPE.scheduler,
        progress=False,
    )
    # Once, with the final weights: a short run's running averages are not yet usable (ch. 7).
    recompute_batchnorm_statistics(model, data.train, device=next(model.parameters()).device)
    return model.cpu().eval(), data


def measure_latencies(
    model: torch.nn.Module, sessions: dict, arguments: argparse.Namespace
) -> dict[int, dict[str, list[float]]]:
    """{batch size: {format: [median ms per round]}}, the formats interleaved in each round."""
    torch.set_num_threads(arguments.threads)
    results = {}
    for batch_size in BATCH_SIZES:
        images = torch.randn(batch_size, 3, 32, 32)
        array = images.numpy()

        def eager(images=images):
            with torch.no_grad():
                model(images)

        runners = {"fp32 eager": eager}
        for name, session in sessions.items():
            runners[name] = lambda session=session, array=array: session.run(
                None, {"images": array}
            )
        results[batch_size] = interleaved_latencies(
            runners,
            rounds=TINY["rounds"] if arguments.tiny else arguments.rounds,
            repeats=TINY["repeats"] if arguments.tiny else arguments.repeats,
        )
    return results


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| format | size (MB) | val acc. | test acc. | batch 1 (ms) | batch 32 (ms) "
        "| speed-up vs fp32 ORT, b1 | b32 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['format']} | {row['megabytes']:.2f} | {100 * row['val_accuracy']:.2f} % "
            f"| {100 * row['test_accuracy']:.2f} % | {row['ms'][1]:.3f} | {row['ms'][32]:.2f} "
            f"| {row['speedup'][1]:.2f}× | {row['speedup'][32]:.2f}× |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    arguments = parse_arguments(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    start = time.perf_counter()
    model, data = train_model(arguments)
    count = TINY["calibration"] if arguments.tiny else arguments.calibration
    with tempfile.TemporaryDirectory() as folder:
        fp32_path = export_onnx(model, Path(folder) / "model.onnx")
        int8_path = quantize_int8(
            fp32_path, Path(folder) / "model_int8.onnx", calibration_images(data.train, count)
        )
        paths = {"fp32 ONNX Runtime": fp32_path, "INT8 ONNX Runtime": int8_path}
        sessions = {name: onnx_session(path, arguments.threads) for name, path in paths.items()}
        megabytes = {name: file_megabytes(path) for name, path in paths.items()}
        megabytes["fp32 eager"] = megabytes["fp32 ONNX Runtime"]  # the same float32 weights
        probe = next(iter(data.val))[0][:8]
        difference = max_output_difference(model, sessions["fp32 ONNX Runtime"], probe)
        evaluators = {
            "fp32 eager": lambda loader: evaluate(model, loader, device="cpu")["accuracy"],
            **{
                name: lambda loader, session=session: onnx_evaluate(session, loader)["accuracy"]
                for name, session in sessions.items()
            },
        }
        val = {name: evaluators[name](data.val) for name in FORMATS}
        test = {name: evaluators[name](data.test) for name in FORMATS}  # once each, at the end
        latencies = measure_latencies(model, sessions, arguments)
    rows = []
    for name in FORMATS:
        per_round = {b: latencies[b][name] for b in BATCH_SIZES}
        baseline = {b: latencies[b]["fp32 ONNX Runtime"] for b in BATCH_SIZES}
        rows.append(
            {
                "format": name,
                "megabytes": megabytes[name],
                "val_accuracy": val[name],
                "test_accuracy": test[name],
                "ms": {b: statistics.median(per_round[b]) for b in BATCH_SIZES},
                "ms_per_round": per_round,
                "speedup": {
                    b: statistics.median(
                        base / own for base, own in zip(baseline[b], per_round[b], strict=True)
                    )
                    for b in BATCH_SIZES
                },
            }
        )
    print(f"{arguments.model}: max |PyTorch - ONNX Runtime| logit difference {difference:.2e}")
    print(markdown_table(rows))
    result = {
        "model": arguments.model,
        "rows": rows,
        "max_logit_difference": difference,
        "wall_seconds": time.perf_counter() - start,
        "provenance": provenance(
            device_description(torch.device("cpu"), arguments.threads),
            "benchmarks/deployment.py",
            argv if argv is not None else sys.argv[1:],
            started,
            onnx=onnx.__version__,
            onnxruntime=onnxruntime.__version__,
        ),
    }
    if arguments.out is not None:
        write_json_atomic(result, arguments.out)
        print(f"wrote {arguments.out}")
    return result


if __name__ == "__main__":
    main()
