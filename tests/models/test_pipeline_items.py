"""The pipeline's item side (models/pipeline_items.py): hand-computed cases and the
per-request reference form the serendipity agent used before the numerics moved here."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.components import cooccurrence
from models.fuzzy import serendipity_exact
from models.pipeline_items import (
    SerendipityOptions,
    assess_candidates,
    candidate_set,
    rank_candidates,
)

NAN = np.nan


def _co_world() -> tuple[sp.csr_matrix, list[np.ndarray]]:
    """4 users x 5 items; the query user's history is item 4."""
    b = np.array(
        [
            [1, 1, 0, 1, 1],
            [1, 1, 0, 0, 1],
            [1, 0, 1, 0, 0],
            [1, 0, 1, 0, 0],
        ]
    )
    return cooccurrence(sp.csr_matrix(b)), [np.array([4])]


def test_assess_candidates_hand_computed_components() -> None:
    co, hist = _co_world()
    mask = np.array([[False, True, True, True, False]])
    support = np.array([[0, 2, 1, 0, 0]])
    rel = np.array([[NAN, 5.0, 3.0, 1.0, NAN]])
    counts = np.array([4, 2, 2, 1, 2])
    scores = assess_candidates(
        mask, support, rel, rel, np.array([2.0]), counts, 4, co, hist, (1.0, 5.0),
        SerendipityOptions(unexpectedness_input="absolute"),
    )  # fmt: skip
    # NS = IF·IUF = [2/2·log 2, 1/2·log 2, 0] -> percentiles [1, 0.5, 0].
    np.testing.assert_allclose(scores.novelty[0, 1:4], [1.0, 0.5, 0.0])
    np.testing.assert_allclose(scores.relevance[0, 1:4], [1.0, 0.5, 0.0])
    # Item 1 always co-occurs with item 4 (NPMI 1), item 2 never (-1); item 3 has
    # p(3,4) = 1/4 against p(3)·p(4) = 1/8: NPMI = log 2 / -log(1/4) = 1/2.
    np.testing.assert_allclose(scores.unexpectedness[0, 1:4], [0.0, 1.0, 0.25])
    assert np.isnan(scores.unexpectedness[0, [0, 4]]).all()
    expected = serendipity_exact([1.0, 0.5, 0.0], [1.0, 0.5, 0.0], [0.0, 1.0, 0.25])
    np.testing.assert_allclose(scores.serendipity[0, 1:4], expected)
    np.testing.assert_array_equal(scores.score, scores.serendipity)


def test_assess_candidates_options() -> None:
    co, hist = _co_world()
    mask = np.array([[False, True, True, True, False]])
    pred = np.array([[NAN, 4.0, 4.5, 3.5, NAN]])
    counts = np.array([4, 2, 2, 1, 2])
    opts = SerendipityOptions(
        novelty="global", unexpectedness_input="percentile", scorer="prediction"
    )
    s = assess_candidates(
        mask, np.zeros((1, 5)), pred, pred, np.array([2.0]), counts, 4, co, hist, (1.0, 5.0), opts
    )
    # Global novelty IUF/log|U| is 1/2, 1/2, 1 -> percentiles 0.25, 0.25, 1.
    np.testing.assert_allclose(s.novelty[0, 1:4], [0.25, 0.25, 1.0])
    np.testing.assert_allclose(s.unexpectedness_input[0, 1:4], [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(s.score, pred)


def test_rank_candidates_threshold_then_fill() -> None:
    z = np.array([[0.6, 0.4, 0.7, NAN, 0.6]])
    mask = np.array([[True, True, True, False, True]])
    fuzzy = SerendipityOptions(selection_threshold=0.5)
    assert rank_candidates(z, z, mask, 5, fuzzy).tolist() == [[2, 0, 4, 1, -1]]
    strict = SerendipityOptions(selection_threshold=0.5, fill_list=False)
    assert rank_candidates(z, z, mask, 5, strict).tolist() == [[2, 0, 4, -1, -1]]
    assert rank_candidates(z, z, mask, 2, fuzzy).tolist() == [[2, 0]]
    pred = np.array([[3.0, 5.0, 4.0, NAN, 5.0]])
    by_pred = SerendipityOptions(scorer="prediction")
    assert rank_candidates(pred, z, mask, 5, by_pred).tolist() == [[1, 4, 2, 0, -1]]


def test_rank_candidates_matches_the_per_request_reference() -> None:
    rng = np.random.default_rng(3)
    z = np.round(rng.uniform(0.2, 0.8, (15, 30)), 2)
    mask = rng.random(z.shape) < 0.4
    opts = SerendipityOptions(selection_threshold=0.5)
    ranked = rank_candidates(z, z, mask, 8, opts)
    for b in range(z.shape[0]):
        items = np.flatnonzero(mask[b])
        order = np.lexsort((items, -z[b, items]))
        passing = z[b, items][order] >= 0.5
        order = np.concatenate([order[passing], order[~passing]])[:8]
        got = ranked[b]
        assert got[got >= 0].tolist() == items[order].tolist()


def test_candidate_set_threshold_cap_and_popular_top_up() -> None:
    pred = np.array([[4.5, 3.0, NAN, 4.0, 3.8]])
    eligible = np.array([[True, True, True, True, False]])
    support = np.array([[3, 1, 0, 2, 1]])
    cands = candidate_set(
        pred, pred, support, eligible, np.array([3, 0, 1, 2, 4]), np.full((1, 5), 3.3),
        threshold=3.5, max_candidates=1, n=3,
    )  # fmt: skip
    # Items 0 and 3 pass theta_p, the cap keeps item 0; items 1 and 2 are the most popular
    # unseen items left, topped up at the fallback prediction with no support.
    assert cands.mask.tolist() == [[True, True, True, False, False]]
    np.testing.assert_allclose(cands.prediction[0, :3], [4.5, 3.3, 3.3])
    assert cands.support.tolist() == [[3, 0, 0, 0, 0]]
    enough = candidate_set(
        pred, pred, support, eligible, np.arange(5), np.full((1, 5), 3.3),
        threshold=3.5, max_candidates=5, n=2,
    )  # fmt: skip
    assert enough.mask.tolist() == [[True, False, False, True, False]]
