# %% [markdown]
# # Lab 05 — VQ-VAE on CIFAR-10: a discrete latent space
#
# **You will:** build a vector-quantised autoencoder (VQ-VAE, van den Oord et al., 2017). Its
# encoder turns a 32×32 colour image into an 8×8 grid of vectors; a *quantizer* replaces each
# vector by the nearest entry of a learned **codebook** of K vectors, so the image becomes 64
# integers; the decoder rebuilds the image from those. You will write the quantizer's nearest-code
# search, pass gradients through it with the **straight-through estimator**, train the codebook with
# the **codebook** and **commitment** losses, measure how many codes the model actually uses, and
# revive the dead ones.
#
# **Time:** about 90 minutes. At the quick budget (a CPU) every model trains for a few hundred
# steps, enough to see each effect; at the full budget (a GPU) the main model trains for a few minutes.
#
# **How this notebook works.** Cells marked `# YOUR CODE HERE` are yours. Each is followed by a
# test cell: run it to check your work. The tests you see are a subset; the autograder runs
# more. Do not rename functions or change their arguments.

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

aelab.seed_everything()
cifar = aelab.load_cifar10()
print(cifar.describe())

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

# %%
DATA_VARIANCE = train_variance(cifar)
print(f"variance of the training pixels on the [0, 1] scale: {DATA_VARIANCE:.4f}")

# %% [markdown]
# ## 1. The encoder
#
# The encoder halves the resolution twice with strided 4×4 convolutions (32 → 16 → 8), then
# refines the 8×8 grid with **residual blocks**: each adds a small correction to its input,
# $x + f(x)$, so a deep stack starts out close to the identity and trains easily. A final 1×1
# convolution maps the features to `code_dim`-dimensional vectors $z_e$, one per grid position.

# %% solution id=encoder
class ResidualBlock(nn.Module):
    """x (B, channels, H, W) -> x + f(x), same shape, with no activation after the sum.

    f = ReLU -> Conv2d 3x3 (channels -> hidden, padding 1) -> ReLU -> Conv2d 1x1 (hidden -> channels).
    Keep f in an attribute named `block` (an nn.Sequential).
    """

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        ### BEGIN SOLUTION
        self.block = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, hidden, 3, padding=1),
                                   nn.ReLU(), nn.Conv2d(hidden, channels, 1))
        ### END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        return x + self.block(x)
        ### END SOLUTION


