"""The offline comparison's tables (environment/views_eval.py)."""

from __future__ import annotations

from rich.console import Console

from environment.offline import evaluate_accuracy
from environment.scenario import parse_scenario
from environment.views_eval import accuracy_tables
from tests.environment.test_offline import _hand_world


def test_three_tables_with_a_column_per_recommender_and_metric() -> None:
    sc = parse_scenario(
        {
            "name": "hand",
            "recommenders": [{"name": "tfcdsrs", "neighbours": 5}],
            "evaluation": {"split": "time", "test_share": 0.1, "list_lengths": [1, 5]},
        }
    )
    res = evaluate_accuracy(sc, _hand_world())
    assert res.recommenders == ["tfcdsrs", "cf"]  # the CF baseline is added
    errors, top, unexp = accuracy_tables(res)
    assert errors.row_count == len(res.buckets)
    assert len(errors.columns) == 3 + 3 * 2  # bucket, users, ratings; MAE/RMSE/predicted x 2
    assert top.row_count == len(res.buckets) * 2  # N = 1 and 5 per bucket
    assert unexp.row_count == len(res.buckets) * len(sc.evaluation.unexpectedness_lengths)
    console = Console(width=200, record=True)
    for table in (errors, top, unexp):
        console.print(table)
    text = console.export_text()
    assert "MAE" in text and "split time" in text and "3-5" in text
