"""The figures every lab shows. Each function draws, returns the matplotlib Figure and never blocks."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor


def pyplot():
    """matplotlib.pyplot, imported on first use (importing aelab stays quick)."""
    import matplotlib.pyplot as plt

    return plt


def as_images(images: Tensor, image_shape: Sequence[int] | None) -> np.ndarray:
    """(N, C, H, W), (N, H, W) or flattened (N, D) tensors to an (N, H, W[, 3]) array in [0, 1]."""
    x = images.detach().float().cpu()
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
                title: str | None = None, scale: float = 1.1):
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
    return fig


def show_reconstructions(inputs: Tensor, outputs: Tensor, *, n: int = 10, image_shape: Sequence[int] | None = None,
                         title: str = "inputs (top) and reconstructions (bottom)"):
    """Inputs above their reconstructions."""
    return show_images({"input": inputs, "output": outputs}, n=n, image_shape=image_shape, title=title)


def plot_losses(history, *, ax=None, title: str = "loss", log: bool = True):
    """Training (and validation, if any) loss per epoch from a History or a dict name -> list."""
    plt = pyplot()
    curves = history if isinstance(history, Mapping) else {"train": history.train_loss, "validation": history.val_loss}
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.2))
    else:
        fig = ax.figure
    for label, values in curves.items():
        if len(values):
            ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if log:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_curves(x: Sequence[float], curves: Mapping[str, Sequence[float]], *, xlabel: str, ylabel: str,
                title: str = "", ax=None, log_y: bool = False, marker: str = "o"):
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
    fig.tight_layout()
    return fig


def plot_latent_scatter(points: Tensor | np.ndarray, labels: Tensor | np.ndarray, *, classes: Sequence[str] | None = None,
                        title: str = "latent space", ax=None, max_points: int = 5000):
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
    return fig


def show_table(rows: Sequence[Mapping[str, object]], *, title: str = "", digits: int = 4) -> str:
    """Show a list of dicts as a table (HTML in Jupyter, text elsewhere) and return the text form."""
    if not rows:
        return ""
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
    text = (title + "\n" if title else "") + "\n".join(lines)
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display

        if get_ipython() is not None and type(get_ipython()).__name__ != "TerminalInteractiveShell":
            head = "".join(f"<th>{c}</th>" for c in columns)
            body = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in r) + "</tr>" for r in cells)
            caption = f"<caption>{title}</caption>" if title else ""
            display(HTML(f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"))
            return text
    except ImportError:
        pass
    print(text)
    return text
