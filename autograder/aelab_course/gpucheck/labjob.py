"""One lab's reference run, in a process of its own: the GPU check's child.

It runs the lab's percent-format source as plain Python (`aelab_course.runner.run_script`:
every cell in order, test cells whole, hidden tests included) and writes each cell's result to
a JSON-lines file the moment the cell ends, so that a run stopped at the time limit still leaves
the cells it finished. The lab records its metrics itself (AELAB_METRICS, set by the parent).

In smoke mode the lab sees a tiny copy of its data set (the first SMOKE_SIZES images of each
split): `aelab.load_mnist` and `aelab.load_cifar10` are replaced, in this process only, by
functions returning that copy. Until the labs honour a size limit of their own, that is what
makes a CPU run of all five labs take seconds; their tests' bounds on trained models then fail,
as expected, and the check counts those failures apart.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

SMOKE_SIZES = {"MNIST": (2_000, 500), "CIFAR-10": (1_000, 200)}


def _idx_head(path: Path, count: int, item_bytes: int, header: int) -> np.ndarray:
    """The first `count` items of an unpacked MNIST idx file."""
    return np.fromfile(path, dtype=np.uint8, count=count * item_bytes, offset=header)


def _npy_head(path: Path, member: str, count: int) -> np.ndarray:
    """The first `count` rows of an array stored uncompressed in an .npz, without reading the rest."""
    with zipfile.ZipFile(path) as archive, archive.open(f"{member}.npy") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        if fortran:
            raise ValueError("a Fortran-ordered array")
        count = min(count, shape[0])
        row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        return np.frombuffer(f.read(count * row), dtype=dtype).reshape(count, *shape[1:]).copy()


def tiny_dataset(name: str, n_train: int, n_test: int):
    """The first images of MNIST or CIFAR-10, read straight from the head of the files of the
    data folder (unpacked MNIST, the npz arrays of CIFAR-10), or None when they are not there."""
    import torch

    from aelab.data import CIFAR10_CLASSES, MNIST_CLASSES, ImageDataset, data_root

    root = data_root()
    note = (f"Smoke test: only the first {n_train:,} training and {n_test:,} test images.",)
    try:
        if name == "MNIST":
            raw = root / "MNIST" / "raw"
            arrays = [_idx_head(raw / f"{split}-images-idx3-ubyte", n, 784, 16).reshape(n, 1, 28, 28)
                      for split, n in (("train", n_train), ("t10k", n_test))]
            labels = [_idx_head(raw / f"{split}-labels-idx1-ubyte", n, 1, 8)
                      for split, n in (("train", n_train), ("t10k", n_test))]
            classes = MNIST_CLASSES
        else:
            folder = root / "cifar10"
            arrays = [_npy_head(folder / f"cifar10_{split}.npz", "images", n).transpose(0, 3, 1, 2)
                      for split, n in (("train", n_train), ("test", n_test))]
            labels = [_npy_head(folder / f"cifar10_{split}.npz", "labels", n)
                      for split, n in (("train", n_train), ("test", n_test))]
            classes = CIFAR10_CLASSES
    except (OSError, ValueError, KeyError, AttributeError, zipfile.BadZipFile):
        return None
    if any(len(a) == 0 for a in arrays):
        return None
    tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
    return ImageDataset(name=name, train_images=tensors[0], train_labels=torch.from_numpy(labels[0].astype(np.int64)),
                        test_images=tensors[1], test_labels=torch.from_numpy(labels[1].astype(np.int64)),
                        classes=classes, source=str(root), notes=note)


def shrink_data(sizes: dict[str, tuple[int, int]] = SMOKE_SIZES) -> None:
    """Make `aelab.load_mnist()` and `aelab.load_cifar10()` return their first (train, test) images."""
    import aelab
    import aelab.data

    def small(load, name):
        cache = {}

        def loader():
            if "data" not in cache:
                n_train, n_test = sizes[name]
                data = tiny_dataset(name, n_train, n_test)
                if data is None:  # another layout: load it all and keep the first images
                    full = load()
                    data = dataclasses.replace(
                        full, train_images=full.train_images[:n_train], train_labels=full.train_labels[:n_train],
                        test_images=full.test_images[:n_test], test_labels=full.test_labels[:n_test],
                        notes=(*full.notes, f"Smoke test: only the first {n_train:,} training and {n_test:,} "
                                            "test images."))
                cache["data"] = data
            return cache["data"]

        loader.__doc__ = load.__doc__
        return loader

    mnist, cifar = small(aelab.data.load_mnist, "MNIST"), small(aelab.data.load_cifar10, "CIFAR-10")
    for module in (aelab, aelab.data):
        module.load_mnist, module.load_cifar10 = mnist, cifar


def streaming_to(path: Path):
    """An `on_cell` callback for `run_script` that appends each cell, as it ends, to `path`
    (one JSON object a line)."""

    def write(cell) -> None:
        with path.open("a") as f:
            f.write(json.dumps(dataclasses.asdict(cell)) + "\n")

    return write


def run(job: dict) -> int:
    """Run the lab of `job` ({"lab": its id, "source": its file, "cells", "result", "smoke"}); each
    cell goes to `cells` as it ends, and `result` (JSON) is written at the end."""
    cells, result_path = Path(job["cells"]), Path(job["result"])
    cells.write_text("")
    started = time.perf_counter()
    if job.get("smoke"):
        shrink_data()
    import torch

    from .. import runner
    from ..source import Lab

    device = os.environ.get("AELAB_DEVICE", "")
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    result = runner.run_script(Lab(job["lab"], Path(job["source"])), echo=True, on_cell=streaming_to(cells))
    summary = {"lab": result.lab, "seconds": round(result.seconds, 2),
               "process_seconds": round(time.perf_counter() - started, 2),
               "cells": [dataclasses.asdict(c) for c in result.cells]}
    # The lent GPU machine has no Jupyter: a lab run as a script must not need it.
    summary["jupyter_modules"] = sorted({m.split(".")[0] for m in sys.modules
                                         if m.split(".")[0] in ("nbformat", "nbclient", "nbgrader", "jupyter_client",
                                                                "ipykernel")})
    if device.startswith("cuda") and torch.cuda.is_available():
        summary["cuda_max_alloc_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    result_path.write_text(json.dumps(summary, indent=1))
    sys.stdout.flush()
    return 0
