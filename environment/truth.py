"""The users' ground truth: latent tastes that the recommender agents never see.

One structure serves both kinds of world (ARCHITECTURE.md section 3):

* synthetic worlds draw its parameters from a generator (``environment/synthetic.py``);
* real worlds fit it to the observed ratings (the oracle of ``environment/oracle.py``), so
  that every user has a true utility for every item (semi-synthetic, as RecLab and T-RECS do).

A user's taste has a part shared across domains and a part specific to each domain; an item
has a shared and a specific part too. The true utility of item ``i`` (of domain ``d``) to user
``u`` is ``mu + b_u + b_i + <p_u, q_i> + <p_{u,d}, s_i>``, clipped to the rating scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class LatentTruth:
    """Biased factor model with a shared and a domain-specific part per user.

    Shapes: U users, I items, K domains, Ds shared and Dd specific latent dimensions.
    """

    global_mean: float
    user_bias: np.ndarray  # (U,)
    item_bias: np.ndarray  # (I,)
    user_shared: np.ndarray  # (U, Ds)
    item_shared: np.ndarray  # (I, Ds)
    user_specific: np.ndarray  # (U, K, Dd)
    item_specific: np.ndarray  # (I, Dd)
    item_domain: np.ndarray  # (I,) int domain index
    scale: tuple[float, float]

    @property
    def n_users(self) -> int:
        return int(self.user_bias.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.item_bias.shape[0])

    def raw_utility(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Unclipped utility, shape (B, I) or (B, len(items))."""
        users = np.asarray(users, dtype=np.int64)
        item_idx = np.arange(self.n_items) if items is None else np.asarray(items, dtype=np.int64)
        shared = self.user_shared[users] @ self.item_shared[item_idx].T  # (B, C)
        # Domain-specific part: pick, per item, the user's vector of that item's domain.
        doms = self.item_domain[item_idx]  # (C,)
        spec_u = self.user_specific[users]  # (B, K, Dd)
        per_domain = np.einsum("bkd,cd->bkc", spec_u, self.item_specific[item_idx])  # (B, K, C)
        specific = np.take_along_axis(
            per_domain, np.broadcast_to(doms[None, None, :], (len(users), 1, len(item_idx))), axis=1
        )[:, 0, :]
        return (
            self.global_mean
            + self.user_bias[users][:, None]
            + self.item_bias[item_idx][None, :]
            + shared
            + specific
        )

    def utility(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """True utility on the rating scale, shape (B, C)."""
        lo, hi = self.scale
        return np.clip(self.raw_utility(users, items), lo, hi)

    def pair_utility(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Utility of aligned (user, item) pairs, shape (P,)."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        shared = np.einsum("pd,pd->p", self.user_shared[users], self.item_shared[items])
        spec = np.einsum(
            "pd,pd->p",
            self.user_specific[users, self.item_domain[items]],
            self.item_specific[items],
        )
        raw = self.global_mean + self.user_bias[users] + self.item_bias[items] + shared + spec
        lo, hi = self.scale
        return np.clip(raw, lo, hi)

    def item_vectors(self) -> np.ndarray:
        """Unit-norm item taste vectors (shared part), used to measure how far an item lies
        from a user's history. The shared part is comparable across domains."""
        v = self.item_shared
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return v / np.maximum(norms, 1e-12)
