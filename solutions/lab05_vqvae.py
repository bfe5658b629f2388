# %% [markdown]
# # Lab 05 — VQ-VAE on CIFAR-10: a discrete latent space, and a prior that generates
#
# **You will:** build a vector-quantised autoencoder (VQ-VAE, van den Oord et al., 2017). Its
# encoder turns a 32×32 colour image into an 8×8 grid of vectors; a *quantizer* replaces each
# vector by the nearest entry of a learned **codebook** of K vectors, so the image becomes 64
# integers; the decoder rebuilds the image from those. You will write the quantizer's nearest-code
# search, pass gradients through it with the **straight-through estimator**, train the codebook with
# the **codebook** and **commitment** losses, measure how many codes the model actually uses, and
# revive the dead ones. Then you make it **generate**: you design an autoregressive **prior** over
# the 8×8 grid of codes (a PixelCNN of masked convolutions, or a small causal transformer), train
# it on the codes of real images, draw new grids from it one code at a time, and decode them.
#
# **Time:** about 2 hours. At the quick budget (a CPU) every model trains for a few hundred
# steps, enough to see each effect, and the whole notebook runs in about two minutes; at the full
# budget (a GPU) the main model and the prior train for a few minutes each.
#
# **How this notebook works.** Cells marked `# YOUR CODE HERE` are yours. Each is followed by a
# test cell: run it to check your work. The tests you see are a subset; the autograder runs
# more, and each docstring says what they check. Do not rename functions, classes or methods, or
# change their arguments.
#
# **Devices.** Every function you write works on the device of its inputs (the GPU if they are
# on the GPU): make new tensors with `torch.zeros_like(x)` or `device=x.device`, never on a fixed
# device, and do not move results to the CPU. The visible tests give your functions inputs on
# `device`, the device the setup cell chose; where a docstring says so, the hidden tests also run
# a function on PyTorch's `meta` device (tensors with a shape but no data), which shows at once
# whether it stays on its inputs' device.

# %% setup

# %%
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import aelab
from aelab import checks
from aelab.codebook import (DeadCodeRestarts, code_counts, collect_codes, dead_codes, largest_intermediate,
                            plot_code_usage, show_code_samples, train_variance)
from aelab.prior import code_batches, context_free_nats, plot_influence

aelab.seed_everything()
cifar = aelab.load_cifar10()
print(cifar.describe())

# %% [markdown]
# The course's training loop, from lab 02: `train(model, train_batches, optimizer, epochs=...,
# loss_fn=..., desc=...)` runs `train_epoch` once per epoch with a progress bar that moves with
# every batch, and `evaluate(model, batches, loss_fn)` gives the mean loss per image in eval mode.
# Any `loss_fn(model, images, labels)` plugs in: this lab trains the VQ-VAE with yours, and the
# prior of section 11 too.

# %% readonly id=training_loop include=lab02_fc:reconstruction_loss,train_epoch,evaluate,train

# %% [markdown]
# ## 0. One scale for every error
#
# The batches hold pixels in [0, 1]. Besides the mean squared error (MSE) on that scale, VQ-VAE
# papers report the MSE divided by the variance of the training pixels: 1.0 is what predicting
# the average pixel value everywhere would score, so 0.05 means 95% of the variance is reconstructed.
#
# **The error and the variance must be on the same scale.** A widely copied PyTorch example fed
# the network data rescaled to [-1, 1] but divided its error by a variance computed on [0, 1]:
# stretching the data by 2 multiplies squared errors by 4, so its normalised errors came out
# about 4× too large. Here both are on [0, 1]: `DATA_VARIANCE` is the variance of every training
# pixel on [0, 1] (about 0.063), and the loss and every reported error use the [0, 1] batches.
#
# **The test images.** At the quick budget every test number is measured on the first 1,000
# test images (the course's offline copy of CIFAR-10 holds only those), so your numbers do not
# depend on where your copy came from; at the full budget, on all 10,000 when you have them.

# %%
DATA_VARIANCE = train_variance(cifar)
print(f"variance of the training pixels on the [0, 1] scale: {DATA_VARIANCE:.4f}")
test_batches = cifar.batches("test", batch_size=500, limit=aelab.by_budget(quick=1000, full=None))
n_test = test_batches.num_images
print(f"test numbers on {n_test:,} test images")

# %% [markdown]
# ## 1. The encoder and the decoder (given)
#
# Lab 03 was about designing convolutional encoders and decoders; here they are given, in the
# shape of the original VQ-VAE, and the part you design is the prior of section 11. The encoder
# halves the resolution twice with strided 4×4 convolutions (32 → 16 → 8), then refines the 8×8
# grid with **residual blocks**: each adds a small correction to its input, $x + f(x)$, so a deep
# stack starts out close to the identity and trains easily. A final 1×1 convolution maps the
# features to `code_dim`-dimensional vectors $z_e$, one per grid position. The decoder mirrors it:
# a 3×3 convolution up to `hidden` channels, residual blocks, then two transposed convolutions of
# stride 2 (8 → 16 → 32). Its output has no activation: the loss pulls it into [0, 1], and the
# figures clip it there. Every convolution has a bias (PyTorch's default).

