"""Shared fixtures. Tests never download: AELAB_DOWNLOAD=0 is forced for the whole session."""

from __future__ import annotations

import os

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ["AELAB_DOWNLOAD"] = "0"
os.environ.setdefault("AELAB_PROGRESS", "0")
os.environ.setdefault("AELAB_DEVICE", "cpu")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_configure(config):
    # CI must exercise the real data path; a missing AELAB_DATA there is a broken setup, not a skip.
    if os.environ.get("CI") and not os.environ.get("AELAB_DATA"):
        raise pytest.UsageError("CI is set but AELAB_DATA is not: .ci/run must point it at the offline data")


@pytest.fixture
def real_data():
    """The offline data copy named by AELAB_DATA (skips where there is none, never on CI)."""
    from aelab.data import data_root

    root = data_root()
    if not (root / "MNIST" / "raw").is_dir():
        pytest.skip(f"no MNIST under {root}; set AELAB_DATA to an offline copy")
    return root


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
