from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from agents.model_scoring import MIN_LABELS, ModelScoring
from models.baselines import PopularityScorer


def ratings() -> sp.csr_matrix:
    # 4 users x 6 items; items 0-2 source, 3-5 target. Item 3 is the most rated target item.
    rows = [0, 0, 1, 1, 2, 2, 3, 3, 0, 1]
    cols = [0, 3, 1, 3, 2, 3, 0, 4, 5, 4]
    return sp.csr_matrix((np.full(len(rows), 4.0), (rows, cols)), shape=(4, 6))


def scoring(name: str = "popularity", every: int = 3) -> ModelScoring:
    return ModelScoring(
        name,
        PopularityScorer,
        needs_labels=name == "serencdr",
        retrain_every=every,
        seed=5,
        device="cpu",
        item_domain=np.array([0, 0, 0, 1, 1, 1]),
        target_domain=1,
        like_threshold=4.0,
    )


def test_fits_when_due_and_scores() -> None:
    ms = scoring()
    assert ms.due(0) and not ms.ready
    assert ms.maybe_fit(0, ratings())
    assert ms.ready and ms.fitted_step == 0
    assert not ms.maybe_fit(2, ratings())  # retrain every 3 steps
    assert ms.maybe_fit(3, ratings()) and ms.fits == 2
    s = ms.score(np.array([2, 3]), np.array([[3, 4, 5], [3, 4, 5]]))
    assert s.shape == (2, 3)
    assert s[0, 0] > s[0, 1] > s[0, 2]  # popularity in the target: item 3 (3 ratings), 4 (2), 5 (1)


def test_label_hungry_scorers_wait_for_labels() -> None:
    ms = scoring("serencdr")
    assert not ms.maybe_fit(0, ratings())
    ms.add_labels(list(range(MIN_LABELS - 1)), [3] * (MIN_LABELS - 1))
    assert not ms.maybe_fit(1, ratings())
    assert len(ms.label_users) == MIN_LABELS - 1


def test_state_round_trip_keeps_model_and_labels() -> None:
    ms = scoring()
    ms.add_labels([1, 2], [4, 5])
    ms.maybe_fit(0, ratings())
    users, items = np.array([0, 1]), np.array([[3, 4], [5, 3]])
    before = ms.score(users, items)
    again = scoring()
    again.restore(ms.state())
    assert again.ready and again.fitted_step == 0 and again.label_items == [4, 5]
    np.testing.assert_array_equal(again.score(users, items), before)
