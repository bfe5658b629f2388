"""The labs' models, losses and optimizers, as the benchmark trains them.

The models and losses are the labs' own reference answers, loaded from the solution sources with
`aelab_course.runner.definitions` (imports, functions and classes only: no data, no training), so
no copy of answer code lives here and none can drift. The names the benchmark needs are listed in
docs/AUTHORING.md ("Names other tools rely on"); a lab that does not define one (say, while it is
being rewritten) makes `lab_definitions` raise `LabNotReady`, whose message names what is missing.

What is the benchmark's own: the settings of each lab at a budget (batch size, learning rate,
widths: the labs' given cells, not their answers), the adapters that turn a lab's loss into one
training step's loss, and the optimizers (plain Adam as in the course notes, Adam fused as in
lab 02, and lab 05's 10× step for the codebook).
"""

from __future__ import annotations

import functools
import math
import types
from dataclasses import dataclass, replace
from typing import Callable

import torch
from torch import Tensor, nn

BENCH_LABS = ("lab02", "lab03", "lab04", "lab05")
# Lab 05 computes DATA_VARIANCE from the data (the variance of every training pixel on [0, 1]);
# it scales the loss, not the time, and the benchmark loads no data to define the models.
CIFAR10_VARIANCE = 0.0633

# What the benchmark takes from each lab (docs/AUTHORING.md, "Names other tools rely on").
NEEDED: dict[str, tuple[str, ...]] = {
    "lab02": ("ClassicAutoencoder", "reconstruction_loss"),
    "lab03": ("ConvEncoder", "ConvDecoder", "ConvAutoencoder"),
    "lab04": ("VAE", "vae_loss"),
    "lab05": ("VQVAE", "vqvae_loss"),
}
GLOBALS: dict[str, dict] = {"lab05": {"DATA_VARIANCE": CIFAR10_VARIANCE}}

# A loss as the labs write theirs (aelab.LossFn): loss_fn(model, images, labels) -> scalar tensor.
LossFn = Callable[[nn.Module, Tensor, Tensor], Tensor]


class LabNotReady(RuntimeError):
    """A lab's solution source does not (yet) define what the benchmark needs from it."""


class Unset:
    """Stands in for a lab's setting (a module-level assignment, which `definitions` leaves out)
    that a default argument names; using it raises, naming the setting."""

    def __init__(self, name: str, where: str):
        self.name, self.where = name, where

    def __repr__(self) -> str:
        return f"<{self.name} of {self.where}, not loaded by the benchmark>"

    def _fail(self, *args, **kwargs):
        raise RuntimeError(f"{self!r} was used: pass that argument explicitly")

    __call__ = __iter__ = __len__ = __index__ = __int__ = __float__ = __bool__ = _fail
    __add__ = __radd__ = __mul__ = __rmul__ = __sub__ = __rsub__ = __truediv__ = __rtruediv__ = _fail


@functools.lru_cache(maxsize=None)
def lab_definitions(lab: str) -> types.ModuleType:
    """The definitions of lab `lab` ("lab02".."lab05"), holding every name of NEEDED[lab].

    Raises LabNotReady, naming the file and the missing names, when the source is absent, does
    not load, or lacks one of them."""
    from ..runner import definitions
    from ..source import SourceError, labs

    if lab not in NEEDED:
        raise ValueError(f"the benchmark trains labs {', '.join(NEEDED)}, not {lab!r}")
    try:
        (source,) = labs([lab])
    except SourceError as exc:
        raise LabNotReady(f"{lab}: no solution source to take the model from ({exc})") from None
    given = dict(GLOBALS.get(lab, {}))
    while True:
        try:
            module = definitions(source, **given)
            break
        except NameError as exc:
            # `definitions` keeps functions and classes, not the settings (EPOCHS = ...) that some of
            # their default arguments name: those get a stand-in, which the benchmark never uses
            # (it passes every argument of the models it builds).
            name = getattr(exc, "name", None)
            if not name or name in given or len(given) > 50:
                raise LabNotReady(f"{lab}: the definitions of solutions/{source.path.name} do not load "
                                  f"(NameError: {exc})") from None
            given[name] = Unset(name, source.path.name)
        except Exception as exc:  # noqa: BLE001 - any failure of a half-written lab is "not ready"
            raise LabNotReady(f"{lab}: the definitions of solutions/{source.path.name} do not load "
                              f"({type(exc).__name__}: {exc})") from None
    missing = [name for name in NEEDED[lab] if not callable(getattr(module, name, None))]
    if missing:
        raise LabNotReady(f"{lab}: solutions/{source.path.name} defines no {', '.join(missing)}, which the "
                          "benchmark and the GPU check train (docs/AUTHORING.md, 'Names other tools rely on')")
    return module


