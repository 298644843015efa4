"""The contract every deep scorer (and every offline baseline) follows.

A scorer trains on ``InteractionData`` (arrays only: no agents, no database) and scores
candidate items for users in batches. The serendipity agent and ``main.py evaluate`` use
nothing but this interface, so any scorer can stand in for another (STYLE.md: LensKit's
shared contract, RecBole's uniform model API).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:  # torch loads only when a model is used, not for every fuzzy-only run
    import torch

ProgressFn = Callable[[int, int], None]  # (done, total) epochs


@dataclass
class InteractionData:
    """What a scorer may learn from. Shapes: U users, I items (all domains), K domains.

    ``ratings`` holds rating values on the world's scale; its stored pattern is the set of
    observed (user, item) pairs. ``serendipitous`` marks pairs known to have been experienced
    as serendipitous (training labels). ``timestamps`` (same pattern as ``ratings``) orders a
    user's history for sequence models; without it, item order within a row is used.
    """

    ratings: sp.csr_matrix  # (U, I)
    item_domain: np.ndarray  # (I,) int
    target_domain: int
    like_threshold: float
    serendipitous: sp.csr_matrix | None = None  # (U, I) binary
    timestamps: sp.csr_matrix | None = None  # (U, I) float
    item_features: np.ndarray | None = None  # (I, F)

    @property
    def n_users(self) -> int:
        return int(self.ratings.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.ratings.shape[1])

    def domain_items(self, domain: int) -> np.ndarray:
        return np.flatnonzero(self.item_domain == domain)

    def liked(self) -> sp.csr_matrix:
        """Binary (U, I) matrix of ratings at or above the like threshold."""
        r = self.ratings.tocsr()
        keep = r.data >= self.like_threshold
        out = sp.csr_matrix(
            (
                np.ones(int(keep.sum())),
                (np.repeat(np.arange(r.shape[0]), np.diff(r.indptr))[keep], r.indices[keep]),
            ),
            shape=r.shape,
        )
        return out


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; ``cuda`` without a GPU is an error."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    return torch.device(device)


class Scorer(abc.ABC):
    """Trains on interactions, then scores (user, candidate item) pairs; higher = better."""

    name: ClassVar[str]

    @abc.abstractmethod
    def fit(
        self,
        data: InteractionData,
        *,
        seed: int,
        device: str = "auto",
        progress: ProgressFn | None = None,
    ) -> dict[str, float]:
        """Train from scratch; returns a small log (final loss, epochs, seconds, ...)."""

    @abc.abstractmethod
    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """users (B,) int, items (B, C) int -> scores (B, C) float."""

    @abc.abstractmethod
    def save(self, path: Path) -> None:
        """Write everything needed to score again (config, weights, fitted arrays)."""

    @classmethod
    @abc.abstractmethod
    def load(cls, path: Path, device: str = "cpu") -> Scorer:
        """Read what ``save`` wrote."""
