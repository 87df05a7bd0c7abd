"""Tests of mnlib.train: fit, evaluate, predict, History and checkpoint/resume."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import mnlib
from mnlib.train import History, evaluate, fit, loop, predict
from mnlib.train import checkpoint as checkpoint_module

CENTERS = torch.tensor([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]])


def make_blobs(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three Gaussian blobs in 2-D: points [count, 2] and labels [count]."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % len(CENTERS)
    points = CENTERS[labels] + 0.6 * torch.randn(count, 2, generator=generator)
    return points, labels


class ShufflingLoader:
    """In-memory batches, reshuffled from (seed, epoch) like mnlib.data's fast loaders."""

    def __init__(self, images, labels, batch_size, seed=0):
        self.images, self.labels, self.batch_size, self.seed = images, labels, batch_size, seed
        self.epoch = 0
        self.epochs_seen = []

    def set_epoch(self, epoch):
        self.epoch = epoch
        self.epochs_seen.append(epoch)

    def __len__(self):
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(len(self.labels), generator=generator)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            yield self.images[batch], self.labels[batch]


class InterruptingLoader(ShufflingLoader):
    """Raises KeyboardInterrupt when told to start ``stop_epoch``: a lost Colab session."""

    def __init__(self, *args, stop_epoch, **kwargs):
        super().__init__(*args, **kwargs)
        self.stop_epoch = stop_epoch

    def set_epoch(self, epoch):
        if epoch == self.stop_epoch:
            raise KeyboardInterrupt
        super().set_epoch(epoch)


class UntouchedLoader:
    """Six batches that must never be read."""

    def __len__(self):
        return 6

    def __iter__(self):
        raise AssertionError("nothing should be trained")


