"""Deployment: export a trained model to ONNX, quantize it to INT8, prune it, and measure it.

* :mod:`mnlib.deploy.onnx`: export to ONNX (``torch.onnx.export``'s dynamo exporter), run it
  with ONNX Runtime and check its outputs against PyTorch;
* :mod:`mnlib.deploy.quantize`: ONNX Runtime static INT8 quantization (QDQ, per-channel weights)
  calibrated on training images;
* :mod:`mnlib.deploy.int8_error`: why some layers lose more under INT8 (weight ranges and
  per-layer quantization error, simulated in PyTorch);
* :mod:`mnlib.deploy.qat`: quantization-aware training, written out (fake quantization with a
  straight-through estimator on a BatchNorm-folded copy);
* :mod:`mnlib.deploy.prune`: unstructured magnitude pruning and structured channel pruning;
* :mod:`mnlib.deploy.size`: model sizes on disk;
* ``interleaved_latencies`` (from :mod:`mnlib.profile`): runners timed side by side in
  interleaved rounds.

Chapter 10 uses all of them; ``benchmarks/deployment.py`` prints their table.
"""

from mnlib.deploy.int8_error import (
    LayerError,
    fold_batchnorm,
    layer_errors,
    weight_quantization_error,
    weight_range_spread,
)
from mnlib.deploy.onnx import (
    export_onnx,
    max_output_difference,
    onnx_evaluate,
    onnx_logits,
    onnx_session,
)
from mnlib.deploy.prune import magnitude_prune, prune_hidden_channels, sparsity
from mnlib.deploy.qat import finish_qat, prepare_qat
from mnlib.deploy.quantize import ImageCalibrationReader, calibration_images, quantize_int8
from mnlib.deploy.size import compressed_megabytes, file_megabytes
from mnlib.profile import interleaved_latencies  # shared with mnlib.compare's tables

__all__ = [
    "ImageCalibrationReader",
    "LayerError",
    "calibration_images",
    "compressed_megabytes",
    "export_onnx",
    "file_megabytes",
    "finish_qat",
    "fold_batchnorm",
    "interleaved_latencies",
    "layer_errors",
    "magnitude_prune",
    "max_output_difference",
    "onnx_evaluate",
    "onnx_logits",
    "onnx_session",
    "prepare_qat",
    "prune_hidden_channels",
    "quantize_int8",
    "sparsity",
    "weight_quantization_error",
    "weight_range_spread",
]
