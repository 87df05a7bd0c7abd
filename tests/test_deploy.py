"""Tests of mnlib.deploy (ONNX export, INT8 quantization, pruning, error analysis, sizes) and of
benchmarks/deployment.py --tiny. No wall-clock assertions: timings only have to exist."""

import importlib.util
import json
import os
from pathlib import Path

import onnx
import pytest
import torch
from torch import nn

from mnlib import deploy
from mnlib.blocks.conv import ConvBNAct
from mnlib.deploy.int8_error import conv_kind, fake_quantize_weight
from mnlib.models import create_model
from mnlib.profile import count_params

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "deployment.py"


def small_cnn() -> nn.Module:
    """A tiny conv net with a full, a depthwise and a pointwise conv: [N, 3, 8, 8] → [N, 4]."""
    torch.manual_seed(0)
    model = nn.Sequential(
        ConvBNAct(3, 8, 3),
        ConvBNAct(8, 8, 3, groups=8),
        ConvBNAct(8, 16, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 4),
    )
    # Non-trivial BatchNorm statistics, so that folding them changes the weights.
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 3, 8, 8) * 2 + 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    model = small_cnn()
    path = deploy.export_onnx(model, folder / "small.onnx", input_size=(3, 8, 8))
    return model, path


def test_export_matches_pytorch_at_any_batch_size(exported):
    model, path = exported
    session = deploy.onnx_session(path, threads=1)
    for batch in (1, 5):
        images = torch.randn(batch, 3, 8, 8)
        assert deploy.onnx_logits(session, images).shape == (batch, 4)
        assert deploy.max_output_difference(model, session, images) < 1e-4
    onnx.checker.check_model(str(path))
    assert not any(name.endswith(".tmp") for name in os.listdir(path.parent))


def test_onnx_evaluate_agrees_with_pytorch(exported):
    model, path = exported
    images = torch.randn(20, 3, 8, 8)
    labels = model(images).argmax(1).detach()
    labels[:5] = (labels[:5] + 1) % 4  # 5 of 20 wrong
    batches = [(images[:10], labels[:10]), (images[10:], labels[10:])]
    result = deploy.onnx_evaluate(deploy.onnx_session(path), batches)
    assert result["accuracy"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="no images"):
        deploy.onnx_evaluate(deploy.onnx_session(path), [])


def test_export_and_session_reject_bad_input(tmp_path, exported):
    with pytest.raises(ValueError, match="input_size"):
        deploy.export_onnx(small_cnn(), tmp_path / "x.onnx", input_size=(8, 8))
    with pytest.raises(FileNotFoundError, match="no ONNX model"):
        deploy.onnx_session(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="threads"):
        deploy.onnx_session(exported[1], threads=0)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        deploy.onnx_logits(deploy.onnx_session(exported[1]), torch.randn(3, 8, 8))


def test_failed_export_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")

    def broken_export(*args, **kwargs):
        Path(args[2]).write_bytes(b"half")
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(torch.onnx, "export", broken_export)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        deploy.export_onnx(small_cnn(), target, input_size=(3, 8, 8))
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.onnx"]


def test_calibration_reader_batches_and_rewinds():
    reader = deploy.ImageCalibrationReader(torch.randn(10, 3, 8, 8), batch_size=4)
    sizes = []
    while (batch := reader.get_next()) is not None:
        sizes.append(batch["images"].shape[0])
    assert sizes == [4, 4, 2]
    reader.rewind()
    assert reader.get_next()["images"].shape == (4, 3, 8, 8)
    with pytest.raises(ValueError, match="non-empty"):
        deploy.ImageCalibrationReader(torch.randn(0, 3, 8, 8))


