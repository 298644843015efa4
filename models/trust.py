"""Dynamic trust and reputation of TFCDSRS (FORMULAS.md §4-5; every form here is RECONSTRUCTED).

R-A (the default) is a smoothed harmonic mean of similarity, confidence and reputation,
iterated towards a fixed point; R-B is the TARS-style pheromone update on feedback. The
functional form lives in ``trust_value`` alone so that it can be swapped and ablated.
``TrustState`` keeps τ sparse: only pairs that have been neighbour candidates are stored.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

TrustForm = Literal["harmonic", "product", "harmonic_no_reputation"]


class TrustConfig(BaseModel, extra="forbid"):
    """Settings of the dynamic trust model (FORMULAS.md §4-5, RECONSTRUCTED).

    Attributes:
        k1: guard added to similarity and confidence in R-A (> 0).
        k2: guard added to reputation in R-A (> 0).
        form: the trust function, see ``trust_value``.
        rho: evaporation per step: τ ← (1-ρ)τ + ρ·τ_RA in ``TrustState.sweep``.
        reward_k1: R-B deposit weight of x1·x2 on positive feedback.
        reward_k2: R-B deposit weight of x3 = ROU_y on positive feedback.
        rho_neg: fraction of τ removed on negative feedback.
        penalty: ``symmetric`` (default): a dislike also takes away the deposit a like would
            have added, τ ← max(0, (1-rho_neg)τ - Δτ), so a neighbour who keeps disappointing
            loses trust even while reputations (and with them τ_RA) grow; ``proportional``:
            the literal FORMULAS.md §5 decrement τ ← (1-rho_neg)τ (RECONSTRUCTED either way).
        reputation_norm: ``all_users`` divides Σ_x τ_{x,y} by n-1 (§4 as written);
            ``known_pairs`` by the number of users holding a trust value for y.
        theta: θ_τ, the trust threshold for neighbour selection (used by callers).
    """

    k1: float = Field(default=1e-3, gt=0)
    k2: float = Field(default=1e-3, gt=0)
    form: TrustForm = "harmonic"
    rho: float = Field(default=0.05, ge=0, le=1)
    reward_k1: float = Field(default=0.3, ge=0)
    reward_k2: float = Field(default=0.3, ge=0)
    rho_neg: float = Field(default=0.2, ge=0, le=1)
    penalty: Literal["symmetric", "proportional"] = "symmetric"
    reputation_norm: Literal["all_users", "known_pairs"] = "known_pairs"
    theta: float = Field(default=0.1, ge=0, le=1)


def trust_value(
    x1: np.ndarray,
    x2: np.ndarray,
    x3: np.ndarray,
    k1: float,
    k2: float,
    form: TrustForm = "harmonic",
) -> np.ndarray:
    """Trust τ_{x,y} from similarity, confidence and reputation (FORMULAS.md §5, RECONSTRUCTED).

    * ``harmonic`` (R-A default): min(1, 3 / (1/(x1+k1) + 1/(x2+k1) + 1/(x3+k2))).
    * ``product``: (x1+k1)(x2+k1)(x3+k2) / ((1+k1)²(1+k2)), clipped to 1.
    * ``harmonic_no_reputation`` (ablation): min(1, 2 / (1/(x1+k1) + 1/(x2+k1))).

    All three increase in every input they use and lie in (0, 1] for inputs in [0, 1].

    Args:
        x1: max(0, Sim(x, y)), broadcastable with x2 and x3.
        x2: conf(y|x).
        x3: ROU_y.
        k1: guard on x1 and x2.
        k2: guard on x3.
        form: which form.

    Returns:
        τ with the broadcast shape of the inputs.
    """
    a = np.asarray(x1, dtype=np.float64) + k1
    b = np.asarray(x2, dtype=np.float64) + k1
    c = np.asarray(x3, dtype=np.float64) + k2
    if form == "harmonic":
        tau = 3.0 / (1.0 / a + 1.0 / b + 1.0 / c)
    elif form == "product":
        tau = (a * b * c) / ((1.0 + k1) ** 2 * (1.0 + k2))
    elif form == "harmonic_no_reputation":
        tau = np.broadcast_to(2.0 / (1.0 / a + 1.0 / b), np.broadcast(a, b, c).shape)
    else:
        raise ValueError(f"unknown trust form {form!r}")
    return np.minimum(tau, 1.0)


def reputation_dense(
    tau: np.ndarray, norm: Literal["all_users", "known_pairs"] = "all_users"
) -> np.ndarray:
    """Reputation ROU_y = (1/(n-1)) Σ_{x≠y} τ_{x,y} (FORMULAS.md §4, RECONSTRUCTED).

    Args:
        tau: (n, n) trust, truster on rows; NaN marks a pair without a trust value. The
            diagonal is ignored.
        norm: ``all_users`` divides by n-1; ``known_pairs`` by the number of non-NaN
            off-diagonal entries in column y (0 when there are none).

    Returns:
        (n,) reputation.
    """
    tau = np.array(tau, dtype=np.float64)
    n = tau.shape[0]
    np.fill_diagonal(tau, np.nan)
    sums = np.nansum(tau, axis=0)
    if norm == "all_users":
        return sums / (n - 1) if n > 1 else np.zeros(n)
    counts = np.sum(np.isfinite(tau), axis=0)
    return np.divide(sums, counts, out=np.zeros(n), where=counts > 0)


def _clean_similarity(x1: np.ndarray) -> np.ndarray:
    """x1 = max(0, Sim): negative or undefined similarity gives no trust (§5)."""
    return np.clip(np.nan_to_num(np.asarray(x1, dtype=np.float64), nan=0.0), 0.0, 1.0)


def _clean_confidence(x2: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(np.asarray(x2, dtype=np.float64), nan=0.0), 0.0, 1.0)


def ra_fixed_point(
    x1: np.ndarray,
    x2: np.ndarray,
    k1: float,
    k2: float,
    tol: float = 1e-4,
    max_iter: int = 50,
    form: TrustForm = "harmonic",
) -> tuple[np.ndarray, np.ndarray, int]:
    """Dense reference of R-A iterated to its fixed point (FORMULAS.md §5, RECONSTRUCTED).

    τ^(k) = trust_value(x1, x2, ROU^(k-1)) off the diagonal, τ_{x,x} = 1,
    ROU^(k) = reputation over all n-1 other users, ROU^(0) = 0; stop when
    max_y |ROU^(k) - ROU^(k-1)| < tol or k = max_iter. O(n²) per iteration: a reference
    for small n and for tests, not for the simulation (see ``TrustState``).

    Args:
        x1: (n, n) similarity (negative and NaN read as 0).
        x2: (n, n) confidence.
        k1: guard on x1 and x2.
        k2: guard on reputation.
        tol: convergence threshold on reputation.
        max_iter: iteration cap.
        form: trust form.

    Returns:
        (tau (n, n), reputation (n,), iterations run).
    """
    x1c, x2c = _clean_similarity(x1), _clean_confidence(x2)
    rou = np.zeros(x1c.shape[0])
    tau = np.eye(x1c.shape[0])
    for k in range(1, max_iter + 1):
        tau = trust_value(x1c, x2c, rou[None, :], k1, k2, form)
        np.fill_diagonal(tau, 1.0)
        new = reputation_dense(tau, "all_users")
        step = float(np.max(np.abs(new - rou), initial=0.0))
        rou = new
        if step < tol:
            return tau, rou, k
    return tau, rou, max_iter


class TrustState:
    """Sparse trust τ_{x,y} over the pairs ever seen as neighbour candidates, plus reputation.

    Arrays only: pairs are kept in parallel arrays (truster, trustee, x1, x2, tau) sorted by
    the int64 key x·n + y, so look-ups and inserts are batched ``np.searchsorted`` calls.
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
        self._reputation = np.zeros(self.n_users)

    @property
    def reputation(self) -> np.ndarray:
        """(n_users,) ROU_y under ``config.reputation_norm`` (a copy)."""
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
            self._reputation = sums / (n - 1) if n > 1 else np.zeros(n)
        else:
            counts = np.bincount(self._trustee, minlength=n)
            self._reputation = np.divide(sums, counts, out=np.zeros(n), where=counts > 0)

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
        x1c = np.broadcast_to(_clean_similarity(x1), keys.shape)
        x2c = np.broadcast_to(_clean_confidence(x2), keys.shape)
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
        occurrence rank at a time, each rank vectorised over all pairs.

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
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, np.ndarray], config: TrustConfig) -> TrustState:
        """Rebuild a state saved by ``state_dict`` (for resuming a run).

        Raises:
            ValueError: if the arrays are inconsistent (lengths, ids, order, duplicates).
        """
        out = cls(int(state["n_users"]), config)
        truster = np.asarray(state["truster"], dtype=np.int64)
        trustee = np.asarray(state["trustee"], dtype=np.int64)
        arrays = [np.asarray(state[k], dtype=np.float64) for k in ("x1", "x2", "tau")]
        if any(a.shape != truster.shape for a in [trustee, *arrays]):
            raise ValueError("trust state arrays differ in length")
        keys = out._keys(truster, trustee)
        if np.any(np.diff(keys) <= 0) or np.any(truster == trustee):
            raise ValueError("trust state pairs must be sorted, distinct and off-diagonal")
        out._key, out._truster, out._trustee = keys, truster.copy(), trustee.copy()
        out._x1, out._x2, out._tau = (a.copy() for a in arrays)
        out._recompute_reputation()
        return out
