"""environment/ranking.py (+ ranking_scorers.py, views_ranking.py): the ranking protocol on a
tiny synthetic world, one epoch per deep scorer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from rich.console import Console

import environment.ranking as ranking
import environment.ranking_scorers as ranking_scorers
from environment.interactions import unrated_serendipitous, world_interactions
from environment.ranking import COLUMNS, METRICS, RankingResult, evaluate_ranking
from environment.ranking_scorers import SPECS, build_scorer, scale_defaults
from environment.runner import build_world
from environment.scenario import Scenario, parse_scenario
from environment.views_ranking import ranking_tables
from environment.world_data import WorldData
from models.baselines import PopularityScorer
from models.evaluation import (
    CandidateLists,
    rank_metrics,
    score_candidates,
    split_cold_start,
    split_relevance,
)
from models.serencdr import SerenCDRScorer
from models.vae import CrossDomainVAEScorer

SCORERS = ["popularity", "bpr_mf", "vae", "vae_cold", "serencdr"]
NEGATIVES = 15


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_scenario(**evaluation: Any) -> Scenario:
    return parse_scenario(
        {
            "name": "tiny-ranking",
            "world": {
                "kind": "synthetic",
                "users": 60,
                "items_per_domain": 40,
                "history_per_domain": 10,
                "popularity_exponent": 0.5,
            },
            "run": {"seed": 4},
            "evaluation": {
                "protocols": ["ranking"],
                "scorers": SCORERS,
                "negatives": NEGATIVES,
                "epochs": 1,
                "device": "cpu",
                **evaluation,
            },
        }
    )


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return tiny_scenario()


@pytest.fixture(scope="module")
def world(scenario: Scenario) -> WorldData:
    return build_world(scenario)


@pytest.fixture(scope="module")
def run(
    scenario: Scenario, world: WorldData, tmp_path_factory: pytest.TempPathFactory
) -> tuple[RankingResult, Path, dict[tuple[str, str], CandidateLists], list[tuple[Any, ...]]]:
    """One evaluation, recording the candidate lists each scorer was ranked on."""
    seen: dict[tuple[str, str], CandidateLists] = {}
    calls: list[tuple[Any, ...]] = []
    original = ranking.evaluate_scorers

    def spy(scorers: Any, data: Any, split: Any, cands: CandidateLists, **kw: Any) -> Any:
        for name in scorers:
            seen[(split.setting, name)] = cands
        return original(scorers, data, split, cands, **kw)

    out = tmp_path_factory.mktemp("ranking")
    mp = pytest.MonkeyPatch()
    mp.setattr(ranking, "evaluate_scorers", spy)
    try:
        result = evaluate_ranking(
            scenario, world, out, lambda stage, d, t: calls.append((stage, d, t))
        )
    finally:
        mp.undo()
    return result, out, seen, calls


def test_table_has_a_row_per_setting_and_scorer(run: Any) -> None:
    result, out, _, _ = run
    table = result.table
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == 3 * len(SCORERS)
    assert list(dict.fromkeys(table["setting"])) == ["relevance", "serendipity", "cold_start"]
    for setting in ("relevance", "serendipity", "cold_start"):
        assert table.loc[table["setting"] == setting, "scorer"].tolist() == SCORERS
    m = table[list(METRICS)].to_numpy()
    assert np.all((m >= 0) & (m <= 1))
    assert np.all(table["HR@1"] <= table["HR@5"]) and np.all(table["HR@5"] <= table["HR@10"])
    assert np.all(table["NDCG@10"] <= table["HR@10"]) and np.all(table["MRR"] >= table["HR@1"])
    assert (table["n_users"] > 0).all()
    pd.testing.assert_frame_equal(pd.read_csv(out / "ranking.csv"), table, check_dtype=False)


def test_every_scorer_ranks_the_same_candidate_lists(run: Any, world: WorldData) -> None:
    _, _, seen, _ = run
    data = world_interactions(world)
    target = set(data.domain_items(data.target_domain).tolist())
    for setting in ("relevance", "serendipity", "cold_start"):
        lists = [seen[(setting, name)] for name in SCORERS]
        for other in lists[1:]:
            assert other is lists[0] or (
                np.array_equal(other.users, lists[0].users)
                and np.array_equal(other.items, lists[0].items)
            )
        cands = lists[0]
        assert cands.items.shape == (len(cands.users), 1 + NEGATIVES)
        rated = sp.csr_matrix(data.ratings)[cands.users].toarray() != 0
        negatives = cands.items[:, 1:]
        assert set(np.unique(cands.items).tolist()) <= target
        assert not np.take_along_axis(rated, negatives, axis=1).any()  # negatives: unrated
        assert np.take_along_axis(rated, cands.items[:, :1], axis=1).all()  # positive: rated
        assert all(len(set(row)) == len(row) for row in cands.items.tolist())
        if setting == "serendipity":
            assert data.serendipitous is not None
            labels = data.serendipitous[cands.users, cands.items[:, 0]]
            assert np.all(np.asarray(labels).ravel() == 1)
            # The default negatives are non-serendipitous by the ground truth (MODELS.md 1.8).
            truly = unrated_serendipitous(world, cands.users).toarray()[cands.users]
            assert truly.any()  # there was something to keep out
            assert not np.take_along_axis(truly, negatives, axis=1).any()


def test_unrated_negatives_option_may_draw_serendipitous_items(world: WorldData) -> None:
    seen: list[CandidateLists] = []
    original = ranking.evaluate_scorers

    def spy(scorers: Any, data: Any, split: Any, cands: CandidateLists, **kw: Any) -> Any:
        seen.append(cands)
        return original(scorers, data, split, cands, **kw)

    sc = tiny_scenario(
        scorers=["popularity"], settings=["serendipity"], serendipity_negatives="unrated"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ranking, "evaluate_scorers", spy)
        result = evaluate_ranking(sc, world)
    (cands,) = seen
    truly = unrated_serendipitous(world, cands.users).toarray()[cands.users]
    assert np.take_along_axis(truly, cands.items[:, 1:], axis=1).any()
    assert not any("kept out of the negatives" in n for n in result.notes)


def test_checkpoints_are_written_and_reproduce_the_table(
    run: Any, scenario: Scenario, world: WorldData
) -> None:
    result, out, _, _ = run
    names = {p.name for p in (out / "checkpoints").iterdir()}
    assert names == {
        f"{s}-{n}.pt" for s in ("relevance", "serendipity", "cold_start") for n in SCORERS
    }
    assert sorted(p.name for p in result.checkpoints) == sorted(names)
    data = world_interactions(world)
    seed = scenario.run.seed
    split = split_relevance(data, seed)
    cands = CandidateLists.sample(data, split, NEGATIVES, seed)
    rows = result.table[result.table["setting"] == "relevance"].set_index("scorer")
    for name, cls in (
        ("popularity", PopularityScorer),
        ("vae", CrossDomainVAEScorer),
        ("serencdr", SerenCDRScorer),
    ):
        loaded = cls.load(out / "checkpoints" / f"relevance-{name}.pt")
        metrics = rank_metrics(score_candidates(loaded, cands), seed=seed)
        for key, value in metrics.items():
            assert rows.loc[name, key] == pytest.approx(value), (name, key)


def test_same_seed_same_numbers(run: Any, scenario: Scenario, world: WorldData) -> None:
    result, _, _, _ = run
    again = evaluate_ranking(scenario, world)
    cols = ["seed", "setting", "scorer", "n_users", *METRICS]
    pd.testing.assert_frame_equal(again.table[cols], result.table[cols])
    assert again.checkpoints == []


def test_progress_reports_every_task_to_its_end(run: Any) -> None:
    _, _, _, calls = run
    stages = list(dict.fromkeys(c[0] for c in calls))
    n = 3 * len(SCORERS)
    assert len(stages) == n
    assert stages[0] == f"ranking 1/{n}: relevance · popularity (seed 4)"
    assert stages[-1] == f"ranking {n}/{n}: cold_start · serencdr (seed 4)"
    for stage in stages:
        last = [c for c in calls if c[0] == stage][-1]
        assert last[1] == last[2] >= 1  # every bar ends full


def test_several_seeds_name_checkpoints_by_seed(world: WorldData, tmp_path: Path) -> None:
    sc = tiny_scenario(scorers=["popularity"], settings=["relevance"], seeds=2)
    result = evaluate_ranking(sc, world, tmp_path)
    assert result.table["seed"].tolist() == [4, 5]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "relevance-popularity-seed4.pt",
        "relevance-popularity-seed5.pt",
    ]
    summary = result.summary()
    assert len(summary) == 1 and summary.loc[0, "seeds"] == 2
    assert summary.loc[0, "HR@10"] == pytest.approx(result.table["HR@10"].mean())
    assert summary.loc[0, "HR@10_sd"] == pytest.approx(result.table["HR@10"].std(ddof=1))


def test_unknown_scorer_is_a_clear_error(world: WorldData) -> None:
    with pytest.raises(ValueError, match=r"unknown scorer.*'nope'"):
        evaluate_ranking(tiny_scenario(scorers=["popularity", "nope"]), world)


def test_missing_optional_scorer_is_skipped_with_a_note(
    world: WorldData, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ranking_scorers.LAZY_MODULES, "purs", "models.no_such_module")
    sc = tiny_scenario(scorers=["popularity", "purs"], settings=["relevance"])
    result = evaluate_ranking(sc, world)
    assert result.table["scorer"].tolist() == ["popularity"]
    assert any("purs" in n and "skipped" in n for n in result.notes)


def test_label_scorers_are_skipped_without_labels(world: WorldData) -> None:
    sc = tiny_scenario(scorers=["popularity", "serencdr"], settings=["relevance"])
    no_truth_world = WorldData(**{**world.__dict__, "like_threshold": 99.0})
    result = evaluate_ranking(sc, no_truth_world)
    assert result.table["scorer"].tolist() == []  # no liked item either: nothing to hold out
    sc = tiny_scenario(scorers=["popularity", "serencdr"], settings=["relevance", "serendipity"])
    far = WorldData(**{**world.__dict__, "comfort_radius": np.full(world.n_users, 9.0)})
    calls: list[tuple[str, int, int]] = []
    result = evaluate_ranking(sc, far, progress=lambda stage, d, t: calls.append((stage, d, t)))
    assert result.table["scorer"].tolist() == ["popularity"]
    # The skipped task still reports, as a finished bar, so no bar is left hanging.
    assert [c for c in calls if "serencdr" in c[0]] == [
        ("ranking 2/2: relevance · serencdr (seed 4) (skipped)", 1, 1)
    ]
    assert any("serendipity setting skipped" in n for n in result.notes)
    assert any("serencdr skipped" in n for n in result.notes)


def test_scale_defaults_grow_with_the_data() -> None:
    small, medium, large = (scale_defaults(n, 5000) for n in (671, 6040, 35_025))
    assert (small.tier, medium.tier, large.tier) == ("small", "medium", "large")
    assert (small.vae_hidden, small.vae_latent, small.cdr_input, small.cdr_latent) == (
        64,
        16,
        16,
        8,
    )
    assert (large.vae_hidden, large.vae_latent, large.cdr_latent) == (512, 128, 64)
    for s in (small, medium, large):
        assert s.cdr_input == 2 * s.cdr_latent  # the raw-embedding aux loss needs it
    tiny = scale_defaults(50, 12)
    assert tiny.vae_latent <= 3 and tiny.cdr_latent <= 3 and tiny.bpr_dim <= 3
    vae = build_scorer("vae", small, epochs=7)
    assert isinstance(vae, CrossDomainVAEScorer) and vae.config.epochs == 7
    assert vae.config.hidden_dim == 64 and vae.config.mode == "cross"
    cold = build_scorer("vae_cold", small)
    assert isinstance(cold, CrossDomainVAEScorer) and cold.config.cold_start
    assert cold.config.epochs == small.vae_epochs
    ablation = build_scorer("serencdr_no_align", small)
    assert isinstance(ablation, SerenCDRScorer) and not ablation.config.use_alignment
    # serencdr_bias keeps the small sizes at every tier, capped on a tiny catalogue
    for scale, latent in ((small, 8), (medium, 8), (large, 8), (tiny, tiny.cdr_latent)):
        biased = build_scorer("serencdr_bias", scale)
        assert isinstance(biased, SerenCDRScorer) and biased.config.item_bias
        cfg = biased.config
        assert (cfg.latent_dim, cfg.input_dim, cfg.epochs) == (latent, 2 * latent, 100)
        assert cfg.unrated_negatives == 1.0
    assert build_scorer("serencdr", medium).config.latent_dim == 32  # the tier's own sizes
    assert {n for n, s in SPECS.items() if s.uses_labels} >= {
        "serencdr",
        "serencdr_no_aux",
        "serencdr_no_shared",
        "serencdr_no_align",
    }


def test_ranking_tables_render_one_table_per_setting(run: Any) -> None:
    result, _, _, _ = run
    tables = ranking_tables(result)
    assert len(tables) == 3
    assert all(t.row_count == len(SCORERS) for t in tables)
    console = Console(record=True, width=200)
    for t in tables:
        console.print(t)
    text = console.export_text()
    assert "Serendipity" in text and "serencdr †" in text and f"1 + {NEGATIVES}" in text


def test_users_without_enough_unrated_items_are_left_out(world: WorldData) -> None:
    data = world_interactions(world)
    n_target = len(data.domain_items(data.target_domain))
    rated = np.diff(sp.csr_matrix(data.ratings)[:, data.domain_items(data.target_domain)].indptr)
    negatives = n_target - int(np.median(rated[rated > 0]))  # about half the users too full
    sc = tiny_scenario(scorers=["popularity"], settings=["relevance", "cold_start"])
    sc = parse_scenario(
        {
            **sc.model_dump(mode="json"),
            "evaluation": {**sc.evaluation.model_dump(mode="json"), "negatives": negatives},
        }
    )
    full = split_relevance(data, sc.run.seed)
    result = evaluate_ranking(sc, world)
    rows = result.table.set_index("setting")
    kept = (n_target - rated[full.users]) >= negatives
    assert 0 < kept.sum() < len(full.users)
    assert rows.loc["relevance", "n_users"] == kept.sum()
    assert any("relevance" in n and "left out" in n for n in result.notes)
    cold = split_cold_start(data, sc.run.seed)
    cold_kept = (n_target - rated[cold.users]) >= negatives
    assert rows.loc["cold_start", "n_users"] == cold_kept.sum()


def test_restricted_cold_start_split_hides_only_the_kept_users(world: WorldData) -> None:
    data = world_interactions(world)
    split = split_cold_start(data, 3)
    keep = np.arange(len(split.users)) % 2 == 0
    cut = ranking._restrict(split, keep)
    np.testing.assert_array_equal(cut.users, split.users[keep])
    np.testing.assert_array_equal(cut.held_out, split.held_out[keep])
    assert set(np.unique(cut.hidden.nonzero()[0]).tolist()) == set(cut.users.tolist())
    diff = cut.hidden[cut.users].astype(int) - split.hidden[cut.users].astype(int)
    assert diff.nnz == 0
