"""Budget selection, device choice, seeding, the environment report and show_source."""

import random

import numpy as np
import pytest
import torch

import mnlib
from mnlib import config


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("MNLIB_BUDGET", raising=False)
    monkeypatch.delenv("CI", raising=False)
    return monkeypatch


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


def test_show_source_gives_the_real_source():
    shown = mnlib.show_source(config.budget)
    assert "def budget(" in shown.data
    assert shown.data == __import__("inspect").getsource(config.budget)


def test_show_source_rejects_objects_without_source():
    with pytest.raises(TypeError, match="cannot show the source"):
        mnlib.show_source(42)
