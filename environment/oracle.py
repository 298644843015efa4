"""The oracle: a factor model fitted to real ratings that stands in for the users' tastes.

A real data set says what people rated, not what they would think of everything else. The
simulation needs a true utility for every (user, item) pair, so it fits the structure of
``LatentTruth`` to the observed ratings and treats the fit as ground truth (semi-synthetic
worlds, as RecLab and T-RECS do; ARCHITECTURE.md section 3):

    r(u, i) ~ mu + b_u + b_i + <p_u, q_i> + <p_{u,d(i)}, s_i>

with a user taste ``p_u`` shared by all domains and one ``p_{u,d}`` per domain. The loss is
RECONSTRUCTED (no paper fixes it): the mean over ratings of the squared error plus ``l2`` times
the squared norms of the factor rows the rating touches (the regulariser of stochastic-gradient
MF), plus ``bias_l2`` times each bias squared once (pseudo-ratings at the mean), minimised
full-batch with Adam in NumPy from the bias baseline's solution. The per-rating factor penalty
was chosen over a uniform one because, each at its best held-out RMSE on MovieLens
Action/Comedy, it keeps twice the personal taste in the truth (utility sd 0.19 vs 0.09 on the
0.5-5 scale; RMSE 0.888 vs 0.878). A held-out share of the ratings measures the fit against a
global mean and a regularised user + item bias baseline, so a reader can judge how much the
truth explains beyond popularity.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from environment.truth import LatentTruth

if TYPE_CHECKING:
    from environment.datasets.common import DenseRatings

log = logging.getLogger(__name__)

_ADAM_B1, _ADAM_B2, _ADAM_EPS = 0.9, 0.999, 1e-8


class OracleConfig(BaseModel):
    """How the ground-truth factor model is fitted to a real data set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shared_dim: int = Field(8, ge=1, description="taste dimensions shared by all domains")
    specific_dim: int = Field(4, ge=0, description="taste dimensions specific to each domain")
    epochs: int = Field(80, ge=1, description="full-batch Adam steps")
    lr: float = Field(0.05, gt=0.0, description="Adam learning rate")
    l2: float = Field(
        0.25, ge=0.0, description="penalty on the squared factor norms, per rating that uses them"
    )
    init_scale: float = Field(0.1, gt=0.0, description="standard deviation of the initial factors")
    holdout: float = Field(
        0.1, ge=0.0, lt=1.0, description="share of ratings held out to measure the fit (0: none)"
    )
    refit: bool = Field(
        True,
        description="after measuring, fit again on all ratings (the truth then uses every one)",
    )
    bias_l2: float = Field(
        5.0, ge=0.0, description="shrinkage of the biases (pseudo-ratings at the mean)"
    )
    seed: int | None = Field(
        None,
        description="fixes the oracle whatever the scenario seed (None: derived from the world's rng)",
    )


@dataclass
class OracleReport:
    """How well the oracle explains ratings it did not see, next to two baselines."""

    n_train: int
    n_holdout: int
    rmse: float  # held-out RMSE of the oracle (NaN without a holdout)
    rmse_global_mean: float
    rmse_bias: float
    train_rmse: float  # RMSE of the final truth on the ratings it was fitted to
    bias_sd: float  # spread of b_u + b_i over (user, item) pairs of the whole catalogue
    taste_sd: float  # spread of the personal part <p_u, q_i> + <p_ud, s_i> over them
    seconds: float

    def line(self) -> str:
        """One sentence for the world's notes."""
        if self.n_holdout == 0:
            return (
                f"Oracle: training RMSE {self.train_rmse:.3f} (no held-out ratings); utility sd "
                f"from biases {self.bias_sd:.2f}, from personal tastes {self.taste_sd:.2f}; "
                f"{self.seconds:.1f} s."
            )
        return (
            f"Oracle: held-out RMSE {self.rmse:.3f} on {self.n_holdout:,} ratings "
            f"(global mean {self.rmse_global_mean:.3f}, user+item bias {self.rmse_bias:.3f}); "
            f"training RMSE {self.train_rmse:.3f}; utility sd from biases {self.bias_sd:.2f}, "
            f"from personal tastes {self.taste_sd:.2f}; {self.seconds:.1f} s."
        )


