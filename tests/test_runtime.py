import random

import numpy as np
import pytest
import torch

import aelab
from aelab.runtime import ConfigError, budget, by_budget, get_device, seed_everything


def test_budget_from_environment(monkeypatch):
    monkeypatch.setenv("AELAB_BUDGET", "full")
    assert budget() == "full" and by_budget(quick=1, full=2) == 2
    monkeypatch.setenv("AELAB_BUDGET", "QUICK ")
    assert budget() == "quick" and by_budget(quick=1, full=2) == 1


def test_budget_default_follows_gpu(monkeypatch):
    monkeypatch.delenv("AELAB_BUDGET", raising=False)
    assert budget() == ("full" if torch.cuda.is_available() else "quick")


def test_bad_budget_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("AELAB_BUDGET", "fast")
    with pytest.raises(ConfigError, match="quick, full"):
        budget()


def test_seed_makes_all_generators_repeatable(monkeypatch):
    monkeypatch.delenv("AELAB_SEED", raising=False)
    draws = []
    for _ in range(2):
        assert seed_everything(3) == 3
        draws.append((random.random(), np.random.rand(), torch.rand(1).item()))
    assert draws[0] == draws[1]


def test_seed_from_environment(monkeypatch):
    monkeypatch.setenv("AELAB_SEED", "7")
    assert seed_everything() == 7
    monkeypatch.setenv("AELAB_SEED", "seven")
    with pytest.raises(ConfigError, match="AELAB_SEED"):
        seed_everything()


def test_device_choice(monkeypatch):
    monkeypatch.setenv("AELAB_DEVICE", "cpu")
    assert get_device().type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            get_device("cuda")


def test_describe_says_budget_and_how_to_get_a_gpu(monkeypatch):
    monkeypatch.setenv("AELAB_BUDGET", "quick")
    text = aelab.describe()
    assert "budget 'quick'" in text
    if not torch.cuda.is_available():
        assert "GPU" in text


def test_warnings_go_to_stdout(capsys):
    import warnings

    from aelab.runtime import _warnings_to_stdout

    with warnings.catch_warnings():  # pytest installs its own handler; put aelab's back for this test
        _warnings_to_stdout()
        warnings.simplefilter("always")
        warnings.warn("harmless torch-like warning", UserWarning, stacklevel=1)
    out, err = capsys.readouterr()
    assert "harmless torch-like warning" in out and err == ""