# %% readonly id=encoder_decoder
class ResidualBlock(nn.Module):
    """x (B, channels, H, W) -> x + f(x), with f = ReLU, 3x3 conv (channels -> hidden), ReLU,
    1x1 conv (hidden -> channels), and no activation after the sum."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.block = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, hidden, 3, padding=1),
                                   nn.ReLU(), nn.Conv2d(hidden, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class Encoder(nn.Module):
    """Images (B, 3, 32, 32) in [0, 1] -> encoder outputs z_e (B, code_dim, 8, 8)."""

    def __init__(self, code_dim: int = 64, hidden: int = 128, num_residual: int = 2):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, hidden // 2, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(hidden // 2, hidden, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            *[ResidualBlock(hidden, hidden // 2) for _ in range(num_residual)], nn.ReLU(),
            nn.Conv2d(hidden, code_dim, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """Quantised grids (B, code_dim, 8, 8) -> images (B, 3, 32, 32)."""

    def __init__(self, code_dim: int = 64, hidden: int = 128, num_residual: int = 2):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(code_dim, hidden, 3, padding=1),
            *[ResidualBlock(hidden, hidden // 2) for _ in range(num_residual)], nn.ReLU(),
            nn.ConvTranspose2d(hidden, hidden // 2, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(hidden // 2, 3, 4, stride=2, padding=1),
        )

    def forward(self, z_q: Tensor) -> Tensor:
        return self.net(z_q)

# %% [markdown]
# ## 2. The vector quantizer
#
# The codebook is a (K, D) matrix of vectors $e_1, \dots, e_K$. Each encoder output $z$ (one per
# grid position, D numbers) is replaced by its nearest code, $k^* = \arg\min_k \lVert z - e_k \rVert^2$.
#
# For N vectors and K codes, subtracting every pair would build an N×K×D tensor: for a batch of
# 256 images (N = 16,384 positions), K = 512 and D = 64 that is half a billion numbers, 2 GB.
# Expand the square instead: $\lVert z - e \rVert^2 = \lVert z \rVert^2 - 2\, z \cdot e + \lVert e \rVert^2$,
# where the middle term for all pairs is one matrix product, and nothing larger than N×K is built.
# **A hidden test measures the memory**: it records the largest tensor your function builds.

# %% solution id=squared_distances
def squared_distances(z: Tensor, codebook: Tensor) -> Tensor:
    """Squared Euclidean distances between every row of z (N, D) and every code, row of codebook (K, D).

    Returns an (N, K) tensor on z's device: entry [n, k] = ||z[n] - codebook[k]||^2, computed as
    ||z||^2 - 2 z.e + ||e||^2. The tests check the values against the brute-force distances; the
    hidden tests also record the largest tensor it builds for N=256, K=128, D=32, which must hold
    fewer than a quarter of N*K*D numbers (no (N, K, D) tensor), and run it on the meta device.
    """
    ### BEGIN SOLUTION
    return z.pow(2).sum(dim=1, keepdim=True) - 2 * z @ codebook.T + codebook.pow(2).sum(dim=1)
    ### END SOLUTION


# %% test id=test_squared_distances points=2
def _test_squared_distances():
    gen = torch.Generator().manual_seed(3)
    z, e = torch.randn(6, 4, generator=gen).to(device), torch.randn(5, 4, generator=gen).to(device)
    d = squared_distances(z, e)
    checks.tensor(d, "squared_distances(z (6, 4), codebook (5, 4))", shape=(6, 5), device=z.device)
    checks.close(d[2, 3], float(((z[2] - e[3]) ** 2).sum()), "distance from z[2] to code 3",
                 atol=1e-4, hint="||z||^2 - 2 z.e + ||e||^2, with the norms summed over the D dimension")
    checks.passed("squared_distances")
    ### BEGIN HIDDEN TESTS
    brute = ((z[:, None, :] - e[None, :, :]) ** 2).sum(-1)
    checks.close(d, brute, "squared_distances vs brute force", atol=1e-4,
                 hint="all three terms are needed: ||z||^2 - 2 z.e + ||e||^2")
    # No (N, K, D) tensor: the largest tensor it builds for N=256, K=128, D=32 must be far smaller
    # than N*K*D = 1,048,576 numbers (N*K = 32,768 is what the answer itself takes).
    z_big, e_big = torch.randn(256, 32, generator=gen), torch.randn(128, 32, generator=gen)
    d_big, largest, largest_shape = largest_intermediate(squared_distances, z_big, e_big)
    checks.less(largest, 256 * 128 * 32 // 4, "the largest tensor squared_distances builds (number of elements)",
                hint=f"it built one of shape {largest_shape}; expand the square instead of subtracting every pair")
    checks.close(d_big, torch.cdist(z_big.double(), e_big.double()) ** 2, "squared_distances (256, 128)", atol=1e-3)
    on_meta = squared_distances(torch.empty(7, 3, device="meta"), torch.empty(4, 3, device="meta"))
    checks.tensor(on_meta, "squared_distances of meta tensors", shape=(7, 4), device="meta")
    ### END HIDDEN TESTS


_test_squared_distances()

# %% [markdown]
# The quantizer's forward pass takes the encoder outputs $z_e$ (B, D, H, W), finds the nearest code
# for each of the B·H·W positions, and returns four things:
#
# 1. $z_q$, the quantised grid (B, D, H, W). The argmin has no gradient, so the encoder would never
#    learn. The **straight-through estimator** copies the decoder's gradient from $z_q$ onto $z_e$:
#    `z_q = z_e + (e - z_e).detach()` has the *value* of the codes $e$ and the *gradient* of $z_e$.
# 2. the codes, (B, H, W) integers in [0, K).
# 3. the **codebook loss** $\lVert \mathrm{sg}[z_e] - e \rVert^2$: it moves the chosen codes towards
#    the encoder outputs (sg = stop-gradient = `.detach()`). Only the codebook learns from it.
# 4. the **commitment loss** $\beta \lVert z_e - \mathrm{sg}[e] \rVert^2$ with $\beta = 0.25$: it keeps
#    the encoder outputs close to their codes, so they do not drift away from the codebook. Only the
#    encoder learns from it.
#
# Both losses are means over all B·D·H·W numbers (`F.mse_loss`). A misplaced `.detach()` makes the
# code still run and the loss still fall, but trains the wrong thing: the tests check which
# tensors get which gradients.

# %% solution id=vector_quantizer
class VectorQuantizer(nn.Module):
    """Nearest-code quantisation of a grid of vectors, with a straight-through gradient.

    forward(z_e (B, D, H, W) float) returns a tuple (z_q, codes, codebook_loss, commitment_loss),
    all on z_e's device:
        z_q: (B, D, H, W), the value of the nearest codes, with the gradient passed straight to z_e;
        codes: (B, H, W) int64, the index of the nearest code at each position;
        codebook_loss: scalar, mean over all elements of (sg[z_e] - e)^2 (gradient to the codebook only);
        commitment_loss: scalar, beta * mean of (z_e - sg[e])^2 (gradient to z_e only).
    Use squared_distances for the nearest-code search. The tests check the codes against a
    brute-force search (on grids with H != W, so a transposed grid shows), the values of z_q and
    of both losses, that the gradient reaching z_e is exactly the one arriving at z_q and that
    none of it reaches the codebook, and which of z_e and the codebook each loss sends a gradient to.
    """

    def __init__(self, num_codes: int, code_dim: int, beta: float = 0.25):
        super().__init__()
        self.num_codes, self.code_dim, self.beta = num_codes, code_dim, beta
        # The K codes are the rows of self.codebook.weight (K, D). They start tiny and close
        # together, as in the original implementation; section 5 shows what that costs.
        self.codebook = nn.Embedding(num_codes, code_dim)
        nn.init.uniform_(self.codebook.weight, -1 / num_codes, 1 / num_codes)

    def forward(self, z_e: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        ### BEGIN SOLUTION
        B, D, H, W = z_e.shape
        # One D-vector per row, in (B, H, W) order, so that the codes reshape to (B, H, W).
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, D)
        codes = squared_distances(flat.detach(), self.codebook.weight).argmin(dim=1)
        e = self.codebook(codes).view(B, H, W, D).permute(0, 3, 1, 2)
        codebook_loss = F.mse_loss(e, z_e.detach())
        commitment_loss = self.beta * F.mse_loss(z_e, e.detach())
        z_q = z_e + (e - z_e).detach()
        return z_q, codes.view(B, H, W), codebook_loss, commitment_loss
        ### END SOLUTION


# %% test id=test_nearest_codes points=2
def _brute_force_codes(z_e: Tensor, codebook: Tensor) -> Tensor:
    """The nearest code at every position of z_e (B, D, H, W), trying every pair."""
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
    return ((flat[:, None, :] - codebook[None]) ** 2).sum(-1).argmin(1).view(z_e.shape[0], *z_e.shape[2:])


def _fixed_quantizer(num_codes: int, code_dim: int, gen: torch.Generator) -> VectorQuantizer:
    """A VectorQuantizer on `device` with a codebook of standard normal numbers."""
    vq = VectorQuantizer(num_codes, code_dim).to(device)
    with torch.no_grad():
        vq.codebook.weight.copy_(torch.randn(num_codes, code_dim, generator=gen))
    return vq


def _test_nearest_codes():
    gen = torch.Generator().manual_seed(0)
    vq = _fixed_quantizer(7, 4, gen)
    z_e = torch.randn(2, 4, 3, 5, generator=gen).to(device)  # H != W, so a transposed grid shows
    out = vq(z_e)
    checks.true(type(out) is tuple and len(out) == 4, "VectorQuantizer output",
                "must be a tuple (z_q, codes, codebook_loss, commitment_loss)")
    z_q, codes, codebook_loss, commitment_loss = out
    checks.tensor(z_q, "z_q", shape=(2, 4, 3, 5), device=z_e.device)
    checks.tensor(codes, "codes", shape=(2, 3, 5), dtype=torch.int64, device=z_e.device,
                  hint="argmin returns int64 indices")
    book = vq.codebook.weight.detach()
    expected = _brute_force_codes(z_e, book)
    checks.true(bool((codes == expected).all()), "codes",
                f"are not the nearest codes: expected\n{expected.tolist()}\ngot\n{codes.tolist()}",
                hint="argmin (not argmax) of the squared distances, one row per grid position in (B, H, W) order")
    checks.close(z_q, book[expected].permute(0, 3, 1, 2), "z_q values", atol=1e-5,
                 hint="the forward value of z_q is the nearest code itself")
    checks.passed("nearest codes")
    ### BEGIN HIDDEN TESTS
    for batch, dim, h, w, k in ((1, 3, 2, 2, 4), (6, 8, 4, 3, 33)):
        vq_h = _fixed_quantizer(k, dim, gen)
        z_h = (torch.randn(batch, dim, h, w, generator=gen) * 2).to(device)
        zq_h, codes_h, _, _ = vq_h(z_h)
        ref = _brute_force_codes(z_h, vq_h.codebook.weight.detach())
        checks.tensor(codes_h, f"codes for z_e of shape {(batch, dim, h, w)}", shape=(batch, h, w), dtype=torch.int64)
        checks.true(bool((codes_h == ref).all()), f"codes for z_e of shape {(batch, dim, h, w)}",
                    "are not the nearest codes")
        checks.close(zq_h, vq_h.codebook.weight.detach()[ref].permute(0, 3, 1, 2),
                     f"z_q for z_e of shape {(batch, dim, h, w)}", atol=1e-5)
    # The loss values: mean squared distance to the chosen codes, times beta for the commitment.
    gap = float(((z_e - book[expected].permute(0, 3, 1, 2)) ** 2).mean())
    checks.close(codebook_loss, gap, "codebook_loss on the fixed input", atol=1e-5,
                 hint="mean((sg[z_e] - e)^2), with no beta")
    checks.close(commitment_loss, 0.25 * gap, "commitment_loss on the fixed input", atol=1e-5,
                 hint="beta = 0.25 multiplies the commitment loss only")
    ### END HIDDEN TESTS


_test_nearest_codes()

# %% test id=test_straight_through points=2
def _test_straight_through():
    # The gradient reaching z_e must be exactly the gradient arriving at z_q.
    gen = torch.Generator().manual_seed(1)
    vq = _fixed_quantizer(7, 4, gen)
    z_e = torch.randn(2, 4, 3, 5, generator=gen).to(device).requires_grad_(True)
    z_q = vq(z_e)[0]
    upstream = torch.randn(2, 4, 3, 5, generator=gen).to(device)
    (z_q * upstream).sum().backward()
    checks.tensor(z_e.grad, "gradient at z_e", shape=(2, 4, 3, 5),
                  hint="z_q = z_e + (e - z_e).detach() lets the gradient through")
    checks.close(z_e.grad, upstream, "gradient at z_e", atol=1e-6,
                 hint="z_q = z_e + (e - z_e).detach(): without the detach the gradient cancels out")
    checks.passed("straight-through estimator")
    ### BEGIN HIDDEN TESTS
    grad = vq.codebook.weight.grad
    checks.true(grad is None or bool((grad == 0).all()), "codebook gradient from the decoder's side",
                "must be zero: the decoder's gradient goes to the encoder, not the codebook",
                hint="detach (e - z_e) in the straight-through estimator")
    ### END HIDDEN TESTS


_test_straight_through()

# %% test id=test_which_loss_updates_what points=3
def _test_which_loss_updates_what():
    gen = torch.Generator().manual_seed(2)
    vq = _fixed_quantizer(7, 4, gen)
    z_fixed = torch.randn(2, 4, 3, 5, generator=gen).to(device)

    def gradients_of(loss_index: int) -> tuple[Tensor | None, Tensor | None]:
        """Backpropagate one of the quantizer's losses on a fixed input: (grad at z_e, grad at the codebook)."""
        vq.codebook.weight.grad = None
        z = z_fixed.clone().requires_grad_(True)
        vq(z)[loss_index].backward()
        return z.grad, vq.codebook.weight.grad

    def is_zero(grad: Tensor | None) -> bool:
        return grad is None or bool((grad == 0).all())

    enc_grad, book_grad = gradients_of(2)  # the codebook loss
    checks.true(is_zero(enc_grad), "gradient of codebook_loss at z_e", "must be zero: the encoder must not learn from it",
                hint="codebook_loss = mse(e, z_e.detach())")
    checks.true(not is_zero(book_grad), "gradient of codebook_loss at the codebook",
                "is zero, but the codebook learns from it")
    enc_grad, book_grad = gradients_of(3)  # the commitment loss
    checks.true(is_zero(book_grad), "gradient of commitment_loss at the codebook",
                "must be zero: the codebook must not learn from it", hint="commitment_loss = beta * mse(z_e, e.detach())")
    checks.true(not is_zero(enc_grad), "gradient of commitment_loss at z_e", "is zero, but the encoder learns from it")
    checks.passed("which loss updates what")
    ### BEGIN HIDDEN TESTS
    # Exact gradients, from a reference written out by hand.
    book = vq.codebook.weight.detach()
    ref_codes = _brute_force_codes(z_fixed, book)
    e_fixed = book[ref_codes].permute(0, 3, 1, 2)
    enc_grad, _ = gradients_of(3)
    checks.close(enc_grad, 0.25 * 2 * (z_fixed - e_fixed) / z_fixed.numel(), "gradient of commitment_loss at z_e",
                 atol=1e-6, hint="beta * mean((z_e - sg[e])^2), with beta = 0.25")
    _, book_grad = gradients_of(2)
    ref_book = torch.zeros_like(book).index_add_(
        0, ref_codes.reshape(-1), (2 * (e_fixed - z_fixed) / z_fixed.numel()).permute(0, 2, 3, 1).reshape(-1, 4))
    checks.close(book_grad, ref_book, "gradient of codebook_loss at the codebook", atol=1e-6,
                 hint="mean((sg[z_e] - e)^2), with no beta")
    ### END HIDDEN TESTS


