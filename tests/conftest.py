"""Shared fixtures. Tests never download: AELAB_DOWNLOAD=0 is forced for the whole session.

Tests that read MNIST or CIFAR-10 carry the `needs_data` mark (or use the `real_data` fixture).
Where the data is not available, they are skipped and the run ends with one line saying which
tests need it and how to supply it; on CI (CI set) missing data is an error instead.
"""

from __future__ import annotations

import os

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ["AELAB_DOWNLOAD"] = "0"
os.environ.setdefault("AELAB_PROGRESS", "0")
os.environ.setdefault("AELAB_DEVICE", "cpu")
os.environ.setdefault("OMP_NUM_THREADS", "1")

HOW_TO = ("set AELAB_DATA to a folder holding MNIST/raw/ and cifar10/ (see data/README.md), or let torchvision "
          "download them once into data/ with `make demo` on a machine with internet")


def data_missing() -> str:
    """Why the data sets cannot be read here, or "" when they can."""
    from aelab.data import data_root

    root = data_root()
    missing = []
    raw = root / "MNIST" / "raw"
    if not any((raw / f"train-images-idx3-ubyte{ext}").is_file() for ext in ("", ".gz")):
        missing.append(f"MNIST (no {raw})")
    if not (root / "cifar10" / "cifar10_train.npz").is_file() and not (root / "cifar-10-batches-py").is_dir():
        missing.append(f"CIFAR-10 (neither {root / 'cifar10'} nor {root / 'cifar-10-batches-py'})")
    return "; ".join(missing)


SKIP_REASON = "needs the data sets"


def pytest_configure(config):
    # CI must exercise the real data path; missing data there is a broken setup, not a skip.
    if os.environ.get("CI") and data_missing():
        raise pytest.UsageError(f"CI is set but the data is missing: {data_missing()}. .ci/run must point "
                                "AELAB_DATA at the offline data")


def pytest_collection_modifyitems(config, items):
    missing = data_missing()
    if not missing:
        return
    skip = pytest.mark.skip(reason=f"{SKIP_REASON}: {missing}")
    for item in items:
        if "needs_data" in item.keywords or "real_data" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


def pytest_unconfigure(config):
    # After pytest's own summary line, so that it is the last thing a run prints. Counted from the
    # reports, which reach the controller also when xdist collects in its workers.
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or hasattr(config, "workerinput"):
        return
    skipped = [r for r in reporter.stats.get("skipped", []) if SKIP_REASON in str(r.longrepr)]
    if skipped:
        reporter.write_line(
            f"{len(skipped)} tests were skipped because the data sets are missing ({data_missing()}): {HOW_TO}.",
            yellow=True, bold=True)


@pytest.fixture
def real_data():
    """The data folder (the test is skipped where the data sets are missing, never on CI)."""
    from aelab.data import data_root

    return data_root()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
