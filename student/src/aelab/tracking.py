"""Progress bars, loss histories and stopwatches: the bookkeeping around a training loop (the loop is yours)."""

from __future__ import annotations

import importlib.util
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, TypeVar

from torch import Tensor, nn

from .runtime import progress_enabled

T = TypeVar("T")

# Names for the types the labs' training loops take (only names: the loops are the students').
LossFn = Callable[[nn.Module, Tensor, Tensor], Tensor]   # loss_fn(model, images, labels) -> scalar tensor
BatchIterable = Iterable[tuple[Tensor, Tensor]]         # batches of (images, labels)


@dataclass
class History:
    """What a training run leaves behind: the mean loss of each epoch, and the wall time.

    ``train_loss[i]`` and ``val_loss[i]`` belong to epoch i + 1. ``best_epoch`` is the epoch
    (counted from 1) whose weights the model kept, when the loop keeps the best ones.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    best_epoch: int | None = None

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    @property
    def final_train_loss(self) -> float:
        return self.train_loss[-1] if self.train_loss else float("nan")

    @property
    def final_val_loss(self) -> float:
        return self.val_loss[-1] if self.val_loss else float("nan")

    def plot(self, *, title: str = "loss", ax=None, val_label: str = "validation") -> None:
        """Training and validation loss against the epoch (`val_label` names the second curve)."""
        from .plots import plot_losses

        plot_losses(self, title=title, ax=ax, val_label=val_label)


class Stopwatch:
    """``with Stopwatch() as watch: ...``, then ``watch.seconds``."""

    def __enter__(self) -> "Stopwatch":
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


class _NoBar:
    """Stands in for a tqdm bar when progress bars are off."""

    n = 0

    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, *args, **kwargs) -> None: ...
    def set_description(self, *args, **kwargs) -> None: ...
    def close(self) -> None: ...
    def __enter__(self): return self
    def __exit__(self, *exc) -> None: ...


def _tqdm():
    # tqdm.auto draws a widget in Jupyter, but without ipywidgets it warns and falls back to text:
    # take the text bar directly then.
    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    return tqdm


def progress_bar(total: int | None, desc: str = ""):
    """A progress bar for `total` steps (a widget in Jupyter, text elsewhere), or a silent stand-in
    when progress bars are off (AELAB_PROGRESS=0, as when grading). Call ``.update(n)``,
    ``.set_postfix(...)`` and ``.close()`` on it, or use it in a ``with`` block."""
    if not progress_enabled():
        return _NoBar()
    # stdout, not tqdm's default stderr: nbgrader scores a test cell 0 if it writes to stderr.
    return _tqdm()(total=total, desc=desc, file=sys.stdout, dynamic_ncols=True, leave=True)


class _Progress(Iterable[T]):
    def __init__(self, items: Iterable[T], desc: str, total: int | None):
        self.items, self.desc = items, desc
        self.total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)

    def __len__(self) -> int:
        if self.total is None:
            raise TypeError("this iterable has no length")
        return self.total

    def __iter__(self) -> Iterator[T]:
        bar = progress_bar(self.total, self.desc)
        try:
            for item in self.items:
                yield item
                bar.update(1)
        finally:
            bar.close()

    def __getattr__(self, name: str):  # batches.device, batches.num_images, ... of what it wraps
        return getattr(self.items, name)


def progress(items: Iterable[T], desc: str = "", total: int | None = None) -> Iterable[T]:
    """`items`, with a progress bar that advances by one for each item taken.

    ``for images, labels in aelab.progress(train_batches, "epoch 1"): ...`` shows a bar that moves
    with every batch. The result has the length and the attributes of `items`, so it can be
    handed to any function that takes the batches themselves.
    """
    return _Progress(items, desc, total)