def make_model(hidden: int = 16) -> nn.Module:
    # BatchNorm adds buffers, Dropout makes the result depend on the RNG state.
    return nn.Sequential(
        nn.Linear(2, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(hidden, 3),
    )


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors gain nothing from threads; on a busy machine their synchronisation costs
    ~0.1 s per batch-norm call."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def blobs():
    return make_blobs(96, seed=1), make_blobs(48, seed=2)


def train_loader(blobs, **kwargs):
    (images, labels), _ = blobs
    return ShufflingLoader(images, labels, batch_size=16, **kwargs)


def val_loader(blobs):
    return DataLoader(TensorDataset(*blobs[1]), batch_size=16)


def quiet_fit(model, loader, **kwargs):
    kwargs.setdefault("lr", 0.01)
    return fit(model, loader, device="cpu", progress=False, **kwargs)


def test_loss_falls_on_blobs(blobs):
    mnlib.seed_everything(0)
    history = quiet_fit(make_model(), train_loader(blobs), val_loader=val_loader(blobs), epochs=6)
    assert len(history) == 6
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert history.val_loss[-1] < history.val_loss[0]
    assert history.val_accuracy[-1] > 0.9
    assert all(speed > 0 for speed in history.images_per_second)
    assert history.lr == [0.01] * 6


def test_set_epoch_is_called_with_zero_based_epochs(blobs):
    loader = train_loader(blobs)
    quiet_fit(make_model(), loader, epochs=3)
    assert loader.epochs_seen == [0, 1, 2]


def run_interrupted_then_resumed(blobs, path: Path) -> tuple[nn.Module, History]:
    (images, labels), _ = blobs
    mnlib.seed_everything(0)
    interrupted = InterruptingLoader(images, labels, batch_size=16, stop_epoch=2)
    with pytest.raises(KeyboardInterrupt):
        quiet_fit(
            make_model(),
            interrupted,
            val_loader=val_loader(blobs),
            epochs=4,
            scheduler="onecycle",
            checkpoint=path,
        )
    assert checkpoint_module.load_checkpoint(path)["epoch"] == 2

    mnlib.seed_everything(123)  # a new session: fresh process state, fresh model
    model = make_model()
    history = quiet_fit(
        model,
        train_loader(blobs),
        val_loader=val_loader(blobs),
        epochs=4,
        scheduler="onecycle",
        checkpoint=path,
        resume=True,
    )
    return model, history


def test_resume_is_bit_identical_to_an_uninterrupted_run(blobs, tmp_path):
    mnlib.seed_everything(0)
    straight_model = make_model()
    straight = quiet_fit(
        straight_model,
        train_loader(blobs),
        val_loader=val_loader(blobs),
        epochs=4,
        scheduler="onecycle",
    )

    resumed_model, resumed = run_interrupted_then_resumed(blobs, tmp_path / "run.pt")

    straight_state, resumed_state = straight_model.state_dict(), resumed_model.state_dict()
    assert straight_state.keys() == resumed_state.keys()
    for key in straight_state:
        assert torch.equal(straight_state[key], resumed_state[key]), key
    for metric in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
        assert getattr(resumed, metric) == getattr(straight, metric), metric
    assert checkpoint_module.load_checkpoint(tmp_path / "run.pt")["epoch"] == 4


def test_resume_depends_on_the_restored_rng_state(blobs, tmp_path, monkeypatch):
    """Negative control: without the saved RNG states dropout draws other masks."""
    mnlib.seed_everything(0)
    straight_model = make_model()
    quiet_fit(straight_model, train_loader(blobs), epochs=4, scheduler="onecycle")

    monkeypatch.setattr(checkpoint_module, "set_rng_state", lambda state: None)
    resumed_model, _ = run_interrupted_then_resumed(blobs, tmp_path / "run.pt")
    assert not torch.equal(straight_model[0].weight, resumed_model[0].weight)


def test_resume_of_a_finished_run_returns_its_history(blobs, tmp_path):
    path = tmp_path / "run.pt"
    mnlib.seed_everything(0)
    trained = make_model()
    history = quiet_fit(trained, train_loader(blobs), epochs=2, checkpoint=path)

    fresh = make_model()
    again = quiet_fit(fresh, UntouchedLoader(), epochs=2, checkpoint=path, resume=True)
    assert again.train_loss == history.train_loss
    assert torch.equal(fresh[0].weight, trained[0].weight)


def test_resume_without_a_checkpoint_starts_fresh_and_says_so(blobs, tmp_path, capsys):
    path = tmp_path / "missing.pt"
    history = fit(
        make_model(),
        train_loader(blobs),
        epochs=1,
        lr=0.01,
        device="cpu",
        checkpoint=path,
        resume=True,
        progress=True,
    )
    assert len(history) == 1
    assert f"no checkpoint at {path}" in capsys.readouterr().out
    assert path.exists()


class NaNAfter(nn.Module):
    """A linear classifier whose ``nan_call``-th forward pass returns NaN logits."""

    def __init__(self, nan_call: int):
        super().__init__()
        self.linear = nn.Linear(2, 3)
        self.calls, self.nan_call = 0, nan_call

    def forward(self, x):
        self.calls += 1
        logits = self.linear(x)
        return logits * float("nan") if self.calls == self.nan_call else logits


def test_nan_loss_stops_naming_epoch_and_batch(blobs):
    model = NaNAfter(nan_call=6 + 2)  # 6 batches per epoch: epoch 2, batch 2
    with pytest.raises(FloatingPointError, match=r"epoch 2, batch 2 \(both counted from 1\)"):
        quiet_fit(model, train_loader(blobs), epochs=3)
    assert torch.isfinite(model.linear.weight).all()  # stopped before the NaN update


def test_evaluate_a_fixed_linear_model():
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))  # logits = inputs
    points = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 3.0], [0.0, 2.0], [1.0, 0.0]])
    labels = torch.tensor([0, 1, 0, 0, 0])  # predictions 0, 1, 1, 1, 0: three right
    loader = DataLoader(TensorDataset(points, labels), batch_size=2)  # batches of 2, 2, 1
    by_hand = [
        math.log(math.exp(a) + math.exp(b)) - (a, b)[y]
        for (a, b), y in zip(points.tolist(), labels.tolist(), strict=True)
    ]

    model.train()
    result = evaluate(model, loader, device="cpu")
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert result["loss"] == pytest.approx(sum(by_hand) / 5)
    assert model.training  # mode restored


def test_evaluate_restores_mixed_modes(blobs):
    model = make_model()
    model.train()
    model[1].eval()  # e.g. a frozen BatchNorm
    evaluate(model, val_loader(blobs), device="cpu")
    assert model.training and model[0].training and not model[1].training


def test_predict_returns_logits_and_labels_on_the_cpu(blobs):
    logits, labels = predict(make_model(), val_loader(blobs), device="cpu")
    assert logits.shape == (48, 3) and logits.device.type == "cpu"
    assert torch.equal(labels, blobs[1][1])


