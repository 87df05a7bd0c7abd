"""Tests of mnlib.train: fit, evaluate, predict, History and checkpoint/resume."""

import math
import os
import runpy
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
    if "optimizer" not in kwargs:
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
        sgd = torch.optim.SGD(model.parameters(), lr=0.1)
        quiet_fit(model, loader, epochs=1, optimizer=sgd, lr=0.01)
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


# --- train_one_epoch: the loop in the open ---------------------------------------------------


def test_train_one_epoch_is_the_hand_written_loop(blobs):
    (images, labels), _ = blobs
    batches = [(images[i : i + 16], labels[i : i + 16]) for i in range(0, 96, 16)]
    torch.manual_seed(0)
    model = nn.Linear(2, 3)
    by_hand = nn.Linear(2, 3)
    by_hand.load_state_dict(model.state_dict())

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    stats = loop.train_one_epoch(model, batches, optimizer, nn.CrossEntropyLoss())

    hand_optimizer = torch.optim.SGD(by_hand.parameters(), lr=0.1)
    losses, correct = [], 0
    for x, y in batches:
        logits = by_hand(x)
        loss = nn.functional.cross_entropy(logits, y)
        hand_optimizer.zero_grad()
        loss.backward()
        hand_optimizer.step()
        losses.append(loss.item())
        correct += (logits.argmax(1) == y).sum().item()

    assert torch.equal(model.weight, by_hand.weight)
    assert stats.images == 96 and stats.loss.device.type == "cpu"
    assert stats.loss.item() == pytest.approx(sum(losses) / len(losses))  # equal batch sizes
    assert stats.accuracy.item() == pytest.approx(correct / 96)


def test_train_one_epoch_fits_on_one_screen_and_fit_runs_it(blobs, monkeypatch):
    source = mnlib.show_source(mnlib.train.train_one_epoch)
    text = source if isinstance(source, str) else source.data
    assert len(text.splitlines()) <= 45
    for step in ("model.train()", "loss.backward()", "optimizer.step()", "scheduler.step()"):
        assert step in text
    for clutter in ("autocast", "GradScaler", "tqdm", "item()"):
        assert clutter not in text

    calls = []
    real = loop.train_one_epoch
    monkeypatch.setattr(loop, "train_one_epoch", lambda *a, **k: calls.append(1) or real(*a, **k))
    quiet_fit(make_model(), train_loader(blobs), epochs=2)
    assert len(calls) == 2


def test_train_one_epoch_on_an_empty_loader_is_a_value_error():
    model = nn.Linear(2, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="the loader yielded no batches"):
        loop.train_one_epoch(model, [], optimizer, nn.CrossEntropyLoss())


# --- no silent failures ----------------------------------------------------------------------


def test_an_existing_checkpoint_is_never_replaced_silently(blobs, tmp_path):
    path = tmp_path / "finished.pt"
    quiet_fit(make_model(), train_loader(blobs), epochs=2, checkpoint=path)
    before = path.read_bytes()

    with pytest.raises(FileExistsError, match=r"finished\.pt already exists.*resume=True"):
        quiet_fit(make_model(), train_loader(blobs), epochs=1, checkpoint=path)
    assert path.read_bytes() == before

    with pytest.raises(ValueError, match="pick one"):
        quiet_fit(
            make_model(),
            train_loader(blobs),
            epochs=1,
            checkpoint=path,
            resume=True,
            overwrite=True,
        )

    quiet_fit(make_model(), train_loader(blobs), epochs=1, checkpoint=path, overwrite=True)
    assert checkpoint_module.load_checkpoint(path)["epoch"] == 1


class PoisonedSGD(torch.optim.SGD):
    """SGD whose ``poison_step``-th update writes NaN into the first weight: a divergence on an
    update that no loss computed before it can show."""

    def __init__(self, params, poison_step: int):
        super().__init__(params, lr=0.01)
        self.steps, self.poison_step = 0, poison_step

    def step(self, closure=None):
        result = super().step(closure)
        self.steps += 1
        if self.steps == self.poison_step:
            with torch.no_grad():
                self.param_groups[0]["params"][0].view(-1)[0] = float("nan")
        return result


def test_nan_weights_after_the_last_update_stop_the_run_without_a_checkpoint(blobs, tmp_path):
    path = tmp_path / "run.pt"
    model = make_model()
    optimizer = PoisonedSGD(model.parameters(), poison_step=12)  # epoch 2's last update
    with pytest.raises(FloatingPointError, match=r"0\.weight is no longer finite after epoch 2"):
        quiet_fit(model, train_loader(blobs), epochs=3, optimizer=optimizer, checkpoint=path)
    state = checkpoint_module.load_checkpoint(path)
    assert state["epoch"] == 1
    assert all(torch.isfinite(tensor).all() for tensor in state["model"].values())