_test_which_loss_updates_what()

# %% [markdown]
# ## 3. The whole model and its loss
#
# The model below wires the encoder, your quantizer and the decoder together. `encode` gives the
# codes of a batch of images and `decode_codes` turns any grid of codes back into images, which
# sections 10 and 11 use to decode random and generated grids.
#
# The training loss adds three terms: the reconstruction error, **divided by the data variance**
# as in the original VQ-VAE (which sets how much it weighs against the other two), the codebook
# loss and the commitment loss. Write it in the form the training loop expects,
# `loss_fn(model, images, labels)`; the labels are not used.

# %%
class VQVAE(nn.Module):
    """Encoder -> VectorQuantizer -> Decoder. forward(images) returns
    (reconstruction, codes, codebook_loss, commitment_loss)."""

    def __init__(self, num_codes: int = 512, code_dim: int = 64, hidden: int = 128, num_residual: int = 2,
                 beta: float = 0.25):
        super().__init__()
        self.encoder = Encoder(code_dim, hidden, num_residual)
        self.quantizer = VectorQuantizer(num_codes, code_dim, beta)
        self.decoder = Decoder(code_dim, hidden, num_residual)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        z_q, codes, codebook_loss, commitment_loss = self.quantizer(self.encoder(images))
        return self.decoder(z_q), codes, codebook_loss, commitment_loss

    def encode(self, images: Tensor) -> Tensor:
        """The (B, 8, 8) codes of a batch of images."""
        return self.quantizer(self.encoder(images))[1]

    @torch.no_grad()
    def decode_codes(self, codes: Tensor) -> Tensor:
        """Images (B, 3, 32, 32) from a grid of codes (B, 8, 8)."""
        return self.decoder(self.quantizer.codebook(codes).permute(0, 3, 1, 2))


# %% solution id=vqvae_loss
def vqvae_loss(model: nn.Module, images: Tensor, labels: Tensor) -> Tensor:
    """The VQ-VAE training loss of one batch, a scalar tensor with gradient:

        mse(reconstruction, images) / DATA_VARIANCE + codebook_loss + commitment_loss

    images: (B, 3, 32, 32) in [0, 1]; model(images) returns (reconstruction, codes, codebook_loss,
    commitment_loss); labels are not used. The tests check the value on stand-in models with fixed
    outputs, and (hidden) that a real VQVAE's encoder and decoder both get a gradient from it.
    """
    ### BEGIN SOLUTION
    reconstruction, _, codebook_loss, commitment_loss = model(images)
    return F.mse_loss(reconstruction, images) / DATA_VARIANCE + codebook_loss + commitment_loss
    ### END SOLUTION


# %% test id=test_vqvae_loss points=2
class _FixedOutputs(nn.Module):
    """A stand-in model that returns fixed outputs, so the loss has a known value."""

    def __init__(self, reconstruction: Tensor, codebook_loss: float, commitment_loss: float):
        super().__init__()
        self.reconstruction = reconstruction
        self.losses = (torch.tensor(codebook_loss, device=reconstruction.device),
                       torch.tensor(commitment_loss, device=reconstruction.device))

    def forward(self, images: Tensor):
        codes = torch.zeros(len(images), 8, 8, dtype=torch.int64, device=images.device)
        return self.reconstruction, codes, *self.losses


def _test_vqvae_loss():
    checks.between(DATA_VARIANCE, 0.060, 0.066, "DATA_VARIANCE", hint="the variance of the training pixels on [0, 1]")
    gen = torch.Generator().manual_seed(5)
    images = torch.rand(4, 3, 32, 32, generator=gen).to(device)
    recon = (images + 0.1 * torch.randn(4, 3, 32, 32, generator=gen).to(device)).clamp(0, 1)
    labels = torch.zeros(4, dtype=torch.int64, device=device)
    loss = vqvae_loss(_FixedOutputs(recon, 0.3, 0.05), images, labels)
    expected = float(((recon - images) ** 2).mean()) / DATA_VARIANCE + 0.3 + 0.05
    checks.close(loss, expected, "vqvae_loss on fixed outputs", atol=1e-4,
                 hint="mse(reconstruction, images) / DATA_VARIANCE + codebook_loss + commitment_loss, all on [0, 1]")
    checks.passed("vqvae_loss")
    ### BEGIN HIDDEN TESTS
    loss = vqvae_loss(_FixedOutputs(images.clone(), 0.0, 0.0), images, labels)
    checks.close(loss, 0.0, "vqvae_loss of a perfect reconstruction with no quantisation losses", atol=1e-7)
    recon2 = (images + 0.05).clamp(0, 1)
    loss = vqvae_loss(_FixedOutputs(recon2, 1.5, 0.2), images, labels)
    checks.close(loss, float(((recon2 - images) ** 2).mean()) / DATA_VARIANCE + 1.7, "vqvae_loss on other fixed outputs",
                 atol=1e-4, hint="the error and the variance must be on the same [0, 1] scale")
    # The gradient flows: a real model's encoder and decoder get one.
    tiny = VQVAE(num_codes=8, code_dim=4, hidden=8, num_residual=1).to(device)
    vqvae_loss(tiny, images[:2], labels[:2]).backward()
    checks.true(any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in tiny.decoder.parameters()),
                "vqvae_loss", "gives the decoder no gradient")
    checks.true(any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in tiny.encoder.parameters()),
                "vqvae_loss", "gives the encoder no gradient")
    ### END HIDDEN TESTS


_test_vqvae_loss()

# %% [markdown]
# ## 4. Measuring codebook health: perplexity
#
# A codebook of K codes is only as good as the codes the encoder actually picks. Count how often
# each code is chosen over a data set, turn the counts into a distribution $p_k$, and take the
# exponential of its entropy:
#
# $$\text{perplexity} = \exp\Big(-\sum_k p_k \ln p_k\Big), \qquad 0 \ln 0 = 0.$$
#
# It is the number of codes in use, counted as if each were used equally: K when all are used
# uniformly, 1 when a single code is chosen everywhere. Codes never chosen are **dead**: they
# cost memory and capacity and never improve, because only the chosen codes get a gradient.
# Its logarithm, the entropy in nats, comes back in section 11: about what a code costs when
# every position is drawn on its own with these frequencies, with no look at its neighbours.

# %% solution id=perplexity
def perplexity(counts: Tensor) -> float:
    """exp(entropy) of the code-usage distribution p = counts / counts.sum(), in natural log, 0 log 0 = 0.

    counts: (K,) how often each code was chosen (integers or floats, not all zero), on the CPU, as
    aelab.codebook.code_counts returns them (so float64 is fine, even on an Apple GPU machine).
    Returns a Python float between 1 and K. The tests use counts with zeros, float counts, and
    counts scaled by 1000 (which must not change the result).
    """
    ### BEGIN SOLUTION
    p = counts.double() / counts.sum()
    p = p[p > 0]  # 0 log 0 = 0: unused codes add nothing, and log(0) would give NaN
    return float(torch.exp(-(p * p.log()).sum()))
    ### END SOLUTION


# %% test id=test_perplexity points=2
def _test_perplexity():
    checks.close(perplexity(torch.tensor([3, 3, 3, 3])), 4.0, "perplexity of uniform use of 4 codes",
                 atol=1e-6)
    checks.close(perplexity(torch.tensor([9, 0, 0, 0, 0])), 1.0, "perplexity with a single code in use",
                 atol=1e-6, hint="unused codes contribute 0 log 0 = 0: leave them out before taking the log")
    checks.close(perplexity(torch.tensor([2, 1, 1, 0])), 2 ** 1.5, "perplexity of counts [2, 1, 1, 0]",
                 atol=1e-5, hint="p = counts / counts.sum(), entropy in natural log, then exp")
    checks.passed("perplexity")
    ### BEGIN HIDDEN TESTS
    counts = [40.0, 0.0, 7.0, 1.0, 0.0, 12.5, 3.0]
    p = [c / sum(counts) for c in counts if c > 0]
    checks.close(perplexity(torch.tensor(counts)), math.exp(-sum(q * math.log(q) for q in p)),
                 "perplexity of float counts", atol=1e-5)
    checks.close(perplexity(torch.tensor([5, 0, 2, 0, 1]) * 1000),
                 perplexity(torch.tensor([5, 0, 2, 0, 1])),
                 "perplexity of counts scaled by 1000", atol=1e-6, hint="normalise the counts to probabilities")
    checks.close(perplexity(torch.ones(512, dtype=torch.int64)), 512.0,
                 "perplexity of uniform use of 512 codes", atol=1e-3)
    checks.true(type(perplexity(torch.tensor([1, 2]))) is float, "perplexity(...)",
                "must return a Python float", hint="float(...) of the result")
    ### END HIDDEN TESTS


_test_perplexity()

