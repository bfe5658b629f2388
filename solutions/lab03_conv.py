# %% [markdown]
# # Lab 03 — A convolutional autoencoder, checkerboard artifacts and denoising
#
# **You will:** build a convolutional encoder and two convolutional decoders for MNIST — one
# that upsamples with *transposed convolutions*, one that upsamples with *nearest-neighbour
# resizing followed by a convolution* — and see why the first draws faint checkerboards, as in
# Odena, Dumoulin & Olah, ["Deconvolution and Checkerboard Artifacts"](https://distill.pub/2016/deconv-checkerboard/)
# (Distill, 2016). Then you train a *denoising* autoencoder and put the convolutional model next
# to lab 02's fully connected one.
#
# **Time:** about 75 minutes. At the quick budget every model trains for two epochs on a sixth
# of the training set (under a minute in all on a laptop CPU); at the full budget (a Colab GPU)
# for 15 epochs on all of it.
#
# **How this notebook works.** Cells marked `# YOUR CODE HERE` are yours. Each is followed by a
# test cell: run it to check your work. The tests you see are a subset; the autograder runs
# more. Do not rename functions, classes or attributes, or change their arguments.

# %% setup

# %%
import torch
from torch import Tensor, nn

import aelab
from aelab import checks
from aelab.upsampling import (add_noise, checkerboard_fraction, checkerboard_score, constant_response,
                              overlap_counts, resize_conv_counts, show_patterns)

aelab.seed_everything()
mnist = aelab.load_mnist()
print(mnist.describe())

# Images stay images here: batches of (B, 1, 28, 28) in [0, 1]. The quick budget trains on the
# first 10,000 training images, the full budget on all 60,000.
LATENT = 32            # the same latent size as lab 02's model, for the comparison in section 6
CHANNELS = (16, 32)    # feature maps after the first and the second downsampling stage
EPOCHS = aelab.by_budget(quick=2, full=15)
TRAIN_IMAGES = aelab.by_budget(quick=10_000, full=None)  # None: all of them
train_batches = mnist.batches("train", batch_size=64, limit=TRAIN_IMAGES)
test_batches = mnist.batches("test", batch_size=1000)
val_batches = mnist.batches("test", batch_size=1000, limit=2000)  # the loss curve after each epoch
device = train_batches.device
X_test = mnist.images("test", device=device)
print(f"{EPOCHS} epochs of {len(train_batches)} batches of 64")

# %% [markdown]
# ## 1. The encoder: 28 × 28 → 14 × 14 → 7 × 7 → latent
#
# Each downsampling stage halves the height and width and adds feature maps:
#
# | stage | maps | layers |
# |---|---|---|
# | `down1` | (N, 1, 28, 28) → (N, c1, 14, 14) | 3 × 3 convolution with stride 2 and padding 1, ReLU |
# | `down2` | (N, c1, 14, 14) → (N, c2, 7, 7) | 3 × 3 convolution with stride 2 and padding 1, ReLU |
# | `to_latent` | (N, c2, 7, 7) → (N, latent_dim) | flatten, then `nn.Linear`; **no** activation |
#
# A stride-2 convolution learns its own downsampling; a stride-1 convolution followed by a 2 × 2
# max-pool works too (same shapes, same parameters) and is fine here. The latent stays linear,
# as in labs 01 and 02: a ReLU there would throw away every negative coordinate.
#
# Use `nn.Sequential` for each stage, so that `encoder.down1(x)` runs exactly that stage.

# %% solution id=conv_encoder
class ConvEncoder(nn.Module):
    """Images (N, 1, 28, 28) in [0, 1] -> latent codes (N, latent_dim), float32.

    Three stages, each an nn.Module attribute that can be called on its own (see the table):
    down1 (N, 1, 28, 28) -> (N, c1, 14, 14); down2 -> (N, c2, 7, 7); to_latent -> (N, latent_dim),
    where (c1, c2) = channels. forward(x) = to_latent(down2(down1(x))).
    """

    def __init__(self, latent_dim: int = 32, channels: tuple[int, int] = (16, 32)):
        super().__init__()
        c1, c2 = channels
        ### BEGIN SOLUTION
        self.down1 = nn.Sequential(nn.Conv2d(1, c1, 3, stride=2, padding=1), nn.ReLU())
        self.down2 = nn.Sequential(nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.ReLU())
        self.to_latent = nn.Sequential(nn.Flatten(), nn.Linear(c2 * 7 * 7, latent_dim))
        ### END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        return self.to_latent(self.down2(self.down1(x)))
        ### END SOLUTION


# %% test id=test_encoder points=2
for batch in (1, 5, 64):
    x = torch.rand(batch, 1, 28, 28)
    encoder_check = ConvEncoder(latent_dim=LATENT, channels=CHANNELS)
    h1 = checks.tensor(encoder_check.down1(x), f"down1 of a batch of {batch}", shape=(batch, 16, 14, 14),
                       dtype=torch.float32, hint="a 3x3 convolution with stride=2, padding=1 halves 28 to 14")
    h2 = checks.tensor(encoder_check.down2(h1), f"down2 of a batch of {batch}", shape=(batch, 32, 7, 7),
                       hint="the second stage halves 14 to 7 and has c2 = channels[1] feature maps")
    z = checks.tensor(encoder_check.to_latent(h2), f"to_latent of a batch of {batch}", shape=(batch, LATENT),
                      hint="flatten the (c2, 7, 7) maps, then one nn.Linear to latent_dim")
    checks.close(encoder_check(x), z.detach(), f"encoder(x) for a batch of {batch}", atol=1e-6,
                 hint="forward must run down1, then down2, then to_latent")
