"""The report: series derived from a run database (by hand on small frames), tables and plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from environment import plots
from environment.report import (
    ReportData,
    ReportError,
    build_report,
    cold_start_curve,
    default_report_folder,
    load_report_data,
    parse_steps,
    rating_bin_labels,
    reputation_over_time,
    target_ratings_at,
    trust_over_time,
    trust_snapshot,
    user_types,
)
from environment.runner import run_scenario
from environment.scenario import parse_scenario
from tests.environment.test_sweep import TINY

USERS = pd.DataFrame(
    {
        "run_id": [1, 1, 1],
        "user_id": [0, 1, 2],
        "kind": ["honest", "honest", "adversarial"],
        "cold_start": [False, True, True],
        "arrival_step": [0, 1, 0],
    }
)
USERS["user_type"] = user_types(USERS)

# (id, step, truster, trustee, value): two changes of 0->1 at step 1, the later (id 5) counts
TRUST = pd.DataFrame(
    [
        (1, 0, 0, 1, 0.2),
        (2, 0, 0, 2, 0.4),
        (3, 1, 0, 1, 0.6),
        (4, 1, 2, 1, 0.1),
        (5, 1, 0, 1, 0.5),
        (6, 3, 1, 2, 0.8),
    ],
    columns=["id", "step", "truster", "trustee", "value"],
).assign(run_id=1)


def test_user_types_put_attackers_first() -> None:
    assert list(USERS["user_type"]) == ["honest", "cold-start", "adversarial"]


def test_target_ratings_at_counts_ratings_visible_at_the_step() -> None:
    ratings = pd.DataFrame(
        {
            "run_id": [1, 1, 1, 1, 1, 2],
            "user_id": [0, 0, 0, 0, 1, 0],
            "available_step": [0, 0, 2, 5, 3, 1],
        }
    )
    queries = pd.DataFrame(
        [
            (1, 0, 0),
            (1, 0, 2),
            (1, 0, 4),
            (1, 0, 5),
            (1, 1, 2),
            (1, 1, 3),
            (2, 0, 0),
            (2, 0, 1),
            (1, 2, 4),
        ],
        columns=["run_id", "user_id", "step"],
    )
    assert target_ratings_at(ratings, queries).tolist() == [2, 3, 3, 4, 0, 1, 0, 1, 0]


def test_trust_over_time_by_trustee_type_by_hand() -> None:
    t = trust_over_time(TRUST, USERS, last_step=3).set_index(["user_type", "step"])
    cold = t.loc["cold-start"]
    # trustee 1 (cold-start): {0->1: 0.2}, then {0->1: 0.5, 2->1: 0.1} from step 1 on
    assert cold["mean_trust"].tolist() == pytest.approx([0.2, 0.3, 0.3, 0.3])
    assert cold["pairs"].tolist() == [1, 2, 2, 2]
    adv = t.loc["adversarial"]
    # trustee 2 (adversarial): {0->2: 0.4}, then 1->2 = 0.8 joins at step 3
    assert adv["mean_trust"].tolist() == pytest.approx([0.4, 0.4, 0.4, 0.6])
    assert adv["pairs"].tolist() == [1, 1, 1, 2]
    assert "honest" not in t.index.get_level_values(0)  # nobody trusts user 0


def test_trust_snapshot_takes_the_latest_value_per_pair() -> None:
    snap = trust_snapshot(TRUST, run_id=1, step=1).sort_values(["truster", "trustee"])
    assert snap.values.tolist() == [[0, 1, 0.5], [0, 2, 0.4], [2, 1, 0.1]]
    assert len(trust_snapshot(TRUST, run_id=2, step=9)) == 0


def test_reputation_over_time_means_per_type_and_step() -> None:
    rep = pd.DataFrame(
        {
            "run_id": 1,
            "step": [0, 0, 1, 1, 1],
            "user_id": [0, 2, 0, 1, 2],
            "value": [0.1, 0.5, 0.3, 0.2, 0.7],
        }
    )
    r = reputation_over_time(rep, USERS).set_index(["user_type", "step"])
    assert r.loc[("honest", 1), "mean_reputation"] == pytest.approx(0.3)
    assert r.loc[("adversarial", 0), "mean_reputation"] == pytest.approx(0.5)
    assert r.loc[("cold-start", 1), "users"] == 1
    assert ("cold-start", 0) not in r.index  # user 1 arrives at step 1


def test_cold_start_curve_by_hand() -> None:
    lists = pd.DataFrame(
        {
            "run_id": 1,
            "step": [0, 0, 0, 1, 1, 2],
            "user_id": [5, 5, 6, 5, 5, 7],
            "target_ratings": [0, 0, 1, 1, 1, 12],
            "prediction": [3.0, 4.0, 2.0, 4.5, np.nan, 3.0],
            "consumed": [True, False, True, True, True, True],
            "rating": [4.0, np.nan, 3.0, 4.0, 5.0, 3.5],
            "serendipitous": [True, False, False, True, True, False],
        }
    )
    c = cold_start_curve(lists).set_index("bin_label")
    assert list(c.index) == ["0", "1", "10-19"]
    assert c.loc["0", "lists"] == 1 and c.loc["0", "items"] == 2
    assert c.loc["0", "mae"] == pytest.approx(1.0)  # only the consumed item with a prediction
    assert c.loc["0", "hit_rate"] == pytest.approx(0.5)
    # bin 1: user 6 at step 0 (|2-3| = 1) and user 5 at step 1 (|4.5-4| = 0.5; NaN skipped)
    assert c.loc["1", "lists"] == 2 and c.loc["1", "rated"] == 2
    assert c.loc["1", "mae"] == pytest.approx(0.75)
    assert c.loc["1", "hit_rate"] == pytest.approx(2 / 3)
    assert rating_bin_labels() == ["0", "1", "2", "3", "4", "5-9", "10-19", "20-49", "50+"]


def test_parse_steps_and_default_folder() -> None:
    assert parse_steps("10,0, 10") == [0, 10]
    for bad in ("", "a", "-1"):
        with pytest.raises(ValueError):
            parse_steps(bad)
    assert default_report_folder("runs/q.db") == Path("runs/q_report")
    assert default_report_folder("sqlite:///runs/q.db") == Path("runs/q_report")


@pytest.fixture(scope="module")
def run_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("report") / "tiny.db"
    run_scenario(parse_scenario(TINY), db=str(db))
    return db


@pytest.fixture(scope="module")
def data(run_db: Path) -> ReportData:
    return load_report_data(run_db)


def test_loaded_series_agree_with_the_run_database(data: ReportData) -> None:
    assert list(data.runs["label"]) == ["tfcdsrs", "cf"]
    for rid in data.runs["run_id"]:
        lists = data.lists[data.lists["run_id"] == rid]
        curve = cold_start_curve(lists)
        assert curve["items"].sum() == len(lists)
        assert curve["lists"].sum() == len(lists.drop_duplicates(["step", "user_id"]))
        # the curve's pooled hit rate is the run's whole-run hit rate
        whole = data.metrics[(data.metrics["run_id"] == rid) & (data.metrics["step"] == -1)]
        hit = whole[(whole["name"] == "hit_rate") & (whole["group"] == "all")]["value"].iloc[0]
        assert (curve["hit_rate"] * curve["items"]).sum() / curve["items"].sum() == pytest.approx(
            hit
        )
    # the cold-start users' mean reputation per step is the metric the run recorded
    rep = reputation_over_time(data.reputation, data.users)
    cold = rep[rep["user_type"] == "cold-start"].set_index(["run_id", "step"])["mean_reputation"]
    m = data.metrics
    metric = m[(m["name"] == "mean_reputation") & (m["group"] == "cold") & (m["step"] >= 0)]
    metric = metric.dropna().set_index(["run_id", "step"])["value"]
    assert len(metric) > 0
    pd.testing.assert_series_equal(cold.loc[metric.index], metric, check_names=False)
    # the last step's pair count is every pair the trust table ever named
    last = trust_over_time(data.trust, data.users, 2)
    pairs = last[last["step"] == 2].groupby("run_id")["pairs"].sum()
    named = data.trust.drop_duplicates(["run_id", "truster", "trustee"]).groupby("run_id").size()
    assert pairs.to_dict() == named.to_dict()


def assert_readable(fig: Figure) -> None:
    """A title, axis labels on every panel, a legend wherever several series are drawn."""
    assert fig.get_suptitle()
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        assert ax.get_title(), ax
        assert ax.get_xlabel() and ax.get_ylabel(), ax.get_title()
        series = len(ax.lines) + len(ax.collections) + len({p.get_facecolor() for p in ax.patches})
        if series > 1:
            assert ax.get_legend() is not None or fig.legends, ax.get_title()


def test_every_figure_has_titles_labels_and_legends(data: ReportData) -> None:
    trust = trust_over_time(data.trust, data.users, 2)
    rep = reputation_over_time(data.reputation, data.users)
    rid = int(data.runs["run_id"].iloc[0])
    snaps = {s: trust_snapshot(data.trust, rid, s) for s in (0, 2)}
    users = data.users[data.users["run_id"] == rid]
    reputation = data.reputation[data.reputation["run_id"] == rid]
    figures = [
        plots.metrics_per_step(data.metrics, data.runs),
        plots.trust_reputation_by_type(trust, rep, data.runs),
        plots.cold_start_curve(cold_start_curve(data.lists), data.runs),
        plots.tradeoff(data.metrics, data.runs),
        plots.trust_network(snaps, users, reputation, "tfcdsrs", np.random.default_rng(0)),
    ]
    for fig in figures:
        assert_readable(fig)
    titles = [ax.get_title() for ax in figures[0].axes if ax.get_visible()]
    extra = set(data.metrics.loc[data.metrics["step"] >= 0, "name"]) - set(plots.STEP_METRICS)
    assert "Prediction error (MAE)" in titles
    assert len(titles) == len(plots.STEP_METRICS) + len(extra)  # a panel for every metric
    assert figures[4].axes[0].get_title().startswith("step 0:")


def test_build_report_writes_the_pngs_and_tables(run_db: Path, tmp_path: Path) -> None:
    rep = build_report(run_db, tmp_path / "out", snapshot_steps=[0, 2, 40])
    names = sorted(p.name for p in rep.files)
    assert names == sorted(
        [
            "metrics_per_step.png",
            "trust_reputation_by_user_type.png",
            "cold_start_curve.png",
            "accuracy_serendipity_tradeoff.png",
            "trust_network_tfcdsrs_steps_0-2.png",
            "trust_network_cf_steps_0-2.png",
        ]
    )
    for path in rep.files:
        image = imread(path)
        assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500
        assert image[..., :3].std() > 0.05  # not a blank canvas
    assert rep.notes == ["no trust snapshot at step 40: the runs end at step 2"]
    assert [t.title for t in rep.tables][1:] == [
        "Whole-run metrics (cold = cold-start users)",
        "By user type at the last step",
        "Cold-start curve: by target ratings when the list was made",
    ]


def test_report_of_a_missing_database_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="does not exist"):
        load_report_data(tmp_path / "nothing.db")
