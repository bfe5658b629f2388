"""MNIST and CIFAR-10, loaded once as uint8 tensors and served in batches from memory.

Where the data comes from:

* ``AELAB_DATA`` set: an offline copy is read from that folder and nothing is downloaded.
  It holds ``MNIST/raw/`` in torchvision's layout and CIFAR-10 either as torchvision's
  ``cifar-10-batches-py/`` or as ``cifar10/cifar10_{train,test}.npz`` arrays.
* ``AELAB_DATA`` unset: torchvision downloads into the repository's ``data/`` folder (the one
  holding data/README.md, found upwards from this file when aelab is installed from a checkout),
  or ``./data`` when aelab is installed from a wheel, as on Colab. ``AELAB_DOWNLOAD=0`` forbids
  the download; the test suite sets it.

There is no per-sample DataLoader: one uint8 tensor per split is moved to the device once,
and each batch is a slice of it converted to float. On a GPU this is many times faster than
``ToTensor`` in a DataLoader, which is the whole point.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from .runtime import get_device

DATA_ENV = "AELAB_DATA"
DOWNLOAD_ENV = "AELAB_DOWNLOAD"

MNIST_CLASSES = tuple(str(d) for d in range(10))
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_FULL_TEST_SIZE = 10_000


class DataError(RuntimeError):
    """The data set could not be found or read. The message says where aelab looked and how to fix it."""


def data_root() -> Path:
    """The folder data sets are read from (and downloaded into when that is allowed).

    AELAB_DATA when it is set; else the data/ folder of the repository aelab is installed from
    (the first folder upwards from this file that holds data/README.md); else ./data. The path is
    made absolute but its symbolic links are kept, so messages show the folder you named.
    """
    configured = os.environ.get(DATA_ENV, "").strip()
    if configured:
        return Path(os.path.abspath(Path(configured).expanduser()))
    for folder in Path(os.path.abspath(__file__)).parents:
        if (folder / "data" / "README.md").is_file():
            return folder / "data"
    return Path(os.path.abspath("data"))


def download_allowed() -> bool:
    """Downloads happen only without an offline copy configured, and never when AELAB_DOWNLOAD=0."""
    return not os.environ.get(DATA_ENV, "").strip() and os.environ.get(DOWNLOAD_ENV, "1") != "0"


def _fix_hint(what: str) -> str:
    return (
        f"To fix it, either run once on a machine with internet (torchvision downloads {what} into "
        f"{data_root()}), or set {DATA_ENV} to a folder holding an offline copy "
        f"(see data/README.md)."
    )


@dataclass(frozen=True)
class ImageDataset:
    """A data set held in memory as uint8 images (N, C, H, W) and int64 labels (N,)."""

    name: str
    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    classes: tuple[str, ...]
    source: str
    notes: tuple[str, ...] = field(default=())

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]

    val_images: Tensor | None = None
    val_labels: Tensor | None = None

    def split(self, split: str) -> tuple[Tensor, Tensor]:
        """(images, labels) of "train", "val" (after `with_validation`) or "test"."""
        if split == "train":
            return self.train_images, self.train_labels
        if split == "test":
            return self.test_images, self.test_labels
        if split == "val":
            if self.val_images is None:
                raise ValueError(f"{self.name} has no validation split: use data.with_validation(n) first")
            return self.val_images, self.val_labels
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")

    def with_validation(self, size: int) -> "ImageDataset":
        """The same data set with its last `size` training images held out as a "val" split.

        Choose settings (epochs, early stopping, designs) on the validation split and report the
        test split once at the end: a number tuned on the test set overstates how well a model does.
        """
        if not isinstance(size, int) or not 0 < size < len(self.train_images):
            raise ValueError(f"the validation size must be an int in 1..{len(self.train_images) - 1}, got {size!r}")
        keep = len(self.train_images) - size
        return dataclasses.replace(self, train_images=self.train_images[:keep], train_labels=self.train_labels[:keep],
                                   val_images=self.train_images[keep:], val_labels=self.train_labels[keep:])

    def images(self, split: str = "test", n: int | None = None, *, flatten: bool = False,
               device: torch.device | str | None = None) -> Tensor:
        """The first `n` images of a split as float32 in [0, 1], optionally flattened to (n, C*H*W)."""
        images, _ = self.split(split)
        images = images[:n] if n is not None else images
        return to_float(images.to(device or "cpu"), flatten=flatten)

    def labels(self, split: str = "test", n: int | None = None) -> Tensor:
        _, labels = self.split(split)
        return labels[:n] if n is not None else labels

    def batches(self, split: str = "train", batch_size: int = 128, *, shuffle: bool | None = None,
                flatten: bool = False, device: torch.device | str | None = None, limit: int | None = None,
                seed: int | None = None) -> "Batches":
        """Batches of (images in [0, 1], labels) served from memory on `device` (default: the best one).

        `shuffle` defaults to True for the training split and False for the others.
        `limit` keeps only the first `limit` images, for quick experiments.
        """
        images, labels = self.split(split)
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        return Batches(images, labels, batch_size, shuffle=split == "train" if shuffle is None else shuffle,
                       flatten=flatten, device=device, seed=seed)

    def describe(self) -> str:
        val = f", {len(self.val_images):,} validation" if self.val_images is not None else ""
        lines = [f"{self.name}: {len(self.train_images):,} training{val} and {len(self.test_images):,} test images "
                 f"of shape {tuple(self.image_shape)}, from {self.source}."]
        lines += list(self.notes)
        return "\n".join(lines)


def to_float(images: Tensor, *, flatten: bool = False) -> Tensor:
    """uint8 images to float32 in [0, 1] (on the images' device), optionally flattened per image."""
    out = images.float().div_(255.0)
    return out.flatten(1) if flatten else out


class Batches:
    """Iterates over (images, labels) batches sliced from tensors already on the device.

    Each pass over it is one epoch; the training order is reshuffled every epoch from its own
    generator, seeded with `seed` or, by default, from torch's global generator (so
    `aelab.seed_everything` makes the batch order repeatable).
    """

    def __init__(self, images: Tensor, labels: Tensor, batch_size: int, *, shuffle: bool = True,
                 flatten: bool = False, device: torch.device | str | None = None, seed: int | None = None):
        if images.dtype != torch.uint8:
            raise TypeError(f"Batches expects uint8 images, got {images.dtype}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.device = torch.device(device) if device is not None else get_device()
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.flatten = flatten
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
        self._generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    @property
    def num_images(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.images)
        order = torch.randperm(n, generator=self._generator).to(self.device) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                idx = slice(start, start + self.batch_size)
            else:
                idx = order[start:start + self.batch_size]
            yield to_float(self.images[idx], flatten=self.flatten), self.labels[idx]


# ---------------------------------------------------------------------------------------------
# Loaders. Each data set is read once per process and kept.

_cache: dict[tuple[str, str], ImageDataset] = {}


def load_mnist() -> ImageDataset:
    """The 60,000 training and 10,000 test MNIST digits as uint8 (N, 1, 28, 28)."""
    root = data_root()
    key = ("mnist", str(root))
    if key not in _cache:
        _cache[key] = _read_mnist(root)
    return _cache[key]


def load_cifar10() -> ImageDataset:
    """CIFAR-10 as uint8 (N, 3, 32, 32).

    Offline, the npz copy may hold only part of the official test set; the returned data set
    says so in its `notes` and its `describe()`.
    """
    root = data_root()
    key = ("cifar10", str(root))
    if key not in _cache:
        _cache[key] = _read_cifar10(root)
    return _cache[key]


def _read_mnist(root: Path) -> ImageDataset:
    raw = root / "MNIST" / "raw"
    needed = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    missing = [f for f in needed if not (raw / f).is_file() and not (raw / f"{f}.gz").is_file()]
    if missing and not download_allowed():
        raise DataError(f"MNIST was not found: looked for {', '.join(missing)} in {raw}. " + _fix_hint("MNIST"))
    _unpack_gz(raw, [f for f in needed if f not in missing])
    from torchvision import datasets  # imported here: it is slow to import and only needed once

    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            train = datasets.MNIST(str(root), train=True, download=download_allowed())
            test = datasets.MNIST(str(root), train=False, download=download_allowed())
    except Exception as exc:  # torchvision raises many kinds; the student needs one clear message
        raise _torchvision_failure("MNIST", exc, downloading=bool(missing), where=raw) from None
    data = ImageDataset(
        name="MNIST",
        train_images=train.data.unsqueeze(1).contiguous(), train_labels=train.targets.long(),
        test_images=test.data.unsqueeze(1).contiguous(), test_labels=test.targets.long(),
        classes=MNIST_CLASSES, source=str(raw),
    )
    _validate(data, train_size=60_000, test_sizes=(10_000,), shape=(1, 28, 28), where=raw)
    return data


def _unpack_gz(folder: Path, names: list[str]) -> None:
    """torchvision reads MNIST's unpacked files only: unpack the official .gz files beside them."""
    import gzip
    import shutil

    for name in names:
        packed, unpacked = folder / f"{name}.gz", folder / name
        if unpacked.is_file() or not packed.is_file():
            continue
        try:
            with gzip.open(packed, "rb") as source, open(f"{unpacked}.part", "wb") as target:
                shutil.copyfileobj(source, target)
            os.replace(f"{unpacked}.part", unpacked)
        except OSError as exc:
            raise DataError(f"MNIST's {packed.name} in {folder} could not be unpacked ({type(exc).__name__}: "
                            f"{exc}): the folder must be writable, or hold the unpacked files too. "
                            + _fix_hint("MNIST")) from None


def _torchvision_failure(name: str, exc: Exception, *, downloading: bool, where: Path) -> DataError:
    """One clear message for whatever torchvision raised: a download that failed (no internet, a
    mirror down; its message lists every address it tried) or files it could not read."""
    reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    if downloading:
        what = f"could not be downloaded into {where} ({reason})."
    else:
        what = f"could not be read in {where} ({reason}): a file may be truncated or corrupt; delete it and try again."
    return DataError(f"{name} {what} " + _fix_hint(name))


def _read_cifar10(root: Path) -> ImageDataset:
    arrays = root / "cifar10"
    if (arrays / "cifar10_train.npz").is_file():
        return _read_cifar10_npz(arrays)
    batches = root / "cifar-10-batches-py"
    if not batches.is_dir() and not download_allowed():
        raise DataError(f"CIFAR-10 was not found: looked for {arrays}/cifar10_train.npz and {batches}. "
                        + _fix_hint("CIFAR-10"))
    from torchvision import datasets

    downloading = not batches.is_dir()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            train = datasets.CIFAR10(str(root), train=True, download=download_allowed())
            test = datasets.CIFAR10(str(root), train=False, download=download_allowed())
    except Exception as exc:
        raise _torchvision_failure("CIFAR-10", exc, downloading=downloading,
                                   where=root if downloading else batches) from None
    data = ImageDataset(
        name="CIFAR-10",
        train_images=torch.from_numpy(train.data).permute(0, 3, 1, 2).contiguous(),
        train_labels=torch.tensor(train.targets, dtype=torch.long),
        test_images=torch.from_numpy(test.data).permute(0, 3, 1, 2).contiguous(),
        test_labels=torch.tensor(test.targets, dtype=torch.long),
        classes=CIFAR10_CLASSES, source=str(batches),
    )
    _validate(data, train_size=50_000, test_sizes=(CIFAR10_FULL_TEST_SIZE,), shape=(3, 32, 32), where=batches)
    return data


def _read_cifar10_npz(folder: Path) -> ImageDataset:
    splits = {}
    for split in ("train", "test"):
        path = folder / f"cifar10_{split}.npz"
        try:
            with np.load(path) as npz:
                images, labels = npz["images"], npz["labels"]
        except FileNotFoundError:
            raise DataError(f"CIFAR-10 {split} arrays not found: looked for {path}. " + _fix_hint("CIFAR-10")) from None
        except Exception as exc:
            raise DataError(f"CIFAR-10 arrays in {path} could not be read ({type(exc).__name__}: {exc}); "
                            "they need 'images' uint8 (N, 32, 32, 3) and 'labels' (N,). "
                            + _fix_hint("CIFAR-10")) from None
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
            raise DataError(f"{path}: 'images' must be uint8 of shape (N, 32, 32, 3), "
                            f"got {images.dtype} {images.shape}. " + _fix_hint("CIFAR-10"))
        splits[split] = (torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
                         torch.from_numpy(labels.astype(np.int64)))
    n_test = len(splits["test"][0])
    notes = ()
    if n_test < CIFAR10_FULL_TEST_SIZE:
        notes = (f"Note: this offline copy's test set holds only the first {n_test:,} of the "
                 f"{CIFAR10_FULL_TEST_SIZE:,} official test images, so test numbers are on that subset.",)
    data = ImageDataset(
        name="CIFAR-10", train_images=splits["train"][0], train_labels=splits["train"][1],
        test_images=splits["test"][0], test_labels=splits["test"][1],
        classes=CIFAR10_CLASSES, source=str(folder), notes=notes,
    )
    _validate(data, train_size=50_000, test_sizes=range(1, CIFAR10_FULL_TEST_SIZE + 1), shape=(3, 32, 32), where=folder)
    return data


def _validate(data: ImageDataset, *, train_size: int, test_sizes, shape: tuple[int, ...], where: Path) -> None:
    problems = []
    if len(data.train_images) != train_size:
        problems.append(f"{len(data.train_images)} training images, expected {train_size}")
    if len(data.test_images) not in test_sizes:
        problems.append(f"{len(data.test_images)} test images")
    for split in ("train", "test"):
        images, labels = data.split(split)
        if tuple(images.shape[1:]) != shape:
            problems.append(f"{split} images of shape {tuple(images.shape[1:])}, expected {shape}")
        if len(images) != len(labels):
            problems.append(f"{len(images)} {split} images but {len(labels)} labels")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(data.classes)):
            problems.append(f"{split} labels outside 0..{len(data.classes) - 1}")
    if problems:
        raise DataError(f"{data.name} in {where} looks corrupt: " + "; ".join(problems) + ". " + _fix_hint(data.name))