checks.tensor(ConvEncoder(latent_dim=3, channels=(4, 8))(torch.rand(2, 1, 28, 28)),
              "ConvEncoder(latent_dim=3, channels=(4, 8)) on 2 images", shape=(2, 3))
checks.passed("ConvEncoder")
### BEGIN HIDDEN TESTS
small = ConvEncoder(latent_dim=5, channels=(3, 6))
checks.tensor(small.down1(torch.rand(7, 1, 28, 28)), "down1 with channels=(3, 6)", shape=(7, 3, 14, 14))
checks.tensor(small.down2(torch.rand(7, 3, 14, 14)), "down2 with channels=(3, 6)", shape=(7, 6, 7, 7))
# The parameters of the table: two 3x3 convolutions and one linear layer, nothing else.
expected_params = (9 * 3 + 3) + (9 * 3 * 6 + 6) + (6 * 49 * 5 + 5)
checks.close(aelab.count_parameters(small), expected_params, "parameters of ConvEncoder(5, (3, 6))", atol=0.5,
             hint="3x3 convolutions (1 -> c1, c1 -> c2) and one nn.Linear(c2 * 7 * 7, latent_dim)")
# The stages are nonlinear (ReLU): an affine map f has f(a) + f(b) = f(a + b) + f(0).
a, b = torch.rand(6, 1, 28, 28), torch.rand(6, 1, 28, 28)
with torch.no_grad():
    gap = (small(a) + small(b) - small(a + b) - small(torch.zeros_like(a))).abs().max()
checks.greater(float(gap), 1e-4, "distance of the encoder from an affine map", hint="put a ReLU after each convolution")
# The latent is linear: codes take negative values too.
with torch.no_grad():
    codes = ConvEncoder(latent_dim=32)(torch.rand(16, 1, 28, 28))
checks.true(bool((codes < 0).any()), "latent codes", "are never negative",
            hint="no activation after the last nn.Linear: the latent is linear")
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Two decoders: transposed convolution versus resize-convolution
#
# Both decoders mirror the encoder and differ **only** in how they double the resolution.
#
# | stage | maps | `TransposedConvDecoder` | `ResizeConvDecoder` |
# |---|---|---|---|
# | `from_latent` | (N, latent) → (N, c2, 7, 7) | `nn.Linear` to c2·7·7, ReLU, `nn.Unflatten` | the same |
# | `up1` | → (N, c1, 14, 14) | `nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1)`, ReLU | `nn.Upsample(scale_factor=2, mode="nearest")`, `nn.Conv2d(c2, c1, 3, padding=1)`, ReLU |
# | `up2` | → (N, 1, 28, 28) | `nn.ConvTranspose2d(c1, 1, 3, stride=2, padding=1, output_padding=1)` | `nn.Upsample(scale_factor=2, mode="nearest")`, `nn.Conv2d(c1, 1, 3, padding=1)` |
# | `forward` | → (N, 1, 28, 28) in [0, 1] | sigmoid of `up2(up1(from_latent(z)))` | the same |
#
# A transposed convolution with stride 2 is the backward pass of a stride-2 convolution: every
# input pixel *paints* a 3 × 3 copy of the kernel onto the output, two pixels further along each time.
# `padding=1` trims one pixel from each border and `output_padding=1` adds one back on one side,
# so 7 becomes 14 exactly. The resize-convolution first copies each pixel into a 2 × 2 block
# and then runs an ordinary 3 × 3 convolution on the result. The two have **the same number of
# parameters**. The sigmoid is applied in `forward`, after `up2`, so that `up2` returns the
# pre-activation (logits) — we will look at those in sections 3 and 4.