def test_non_finite_batchnorm_statistics_stop_the_run(blobs, tmp_path):
    # One outlier overflows BatchNorm's running variance to inf in float32, while the training
    # loss, the gradients and the validation loss (normalized by inf: zero) all stay finite.
    (images, labels), _ = blobs
    images = images.clone()
    images[5] = 3e19
    path = tmp_path / "run.pt"
    loader = ShufflingLoader(images, labels, batch_size=16)
    with pytest.raises(FloatingPointError, match=r"1\.running_var is no longer finite .*epoch 1"):
        quiet_fit(make_model(), loader, val_loader=val_loader(blobs), epochs=2, checkpoint=path)
    assert not path.exists()


def test_a_nan_validation_loss_stops_the_run(blobs, tmp_path):
    val_images, val_labels = blobs[1][0].clone(), blobs[1][1]
    val_images[3] = float("nan")
    bad_val = DataLoader(TensorDataset(val_images, val_labels), batch_size=16)
    path = tmp_path / "run.pt"
    with pytest.raises(FloatingPointError, match=r"validation loss is nan after epoch 1"):
        quiet_fit(make_model(), train_loader(blobs), val_loader=bad_val, epochs=2, checkpoint=path)
    assert not path.exists()


def test_on_a_gpu_the_loss_is_read_every_few_batches_and_still_names_the_batch(blobs, monkeypatch):
    monkeypatch.setattr(loop, "_check_interval", lambda device: 4)  # as on a GPU, shorter
    model = NaNAfter(nan_call=2)
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch 2 \(both counted from 1\)"):
        quiet_fit(model, train_loader(blobs), epochs=1)
    assert model.calls == 4  # noticed at the next read, after batch 4's forward


def test_the_loop_reads_no_tensor_per_batch(blobs, monkeypatch):
    """With reads spaced out as on a GPU, the host reads per epoch do not grow with batches."""
    monkeypatch.setattr(loop, "_check_interval", lambda device: 1000)
    reads = []
    for method in ("item", "tolist", "__bool__", "__float__", "__int__"):
        original = getattr(torch.Tensor, method)

        def counting(self, *args, _original=original, **kwargs):
            if "mnlib" in sys._getframe(1).f_code.co_filename:
                reads.append(1)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, counting)

    def reads_for(batch_size):
        reads.clear()
        (images, labels), _ = blobs
        loader = ShufflingLoader(images, labels, batch_size=batch_size)
        model = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
        sgd = torch.optim.SGD(model.parameters(), lr=0.1)
        quiet_fit(model, loader, val_loader=val_loader(blobs), epochs=1, optimizer=sgd)
        return len(reads)

    assert reads_for(batch_size=48) == reads_for(batch_size=4) > 0  # 2 vs 24 batches


def test_fp16_gradient_scaling_gives_the_plain_update():
    """fit's fp16 path (CUDA only) rebuilt on the CPU: a scaled backward, unscaled update."""
    torch.manual_seed(0)
    x, y = torch.randn(8, 2), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    plain, scaled = nn.Linear(2, 3), nn.Linear(2, 3)
    scaled.load_state_dict(plain.state_dict())
    plain_optimizer = torch.optim.SGD(plain.parameters(), lr=0.1)
    loop.train_one_epoch(plain, [(x, y)], plain_optimizer, nn.CrossEntropyLoss())

    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    optimizer = torch.optim.SGD(scaled.parameters(), lr=0.1)
    watch = loop._LossWatch(nn.CrossEntropyLoss(), scaler, check_every=1)
    stats = loop.train_one_epoch(scaled, [(x, y)], loop._ScaledStepper(optimizer, scaler), watch)
    assert torch.equal(scaled.weight, plain.weight)  # scaling by 2^12 is exact
    assert stats.loss.item() == pytest.approx(watch.losses[0].item())  # the unscaled loss
    assert scaler.get_scale() == 2.0**12  # no overflow, no change before growth_interval


def test_resuming_with_another_lr_is_an_error_naming_both(blobs, tmp_path):
    path = tmp_path / "run.pt"
    quiet_fit(make_model(), train_loader(blobs), epochs=1, checkpoint=path, lr=0.01)
    for epochs in (2, 1):  # to continue, and a finished run
        with pytest.raises(RuntimeError, match=r"run\.pt .*lr 0\.01 in the checkpoint, 0\.1 now"):
            quiet_fit(
                make_model(),
                train_loader(blobs),
                epochs=epochs,
                checkpoint=path,
                resume=True,
                lr=0.1,
            )
    resumed = quiet_fit(
        make_model(), train_loader(blobs), epochs=2, checkpoint=path, resume=True, lr=0.01
    )
    assert len(resumed) == 2


