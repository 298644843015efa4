"""Rich tables of the ranking protocol (``environment/ranking.py``): built here, printed by
main.py only."""

from __future__ import annotations

import math

import pandas as pd
from rich.table import Table

from environment.ranking import METRICS, RankingResult
from environment.ranking_scorers import SPECS

SETTING_TITLES = {
    "relevance": "Relevance: a held-out liked target item",
    "serendipity": "Serendipity: a held-out serendipitous target item (HR_seren, NDCG_seren)",
    "cold_start": "Cold start: users with every target rating hidden",
}


def _cell(mean: float, sd: float | None, best: bool) -> str:
    text = f"{mean:.3f}"
    if sd is not None and not math.isnan(sd):
        text += f" ± {sd:.3f}"
    return f"[bold green]{text}[/]" if best else text


def setting_table(summary: pd.DataFrame, setting: str, n_negatives: int) -> Table:
    """One setting: a row per scorer, a column per metric (best mean in bold), fit seconds."""
    rows = summary[summary["setting"] == setting]
    title = SETTING_TITLES.get(setting, setting)
    table = Table(title=title, header_style="bold", title_justify="left")
    table.add_column("scorer")
    for metric in METRICS:
        table.add_column(metric, justify="right")
    table.add_column("fit s", justify="right")
    if rows.empty:
        return table
    best = {m: rows[m].max() for m in METRICS}
    many = int(rows["seeds"].max()) > 1
    for rec in rows.to_dict("records"):
        name = str(rec["scorer"])
        marker = " †" if name in SPECS and SPECS[name].uses_labels else ""
        cells = [
            _cell(float(rec[m]), float(rec[f"{m}_sd"]) if many else None, rec[m] == best[m])
            for m in METRICS
        ]
        table.add_row(name + marker, *cells, f"{float(rec['fit_s']):.1f}")
    seeds = int(rows["seeds"].max())
    table.caption = (
        f"{int(rows['n_users'].iloc[0])} test users, 1 + {n_negatives} candidates each, "
        f"{seeds} seed{'s' if seeds > 1 else ''}{' (mean ± sd)' if many else ''}; "
        "† trains on serendipity labels"
    )
    return table


def ranking_tables(result: RankingResult) -> list[Table]:
    """One table per setting, in the order the settings ran."""
    summary = result.summary()
    if summary.empty:
        return []
    settings = list(dict.fromkeys(summary["setting"]))
    return [setting_table(summary, s, result.negatives) for s in settings]