# %% [markdown]
# ## 5. Training, and what goes wrong
#
# Train the VQ-VAE with K = 512 codes, with the course's loop and your `vqvae_loss`. Then count
# the codes it uses on the test images.
#
# The quick budget (CPU) trains small models for a few hundred steps on part of the training set;
# the full budget (GPU) trains bigger ones on all of it. All the comparisons in sections 5–8 use the
# same budget, `SIDE_EPOCHS`; section 9 trains the final model longer.
#
# One detail of the optimiser: Adam moves every parameter by about the learning rate per step,
# whatever the size of its gradient. An encoder output moves with all the encoder's weights at
# once, a code only with its own D numbers, so with one learning rate the codes trail behind the
# outputs they should follow and the training lurches. The codebook gets a 10× larger learning rate.

# %%
CONFIG = aelab.by_budget(
    quick=dict(hidden=32, num_residual=1, code_dim=16, batch_size=64, train_images=19_200, lr=2e-3, restart_every=10),
    full=dict(hidden=128, num_residual=2, code_dim=64, batch_size=128, train_images=50_000, lr=1e-3, restart_every=100),
)
CODEBOOK_LR_SCALE = 10
SIDE_EPOCHS = aelab.by_budget(quick=1, full=8)    # sections 5-8
MAIN_EPOCHS = aelab.by_budget(quick=1, full=40)   # section 9
NUM_CODES = 512

train_batches = cifar.batches("train", batch_size=CONFIG["batch_size"], limit=CONFIG["train_images"])


def make_vqvae(num_codes: int = NUM_CODES) -> VQVAE:
    return VQVAE(num_codes, CONFIG["code_dim"], CONFIG["hidden"], CONFIG["num_residual"]).to(train_batches.device)


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """Adam at CONFIG["lr"], with a CODEBOOK_LR_SCALE times larger step for the codebook."""
    codebook = [p for name, p in model.named_parameters() if name.startswith("quantizer.")]
    others = [p for name, p in model.named_parameters() if not name.startswith("quantizer.")]
    return torch.optim.Adam([{"params": others},
                             {"params": codebook, "lr": CODEBOOK_LR_SCALE * CONFIG["lr"]}], lr=CONFIG["lr"])


def train_vqvae(num_codes: int = NUM_CODES, *, epochs: int = SIDE_EPOCHS, restart=None, model: VQVAE | None = None,
                desc: str = "VQ-VAE"):
    """Train `model` (default: a fresh VQ-VAE) with vqvae_loss; with `restart`, apply it to the
    dead codes every CONFIG["restart_every"] steps. Returns (model, history, restarts)."""
    model = model if model is not None else make_vqvae(num_codes)
    loss_fn, restarts = vqvae_loss, None
    if restart is not None:
        restarts = DeadCodeRestarts(model.quantizer, model.quantizer.codebook.weight, restart,
                                    every=CONFIG["restart_every"])
        loss_fn = restarts.wrap(vqvae_loss)
    history = train(model, train_batches, make_optimizer(model), epochs=epochs, loss_fn=loss_fn, desc=desc)
    if restarts is not None:
        restarts.remove()
    return model, history, restarts


def assess(model: VQVAE) -> dict:
    """Test-set numbers of a trained VQ-VAE: errors on [0, 1] and the health of its codebook."""
    mse = aelab.reconstruction_mse(model, test_batches)
    counts = code_counts(collect_codes(model.encode, test_batches), model.quantizer.num_codes)
    return {"mse": mse, "nmse": mse / DATA_VARIANCE, "perplexity": perplexity(counts),
            "dead codes": dead_codes(counts), "counts": counts}


baseline, baseline_history, _ = train_vqvae(desc="VQ-VAE, no remedy")
before = assess(baseline)
print(f"on {n_test:,} test images: MSE {before['mse']:.4f}, normalised MSE {before['nmse']:.3f}, "
      f"perplexity {before['perplexity']:.1f} of {NUM_CODES}, dead codes {before['dead codes']}")
aelab.record("lab05", "test_nmse_no_remedy", before["nmse"])
aelab.record("lab05", "perplexity_no_remedy", before["perplexity"])
aelab.record("lab05", "dead_codes_no_remedy", before["dead codes"])
plot_code_usage({"no remedy": before["counts"]}, title="Codebook usage on the test images")

# %% test id=test_baseline_training points=1
def _test_baseline_training():
    checks.needs("before", made_by="the cell after section 5's text, which trains with your quantizer and vqvae_loss")
    # Reference at the quick budget, 1,000 test images, over seeds 0-19 (docs/calibration/quick.md:
    # one thread, AMD EPYC, 2 cores). Without a remedy the total loss can lurch up and down while a
    # few codes take over, so this checks the reconstruction: untrained, its normalised test error
    # is about 4. Normalised test MSE: 0.182-0.253, worst 0.253; threshold 0.40 (margin 0.147).
    checks.less(before["nmse"], 0.40, "normalised test MSE without a remedy",
                hint="check the loss and the straight-through estimator")
    # Perplexity: 12.8-76.5 (of 512), a wide spread: how many codes survive the first steps is
    # luck; floor 3 (margin 9.8), which a collapsed codebook (one or two codes) fails.
    checks.greater(before["perplexity"], 3.0, "perplexity without a remedy",
                   hint="count the codes of the test images and check the perplexity formula")
    checks.passed("training without a remedy")


_test_baseline_training()

# %% [markdown]
# Look at the curve: most of the codebook is dead. The codes start tiny and bunched together
# near zero while the encoder's outputs grow: after a few steps only the codes nearest to where
# the outputs landed are ever chosen, only those get the codebook loss's gradient, and the rest
# stay where they started, out of reach, for good.
#
# ## 6. A remedy: restart dead codes from encoder outputs
#
# Every few steps (`CONFIG["restart_every"]`), look at the codes that no position chose since the
# last check, and move each of them onto an encoder output picked at random from the latest batch.
# A restarted code sits where the data is, so it gets chosen, gets gradient, and starts to learn.
# (The other common remedy replaces the codebook loss by exponential moving averages of the encoder
# outputs assigned to each code; restarts are simpler and revive codes just as well.)
#
# `DeadCodeRestarts` from `aelab.codebook` keeps the counts and calls your function on schedule.

# %% solution id=restart_dead_codes
def restart_dead_codes(codebook: Tensor, counts: Tensor, encoder_outputs: Tensor) -> int:
    """Move every dead code onto a randomly chosen encoder output, in place.

    codebook: (K, D) the codes, to change in place (it is passed without gradient tracking).
    counts: (K,) how often each code was chosen since the last check; a code is dead if its count is 0.
    encoder_outputs: (N, D) recent encoder outputs, one per row, with N at least the number of dead codes.
    Each dead code gets a different row of encoder_outputs, picked at random (e.g. with
    torch.randperm, on the outputs' device); the other codes stay exactly as they are. Returns the
    number of codes restarted, as an int. The hidden tests also check the cases with no dead code
    and with every code dead, and that the restarted codes are all different.
    """
    ### BEGIN SOLUTION
    dead = counts == 0
    n_dead = int(dead.sum())
    if n_dead:
        picks = torch.randperm(len(encoder_outputs), device=encoder_outputs.device)[:n_dead]
        codebook[dead.to(codebook.device)] = encoder_outputs[picks].to(codebook)
    return n_dead
    ### END SOLUTION


# %% test id=test_restart_dead_codes points=2
def _rows_found_in(rows: Tensor, pool: Tensor) -> Tensor:
    """For each row of `rows`, the distance to the nearest row of `pool` (0 when it is one of them)."""
    return torch.cdist(rows.detach().cpu().double(), pool.detach().cpu().double()).min(dim=1).values


def _test_restart_dead_codes():
    gen = torch.Generator().manual_seed(11)
    book = torch.randn(10, 3, generator=gen).to(device)
    book_before = book.clone()
    usage = torch.tensor([3, 0, 1, 0, 0, 7, 2, 0, 1, 0], device=device)
    pool = (torch.randn(50, 3, generator=gen) + 10.0).to(device)  # far from every code, so a restarted code shows
    moved = restart_dead_codes(book, usage, pool)
    checks.close(moved, 5.0, "restart_dead_codes(...) return value", hint="the number of codes with a count of 0")
    alive = usage > 0
    checks.close(book[alive], book_before[alive], "the codes in use after restart_dead_codes",
                 hint="only the codes with a count of 0 may change")
    checks.close(_rows_found_in(book[~alive], pool), torch.zeros(5), "distance from each restarted code to the "
                 "encoder outputs", atol=1e-5, hint="set each dead code to a row of encoder_outputs, in place "
                                                    "(codebook[dead] = ...)")
    checks.passed("restart_dead_codes")
    ### BEGIN HIDDEN TESTS
    checks.true(bool(torch.unique(book[~alive], dim=0).shape[0] == 5), "restarted codes",
                "must each get a different encoder output", hint="torch.randperm(N)[:n_dead] picks distinct rows")
    book2 = torch.randn(6, 2, generator=gen).to(device)
    book2_before = book2.clone()
    checks.close(restart_dead_codes(book2, torch.ones(6, dtype=torch.int64, device=device), pool[:, :2]), 0.0,
                 "restart_dead_codes with no dead code")
    checks.close(book2, book2_before, "codebook with no dead code")
    book3 = torch.zeros(6, 2, device=device)
    checks.close(restart_dead_codes(book3, torch.zeros(6, device=device), pool[:8, :2]), 6.0,
                 "restart_dead_codes with every code dead")
    checks.close(_rows_found_in(book3, pool[:8, :2]), torch.zeros(6), "codes restarted from 8 outputs", atol=1e-5)
    checks.true(bool(torch.unique(book3, dim=0).shape[0] == 6), "codes restarted from 8 outputs",
                "must each get a different encoder output")
    checks.true(type(moved) is int, "restart_dead_codes(...)", f"must return an int, got {type(moved).__name__}")
    ### END HIDDEN TESTS


_test_restart_dead_codes()

# %% [markdown]
# Train the same model again, now with restarts, and compare.

# %%
restarted = make_vqvae()
untrained_loss = evaluate(restarted, test_batches, vqvae_loss)
restarted, restarted_history, restarts = train_vqvae(model=restarted, restart=restart_dead_codes,
                                                     desc="VQ-VAE, restarts")
