"""Tests for models/evaluation.py: splits, candidate lists, rank metrics (MODELS.md 5)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from models.baselines import PopularityScorer
from models.evaluation import (
    CandidateLists,
    evaluate_scorers,
    rank_metrics,
    ranks,
    split_cold_start,
    split_relevance,
    split_serendipity,
)
from models.scoring import InteractionData, ProgressFn, Scorer
from tests.models.conftest import SyntheticWorld


class TruthScorer(Scorer):
    """Scores by a fixed (U, I) matrix: an oracle for checking the pipeline end to end."""

    name: ClassVar[str] = "truth"

    def __init__(self, table: np.ndarray) -> None:
        self.table = table

    def fit(
        self,
        data: InteractionData,
        *,
        seed: int,
        device: str = "auto",
        progress: ProgressFn | None = None,
    ) -> dict[str, float]:
        if progress is not None:
            progress(1, 1)
        return {}

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.table[np.asarray(users)[:, None], items]

    def save(self, path: Path) -> None:
        np.save(path, self.table)

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> TruthScorer:
        return cls(np.load(path))


def test_rank_metrics_by_hand() -> None:
    # Positive ranks 0, 3 and 12 (strictly higher negatives), no ties.
    scores = np.zeros((3, 100))
    scores[:, 0] = 0.5
    scores[1, 1:4] = 1.0
    scores[2, 1:13] = 1.0
    m = rank_metrics(scores)
    assert m["HR@1"] == pytest.approx(1 / 3)
    assert m["HR@5"] == pytest.approx(2 / 3) and m["HR@10"] == pytest.approx(2 / 3)
    assert m["NDCG@5"] == pytest.approx((1.0 + 1.0 / np.log2(5)) / 3)
    assert m["NDCG@10"] == m["NDCG@5"]
    assert m["MRR"] == pytest.approx((1.0 + 1 / 4 + 1 / 13) / 3)


def test_ties_are_broken_at_random_or_counted_against() -> None:
    flat = np.ones((4000, 100))
    r = ranks(flat, seed=1)
    assert r.min() == 0 and r.max() == 99
    assert np.mean(r < 10) == pytest.approx(0.10, abs=0.02)  # uniform over the 100 slots
    np.testing.assert_array_equal(ranks(flat, seed=1), r)  # seeded
    assert np.all(ranks(flat, ties="pessimistic") == 99)
    with pytest.raises(ValueError, match="NaN"):
        ranks(np.array([[np.nan, 1.0]]))


def _target_rated(data: InteractionData) -> sp.csr_matrix:
    return sp.csr_matrix(data.ratings)[:, data.domain_items(data.target_domain)]


def test_relevance_split_hides_one_liked_target_item(synthetic_world: SyntheticWorld) -> None:
    data = synthetic_world.data
    split = split_relevance(data, seed=0)
    train = split.train_data(data)
    r_full, r_train = data.ratings.toarray(), train.ratings.toarray()
    assert np.all(r_full[split.users, split.held_out] >= data.like_threshold)
    assert np.all(data.item_domain[split.held_out] == data.target_domain)
    assert np.all(r_train[split.users, split.held_out] == 0)
    assert train.ratings.nnz == data.ratings.nnz - len(split.users)
    # Timestamps keep the ratings' pattern, stored zeros (step 0) included.
    stamps = data.ratings.copy()
    stamps.data = np.zeros_like(stamps.data)
    timed = dataclasses.replace(data, timestamps=stamps)
    assert split.train_data(timed).timestamps.nnz == train.ratings.nnz
    assert np.array_equal(split_relevance(data, seed=0).held_out, split.held_out)


def test_serendipity_split_hides_a_serendipitous_item(synthetic_world: SyntheticWorld) -> None:
    data = synthetic_world.data
    split = split_serendipity(data, seed=0, max_users=30)
    train = split.train_data(data)
    assert len(split.users) == 30
    assert np.all(data.serendipitous.toarray()[split.users, split.held_out] == 1)
    assert np.all(train.serendipitous.toarray()[split.users, split.held_out] == 0)
    assert train.serendipitous.nnz == data.serendipitous.nnz - 30


def test_cold_start_split_hides_all_target_ratings(synthetic_world: SyntheticWorld) -> None:
    data = synthetic_world.data
    split = split_cold_start(data, seed=0, fraction=0.25)
    train = split.train_data(data)
    assert len(split.users) == 30
    assert _target_rated(train)[split.users].nnz == 0
    others = np.setdiff1d(np.arange(data.n_users), split.users)
    assert _target_rated(train)[others].nnz == _target_rated(data)[others].nnz
    n_all = np.diff(sp.csr_matrix(data.ratings).indptr)[split.users]
    n_target = np.diff(_target_rated(data).indptr)[split.users]
    np.testing.assert_array_equal(np.diff(train.ratings.indptr)[split.users], n_all - n_target)


def test_candidate_lists_sample_unrated_target_negatives(synthetic_world: SyntheticWorld) -> None:
    data = synthetic_world.data
    split = split_relevance(data, seed=0)
    cands = CandidateLists.sample(data, split, n_negatives=99, seed=7)
    assert cands.items.shape == (len(split.users), 100)
    np.testing.assert_array_equal(cands.items[:, 0], split.held_out)
    neg = cands.items[:, 1:]
    assert np.all(data.item_domain[neg] == data.target_domain)
    assert np.all(data.ratings.toarray()[cands.users[:, None], neg] == 0)
    assert all(len(np.unique(row)) == 99 for row in neg)
    again = CandidateLists.sample(data, split, n_negatives=99, seed=7)
    other = CandidateLists.sample(data, split, n_negatives=99, seed=8)
    np.testing.assert_array_equal(again.items, cands.items)
    assert not np.array_equal(other.items, cands.items)


def test_candidate_lists_never_draw_excluded_items(synthetic_world: SyntheticWorld) -> None:
    data = synthetic_world.data
    split = split_relevance(data, seed=0, max_users=30)
    pool = data.domain_items(data.target_domain)
    # Exclude every other target item for each test user: negatives come from the rest only.
    rows = np.repeat(split.users, len(pool[::2]))
    cols = np.tile(pool[::2], len(split.users))
    exclude = sp.csr_matrix((np.ones(len(rows), dtype=bool), (rows, cols)), data.ratings.shape)
    n_free = (
        len(pool)
        - len(pool[::2])
        - np.asarray(
            (sp.csr_matrix(data.ratings)[split.users][:, pool[1::2]] != 0).sum(axis=1)
        ).ravel()
    )
    n_neg = int(n_free.min())
    cands = CandidateLists.sample(data, split, n_negatives=n_neg, seed=3, exclude=exclude)
    assert not np.isin(cands.items[:, 1:], pool[::2]).any()
    assert np.all(data.ratings.toarray()[cands.users[:, None], cands.items[:, 1:]] == 0)
    with pytest.raises(ValueError, match="fewer than"):
        CandidateLists.sample(data, split, n_negatives=n_neg + 1, seed=3, exclude=exclude)


def test_candidate_lists_spread_over_cells(synthetic_world: SyntheticWorld) -> None:
    data = synthetic_world.data
    split = split_relevance(data, seed=0, max_users=20)
    cells = np.arange(data.n_items) % 10
    cands = CandidateLists.sample(data, split, n_negatives=50, seed=0, cells=cells)
    neg = cands.items[:, 1:]
    assert all(len(np.unique(row)) == 50 for row in neg)
    per_cell = np.stack([np.bincount(cells[row], minlength=10) for row in neg])
    assert per_cell.min() >= 5  # 50 // 10 per cell, whatever the random fill adds
    assert np.all(data.ratings.toarray()[cands.users[:, None], neg] == 0)


def test_too_few_unrated_items_is_an_error(synthetic_world: SyntheticWorld) -> None:
    data = synthetic_world.data
    split = split_relevance(data, seed=0, max_users=5)
    with pytest.raises(ValueError, match="fewer than"):
        CandidateLists.sample(data, split, n_negatives=500)


def test_evaluate_scorers_orders_an_oracle_above_popularity(
    synthetic_world: SyntheticWorld,
) -> None:
    data = synthetic_world.data
    split = split_serendipity(data, seed=0)
    cands = CandidateLists.sample(data, split, seed=0)
    oracle = TruthScorer(synthetic_world.serendipity_truth().astype(float))
    calls: list[tuple[str, int, int]] = []
    df = evaluate_scorers(
        {"oracle": oracle, "pop": PopularityScorer()},
        data,
        split,
        cands,
        seed=0,
        device="cpu",
        progress=lambda name, done, total: calls.append((name, done, total)),
    )
    assert list(df["scorer"]) == ["oracle", "pop"]
    assert set(df.columns) >= {"HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR", "fit_s"}
    hr = df.set_index("scorer")["HR@10"]
    # The oracle only knows the hidden cluster: the positive ties with ~1/6 of the negatives.
    assert hr["oracle"] > 0.45 and hr["oracle"] > hr["pop"] + 0.2
    assert ("oracle", 1, 1) in calls and ("pop", 1, 1) in calls
    with pytest.raises(ValueError, match="not built from this split"):
        evaluate_scorers({"pop": PopularityScorer()}, data, split_relevance(data, 0), cands)
