"""Tests of benchmarks/cifar10_train.py: the --tiny run, its JSON, and validation-based selection.

Needs the course's offline data: MNLIB_DATA must point at it (CI sets MNLIB_DATA=../shared/data).
"""

import datetime
import importlib.util
import json
import os
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from mnlib.data import TensorLoader
from mnlib.train.recipes import CIFAR_RECIPE, ROADMAP_RECIPE

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cifar10_train.py"


@pytest.fixture(scope="module")
def script():
    """benchmarks/cifar10_train.py imported as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("cifar10_train", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny_run(script, tmp_path, monkeypatch):
    """Run ``--tiny`` into tmp_path; count how often the test loader is evaluated."""
    if not os.environ.get("MNLIB_DATA"):
        pytest.fail(
            "MNLIB_DATA is not set: point it at the course's offline data folder, "
            "e.g. MNLIB_DATA=../shared/data (CI sets it)",
            pytrace=False,
        )
    made, test_evaluations = {}, []
    real_loaders, real_evaluate = script.loaders, script.evaluate

    def recording_loaders(*args, **kwargs):
        made["loaders"] = real_loaders(*args, **kwargs)
        return made["loaders"]

    def counting_evaluate(model, loader, **kwargs):
        if loader is made["loaders"].test:
            test_evaluations.append(loader)
        return real_evaluate(model, loader, **kwargs)

    monkeypatch.setattr(script, "loaders", recording_loaders)
    monkeypatch.setattr(script, "evaluate", counting_evaluate)
    out = tmp_path / "results" / "tiny.json"
    returned = script.main(["--model", "resnet20", "--tiny", "--out", str(out)])
    return out, returned, test_evaluations


def test_tiny_run_writes_a_json_result_with_provenance(tiny_run):
    out, returned, test_evaluations = tiny_run
    result = json.loads(out.read_text())
    assert result == returned
    assert result["model"] == "resnet20" and result["parameters"] == 269_722
    assert result["data"] == {
        "train_images": 256,
        "val_images": 500,
        "test_images": 500,
        "subset": 256,
        "seed": 0,
    }
    assert result["recipe"]["epochs"] == 1
    assert result["recipe"]["optimizer"] == "sgd" and result["recipe"]["nesterov"] is True
    [epoch] = result["curve"]
    assert epoch["epoch"] == 1 and epoch["seconds"] > 0
    assert set(epoch) >= {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"}
    assert result["best_epoch"] == 1
    assert result["val_accuracy"] == pytest.approx(epoch["val_accuracy"])
    for name in ("val_accuracy", "test_accuracy"):
        assert 0.0 <= result[name] <= 1.0
    assert result["wall_seconds"] > epoch["seconds"]

    provenance = result["provenance"]
    assert provenance["device"].startswith("cpu")
    assert provenance["torch"] == torch.__version__
    assert re.fullmatch(r"[0-9a-f]{40}", provenance["mnlib"]["commit"])
    assert isinstance(provenance["mnlib"]["dirty"], bool)
    date = datetime.datetime.fromisoformat(provenance["date_utc"])
    assert date.utcoffset() == datetime.timedelta(0)
    assert "--model resnet20 --tiny" in provenance["command"]
    assert provenance["arguments"]["tiny"] is True

    assert len(test_evaluations) == 1, "the test set must be evaluated exactly once"
    assert [p.name for p in out.parent.iterdir()] == ["tiny.json"], "a temporary file was left"


def test_recipe_overrides_and_argument_errors(script):
    arguments = script.parse_arguments(["--model", "resnet56", "--epochs", "3", "--lr", "0.05"])
    recipe = script.recipe_for(arguments)
    assert (recipe.epochs, recipe.lr, recipe.batch_size) == (3, 0.05, CIFAR_RECIPE.batch_size)
    with pytest.raises(SystemExit, match="2"):
        script.parse_arguments(["--model", "resnet20", "--epochs", "0"])
    with pytest.raises(SystemExit, match="2"):
        script.parse_arguments(["--model", "resnet20", "--tiny", "--epochs", "2"])
    with pytest.raises(SystemExit, match="2"):
        script.parse_arguments(["--model", "no_such_model"])


def test_argument_errors_name_the_cause(script, capsys):
    with pytest.raises(SystemExit, match="2"):
        script.parse_arguments(["--model", "resnet20", "--batch-size", "-4"])
    assert "--batch-size must be a positive integer, got -4" in capsys.readouterr().err


def test_epoch_offset_gives_each_epoch_its_own_batches(script):
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    loader = TensorLoader(
        images, torch.arange(8) % 10, name="cifar10", batch_size=8, shuffle=True, device="cpu"
    )
    shifted = script.EpochOffset(loader, 3)
    shifted.set_epoch(0)  # what fit(..., epochs=1) says
    [(from_shifted, _)] = list(shifted)
    loader.set_epoch(3)
    [(from_epoch_3, _)] = list(loader)
    assert len(shifted) == 1
    assert torch.equal(from_shifted, from_epoch_3)


@pytest.mark.parametrize("precise_bn", [False, True])
def test_train_and_select_keeps_the_best_validation_epoch(script, precise_bn):
    """The model ends with the weights of the epoch whose validation accuracy was highest
    (with --precise-bn, and the BatchNorm statistics that epoch was validated with)."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (96, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.arange(96) % 10
    shared = {"name": "cifar10", "batch_size": 16, "device": "cpu"}
    train = TensorLoader(images[:64], labels[:64], shuffle=True, **shared)
    val = TensorLoader(images[64:], labels[64:], shuffle=False, **shared)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, 10),
    )  # fmt: skip
    recipe = replace(CIFAR_RECIPE, epochs=4, lr=0.5)
    rows, best_epoch = script.train_and_select(
        model, train, val, recipe, torch.device("cpu"), precise_bn
    )
    accuracies = [row["val_accuracy"] for row in rows]
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4]
    assert best_epoch == accuracies.index(max(accuracies)) + 1
    assert script.evaluate(model, val)["accuracy"] == pytest.approx(max(accuracies))


