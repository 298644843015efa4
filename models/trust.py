"""Dynamic trust and reputation of TFCDSRS (FORMULAS.md §4-5; every form here is RECONSTRUCTED).

R-A (the default) is a smoothed harmonic mean of similarity, confidence and reputation,
iterated towards a fixed point; R-B is the TARS-style pheromone update on feedback. The
functional form lives in ``trust_value`` alone so that it can be swapped and ablated. The
simulation's sparse state (τ per candidate pair, reputation) is ``models.trust_state``.
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
        reputation: what ROU_y, the x3 of R-A and of the R-B deposit, measures
            (RECONSTRUCTED; see ``experienced_reputation``). With S_y the structural mean
            of §4 (under ``reputation_norm``), n_{x,y} the number of feedback events on the
            pair and κ = ``experience_prior``:
            ``earned`` (default): Σ_x n_{x,y}·τ_{x,y} / (κ + Σ_x n_{x,y}), the standing y
            has earned as a recommender from feedback (TARS: reputation is aggregated trust
            pheromone, which only feedback deposits), 0 until someone has given feedback on
            y's recommendations; ``experienced``: (κ·S_y + Σ_x n_{x,y}·τ_{x,y}) /
            (κ + Σ_x n_{x,y}), S_y until feedback arrives; ``structural``: S_y (§4 as
            written). Why the default: with S_y the pairs never touched by feedback outvote
            the few that are, and their τ is R-A's harmonic(Sim, conf, ROU), which a push
            attacker copying popular ratings scores well on (high conf). On
            scenarios/shilling.yaml (bench/study_shilling.py, seeds 11-15) attackers then
            ended level with the honest median and sat in more neighbourhoods with trust on
            than off (8-11% of the slots against 4-8%); ``experienced`` put them below the
            median but still in 7-9% of the slots; ``earned`` drops them to 0.2% in the first
            half of the run and 0 in the second, since their recommendations never earn a
            like. The quickstart claims hold 5/5 with ``experienced`` and with ``earned``.
        experience_prior: κ > 0, in feedback events: how much evidence it takes before
            reputation follows the tested pairs (``earned``: shrinkage towards 0;
            ``experienced``: towards S_y).
        credit: which neighbours an R-B feedback event on item i reaches (read by the caller
            that names the contributors, ``models.trust_credit.top_contributors``): ``vouchers``
            (default, RECONSTRUCTED) the neighbours whose rating pushed the prediction up,
            r_{y,i} > r̄_y for a positive weight, the ones who recommended i; ``raters`` every
            neighbour who rated i (the literal reading). Why the default: under ``raters`` a
            neighbour is credited for a liked item they rated below their own mean, that is
            for advising against it; a push attacker collected likes that way for the
            popular filler items they rated at the item mean.
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
    reputation: Literal["earned", "experienced", "structural"] = "earned"
    experience_prior: float = Field(default=5.0, gt=0)
    credit: Literal["vouchers", "raters"] = "vouchers"
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


def experienced_reputation(
    prior_mean: np.ndarray,
    trustee: np.ndarray,
    tau: np.ndarray,
    events: np.ndarray,
    prior: float,
) -> np.ndarray:
    """Reputation as standing earned from feedback (FORMULAS.md §4-5, RECONSTRUCTED).

    ROU_y = (κ·m_y + Σ_x n_{x,y}·τ_{x,y}) / (κ + Σ_x n_{x,y}): a prior m_y worth κ feedback
    events, and each pair's trust counting as often as feedback has tested it. With m_y the
    structural S_y of §4 this is ``TrustConfig.reputation="experienced"`` (ROU_y = S_y until
    feedback arrives); with m_y = 0 it is ``"earned"`` (0 until feedback arrives).

    Args:
        prior_mean: (n,) m_y.
        trustee: (P,) y of each stored pair.
        tau: (P,) τ of each pair.
        events: (P,) number of feedback events on each pair (>= 0).
        prior: κ > 0.

    Returns:
        (n,) ROU.
    """
    n = len(prior_mean)
    weight = np.bincount(trustee, weights=events, minlength=n)
    earned = np.bincount(trustee, weights=events * tau, minlength=n)
    return (prior * np.asarray(prior_mean, dtype=np.float64) + earned) / (prior + weight)


def clean_similarity(x1: np.ndarray) -> np.ndarray:
    """x1 = max(0, Sim): negative or undefined similarity gives no trust (§5)."""
    return np.clip(np.nan_to_num(np.asarray(x1, dtype=np.float64), nan=0.0), 0.0, 1.0)


def clean_confidence(x2: np.ndarray) -> np.ndarray:
    """x2 = conf(y|x) in [0, 1], NaN read as 0 (§3)."""
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
    x1c, x2c = clean_similarity(x1), clean_confidence(x2)
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
