"""Export a PyTorch classifier to ONNX, run it with ONNX Runtime, and check it against PyTorch.

ONNX is a file format for computation graphs: the operators (Conv, Clip, Add, ...) and the
weights, with no Python left. ONNX Runtime executes such a file on a CPU (or a GPU, a phone's
accelerator) with kernels and graph optimizations of its own. The exported graph takes
``images`` float32 [B, C, H, W] with any batch size B and returns ``logits`` [B, classes].
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from mnlib.files import written_atomically

INPUT_NAME = "images"
OUTPUT_NAME = "logits"


def export_onnx(
    model: nn.Module, path: str | Path, input_size: tuple[int, int, int] = (3, 32, 32)
) -> Path:
    """Write ``model`` (in eval mode) to the ONNX file ``path``; returns the path.

    Uses ``torch.onnx.export``'s default exporter since PyTorch 2.9 (``dynamo=True``): it
    captures the graph with ``torch.export`` and translates it with onnxscript. The older
    TorchScript exporter (``dynamo=False``) is deprecated and warns. BatchNorm is folded into
    the preceding convolution by the exporter's optimizer, so the file holds Conv, Clip, Add...
    The batch dimension stays dynamic; ``input_size`` (C, H, W) is fixed. Weights are stored
    inside the one file (no external ``.data`` file). The model itself is not modified.
    """
    if len(input_size) != 3 or any(int(size) < 1 for size in input_size):
        raise ValueError(f"input_size must be (channels, height, width), got {input_size!r}")
    exported = copy.deepcopy(model).cpu().eval()
    example = torch.randn(2, *input_size)  # batch 2, not 1: a batch of 1 could be specialized
    batch = torch.export.Dim("batch", min=1, max=4096)
    with written_atomically(path) as temporary:
        torch.onnx.export(
            exported,
            (example,),
            temporary,
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            external_data=False,
            verbose=False,
        )
        onnx.checker.check_model(str(temporary))  # a malformed graph fails here, not later
    return Path(path)


def onnx_session(path: str | Path, threads: int = 1) -> ort.InferenceSession:
    """An ONNX Runtime CPU session for the model at ``path``, with ``threads`` intra-op threads.

    One inter-op thread: these models are a chain of operators, there is nothing to run in
    parallel between them. Fixing the thread count makes latencies comparable with PyTorch
    run under ``torch.set_num_threads(threads)``.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"no ONNX model at {path}")
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_logits(session: ort.InferenceSession, images: torch.Tensor) -> torch.Tensor:
    """Run ``session`` on images float32 [B, C, H, W]; returns logits float32 [B, classes]."""
    if images.dim() != 4:
        raise ValueError(f"images must be [B, C, H, W], got shape {tuple(images.shape)}")
    batch = np.ascontiguousarray(images.detach().cpu().float().numpy())
    (logits,) = session.run([OUTPUT_NAME], {INPUT_NAME: batch})
    return torch.from_numpy(logits)


def onnx_evaluate(
    session: ort.InferenceSession, loader: Iterable[tuple[torch.Tensor, torch.Tensor]]
) -> dict[str, float]:
    """Accuracy (a fraction) of the ONNX model on every (images, labels) batch of ``loader``.

    The counterpart of :func:`mnlib.train.evaluate` for an ONNX Runtime session.
    """
    correct, seen = 0, 0
    for images, labels in loader:
        predictions = onnx_logits(session, images).argmax(dim=1)
        correct += int((predictions == labels.cpu()).sum())
        seen += len(labels)
    if seen == 0:
        raise ValueError("the loader yielded no images")
    return {"accuracy": correct / seen}


def max_output_difference(
    model: nn.Module, session: ort.InferenceSession, images: torch.Tensor
) -> float:
    """Largest absolute difference between PyTorch's and ONNX Runtime's logits on ``images``.

    ``images`` [B, C, H, W]. Float32 sums in another order differ in the last bits, so expect
    about 1e-5 relative to the logits' size, not 0. The model's train/eval mode is restored.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected = model(images.to(next(model.parameters()).device)).float().cpu()
    finally:
        model.train(was_training)
    return float((expected - onnx_logits(session, images)).abs().max())