def test_history_json_round_trip_and_display(tmp_path):
    history = History()
    for epoch, (loss, accuracy) in enumerate([(1.0, 0.5), (0.5, 0.75), (0.7, 0.7)], start=1):
        history.append(
            train_loss=loss,
            train_accuracy=accuracy,
            val_loss=None if epoch == 1 else loss + 0.125,
            val_accuracy=None if epoch == 1 else accuracy - 0.1,
            lr=1e-3 / epoch,
            seconds=0.1 * epoch,
            images_per_second=1000.0 / 3,
        )
    history.save(tmp_path / "history.json")
    loaded = History.load(tmp_path / "history.json")
    assert loaded.to_dict() == history.to_dict()
    assert loaded.best("val_accuracy")["epoch"] == 2
    assert loaded.best("train_loss")["epoch"] == 2
    assert loaded.best("lr", mode="min")["epoch"] == 3
    assert loaded.to_rows()[0]["val_loss"] is None
    table = str(loaded).splitlines()
    assert len(table) == 4 and "val acc" in table[0] and "65.00%" in table[2]
    assert repr(loaded) == str(loaded)
    with pytest.raises(ValueError, match="unknown metric"):
        history.best("val_acc")
    (tmp_path / "bad.json").write_text('{"train_loss": []}')
    with pytest.raises(ValueError, match="bad.json is not a History"):
        History.load(tmp_path / "bad.json")