def lab_ready(lab: str) -> str:
    """"" when the benchmark can take lab `lab`'s model and loss from its source, else why not."""
    try:
        lab_definitions(lab)
    except LabNotReady as exc:
        return str(exc)
    return ""


# ---------------------------------------------------------------------------------------------
# Optimizers: the benchmark's plumbing, the same for every row of a lab.

def plain_adam(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Plain Adam, torch's default implementation (for-each on a GPU, one tensor at a time on a
    CPU): the course notes' optimizer."""
    return torch.optim.Adam(model.parameters(), lr=lr)


def fused_adam(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Lab 02's optimizer: Adam with the fused implementation (one kernel for all the parameters)."""
    return torch.optim.Adam(model.parameters(), lr=lr, fused=True)


def codebook_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The codebook of a VQ-VAE: the weights of its nn.Embedding modules, else the parameters
    whose names say quantizer or codebook."""
    found = [m.weight for m in model.modules() if isinstance(m, nn.Embedding)]
    if not found:
        found = [p for name, p in model.named_parameters() if "quantiz" in name or "codebook" in name]
    return found


def vqvae_adam(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Lab 05's optimizer: Adam, with a 10× larger step for the codebook."""
    codebook = codebook_parameters(model)
    ids = {id(p) for p in codebook}
    others = [p for p in model.parameters() if id(p) not in ids]
    if not codebook:
        return torch.optim.Adam(others, lr=lr)
    return torch.optim.Adam([{"params": others}, {"params": codebook, "lr": 10 * lr}], lr=lr)


# ---------------------------------------------------------------------------------------------
# Losses of one training step, from the labs' own.

def vae_step_loss(vae_loss: Callable) -> LossFn:
    """Lab 04's loss for a training step: the model runs under whatever autocast the step set,
    and the lab's `vae_loss(logits, x, mu, logvar, beta)` (binary cross-entropy with logits plus
    the KL term) runs in float32 with autocast off."""

    def loss(model: nn.Module, images: Tensor, labels: Tensor) -> Tensor:
        logits, mu, logvar = model(images)[:3]
        with torch.autocast(images.device.type, enabled=False):
            return vae_loss(logits.float(), images.float(), mu.float(), logvar.float(), 1.0)[0]

    return loss


@dataclass(frozen=True)
class LabSpec:
    """One lab's model and training settings at a budget, as the benchmark trains it."""

    lab: str
    dataset: str               # "MNIST" or "CIFAR-10"
    flatten: bool              # the model takes (N, 784) rows
    conv: bool                 # the model has convolutions (channels_last applies)
    batch_size: int            # the lab's default batch size
    lr: float                  # the lab's default learning rate (Adam)
    model: str                 # in words
    make_model: Callable[[], nn.Module]
    loss: LossFn               # loss(model, images, labels), as the labs write theirs
    make_optimizer: Callable[[nn.Module, float], torch.optim.Optimizer] = plain_adam
    # The course notes' optimizer where it is not the lab's (lab 02: Adam not fused); it gets a
    # throughput row of its own, the "fused_adam" technique switched off.
    notes_optimizer: Callable[[nn.Module, float], torch.optim.Optimizer] | None = None


def lab_settings(budget: str = "quick") -> dict[str, dict]:
    """Each lab's settings at `budget`, as its given cells set them (no answer code)."""
    quick = budget == "quick"
    vq = (dict(hidden=32, num_residual=1, code_dim=16, batch_size=64, lr=2e-3) if quick
          else dict(hidden=128, num_residual=2, code_dim=64, batch_size=128, lr=1e-3))
    return {"lab02": dict(latent=32, batch_size=64, lr=1e-3),
            "lab03": dict(latent=32, channels=(16, 32), batch_size=64, lr=3e-3),
            "lab04": dict(latent=20, hidden=(400,) if quick else (512, 512), batch_size=128, lr=1e-3),
            "lab05": dict(num_codes=512, **vq)}


def lab_spec(lab: str, budget: str = "quick") -> LabSpec:
    """Lab `lab`'s spec at `budget`, its model and loss taken from its solution source (LabNotReady
    when the source lacks them)."""
    d = lab_definitions(lab)
    s = lab_settings(budget)[lab]
    if lab == "lab02":
        # Always name the dropout: ClassicAutoencoder's default is not the benchmark's business.
        return LabSpec("lab02", "MNIST", True, False, s["batch_size"], s["lr"],
                       "fully connected AE 784-98-32-196-784, no dropout",
                       lambda: d.ClassicAutoencoder(s["latent"], dropout=0.0), d.reconstruction_loss,
                       fused_adam, notes_optimizer=plain_adam)
    if lab == "lab03":
        c1, c2 = s["channels"]
        return LabSpec("lab03", "MNIST", False, True, s["batch_size"], s["lr"],
                       f"conv AE {c1}-{c2} maps, resize-conv decoder",
                       lambda: d.ConvAutoencoder(d.ConvEncoder(s["latent"], s["channels"]),
                                                 d.ConvDecoder(s["latent"], s["channels"], upsampling="resize")),
                       # Lab 03 trains with lab 02's loss (its notebook includes it).
                       getattr(d, "reconstruction_loss", None) or lab_definitions("lab02").reconstruction_loss)
    if lab == "lab04":
        return LabSpec("lab04", "MNIST", True, False, s["batch_size"], s["lr"],
                       f"VAE hidden {s['hidden']}, latent {s['latent']}",
                       lambda: d.VAE(s["latent"], s["hidden"]), vae_step_loss(d.vae_loss))
    return LabSpec("lab05", "CIFAR-10", False, True, s["batch_size"], s["lr"],
                   f"VQ-VAE hidden {s['hidden']}, {s['num_residual']} residual, {s['num_codes']} codes of "
                   f"{s['code_dim']}",
                   lambda: d.VQVAE(s["num_codes"], s["code_dim"], s["hidden"], s["num_residual"]),
                   d.vqvae_loss, vqvae_adam)


def lab_specs(budget: str = "quick", labs: tuple[str, ...] = BENCH_LABS) -> dict[str, LabSpec]:
    """The specs of `labs` at `budget` (LabNotReady for the first lab that is not ready)."""
    return {lab: lab_spec(lab, budget) for lab in labs}


NOTES_DROPOUT = 0.2  # the course notes' lab 02 model


def notes_lab02_spec() -> LabSpec:
    """Lab 02 as the course notes train it: the same layers with dropout 0.2, plain Adam 1e-3
    (not fused), batch 64. The time-to-quality part's bar."""
    d = lab_definitions("lab02")
    return replace(lab_spec("lab02", "quick"), model="fully connected AE 784-98-32-196-784, dropout 0.2",
                   make_model=lambda: d.ClassicAutoencoder(32, dropout=NOTES_DROPOUT), make_optimizer=plain_adam,
                   notes_optimizer=None)


def big_batch_lr_scale(big_batch: int, batch_size: int) -> float:
    """The learning-rate factor of a big batch: the square root of the batch ratio (a rule for Adam)."""
    return math.sqrt(big_batch / batch_size)
