"""Budget selection, device choice, seeding, the environment report and show_source."""

import random
import sys
import types

import numpy as np
import pytest
import torch

import mnlib
from mnlib import config


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("MNLIB_BUDGET", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    return monkeypatch


@pytest.fixture
def colab(clean_env):
    """A Colab kernel: `google.colab` is imported. The GPU is set by each test."""
    clean_env.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    return clean_env


def test_budget_defaults_to_standard(clean_env):
    assert mnlib.budget_name() == "standard"
    assert mnlib.budget(quick=1, standard=2, full=3) == 2


def test_budget_is_quick_under_ci_when_unset(clean_env):
    clean_env.setenv("CI", "true")
    assert mnlib.budget(quick=1, standard=2, full=3) == 1


def test_explicit_budget_wins_over_ci(clean_env):
    clean_env.setenv("CI", "true")
    clean_env.setenv("MNLIB_BUDGET", "full")
    assert mnlib.budget(quick=1, standard=2, full=3) == 3


def test_colab_with_a_gpu_runs_the_full_budget(colab):
    colab.setattr(torch.cuda, "is_available", lambda: True)
    assert config.on_colab()
    assert mnlib.budget_name() == "full"


def test_colab_without_a_gpu_runs_the_standard_budget(colab):
    colab.setattr(torch.cuda, "is_available", lambda: False)
    assert mnlib.budget_name() == "standard"


def test_a_gpu_outside_colab_keeps_the_standard_budget(clean_env):
    clean_env.setattr(torch.cuda, "is_available", lambda: True)
    assert not config.on_colab()
    assert mnlib.budget_name() == "standard"


@pytest.mark.parametrize("name", ["quick", "standard"])
def test_explicit_budget_wins_over_colab_gpu(colab, name):
    colab.setattr(torch.cuda, "is_available", lambda: True)
    colab.setenv("MNLIB_BUDGET", name)
    assert mnlib.budget_name() == name


def test_ci_wins_over_colab_gpu(colab):
    colab.setattr(torch.cuda, "is_available", lambda: True)
    colab.setenv("CI", "true")
    assert mnlib.budget_name() == "quick"


def test_unknown_budget_is_an_error(clean_env):
    clean_env.setenv("MNLIB_BUDGET", "huge")
    with pytest.raises(ValueError, match="quick, standard, full"):
        mnlib.budget(quick=1, standard=2, full=3)


def test_device_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert mnlib.get_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert mnlib.get_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert mnlib.get_device().type == "cpu"


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    mnlib.seed_everything(123)
    first = draw()
    mnlib.seed_everything(123)
    assert draw() == first


def test_environment_report_states_budget_first(clean_env):
    mnlib.seed_everything(7)
    report = mnlib.environment_report()
    assert report.splitlines()[0].split(":")[1].strip() == "standard"
    assert torch.__version__ in report and "seed        : 7" in report
