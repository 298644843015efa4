"""A trained deep scorer inside the serendipity agent (ARCHITECTURE.md section 4).

The agent trains the scorer on what it can see (every domain's visible ratings, plus the
serendipitous finds users reported in their feedback), scores its candidates with it, and
retrains every ``retrain_every`` steps on the feedback gathered so far. Until a scorer that
needs serendipity labels has enough of them, the agent keeps ranking with the fuzzy system.

The trained weights travel with the agent's snapshot, so a resumed run scores exactly as an
uninterrupted one.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from models.scoring import InteractionData, Scorer

log = logging.getLogger(__name__)

ScorerFactory = Callable[[], Scorer]
MIN_LABELS = 10  # serendipitous finds a label-trained scorer waits for before its first fit


class ModelScoring:
    """Owns one scorer: when to (re)fit it, on what, and its snapshot."""

    def __init__(
        self,
        name: str,
        factory: ScorerFactory,
        *,
        needs_labels: bool,
        retrain_every: int,
        seed: int,
        device: str,
        item_domain: np.ndarray,
        target_domain: int,
        like_threshold: float,
    ) -> None:
        self.name = name
        self.factory = factory
        self.needs_labels = needs_labels
        self.retrain_every = retrain_every
        self.seed = seed
        self.device = device
        self.item_domain = item_domain
        self.target_domain = target_domain
        self.like_threshold = like_threshold
        self.scorer: Scorer | None = None
        self.fitted_step = -1
        self.label_users: list[int] = []
        self.label_items: list[int] = []
        self.fits = 0

    @property
    def ready(self) -> bool:
        return self.scorer is not None

    def add_labels(self, users: list[int], items: list[int]) -> None:
        self.label_users.extend(users)
        self.label_items.extend(items)

    def due(self, step: int) -> bool:
        if self.scorer is None:
            return True
        return self.retrain_every > 0 and step - self.fitted_step >= self.retrain_every

    def maybe_fit(self, step: int, ratings: sp.csr_matrix) -> bool:
        """Fit when due and possible; returns True when a new model was trained."""
        if not self.due(step):
            return False
        if self.needs_labels and len(self.label_users) < MIN_LABELS:
            return False
        labels = None
        if self.label_users:
            labels = sp.csr_matrix(
                (np.ones(len(self.label_users)), (self.label_users, self.label_items)),
                shape=ratings.shape,
            )
            labels.data[:] = 1.0  # duplicates summed by the constructor
        data = InteractionData(
            ratings=ratings,
            item_domain=self.item_domain,
            target_domain=self.target_domain,
            like_threshold=self.like_threshold,
            serendipitous=labels,
        )
        scorer = self.factory()
        scorer.fit(data, seed=self.seed + step, device=self.device)
        self.scorer = scorer
        self.fitted_step = step
        self.fits += 1
        log.info(
            "%s trained at step %d on %d ratings, %d labels",
            self.name,
            step,
            ratings.nnz,
            len(self.label_users),
        )
        return True

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """(B,) users, (B, C) items -> (B, C) scores (the scorer must be ready)."""
        assert self.scorer is not None
        return np.asarray(self.scorer.score(users, items), dtype=float)

    # ------------------------------------------------------------------ snapshot
    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model_meta": np.array([self.fitted_step, self.fits]),
            "labels": np.array([self.label_users, self.label_items], dtype=np.int64).reshape(2, -1),
        }
        if self.scorer is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "model.pt"
                self.scorer.save(path)
                out["model_blob"] = np.frombuffer(path.read_bytes(), dtype=np.uint8)
        return out

    def restore(self, state: dict[str, Any]) -> None:
        self.fitted_step, self.fits = (int(v) for v in state["model_meta"])
        self.label_users = state["labels"][0].tolist()
        self.label_items = state["labels"][1].tolist()
        if "model_blob" in state:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "model.pt"
                path.write_bytes(np.asarray(state["model_blob"], dtype=np.uint8).tobytes())
                self.scorer = type(self.factory()).load(path, device="cpu")