def test_quantize_int8_is_smaller_and_close(exported, tmp_path):
    model, path = exported
    calibration = torch.randn(64, 3, 8, 8) * 2 + 0.5
    int8 = deploy.quantize_int8(path, tmp_path / "small_int8.onnx", calibration)
    graph = onnx.load(str(int8)).graph
    operators = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= operators
    # Per-channel: the depthwise conv's weight scale has one value per output channel.
    scales = [tensor for tensor in graph.initializer if "scale" in tensor.name]
    assert any(list(tensor.dims) == [8] for tensor in scales)
    assert os.listdir(tmp_path) == ["small_int8.onnx"]  # no intermediate left behind
    images = torch.randn(32, 3, 8, 8) * 2 + 0.5
    fp32_logits = deploy.onnx_logits(deploy.onnx_session(path), images)
    int8_logits = deploy.onnx_logits(deploy.onnx_session(int8), images)
    relative = (int8_logits - fp32_logits).norm() / fp32_logits.norm()
    assert 0 < relative < 0.1


def test_quantize_int8_rejects_bad_input(exported, tmp_path):
    with pytest.raises(ValueError, match="unknown calibration"):
        deploy.quantize_int8(
            exported[1], tmp_path / "q.onnx", torch.randn(4, 3, 8, 8), calibration="mean"
        )
    with pytest.raises(FileNotFoundError, match="no ONNX model"):
        deploy.quantize_int8(tmp_path / "none.onnx", tmp_path / "q.onnx", torch.randn(4, 3, 8, 8))


