"""Tests of data-parallel training (mnlib.train.distributed and fit/loaders under torchrun).

The unit tests check the sharding and the reductions in one process. The launch tests start
``python -m torch.distributed.run --standalone --nproc_per_node=2`` (torchrun; gloo on the
CPU; ``--standalone`` picks a free port) with :mod:`mnlib.train.ddp_demo` on tiny synthetic
data, always under a timeout so that a hang fails the test instead of blocking the suite.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mnlib.data import AUGMENTATIONS
from mnlib.data.classic import ShardSampler
from mnlib.data.fast import TensorLoader
from mnlib.train import History, ddp_demo, distributed, evaluate

REPOSITORY = Path(__file__).resolve().parents[1]
LAUNCH_TIMEOUT = 240  # seconds; a healthy launch takes ~5-10 s idle, 30 s on a loaded CPU
# The 2-rank run averages two half-batch gradients where one process averages one batch: the
# same sums in another order, so float32 rounding differs. Measured after 3 epochs: 1.4e-6
# largest weight difference (weights up to 0.14 in size).
WEIGHT_TOLERANCE = 1e-5
# A run: 256 synthetic images, global batch 32 (16 per rank on 2 ranks), 3 epochs of 8 steps.
DEMO_ARGUMENTS = ["--data", "synthetic", "--subset", "256", "--batch-size", "32", "--threads", "1"]
EPOCHS = 3
CRASH_STEP = 19  # epoch 3, step 3: after the checkpoint of epoch 2


# --- one process: sharding and reduction ----------------------------------------------------


def test_shards_are_disjoint_interleaved_and_cover_the_epoch():
    shards = [distributed.shard_positions(10, rank, 2, pad=False) for rank in range(2)]
    assert shards[0].tolist() == [0, 2, 4, 6, 8] and shards[1].tolist() == [1, 3, 5, 7, 9]
    # Batch k of every rank (2 images each) together is the global batch k of 4 images.
    assert sorted(shards[0][:2].tolist() + shards[1][:2].tolist()) == [0, 1, 2, 3]


def test_padding_gives_every_rank_the_same_number_of_images():
    padded = [distributed.shard_positions(10, rank, 4, pad=True) for rank in range(4)]
    assert [len(shard) for shard in padded] == [3, 3, 3, 3]  # 10 images + 2 repeats
    assert sorted(torch.cat(padded).tolist()) == [0, 0, 1, 1, *range(2, 10)]
    unpadded = [distributed.shard_positions(10, rank, 4, pad=False) for rank in range(4)]
    assert sorted(torch.cat(unpadded).tolist()) == list(range(10))  # each image exactly once


def test_a_rank_outside_the_world_is_an_error():
    with pytest.raises(ValueError, match="rank must be in"):
        distributed.shard_positions(10, 2, 2, pad=False)
    images = torch.zeros(8, 1, 28, 28, dtype=torch.uint8)
    with pytest.raises(ValueError, match="rank must be below world_size"):
        TensorLoader(
            images,
            torch.zeros(8),
            name="mnist",
            batch_size=2,
            shuffle=True,
            rank=3,
            world_size=2,
            device="cpu",
        )


def test_outside_torchrun_the_world_is_one_process(monkeypatch):
    for name in distributed.TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert (distributed.rank(), distributed.world_size(), distributed.is_main_process()) == (
        0,
        1,
        True,
    )
    assert distributed.init_from_env() is False
    values = (torch.tensor(3.0), torch.tensor(5))
    assert distributed.all_reduce_sum(*values) == list(values)


def pretend_rank_1_of_2(monkeypatch) -> None:
    """torchrun's environment for rank 1 of 2, without starting a process group."""
    variables = {
        "RANK": "1",
        "WORLD_SIZE": "2",
        "LOCAL_RANK": "1",
        "MASTER_ADDR": "localhost",
        "MASTER_PORT": "29500",
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def test_loaders_and_history_read_torchruns_environment(monkeypatch, tmp_path):
    pretend_rank_1_of_2(monkeypatch)
    assert (distributed.rank(), distributed.world_size(), distributed.is_main_process()) == (
        1,
        2,
        False,
    )
    images, labels = fake_cifar(10)
    loader = TensorLoader(images, labels, name="cifar10", batch_size=4, shuffle=False, device="cpu")
    assert (loader.rank, loader.world_size, loader.local_size, len(loader)) == (1, 2, 5, 2)
    assert torch.cat([batch_labels for _, batch_labels in loader]).tolist() == [1, 3, 5, 7, 9]
    History(
        train_loss=[1.0],
        train_accuracy=[0.5],
        val_loss=[None],
        val_accuracy=[None],
        lr=[0.1],
        seconds=[1.0],
        images_per_second=[10.0],
    ).save(tmp_path / "h.json")
    assert not (tmp_path / "h.json").exists()  # only rank 0 writes


def fake_cifar(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (count, 3, 32, 32), generator=generator, dtype=torch.uint8)
    return images, torch.arange(count) % 10


@pytest.mark.parametrize("augment", [False, True])
def test_rank_batches_together_are_the_single_process_batch(augment):
    images, labels = fake_cifar(24)
    augmentation = AUGMENTATIONS["cifar10"] if augment else None
    shared = {"name": "cifar10", "shuffle": True, "augmentation": augmentation, "seed": 3}
    single = TensorLoader(images, labels, batch_size=8, device="cpu", **shared)
    ranks = [
        TensorLoader(images, labels, batch_size=4, rank=r, world_size=2, device="cpu", **shared)
        for r in range(2)
    ]
    for loader in [single, *ranks]:
        loader.set_epoch(2)
    assert len(ranks[0]) == len(ranks[1]) == len(single) == 3
    for whole, part0, part1 in zip(single, *ranks, strict=True):
        together = torch.cat([part0[0], part1[0]])  # [8, 3, 32, 32]
        # The same 8 images (augmented the same way), only in another order within the batch.
        assert torch.equal(
            together.sum(dim=(1, 2, 3)).sort().values, whole[0].sum(dim=(1, 2, 3)).sort().values
        )
        assert sorted(torch.cat([part0[1], part1[1]]).tolist()) == sorted(whole[1].tolist())


def test_classic_sampler_shards_one_permutation():
    samplers = [ShardSampler(10, r, 2, shuffle=True, pad=True, seed=0) for r in range(2)]
    for sampler in samplers:
        sampler.set_epoch(1)
    indices = [list(sampler) for sampler in samplers]
    assert sorted(indices[0] + indices[1]) == list(range(10))
    samplers[0].set_epoch(2)
    assert list(samplers[0]) != indices[0]  # a new order every epoch


def test_evaluate_outside_torchrun_is_unchanged():
    images, labels = fake_cifar(20)
    loader = TensorLoader(images, labels, name="cifar10", batch_size=8, shuffle=False, device="cpu")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    metrics = evaluate(model, loader, device="cpu")
    with torch.no_grad():
        predictions = torch.cat([model(batch).argmax(1) for batch, _ in loader])
    assert metrics["accuracy"] == (predictions == labels).sum().item() / len(labels)


# --- two processes under torchrun -----------------------------------------------------------

RECORDING_LAUNCHER = """
import sys
from pathlib import Path

from mnlib.train import ddp_demo, distributed, loop

log, arguments = Path(sys.argv[1]), sys.argv[2:]
write = loop.save_checkpoint


def recording_save(path, state):  # which rank wrote which epoch's checkpoint
    with log.open("a") as file:
        file.write(f"rank {distributed.rank()} epoch {state['epoch']}\\n")
    write(path, state)


loop.save_checkpoint = recording_save
ddp_demo.main(arguments)
"""


def torchrun(arguments: list[str], workdir: Path) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``torchrun --standalone --nproc_per_node=2 <arguments>``; (result, seconds)."""
    environment = {
        **os.environ,
        "OMP_NUM_THREADS": "1",  # set it ourselves, or torchrun warns that it sets it to 1
        "TQDM_DISABLE": "1",
        "PYTHONPATH": str(REPOSITORY),
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        *arguments,
    ]
    start = time.perf_counter()
    result = subprocess.run(
        command,
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT,
    )
    return result, time.perf_counter() - start


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """The single-process run and an uninterrupted 2-rank run with the same global batch."""
    workdir = tmp_path_factory.mktemp("ddp")
    single = ddp_demo.main(
        [*DEMO_ARGUMENTS, "--epochs", str(EPOCHS), "--weights", str(workdir / "single.pt")]
    )
    result, _ = torchrun(
        [
            "-m",
            "mnlib.train.ddp_demo",
            *DEMO_ARGUMENTS,
            "--epochs",
            str(EPOCHS),
            "--json",
            "two.json",
            "--weights",
            "two.pt",
        ],
        workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {
        "workdir": workdir,
        "single": single,
        "single_weights": torch.load(workdir / "single.pt"),
        "two": json.loads((workdir / "two.json").read_text()),
        "two_weights": torch.load(workdir / "two.pt"),
        "two_stdout": result.stdout,
    }


def test_two_ranks_match_one_process_with_the_same_global_batch(runs):
    two, single = runs["two"], runs["single"]
    assert (two["world_size"], two["batch_per_rank"], single["batch_per_rank"]) == (2, 16, 32)
    assert two["train_images_per_rank"] == 128  # each rank half of the 256 images
    for name, weight in runs["single_weights"].items():
        difference = (weight - runs["two_weights"][name]).abs().max().item()
        assert difference < WEIGHT_TOLERANCE, f"{name} differs by {difference}"
    for metric in ("train_loss", "val_loss"):
        assert two["history"][metric] == pytest.approx(single["history"][metric], rel=1e-4)
    # Accuracies are counts over all images, summed across ranks: exactly the same.
    for metric in ("train_accuracy", "val_accuracy"):
        assert two["history"][metric] == single["history"][metric]
    assert two["test_accuracy"] == single["test_accuracy"]


def test_only_rank_0_prints(runs):
    assert runs["two_stdout"].count("process(es) x") == 1
    assert runs["two_stdout"].count("test accuracy") == 1


def test_a_failing_rank_stops_the_run_and_a_resumed_run_matches(runs):
    workdir = runs["workdir"]
    (workdir / "launch.py").write_text(RECORDING_LAUNCHER)
    checkpoint = ["--checkpoint", "run.pt", "--epochs", str(EPOCHS)]
    crash = ["--crash-rank", "1", "--crash-step", str(CRASH_STEP)]
    failed, seconds = torchrun(
        ["launch.py", "saves.log", *DEMO_ARGUMENTS, *checkpoint, *crash], workdir
    )
    # torchrun's agent sees rank 1 exit, stops rank 0 (blocked in an all-reduce) and reports
    # the first failure as the root cause, with rank 1's exception.
    assert failed.returncode != 0
    root_cause = failed.stderr.split("Root Cause")[-1]
    assert "rank      : 1" in root_cause, failed.stderr[-3000:]
    assert f"simulated failure on rank 1 at training step {CRASH_STEP}" in root_cause
    assert seconds < LAUNCH_TIMEOUT / 2  # it stopped by itself, well before the timeout
    # The checkpoints of epochs 1 and 2 were written by rank 0 alone.
    assert (workdir / "saves.log").read_text().splitlines() == ["rank 0 epoch 1", "rank 0 epoch 2"]

    resumed, _ = torchrun(
        [
            "-m",
            "mnlib.train.ddp_demo",
            *DEMO_ARGUMENTS,
            *checkpoint,
            "--resume",
            "--json",
            "resumed.json",
            "--weights",
            "resumed.pt",
        ],
        workdir,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    history = json.loads((workdir / "resumed.json").read_text())["history"]
    for metric in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        assert history[metric] == runs["two"]["history"][metric]  # bit for bit
    weights = torch.load(workdir / "resumed.pt")
    assert all(torch.equal(weights[name], runs["two_weights"][name]) for name in weights)
