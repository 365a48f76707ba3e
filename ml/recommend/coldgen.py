"""Collaborative embeddings for products nobody has bought yet, generated from their content.

A product listed today has no interactions, so a collaborative model has no vector for it. Given the vectors of
the products it does know (:func:`collaborative_space`: PureSVD item factors of the user x item matrix) and every
product's content features (attributes, text), a generator learns content -> vector on the known products and
writes a vector for each new one, which then scores like any other (``user history @ item factors @ vector``).

Two generators share one architecture (an MLP from content and noise to the vector):

- ``regression``: trained to reproduce the known vectors (mean squared error);
- ``gan``: the same loss plus a conditional adversarial one: a discriminator sees (content, vector) pairs and
  tells the real vectors of known products from generated ones, so the generator is pushed towards vectors that
  look like real ones for that content, not towards the average of the plausible ones. ``adversarial_weight``
  sets the balance; 0 is the regression.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn


def collaborative_space(interactions: sp.csr_matrix, dims: int = 64, seed: int = 0) -> np.ndarray:
    """PureSVD item factors ``[items, dims]`` of a binary users x items matrix (columns without any interaction
    get a zero row): a user's score for item ``i`` is ``x_u @ Q @ Q[i]``."""
    from sklearn.utils.extmath import randomized_svd

    k = max(1, min(dims, min(interactions.shape) - 1))
    _, _, vt = randomized_svd(interactions.astype(np.float32), k, random_state=seed)
    return vt.T.astype(np.float32)


@dataclass(frozen=True)
class GeneratorConfig:
    hidden: int = 256
    noise_dims: int = 16
    dropout: float = 0.2
    adversarial_weight: float = 0.0
    epochs: int = 50
    lr: float = 1e-3
    weight_decay: float = 1e-5
    batch_size: int = 512
    seed: int = 0


class _Generator(nn.Module):
    def __init__(self, content_dims: int, out_dims: int, cfg: GeneratorConfig):
        super().__init__()
        self.noise_dims = cfg.noise_dims
        self.net = nn.Sequential(
            nn.Linear(content_dims + cfg.noise_dims, cfg.hidden),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, cfg.hidden),
            nn.ReLU(),
            nn.Linear(cfg.hidden, out_dims),
        )

    def forward(self, content: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:  # generation: the noise's mean, one vector per product
            noise = torch.zeros(len(content), self.noise_dims)
        return self.net(torch.cat([content, noise], dim=1))


class _Discriminator(nn.Module):
    def __init__(self, content_dims: int, emb_dims: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(content_dims + emb_dims, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1)
        )

    def forward(self, content: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([content, emb], dim=1)).squeeze(1)


class EmbeddingGenerator:
    """Content -> collaborative vector, trained on the known products (see the module docstring)."""

    def __init__(self, config: GeneratorConfig = GeneratorConfig()):
        self.config = config
        self.scale_ = 1.0

    def fit(self, content: np.ndarray, vectors: np.ndarray) -> EmbeddingGenerator:
        cfg = self.config
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        x = torch.as_tensor(np.asarray(content, dtype=np.float32))
        # vectors are unit-scale per dimension for training; generated ones are scaled back
        self.scale_ = float(np.abs(vectors).mean()) or 1.0
        y = torch.as_tensor(np.asarray(vectors, dtype=np.float32) / self.scale_)
        self.generator_ = _Generator(x.shape[1], y.shape[1], cfg)
        g_opt = torch.optim.Adam(self.generator_.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        adversarial = cfg.adversarial_weight > 0
        if adversarial:
            self.discriminator_ = _Discriminator(x.shape[1], y.shape[1], cfg.hidden)
            d_opt = torch.optim.Adam(self.discriminator_.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        bce = nn.BCEWithLogitsLoss()
        self.history_: list[float] = []
        for _ in range(cfg.epochs):
            order = rng.permutation(len(x))
            total = 0.0
            for start in range(0, len(x), cfg.batch_size):
                idx = torch.as_tensor(order[start : start + cfg.batch_size])
                xb, yb = x[idx], y[idx]
                noise = torch.randn(len(idx), cfg.noise_dims)
                self.generator_.train()
                fake = self.generator_(xb, noise)
                if adversarial:
                    # the discriminator: real pairs 1, generated pairs 0
                    d_opt.zero_grad()
                    d_loss = bce(self.discriminator_(xb, yb), torch.ones(len(idx))) + bce(
                        self.discriminator_(xb, fake.detach()), torch.zeros(len(idx))
                    )
                    d_loss.backward()
                    d_opt.step()
                g_opt.zero_grad()
                loss = ((fake - yb) ** 2).mean()
                if adversarial:
                    loss = loss + cfg.adversarial_weight * bce(
                        self.discriminator_(xb, fake), torch.ones(len(idx))
                    )
                loss.backward()
                g_opt.step()
                total += loss.item() * len(idx)
            self.history_.append(total / len(x))
        return self

    def generate(self, content: np.ndarray) -> np.ndarray:
        self.generator_.eval()
        with torch.no_grad():
            out = self.generator_(torch.as_tensor(np.asarray(content, dtype=np.float32)))
        return out.numpy() * self.scale_
