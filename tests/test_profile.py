"""Tests of mnlib.profile: parameter and MAC counts, attention counting, summary, latency."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mnlib.models import build_reference, create_model
from mnlib.profile import count_macs, count_params, measure_latency, summary

# MACs at 224×224 (1000 classes) of the torchvision/timm references, measured with
# torch.utils.flop_counter.FlopCounterMode ÷ 2.
REFERENCE_MACS_224 = {
    "resnet50": 4.089e9,
    "mobilenet_v1": 568.74e6,
    "mobilenet_v2": 300.77e6,
    "mobilenet_v3_large": 216.59e6,
    "mobilenet_v3_small": 56.51e6,
    "mobilenet_v4_conv_small": 186.01e6,
    "mobilenet_v4_conv_medium": 827.65e6,
    "mobilenet_v4_hybrid_medium": 966.31e6,  # with its attention (941.73e6 without)
}


class TinyAttention(nn.Module):
    """Self-attention over the pixels of a feature map; ``fused`` picks SDPA or explicit matmuls.

    With ``kv_heads=1`` keys and values are shared by all query heads (multi-query attention,
    as in MobileNetV4's Mobile MQA).
    """

    def __init__(self, channels: int = 8, heads: int = 2, kv_heads: int = 2, fused: bool = True):
        super().__init__()
        self.heads, self.kv_heads, self.fused = heads, kv_heads, fused
        self.head_dim = channels // heads
        self.query = nn.Conv2d(channels, channels, 1, bias=False)
        self.key_value = nn.Conv2d(channels, 2 * kv_heads * self.head_dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        # [N, heads·dim, H, W] → [N, heads, H·W, dim]
        q = self.query(x).reshape(n, self.heads, self.head_dim, h * w).transpose(-1, -2)
        kv = self.key_value(x).reshape(n, 2, self.kv_heads, self.head_dim, h * w)
        k, v = kv.transpose(-1, -2).unbind(1)
        if self.fused:
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            scores = q @ k.transpose(-1, -2) / self.head_dim**0.5
            out = scores.softmax(dim=-1) @ v
        return out.transpose(-1, -2).reshape(n, c, h, w)


def test_count_params_all_and_trainable():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Linear(4, 2))
    conv, bn, linear = 4 * 3 * 3 * 3, 4 + 4, 4 * 2 + 2  # BN: weight and bias; its stats are buffers
    assert count_params(model) == conv + bn + linear
    model[1].requires_grad_(False)
    assert count_params(model, trainable_only=True) == conv + linear
    assert count_params(model) == conv + bn + linear


@pytest.mark.parametrize("groups", [1, 4, 8])  # a dense, a grouped and a depthwise conv
def test_count_macs_of_a_conv(groups):
    conv = nn.Conv2d(8, 16, kernel_size=3, stride=2, padding=1, groups=groups)
    out_h = out_w = 16  # 32×32 input, stride 2
    expected = out_h * out_w * 16 * (8 // groups) * 3 * 3  # per output value: (in/groups)·k·k
    assert count_macs(conv, (8, 32, 32)) == expected


def test_count_macs_of_a_linear_and_per_image():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    assert count_macs(model, (3, 4, 4)) == 3 * 4 * 4 * 5
    assert count_macs(model, (6, 3, 4, 4)) == 3 * 4 * 4 * 5  # MACs per image, whatever the batch


def test_count_macs_rejects_a_bad_input_size():
    with pytest.raises(ValueError, match=r"\(C, H, W\) or \(N, C, H, W\).*\(32, 32\)"):
        count_macs(nn.Conv2d(3, 4, 3), (32, 32))


def test_count_macs_restores_training_mode():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    count_macs(model, (3, 8, 8))
    assert model.training
    assert model[1].num_batches_tracked.item() == 0  # ran in eval mode: BN stats untouched


@pytest.mark.parametrize("kv_heads", [2, 1], ids=["multi-head", "multi-query"])
def test_scaled_dot_product_attention_is_counted(kv_heads):
    fused = TinyAttention(kv_heads=kv_heads, fused=True)
    explicit = TinyAttention(kv_heads=kv_heads, fused=False)
    tokens, heads, head_dim = 5 * 5, 2, 4
    projections = tokens * 8 * (8 + 2 * kv_heads * head_dim)
    attention = heads * (tokens * tokens * head_dim) * 2  # Q·Kᵀ and attention·V
    assert count_macs(explicit, (8, 5, 5)) == projections + attention
    assert count_macs(fused, (8, 5, 5)) == projections + attention


def test_timm_hybrid_counts_its_fused_attention():
    import timm  # an optional dependency of mnlib (pip install mnlib[reference])

    assert timm.layers.use_fused_attn()  # timm's default: attention through SDPA
    model = build_reference("timm", "mobilenetv4_hybrid_medium")
    assert count_macs(model, (3, 224, 224)) == pytest.approx(966.31e6, rel=0.01)


@pytest.mark.parametrize("name", sorted(REFERENCE_MACS_224))
def test_course_model_macs_match_the_reference(name):
    model = create_model(name)
    assert count_macs(model, (3, 224, 224)) == pytest.approx(REFERENCE_MACS_224[name], rel=0.01)


def test_summary_totals_equal_the_counts():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        TinyAttention(kv_heads=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )
    table = summary(model, (3, 6, 6))
    assert table.total_params == count_params(model)
    assert table.total_macs == count_macs(model, (3, 6, 6))
    rows = {row.name: row for row in table.rows}
    assert rows["0"].type == "Conv2d"
    assert rows["0"].output_shape == (1, 8, 6, 6)
    assert rows["0"].macs == 6 * 6 * 8 * 3 * 3 * 3
    assert rows["6"].params == 8 * 10 + 10
    # The attention module calls SDPA itself: its own row holds the attention MACs.
    assert rows["3"].macs == 2 * (36 * 36 * 4) * 2
    assert rows["3.query"].output_shape == (1, 8, 6, 6)
    text = str(table)
    assert "TinyAttention" in text and "Output shape" in text
    assert f"{count_params(model):,}" in text


def test_summary_counts_a_tied_parameter_once():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 4), nn.Linear(4, 4))
    model[2].weight = model[1].weight
    assert summary(model, (1, 2, 2)).total_params == count_params(model) == 16 + 4 + 4


def test_summary_of_a_reference_model():
    model = build_reference("torchvision", "mobilenet_v3_small")
    table = summary(model, (2, 3, 64, 64))
    assert table.total_params == count_params(model)
    assert table.total_macs == count_macs(model, (3, 64, 64))
    assert all(row.output_shape is not None for row in table.rows)


def test_measure_latency():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
    threads_before = torch.get_num_threads()
    latency = measure_latency(model, (2, 3, 16, 16), threads=1, warmup=1, repeats=4)
    assert latency.median_ms > 0
    assert latency.p10_ms <= latency.median_ms <= latency.p90_ms
    assert latency.repeats == 4
    assert latency.batch_size == 2
    assert latency.threads == 1
    assert torch.get_num_threads() == threads_before
    assert model.training
    assert "ms" in str(latency)


def test_measure_latency_rejects_bad_arguments():
    with pytest.raises(ValueError, match="repeats"):
        measure_latency(nn.Identity(), (3, 4, 4), repeats=0)
    with pytest.raises(ValueError, match="threads"):
        measure_latency(nn.Identity(), (3, 4, 4), threads=0)