restarted_loss = evaluate(restarted, test_batches, vqvae_loss)
print(f"test loss {untrained_loss:.3f} untrained -> {restarted_loss:.3f} trained")
after = assess(restarted)
print(f"codes restarted at the first checks: {restarts.restarted[:8]} ... (at the last: {restarts.restarted[-1]})")
aelab.show_table([{"model": name, "test MSE": r["mse"], "normalised MSE": r["nmse"], "perplexity": r["perplexity"],
                   "dead codes": r["dead codes"]} for name, r in (("no remedy", before), ("dead-code restarts", after))],
                 title=f"Before and after the remedy (K = {NUM_CODES}, {n_test:,} test images)")
aelab.record("lab05", "test_loss_ratio_restarts", restarted_loss / untrained_loss)
aelab.record("lab05", "test_nmse_restarts", after["nmse"])
aelab.record("lab05", "perplexity_restarts", after["perplexity"])
aelab.record("lab05", "dead_codes_restarts", after["dead codes"])
plot_code_usage({"no remedy": before["counts"], "restarts": after["counts"]},
                title="Codebook usage on the test images")

# %% test id=test_restarts_help points=3
def _test_restarts_help():
    checks.needs("after", "restarted_loss", "untrained_loss",
                 made_by="the cell after section 6's test, which trains with your restart_dead_codes")
    # Reference at the quick budget, 1,000 test images, over seeds 0-19 (docs/calibration/quick.md:
    # one thread, AMD EPYC, 2 cores). Each bound only gets easier with the full budget's longer
    # training. Test loss after / before training: 0.032-0.074, worst 0.074; threshold 0.25
    # (margin 0.176).
    checks.less(restarted_loss / untrained_loss, 0.25, "test loss after / before training, with restarts",
                hint="check the loss and the straight-through estimator")
    # Perplexity with restarts: 292-454 (of 512), worst 291.8 (seed 15; the next lowest 371);
    # floor 200 (margin 92). Without restarts it is 13-77.
    checks.greater(after["perplexity"], 200.0, "perplexity with restarts",
                   hint="restart_dead_codes should revive the unused codes, in the codebook it is given")
    # Dead codes with restarts: 0-14 of 512 at 19 seeds, 107 at seed 15: the count has a long
    # tail, so the bound sits far from it; threshold 200 (margin 93). Without restarts: 424-497.
    checks.less(after["dead codes"], 200, "dead codes with restarts (of 512)",
                hint="restart_dead_codes must change the codebook it is given, in place")
    # Normalised test MSE with restarts: 0.150-0.347, worst 0.347; threshold 0.50 (margin 0.153).
    checks.less(after["nmse"], 0.50, "normalised test MSE with restarts")
    checks.passed("dead-code restarts")


_test_restarts_help()

# %% [markdown]
# Compare the two rows of your table. The restarts bring most of the codebook into use: the
# perplexity rises from a few dozen codes at most to several hundred. What they buy is capacity: 512
# codes in use carry 9 bits per position, 30 codes fewer than 5. Whether that shows in the error
# after a few hundred steps is another matter: every restart hands the decoder codes it has not
# seen yet. Look at your two errors: are they far apart, or close?

# %% [markdown]
# ## 7. How many codes?
#
# The codes are the whole message from encoder to decoder: an image becomes 64 indices of
# $\log_2 K$ bits each. Train the model with K = 16 codes (with restarts, same budget) and compare
# it with K = 512 above: 256 bits per image against 576.

# %%
small_k, _, _ = train_vqvae(16, restart=restart_dead_codes, desc="VQ-VAE, K=16")
by_size = {16: assess(small_k), NUM_CODES: after}
grid_positions = 8 * 8
aelab.show_table([{"K": k, "bits per image": int(grid_positions * math.log2(k)),
                   "test MSE": by_size[k]["mse"], "normalised MSE": by_size[k]["nmse"],
                   "perplexity": by_size[k]["perplexity"], "dead codes": by_size[k]["dead codes"]}
                  for k in sorted(by_size)], title="Reconstruction error against codebook size")
for k in sorted(by_size):
    aelab.record("lab05", f"test_nmse_k{k}", by_size[k]["nmse"])

# %% [markdown]
# Read your table. A larger codebook can only carry more: if your K = 16 error is clearly higher
# than the K = 512 one, the 16 codes are already the bottleneck after a few hundred steps; if
# the two are close, the training budget is, and the difference opens up with more training (the
# full budget). Either way the perplexity column tells you how much of each codebook is used.

# %% [markdown]
# ## 8. Against a plain autoencoder of the same size
#
# The fairest comparison keeps the encoder and decoder and removes the quantizer: the decoder then
# sees the 8×8 grid of `code_dim` real numbers itself. It trains with lab 02's
# `reconstruction_loss` (the plain MSE) for the same number of steps.

# %%
class PlainAutoencoder(nn.Module):
    """The VQ-VAE's encoder and decoder with nothing in between. forward returns (reconstruction, z)."""

    def __init__(self, code_dim: int = 64, hidden: int = 128, num_residual: int = 2):
        super().__init__()
        self.encoder = Encoder(code_dim, hidden, num_residual)
        self.decoder = Decoder(code_dim, hidden, num_residual)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        z = self.encoder(images)
        return self.decoder(z), z


plain = PlainAutoencoder(CONFIG["code_dim"], CONFIG["hidden"], CONFIG["num_residual"]).to(train_batches.device)
train(plain, train_batches, torch.optim.Adam(plain.parameters(), lr=CONFIG["lr"]), epochs=SIDE_EPOCHS,
      loss_fn=reconstruction_loss, desc="plain autoencoder")
plain_mse = aelab.reconstruction_mse(plain, test_batches)
aelab.show_table([
    {"model": f"VQ-VAE, K = {NUM_CODES}", "parameters": aelab.count_parameters(restarted),
     "latent": f"{grid_positions} codes = {grid_positions * math.log2(NUM_CODES):.0f} bits",
     "test MSE": after["mse"], "normalised MSE": after["nmse"]},
    {"model": "plain autoencoder", "parameters": aelab.count_parameters(plain),
     "latent": f"{grid_positions * CONFIG['code_dim']} float32 = {grid_positions * CONFIG['code_dim'] * 32} bits",
     "test MSE": plain_mse, "normalised MSE": plain_mse / DATA_VARIANCE},
], title="Discrete against continuous latents (same budget)")
aelab.record("lab05", "plain_ae_test_nmse", plain_mse / DATA_VARIANCE)

# %% [markdown]
# The plain autoencoder passes thousands of bits per image to its decoder, the VQ-VAE 576. Given
# enough training that shows: the continuous latent reconstructs better. After a few hundred steps
# it need not: neither model is near what its latent can carry, and which one is ahead depends on
# the run (on the seed, even). Compare your two errors, and keep both in mind for section 12.

# %% [markdown]
# ## 9. The final model
#
# At the full budget the model trains longer; at the quick budget the model of section 6 is it.

# %%
if MAIN_EPOCHS > SIDE_EPOCHS:
    final, final_history, final_restarts = train_vqvae(epochs=MAIN_EPOCHS, restart=restart_dead_codes,
                                                       desc="VQ-VAE, final")
    final_result = assess(final)
    aelab.plot_losses(final_history, title="Final VQ-VAE: training loss")
else:
    final, final_history, final_result = restarted, restarted_history, after
print(f"final model, {n_test:,} test images: MSE {final_result['mse']:.4f} on [0, 1], "
      f"normalised MSE {final_result['nmse']:.4f}, perplexity {final_result['perplexity']:.0f} of {NUM_CODES}, "
      f"{final_result['dead codes']} dead codes; trained in {final_history.seconds:.0f} s")
aelab.record("lab05", "test_mse", final_result["mse"])
aelab.record("lab05", "test_nmse", final_result["nmse"])
aelab.record("lab05", "perplexity", final_result["perplexity"])
aelab.record("lab05", "dead_codes", final_result["dead codes"])
aelab.record("lab05", "train_seconds", final_history.seconds)

test_images = cifar.images("test", 10).to(train_batches.device)
final.eval()
plain.eval()
with torch.no_grad():
    aelab.show_images({"original": test_images, f"VQ-VAE K={NUM_CODES}": final(test_images)[0],
                       "plain AE": plain(test_images)[0]}, title="Test images (top) and their reconstructions")

# %% [markdown]
# ## 10. Generating images: decoding random codes
#
# The decoder turns *any* 8×8 grid of codes into an image. So could we generate new images by
# drawing random codes? The first row decodes the codes of real test images; the second draws every
# code uniformly at random; the third draws each code independently with the frequency the encoder
# uses it.

# %%
real_codes = collect_codes(final.encode, test_batches)
show_code_samples(final.decode_codes, real_codes, NUM_CODES, counts=final_result["counts"], n=10)

# %% [markdown]
# Every random code is a patch the decoder knows, yet the random grids decode to texture, not
# objects: a scene needs neighbouring codes that agree (sky above the horizon, the two halves of a
# wheel), and independent draws ignore that. A VQ-VAE generates images only together with a
# **learned prior** over whole grids of codes. That is the last part of this lab.

# %% [markdown]
# ## 11. A prior over the grid of codes
#
# Read the 64 codes of a grid in **raster order**, row by row, left to right: $c_1, \dots, c_{64}$.
# Any distribution over grids can be written as a product of 64 classifiers,
#
# $$p(c_1, \dots, c_{64}) = \prod_{t=1}^{64} p(c_t \mid c_1, \dots, c_{t-1}),$$
#
# each predicting one code, one of K classes, from the codes before it: exactly what a language
# model does with words. An **autoregressive prior** is one network that outputs all 64
# classifiers at once: given a grid, it returns logits (B, K, 8, 8) where the logits at $(i, j)$
# may look only at the codes *before* $(i, j)$. Then a single forward pass on a real grid scores
# every position against its true code (training is as fast as for any classifier), and sampling
# draws one code at a time, feeding each back in.
#
# The classic way to build it is the **PixelCNN**: convolutions whose kernels are masked so that
# each output sees only positions above it, and to its left in its own row. The first layer must
# not see the centre either (the code it predicts) — mask **type A**; later layers may include the
# centre, which by then holds only information from before it — mask **type B**:
#
# ```
# type A (5x5)     type B (5x5)
# 1 1 1 1 1        1 1 1 1 1
# 1 1 1 1 1        1 1 1 1 1
# 1 1 0 0 0        1 1 1 0 0
# 0 0 0 0 0        0 0 0 0 0
# 0 0 0 0 0        0 0 0 0 0
# ```
#
# ### 11.1 The masked convolution
#
# The mask multiplies the weights **in every forward pass**: zeroing the weights once, when the layer
# is built, is not enough, because training moves them again.

