"""The contract every scorer keeps (models/scoring.py), run over every scorer we ship.

To add a scorer, append a ``ScorerCase`` to ``SCORER_CASES`` with a tiny config (a fit should
take well under a second on the synthetic world); every test below then runs on it, on the
CPU and, when present, on CUDA. The end of the file holds a few outcome checks of the
baselines, which have no test file of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from models.baselines import (
    BPRMFConfig,
    BPRMFScorer,
    PopularityScorer,
    UserCFConfig,
    UserCFScorer,
    user_similarity,
)
from models.purs import PURSScorer
from models.purs_net import PURSConfig
from models.scoring import InteractionData, Scorer
from models.serencdr import SerenCDRConfig, SerenCDRScorer
from models.serendiff import SerenDiffConfig, SerenDiffScorer
from models.torch_utils import load_checkpoint
from models.vae import CrossDomainVAEConfig, CrossDomainVAEScorer
from tests.models.conftest import SyntheticWorld


@dataclass(frozen=True)
class ScorerCase:
    """A named factory of fresh, unfitted scorers with a tiny configuration."""

    name: str
    build: Callable[[], Scorer]
    stochastic: bool = True  # a different seed gives different scores


_VAE = {"hidden_dim": 16, "latent_dim": 4, "epochs": 2, "batch_size": 64}
_CDR = {"input_dim": 16, "latent_dim": 8, "epochs": 2, "pairs_per_user": 8, "aux_per_user": 8}

_DIFF = dict(
    embedding_dim=8,
    width=16,
    time_dim=32,
    groups=4,
    epochs=2,
    timesteps=50,
    sample_steps=4,
    batch_size=64,
)

SCORER_CASES: list[ScorerCase] = [
    ScorerCase("popularity", PopularityScorer, stochastic=False),
    ScorerCase("bpr_mf", lambda: BPRMFScorer(BPRMFConfig(dim=8, epochs=2, batch_size=512))),
    ScorerCase("user_cf", lambda: UserCFScorer(UserCFConfig(k=10)), stochastic=False),
    ScorerCase("serencdr", lambda: SerenCDRScorer(SerenCDRConfig(**_CDR))),
    ScorerCase(
        "serencdr_fused_unshared",
        lambda: SerenCDRScorer(SerenCDRConfig(**_CDR, aux_item="fused", use_shared=False)),
    ),
    ScorerCase(
        "serencdr_bias",
        lambda: SerenCDRScorer(SerenCDRConfig(**_CDR, unrated_negatives=1.0, item_bias=True)),
    ),
    ScorerCase("vae_cross", lambda: CrossDomainVAEScorer(CrossDomainVAEConfig(**_VAE))),
    ScorerCase(
        "vae_cross_cold_paired",
        lambda: CrossDomainVAEScorer(CrossDomainVAEConfig(**_VAE, cold_start=True, link="paired")),
    ),
    ScorerCase(
        "vae_single", lambda: CrossDomainVAEScorer(CrossDomainVAEConfig(**_VAE, mode="single"))
    ),
    ScorerCase(
        "vae_merged", lambda: CrossDomainVAEScorer(CrossDomainVAEConfig(**_VAE, mode="merged"))
    ),
    ScorerCase("serendiff", lambda: SerenDiffScorer(SerenDiffConfig(**_DIFF))),
    ScorerCase("purs", lambda: PURSScorer(PURSConfig(hidden=16, epochs=1, batch_size=128))),
]


@pytest.fixture(params=SCORER_CASES, ids=[c.name for c in SCORER_CASES])
def case(request: pytest.FixtureRequest) -> ScorerCase:
    return request.param


def _query(world: SyntheticWorld) -> tuple[np.ndarray, np.ndarray]:
    """7 users x 12 target items, different items per user."""
    data = world.data
    target = data.domain_items(data.target_domain)
    users = np.array([0, 3, 5, 17, 40, 41, 99])
    items = np.stack([np.roll(target, 3 * k)[:12] for k in range(len(users))])
    return users, items


def _fit(case: ScorerCase, world: SyntheticWorld, seed: int, device: str) -> Scorer:
    scorer = case.build()
    scorer.fit(world.data, seed=seed, device=device)
    return scorer


def test_scores_have_the_query_shape(
    case: ScorerCase, synthetic_world: SyntheticWorld, torch_device: str
) -> None:
    epochs: list[tuple[int, int]] = []
    scorer = case.build()
    log = scorer.fit(
        synthetic_world.data,
        seed=0,
        device=torch_device,
        progress=lambda d, t: epochs.append((d, t)),
    )
    users, items = _query(synthetic_world)
    scores = scorer.score(users, items)
    assert scores.shape == items.shape and scores.dtype == np.float64
    assert np.all(np.isfinite(scores))
    assert isinstance(log, dict) and all(isinstance(v, float) for v in log.values())
    assert epochs and epochs[-1][0] == epochs[-1][1]  # progress ends at (total, total)
    # A batch is scored row by row: splitting it changes nothing.
    np.testing.assert_allclose(
        np.vstack([scorer.score(users[:3], items[:3]), scorer.score(users[3:], items[3:])]),
        scores,
        rtol=1e-5,
        atol=1e-6,
    )


def test_same_seed_same_weights_and_scores(
    case: ScorerCase, synthetic_world: SyntheticWorld, torch_device: str, tmp_path: Path
) -> None:
    a = _fit(case, synthetic_world, 3, torch_device)
    b = _fit(case, synthetic_world, 3, torch_device)
    a.save(tmp_path / "a.pt")
    b.save(tmp_path / "b.pt")
    ta = load_checkpoint(tmp_path / "a.pt", a.name).tensors
    tb = load_checkpoint(tmp_path / "b.pt", b.name).tensors
    assert ta.keys() == tb.keys()
    users, items = _query(synthetic_world)
    if torch_device == "cpu":
        for key in ta:
            assert torch.equal(ta[key], tb[key]), key
        np.testing.assert_array_equal(a.score(users, items), b.score(users, items))
    else:
        # CUDA's scatter-add backward (gather, indexing) sums in a racy order unless the
        # process opts into deterministic algorithms; same seed then agrees to rounding.
        for key in ta:
            torch.testing.assert_close(ta[key], tb[key], rtol=1e-3, atol=1e-4, msg=key)
        np.testing.assert_allclose(
            a.score(users, items), b.score(users, items), rtol=1e-3, atol=1e-4
        )
    if case.stochastic:
        c = _fit(case, synthetic_world, 4, torch_device)
        assert not np.allclose(c.score(users, items), a.score(users, items))


def test_save_load_round_trip(
    case: ScorerCase, synthetic_world: SyntheticWorld, torch_device: str, tmp_path: Path
) -> None:
    scorer = _fit(case, synthetic_world, 0, torch_device)
    path = tmp_path / "nested" / "scorer.pt"
    scorer.save(path)
    loaded = type(scorer).load(path, device=torch_device)
    users, items = _query(synthetic_world)
    np.testing.assert_array_equal(loaded.score(users, items), scorer.score(users, items))
    if torch_device == "cuda":  # a GPU-trained scorer also loads onto the CPU
        on_cpu = type(scorer).load(path, device="cpu")
        np.testing.assert_allclose(
            on_cpu.score(users, items), scorer.score(users, items), rtol=1e-4, atol=1e-5
        )


def test_unfitted_scorer_refuses_to_score_and_save(case: ScorerCase, tmp_path: Path) -> None:
    scorer = case.build()
    with pytest.raises(RuntimeError, match="fit"):
        scorer.score(np.array([0]), np.array([[0]]))
    with pytest.raises(RuntimeError, match="fit"):
        scorer.save(tmp_path / "x.pt")


def test_loading_the_wrong_kind_is_an_error(
    synthetic_world: SyntheticWorld, tmp_path: Path
) -> None:
    pop = PopularityScorer()
    pop.fit(synthetic_world.data, seed=0, device="cpu")
    pop.save(tmp_path / "pop.pt")
    with pytest.raises(ValueError, match="popularity"):
        BPRMFScorer.load(tmp_path / "pop.pt")


# ---- baselines: outcome checks ------------------------------------------------------------


def test_popularity_counts_training_ratings(synthetic_world: SyntheticWorld) -> None:
    pop = PopularityScorer()
    pop.fit(synthetic_world.data, seed=0, device="cpu")
    counts = np.diff(sp.csc_matrix(synthetic_world.data.ratings).indptr)
    np.testing.assert_array_equal(
        pop.score(np.array([0, 1]), np.array([[4, 9], [9, 4]])), counts[[[4, 9], [9, 4]]]
    )


def test_pearson_on_co_rated_items_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    dense = rng.integers(1, 6, size=(6, 12)).astype(float) * (rng.random((6, 12)) < 0.6)
    sim = user_similarity(sp.csr_matrix(dense), np.arange(6), "pearson", min_overlap=3)
    for u in range(6):
        for v in range(6):
            both = (dense[u] > 0) & (dense[v] > 0)
            if u == v or both.sum() < 3 or dense[u, both].std() == 0 or dense[v, both].std() == 0:
                expected = 0.0
            else:
                expected = np.corrcoef(dense[u, both], dense[v, both])[0, 1]
            assert sim[u, v] == pytest.approx(expected, abs=1e-9)
    cos = user_similarity(sp.csr_matrix(dense), np.array([1]), "cosine", min_overlap=1)
    norms = np.linalg.norm(dense, axis=1)
    expected_cos = dense[1] @ dense.T / (norms[1] * norms)
    expected_cos[1] = 0.0
    np.testing.assert_allclose(cos[0], expected_cos)


def test_user_cf_resnick_prediction_by_hand() -> None:
    # Users 1 and 2 agree perfectly with user 0; user 3 disagrees (dropped: negative).
    dense = np.array(
        [
            [5.0, 3.0, 4.0, 0.0],
            [4.0, 2.0, 3.0, 5.0],
            [5.0, 3.0, 4.0, 2.0],
            [1.0, 5.0, 3.0, 1.0],
        ]
    )
    data = InteractionData(sp.csr_matrix(dense), np.zeros(4, dtype=np.int64), 0, 4.0)
    cf = UserCFScorer(UserCFConfig(k=3, min_overlap=2, score="resnick"))
    cf.fit(data, seed=0, device="cpu")
    means = dense.sum(1) / (dense > 0).sum(1)
    expected = means[0] + ((5 - means[1]) + (2 - means[2])) / 2  # both similarities are 1
    assert cf.score(np.array([0]), np.array([[3]]))[0, 0] == pytest.approx(expected)
