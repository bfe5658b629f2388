"""The data pipelines the benchmark compares, each an endless stream of (images, labels) batches.

* *classic*: the course notes' pipeline, a torchvision Dataset that converts one PIL image at a
  time with ``ToTensor``, collated by a ``DataLoader``, each batch then moved to the device;
* *aelab*: the student package's in-memory batches, the whole split one uint8 tensor on the
  device, each batch a shuffled slice converted to float there (``ImageDataset.batches``);
* *host*: aelab's batches with the data left in host memory, the fair way: each batch gathered
  as uint8 into one of two pinned staging buffers, copied with ``non_blocking=True`` (an
  asynchronous copy, which only pinned memory allows), and converted to float on the device, so
  the copy moves a quarter of the bytes of a float32 batch and overlaps the training step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import Tensor

from .models import LabSpec

CLASSIC_BATCH = 64  # the course notes' DataLoader batch size
Stream = Iterator[tuple[Tensor, Tensor]]


class ClassicCIFAR10(torch.utils.data.Dataset):
    """torchvision's CIFAR10, over the offline ``cifar10_{train,test}.npz`` arrays.

    Like ``torchvision.datasets.CIFAR10`` it holds the images as one uint8 (N, 32, 32, 3) array
    and makes a PIL image of one of them per ``__getitem__``, then applies ``transform``.
    """

    def __init__(self, root: Path, train: bool = True, transform: Callable | None = None):
        with np.load(Path(root) / "cifar10" / f"cifar10_{'train' if train else 'test'}.npz") as npz:
            self.data = np.ascontiguousarray(npz["images"])
            self.targets = npz["labels"].astype(np.int64).tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        from PIL import Image

        img = Image.fromarray(self.data[index])
        if self.transform is not None:
            img = self.transform(img)
        return img, self.targets[index]


def classic_dataset(dataset: str, train: bool = True) -> torch.utils.data.Dataset:
    """The course notes' Dataset: torchvision's MNIST or CIFAR10 with ``transform=ToTensor()``."""
    from torchvision import datasets, transforms

    from aelab.data import data_root, download_allowed

    root = data_root()
    if dataset == "MNIST":
        return datasets.MNIST(str(root), train=train, transform=transforms.ToTensor(), download=download_allowed())
    if dataset == "CIFAR-10":
        if (root / "cifar10" / "cifar10_train.npz").is_file():
            return ClassicCIFAR10(root, train=train, transform=transforms.ToTensor())
        return datasets.CIFAR10(str(root), train=train, transform=transforms.ToTensor(), download=download_allowed())
    raise ValueError(f"unknown data set {dataset!r}")


def load_dataset(dataset: str):
    """The student package's in-memory data set ("MNIST" or "CIFAR-10")."""
    from aelab.data import load_cifar10, load_mnist

    return load_mnist() if dataset == "MNIST" else load_cifar10()


def classic_stream(spec: LabSpec, device: torch.device, *, batch_size: int = CLASSIC_BATCH, num_workers: int = 0,
                   seed: int = 0, train: bool = True, shuffle: bool = True, epochs: int | None = None) -> Stream:
    """Batches from ``DataLoader(classic_dataset, batch_size, shuffle)``, moved to `device` (and
    flattened for the fully connected labs) one batch at a time, as the notes' loop does.
    Endless unless `epochs` is given."""
    loader = torch.utils.data.DataLoader(classic_dataset(spec.dataset, train), batch_size=batch_size,
                                         shuffle=shuffle, num_workers=num_workers,
                                         generator=torch.Generator().manual_seed(seed))
    epoch = 0
    while epochs is None or epoch < epochs:
        for images, labels in loader:
            images = images.to(device)
            yield (images.view(len(images), -1) if spec.flatten else images), labels.to(device)
        epoch += 1


def aelab_stream(spec: LabSpec, device: torch.device, *, batch_size: int, seed: int = 0,
                 drop_partial: bool = False) -> Stream:
    """Endless batches of aelab's in-memory pipeline: the whole training split as one uint8 tensor
    on `device`, each batch a shuffled slice converted to float there. `drop_partial` skips the
    smaller last batch of an epoch (a compiled model would meet a new shape there)."""
    batches = load_dataset(spec.dataset).batches("train", batch_size=batch_size, flatten=spec.flatten,
                                                 device=device, seed=seed)
    while True:
        for images, labels in batches:
            if drop_partial and len(images) < batch_size:
                continue
            yield images, labels


def host_stream(spec: LabSpec, device: torch.device, *, batch_size: int, seed: int = 0,
                drop_partial: bool = False, pin: bool | None = None) -> Stream:
    """aelab's batches with the training split left in host memory (see `host_batches`)."""
    data = load_dataset(spec.dataset)
    return host_batches(data.train_images, data.train_labels, device, batch_size=batch_size, flatten=spec.flatten,
                        seed=seed, drop_partial=drop_partial, pin=pin)


def staging_buffer(shape: tuple[int, ...], dtype: torch.dtype, pin: bool) -> Tensor:
    """An empty host tensor, page-locked (pinned) when `pin`: a copy from it to a GPU can run
    asynchronously (``non_blocking=True``); from ordinary pageable memory it cannot."""
    return torch.empty(shape, dtype=dtype, pin_memory=pin)


def to_device(tensor: Tensor, device: torch.device) -> Tensor:
    """The host-to-device copy of one batch: asynchronous from pinned memory."""
    return tensor.to(device, non_blocking=True)


def host_batches(images: Tensor, labels: Tensor, device: torch.device, *, batch_size: int, flatten: bool = False,
                 seed: int = 0, drop_partial: bool = False, pin: bool | None = None) -> Stream:
    """Endless shuffled batches of uint8 `images` (N, C, H, W) held on the host, for a model on
    `device`: each batch is gathered as uint8 into one of two staging buffers (pinned where
    `pin`, by default on a CUDA device), copied to the device with ``non_blocking=True`` and
    converted to float in [0, 1] there. A buffer is refilled only once its last copy has ended
    (a CUDA event), so the copy of one batch overlaps the training step of the one before."""
    from aelab.data import to_float

    if images.dtype != torch.uint8:
        raise TypeError(f"host_batches expects uint8 images, got {images.dtype}")
    pin = device.type == "cuda" if pin is None else pin
    n = len(images)
    buffers = [(staging_buffer((batch_size, *images.shape[1:]), images.dtype, pin),
                staging_buffer((batch_size,), labels.dtype, pin)) for _ in range(2)]
    copied: list = [None, None]  # the CUDA event recorded after each buffer's last copy
    generator = torch.Generator().manual_seed(seed)
    count = 0
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
            if drop_partial and len(index) < batch_size:
                continue
            slot = count % 2
            count += 1
            if copied[slot] is not None:
                copied[slot].synchronize()
            x_host, y_host = buffers[slot][0][:len(index)], buffers[slot][1][:len(index)]
            torch.index_select(images, 0, index, out=x_host)
            torch.index_select(labels, 0, index, out=y_host)
            x, y = to_device(x_host, device), to_device(y_host, device)
            if device.type == "cuda":
                copied[slot] = torch.cuda.Event()
                copied[slot].record()
            elif y.data_ptr() == y_host.data_ptr():
                y = y.clone()  # on the host itself the "copy" is the buffer, which is refilled
            yield to_float(x, flatten=flatten), y
