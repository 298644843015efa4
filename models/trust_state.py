"""The simulation's dynamic trust state (FORMULAS.md §4-5; every form here is RECONSTRUCTED).

τ is kept sparse, only for the pairs that have been neighbour candidates, with the feedback
count of each pair (for ``TrustConfig.reputation``); the functional forms and the settings
are in ``models.trust``.
"""

from __future__ import annotations

import numpy as np

from models.trust import (
    TrustConfig,
    clean_confidence,
    clean_similarity,
    experienced_reputation,
    trust_value,
)


class TrustState:
    """Sparse trust τ_{x,y} over the pairs ever seen as neighbour candidates, plus reputation.

    Arrays only: pairs are kept in parallel arrays (truster, trustee, x1, x2, tau, feedback
    events) sorted by the int64 key x·n + y, so look-ups and inserts are batched
    ``np.searchsorted`` calls.
    Reputation is recomputed with ``np.bincount`` after every change, so it always matches
    τ. Self-pairs are never stored (τ_{x,x} = 1). FORMULAS.md §4-5, RECONSTRUCTED.
    """

    def __init__(self, n_users: int, config: TrustConfig) -> None:
        """Create an empty state for ``n_users`` users."""
        if n_users < 1:
            raise ValueError("n_users must be positive")
        self.n_users = int(n_users)
        self.config = config
        self._key = np.empty(0, dtype=np.int64)
        self._truster = np.empty(0, dtype=np.int64)
        self._trustee = np.empty(0, dtype=np.int64)
        self._x1 = np.empty(0, dtype=np.float64)
        self._x2 = np.empty(0, dtype=np.float64)
        self._tau = np.empty(0, dtype=np.float64)
        self._events = np.empty(0, dtype=np.float64)  # feedback events per pair
        self._reputation = np.zeros(self.n_users)

    @property
    def reputation(self) -> np.ndarray:
        """(n_users,) ROU_y under ``config.reputation`` and ``reputation_norm`` (a copy)."""
        return self._reputation.copy()

    @property
    def n_pairs(self) -> int:
        """Number of stored (x, y) pairs, x ≠ y."""
        return int(self._key.size)

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Copies of (truster, trustee, tau), sorted by (truster, trustee)."""
        return self._truster.copy(), self._trustee.copy(), self._tau.copy()

    def _keys(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.int64)
        y = np.asarray(y, dtype=np.int64)
        if x.shape != y.shape:
            raise ValueError("x and y must have the same shape")
        if x.size and (min(x.min(), y.min()) < 0 or max(x.max(), y.max()) >= self.n_users):
            raise ValueError("user id out of range")
        return x * self.n_users + y

    def _find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.searchsorted(self._key, keys)
        found = pos < self._key.size
        found[found] = self._key[pos[found]] == keys[found]
        return pos, found

    def _recompute_reputation(self) -> None:
        n = self.n_users
        sums = np.bincount(self._trustee, weights=self._tau, minlength=n)
        if self.config.reputation_norm == "all_users":
            structural = sums / (n - 1) if n > 1 else np.zeros(n)
        else:
            counts = np.bincount(self._trustee, minlength=n)
            structural = np.divide(sums, counts, out=np.zeros(n), where=counts > 0)
        if self.config.reputation != "structural":
            prior = structural if self.config.reputation == "experienced" else np.zeros(n)
            self._reputation = experienced_reputation(
                prior, self._trustee, self._tau, self._events, self.config.experience_prior
            )
        else:
            self._reputation = structural

    def _insert(self, keys: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> None:
        """Insert absent, distinct, off-diagonal pairs at one R-A sweep on current reputation."""
        order = np.argsort(keys)
        keys, x1, x2 = keys[order], x1[order], x2[order]
        trustee = keys % self.n_users
        cfg = self.config
        tau = trust_value(x1, x2, self._reputation[trustee], cfg.k1, cfg.k2, cfg.form)
        at = np.searchsorted(self._key, keys)
        self._key = np.insert(self._key, at, keys)
        self._truster = np.insert(self._truster, at, keys // self.n_users)
        self._trustee = np.insert(self._trustee, at, trustee)
        self._x1 = np.insert(self._x1, at, x1)
        self._x2 = np.insert(self._x2, at, x2)
        self._tau = np.insert(self._tau, at, tau)
        self._events = np.insert(self._events, at, np.zeros(keys.size))

    def observe(self, x: np.ndarray, y: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        """Upsert candidate pairs with their latest similarity and confidence.

        Known pairs get the new x1 = max(0, Sim) (NaN read as 0) and x2 = conf(y|x) and keep
        their τ; new pairs start at one R-A sweep, τ = trust_value(x1, x2, ROU_y). When a pair
        repeats within the call, its last occurrence wins. Self-pairs are ignored.

        Args:
            x: (P,) trusters.
            y: (P,) trustees.
            x1: (P,) similarity Sim(x, y).
            x2: (P,) confidence conf(y|x).

        Returns:
            (P,) τ of the given pairs after the update (1 on self-pairs).
        """
        keys = self._keys(x, y)
        x1c = np.broadcast_to(clean_similarity(x1), keys.shape)
        x2c = np.broadcast_to(clean_confidence(x2), keys.shape)
        off = np.asarray(x) != np.asarray(y)
        # The last occurrence of a repeated key is the latest observation.
        rev_keys = keys[off][::-1]
        uniq, first_rev = np.unique(rev_keys, return_index=True)
        src = np.flatnonzero(off)[::-1][first_rev]
        pos, found = self._find(uniq)
        self._x1[pos[found]] = x1c[src[found]]
        self._x2[pos[found]] = x2c[src[found]]
        self._insert(uniq[~found], x1c[src[~found]], x2c[src[~found]])
        self._recompute_reputation()
        return self.trust(x, y)

    def sweep(self) -> None:
        """One R-A sweep on all stored pairs, blended in: τ ← (1-ρ)τ + ρ·τ_RA (§5).

        τ_RA uses each pair's stored x1, x2 and the current reputation of the trustee; the
        blend is the per-step evaporation and deposit. Reputation is then recomputed.
        """
        cfg = self.config
        tau_ra = trust_value(
            self._x1, self._x2, self._reputation[self._trustee], cfg.k1, cfg.k2, cfg.form
        )
        self._tau = np.clip((1.0 - cfg.rho) * self._tau + cfg.rho * tau_ra, 0.0, 1.0)
        self._recompute_reputation()

    def feedback(
        self, x: np.ndarray, y: np.ndarray, liked: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """R-B update per feedback event, applied in the given order (FORMULAS.md §5).

        Liked: τ ← min(1, τ + Δτ) with Δτ = reward_k1·x1·x2 + reward_k2·ROU_y; disliked:
        τ ← max(0, (1 - rho_neg)·τ - Δτ) (``penalty="symmetric"``) or τ ← (1 - rho_neg)·τ
        (``"proportional"``). Evaporation is not repeated here, since ``sweep`` applies it once
        per step. ROU_y is the reputation at the start of the call (after unknown pairs are
        inserted with x1 = x2 = 0), and the reputation is recomputed once at the end. Events
        on the same pair compound in order: the batch is grouped by pair and processed one
        occurrence rank at a time, each rank vectorised over all pairs. Each event also
        counts once towards its pair's experience n_{x,y} (``reputation="experienced"``).

        Args:
            x: (E,) users who gave the feedback.
            y: (E,) neighbours credited for the recommendation.
            liked: (E,) bool, True for positive feedback.

        Returns:
            (tau_before, tau_after), each (E,): τ just before and just after each event
            (both 1 on self-pairs, which never change).
        """
        keys = self._keys(x, y)
        liked = np.broadcast_to(np.asarray(liked, dtype=bool), keys.shape)
        off = np.asarray(x) != np.asarray(y)
        uniq = np.unique(keys[off])
        _, found = self._find(uniq)
        fresh = uniq[~found]
        self._insert(fresh, np.zeros(fresh.size), np.zeros(fresh.size))
        self._recompute_reputation()
        before = np.ones(keys.shape)
        after = np.ones(keys.shape)
        events = np.flatnonzero(off)
        if events.size:
            ev_pos, _ = self._find(keys[events])
            cfg = self.config
            deposit = (
                cfg.reward_k1 * self._x1[ev_pos] * self._x2[ev_pos]
                + cfg.reward_k2 * self._reputation[self._trustee[ev_pos]]
            )
            order = np.argsort(ev_pos, kind="stable")
            sorted_pos = ev_pos[order]
            group_start = np.r_[0, np.flatnonzero(np.diff(sorted_pos)) + 1]
            sizes = np.diff(np.r_[group_start, sorted_pos.size])
            rank = np.empty(events.size, dtype=np.int64)
            rank[order] = np.arange(sorted_pos.size) - np.repeat(group_start, sizes)
            take = deposit if cfg.penalty == "symmetric" else np.zeros_like(deposit)
            for r in range(int(rank.max()) + 1):
                sel = np.flatnonzero(rank == r)
                p = ev_pos[sel]
                old = self._tau[p]
                new = np.where(
                    liked[events[sel]],
                    np.minimum(1.0, old + deposit[sel]),
                    np.maximum(0.0, (1.0 - cfg.rho_neg) * old - take[sel]),
                )
                self._tau[p] = new
                self._events[p] += 1.0
                before[events[sel]] = old
                after[events[sel]] = new
        self._recompute_reputation()
        return before, after

    def trust(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """τ_{x,y} for the given pairs: 0 for unknown pairs, 1 where x == y."""
        keys = self._keys(x, y)
        pos, found = self._find(keys)
        out = np.zeros(keys.shape)
        out[found] = self._tau[pos[found]]
        out[np.asarray(x) == np.asarray(y)] = 1.0
        return out

    def state_dict(self) -> dict[str, np.ndarray]:
        """Arrays that rebuild this state exactly (reputation is derived, not stored)."""
        return {
            "n_users": np.array(self.n_users, dtype=np.int64),
            "truster": self._truster.copy(),
            "trustee": self._trustee.copy(),
            "x1": self._x1.copy(),
            "x2": self._x2.copy(),
            "tau": self._tau.copy(),
            "events": self._events.copy(),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, np.ndarray], config: TrustConfig) -> TrustState:
        """Rebuild a state saved by ``state_dict`` (for resuming a run).

        A snapshot without ``events`` (saved before feedback counts were kept) reads as no
        feedback on any pair.

        Raises:
            ValueError: if the arrays are inconsistent (lengths, ids, order, duplicates).
        """
        out = cls(int(state["n_users"]), config)
        truster = np.asarray(state["truster"], dtype=np.int64)
        trustee = np.asarray(state["trustee"], dtype=np.int64)
        arrays = [np.asarray(state[k], dtype=np.float64) for k in ("x1", "x2", "tau")]
        arrays.append(np.asarray(state.get("events", np.zeros(truster.shape)), dtype=np.float64))
        if any(a.shape != truster.shape for a in [trustee, *arrays]):
            raise ValueError("trust state arrays differ in length")
        keys = out._keys(truster, trustee)
        if np.any(np.diff(keys) <= 0) or np.any(truster == trustee):
            raise ValueError("trust state pairs must be sorted, distinct and off-diagonal")
        out._key, out._truster, out._trustee = keys, truster.copy(), trustee.copy()
        out._x1, out._x2, out._tau, out._events = (a.copy() for a in arrays)
        out._recompute_reputation()
        return out
