"""The TFCDSRS pipeline's item side as pure array functions (FORMULAS.md §6-10).

Candidate sets, the serendipity assessment (novelty, relevance, unexpectedness, the Mamdani
score) and the ranked lists, shared by the serendipity agent and the offline evaluation (see
``models/pipeline.py`` for the neighbour side and the array conventions). Arrays are (B, I):
B users, I item ids, non-candidates masked out; ties go to the lower item id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from models.components import (
    inverse_user_frequency,
    minmax_within,
    novelty_score,
    npmi_max,
    percentile_within,
    relevance01,
    unexpectedness01,
)
from models.fuzzy import RuleBase, default_rule_base, serendipity_exact
from models.pipeline import RecommenderLike


@dataclass(frozen=True)
class SerendipityOptions:
    """How candidates are scored and ranked (FORMULAS.md §7-10)."""

    novelty: Literal["neighbourhood", "global"] = "neighbourhood"
    novelty_input: Literal["percentile", "minmax"] = "percentile"
    unexpectedness_input: Literal["absolute", "percentile"] = "absolute"
    scorer: Literal["fuzzy", "prediction"] = "fuzzy"
    selection_threshold: float = 0.5
    fill_list: bool = True

    @classmethod
    def of(cls, cfg: RecommenderLike) -> SerendipityOptions:
        """The options of a recommender."""
        return cls(
            cfg.novelty,
            cfg.novelty_input,
            cfg.unexpectedness_input,
            cfg.scorer,
            cfg.selection_threshold,
            cfg.fill_list,
        )


@dataclass
class Assessment:
    """Component scores of B users' candidates over I items, NaN off the candidates.

    Attributes:
        novelty: fuzzy novelty input (§7).
        relevance: rel01, the fuzzy relevance input (§8).
        unexpectedness: une = (1 - max NPMI)/2 (§9), what lists record and metrics use.
        unexpectedness_input: the fuzzy input: ``une`` or its percentile among candidates.
        serendipity: z*, the Mamdani centroid (§10).
        score: what the list is ranked by: z* (fuzzy) or the prediction.
    """

    novelty: np.ndarray
    relevance: np.ndarray
    unexpectedness: np.ndarray
    unexpectedness_input: np.ndarray
    serendipity: np.ndarray
    score: np.ndarray


def assess_candidates(
    mask: np.ndarray,
    support: np.ndarray,
    relevance: np.ndarray,
    prediction: np.ndarray,
    n_neighbours: np.ndarray,
    item_counts: np.ndarray,
    n_users: int,
    co: sp.csr_matrix,
    histories: Sequence[np.ndarray],
    scale: tuple[float, float],
    options: SerendipityOptions,
    rule_base: RuleBase | None = None,
) -> Assessment:
    """Novelty, relevance, unexpectedness and fuzzy serendipity of candidates (FORMULAS.md §7-10).

    Novelty (RECONSTRUCTED) is NS = IF·IUF over the neighbourhood, or the global
    IUF/log|U|, fed to the fuzzy system as its percentile or min-max within each user's
    candidates; relevance is rel on the rating scale mapped to [0, 1]; unexpectedness is
    (1 - max_{j∈I_u} NPMI(i, j))/2, optionally as its percentile among the candidates.

    Args:
        mask: (B, I) bool candidates C_x.
        support: (B, I) number of x's neighbours who rated i.
        relevance: (B, I) rel(x, i) on the rating scale.
        prediction: (B, I) Resnick prediction.
        n_neighbours: (B,) |N_x|.
        item_counts: (I,) |U_i| over every domain.
        n_users: |U|, users with at least one rating.
        co: (I, I) item co-occurrence (``models.components.cooccurrence``).
        histories: per user, the item ids of I_u (every domain).
        scale: the rating scale.
        options: novelty and unexpectedness inputs, scorer.
        rule_base: the Mamdani rules (default: FORMULAS.md §10).

    Returns:
        Assessment.
    """
    rules = default_rule_base() if rule_base is None else rule_base
    iuf = inverse_user_frequency(item_counts, max(n_users, 1))
    if options.novelty == "neighbourhood":
        ns = novelty_score(support, n_neighbours, iuf)
    else:  # FORMULAS 7 fallback: strictly "less popular -> more novel"
        ns = np.broadcast_to(iuf / np.log(max(n_users, 2)), mask.shape)
    within = percentile_within if options.novelty_input == "percentile" else minmax_within
    nov = np.where(mask, np.nan_to_num(within(ns, mask), nan=0.0), np.nan)
    rel01 = relevance01(relevance, scale)
    une = unexpectedness01(npmi_max(co, max(n_users, 1), mask, histories))
    une_in = une
    if options.unexpectedness_input == "percentile":
        une_in = np.where(mask, np.nan_to_num(percentile_within(une, mask), nan=0.0), np.nan)
    rows, cols = np.nonzero(mask)
    z = np.full(mask.shape, np.nan)
    z[rows, cols] = serendipity_exact(nov[rows, cols], rel01[rows, cols], une_in[rows, cols], rules)
    score = z if options.scorer == "fuzzy" else np.asarray(prediction, dtype=np.float64)
    return Assessment(nov, rel01, une, une_in, z, score)


def rank_candidates(
    score: np.ndarray, z: np.ndarray, mask: np.ndarray, n: int, options: SerendipityOptions
) -> np.ndarray:
    """The ranked lists: by score, z* >= θ_s first when fuzzy (FORMULAS.md §10 selection;
    θ_s and the top-up with failing items are RECONSTRUCTED).

    Items passing θ_s come first; with ``fill_list`` the rest follow (each group by score,
    ties to the lower item id), without it they are dropped.

    Args:
        score: (B, I) ranking score.
        z: (B, I) fuzzy serendipity z*.
        mask: (B, I) bool candidates.
        n: list length N.
        options: scorer, θ_s and the fill rule.

    Returns:
        (B, min(n, I)) item ids, padded with -1 where a user has fewer items.
    """
    listed = np.asarray(mask, dtype=bool)
    failing = np.zeros(listed.shape, dtype=bool)
    if options.scorer == "fuzzy":
        failing = ~(np.asarray(z) >= options.selection_threshold)
        if not options.fill_list:
            listed = listed & ~failing
    order = np.lexsort((-np.asarray(score, dtype=np.float64), failing, ~listed), axis=-1)
    order = order[:, : min(n, listed.shape[1])]
    return np.where(np.take_along_axis(listed, order, axis=1), order, -1)


@dataclass
class CandidateSet:
    """What the neighbourhood stage passes on, over B users and I items (FORMULAS.md §6).

    Attributes:
        mask: (B, I) bool candidates.
        prediction: (B, I) prediction (the fallback level for topped-up items).
        relevance: (B, I) relevance (the same fallback for topped-up items).
        support: (B, I) neighbour support (0 for topped-up items).
    """

    mask: np.ndarray
    prediction: np.ndarray
    relevance: np.ndarray
    support: np.ndarray


def candidate_set(
    prediction: np.ndarray,
    relevance: np.ndarray,
    support: np.ndarray,
    eligible: np.ndarray,
    popularity_rank: np.ndarray,
    fallback: np.ndarray,
    threshold: float,
    max_candidates: int,
    n: int,
) -> CandidateSet:
    """C_x = {unseen i : p_{x,i} >= θ_p}, the best ``max_candidates`` by prediction, topped
    up with popular unseen items when fewer than ``n`` (FORMULAS.md §6; what the
    neighbourhood agent sends on).

    Args:
        prediction: (B, I) Resnick prediction, NaN where undefined.
        relevance: (B, I) relevance.
        support: (B, I) neighbour support.
        eligible: (B, I) bool items the user may be offered (unseen target items).
        popularity_rank: (I,) position of each item in the popularity order (0 = most rated).
        fallback: (B, I) prediction given to a topped-up item (r̄_x, else the item's mean).
        threshold: θ_p.
        max_candidates: at most this many predicted candidates.
        n: the list length the candidates must fill.

    Returns:
        CandidateSet.
    """
    pred = np.asarray(prediction, dtype=np.float64)
    cols = np.broadcast_to(np.arange(pred.shape[1]), pred.shape)
    ok = eligible & np.isfinite(pred) & (pred >= threshold)
    order = np.lexsort((cols, -np.where(ok, pred, 0.0), ~ok), axis=-1)
    take = np.minimum(ok.sum(axis=1), max_candidates)  # (B,)
    chosen = np.zeros(pred.shape, dtype=bool)
    ranks = np.broadcast_to(np.arange(pred.shape[1]), pred.shape)
    np.put_along_axis(chosen, order, ranks < take[:, None], axis=1)
    spare = eligible & ~chosen
    by_pop = np.lexsort((np.broadcast_to(popularity_rank, pred.shape), ~spare), axis=-1)
    need = np.maximum(n - take, 0)
    extra = np.zeros(pred.shape, dtype=bool)
    np.put_along_axis(extra, by_pop, ranks < need[:, None], axis=1)
    extra &= spare
    return CandidateSet(
        mask=chosen | extra,
        prediction=np.where(chosen, pred, np.where(extra, fallback, np.nan)),
        relevance=np.where(chosen, relevance, np.where(extra, fallback, np.nan)),
        support=np.where(chosen, support, 0),
    )
