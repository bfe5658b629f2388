"""Models from earlier labs, kept here so later labs can compare against them (as d2l keeps
each chapter's classes in its library). Each is the reference answer of the lab named."""

from __future__ import annotations

from torch import Tensor, nn


class ClassicAutoencoder(nn.Module):
    """Lab 02's fully connected autoencoder: 784 -> 98 -> latent -> 196 -> 784.

    tanh after each hidden layer, dropout after each tanh (0 by default, as lab 02 trains it; the
    course notes use 0.2), a linear latent and a sigmoid output.
    Takes flattened images (N, 784); forward returns (reconstruction (N, 784), latent (N, latent_dim)).
    """

    def __init__(self, latent_dim: int = 32, dropout: float = 0.0):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(784, 98), nn.Tanh(), nn.Dropout(dropout), nn.Linear(98, latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, 196), nn.Tanh(), nn.Dropout(dropout),
                                     nn.Linear(196, 784), nn.Sigmoid())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = self.encoder(x)
        return self.decoder(z), z
