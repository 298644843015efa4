"""What a world is made of, whichever source it came from (synthetic or real).

``WorldData`` is the contract between the world builders (``environment/synthetic.py``,
``environment/datasets/``) and the simulation (``environment/world.py``). Ids are dense: users
``0..U-1`` and items ``0..I-1`` over all domains; ``item_domain`` says which domain an item is in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from environment.truth import LatentTruth

USER_KINDS = ("honest", "adversarial")


@dataclass
class RatingLog:
    """Aligned arrays of ratings: one entry per (user, item)."""

    users: np.ndarray  # (R,) int
    items: np.ndarray  # (R,) int
    ratings: np.ndarray  # (R,) float
    timestamps: np.ndarray | None = None  # (R,) float seconds, when known

    def __len__(self) -> int:
        return int(self.users.shape[0])

    def subset(self, mask: np.ndarray) -> RatingLog:
        ts = None if self.timestamps is None else self.timestamps[mask]
        return RatingLog(self.users[mask], self.items[mask], self.ratings[mask], ts)


@dataclass
class WorldData:
    """A world's catalogue, users, initial history and ground truth."""

    name: str
    domain_names: list[str]
    target_domain: int
    item_domain: np.ndarray  # (I,) int
    item_labels: list[str]
    history: RatingLog  # ratings known before the run (cold-start users' appear on arrival)
    arrival_step: np.ndarray  # (U,) int, 0 = present from the start
    cold_start: np.ndarray  # (U,) bool: arrives with few or no target-domain ratings
    user_kind: np.ndarray  # (U,) int index into USER_KINDS
    curiosity: np.ndarray  # (U,) float in [0, 1]: openness to the unexpected
    comfort_radius: np.ndarray  # (U,) float: distance beyond which an item feels unexpected
    truth: LatentTruth
    scale: tuple[float, float]
    rating_step: float = 1.0  # ratings are rounded to multiples of this (0.5 for MovieLens)
    like_threshold: float = 4.0  # a rating at or above this means "liked"
    trust_edges: np.ndarray | None = None  # (E, 2) int truster, trustee (real trust network)
    pushed_items: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    notes: list[str] = field(default_factory=list)  # what a loader dropped and why, etc.

    @property
    def n_users(self) -> int:
        return int(self.arrival_step.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.item_domain.shape[0])

    @property
    def n_domains(self) -> int:
        return len(self.domain_names)

    def domain_items(self, domain: int) -> np.ndarray:
        return np.flatnonzero(self.item_domain == domain)

    def validate(self) -> None:
        """Check the arrays agree with each other; raises ValueError naming the field."""
        u, i = self.n_users, self.n_items
        checks = {
            "cold_start": self.cold_start.shape == (u,),
            "user_kind": self.user_kind.shape == (u,),
            "curiosity": self.curiosity.shape == (u,),
            "comfort_radius": self.comfort_radius.shape == (u,),
            "item_labels": len(self.item_labels) == i,
            "truth.user_bias": self.truth.n_users == u,
            "truth.item_bias": self.truth.n_items == i,
            "target_domain": 0 <= self.target_domain < self.n_domains,
            "history.users": len(self.history) == 0
            or (self.history.users.min() >= 0 and self.history.users.max() < u),
            "history.items": len(self.history) == 0
            or (self.history.items.min() >= 0 and self.history.items.max() < i),
            "item_domain": i == 0
            or (self.item_domain.min() >= 0 and self.item_domain.max() < self.n_domains),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"world {self.name!r}: inconsistent fields: {', '.join(bad)}")