# %% solution id=masked_conv
class MaskedConv2d(nn.Conv2d):
    """A 2-D convolution whose output at (i, j) sees only the input positions before (i, j) in
    raster order (the rows above, and the columns to the left in row i), plus (i, j) itself for
    mask_type "B" but not for mask_type "A".

    MaskedConv2d(in_channels, out_channels, kernel_size, mask_type): kernel_size is odd, the
    padding kernel_size // 2 keeps the height and width, and there is a bias (nn.Conv2d's).
    forward(x (B, in_channels, H, W)) -> (B, out_channels, H, W), on x's device.
    Keep the mask in a buffer (self.register_buffer), so that .to(device) moves it with the weights.
    The tests check which input positions change the output at a position, for kernel sizes 3, 5
    and 7 and both types: every allowed position must count, no other may; the hidden tests do it
    again after overwriting the weights (as training would), and run the layer on the meta device.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        if mask_type not in ("A", "B") or kernel_size % 2 == 0:
            raise ValueError(f"mask_type must be 'A' or 'B' and kernel_size odd, got {mask_type!r}, {kernel_size}")
        self.mask_type = mask_type
        ### BEGIN SOLUTION
        mask = torch.ones(kernel_size, kernel_size)
        centre = kernel_size // 2
        mask[centre, centre + (mask_type == "B"):] = 0  # the centre (type A) and everything right of it
        mask[centre + 1:] = 0                            # every row below
        self.register_buffer("mask", mask)
        ### END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        return self._conv_forward(x, self.weight * self.mask, self.bias)
        ### END SOLUTION


# %% test id=test_masked_conv points=3
def _seen_by(layer: nn.Module, x: Tensor, row: int, col: int) -> Tensor:
    """Which input positions of x (1, C, H, W) change the layer's output at (row, col): (H, W) bool."""
    h, w = x.shape[2:]
    seen = torch.zeros(h, w, dtype=torch.bool)
    with torch.no_grad():
        base = layer(x)[0, :, row, col]
        for q in range(h * w):
            moved = x.clone()
            moved[0, :, q // w, q % w] += 1.0
            seen[q // w, q % w] = bool((layer(moved)[0, :, row, col] - base).abs().max() > 1e-6)
    return seen


def _allowed(h: int, w: int, row: int, col: int, kernel_size: int, mask_type: str) -> Tensor:
    """The input positions a masked convolution may and must see from its output at (row, col)."""
    r = kernel_size // 2
    allowed = torch.zeros(h, w, dtype=torch.bool)
    for i in range(max(0, row - r), min(h, row + r + 1)):
        for j in range(max(0, col - r), min(w, col + r + 1)):
            allowed[i, j] = i < row or (i == row and (j < col or (j == col and mask_type == "B")))
    return allowed


def _check_mask(layer: nn.Module, kernel_size: int, mask_type: str, gen: torch.Generator, what: str) -> None:
    x = torch.randn(1, layer.in_channels, 7, 8, generator=gen).to(device)
    for row, col in ((3, 4), (0, 0), (6, 7)):
        seen = _seen_by(layer, x, row, col)
        expected = _allowed(7, 8, row, col, kernel_size, mask_type)
        checks.true(bool(not (seen & ~expected).any()), f"{what}, output at {(row, col)}",
                    f"sees input positions it must not see (1 = seen):\n{seen.int().tolist()}",
                    hint="zero the centre (type A only), the rest of the centre row to its right, and every row below")
        checks.true(bool(not (expected & ~seen).any()), f"{what}, output at {(row, col)}",
                    f"does not see input positions it should (1 = seen, expected):\n{seen.int().tolist()}\n"
                    f"{expected.int().tolist()}", hint="keep every row above, and the positions to the left")


def _test_masked_conv():
    gen = torch.Generator().manual_seed(21)
    torch.manual_seed(21)
    layer = MaskedConv2d(2, 3, 3, "A").to(device)
    y = layer(torch.randn(4, 2, 7, 8, generator=gen).to(device))
    checks.tensor(y, "MaskedConv2d(2, 3, 3, 'A') output", shape=(4, 3, 7, 8), device=device,
                  hint="padding kernel_size // 2 keeps the height and width")
    _check_mask(layer, 3, "A", gen, "MaskedConv2d(2, 3, 3, 'A')")
    _check_mask(MaskedConv2d(2, 3, 5, "B").to(device), 5, "B", gen, "MaskedConv2d(2, 3, 5, 'B')")
    checks.passed("MaskedConv2d")
    ### BEGIN HIDDEN TESTS
    for kernel_size, mask_type in ((5, "A"), (7, "A"), (3, "B"), (7, "B")):
        layer = MaskedConv2d(3, 2, kernel_size, mask_type).to(device)
        # Training moves every weight: the mask must hold for any weights, not just the first ones.
        with torch.no_grad():
            for p in layer.parameters():
                p.normal_(generator=None)
        _check_mask(layer, kernel_size, mask_type, gen, f"MaskedConv2d(3, 2, {kernel_size}, {mask_type!r}) with "
                                                         "new weights (as after training)")
    on_meta = MaskedConv2d(2, 4, 5, "A").to("meta")
    checks.tensor(on_meta(torch.empty(3, 2, 6, 6, device="meta")), "MaskedConv2d on the meta device",
                  shape=(3, 4, 6, 6), device="meta", hint="register the mask as a buffer so that .to() moves it")
    ### END HIDDEN TESTS


_test_masked_conv()

# %% [markdown]
# ### 11.2 Your prior: design it
#
# Design `CodePrior`, an autoregressive prior over 8×8 grids of K codes. **The goal:** at most
# **150,000 parameters** for K = 512, and after the fixed recipe of section 11.4 (Adam at 3e-3,
# batches of 64, one epoch over the training codes at the quick budget, with your `prior_loss`),
# a test negative log-likelihood of at most **85%** of the context-free cost: the NLL of the best
# prior that ignores the context, which draws every code on its own with its frequency in the
# training codes (about ln(perplexity) nats per code).
#
# How you get there is yours. A PixelCNN embeds each code (`nn.Embedding(K, C)`), applies one
# type-A masked convolution, then a few type-B layers with ReLUs between them (a residual
# connection around each helps), and ends with a 1×1 convolution to K logits. A causal
# transformer reads the 64 codes as a sequence shifted by one (a start token first), with a causal
# attention mask. What to weigh: how far back each position can see (a stack of 3×3 masked
# convolutions sees a triangle up and to the left that grows by one row per layer, with a blind
# spot up and to the right), the width, and the time it takes: the reference, a PixelCNN like the
# one sketched above, trains in 10-15 seconds on a laptop CPU at the quick budget and reaches about
# 55% of the context-free cost. The read-only cell after the training draws which codes your
# trained prior looks at.
#
# The tests check causality as behaviour: changing the code at a position, or at any later
# one, must leave the logits at every position up to it unchanged (in eval mode, for any weights:
# the hidden tests also re-draw every parameter); the logits at a position must change with the
# code to its left and the code above it; and section 11.4's test checks the goal.

# %% solution id=code_prior
class CodePrior(nn.Module):
    """An autoregressive prior over grids of codes: your design.

    CodePrior(num_codes) builds it (add keyword arguments with defaults if you like: the recipe calls
    CodePrior(NUM_CODES)). At most 150,000 parameters for num_codes=512.
    forward(codes (B, 8, 8) int64 in [0, num_codes)) -> logits (B, num_codes, 8, 8) float, on the
    codes' device: logits[b, :, i, j] score the code at (i, j) given only the codes before it in
    raster order (every row above, and the columns to the left in row i); they must not depend on
    the code at (i, j) or at any later position. The tests compare logits in eval mode, after
    changing codes, with the weights as built and (hidden) re-drawn; they also check that the
    logits at (i, j) depend on the codes at (i, j - 1) and (i - 1, j).
    """

    def __init__(self, num_codes: int):
        super().__init__()
        ### BEGIN SOLUTION
        channels, layers = 32, 3
        self.embed = nn.Embedding(num_codes, channels)
        self.first = MaskedConv2d(channels, channels, 5, "A")
        self.layers = nn.ModuleList(MaskedConv2d(channels, channels, 3, "B") for _ in range(layers))
        self.head = nn.Conv2d(channels, num_codes, 1)
        ### END SOLUTION

    def forward(self, codes: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        h = self.first(self.embed(codes).permute(0, 3, 1, 2))
        for layer in self.layers:
            h = h + layer(F.relu(h))
        return self.head(F.relu(h))
        ### END SOLUTION


# %% test id=test_code_prior points=3
def _check_causal(prior: nn.Module, codes: Tensor, positions, gen: torch.Generator, what: str, num_codes: int) -> None:
    """Changing the code at a position must leave the logits at that position and every earlier one unchanged."""
    b, h, w = codes.shape
    with torch.no_grad():
        base = prior(codes).reshape(b, num_codes, h * w)
        for t in positions:
            moved = codes.clone().reshape(b, h * w)
            moved[:, t] = (moved[:, t] + torch.randint(1, num_codes, (b,), generator=gen).to(codes.device)) % num_codes
            logits = prior(moved.reshape(b, h, w)).reshape(b, num_codes, h * w)
            change = (logits[:, :, :t + 1] - base[:, :, :t + 1]).abs().amax(dim=(0, 1))
            leaks = [divmod(s, w) for s in range(t + 1) if float(change[s]) > 1e-5]
            checks.true(not leaks, what, f"changing the code at {divmod(t, w)} changed the logits at {leaks}: "
                        "a position's logits may depend only on the codes before it in raster order",
                        hint="the first masked convolution must be type A (no centre); later ones type B")


def _depends_on(prior: nn.Module, codes: Tensor, target: tuple[int, int], source: tuple[int, int],
                num_codes: int) -> bool:
    with torch.no_grad():
        moved = codes.clone()
        moved[:, source[0], source[1]] = (moved[:, source[0], source[1]] + 1) % num_codes
        return bool((prior(moved)[:, :, target[0], target[1]] - prior(codes)[:, :, target[0], target[1]])
                    .abs().max() > 1e-6)


def _test_code_prior():
    gen = torch.Generator().manual_seed(31)
    torch.manual_seed(31)
    prior = CodePrior(16).to(device).eval()
    codes = torch.randint(0, 16, (3, 8, 8), generator=gen).to(device)
    logits = prior(codes)
    checks.tensor(logits, "CodePrior(16) logits for codes (3, 8, 8)", shape=(3, 16, 8, 8), dtype=torch.float32,
                  device=codes.device)
    _check_causal(prior, codes, (0, 10, 27, 36, 63), gen, "CodePrior(16)", 16)
    for target, source in (((3, 4), (3, 3)), ((3, 4), (2, 4)), ((0, 1), (0, 0)), ((1, 0), (0, 0))):
        checks.true(_depends_on(prior, codes, target, source, 16), f"CodePrior(16) logits at {target}",
                    f"do not change with the code at {source}: the prior must look at the codes before a position")
    checks.passed("CodePrior")
    ### BEGIN HIDDEN TESTS
    # Causal at every position, for any weights (as after training), and at K = 512.
    with torch.no_grad():
        for p in prior.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen).to(p.device))
    _check_causal(prior, codes, range(64), gen, "CodePrior(16) with re-drawn weights", 16)
    big = CodePrior(512).to(device).eval()
    big_codes = torch.randint(0, 512, (2, 8, 8), generator=gen).to(device)
    checks.tensor(big(big_codes), "CodePrior(512) logits for codes (2, 8, 8)", shape=(2, 512, 8, 8))
    _check_causal(big, big_codes, (5, 33, 62), gen, "CodePrior(512)", 512)
    ### END HIDDEN TESTS


_test_code_prior()

# %% [markdown]
# ### 11.3 The prior's loss
#
# The prior is a classifier at every position, so its loss is the cross-entropy of its logits
# against the codes themselves: the mean over all positions of $-\ln p(c_t \mid c_{<t})$, the
# **negative log-likelihood in nats per code** (the masks do the shifting: the logits at a
# position never saw the code they are scored against). Divide by ln 2 for bits; times 64, per
# image.

# %% solution id=prior_loss
def prior_loss(prior: nn.Module, codes: Tensor, labels: Tensor) -> Tensor:
    """The negative log-likelihood of a batch of grids under the prior, in nats per code.

    codes: (B, H, W) int64; prior(codes) returns logits (B, K, H, W); labels are not used (the
    form loss_fn(model, images, labels) of the training loop, with grids of codes as the images).
    Returns a scalar tensor with gradient: the mean over the B*H*W positions of
    -log softmax(logits at the position)[the code at the position], in natural log. The tests
    check the value on stand-in priors with fixed logits (uniform logits give ln K), and (hidden)
    that the gradient reaches the prior's parameters.
    """
    ### BEGIN SOLUTION
    return F.cross_entropy(prior(codes), codes)
    ### END SOLUTION


# %% test id=test_prior_loss points=2
class _FixedLogits(nn.Module):
    """A stand-in prior whose logits (K, H, W) are a parameter, the same for every grid."""

    def __init__(self, logits: Tensor):
        super().__init__()
        self.logits = nn.Parameter(logits.clone())

    def forward(self, codes: Tensor) -> Tensor:
        return self.logits.expand(len(codes), *self.logits.shape)


def _test_prior_loss():
    gen = torch.Generator().manual_seed(41)
    logits = torch.randn(5, 2, 3, generator=gen).to(device)
    codes = torch.randint(0, 5, (4, 2, 3), generator=gen).to(device)
    labels = torch.zeros(4, dtype=torch.int64, device=device)
    loss = prior_loss(_FixedLogits(logits), codes, labels)
    log_p = logits.log_softmax(dim=0)
    expected = -sum(float(log_p[codes[b, i, j], i, j]) for b in range(4) for i in range(2) for j in range(3)) / 24
    checks.tensor(loss, "prior_loss(...)", shape=(), device=codes.device, hint="a scalar tensor: the mean")
    checks.close(loss, expected, "prior_loss with fixed logits", atol=1e-5,
                 hint="cross-entropy of the logits (B, K, H, W) against the codes (B, H, W), mean over positions")
    checks.close(prior_loss(_FixedLogits(torch.zeros(7, 2, 2, device=device)), codes[:, :2, :2] % 7, labels),
                 math.log(7), "prior_loss with uniform logits over 7 codes", atol=1e-5,
                 hint="in nats (natural log): uniform logits over K codes cost ln K per code")
    checks.passed("prior_loss")
    ### BEGIN HIDDEN TESTS
    sure = torch.full((5, 2, 3), -30.0, device=device)
    sure.scatter_(0, codes[:1], 30.0)  # all the mass on the first grid's codes
    checks.close(prior_loss(_FixedLogits(sure), codes[:1], labels[:1]), 0.0, "prior_loss of a certain, right prior",
                 atol=1e-5)
    stand_in = _FixedLogits(logits)
    prior_loss(stand_in, codes, labels).backward()
    checks.true(stand_in.logits.grad is not None and bool(stand_in.logits.grad.abs().sum() > 0), "prior_loss",
                "gives the prior no gradient")
    ### END HIDDEN TESTS


_test_prior_loss()

# %% [markdown]
# ### 11.4 Training the prior (the fixed recipe)
#
# The cell below encodes the training images with the final VQ-VAE, trains `CodePrior(NUM_CODES)`
# on their grids of codes with your `prior_loss` and the course's loop, and measures its test
# negative log-likelihood on the codes of the test images. It is read-only: your design is what
# you change. (At the full budget it trains for more epochs, on the codes of all 50,000 images.)

# %% readonly id=train_prior
PRIOR = aelab.by_budget(quick=dict(epochs=1, batch_size=64, lr=3e-3), full=dict(epochs=10, batch_size=64, lr=3e-3))
train_codes = collect_codes(final.encode, cifar.batches("train", batch_size=CONFIG["batch_size"],
                                                       limit=CONFIG["train_images"], shuffle=False))
train_code_batches = code_batches(train_codes, PRIOR["batch_size"], device=train_batches.device)
test_code_batches = code_batches(real_codes, 500, shuffle=False, device=train_batches.device)

aelab.seed_everything()
prior = CodePrior(NUM_CODES).to(train_batches.device)
prior_params = aelab.count_parameters(prior)
prior_history = train(prior, train_code_batches, torch.optim.Adam(prior.parameters(), lr=PRIOR["lr"]),
                      epochs=PRIOR["epochs"], loss_fn=prior_loss, desc="prior")
prior_test_nats = evaluate(prior, test_code_batches, prior_loss)
context_free = context_free_nats(train_codes, real_codes, NUM_CODES)
prior_ratio = prior_test_nats / context_free
aelab.show_table([
    {"model of the test codes": "uniform over all K codes", "nats per code": math.log(NUM_CODES),
     "bits per image": 64 * math.log2(NUM_CODES)},
    {"model of the test codes": "each code on its own, at its training frequency", "nats per code": context_free,
     "bits per image": 64 * context_free / math.log(2)},
    {"model of the test codes": f"your CodePrior ({prior_params:,} parameters)", "nats per code": prior_test_nats,
     "bits per image": 64 * prior_test_nats / math.log(2)},
], title=f"Negative log-likelihood of the {n_test:,} test grids (trained in {prior_history.seconds:.0f} s)")
print(f"your prior's NLL is {prior_ratio:.1%} of the context-free cost (the goal: at most 85%)")
aelab.record("lab05", "prior_test_nats", prior_test_nats)
aelab.record("lab05", "prior_nll_ratio", prior_ratio)
aelab.record("lab05", "prior_seconds", prior_history.seconds)
plot_influence(prior, NUM_CODES, positions=((3, 4), (7, 7)), title="Which codes your trained prior looks at")

# %% test id=test_prior_design points=4
def _test_prior_design():
    checks.needs("prior", "prior_ratio", made_by="the read-only cell of section 11.4, which trains your CodePrior "
                                                 "with your prior_loss")
    n_params = aelab.count_parameters(CodePrior(NUM_CODES))
    checks.true(n_params <= 150_000, "CodePrior(512)", f"has {n_params:,} parameters; the budget is 150,000",
                hint="fewer channels, or smaller kernels (a 7x7 layer of C channels has 49 C^2 weights)")
    # Reference (PixelCNN, 32 channels, a 5x5 type-A layer and three residual 3x3 type-B layers,
    # 86,656 parameters) at the quick budget, 1,000 test images, over seeds 0-19
    # (docs/calibration/quick.md: one thread, AMD EPYC, 2 cores): NLL / context-free NLL
    # 0.468-0.625, worst 0.625 (margin 0.225). Two other designs on the same codes, seeds 0-4: a
    # causal transformer (137,280 parameters) 0.536-0.588, and a plain PixelCNN with a 7x7 type-A
    # layer and no residuals (111,232) 0.598-0.621; threshold 0.85. A prior that ignores the
    # context scores about 1.0. At a larger budget the codes carry more detail and are harder to
    # predict: a VQ-VAE of 64 channels trained twice as long gave 0.67 after one epoch of the
    # prior and 0.62 after three, still well inside.
    checks.less(prior_ratio, 0.85, "test NLL of your prior / test NLL of the context-free prior",
                hint="the prior must predict each code from the codes before it; check prior_loss, and give "
                     "your design a wider view or more width")
    checks.passed("prior design")
    ### BEGIN HIDDEN TESTS
    # A prior that sees the code it predicts reaches a low NLL without learning anything: the goal
    # counts only for a causal prior.
    gen = torch.Generator().manual_seed(51)
    with aelab.evaluating(prior):  # dropout, if the design has it, would change the logits by itself
        _check_causal(prior, real_codes[:4].to(train_batches.device), (0, 9, 35, 63), gen, "your trained prior",
                      NUM_CODES)
    ### END HIDDEN TESTS


_test_prior_design()

# %% [markdown]
# ### 11.5 Drawing new grids
#
# To sample, start from an empty grid (zeros) and fill it in raster order: run the prior on the
# grid so far, turn the logits at the next position into probabilities (a softmax), draw a code
# from them, write it in, and move on. 64 forward passes per batch of grids: generating is slow
# where training was fast, the price of an autoregressive model.

# %% solution id=sample_codes
@torch.no_grad()
def sample_codes(prior: nn.Module, num_samples: int, height: int = 8, width: int = 8, *,
                 device: torch.device | str = "cpu") -> Tensor:
    """Draw num_samples grids of codes from the prior, one position at a time in raster order.

    Start from a (num_samples, height, width) int64 grid of zeros on `device`; for each position
    (row by row, left to right), run prior(grid) (logits (num_samples, K, height, width)), draw the
    code at that position from the softmax of its logits (torch.multinomial), and write it into the
    grid before moving on. Returns the grid, int64 on `device`. Call it with the prior in eval mode.
    The tests use stand-in priors: one whose every logit depends on the codes drawn before it
    (the grid must come out exactly as it dictates), and (hidden) one with fixed probabilities,
    whose frequencies over many draws must match them.
    """
    ### BEGIN SOLUTION
    grid = torch.zeros(num_samples, height, width, dtype=torch.int64, device=device)
    for i in range(height):
        for j in range(width):
            probs = prior(grid)[:, :, i, j].softmax(dim=1)
            grid[:, i, j] = torch.multinomial(probs, 1).squeeze(1)
    return grid
    ### END SOLUTION


# %% test id=test_sample_codes points=3
class _CountingPrior(nn.Module):
    """A causal stand-in prior: at each position, all the probability on (1 + the sum of the codes
    before it in raster order) mod K."""

    def __init__(self, num_codes: int):
        super().__init__()
        self.num_codes = num_codes

    def forward(self, codes: Tensor) -> Tensor:
        b, h, w = codes.shape
        flat = codes.reshape(b, h * w)
        before = flat.cumsum(dim=1) - flat
        target = (1 + before) % self.num_codes
        logits = torch.full((b, h * w, self.num_codes), -1e4, device=codes.device)
        logits.scatter_(2, target[:, :, None], 0.0)
        return logits.permute(0, 2, 1).reshape(b, self.num_codes, h, w)


class _FixedProbabilities(nn.Module):
    """A stand-in prior with the same probabilities at every position, whatever the codes."""

    def __init__(self, probs: list[float]):
        super().__init__()
        self.log_probs = torch.tensor(probs).log()

    def forward(self, codes: Tensor) -> Tensor:
        b, h, w = codes.shape
        return self.log_probs.to(codes.device)[None, :, None, None].expand(b, -1, h, w)


def _test_sample_codes():
    grids = sample_codes(_CountingPrior(7), 2, 3, 4, device=device)
    checks.tensor(grids, "sample_codes(prior, 2, 3, 4)", shape=(2, 3, 4), dtype=torch.int64, device=device)
    expected, total = [], 0
    for _ in range(12):
        code = (1 + total) % 7
        expected.append(code)
        total += code
    checks.true(bool((grids.cpu() == torch.tensor(expected).reshape(1, 3, 4)).all()), "sample_codes",
                f"gave\n{grids[0].tolist()}\nbut the stand-in prior dictates\n{torch.tensor(expected).reshape(3, 4).tolist()}",
                hint="run the prior again after writing each code, and read the logits at the position you fill")
    checks.passed("sample_codes")
    ### BEGIN HIDDEN TESTS
    torch.manual_seed(61)
    draws = sample_codes(_FixedProbabilities([0.1, 0.2, 0.7]), 200, 8, 8, device=device)
    checks.tensor(draws, "sample_codes(prior with fixed probabilities, 200)", shape=(200, 8, 8), dtype=torch.int64)
    freq = torch.bincount(draws.reshape(-1).cpu(), minlength=3).double() / draws.numel()
    checks.close(freq, torch.tensor([0.1, 0.2, 0.7]), "frequencies of the sampled codes", atol=0.03,
                 hint="draw from softmax(logits) with torch.multinomial; argmax would always pick the likeliest")
    ### END HIDDEN TESTS


_test_sample_codes()

# %% [markdown]
# ### 11.6 Samples from your prior
#
# Decode grids drawn from your prior, beside the codes of real images and the random grids of
# section 10. Compare the rows: where the random grids decode to texture, a prior that learned
# how neighbouring codes go together gives larger coherent regions, such as a bright band above
# a darker one or a blob of one colour on a plain background. At the quick budget the prior is
# small and sees one epoch of codes: expect the layout of a photograph, not objects. The full
# budget's longer training of both models does better.

# %%
prior.eval()
aelab.seed_everything()
prior_grids = sample_codes(prior, 10, device=train_batches.device)
show_code_samples(final.decode_codes, real_codes, NUM_CODES, counts=final_result["counts"], n=10,
                  extra={"learned prior": prior_grids},
                  title="Decoding codes: real ones, drawn from your prior, and random grids")

# %% [markdown]
# ## 12. In your own words
#
# Compare the VQ-VAE with the plain autoencoder of section 8, and the prior's samples with the
# random grids. What does the discrete latent space cost, and what does it buy? Use your numbers:
# the reconstruction errors, the size of the latent in bits, the prior's negative log-likelihood
# against the context-free cost, and what the decoded samples look like. Why does a VQ-VAE need
# the codebook and commitment losses, when a plain autoencoder needs neither?

# %% [markdown] answer id=answer_discrete_vs_continuous points=3
# The discrete latent costs reconstruction quality, at least with enough training: the plain
# autoencoder passes 64 × D real numbers (thousands of bits) and the VQ-VAE only 64 codes of 9
# bits (576 bits), rounding every encoder output to one of K vectors; after the quick budget's few
# hundred steps the two errors can still be close, since neither model is near what its latent
# carries. In exchange each image becomes a short grid of symbols: a compact, lossy compression,
# and, above all, a representation on which a prior is easy to learn. The prior is a classifier
# over K codes at each position, trained with a cross-entropy like a language model; one forward
# pass scores all 64 positions thanks to the masks. Its test NLL is well below that of the
# context-free prior (about ln(perplexity), the cost of drawing each code on its own with its
# frequency): that gap is the structure between neighbouring codes, and
# it is why its samples show coherent regions where independent random codes give only texture
# (a continuous latent would need a density model of a complicated high-dimensional distribution
# instead). The extra losses exist because the argmin has no gradient: the straight-through
# estimator trains the encoder, but nothing else would move the codebook (the codebook loss pulls
# chosen codes towards the encoder outputs) or stop the encoder outputs from drifting away from
# the codes and growing (the commitment loss). A plain autoencoder is differentiable end to end.

# %% [markdown]
# ## Closing note: the full-budget figures
#
# On a GPU at the full budget (`AELAB_BUDGET=full`) the final model is the original VQ-VAE's size
# (128 hidden channels, 2 residual blocks, D = 64, K = 512) trained for 40 epochs with batches of
# 128 and dead-code restarts, and the prior trains for 10 epochs on the codes of all 50,000
# training images. The targets, against the anchor of zalando's widely used PyTorch VQ-VAE (its
# normalised error corrected to one scale, 25k steps of 256 images):
#
# | | target | anchor |
# |---|---|---|
# | normalised test MSE | ≤ 0.05 | about 0.055 |
# | perplexity (of 512 codes) | ≥ 400 | about 355 |
# | training time on one GPU | under 5 minutes | |
#
# The cell below prints this run's numbers next to them.

# %%
aelab.show_table([
    {"figure": "normalised test MSE", "this run": final_result["nmse"], "target": "<= 0.05", "anchor": "about 0.055"},
    {"figure": f"perplexity (of {NUM_CODES})", "this run": final_result["perplexity"], "target": ">= 400",
     "anchor": "about 355"},
    {"figure": "training time (s)", "this run": final_history.seconds, "target": "< 300", "anchor": ""},
    {"figure": "prior: test NLL (nats per code)", "this run": prior_test_nats, "target": "", "anchor": ""},
], title=f"Final model at the {aelab.budget()} budget on {aelab.get_device()}, {n_test:,} test images")

# %% [markdown]
# ## Making it fast
#
# The VQ-VAE is the course's one convolution-heavy model, on colour images. `make bench` times it
# against the course notes' pipeline (a torchvision `Dataset` that makes a PIL image of each
# sample and converts it with `ToTensor`, and a `DataLoader` at batch 64), switches each
# technique below on by itself, and writes the table to `build/bench.md`. What matters here:
#
# * **On a CPU the convolutions and the nearest-code search dominate** and the pipeline hardly
#   matters: the benchmark's CPU rows show it.
# * **Data on the GPU.** The 50,000 training images are 150 MB as uint8: they fit on any GPU, and
#   `cifar.batches` keeps them there instead of copying every batch over.
# * **channels_last and mixed precision pay most here**: convolutions with 32 to 128 channels are
#   what tensor cores are built for, in NHWC layout and with bf16 or fp16 numbers.
# * **Keep the nearest-code search in float32.** In bf16 the distances ||z||² − 2 z·e + ||e||² of
#   two nearby codes can round to the same number, and the argmin then picks by rounding rather
#   than by distance; the benchmark's copy of the quantizer switches autocast off around it.
# * **Bigger batches** (the full budget already uses 128) with a learning rate scaled to match; the
#   codebook keeps its 10× step.
# * **Sampling the prior** runs it 64 times per batch of grids: draw many grids in one batch
#   rather than one at a time. A transformer prior can also keep the keys and values of the
#   positions already drawn (a KV cache) instead of recomputing them.
# * **torch.compile** pays back its compile time over the full budget's 40 epochs, not over the
#   quick budget's few hundred steps.