def test_fold_batchnorm_keeps_outputs_and_removes_batchnorms():
    model = small_cnn()
    folded = deploy.fold_batchnorm(model)
    images = torch.randn(4, 3, 8, 8)
    torch.testing.assert_close(folded(images), model(images), atol=1e-5, rtol=1e-4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # original untouched


def test_weight_ranges_and_quantization_error():
    weight = torch.randn(16, 8, 3, 3)
    weight[0] *= 100  # one channel far wider than the others
    assert deploy.weight_range_spread(weight) > 50
    assert deploy.weight_range_spread(torch.ones(4, 2) * torch.tensor([1.0, -1.0])) == 1.0
    per_channel = deploy.weight_quantization_error(weight, per_channel=True)
    per_tensor = deploy.weight_quantization_error(weight, per_channel=False)
    assert per_channel < 0.01 < per_tensor
    assert fake_quantize_weight(weight, True).shape == weight.shape
    with pytest.raises(ValueError, match="median channel range is 0"):
        deploy.weight_range_spread(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="expected a weight"):
        deploy.weight_range_spread(torch.ones(4))


def test_layer_errors_one_row_per_conv_with_its_kind():
    rows = deploy.layer_errors(small_cnn(), torch.randn(8, 3, 8, 8))
    assert [row.kind for row in rows] == ["full", "depthwise", "pointwise"]
    assert all(0 < row.output_error < 0.2 and row.weight_error > 0 for row in rows)
    assert conv_kind(nn.Conv2d(4, 4, 3, groups=4)) == "depthwise"
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        deploy.layer_errors(small_cnn(), torch.randn(3, 8, 8))


def test_magnitude_prune_zeros_the_smallest_weights_only():
    model = small_cnn()
    pruned = deploy.magnitude_prune(model, 0.5)
    assert deploy.sparsity(pruned) == pytest.approx(0.5, abs=0.01)
    assert deploy.sparsity(model) == 0.0  # the original is untouched
    assert count_params(pruned) == count_params(model)  # same shapes: nothing removed
    # prune.remove made the zeros permanent: plain weights again, no masks or hooks left.
    assert not any("mask" in name for name, _ in pruned.named_buffers())
    assert not any(hasattr(m, "weight_orig") for m in pruned.modules())
    with pytest.raises(ValueError, match="amount"):
        deploy.magnitude_prune(model, 1.0)
    with pytest.raises(ValueError, match="no Conv2d or Linear"):
        deploy.magnitude_prune(nn.ReLU(), 0.5)


def test_prune_hidden_channels_shrinks_mobilenet_v2():
    torch.manual_seed(0)
    model = create_model("mobilenet_v2", num_classes=10, cifar=True, width_mult=0.25).eval()
    pruned = deploy.prune_hidden_channels(model, 0.5).eval()
    images = torch.randn(2, 3, 32, 32)
    assert pruned(images).shape == (2, 10)
    assert count_params(pruned) < 0.75 * count_params(model)
    block = pruned.stages[1][0]
    assert block.depthwise.conv.out_channels % 8 == 0
    assert block.depthwise.conv.groups == block.depthwise.conv.out_channels
    assert block.project.conv.in_channels == block.depthwise.conv.out_channels
    unchanged = deploy.prune_hidden_channels(model, 1.0).eval()
    torch.testing.assert_close(unchanged(images), model(images))
    with pytest.raises(ValueError, match="keep_fraction"):
        deploy.prune_hidden_channels(model, 0.0)
    with pytest.raises(ValueError, match="no InvertedResidual"):
        deploy.prune_hidden_channels(small_cnn(), 0.5)


def test_sizes(tmp_path):
    zeros, noise = tmp_path / "zeros.bin", tmp_path / "noise.bin"
    zeros.write_bytes(bytes(100_000))
    noise.write_bytes(os.urandom(100_000))
    assert deploy.file_megabytes(zeros) == pytest.approx(0.1)
    assert deploy.compressed_megabytes(zeros) < 0.01 < deploy.compressed_megabytes(noise)
    with pytest.raises(FileNotFoundError, match="no model file"):
        deploy.file_megabytes(tmp_path / "missing")


def test_calibration_images_are_the_first_images_of_one_pass():
    images = torch.arange(10 * 3 * 2 * 2, dtype=torch.float32).view(10, 3, 2, 2)
    batches = [(images[i : i + 4], torch.zeros(len(images[i : i + 4]))) for i in (0, 4, 8)]
    assert torch.equal(deploy.calibration_images(batches, 6), images[:6])
    assert torch.equal(deploy.calibration_images(batches, 10), images)
    with pytest.raises(ValueError, match="fewer than the 11"):
        deploy.calibration_images(batches, 11)
    with pytest.raises(ValueError, match="positive"):
        deploy.calibration_images(batches, 0)


def test_interleaved_latencies_one_value_per_round():
    calls = []
    results = deploy.interleaved_latencies(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
        rounds=3,
        repeats=2,
        warmup=1,
    )
    assert {name: len(times) for name, times in results.items()} == {"a": 3, "b": 3}
    assert calls[:6] == ["a"] * 3 + ["b"] * 3  # a's round, then b's: interleaved
    with pytest.raises(ValueError, match="no runners"):
        deploy.interleaved_latencies({})


def test_benchmark_tiny_writes_table_and_provenance(tmp_path, capsys):
    if not os.environ.get("MNLIB_DATA"):
        pytest.fail(
            "MNLIB_DATA is not set: point it at the course's offline data folder", pytrace=False
        )
    spec = importlib.util.spec_from_file_location("deployment", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "deployment.json"
    script.main(["--tiny", "--width-mult", "0.25", "--out", str(out)])
    printed = capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert [row["format"] for row in saved["rows"]] == list(script.FORMATS)
    for row in saved["rows"]:
        assert set(row["ms"]) == {"1", "32"} and all(v > 0 for v in row["ms"].values())
        assert 0 <= row["val_accuracy"] <= 1 and 0 <= row["test_accuracy"] <= 1
    int8, fp32 = saved["rows"][2], saved["rows"][1]
    assert int8["megabytes"] < fp32["megabytes"]
    assert saved["max_logit_difference"] < 1e-3
    provenance = saved["provenance"]
    assert {"device", "torch", "onnxruntime", "mnlib", "date_utc", "command"} <= set(provenance)
    assert "| INT8 ONNX Runtime |" in printed
