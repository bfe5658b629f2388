"""The figures every lab shows.

Each function draws with matplotlib's pyplot and returns None, so a call at the end of a cell
shows its figure once (Jupyter shows every new figure when the cell ends; a returned figure would
be shown a second time). Functions that draw one panel take ``ax=`` to draw into a panel of your
own figure; ``matplotlib.pyplot.gcf()`` is the figure just drawn.
"""

from __future__ import annotations

import html
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor


def pyplot():
    """matplotlib.pyplot, imported on first use (importing aelab stays quick)."""
    import matplotlib.pyplot as plt

    return plt



def integer_ticks(axis) -> None:
    """Whole numbers only on `axis` (epochs, latent sizes): no tick at epoch 1.5."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def as_images(images: Tensor, image_shape: Sequence[int] | None) -> np.ndarray:
    """(N, C, H, W), (N, H, W) or flattened (N, D) tensors to an (N, H, W[, 3]) array in [0, 1]."""
    x = images.detach().cpu().float()
    if x.ndim == 2:
        if image_shape is None:
            side = int(round(x.shape[1] ** 0.5))
            if side * side != x.shape[1]:
                raise ValueError(f"cannot infer the image shape of {x.shape[1]} values; pass image_shape")
            image_shape = (1, side, side)
        x = x.reshape(len(x), *image_shape)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected images (N, 1|3, H, W) or flattened, got shape {tuple(images.shape)}")
    x = x.clamp(0, 1)
    return x[:, 0].numpy() if x.shape[1] == 1 else x.permute(0, 2, 3, 1).numpy()


def show_images(rows: Mapping[str, Tensor] | Sequence[Tensor], *, n: int = 10, image_shape: Sequence[int] | None = None,
                title: str | None = None, scale: float = 1.1) -> None:
    """A grid with one row per entry of `rows` (a dict of row label -> images) and `n` columns."""
    plt = pyplot()
    if not isinstance(rows, Mapping):
        rows = {"": r for r in rows} if len(rows) == 1 else {str(i): r for i, r in enumerate(rows)}
    arrays = {label: as_images(imgs[:n], image_shape) for label, imgs in rows.items()}
    cols = max(len(a) for a in arrays.values())
    fig, axes = plt.subplots(len(arrays), cols, figsize=(scale * cols, scale * len(arrays) + 0.4), squeeze=False)
    for r, (label, array) in enumerate(arrays.items()):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(array):
                ax.imshow(array[c], cmap="gray" if array.ndim == 3 else None, vmin=0, vmax=1)
            if c == 0 and label:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()


def show_reconstructions(inputs: Tensor, outputs: Tensor, *, n: int = 10, image_shape: Sequence[int] | None = None,
                         title: str = "inputs (top) and reconstructions (bottom)") -> None:
    """Inputs above their reconstructions."""
    show_images({"input": inputs, "output": outputs}, n=n, image_shape=image_shape, title=title)


def plot_losses(history, *, ax=None, title: str = "loss", log: bool = True, val_label: str = "validation") -> None:
    """Training (and validation, if any) loss per epoch from a History or a dict name -> list.

    `val_label` names a History's second curve (say "test" when the test set was used). The
    epochs are whole numbers on the x axis; a History's best epoch, if it has one, is marked.
    """
    plt = pyplot()
    curves = history if isinstance(history, Mapping) else {"train": history.train_loss, val_label: history.val_loss}
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.2))
    else:
        fig = ax.figure
    for label, values in curves.items():
        if len(values):
            ax.plot(range(1, len(values) + 1), [float(v) for v in values], marker="o", ms=3, label=label)
    best = getattr(history, "best_epoch", None)
    if best:
        ax.axvline(best, color="gray", ls="--", lw=0.8, label=f"best epoch ({best})")
    integer_ticks(ax.xaxis)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if log:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()


def plot_curves(x: Sequence[float], curves: Mapping[str, Sequence[float]], *, xlabel: str, ylabel: str,
                title: str = "", ax=None, log_y: bool = False, marker: str = "o") -> None:
    """Several named y-series over one x axis (e.g. test MSE against the number of components)."""
    plt = pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.2))
    else:
        fig = ax.figure
    for label, ys in curves.items():
        ax.plot(list(x), [float(v) for v in ys], marker=marker, ms=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend()
    if all(float(v).is_integer() for v in x):
        integer_ticks(ax.xaxis)
    fig.tight_layout()


def plot_latent_scatter(points: Tensor | np.ndarray, labels: Tensor | np.ndarray, *, classes: Sequence[str] | None = None,
                        title: str = "latent space", ax=None, max_points: int = 5000) -> None:
    """A 2-D scatter of latent points coloured by class."""
    plt = pyplot()
    p = points.detach().cpu().numpy() if isinstance(points, Tensor) else np.asarray(points)
    y = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"plot_latent_scatter needs (N, 2) points, got {p.shape}; project them to 2-D first")
    p, y = p[:max_points], y[:max_points]
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
    else:
        fig = ax.figure
    n_classes = int(y.max()) + 1 if len(y) else 0
    cmap = plt.get_cmap("tab10" if n_classes <= 10 else "tab20")
    for c in range(n_classes):
        mask = y == c
        name = classes[c] if classes is not None else str(c)
        ax.scatter(p[mask, 0], p[mask, 1], s=4, alpha=0.6, color=cmap(c), label=name)
    ax.set_title(title)
    ax.legend(markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5), frameon=False)
    fig.tight_layout()


def table_text(rows: Sequence[Mapping[str, object]], *, title: str = "", digits: int = 4) -> str:
    """A list of dicts as a plain-text table."""
    return _table(rows, title, digits)[0]


def show_table(rows: Sequence[Mapping[str, object]], *, title: str = "", digits: int = 4) -> None:
    """Show a list of dicts as a table (HTML in Jupyter, text elsewhere)."""
    if not rows:
        return
    text, columns, cells = _table(rows, title, digits)
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display

        shell = get_ipython()
        if shell is not None and type(shell).__name__ != "TerminalInteractiveShell":
            head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>" for r in cells)
            caption = f"<caption>{html.escape(title)}</caption>" if title else ""
            display(HTML(f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"))
            return
    except ImportError:
        pass
    print(text)


def _table(rows: Sequence[Mapping[str, object]], title: str, digits: int) -> tuple[str, list[str], list[list[str]]]:
    if not rows:
        return "", [], []
    columns = list(dict.fromkeys(k for row in rows for k in row))

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.{digits}g}"
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            return f"{v.item():.{digits}g}"
        return str(v)

    cells = [[fmt(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(columns, widths)), "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return (title + "\n" if title else "") + "\n".join(lines), columns, cells