def test_checkpoint_write_is_atomic(blobs, tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    model = make_model()
    quiet_fit(model, train_loader(blobs), epochs=1, checkpoint=path)
    saved_weight = model[0].weight.detach().clone()

    def crash_halfway(obj, file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a zip file")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.torch, "save", crash_halfway)
    with pytest.raises(OSError, match="disk full"):
        quiet_fit(model, train_loader(blobs), epochs=2, checkpoint=path, resume=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]  # no temporary file left
    state = checkpoint_module.load_checkpoint(path)
    assert state["epoch"] == 1
    assert torch.equal(state["model"]["0.weight"], saved_weight)


def test_corrupt_checkpoint_is_a_clear_error(blobs, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(RuntimeError, match=r"cannot read the checkpoint .*garbage\.pt.*corrupt"):
        quiet_fit(make_model(), train_loader(blobs), epochs=1, checkpoint=garbage, resume=True)

    truncated = tmp_path / "truncated.pt"
    quiet_fit(make_model(), train_loader(blobs), epochs=1, checkpoint=truncated)
    truncated.write_bytes(truncated.read_bytes()[:2000])
    with pytest.raises(RuntimeError, match=r"truncated\.pt"):
        quiet_fit(make_model(), train_loader(blobs), epochs=2, checkpoint=truncated, resume=True)

    not_ours = tmp_path / "weights.pt"
    torch.save(make_model().state_dict(), not_ours)
    with pytest.raises(RuntimeError, match=r"weights\.pt is not a checkpoint .*missing: epoch"):
        quiet_fit(make_model(), train_loader(blobs), epochs=2, checkpoint=not_ours, resume=True)


def test_checkpoint_of_another_model_or_optimizer_is_a_clear_error(blobs, tmp_path):
    path = tmp_path / "run.pt"
    quiet_fit(make_model(hidden=16), train_loader(blobs), epochs=1, checkpoint=path)

    with pytest.raises(RuntimeError, match=r"run\.pt was written for a different model.*0\.weight"):
        quiet_fit(make_model(hidden=8), train_loader(blobs), epochs=2, checkpoint=path, resume=True)

    model = make_model(hidden=16)
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RuntimeError, match=r"run\.pt was written with optimizer AdamW.*SGD"):
        fit(
            model,
            train_loader(blobs),
            epochs=2,
            optimizer=sgd,
            device="cpu",
            progress=False,
            checkpoint=path,
            resume=True,
        )


def test_schedulers_step_after_every_batch(blobs):
    loader = train_loader(blobs)  # 6 batches per epoch
    made = []

    def make_onecycle(optimizer, total_steps):
        made.append(torch.optim.lr_scheduler.OneCycleLR(optimizer, 0.01, total_steps=total_steps))
        return made[-1]

    by_name = quiet_fit(make_model(), loader, epochs=2, scheduler="onecycle")
    by_factory = quiet_fit(make_model(), loader, epochs=2, scheduler=make_onecycle)
    assert made[0].total_steps == 12 and made[0].last_epoch == 12

    reference_optimizer = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=0.01)
    reference = torch.optim.lr_scheduler.OneCycleLR(reference_optimizer, 0.01, total_steps=12)
    expected = []
    for _ in range(2):
        for _ in range(6):
            reference_optimizer.step()
            reference.step()
        expected.append(reference.get_last_lr()[0])
    assert by_name.lr == expected == by_factory.lr
    assert expected[0] < 0.01 and expected[1] < expected[0]

    cosine = quiet_fit(make_model(), loader, epochs=2, scheduler="cosine")
    assert cosine.lr[0] == pytest.approx(0.005)  # half way down the cosine
    assert cosine.lr[1] == pytest.approx(0.0, abs=1e-12)


def test_bad_arguments_are_value_errors(blobs):
    model, loader = make_model(), train_loader(blobs)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        quiet_fit(model, loader, epochs=0)
    with pytest.raises(ValueError, match="unknown scheduler 'linear'"):
        quiet_fit(model, loader, epochs=1, scheduler="linear")
    with pytest.raises(ValueError, match="not both"):
        quiet_fit(model, loader, epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="resume=True needs checkpoint"):
        quiet_fit(model, loader, epochs=1, resume=True)
    with pytest.raises(ValueError, match="label_smoothing"):
        quiet_fit(model, loader, epochs=1, loss_fn=nn.CrossEntropyLoss(), label_smoothing=0.1)
    with pytest.raises(ValueError, match="amp must be one of"):
        quiet_fit(model, loader, epochs=1, amp="fp8")
    with pytest.raises(ValueError, match="train_loader is empty"):
        quiet_fit(model, [], epochs=1)


@pytest.mark.parametrize("amp", [True, "bf16", "fp16"])
def test_amp_on_the_cpu_is_a_value_error(blobs, amp):
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        quiet_fit(make_model(), train_loader(blobs), epochs=1, amp=amp)


@pytest.mark.parametrize(
    ("amp", "capability", "expected"),
    [
        (None, (9, 0), torch.bfloat16),  # H100: bf16, no GradScaler needed
        (None, (7, 5), torch.float16),  # Colab's T4 has no bf16
        (True, (8, 0), torch.bfloat16),
        ("fp16", (8, 6), torch.float16),
        (False, (8, 0), None),
    ],
)
def test_amp_choice_on_cuda_follows_the_compute_capability(monkeypatch, amp, capability, expected):
    # No GPU needed: the choice depends only on the device type and its compute capability.
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert loop._resolve_amp(amp, torch.device("cuda")) == expected


def test_bf16_on_a_t4_is_a_value_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    with pytest.raises(ValueError, match=r"compute capability 7\.5\) has no bf16"):
        loop._resolve_amp("bf16", torch.device("cuda"))


def test_progress_false_prints_nothing(blobs, capsys):
    quiet_fit(make_model(), train_loader(blobs), val_loader=val_loader(blobs), epochs=2)
    assert capsys.readouterr() == ("", "")


def test_progress_prints_one_summary_line_per_epoch(blobs, capsys):
    fit(
        make_model(),
        train_loader(blobs),
        val_loader(blobs),
        epochs=2,
        lr=0.01,
        device="cpu",
        progress=True,
    )
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "val loss" in lines[0] and "img/s" in lines[0]


def test_tqdm_disable_environment_variable_hides_only_the_bars():
    # tqdm reads TQDM_* variables when it is imported, hence a fresh interpreter.
    script = (
        "import torch; from mnlib.train import fit; torch.set_num_threads(1); "
        "batches = [(torch.randn(4, 2), torch.tensor([0, 1, 2, 0]))] * 3; "
        "fit(torch.nn.Linear(2, 3), batches, epochs=1, device='cpu', progress=True)"
    )
    environment = {**os.environ, "TQDM_DISABLE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, check=True
    )
    assert result.stdout.startswith("epoch 1/1  train loss") and result.stderr == ""


@pytest.mark.parametrize(("budget", "prints"), [("quick", False), ("standard", True)])
def test_progress_default_follows_the_budget(blobs, capsys, monkeypatch, budget, prints):
    monkeypatch.setenv("MNLIB_BUDGET", budget)
    fit(make_model(), train_loader(blobs), epochs=1, lr=0.01, device="cpu")
    assert bool(capsys.readouterr().out) == prints
