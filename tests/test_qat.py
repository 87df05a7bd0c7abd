"""Tests of mnlib.deploy.qat: fake quantization with a straight-through estimator."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from mnlib.deploy import export_onnx, onnx_evaluate, onnx_session, quantize_int8
from mnlib.deploy.int8_error import fake_quantize_activation, fake_quantize_weight, fold_batchnorm
from mnlib.deploy.qat import finish_qat, prepare_qat, straight_through


def small_net() -> nn.Module:
    """[N, 3, 8, 8] → [N, 4]: conv-BN-ReLU, depthwise conv-BN-ReLU, pool, linear (eval mode)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, bias=False),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 4),
    )
    with torch.no_grad():  # BatchNorm statistics that are not the defaults, so folding matters
        for bn in (model[1], model[4]):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
    return model.eval()


def test_straight_through_rounds_forward_and_passes_gradients_unchanged():
    x = torch.tensor([0.2, 1.7, -0.6], requires_grad=True)
    y = straight_through(x, x.detach().round())
    assert y.tolist() == [0.0, 2.0, -1.0]
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [1.0, 2.0, 3.0]


def test_prepared_model_computes_the_folded_model_with_rounded_weights_and_inputs():
    model = small_net()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    prepared = prepare_qat(model)
    x = torch.randn(5, 3, 8, 8)

    folded = fold_batchnorm(model)
    convs = [m for m in folded.modules() if isinstance(m, nn.Conv2d)]
    hooks = [
        conv.register_forward_pre_hook(lambda m, inputs: (fake_quantize_activation(inputs[0]),))
        for conv in convs
    ]
    with torch.no_grad():
        for conv in convs:
            conv.weight.copy_(fake_quantize_weight(conv.weight, per_channel=True))
        expected = folded(x)
    for hook in hooks:
        hook.remove()

    with torch.no_grad():
        got = prepared.eval()(x)
    torch.testing.assert_close(got, expected)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    assert not any(isinstance(m, nn.BatchNorm2d) for m in prepared.modules())


def test_gradients_reach_the_float_weights_through_the_rounding():
    prepared = prepare_qat(small_net())
    conv = prepared[3]  # the depthwise convolution
    x = torch.randn(4, 3, 8, 8)
    prepared(x).square().sum().backward()
    shadow = conv.parametrizations.weight.original
    assert shadow.grad is not None and shadow.grad.abs().sum() > 0
    # With the straight-through estimator the gradient is the one a conv with the rounded
    # weight (held fixed) would get.
    rounded = conv.weight.detach().clone().requires_grad_(True)
    hidden = prepared[:3](x).detach()
    rounded_input = fake_quantize_activation(hidden)
    out = nn.functional.conv2d(rounded_input, rounded, conv.bias.detach(), padding=1, groups=6)
    prepared_tail = prepared[4:]
    prepared_tail(out).square().sum().backward()
    torch.testing.assert_close(shadow.grad, rounded.grad)


def test_finish_gives_a_plain_float_model_with_the_trained_weights():
    prepared = prepare_qat(small_net())
    optimizer = torch.optim.SGD(prepared.parameters(), lr=0.05)
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.cross_entropy(
            prepared(torch.randn(8, 3, 8, 8)), torch.randint(0, 4, (8,))
        ).backward()
        optimizer.step()
    shadows = [
        m.parametrizations.weight.original.detach().clone() for m in (prepared[0], prepared[3])
    ]
    plain = finish_qat(prepared)
    assert not plain.training
    for conv, shadow in zip((plain[0], plain[3]), shadows, strict=True):
        assert not parametrize.is_parametrized(conv)
        assert not conv._forward_pre_hooks
        assert torch.equal(conv.weight, shadow)  # the float weights, not their rounding
    with pytest.raises(ValueError, match="not prepared"):
        finish_qat(plain)


def test_finish_removes_only_the_hooks_prepare_added():
    prepared = prepare_qat(small_net())
    seen = []
    prepared[0].register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].shape))
    plain = finish_qat(prepared)
    plain(torch.randn(2, 3, 8, 8))
    assert seen == [torch.Size([2, 3, 8, 8])]  # the user's hook still runs
    assert len(plain[0]._forward_pre_hooks) == 1 and not plain[3]._forward_pre_hooks


def test_a_model_without_convolutions_is_an_error():
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        prepare_qat(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)))


def test_a_finished_model_exports_and_quantizes(tmp_path):
    plain = finish_qat(prepare_qat(small_net()))
    fp32 = export_onnx(plain, tmp_path / "qat.onnx", input_size=(3, 8, 8))
    images = torch.randn(16, 3, 8, 8)
    int8 = quantize_int8(fp32, tmp_path / "qat_int8.onnx", images)
    batches = [(images[:8], torch.zeros(8, dtype=torch.long))]
    result = onnx_evaluate(onnx_session(int8), batches)
    assert 0.0 <= result["accuracy"] <= 1.0