# %% solution id=transposed_decoder
class TransposedConvDecoder(nn.Module):
    """Latent codes (N, latent_dim) -> images (N, 1, 28, 28) in [0, 1], upsampling with
    transposed convolutions (see the table). Stages: from_latent -> (N, c2, 7, 7),
    up1 -> (N, c1, 14, 14), up2 -> (N, 1, 28, 28) logits; forward = sigmoid(up2(up1(from_latent(z)))).
    """

    def __init__(self, latent_dim: int = 32, channels: tuple[int, int] = (16, 32)):
        super().__init__()
        c1, c2 = channels
        ### BEGIN SOLUTION
        self.from_latent = nn.Sequential(nn.Linear(latent_dim, c2 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (c2, 7, 7)))
        self.up1 = nn.Sequential(nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1), nn.ReLU())
        self.up2 = nn.ConvTranspose2d(c1, 1, 3, stride=2, padding=1, output_padding=1)
        ### END SOLUTION

    def forward(self, z: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        return torch.sigmoid(self.up2(self.up1(self.from_latent(z))))
        ### END SOLUTION


# %% solution id=resize_conv_decoder
class ResizeConvDecoder(nn.Module):
    """Latent codes (N, latent_dim) -> images (N, 1, 28, 28) in [0, 1], upsampling by nearest-
    neighbour resizing then a 3x3 convolution (see the table). Same stages and shapes as
    TransposedConvDecoder: from_latent, up1, up2 (logits); forward = sigmoid(up2(up1(from_latent(z)))).
    """

    def __init__(self, latent_dim: int = 32, channels: tuple[int, int] = (16, 32)):
        super().__init__()
        c1, c2 = channels
        ### BEGIN SOLUTION
        self.from_latent = nn.Sequential(nn.Linear(latent_dim, c2 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (c2, 7, 7)))
        self.up1 = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c2, c1, 3, padding=1),
                                 nn.ReLU())
        self.up2 = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c1, 1, 3, padding=1))
        ### END SOLUTION

    def forward(self, z: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        return torch.sigmoid(self.up2(self.up1(self.from_latent(z))))
        ### END SOLUTION


# %% test id=test_decoders points=3
for Decoder in (TransposedConvDecoder, ResizeConvDecoder):
    name = Decoder.__name__
    for batch in (1, 5, 64):
        decoder_check = Decoder(latent_dim=LATENT, channels=CHANNELS)
        z = torch.randn(batch, LATENT)
        h = checks.tensor(decoder_check.from_latent(z), f"{name}.from_latent of {batch} codes",
                          shape=(batch, 32, 7, 7),
                          hint="nn.Linear to c2 * 7 * 7, ReLU, then nn.Unflatten(1, (c2, 7, 7))")
        h = checks.tensor(decoder_check.up1(h), f"{name}.up1 of {batch} codes", shape=(batch, 16, 14, 14),
                          hint="the first upsampling stage doubles 7 to 14 and has c1 = channels[0] maps")
        logits = checks.tensor(decoder_check.up2(h), f"{name}.up2 of {batch} codes", shape=(batch, 1, 28, 28),
                               hint="the second upsampling stage doubles 14 to 28 and has one map")
        out = checks.tensor(decoder_check(z), f"{name}(z) for {batch} codes", shape=(batch, 1, 28, 28),
                            dtype=torch.float32)
        checks.close(out, torch.sigmoid(logits).detach(), f"{name}(z) vs sigmoid(up2(up1(from_latent(z))))",
                     atol=1e-6, hint="forward runs the three stages, then a sigmoid")
    # Far-out codes must still give pixels in [0, 1].
    with torch.no_grad():
        extreme = Decoder(latent_dim=LATENT, channels=CHANNELS)(torch.randn(8, LATENT) * 100)
    checks.between(float(extreme.min()), 0.0, 1.0, f"smallest output of {name}", hint="end forward with a sigmoid")
    checks.between(float(extreme.max()), 0.0, 1.0, f"largest output of {name}", hint="end forward with a sigmoid")
checks.passed("TransposedConvDecoder and ResizeConvDecoder")
### BEGIN HIDDEN TESTS
for Decoder in (TransposedConvDecoder, ResizeConvDecoder):
    name = Decoder.__name__
    odd = Decoder(latent_dim=3, channels=(5, 7))
    h = checks.tensor(odd.from_latent(torch.randn(4, 3)), f"{name}(3, (5, 7)).from_latent", shape=(4, 7, 7, 7))
    h = checks.tensor(odd.up1(h), f"{name}(3, (5, 7)).up1", shape=(4, 5, 14, 14))
    checks.tensor(odd.up2(h), f"{name}(3, (5, 7)).up2", shape=(4, 1, 28, 28))
    # The parameters of the table; both decoders have exactly the same count.
    expected_params = (3 * 7 * 49 + 7 * 49) + (9 * 7 * 5 + 5) + (9 * 5 + 1)
    checks.close(aelab.count_parameters(odd), expected_params, f"parameters of {name}(3, (5, 7))", atol=0.5,
                 hint="3x3 kernels in both upsampling stages, as in the table")
transposed_kinds = {type(m) for m in TransposedConvDecoder().modules()}
resize_kinds = {type(m) for m in ResizeConvDecoder().modules()}
checks.true(nn.ConvTranspose2d in transposed_kinds, "TransposedConvDecoder", "has no nn.ConvTranspose2d")
checks.true(nn.ConvTranspose2d not in resize_kinds, "ResizeConvDecoder", "must not use nn.ConvTranspose2d",
            hint="upsample with nn.Upsample(scale_factor=2, mode='nearest'), then a stride-1 nn.Conv2d")
checks.true(nn.Upsample not in transposed_kinds, "TransposedConvDecoder",
            "must upsample with transposed convolutions only")
# Behaviour on a constant input (section 3): the resize-convolution stages give a flat interior,
# the transposed ones do not. Over 2,000 initialisations (seeds 0-1999) the flat one scored
# exactly 0 and the transposed one at least 0.27 (median 0.63): the limits leave wide margins.
for seed in (0, 1, 2):
    torch.manual_seed(seed)
    t_check, r_check = TransposedConvDecoder(), ResizeConvDecoder()
    checks.greater(checkerboard_score(constant_response([t_check.up1, t_check.up2], (32, 7, 7))), 0.1,
                   "checkerboard score of TransposedConvDecoder's up1, up2 on a constant input",
                   hint="stride-2 transposed convolutions with 3x3 kernels, as in the table")
    checks.less(checkerboard_score(constant_response([r_check.up1, r_check.up2], (32, 7, 7))), 1e-3,
                "checkerboard score of ResizeConvDecoder's up1, up2 on a constant input",
                hint="nearest upsampling then a stride-1 3x3 convolution with padding=1")
### END HIDDEN TESTS

# %% [markdown]
# The encoder and a decoder make an autoencoder. As every model in this course, it returns
# `(reconstruction, latent)`.

# %%
class ConvAutoencoder(nn.Module):
    """encoder: images -> codes; decoder: codes -> images. forward returns (reconstruction, latent)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = self.encoder(x)
        return self.decoder(z), z


for Decoder in (TransposedConvDecoder, ResizeConvDecoder):
    model = ConvAutoencoder(ConvEncoder(LATENT, CHANNELS), Decoder(LATENT, CHANNELS))
    print(f"{Decoder.__name__:>22}: {aelab.count_parameters(model.encoder):,} encoder + "
          f"{aelab.count_parameters(model.decoder):,} decoder parameters")

# %% [markdown]
# ## 3. Where the checkerboard comes from
#
# Look at one row of a stride-2 transposed convolution with a kernel of size 3. Input pixel $i$
# writes to output positions $2i, 2i+1, 2i+2$; input pixel $i+1$ to $2i+2, 2i+3, 2i+4$. Position
# $2i+2$ receives **two** contributions, positions $2i+1$ and $2i+3$ only one. Count it for a
# general kernel size $k$ and stride $s$: input position $i$ writes to outputs
# $is, is+1, \dots, is+k-1$, and with $L$ inputs (and no padding) there are $(L-1)s + k$ outputs.

# %% solution id=overlap_1d
def overlap_1d(kernel_size: int, stride: int, length: int) -> Tensor:
    """How many kernel taps of a 1-D transposed convolution land on each output position.

    Input position i (0 <= i < length) writes to outputs i*stride, ..., i*stride + kernel_size - 1.
    Returns an int64 tensor of shape ((length - 1) * stride + kernel_size,): the count per output.
    """
    ### BEGIN SOLUTION
    counts = torch.zeros((length - 1) * stride + kernel_size, dtype=torch.int64)
    for i in range(length):
        counts[i * stride:i * stride + kernel_size] += 1
    return counts
    ### END SOLUTION


# %% test id=test_overlap_1d points=2
counts = checks.tensor(overlap_1d(3, 2, 4), "overlap_1d(3, 2, 4)", shape=(9,), dtype=torch.int64)
checks.close(counts, [1, 1, 2, 1, 2, 1, 2, 1, 1], "overlap_1d(3, 2, 4)",
             hint="input i covers outputs i*stride up to i*stride + kernel_size - 1, inclusive")
checks.close(overlap_1d(4, 2, 3), [1, 1, 2, 2, 2, 2, 1, 1], "overlap_1d(4, 2, 3)")
checks.close(overlap_1d(1, 1, 5), [1, 1, 1, 1, 1], "overlap_1d(1, 1, 5)")
checks.passed("overlap_1d")
### BEGIN HIDDEN TESTS
# Against the definition: a transposed convolution with all-ones weights on an all-ones input.
for k, s, n in ((3, 2, 7), (5, 2, 4), (2, 3, 5), (5, 3, 6), (4, 4, 3), (3, 1, 6), (1, 2, 4)):
    expected = nn.functional.conv_transpose1d(torch.ones(1, 1, n), torch.ones(1, 1, k), stride=s)[0, 0]
    got = checks.tensor(overlap_1d(k, s, n), f"overlap_1d({k}, {s}, {n})", shape=expected.shape, dtype=torch.int64)
    checks.close(got, expected, f"overlap_1d({k}, {s}, {n})")
### END HIDDEN TESTS

# %% [markdown]
# In two dimensions the counts multiply: the 2-D count is the outer product of the 1-D ones.
# Below, on an 8 × 8 input: a 3 × 3 kernel with stride 2 (the uneven grid, 1–2–4), a 4 × 4
# kernel with stride 2 (even in the interior: the kernel size is a multiple of the stride), and
# the resize-convolution (every interior pixel sees all 9 taps).

# %%
show_patterns({"transposed, k=3, s=2 (1-D)": overlap_1d(3, 2, 8),
               "transposed, k=3, s=2": torch.outer(overlap_1d(3, 2, 8), overlap_1d(3, 2, 8)),
               "transposed, k=4, s=2": torch.outer(overlap_1d(4, 2, 8), overlap_1d(4, 2, 8)),
               "resize-conv, k=3": resize_conv_counts(3, 2, 8)},
              title="Kernel taps reaching each output pixel (8 x 8 input)", score_border=2)
# Your 1-D counts agree with the 2-D transposed convolution of aelab.upsampling:
print("2-D counts match:", bool(torch.equal(torch.outer(overlap_1d(3, 2, 8), overlap_1d(3, 2, 8)),
                                            overlap_counts(3, 2, 8))))

# %% [markdown]
# Counting taps assumes every weight is 1. Real weights are random at first, but the uneven
# grid survives: output pixels at even and odd positions are built from *different* kernel
# taps, so even a constant input comes out patterned. Here is what the untrained upsampling
# stages `up1` and `up2` of each decoder make of a constant (32, 7, 7) input — Distill's first
# experiment. Each panel has its own colour scale; the score (0 = flat) ignores the 4 border
# pixels, where zero padding changes any convolution's output.

# %%
aelab.seed_everything()
untrained = {"transposed": TransposedConvDecoder(LATENT, CHANNELS), "resize-conv": ResizeConvDecoder(LATENT, CHANNELS)}
untrained_patterns = {name: constant_response([d.up1, d.up2], (CHANNELS[1], 7, 7)) for name, d in untrained.items()}
show_patterns(untrained_patterns, title="Untrained decoders on a constant input (logits)")
for name, pattern in untrained_patterns.items():
    aelab.record("lab03", f"untrained_{name.replace('-', '_')}_checkerboard", checkerboard_score(pattern))

# %% [markdown]
# ## 4. Train both
#
# Same encoder, same data, same optimiser (Adam, learning rate 3e-3), same epochs. The
# training loop is `aelab.fit`; the loss is the mean squared error against the input.

# %%
histories, conv_models = {}, {}
for name, Decoder in (("transposed", TransposedConvDecoder), ("resize-conv", ResizeConvDecoder)):
    aelab.seed_everything()
    conv_models[name] = ConvAutoencoder(ConvEncoder(LATENT, CHANNELS), Decoder(LATENT, CHANNELS)).to(device)
    histories[name] = aelab.fit(conv_models[name], train_batches, epochs=EPOCHS, lr=3e-3,
                                val_batches=val_batches, desc=name)
conv_mse = {name: aelab.reconstruction_mse(model, test_batches) for name, model in conv_models.items()}
aelab.record("lab03", "conv_transposed_test_mse", conv_mse["transposed"])
aelab.record("lab03", "conv_test_mse", conv_mse["resize-conv"])
aelab.plot_losses({f"{name} (2,000 test images)": h.val_loss for name, h in histories.items()},
                  title="Test MSE after each epoch")
_ = aelab.show_table([{"decoder": name, "test MSE": conv_mse[name], "seconds": round(histories[name].seconds, 1)}
                      for name in conv_models], title=f"After {EPOCHS} epochs")

# %% test id=test_training points=3
# Measured on the reference at the quick budget over 5 seeds (AELAB_SEED=0..4): the test MSE
# was at most 0.0147 (transposed) and 0.0139 (resize-conv); each threshold is about 30% above
# its worst seed. The test loss fell in every run.
for name, limit in (("transposed", 0.019), ("resize-conv", 0.018)):
    checks.less(histories[name].val_loss[-1], histories[name].val_loss[0], f"last test loss vs first ({name})",
                hint="the loss should fall during training")
    checks.less(conv_mse[name], limit, f"test MSE of the {name} autoencoder after quick training",
                hint="check the stages of the encoder and of the decoder against the tables")
checks.passed("training")
### BEGIN HIDDEN TESTS
# The trained transposed decoder's logits alternate more than the resize-convolution's: over the
# 5 calibration seeds the ratio of their checkerboard fractions on the first 1,000 test digits
# was at least 4.6 (at most 8.4); the threshold leaves a factor of more than 2.
with torch.no_grad():
    trained_logits = {name: m.decoder.up2(m.decoder.up1(m.decoder.from_latent(m.encoder(X_test[:1000]))))
                      for name, m in conv_models.items()}
logit_ratio = checkerboard_fraction(trained_logits["transposed"]) / checkerboard_fraction(trained_logits["resize-conv"])
_ = checks.greater(logit_ratio, 2.0, "checkerboard fraction of the transposed decoder's logits / the resize-conv's",
                   hint="stride-2 3x3 transposed convolutions in one decoder, nearest + 3x3 convolution in the other")
### END HIDDEN TESTS

# %% [markdown]
# Side by side, test digits and their reconstructions:

# %%
with torch.no_grad():
    recons = {name: model.eval()(X_test[:12])[0] for name, model in conv_models.items()}
_ = aelab.show_images({"original": X_test[:12]} | recons, n=12, title="Test digits and their reconstructions")

# %% [markdown]
# Both look clean: the sigmoid squashes the whole background to 0 and hides what the decoder
# does there. Look *before* the sigmoid, at the logits `up2(up1(from_latent(z)))` of the same
# digits, and the grid of the transposed decoder appears, while the resize-convolution's logits
# are smooth. `checkerboard_fraction` measures it: the share of the pixel-to-pixel variation that
# alternates like a checkerboard (1 for a pure checkerboard, near 0 for smooth images).

# %%
with torch.no_grad():
    logits = {name: m.decoder.up2(m.decoder.up1(m.decoder.from_latent(m.encoder(X_test[:1000]))))
              for name, m in conv_models.items()}
show_patterns({f"{name}: digit {i}": logits[name][i, 0] for name in conv_models for i in range(3)},
              ncols=3, score_border=None, title="Logits of the reconstructions (before the sigmoid)")
trained_patterns = {name: constant_response([m.decoder.up1, m.decoder.up2], (CHANNELS[1], 7, 7))
                    for name, m in conv_models.items()}
show_patterns(trained_patterns, title="Trained decoders on a constant input (logits)")
logit_checker = {name: checkerboard_fraction(value) for name, value in logits.items()}
aelab.show_table([{"decoder": name, "checkerboard fraction of the logits": logit_checker[name],
                   "checkerboard score on a constant input": checkerboard_score(trained_patterns[name])}
                  for name in conv_models], title="After training (1,000 test digits)")
for name in conv_models:
    key = name.replace("-", "_")
    aelab.record("lab03", f"{key}_logit_checkerboard_fraction", logit_checker[name])
    aelab.record("lab03", f"trained_{key}_checkerboard", checkerboard_score(trained_patterns[name]))
aelab.record("lab03", "logit_checkerboard_ratio", logit_checker["transposed"] / logit_checker["resize-conv"])

# %% [markdown]
# **In your own words** (a few sentences): explain, in terms of how the kernels of a strided
# transposed convolution overlap, why a constant input gives a checkerboard — why a 3 × 3 kernel
# with stride 2 overlaps unevenly and a 4 × 4 kernel with stride 2 does not (in its interior).
# Why does stacking two such layers make things worse rather than better? Why does the
# resize-convolution avoid the problem, and what does it cost in computation? Refer to the
# figures above.

# %% [markdown] answer id=answer_checkerboard points=3
# A stride-2 transposed convolution paints a k × k copy of the kernel, scaled by each input
# pixel, onto the output every 2 pixels. With k = 3 the copies overlap by one pixel: along each
# axis every other output position is covered by two kernel taps and the others by one, so in
# 2-D the counts alternate 1–2–4 (the grid of the first figure). With random or learned weights
# the even and odd output positions are also made from different taps, so a constant input comes
# out as a periodic pattern. With k = 4 = 2s every interior position is covered by exactly two
# taps: the overlap is even, although learned weights can still differ between the two phases.
# Stacking layers compounds the pattern: the second layer's input is already periodic, and its own
# uneven overlap multiplies in, giving a coarser, period-4 grid (the untrained transposed
# decoder's panel). The resize-convolution copies each pixel into a 2 × 2 block, so a constant
# stays constant, and then slides an ordinary stride-1 kernel over it: every output pixel sees
# all 9 taps, and only the zero-padded border differs. The price is computation: its convolution
# runs at the output resolution (4× as many positions as the transposed one, which works at the
# input resolution), for the same number of parameters.

# %% [markdown]
# ## 5. A denoising autoencoder
#
# Corrupt each training image with Gaussian noise (standard deviation 0.4, clipped to [0, 1]),
# feed the **noisy** image to the autoencoder, and compare its output with the **clean** image.
# The model cannot just copy its input any more: it has to learn what digits look like.
#
# Write the loss: the mean squared error between the reconstruction of the noisy images and the
# clean ones, averaged over every pixel of the batch (`nn.functional.mse_loss`'s default).

# %% solution id=denoising_loss
def denoising_loss(model: nn.Module, noisy: Tensor, clean: Tensor) -> Tensor:
    """The denoising objective for one batch, as a scalar tensor that gradients flow through.

    model(noisy) returns (reconstruction, latent); noisy and clean are (N, 1, 28, 28) in [0, 1].
    Returns the mean over all N * 28 * 28 pixels of (reconstruction - clean) ** 2.
    """
    ### BEGIN SOLUTION
    recon, _ = model(noisy)
    return nn.functional.mse_loss(recon, clean)
    ### END SOLUTION


# %% test id=test_denoising_loss points=3
class Scale(nn.Module):
    """A stand-in model: reconstruction = a * input, with a learnable a."""

    def __init__(self, a: float):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.a * x, x.flatten(1)[:, :2]


clean_toy = torch.zeros(2, 1, 28, 28)
noisy_toy = torch.full((2, 1, 28, 28), 0.2)
copier = Scale(1.0)
loss = checks.tensor(denoising_loss(copier, noisy_toy, clean_toy), "denoising_loss", shape=())
# A model that copies its input reconstructs the noisy image; against the clean image it is off
# by 0.2 at every pixel: 0.2 ** 2 = 0.04.
checks.close(loss, 0.04, "denoising_loss of a model that copies its noisy input", atol=1e-7,
             hint="feed the NOISY images to the model and compare its output with the CLEAN images")
checks.close(denoising_loss(Scale(0.5), noisy_toy, clean_toy), 0.01, "denoising_loss when the output is 0.1 everywhere",
             atol=1e-7, hint="the mean of the squared differences")
checks.passed("denoising_loss")
### BEGIN HIDDEN TESTS
# Gradients flow to the model: d/da mean((a * 0.2 - 0) ** 2) at a = 1 is 2 * 0.2 * 0.2 = 0.08.
loss.backward()
checks.true(copier.a.grad is not None, "denoising_loss", "returned a loss that gradients do not flow through",
            hint="return the tensor itself, not .item() or .detach()")
checks.close(copier.a.grad, 0.08, "gradient of denoising_loss", atol=1e-6)
# A mean over the batch and the pixels: the same per-pixel error gives the same loss at any batch size.
checks.close(denoising_loss(Scale(1.0), torch.full((7, 1, 28, 28), 0.2), torch.zeros(7, 1, 28, 28)), 0.04,
             "denoising_loss for a batch of 7", atol=1e-7, hint="average over the batch and the pixels")
# Targets that differ from the inputs pixel by pixel: a model that outputs its input exactly is
# scored against the clean images, never against the noisy ones or against its own input.
ramp = torch.linspace(0, 1, 784).reshape(1, 1, 28, 28).repeat(3, 1, 1, 1)
noisy_ramp = (ramp + 0.1 * torch.cos(torch.arange(784.0)).reshape(1, 1, 28, 28)).clamp(0, 1)
checks.close(denoising_loss(Scale(1.0), noisy_ramp, ramp), float(((noisy_ramp - ramp) ** 2).mean()),
             "denoising_loss on a ramp image", atol=1e-7)
checks.close(denoising_loss(Scale(0.0), noisy_ramp, ramp), float((ramp ** 2).mean()),
             "denoising_loss of a model that outputs zeros", atol=1e-7,
             hint="compare with the clean images")
### END HIDDEN TESTS

# %% [markdown]
# Train a fresh resize-convolution autoencoder with it: every batch gets fresh noise. The test
# images get one fixed draw of noise, the same on every run.

# %%
NOISE_STD = 0.4


def noisy_training_loss(model: nn.Module, images: Tensor, labels: Tensor) -> Tensor:
    return denoising_loss(model, add_noise(images, NOISE_STD), images)


aelab.seed_everything()
denoiser = ConvAutoencoder(ConvEncoder(LATENT, CHANNELS), ResizeConvDecoder(LATENT, CHANNELS)).to(device)
denoise_history = aelab.fit(denoiser, train_batches, epochs=EPOCHS, lr=3e-3, loss_fn=noisy_training_loss,
                            desc="denoising")
noisy_test = add_noise(X_test, NOISE_STD, generator=torch.Generator().manual_seed(0))


@torch.no_grad()
def mse_against_clean(model: nn.Module, inputs: Tensor, clean: Tensor, batch_size: int = 1000) -> float:
    """Mean squared error between model(inputs) and the clean images, in eval mode."""
    model.eval()
    total = sum(float(((model(inputs[i:i + batch_size])[0] - clean[i:i + batch_size]) ** 2).sum())
                for i in range(0, len(inputs), batch_size))
    return total / clean.numel()


denoise_mse = {"noisy input itself": float(((noisy_test - X_test) ** 2).mean()),
               "plain autoencoder (section 4)": mse_against_clean(conv_models["resize-conv"], noisy_test, X_test),
               "denoising autoencoder": mse_against_clean(denoiser, noisy_test, X_test)}
aelab.show_table([{"noisy test images through": name, "MSE against the clean images": value}
                  for name, value in denoise_mse.items()], title=f"Denoising, noise std {NOISE_STD}")
aelab.record("lab03", "noisy_input_mse", denoise_mse["noisy input itself"])
aelab.record("lab03", "plain_ae_on_noisy_mse", denoise_mse["plain autoencoder (section 4)"])
aelab.record("lab03", "denoising_test_mse", denoise_mse["denoising autoencoder"])
aelab.record("lab03", "denoising_mse_ratio_to_noisy",
             denoise_mse["denoising autoencoder"] / denoise_mse["noisy input itself"])
with torch.no_grad():
    aelab.show_images({"noisy": noisy_test[:10],
                       "plain AE": conv_models["resize-conv"](noisy_test[:10])[0],
                       "denoising AE": denoiser(noisy_test[:10])[0],
                       "clean": X_test[:10]}, title="noisy → reconstructed → clean")

# %% [markdown]
# The plain autoencoder of section 4 was only ever asked to copy clean digits. Noise pushes its
# inputs off everything it has seen, and it turns them into blobs — further from the clean
# images than the noisy inputs themselves. The denoising autoencoder has learned what digits
# look like and maps a noisy one back onto the nearest clean-looking digit: it removes the
# noise, at the price of some blur.

# %% test id=test_denoising points=2
# Measured on the reference at the quick budget over 5 seeds: the denoising autoencoder's MSE
# against the clean test images was at most 0.0202, i.e. at most 0.254 of the noisy images' own
# MSE (0.0796); both thresholds are about 30% above the worst seed. (A model trained against
# the noisy targets learns to copy its input and scores about 1.0.)
checks.less(denoise_history.train_loss[-1], denoise_history.train_loss[0], "last training loss vs first",
            hint="the denoising loss should fall during training")
checks.less(denoise_mse["denoising autoencoder"], 0.026, "denoising autoencoder: MSE against the clean test images",
            hint="train on noisy inputs against CLEAN targets (denoising_loss)")
checks.less(denoise_mse["denoising autoencoder"] / denoise_mse["noisy input itself"], 0.33,
            "denoised MSE / MSE of the noisy images", hint="the output should be much closer to the clean images")
checks.passed("denoising autoencoder")

# %% [markdown]
# ## 6. Convolutional versus fully connected, at the same latent size
#
# Lab 02's model, `aelab.zoo.ClassicAutoencoder` (784 → 98 → 32 → 196 → 784, with the course
# notes' dropout of 0.2), trained here on the same images for the same epochs, against the
# resize-convolution autoencoder: test MSE, parameters, and how well each latent space separates
# the digits (`aelab.latent_quality`: k-means NMI and ARI, silhouette, 5-NN accuracy, on 5,000
# test images).

# %%
aelab.seed_everything()
fc_model = aelab.zoo.ClassicAutoencoder(latent_dim=LATENT, dropout=0.2).to(device)  # the notes' dropout
fc_train = mnist.batches("train", batch_size=64, flatten=True, limit=TRAIN_IMAGES)
fc_test = mnist.batches("test", batch_size=1000, flatten=True)
aelab.fit(fc_model, fc_train, epochs=EPOCHS, lr=3e-3, desc="fully connected")
fc_mse = aelab.reconstruction_mse(fc_model, fc_test)

conv_model = conv_models["resize-conv"]
conv_quality = aelab.latent_quality(*aelab.collect_latents(conv_model.encoder, test_batches))
fc_quality = aelab.latent_quality(*aelab.collect_latents(fc_model.encoder, fc_test))
comparison = [
    {"model": "convolutional (resize-conv)", "test MSE": conv_mse["resize-conv"],
     "parameters": aelab.count_parameters(conv_model), **conv_quality},
    {"model": "fully connected (lab 02)", "test MSE": fc_mse, "parameters": aelab.count_parameters(fc_model),
     **fc_quality},
]
aelab.show_table(comparison, title=f"Latent size {LATENT}, {EPOCHS} epochs on the same images")
aelab.record("lab03", "fc_test_mse", fc_mse)
aelab.record("lab03", "conv_fc_mse_ratio", conv_mse["resize-conv"] / fc_mse)
aelab.record("lab03", "conv_params", aelab.count_parameters(conv_model))
aelab.record("lab03", "fc_params", aelab.count_parameters(fc_model))
for prefix, quality in (("conv", conv_quality), ("fc", fc_quality)):
    for metric in ("nmi", "knn_accuracy"):
        aelab.record("lab03", f"{prefix}_{metric}", quality[metric])

# %% test id=test_comparison points=1
# Measured on the reference at the quick budget over 5 seeds: the convolutional model's test
# MSE was at most 0.393 of the fully connected one's (threshold 0.55, about 40% above), and its
# latents' 5-NN accuracy at least 0.941 (threshold 0.90, a margin of 0.04).
checks.less(conv_mse["resize-conv"] / fc_mse, 0.55, "convolutional / fully connected test MSE",
            hint="the convolutional model should reconstruct clearly better at the same latent size")
checks.greater(conv_quality["knn_accuracy"], 0.90, "5-NN accuracy on the convolutional latents")
checks.passed("comparison with lab 02")

# %% [markdown]
# With less than half of lab 02's parameters, the convolutional model reconstructs far better
# after the same training: a convolution reuses one small kernel at every position, which suits
# images whose local statistics are the same everywhere, and its parameters go into the single
# linear layer on each side of the latent. Here its latents also separate the digits better.
#
# ## 7. Extension (ungraded): read the image row by row
#
# An image is also a sequence: 28 rows of 28 pixels. An encoder can read it like text, with a
# recurrent network that updates a hidden state after each row, and code the image by its last
# hidden state. Write `RowRNNEncoder` (an `nn.GRU` with `batch_first=True` over the rows, then
# an `nn.Linear` from the last hidden state to the latent). The cell after it trains it with a
# transposed-convolution decoder and compares it with section 4's model. It is not graded:
# skip it if you like, the notebook still runs. Try an LSTM, a bidirectional GRU, or reading
# columns instead of rows.

# %% solution id=row_rnn_encoder
class RowRNNEncoder(nn.Module):
    """Images (N, 1, 28, 28) -> codes (N, latent_dim): a GRU reads the 28 rows in order; a linear
    layer maps its last hidden state (N, hidden) to the code."""

    def __init__(self, latent_dim: int = 32, hidden: int = 64):
        super().__init__()
        ### BEGIN SOLUTION
        self.rnn = nn.GRU(input_size=28, hidden_size=hidden, batch_first=True)
        self.to_latent = nn.Linear(hidden, latent_dim)
        ### END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        _, last = self.rnn(x.squeeze(1))  # (N, 28 rows, 28 pixels) -> last hidden state (1, N, hidden)
        return self.to_latent(last[-1])
        ### END SOLUTION


# %%
try:
    aelab.seed_everything()
    rnn_model = ConvAutoencoder(RowRNNEncoder(LATENT), TransposedConvDecoder(LATENT, CHANNELS)).to(device)
except NotImplementedError:
    print("RowRNNEncoder is not written: the extension is skipped.")
else:
    rnn_epochs = aelab.by_budget(quick=1, full=EPOCHS)  # a GRU is slow on a CPU: one epoch at the quick budget
    aelab.fit(rnn_model, train_batches, epochs=rnn_epochs, lr=3e-3, desc="row-RNN encoder")
    rnn_mse = aelab.reconstruction_mse(rnn_model, test_batches)
    aelab.show_table([{"encoder": "convolutional", "epochs": EPOCHS, "test MSE": conv_mse["transposed"],
                       "encoder parameters": aelab.count_parameters(conv_models["transposed"].encoder)},
                      {"encoder": "row-by-row GRU", "epochs": rnn_epochs, "test MSE": rnn_mse,
                       "encoder parameters": aelab.count_parameters(rnn_model.encoder)}],
                     title="Same transposed-convolution decoder, two encoders")
    aelab.record("lab03", "rnn_encoder_test_mse", rnn_mse)

# %% [markdown]
# ## Making it fast
#
# `make bench` times this lab's resize-convolution autoencoder against the course notes' pipeline
# (a torchvision `Dataset` with `ToTensor` and a `DataLoader` at batch 64), switches each
# technique below on by itself, and writes the table to `build/bench.md`. What matters here:
#
# * **On a CPU the convolutions dominate.** A batch of 64 costs tens of milliseconds of
#   convolution, next to which converting 64 images with `ToTensor` is small: in-memory batches
#   gain little on a CPU here, unlike lab 02's small fully connected model.
# * **On a GPU the picture flips.** With 16 and 32 feature maps on 28 × 28 images a GPU finishes a
#   batch of 64 almost at once, and the per-sample pipeline becomes the bottleneck. Keep the data
#   on the GPU (`mnist.batches` does; the denoising noise is drawn there too) and use bigger
#   batches, with the learning rate scaled to match (for Adam, roughly by the square root of the
#   batch ratio).
# * **channels_last and mixed precision** are for convolutions on tensor cores: these want the
#   channels as the innermost dimension (NHWC) and fp16 or bf16 numbers, with channel counts that
#   are multiples of 8 (16 and 32 are). The one-channel input layer gains nothing from either.
# * **The resize-convolution is the costly decoder**: its convolutions run at the output
#   resolution, four times as many positions as the transposed convolution's (section 4).
# * **torch.compile** fuses the ReLUs, the upsampling and the sigmoid with their neighbours; its
#   compile time pays back over the full budget's 15 epochs on a GPU, not over two quick epochs.