def bias_baseline(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    n_users: int,
    n_items: int,
    shrink: float,
    sweeps: int = 5,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Regularised user + item biases by alternating closed-form updates.

    ``b_i = sum(r - mu - b_u) / (n_i + shrink)``, then the same for users (Koren 2010's
    baseline predictor). Returns ``(mu, user_bias (U,), item_bias (I,))``.
    """
    mu = float(ratings.mean()) if len(ratings) else 0.0
    n_u = np.bincount(users, minlength=n_users)
    n_i = np.bincount(items, minlength=n_items)
    b_u = np.zeros(n_users)
    b_i = np.zeros(n_items)
    for _ in range(sweeps):
        b_i = np.bincount(items, ratings - mu - b_u[users], n_items) / (n_i + shrink)
        b_u = np.bincount(users, ratings - mu - b_i[items], n_users) / (n_u + shrink)
    return mu, b_u, b_i


def _rmse(pred: np.ndarray, truth: np.ndarray, scale: tuple[float, float]) -> float:
    if len(truth) == 0:
        return float("nan")
    return float(np.sqrt(np.mean((np.clip(pred, *scale) - truth) ** 2)))


@dataclass
class _Factors:
    user_bias: np.ndarray  # (U,)
    item_bias: np.ndarray  # (I,)
    user_shared: np.ndarray  # (U, Ds)
    item_shared: np.ndarray  # (I, Ds)
    user_specific: np.ndarray  # (U*K, Dd): row u*K + d
    item_specific: np.ndarray  # (I, Dd)

    def arrays(self) -> list[np.ndarray]:
        return [
            self.user_bias,
            self.item_bias,
            self.user_shared,
            self.item_shared,
            self.user_specific,
            self.item_specific,
        ]

    def predict(self, mu: float, u: np.ndarray, i: np.ndarray, ud: np.ndarray) -> np.ndarray:
        return (
            mu
            + self.user_bias[u]
            + self.item_bias[i]
            + np.einsum("nd,nd->n", self.user_shared[u], self.item_shared[i])
            + np.einsum("nd,nd->n", self.user_specific[ud], self.item_specific[i])
        )


def _scatter(rows: np.ndarray, n_rows: int) -> sp.csr_matrix:
    """(n_rows, N) 0/1 matrix that sums per-rating rows into per-entity rows."""
    n = len(rows)
    return sp.csr_matrix((np.ones(n), (rows, np.arange(n))), shape=(n_rows, n))


def _fit(
    data: DenseRatings, mask: np.ndarray, cfg: OracleConfig, rng: np.random.Generator
) -> tuple[float, _Factors]:
    """Fit the factors to the ratings selected by ``mask`` (full-batch Adam)."""
    n_users, n_items, n_dom = data.n_users, data.n_items, data.n_domains
    u, i, r = data.users[mask], data.items[mask], data.ratings[mask]
    ud = u * n_dom + data.item_domain[i]  # row of the user's vector for the item's domain
    n = max(len(r), 1)
    # Start from the bias baseline: the factors then only have to learn what it misses.
    mu, b_u, b_i = bias_baseline(u, i, r, n_users, n_items, cfg.bias_l2)
    s = cfg.init_scale
    f = _Factors(
        user_bias=b_u,
        item_bias=b_i,
        user_shared=s * rng.standard_normal((n_users, cfg.shared_dim)),
        item_shared=s * rng.standard_normal((n_items, cfg.shared_dim)),
        user_specific=s * rng.standard_normal((n_users * n_dom, cfg.specific_dim)),
        item_specific=s * rng.standard_normal((n_items, cfg.specific_dim)),
    )
    a_u, a_i, a_ud = _scatter(u, n_users), _scatter(i, n_items), _scatter(ud, n_users * n_dom)
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in f.arrays()]
    lam, lam_b = cfg.l2, cfg.bias_l2
    # Factor rows are penalised once per rating that uses them (stochastic-gradient MF's
    # regulariser); biases once each, i.e. as pseudo-ratings at the mean (Koren 2010).
    c_u = np.bincount(u, minlength=n_users).astype(np.float64)[:, None]
    c_i = np.bincount(i, minlength=n_items).astype(np.float64)[:, None]
    c_ud = np.bincount(ud, minlength=n_users * n_dom).astype(np.float64)[:, None]
    for step in range(1, cfg.epochs + 1):
        # Gather each factor row once per step: prediction and gradients share them.
        q_i, p_u = f.item_shared[i], f.user_shared[u]  # (N, Ds)
        s_i, p_ud = f.item_specific[i], f.user_specific[ud]  # (N, Dd)
        e = mu + f.user_bias[u] + f.item_bias[i] - r  # (N,)
        e += np.einsum("nd,nd->n", p_u, q_i) + np.einsum("nd,nd->n", p_ud, s_i)
        grads = [
            np.bincount(u, e, n_users) + lam_b * f.user_bias,
            np.bincount(i, e, n_items) + lam_b * f.item_bias,
            a_u @ (e[:, None] * q_i) + lam * c_u * f.user_shared,
            a_i @ (e[:, None] * p_u) + lam * c_i * f.item_shared,
            a_ud @ (e[:, None] * s_i) + lam * c_ud * f.user_specific,
            a_i @ (e[:, None] * p_ud) + lam * c_i * f.item_specific,
        ]
        corr1 = 1.0 - _ADAM_B1**step
        corr2 = 1.0 - _ADAM_B2**step
        for p, g, (m, v) in zip(f.arrays(), grads, moments, strict=True):
            g *= 2.0 / n
            m *= _ADAM_B1
            m += (1.0 - _ADAM_B1) * g
            v *= _ADAM_B2
            v += (1.0 - _ADAM_B2) * g * g
            p -= cfg.lr * (m / corr1) / (np.sqrt(v / corr2) + _ADAM_EPS)
    # A user with no ratings in a domain has no evidence of a taste specific to it; leave the
    # shared taste alone to speak for them there rather than their random initial vector.
    f.user_specific[c_ud[:, 0] == 0] = 0.0
    return mu, f


def _utility_spread(
    truth: LatentTruth, max_users: int = 200, max_items: int = 2000
) -> tuple[float, float]:
    """Spread of the bias part and of the personal part of the utility over an even grid of
    users x items (deterministic; what the simulation's users will actually meet)."""
    users = np.unique(
        np.linspace(0, truth.n_users - 1, min(truth.n_users, max_users)).astype(np.int64)
    )
    items = np.unique(
        np.linspace(0, truth.n_items - 1, min(truth.n_items, max_items)).astype(np.int64)
    )
    if len(users) == 0 or len(items) == 0:
        return 0.0, 0.0
    bias = truth.user_bias[users][:, None] + truth.item_bias[items][None, :]  # (B, C)
    taste = truth.raw_utility(users, items) - truth.global_mean - bias
    return float(bias.std()), float(taste.std())


def fit_oracle(
    data: DenseRatings, cfg: OracleConfig, rng: np.random.Generator
) -> tuple[LatentTruth, OracleReport]:
    """Fit ``LatentTruth`` to a data set's ratings and measure it on held-out ratings.

    Implements the oracle of ARCHITECTURE.md section 3 (RECONSTRUCTED loss, see the module
    docstring). The held-out share is drawn from ``rng`` (or from ``cfg.seed`` when set).

    Args:
        data: ratings on dense ids (``RatingsDataset.to_dense_ids()``).
        cfg: dimensions, optimiser settings, holdout share.
        rng: the world's generator; the only source of randomness.

    Returns:
        The fitted truth (clipped to the data's scale when evaluated) and the fit report.
    """
    start = time.perf_counter()
    gen = np.random.default_rng(cfg.seed) if cfg.seed is not None else rng
    n = len(data.ratings)
    held = np.zeros(n, dtype=bool)
    n_hold = round(cfg.holdout * n) if n > 1 else 0
    if n_hold:
        held[gen.choice(n, size=n_hold, replace=False)] = True
    train = ~held
    mu, factors = _fit(data, train, cfg, gen)
    u, i, r = data.users[held], data.items[held], data.ratings[held]
    rmse = _rmse(factors.predict(mu, u, i, u * data.n_domains + data.item_domain[i]), r, data.scale)
    b_mu, b_u, b_i = bias_baseline(
        data.users[train],
        data.items[train],
        data.ratings[train],
        data.n_users,
        data.n_items,
        cfg.bias_l2,
    )
    rmse_bias = _rmse(b_mu + b_u[u] + b_i[i], r, data.scale)
    rmse_mean = _rmse(np.full(len(r), b_mu), r, data.scale)
    if n_hold and cfg.refit:
        train = np.ones(n, dtype=bool)
        mu, factors = _fit(data, train, cfg, gen)
    tu, ti = data.users[train], data.items[train]
    train_pred = factors.predict(mu, tu, ti, tu * data.n_domains + data.item_domain[ti])
    truth = LatentTruth(
        global_mean=mu,
        user_bias=factors.user_bias,
        item_bias=factors.item_bias,
        user_shared=factors.user_shared,
        item_shared=factors.item_shared,
        user_specific=factors.user_specific.reshape(data.n_users, data.n_domains, cfg.specific_dim),
        item_specific=factors.item_specific,
        item_domain=data.item_domain.copy(),
        scale=data.scale,
    )
    bias_sd, taste_sd = _utility_spread(truth)
    report = OracleReport(
        n_train=int(train.sum()),
        n_holdout=n_hold,
        rmse=rmse,
        rmse_global_mean=rmse_mean,
        rmse_bias=rmse_bias,
        train_rmse=_rmse(train_pred, data.ratings[train], data.scale),
        bias_sd=bias_sd,
        taste_sd=taste_sd,
        seconds=time.perf_counter() - start,
    )
    log.info(report.line())
    return truth, report
