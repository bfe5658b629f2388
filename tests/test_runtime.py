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


def test_budget_default_follows_the_device(monkeypatch):
    monkeypatch.delenv("AELAB_BUDGET", raising=False)
    monkeypatch.setenv("AELAB_DEVICE", "cpu")
    assert budget() == "quick"
    # A GPU, CUDA or Apple's, trains at the full budget (issue 13: MPS used to get the quick one).
    from aelab import runtime

    monkeypatch.delenv("AELAB_DEVICE")
    monkeypatch.setattr(runtime, "get_device", lambda prefer=None: torch.device("mps"))
    assert budget() == "full"


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


def test_an_apple_gpu_is_named_as_a_gpu(monkeypatch):
    from aelab import runtime

    monkeypatch.delenv("AELAB_BUDGET", raising=False)
    monkeypatch.setattr(runtime, "get_device", lambda prefer=None: torch.device("mps"))
    text = runtime.describe()
    assert "Apple" in text and "No GPU" not in text and "budget 'full'" in text


def test_unknown_device_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("AELAB_DEVICE", "tpu9")
    with pytest.raises(ConfigError, match="AELAB_DEVICE"):
        get_device()
    if not aelab.runtime.mps_available():
        with pytest.raises(ConfigError, match="MPS"):
            get_device("mps")


def test_setup_notebook_warns_about_another_aelab_version(capsys, monkeypatch):
    monkeypatch.setenv("AELAB_DEVICE", "cpu")
    assert aelab.setup_notebook("Lab 09", version=aelab.__version__).type == "cpu"
    assert "Warning" not in capsys.readouterr().out
    aelab.setup_notebook("Lab 09", version="0.0.1")
    assert "written for aelab 0.0.1" in capsys.readouterr().out


def test_warnings_go_to_stdout(capsys):
    import warnings

    from aelab.runtime import warnings_to_stdout

    with warnings.catch_warnings():  # pytest installs its own handler; put aelab's back for this test
        warnings_to_stdout()
        warnings.simplefilter("always")
        warnings.warn("harmless torch-like warning", UserWarning, stacklevel=1)
    out, err = capsys.readouterr()
    assert "harmless torch-like warning" in out and err == ""
