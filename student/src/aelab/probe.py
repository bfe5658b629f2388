"""Plumbing for lab 02's linear probe: which few training images get their labels.

A linear probe measures a representation by how well a linear classifier, trained on a few
labelled examples, predicts the labels of the test set. The classifier is the lab's to write;
this module only picks the labelled examples, the same ones on every machine.
"""

from __future__ import annotations

import torch
from torch import Tensor


def labelled_subset(labels: Tensor, per_class: int = 10, *, seed: int = 0,
                    num_classes: int | None = None) -> Tensor:
    """Indices of `per_class` examples of every class of `labels` (N,), drawn at random without
    replacement from a generator seeded with `seed` (so the same seed picks the same examples on
    any machine and device), grouped by class in increasing order: (num_classes * per_class,)
    int64 indices, on the device of `labels`.

    `num_classes` defaults to the largest label + 1. A class with fewer than `per_class` examples
    raises a ValueError.
    """
    if not isinstance(labels, Tensor) or labels.ndim != 1 or labels.dtype not in (torch.int64, torch.int32):
        raise TypeError("labels must be a 1-d int64 (or int32) tensor")
    if not isinstance(per_class, int) or isinstance(per_class, bool) or per_class < 1:
        raise ValueError(f"per_class must be a positive int, got {per_class!r}")
    cpu_labels = labels.detach().cpu().long()
    if len(cpu_labels) and int(cpu_labels.min()) < 0:
        raise ValueError("labels must be non-negative class indices")
    if num_classes is None:
        num_classes = int(cpu_labels.max()) + 1 if len(cpu_labels) else 0
    generator = torch.Generator().manual_seed(int(seed))
    chosen = []
    for label in range(num_classes):
        where = (cpu_labels == label).nonzero().flatten()
        if len(where) < per_class:
            raise ValueError(f"class {label} has {len(where)} examples, fewer than the {per_class} asked for")
        chosen.append(where[torch.randperm(len(where), generator=generator)[:per_class]])
    if not chosen:
        return torch.zeros(0, dtype=torch.long, device=labels.device)
    return torch.cat(chosen).to(labels.device)