class EmptyLoader:
    """Claims three batches, yields none (e.g. a sampler filtered to nothing)."""

    def __len__(self):
        return 3

    def __iter__(self):
        return iter([])


def test_a_loader_that_yields_nothing_is_a_value_error_naming_it(blobs):
    with pytest.raises(ValueError, match=r"train_loader yielded no batches.*len\(train_loader\) "):
        quiet_fit(make_model(), EmptyLoader(), epochs=1)
    with pytest.raises(ValueError, match=r"val_loader yielded no batches"):
        quiet_fit(make_model(), train_loader(blobs), val_loader=EmptyLoader(), epochs=1)


def test_history_best_skips_nan_rows():
    history = History()
    for loss, accuracy in [(float("nan"), float("nan")), (0.9, 0.6), (0.7, 0.5)]:
        history.append(
            train_loss=loss,
            train_accuracy=accuracy,
            val_loss=loss,
            val_accuracy=accuracy,
            lr=0.1,
            seconds=1.0,
            images_per_second=1.0,
        )
    assert history.best("val_loss")["epoch"] == 3
    assert history.best("val_accuracy")["epoch"] == 2


# --- channels_last and the GPU throughput benchmark ---------------------------------------------


def tiny_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),  # BatchNorm follows
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 3),
    )


def test_channels_last_trains_the_same_model_and_restores_the_layout():
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(32, 3, 8, 8, generator=generator)
    labels = torch.arange(32) % 3
    batches = [(images[i : i + 8], labels[i : i + 8]) for i in range(0, 32, 8)]
    layouts = []
    models = {}
    for channels_last in (False, True):
        torch.manual_seed(0)
        model = tiny_cnn()
        model[0].register_forward_pre_hook(
            lambda module, args: layouts.append(
                args[0].is_contiguous(memory_format=torch.channels_last)
            )
        )
        quiet_fit(model, batches, epochs=2, channels_last=channels_last)
        models[channels_last] = model
    assert layouts == [False] * 8 + [True] * 8
    assert models[True][0].weight.is_contiguous()  # back to the usual layout
    for nchw, nhwc in zip(models[False].parameters(), models[True].parameters(), strict=True):
        torch.testing.assert_close(nchw, nhwc, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("device", "model", "expected"),
    [("cuda", tiny_cnn(), True), ("cuda", nn.Linear(2, 3), False), ("cpu", tiny_cnn(), False)],
)
def test_channels_last_default_is_on_for_conv_models_on_cuda(device, model, expected):
    assert loop._resolve_channels_last(None, model, torch.device(device)) is expected
    assert loop._resolve_channels_last(True, model, torch.device(device)) is True


def test_channels_last_must_be_a_boolean_or_none():
    with pytest.raises(ValueError, match="channels_last must be None, True or False"):
        loop._resolve_channels_last("yes", tiny_cnn(), torch.device("cpu"))


def test_gpu_step_throughput_benchmark_runs_tiny_on_the_cpu(capsys):
    script = Path(__file__).parents[1] / "benchmarks" / "gpu_step_throughput.py"
    speeds = runpy.run_path(str(script))["main"](["--tiny"])
    assert len(speeds) == 3 and all(speed > 0 for speed in speeds.values())
    lines = capsys.readouterr().out.splitlines()
    assert "batch 2" in lines[0] and "cpu" in lines[0]
    assert "plain loop" in lines[2] and lines[2].endswith("1.00x")
    assert "channels_last=True" in lines[4] and lines[4].endswith("x")


def test_the_mixed_precision_forward_runs_under_autocast(blobs, monkeypatch):
    """fit's bf16 path (CUDA by default) exercised with the CPU's bf16 autocast."""
    monkeypatch.setattr(loop, "_resolve_amp", lambda amp, device: torch.bfloat16)
    dtypes = []
    model = make_model()
    model[0].register_forward_hook(lambda module, args, output: dtypes.append(output.dtype))
    history = quiet_fit(model, train_loader(blobs), val_loader=val_loader(blobs), epochs=2)
    assert set(dtypes) == {torch.bfloat16}  # training and validation batches
    assert model[0].weight.dtype == torch.float32  # the weights themselves stay float32
    assert history.train_loss[-1] < history.train_loss[0]


def test_tqdm_disable_also_switches_off_notebook_bars(monkeypatch):
    # With ipywidgets installed, tqdm.auto gives notebook bars, which ignore TQDM_DISABLE.
    from tqdm.notebook import tqdm as notebook_tqdm

    from mnlib.train import loop

    monkeypatch.setattr(loop, "tqdm", notebook_tqdm)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    with loop._progress_bar(range(3), 3, "epoch 1/1", show=True) as bar:
        assert bar.disable
    monkeypatch.setenv("TQDM_DISABLE", "0")
    with loop._progress_bar(range(3), 3, "epoch 1/1", show=False) as bar:
        assert bar.disable