def test_a_model_without_a_cifar_variant_fails_before_any_data_is_loaded(script, tmp_path):
    out = tmp_path / "mlp.json"
    with pytest.raises(TypeError, match="model 'mlp' does not take cifar"):
        script.main(["--model", "mlp", "--tiny", "--out", str(out)])
    assert not out.exists()


def test_roadmap_recipe_tiny_run_is_recorded_as_the_roadmap(script, tmp_path):
    """--recipe roadmap trains the roadmap's network with Adam, a constant lr, no augmentation."""
    if not os.environ.get("MNLIB_DATA"):
        pytest.fail("MNLIB_DATA is not set (CI sets MNLIB_DATA=../shared/data)", pytrace=False)
    out = tmp_path / "roadmap.json"
    argv = ["--model", "roadmap_mobilenet_v2", "--recipe", "roadmap", "--tiny", "--out", str(out)]
    returned = script.main(argv)
    result = json.loads(out.read_text())
    assert result == returned
    assert result["model"] == "roadmap_mobilenet_v2" and result["parameters"] == 2_064_138
    assert result["recipe_name"] == "roadmap"
    recipe = result["recipe"]
    assert (recipe["optimizer"], recipe["scheduler"], recipe["lr"]) == ("adam", "constant", 1e-3)
    assert (recipe["augment"], recipe["decay_all"], recipe["batch_size"]) == (False, True, 128)
    assert recipe["epochs"] == 1 and result["data"]["train_images"] == 256
    [epoch] = result["curve"]
    assert epoch["lr"] == pytest.approx(1e-3)  # constant: no warm-up, no annealing
    assert 0.0 <= result["test_accuracy"] <= 1.0
    assert "--recipe roadmap" in result["provenance"]["command"]


def test_recipe_choice_and_label_smoothing_override(script):
    course = script.recipe_for(script.parse_arguments(["--model", "mobilenet_v2"]))
    assert course == CIFAR_RECIPE
    arguments = script.parse_arguments(
        ["--model", "mobilenet_v2", "--epochs", "90", "--label-smoothing", "0.1"]
    )
    assert script.recipe_for(arguments) == replace(CIFAR_RECIPE, epochs=90, label_smoothing=0.1)
    roadmap = script.parse_arguments(["--model", "roadmap_mobilenet_v2", "--recipe", "roadmap"])
    assert script.recipe_for(roadmap) == ROADMAP_RECIPE
    with pytest.raises(SystemExit, match="2"):
        script.parse_arguments(["--model", "mobilenet_v2", "--recipe", "adam"])


def test_label_smoothing_out_of_range_names_the_cause(script, capsys):
    with pytest.raises(SystemExit, match="2"):
        script.parse_arguments(["--model", "mobilenet_v2", "--label-smoothing", "1.5"])
    assert "--label-smoothing must be in [0, 1), got 1.5" in capsys.readouterr().err


def test_constant_schedule_keeps_the_lr(script):
    optimizer = torch.optim.Adam([nn.Parameter(torch.zeros(2))], lr=1e-3)
    schedule = script.make_schedule(optimizer, "constant", total_steps=10)
    for _ in range(10):
        optimizer.step()
        schedule.step()
    assert optimizer.param_groups[0]["lr"] == 1e-3
    with pytest.raises(ValueError, match="unknown scheduler 'step'"):
        script.make_schedule(optimizer, "step", total_steps=10)
