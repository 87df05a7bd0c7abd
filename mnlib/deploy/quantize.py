"""INT8 post-training static quantization with ONNX Runtime (QDQ format, per-channel weights).

*Static* means the activations' ranges are fixed ahead of time, from a calibration set of
training images, so inference runs integer kernels with no range computed on the fly.
Weights are int8 (symmetric, one scale per output channel), activations uint8 (one scale and
zero point per tensor). The result is a QDQ graph: QuantizeLinear/DequantizeLinear pairs
around each operator, which ONNX Runtime fuses into integer kernels (VNNI on recent x86 CPUs).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)

from mnlib.deploy.onnx import INPUT_NAME
from mnlib.files import written_atomically

CALIBRATION_METHODS = {
    "minmax": CalibrationMethod.MinMax,  # the observed min and max of each activation
    "percentile": CalibrationMethod.Percentile,  # clip the rare extreme values
    "entropy": CalibrationMethod.Entropy,  # the range that keeps the distribution closest
}


def calibration_images(
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]], count: int
) -> torch.Tensor:
    """The first ``count`` images of one pass over ``loader`` (a *training* loader, shuffled
    and augmented as in training), on the CPU: [count, C, H, W].

    Raises ``ValueError`` if ``count`` is not positive or the loader holds fewer images.
    """
    if count < 1:
        raise ValueError(f"count must be positive, got {count}")
    batches, total = [], 0
    for images, _ in loader:
        batches.append(images.cpu())
        total += len(images)
        if total >= count:
            return torch.cat(batches)[:count]
    raise ValueError(f"the loader holds {total} images, fewer than the {count} asked for")


class ImageCalibrationReader(CalibrationDataReader):
    """Feeds calibration images [N, C, H, W] to ONNX Runtime in batches of ``batch_size``.

    ONNX Runtime runs the float model on each batch and records every activation's range.
    Use training images (never validation or test images: calibration is a kind of fitting).
    """

    def __init__(self, images: torch.Tensor, batch_size: int = 32) -> None:
        if images.dim() != 4 or len(images) == 0:
            raise ValueError(
                f"calibration images must be a non-empty [N, C, H, W] tensor, "
                f"got shape {tuple(images.shape)}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        array = images.detach().cpu().float().numpy()
        self._batches = [
            np.ascontiguousarray(array[start : start + batch_size])
            for start in range(0, len(array), batch_size)
        ]
        self._position = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next ``{input name: batch}``, or None when every batch has been given."""
        if self._position == len(self._batches):
            return None
        batch = self._batches[self._position]
        self._position += 1
        return {INPUT_NAME: batch}

    def rewind(self) -> None:
        """Start again from the first batch (ONNX Runtime may read the data twice)."""
        self._position = 0


def quantize_int8(
    fp32_path: str | Path,
    int8_path: str | Path,
    calibration_images: torch.Tensor,
    *,
    per_channel: bool = True,
    calibration: str = "minmax",
) -> Path:
    """Quantize the float ONNX model at ``fp32_path`` to INT8 at ``int8_path``; returns the path.

    Two steps, as ONNX Runtime's documentation recommends: ``quant_pre_process`` (shape
    inference and graph optimizations that fuse operators before they are quantized), then
    ``quantize_static`` in the QDQ format with int8 weights (per output channel if
    ``per_channel``, else one scale per tensor) and uint8 activations calibrated on
    ``calibration_images`` [N, C, H, W] by ``calibration`` ("minmax", "percentile" or
    "entropy"). The INT8 model takes and returns float32 like the original.
    """
    if not Path(fp32_path).is_file():
        raise FileNotFoundError(f"no ONNX model at {fp32_path}")
    if calibration not in CALIBRATION_METHODS:
        raise ValueError(
            f"unknown calibration {calibration!r}; choose one of {sorted(CALIBRATION_METHODS)}"
        )
    reader = ImageCalibrationReader(calibration_images)
    with written_atomically(Path(int8_path).with_suffix(".pre.onnx")) as prepared:
        quant_pre_process(str(fp32_path), str(prepared))
        with written_atomically(int8_path) as temporary:
            quantize_static(
                str(prepared),
                str(temporary),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                weight_type=QuantType.QInt8,
                activation_type=QuantType.QUInt8,
                calibrate_method=CALIBRATION_METHODS[calibration],
            )
    Path(int8_path).with_suffix(".pre.onnx").unlink(missing_ok=True)  # an intermediate only
    return Path(int8_path)