class Encoder(nn.Module):
    """Images (B, 3, 32, 32) in [0, 1] -> encoder outputs z_e (B, code_dim, 8, 8).

    Conv2d 4x4 stride 2 padding 1 (3 -> hidden // 2), ReLU,
    Conv2d 4x4 stride 2 padding 1 (hidden // 2 -> hidden), ReLU,
    Conv2d 3x3 padding 1 (hidden -> hidden),
    `num_residual` ResidualBlock(hidden, hidden // 2), ReLU,
    Conv2d 1x1 (hidden -> code_dim).
    """

    def __init__(self, code_dim: int = 64, hidden: int = 128, num_residual: int = 2):
        super().__init__()
        ### BEGIN SOLUTION
        self.net = nn.Sequential(
            nn.Conv2d(3, hidden // 2, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(hidden // 2, hidden, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            *[ResidualBlock(hidden, hidden // 2) for _ in range(num_residual)], nn.ReLU(),
            nn.Conv2d(hidden, code_dim, 1),
        )
        ### END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        return self.net(x)
        ### END SOLUTION


# %% test id=test_encoder points=2
for batch, code_dim, hidden, num_residual in ((1, 8, 16, 1), (5, 16, 32, 2), (2, 64, 32, 0)):
    z = Encoder(code_dim, hidden, num_residual)(torch.rand(batch, 3, 32, 32))
    checks.tensor(z, f"Encoder({code_dim}, {hidden}, {num_residual}) output for a batch of {batch}",
                  shape=(batch, code_dim, 8, 8), hint="two stride-2 convolutions take 32x32 to 8x8")
block = ResidualBlock(6, 3)
x = torch.randn(4, 6, 5, 7)
checks.tensor(block(x), "ResidualBlock(6, 3) output", shape=(4, 6, 5, 7))
checks.passed("ResidualBlock and Encoder")
### BEGIN HIDDEN TESTS
# With every weight and bias of f at zero, a residual block is exactly the identity, negative
# inputs included (an activation after the sum would clip them).
with torch.no_grad():
    for p in block.parameters():
        p.zero_()
checks.close(block(x), x, "ResidualBlock with f = 0", atol=1e-6,
             hint="return x + self.block(x), with no activation after the sum")
# ... and with weights it is not: f must take part.
checks.tensor(Encoder(4, 8, 1)(torch.rand(3, 3, 32, 32)), "Encoder(4, 8, 1) output", shape=(3, 4, 8, 8))
block = ResidualBlock(6, 3)
checks.true(bool((block(x) - x).abs().max() > 1e-4), "ResidualBlock", "returns its input unchanged; add f(x)")
### END HIDDEN TESTS

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

# %% solution id=squared_distances
def squared_distances(z: Tensor, codebook: Tensor) -> Tensor:
    """Squared Euclidean distances between every row of z (N, D) and every code, row of codebook (K, D).

    Returns an (N, K) tensor: entry [n, k] = ||z[n] - codebook[k]||^2, computed as
    ||z||^2 - 2 z.e + ||e||^2, without building any (N, K, D) tensor.
    """
    ### BEGIN SOLUTION
    return z.pow(2).sum(dim=1, keepdim=True) - 2 * z @ codebook.T + codebook.pow(2).sum(dim=1)
    ### END SOLUTION


# %% test id=test_squared_distances points=2
gen = torch.Generator().manual_seed(3)
z_small, e_small = torch.randn(6, 4, generator=gen), torch.randn(5, 4, generator=gen)
d_small = squared_distances(z_small, e_small)
checks.tensor(d_small, "squared_distances(z (6, 4), codebook (5, 4))", shape=(6, 5))
checks.close(d_small[2, 3], float(((z_small[2] - e_small[3]) ** 2).sum()), "distance from z[2] to code 3",
             atol=1e-4, hint="||z||^2 - 2 z.e + ||e||^2, with the norms summed over the D dimension")
checks.passed("squared_distances")
### BEGIN HIDDEN TESTS
brute = ((z_small[:, None, :] - e_small[None, :, :]) ** 2).sum(-1)
checks.close(d_small, brute, "squared_distances vs brute force", atol=1e-4,
             hint="all three terms are needed: ||z||^2 - 2 z.e + ||e||^2")
# No (N, K, D) tensor: the largest tensor it builds for N=256, K=128, D=32 must be far smaller
# than N*K*D = 1,048,576 numbers (N*K = 32,768 is what the answer itself takes).
z_big, e_big = torch.randn(256, 32, generator=gen), torch.randn(128, 32, generator=gen)
d_big, largest, largest_shape = largest_intermediate(squared_distances, z_big, e_big)
checks.less(largest, 256 * 128 * 32 // 4, "the largest tensor squared_distances builds (number of elements)",
            hint=f"it built one of shape {largest_shape}; expand the square instead of subtracting every pair")
checks.close(d_big, torch.cdist(z_big.double(), e_big.double()) ** 2, "squared_distances (256, 128)", atol=1e-3)
### END HIDDEN TESTS

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

    forward(z_e (B, D, H, W) float) returns a tuple (z_q, codes, codebook_loss, commitment_loss):
        z_q: (B, D, H, W), the value of the nearest codes, with the gradient passed straight to z_e;
        codes: (B, H, W) int64, the index of the nearest code at each position;
        codebook_loss: scalar, mean over all elements of (sg[z_e] - e)^2 (gradient to the codebook only);
        commitment_loss: scalar, beta * mean of (z_e - sg[e])^2 (gradient to z_e only).
    Use squared_distances for the nearest-code search.
    """

    def __init__(self, num_codes: int, code_dim: int, beta: float = 0.25):
        super().__init__()
        self.num_codes, self.code_dim, self.beta = num_codes, code_dim, beta
        # The K codes are the rows of self.codebook.weight (K, D). They start tiny and close
        # together, as in the original implementation; section 6 shows what that costs.
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
def brute_force_codes(z_e: Tensor, codebook: Tensor) -> Tensor:
    """The nearest code at every position of z_e (B, D, H, W), trying every pair."""
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
    return ((flat[:, None, :] - codebook[None]) ** 2).sum(-1).argmin(1).view(z_e.shape[0], *z_e.shape[2:])


gen = torch.Generator().manual_seed(0)
vq = VectorQuantizer(num_codes=7, code_dim=4)
with torch.no_grad():
    vq.codebook.weight.copy_(torch.randn(7, 4, generator=gen))
z_e = torch.randn(2, 4, 3, 5, generator=gen)  # H != W, so a transposed grid shows
out = vq(z_e)
checks.true(type(out) is tuple and len(out) == 4, "VectorQuantizer output",
            "must be a tuple (z_q, codes, codebook_loss, commitment_loss)")
z_q, codes, codebook_loss, commitment_loss = out
checks.tensor(z_q, "z_q", shape=(2, 4, 3, 5))
checks.tensor(codes, "codes", shape=(2, 3, 5), dtype=torch.int64, hint="argmin returns int64 indices")
expected_codes = brute_force_codes(z_e, vq.codebook.weight.detach())
checks.true(bool((codes == expected_codes).all()), "codes",
            f"are not the nearest codes: expected\n{expected_codes.tolist()}\ngot\n{codes.tolist()}",
            hint="argmin (not argmax) of the squared distances, one row per grid position in (B, H, W) order")
checks.close(z_q, vq.codebook.weight.detach()[expected_codes].permute(0, 3, 1, 2), "z_q values", atol=1e-5,
             hint="the forward value of z_q is the nearest code itself")
checks.passed("nearest codes")
### BEGIN HIDDEN TESTS
for batch, dim, h, w, k in ((1, 3, 2, 2, 4), (6, 8, 4, 3, 33)):
    vq_h = VectorQuantizer(k, dim)
    with torch.no_grad():
        vq_h.codebook.weight.copy_(torch.randn(k, dim, generator=gen))
    z_h = torch.randn(batch, dim, h, w, generator=gen) * 2
    zq_h, codes_h, _, _ = vq_h(z_h)
    ref = brute_force_codes(z_h, vq_h.codebook.weight.detach())
    checks.tensor(codes_h, f"codes for z_e of shape {(batch, dim, h, w)}", shape=(batch, h, w), dtype=torch.int64)
    checks.true(bool((codes_h == ref).all()), f"codes for z_e of shape {(batch, dim, h, w)}",
                "are not the nearest codes")
    checks.close(zq_h, vq_h.codebook.weight.detach()[ref].permute(0, 3, 1, 2),
                 f"z_q for z_e of shape {(batch, dim, h, w)}", atol=1e-5)
# The loss values: mean squared distance to the chosen codes, times beta for the commitment.
gap = float(((z_e - vq.codebook.weight.detach()[expected_codes].permute(0, 3, 1, 2)) ** 2).mean())
checks.close(codebook_loss, gap, "codebook_loss on the fixed input", atol=1e-5)
checks.close(commitment_loss, 0.25 * gap, "commitment_loss on the fixed input", atol=1e-5,
             hint="beta = 0.25 multiplies the commitment loss only")
### END HIDDEN TESTS

# %% test id=test_straight_through points=2
# The gradient reaching z_e must be exactly the gradient arriving at z_q.
z_e = torch.randn(2, 4, 3, 5, generator=gen, requires_grad=True)
z_q, codes, _, _ = vq(z_e)
upstream = torch.randn(2, 4, 3, 5, generator=gen)
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
vq.codebook.weight.grad = None
### END HIDDEN TESTS

# %% test id=test_which_loss_updates_what points=3
def gradients_of(loss_index: int) -> tuple[Tensor | None, Tensor | None]:
    """Backpropagate one of the quantizer's losses on a fixed input; return (grad at z_e, grad at the codebook)."""
    vq.codebook.weight.grad = None
    z = z_fixed.clone().requires_grad_(True)
    vq(z)[loss_index].backward()
    return z.grad, vq.codebook.weight.grad


def is_zero(grad: Tensor | None) -> bool:
    return grad is None or bool((grad == 0).all())


z_fixed = torch.randn(2, 4, 3, 5, generator=gen)
enc_grad, book_grad = gradients_of(2)  # the codebook loss
checks.true(is_zero(enc_grad), "gradient of codebook_loss at z_e", "must be zero: the encoder must not learn from it",
            hint="codebook_loss = mse(e, z_e.detach())")
checks.true(not is_zero(book_grad), "gradient of codebook_loss at the codebook", "is zero, but the codebook learns from it")
enc_grad, book_grad = gradients_of(3)  # the commitment loss
checks.true(is_zero(book_grad), "gradient of commitment_loss at the codebook",
            "must be zero: the codebook must not learn from it", hint="commitment_loss = beta * mse(z_e, e.detach())")
checks.true(not is_zero(enc_grad), "gradient of commitment_loss at z_e", "is zero, but the encoder learns from it")
checks.passed("which loss updates what")
### BEGIN HIDDEN TESTS
# Exact gradients, from a reference written out by hand.
codebook = vq.codebook.weight.detach()
ref_codes = brute_force_codes(z_fixed, codebook)
e_fixed = codebook[ref_codes].permute(0, 3, 1, 2)
enc_grad, _ = gradients_of(3)
checks.close(enc_grad, 0.25 * 2 * (z_fixed - e_fixed) / z_fixed.numel(), "gradient of commitment_loss at z_e",
             atol=1e-6, hint="beta * mean((z_e - sg[e])^2), with beta = 0.25")
_, book_grad = gradients_of(2)
ref_book = torch.zeros_like(codebook).index_add_(
    0, ref_codes.reshape(-1), (2 * (e_fixed - z_fixed) / z_fixed.numel()).permute(0, 2, 3, 1).reshape(-1, 4))
checks.close(book_grad, ref_book, "gradient of codebook_loss at the codebook", atol=1e-6,
             hint="mean((sg[z_e] - e)^2), with no beta")
vq.codebook.weight.grad = None
### END HIDDEN TESTS

# %% [markdown]
# ## 3. The decoder
#
# The decoder mirrors the encoder: a 3×3 convolution from the codes' dimension up to `hidden`
# channels, residual blocks, then two **transposed convolutions** of stride 2 that double the
# resolution each (8 → 16 → 32). Its output has no activation: the loss pulls it into [0, 1], and
# the figures clip it there.

# %% solution id=decoder
class Decoder(nn.Module):
    """Quantised grids (B, code_dim, 8, 8) -> images (B, 3, 32, 32).

    Conv2d 3x3 padding 1 (code_dim -> hidden),
    `num_residual` ResidualBlock(hidden, hidden // 2), ReLU,
    ConvTranspose2d 4x4 stride 2 padding 1 (hidden -> hidden // 2), ReLU,
    ConvTranspose2d 4x4 stride 2 padding 1 (hidden // 2 -> 3), no activation after it.
    """

    def __init__(self, code_dim: int = 64, hidden: int = 128, num_residual: int = 2):
        super().__init__()
        ### BEGIN SOLUTION
        self.net = nn.Sequential(
            nn.Conv2d(code_dim, hidden, 3, padding=1),
            *[ResidualBlock(hidden, hidden // 2) for _ in range(num_residual)], nn.ReLU(),
            nn.ConvTranspose2d(hidden, hidden // 2, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(hidden // 2, 3, 4, stride=2, padding=1),
        )
        ### END SOLUTION

    def forward(self, z_q: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        return self.net(z_q)
        ### END SOLUTION


# %% test id=test_decoder points=1
for batch, code_dim, hidden, num_residual in ((1, 8, 16, 1), (5, 16, 32, 2)):
    x_hat = Decoder(code_dim, hidden, num_residual)(torch.randn(batch, code_dim, 8, 8))
    checks.tensor(x_hat, f"Decoder({code_dim}, {hidden}, {num_residual}) output for a batch of {batch}",
                  shape=(batch, 3, 32, 32), hint="two stride-2 transposed convolutions take 8x8 to 32x32")
checks.passed("Decoder")
### BEGIN HIDDEN TESTS
x_hat = Decoder(64, 32, 0)(torch.randn(3, 64, 8, 8))
checks.tensor(x_hat, "Decoder(64, 32, 0) output", shape=(3, 3, 32, 32))
checks.true(bool(x_hat.std() > 0), "Decoder output", "is constant; the input must reach the output")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. The whole model and its loss
#
# The model below wires your three parts together. `encode` gives the codes of a batch of images and
# `decode_codes` turns any grid of codes back into images, which section 8 uses.
#
# The training loss adds three terms: the reconstruction error, **divided by the data variance**
# as in the original VQ-VAE (which sets how much it weighs against the other two), the codebook
# loss and the commitment loss. Write it in the form `aelab.fit` expects,
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
    commitment_loss); labels are not used.
    """
    ### BEGIN SOLUTION
    reconstruction, _, codebook_loss, commitment_loss = model(images)
    return F.mse_loss(reconstruction, images) / DATA_VARIANCE + codebook_loss + commitment_loss
    ### END SOLUTION


# %% test id=test_vqvae_loss points=2
class FixedOutputs(nn.Module):
    """A stand-in model that returns fixed outputs, so the loss has a known value."""

    def __init__(self, reconstruction: Tensor, codebook_loss: float, commitment_loss: float):
        super().__init__()
        self.reconstruction = reconstruction
        self.losses = torch.tensor(codebook_loss), torch.tensor(commitment_loss)

    def forward(self, images: Tensor):
        codes = torch.zeros(len(images), 8, 8, dtype=torch.int64)
        return self.reconstruction, codes, *self.losses


checks.between(DATA_VARIANCE, 0.060, 0.066, "DATA_VARIANCE", hint="the variance of the training pixels on [0, 1]")
gen = torch.Generator().manual_seed(5)
images = torch.rand(4, 3, 32, 32, generator=gen)
recon = (images + 0.1 * torch.randn(4, 3, 32, 32, generator=gen)).clamp(0, 1)
loss = vqvae_loss(FixedOutputs(recon, 0.3, 0.05), images, torch.zeros(4, dtype=torch.int64))
expected = float(((recon - images) ** 2).mean()) / DATA_VARIANCE + 0.3 + 0.05
checks.close(loss, expected, "vqvae_loss on fixed outputs", atol=1e-4,
             hint="mse(reconstruction, images) / DATA_VARIANCE + codebook_loss + commitment_loss, all on [0, 1]")
checks.passed("vqvae_loss")
### BEGIN HIDDEN TESTS
loss = vqvae_loss(FixedOutputs(images.clone(), 0.0, 0.0), images, torch.zeros(4, dtype=torch.int64))
checks.close(loss, 0.0, "vqvae_loss of a perfect reconstruction with no quantisation losses", atol=1e-7)
recon2 = (images + 0.05).clamp(0, 1)
loss = vqvae_loss(FixedOutputs(recon2, 1.5, 0.2), images, torch.zeros(4, dtype=torch.int64))
checks.close(loss, float(((recon2 - images) ** 2).mean()) / DATA_VARIANCE + 1.7, "vqvae_loss on other fixed outputs",
             atol=1e-4, hint="the error and the variance must be on the same [0, 1] scale")
# The gradient flows: a real model's parameters get one.
tiny = VQVAE(num_codes=8, code_dim=4, hidden=8, num_residual=1)
vqvae_loss(tiny, images[:2], torch.zeros(2, dtype=torch.int64)).backward()
checks.true(any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in tiny.decoder.parameters()),
            "vqvae_loss", "gives the decoder no gradient")
checks.true(any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in tiny.encoder.parameters()),
            "vqvae_loss", "gives the encoder no gradient")
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Measuring codebook health: perplexity
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

# %% solution id=perplexity
def perplexity(counts: Tensor) -> float:
    """exp(entropy) of the code-usage distribution p = counts / counts.sum(), in natural log, 0 log 0 = 0.

    counts: (K,) how often each code was chosen (integers or floats, not all zero).
    Returns a Python float between 1 and K.
    """
    ### BEGIN SOLUTION
    p = counts.double() / counts.sum()
    p = p[p > 0]  # 0 log 0 = 0: unused codes add nothing, and log(0) would give NaN
    return float(torch.exp(-(p * p.log()).sum()))
    ### END SOLUTION


# %% test id=test_perplexity points=2
checks.close(perplexity(torch.tensor([3, 3, 3, 3])), 4.0, "perplexity of uniform use of 4 codes", atol=1e-6)
checks.close(perplexity(torch.tensor([9, 0, 0, 0, 0])), 1.0, "perplexity with a single code in use", atol=1e-6,
             hint="unused codes contribute 0 log 0 = 0: leave them out before taking the log")
checks.close(perplexity(torch.tensor([2, 1, 1, 0])), 2 ** 1.5, "perplexity of counts [2, 1, 1, 0]", atol=1e-5,
             hint="p = counts / counts.sum(), entropy in natural log, then exp")
checks.passed("perplexity")
### BEGIN HIDDEN TESTS
import numpy as np

counts_h = torch.tensor([40.0, 0.0, 7.0, 1.0, 0.0, 12.5, 3.0])
p_h = counts_h.numpy() / counts_h.numpy().sum()
p_h = p_h[p_h > 0]
checks.close(perplexity(counts_h), float(np.exp(-(p_h * np.log(p_h)).sum())), "perplexity of float counts", atol=1e-5)
checks.close(perplexity(torch.tensor([5, 0, 2, 0, 1]) * 1000), perplexity(torch.tensor([5, 0, 2, 0, 1])),
             "perplexity of counts scaled by 1000", atol=1e-6, hint="normalise the counts to probabilities")
checks.close(perplexity(torch.ones(512, dtype=torch.int64)), 512.0, "perplexity of uniform use of 512 codes", atol=1e-3)
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Training, and what goes wrong
#
# Train the VQ-VAE with K = 512 codes. `aelab.fit` runs the loop with your `vqvae_loss`. Then count
# the codes it uses on the test images.
#
# The quick budget (CPU) trains small models for a few hundred steps on part of the training set;
# the full budget (GPU) trains bigger ones on all of it. All the comparisons in sections 6–9 use the
# same budget, `SIDE_EPOCHS`; section 10 trains the final model longer.
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
SIDE_EPOCHS = aelab.by_budget(quick=1, full=8)    # sections 6-9
MAIN_EPOCHS = aelab.by_budget(quick=1, full=40)   # section 10
NUM_CODES = 512

train_batches = cifar.batches("train", batch_size=CONFIG["batch_size"], limit=CONFIG["train_images"])
test_batches = cifar.batches("test", batch_size=500)
n_test = test_batches.num_images


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
    """Train `model` (default: a fresh VQ-VAE); with `restart`, apply it to the dead codes every few steps."""
    model = model if model is not None else make_vqvae(num_codes)
    loss_fn, restarts = vqvae_loss, None
    if restart is not None:
        restarts = DeadCodeRestarts(model.quantizer, model.quantizer.codebook.weight, restart,
                                    every=CONFIG["restart_every"])
        loss_fn = restarts.wrap(vqvae_loss)
    history = aelab.fit(model, train_batches, epochs=epochs, optimizer=make_optimizer(model), loss_fn=loss_fn,
                        desc=desc)
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
plot_code_usage({"no remedy": before["counts"]}, title="Codebook usage on the test images")

# %% test id=test_baseline_training points=1
# Thresholds measured on the reference at the quick budget over 5 seeds (AELAB_SEED=0..4, one thread).
# Without a remedy the total loss can lurch up and down while a few codes take over, so this checks
# the reconstruction: untrained, its normalised test error is about 4.
# Normalised test MSE: worst 0.235 over the seeds; threshold 0.40 (margin 0.165).
checks.less(before["nmse"], 0.40, "normalised test MSE without a remedy",
            hint="check the encoder, the decoder, the loss and the straight-through estimator")
# Perplexity: worst 19.9 (of 512); floor 8 (margin 11.9). An entropy without the exp stays below 5.
checks.greater(before["perplexity"], 8.0, "perplexity without a remedy",
               hint="count the codes of the test images and check the perplexity formula")
checks.passed("training without a remedy")

# %% [markdown]
# Most of the codebook is dead. The codes start tiny and bunched together near zero while the
# encoder's outputs grow: after a few steps only the codes nearest to where the outputs landed
# are ever chosen, only those get the codebook loss's gradient, and the rest stay where they
# started, out of reach, for good.
#
# ## 7. A remedy: restart dead codes from encoder outputs
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
    Each dead code gets a different row of encoder_outputs (pick them with torch.randperm); the
    other codes stay as they are. Returns the number of codes restarted, as an int.
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
def rows_found_in(rows: Tensor, pool: Tensor) -> Tensor:
    """For each row of `rows`, the distance to the nearest row of `pool` (0 when it is one of them)."""
    return torch.cdist(rows.double(), pool.double()).min(dim=1).values


gen = torch.Generator().manual_seed(11)
book = torch.randn(10, 3, generator=gen)
book_before = book.clone()
usage = torch.tensor([3, 0, 1, 0, 0, 7, 2, 0, 1, 0])
pool = torch.randn(50, 3, generator=gen) + 10.0  # far from every code, so a restarted code shows
moved = restart_dead_codes(book, usage, pool)
checks.close(moved, 5.0, "restart_dead_codes(...) return value", hint="the number of codes with a count of 0")
alive = usage > 0
checks.close(book[alive], book_before[alive], "the codes in use after restart_dead_codes",
             hint="only the codes with a count of 0 may change")
checks.close(rows_found_in(book[~alive], pool), torch.zeros(5), "distance from each restarted code to the encoder outputs",
             atol=1e-5, hint="set each dead code to a row of encoder_outputs, in place (codebook[dead] = ...)")
checks.passed("restart_dead_codes")
### BEGIN HIDDEN TESTS
restarted_rows = book[~alive]
checks.true(bool(torch.unique(restarted_rows, dim=0).shape[0] == 5), "restarted codes",
            "must each get a different encoder output", hint="torch.randperm(N)[:n_dead] picks distinct rows")
book2 = torch.randn(6, 2, generator=gen)
book2_before = book2.clone()
checks.close(restart_dead_codes(book2, torch.ones(6, dtype=torch.int64), pool[:, :2]), 0.0,
             "restart_dead_codes with no dead code")
checks.close(book2, book2_before, "codebook with no dead code")
book3 = torch.zeros(6, 2)
checks.close(restart_dead_codes(book3, torch.zeros(6), pool[:8, :2]), 6.0, "restart_dead_codes with every code dead")
checks.close(rows_found_in(book3, pool[:8, :2]), torch.zeros(6), "codes restarted from 8 outputs", atol=1e-5)
checks.true(type(moved) is int, "restart_dead_codes(...)", f"must return an int, got {type(moved).__name__}")
### END HIDDEN TESTS

# %% [markdown]
# Train the same model again, now with restarts, and compare.

# %%
restarted = make_vqvae()
untrained_loss = aelab.evaluate(restarted, test_batches, vqvae_loss)
restarted, restarted_history, restarts = train_vqvae(model=restarted, restart=restart_dead_codes,
                                                     desc="VQ-VAE, restarts")
restarted_loss = aelab.evaluate(restarted, test_batches, vqvae_loss)
print(f"test loss {untrained_loss:.3f} untrained -> {restarted_loss:.3f} trained")
after = assess(restarted)
print(f"codes restarted at each check: {restarts.restarted}")
aelab.show_table([{"model": name, "test MSE": r["mse"], "normalised MSE": r["nmse"], "perplexity": r["perplexity"],
                   "dead codes": r["dead codes"]} for name, r in (("no remedy", before), ("dead-code restarts", after))],
                 title=f"Before and after the remedy (K = {NUM_CODES}, {n_test:,} test images)")
plot_code_usage({"no remedy": before["counts"], "restarts": after["counts"]},
                title="Codebook usage on the test images")
aelab.record("lab05", "test_loss_ratio_restarts", restarted_loss / untrained_loss)
for key, name in (("nmse", "test_nmse"), ("perplexity", "perplexity"), ("dead codes", "dead_codes")):
    aelab.record("lab05", f"{name}_no_remedy", before[key])
    aelab.record("lab05", f"{name}_restarts", after[key])

# %% test id=test_restarts_help points=3
# Thresholds measured on the reference at the quick budget over 5 seeds (AELAB_SEED=0..4, one thread).
# Test loss after / before training: worst 0.068; threshold 0.25 (margin 0.18).
checks.less(restarted_loss / untrained_loss, 0.25, "test loss after / before training, with restarts",
            hint="check the loss and the straight-through estimator")
# Perplexity with restarts: worst 357 (of 512); floor 250 (margin 107).
checks.greater(after["perplexity"], 250.0, "perplexity with restarts",
               hint="restart_dead_codes should revive the unused codes")
# Dead codes: at most 33 with restarts, at least 444 without, over the seeds.
checks.less(after["dead codes"], before["dead codes"], "dead codes with restarts (vs without)",
            hint="restart_dead_codes must change the codebook it is given, in place")
# Normalised test MSE with restarts: worst 0.307; threshold 0.45 (margin 0.143).
checks.less(after["nmse"], 0.45, "normalised test MSE with restarts")
checks.passed("dead-code restarts")

# %% [markdown]
# The restarts bring almost the whole codebook into use: the perplexity rises from a few dozen
# codes to several hundred, and hardly any code stays dead. At the quick budget the error barely
# moves, and can even rise a little: every restart hands the decoder codes it has not seen, and a
# few hundred steps are too few for the extra codes to pay off. What they buy is capacity: 512
# codes in use carry 9 bits per position, 30 codes fewer than 5, and given longer training (the
# full budget) that difference can show in the error.

# %% [markdown]
# ## 8. How many codes?
#
# The codes are the whole message from encoder to decoder: an image becomes 64 indices of
# $\log_2 K$ bits each. Train the model with K = 16 and 64 codes (with restarts, same budget)
# and compare with K = 512 above. At the quick budget the three errors are close: a few hundred
# steps do not get near what even 16 codes can carry. Given enough training, larger codebooks reach
# lower errors; compare at the full budget.

# %%
by_size = {NUM_CODES: after}
for k in (16, 64):
    model_k, _, _ = train_vqvae(k, restart=restart_dead_codes, desc=f"VQ-VAE, K={k}")
    by_size[k] = assess(model_k)
grid_positions = 8 * 8
aelab.show_table([{"K": k, "bits per image": int(grid_positions * math.log2(k)),
                   "test MSE": by_size[k]["mse"], "normalised MSE": by_size[k]["nmse"],
                   "perplexity": by_size[k]["perplexity"], "dead codes": by_size[k]["dead codes"]}
                  for k in sorted(by_size)], title="Reconstruction error against codebook size")
for k in sorted(by_size):
    aelab.record("lab05", f"test_nmse_k{k}", by_size[k]["nmse"])

# %% [markdown]
# ## 9. Against a plain autoencoder of the same size
#
# The fairest comparison keeps your encoder and decoder and removes the quantizer: the decoder then
# sees the 8×8 grid of `code_dim` real numbers itself.

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
aelab.fit(plain, train_batches, epochs=SIDE_EPOCHS, lr=CONFIG["lr"], desc="plain autoencoder")
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
aelab.record("lab05", "plain_ae_mse_ratio", plain_mse / after["mse"])

# %% test id=test_plain_autoencoder points=1
# The plain autoencoder keeps far more information, so it reconstructs better. Measured on the
# reference at the quick budget over 5 seeds: its test MSE over the VQ-VAE's is at most 0.695;
# threshold 0.85 (margin 0.155).
checks.less(plain_mse / after["mse"], 0.85, "plain autoencoder test MSE / VQ-VAE test MSE",
            hint="the plain autoencoder uses your Encoder and Decoder; check them")
checks.passed("plain autoencoder comparison")

# %% [markdown]
# ## 10. The final model
#
# At the full budget the model trains longer; at the quick budget the model of section 7 is it.

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
# ## 11. Generating images: decoding random codes
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
# **learned prior** over whole grids of codes: an autoregressive model (PixelCNN in the original
# paper, a transformer in later ones) trained on the codes of real images, which draws one code at a
# time given the codes before it. The discrete codes are what make that prior easy to train: it is a
# classifier over K codes at each position, just like a language model over words.

# %% [markdown]
# ## 12. In your own words
#
# Compare the VQ-VAE with the plain autoencoder of section 9. What does the discrete latent space
# cost, and what does it buy? Use your numbers: the reconstruction errors, the size of the latent in
# bits, and what happened when you decoded random codes. Why does a VQ-VAE need the codebook and
# commitment losses, when a plain autoencoder needs neither?

# %% [markdown] answer id=answer_discrete_vs_continuous points=3
# The discrete latent costs reconstruction quality: the plain autoencoder, passing 64 × D real
# numbers (thousands of bits), reconstructs with a clearly lower error than the VQ-VAE, which
# passes only 64 codes of 9 bits (576 bits) and must round every encoder output to one of K
# vectors. In exchange each image becomes a short grid of symbols: a compact, lossy compression,
# and, above all, a representation on which a prior is easy to learn — an autoregressive model
# predicts a categorical distribution over K codes at each position, as a language model predicts
# words, while a continuous latent needs a density model of a complicated, high-dimensional
# distribution. Decoding random codes shows that the decoder alone cannot generate: independent
# codes give texture, so the structure must come from a prior trained on real code grids. The
# extra losses exist because the argmin has no gradient: the straight-through estimator trains the
# encoder, but nothing else would move the codebook (the codebook loss pulls chosen codes towards
# the encoder outputs) or stop the encoder outputs from drifting away from the codes and growing
# (the commitment loss). A plain autoencoder is differentiable end to end and needs neither.

# %% [markdown]
# ## Closing note: the full-budget figures
#
# On a GPU at the full budget (`AELAB_BUDGET=full`) the final model is the original VQ-VAE's size
# (128 hidden channels, 2 residual blocks, D = 64, K = 512) trained for 40 epochs with batches of
# 128 and dead-code restarts. The targets, against the anchor of zalando's widely used PyTorch
# VQ-VAE (its normalised error corrected to one scale, 25k steps of 256 images):
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
], title=f"Final model at the {aelab.budget()} budget on {aelab.get_device()}, {n_test:,} test images")

# %% [markdown]
# ## Making it fast
#
# The VQ-VAE is the course's one convolution-heavy model, on colour images. `make bench` times it
# against the course notes' pipeline (a torchvision `Dataset` that makes a PIL image of each
# sample and converts it with `ToTensor`, and a `DataLoader` at batch 64), switches each
# technique below on by itself, and writes the table to `build/bench.md`. What matters here:
#
# * **On a CPU the convolutions dominate** and the pipeline hardly matters: the benchmark's CPU
#   rows show it.
# * **Data on the GPU.** The 50,000 training images are 150 MB as uint8: they fit on any GPU, and
#   `cifar.batches` keeps them there instead of copying every batch over.
# * **channels_last and mixed precision pay most here**: convolutions with 32 to 128 channels are
#   what tensor cores are built for, in NHWC layout and with bf16 or fp16 numbers.
# * **Keep the nearest-code search in float32.** In bf16 the distances ||z||² − 2 z·e + ||e||² of
#   two nearby codes can round to the same number, and the argmin then picks by rounding rather
#   than by distance; the benchmark's copy of the quantizer switches autocast off around it.
# * **Bigger batches** (the full budget already uses 128) with a learning rate scaled to match; the
#   codebook keeps its 10× step.
# * **torch.compile** pays back its compile time over the full budget's 40 epochs, not over the
#   quick budget's few hundred steps.
