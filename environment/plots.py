"""The report's figures: matplotlib's object API on the Agg canvas (no display, no pyplot).

Each function takes the frames of :mod:`environment.report` and returns a Figure with a
title, axis labels and a legend wherever more than one series is drawn; :func:`save` writes
it as a PNG. Colours are fixed per user type and per variant so that figures read together.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

TYPE_COLOURS = {"honest": "tab:blue", "cold-start": "tab:orange", "adversarial": "tab:red"}
VARIANT_COLOURS = ("tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
VARIANT_STYLES = ("-", "--", ":", "-.")
GROUP_STYLES = {"all": "-", "cold": "--"}
GROUP_NAMES = {"all": "all users", "cold": "cold-start users"}

# name -> (panel title, y label)
STEP_METRICS: dict[str, tuple[str, str]] = {
    "requests": ("Lists asked for (same users for every variant)", "lists per step"),
    "mae": ("Prediction error (MAE)", "mean |prediction - rating|"),
    "precision": ("Precision@N", "share of the list truly liked"),
    "recall": ("Recall@N", "share of liked items listed"),
    "serendipity": ("Serendipity@N (ground truth)", "share of the list"),
    "hit_rate": ("Serendipity hit rate (felt)", "share of listed items"),
    "unexpectedness": ("Unexpectedness@N", "mean unexpectedness"),
    "acceptance": ("Acceptance", "share of listed items consumed"),
    "coverage": ("Target catalogue coverage", "share of items listed so far"),
    "mean_trust": ("Mean trust the group gives", "trust over known pairs"),
    "mean_reputation": ("Mean reputation (honest users)", "reputation"),
}


def safe_name(text: str) -> str:
    """A string made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: Path, dpi: int = 110) -> Path:
    """Write a figure as a PNG; returns the path."""
    fig.savefig(path, dpi=dpi)
    return path


def _variant_colours(runs: pd.DataFrame) -> dict[int, str]:
    ids = runs["run_id"].tolist()
    return {rid: VARIANT_COLOURS[i % len(VARIANT_COLOURS)] for i, rid in enumerate(ids)}


def _labels(runs: pd.DataFrame) -> dict[int, str]:
    return dict(zip(runs["run_id"], runs["label"], strict=True))


def _empty(ax: Axes, what: str) -> None:
    ax.text(
        0.5, 0.5, f"no {what} in this database", ha="center", va="center", transform=ax.transAxes
    )


def metrics_per_step(
    metrics: pd.DataFrame,
    runs: pd.DataFrame,
    names: Mapping[str, tuple[str, str]] | None = None,
) -> Figure:
    """A panel per metric: its value at each step, per run, for all and cold-start users.

    Args:
        metrics: The metric table (``run_id, step, name, group, value``); step -1 is ignored.
        runs: ``run_id`` and ``label`` of the runs to draw, in legend order.
        names: Metric name -> (panel title, y label), in panel order (default:
            :data:`STEP_METRICS`, then a panel for any other metric of the table).
    """
    per_step = metrics[metrics["step"] >= 0]
    if names is None:
        extra = sorted(set(per_step["name"]) - set(STEP_METRICS))
        names = {**STEP_METRICS, **{n: (n.replace("_", " ").capitalize(), n) for n in extra}}
    cols = 3
    rows = -(-len(names) // cols)
    fig = _figure(4.2 * cols, 2.9 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    colours, labels = _variant_colours(runs), _labels(runs)
    for ax, (name, (title, ylabel)) in zip(axes, names.items(), strict=False):
        for rid in runs["run_id"]:
            for group, style in GROUP_STYLES.items():
                s = per_step[
                    (per_step["run_id"] == rid)
                    & (per_step["name"] == name)
                    & (per_step["group"] == group)
                ].sort_values("step")
                ax.plot(
                    s["step"],
                    s["value"],
                    style,
                    color=colours[rid],
                    marker=".",
                    label=f"{labels[rid]}, {GROUP_NAMES[group]}",
                )
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    handles, texts = axes[0].get_legend_handles_labels()
    fig.legend(handles, texts, loc="outside lower center", ncols=min(len(texts), 4))
    fig.suptitle(
        "Metrics per step by recommender variant (solid: all users, dashed: cold-start users)"
    )
    return fig


def trust_reputation_by_type(
    trust: pd.DataFrame, reputation: pd.DataFrame, runs: pd.DataFrame
) -> Figure:
    """Mean trust received and mean reputation over time, a line per user type and run.

    Args:
        trust: :func:`environment.report.trust_over_time` of the runs.
        reputation: :func:`environment.report.reputation_over_time` of the runs.
        runs: ``run_id`` and ``label`` of the runs (line style per run).
    """
    fig = _figure(12, 4.6)
    ax_t, ax_r = fig.subplots(1, 2)
    labels = _labels(runs)
    styles = {rid: VARIANT_STYLES[i % len(VARIANT_STYLES)] for i, rid in enumerate(runs["run_id"])}
    for ax, frame, column in ((ax_t, trust, "mean_trust"), (ax_r, reputation, "mean_reputation")):
        if frame.empty:
            _empty(ax, column.replace("_", " "))
        for (rid, ut), s in frame.groupby(["run_id", "user_type"]):
            ax.plot(
                s["step"],
                s[column],
                styles[rid],
                color=TYPE_COLOURS.get(ut, "grey"),
                marker=".",
                label=f"{ut} ({labels[rid]})",
            )
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(title="user type (run)", fontsize="small")
    ax_t.set_title("Trust others place in each user type")
    ax_t.set_ylabel("mean trust received (known pairs)")
    ax_r.set_title("Reputation of each user type")
    ax_r.set_ylabel("mean reputation of present users")
    fig.suptitle("Trust and reputation over time by user type (line style = recommender variant)")
    return fig


def cold_start_curve(curve: pd.DataFrame, runs: pd.DataFrame) -> Figure:
    """Error, serendipity hit rate and number of lists by the user's target ratings.

    Args:
        curve: :func:`environment.report.cold_start_curve` of the runs.
        runs: ``run_id`` and ``label`` of the runs.
    """
    fig = _figure(13, 4.4)
    axes = fig.subplots(1, 3)
    colours, labels = _variant_colours(runs), _labels(runs)
    bins = sorted(curve["bin"].unique()) if len(curve) else []
    names = curve.drop_duplicates("bin").set_index("bin")["bin_label"] if len(curve) else {}
    pos = {b: i for i, b in enumerate(bins)}
    width = 0.8 / max(curve["run_id"].nunique(), 1) if len(curve) else 0.8
    for k, (rid, s) in enumerate(curve.groupby("run_id", sort=False)):
        x = np.asarray([pos[b] for b in s["bin"]], dtype=float)
        axes[0].plot(x, s["mae"], "-o", color=colours[rid], label=labels[rid])
        axes[1].plot(x, s["hit_rate"], "-o", color=colours[rid], label=labels[rid])
        axes[2].bar(
            x - 0.4 + width * (k + 0.5), s["lists"], width, color=colours[rid], label=labels[rid]
        )
    titles = (
        "Prediction error",
        "Serendipity hit rate",
        "Lists made (how much data per point)",
    )
    ylabels = ("MAE of consumed items", "share of listed items felt serendipitous", "lists")
    for ax, title, ylabel in zip(axes, titles, ylabels, strict=True):
        ax.set_xticks(range(len(bins)), [names[b] for b in bins], rotation=30)
        ax.set_title(title)
        ax.set_xlabel("user's target-domain ratings when listed")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(title="variant", fontsize="small")
        else:
            _empty(ax, "recommendations")
    if len(curve):
        axes[2].set_yscale("log")  # a few lists at 0 ratings next to thousands of warm ones
    fig.suptitle("Cold-start curve: how recommendations fare as a user's target ratings grow")
    return fig


def tradeoff(metrics: pd.DataFrame, runs: pd.DataFrame) -> Figure:
    """Accuracy against serendipity, one point per run (filled: all users; hollow: cold-start).

    Args:
        metrics: The metric table; only the whole-run rows (step -1) are used.
        runs: ``run_id`` and ``label`` of the runs.
    """
    whole = metrics[metrics["step"] == -1].pivot_table(
        index=["run_id", "group"], columns="name", values="value", aggfunc="last"
    )
    fig = _figure(11, 4.6)
    axes = fig.subplots(1, 2)
    colours, labels = _variant_colours(runs), _labels(runs)
    pairs = (("precision", "serendipity"), ("mae", "hit_rate"))
    for ax, (xname, yname) in zip(axes, pairs, strict=True):
        for rid in runs["run_id"]:
            for group, face in (("all", colours[rid]), ("cold", "none")):
                if (rid, group) not in whole.index or not {xname, yname} <= set(whole.columns):
                    continue
                row = whole.loc[(rid, group)]
                ax.scatter(
                    row[xname],
                    row[yname],
                    s=70,
                    facecolors=face,
                    edgecolors=colours[rid],
                    linewidths=1.8,
                    label=f"{labels[rid]}, {GROUP_NAMES[group]}",
                )
                ax.annotate(
                    labels[rid],
                    (row[xname], row[yname]),
                    textcoords="offset points",
                    xytext=(6, 4),
                    fontsize="small",
                )
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize="small")
        else:
            _empty(ax, "whole-run metrics")
    axes[0].set_title("Precision against serendipity (up and right is better)")
    axes[0].set_xlabel("precision@N (accuracy)")
    axes[0].set_ylabel("serendipity@N (ground truth)")
    axes[1].set_title("Error against felt serendipity (up and left is better)")
    axes[1].set_xlabel("MAE (lower is more accurate)")
    axes[1].set_ylabel("serendipity hit rate")
    fig.suptitle(
        "Accuracy-serendipity trade-off, whole run (filled: all users, hollow: cold-start)"
    )
    return fig


def strongest_links(snapshot: pd.DataFrame, per_user: int) -> pd.DataFrame:
    """Each truster's ``per_user`` most trusted users (ties broken by trustee id)."""
    s = snapshot.sort_values(["truster", "value", "trustee"], ascending=[True, False, True])
    return s.groupby("truster", sort=False).head(per_user)


def _layout(graph: nx.DiGraph, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """Spring layout of the linked users; users without a shown link on a ring around them.

    Isolated users would otherwise repel the linked ones into a dot in the middle.
    """
    linked = [u for u in graph.nodes if graph.degree(u) > 0]
    alone = [u for u in graph.nodes if graph.degree(u) == 0]
    pos: dict[int, np.ndarray] = {}
    if linked:
        sub = graph.subgraph(linked).to_undirected()
        # networkx cannot draw its initial layout from a numpy Generator: give it the start.
        start = {u: rng.random(2) for u in sub.nodes}
        pos = nx.spring_layout(sub, pos=start, iterations=80, weight=None)
    angles = np.linspace(0.0, 2.0 * np.pi, num=max(len(alone), 1), endpoint=False)
    for u, a in zip(alone, angles, strict=False):
        pos[u] = 1.25 * np.array([np.cos(a), np.sin(a)])
    return pos


def trust_network(
    snapshots: Mapping[int, pd.DataFrame],
    users: pd.DataFrame,
    reputation: pd.DataFrame,
    label: str,
    rng: np.random.Generator,
    per_user: int = 1,
) -> Figure:
    """The trust network at chosen steps: each user's strongest links, one panel per step.

    Node colour is the user type, node size the reputation at that step; only users present
    at the step appear, users with no link yet sit on the outer ring. The layout is computed
    once over every panel's links so that a user stays in the same place across steps.

    Args:
        snapshots: Step -> :func:`environment.report.trust_snapshot` of one run.
        users: That run's users (``user_id, arrival_step, user_type``).
        reputation: That run's reputation rows (``step, user_id, value``).
        label: The run's name for the title.
        rng: Draws the layout's starting positions.
        per_user: Links shown per user: their most trusted ones.
    """
    steps: Sequence[int] = sorted(snapshots)
    shown = {s: strongest_links(snapshots[s], per_user) for s in steps}
    union = nx.DiGraph()
    union.add_nodes_from(users["user_id"].tolist())
    for links in shown.values():
        union.add_edges_from(links[["truster", "trustee"]].itertuples(index=False))
    pos = _layout(union, rng)
    types = users.set_index("user_id")
    fig = _figure(5.6 * len(steps), 6.2)
    axes = np.atleast_1d(fig.subplots(1, len(steps)))
    for ax, s in zip(axes, steps, strict=True):
        present = types.index[types["arrival_step"].to_numpy() <= s]
        rep = reputation[reputation["step"] == s].set_index("user_id")["value"]
        g = nx.DiGraph()
        g.add_nodes_from(present)
        links = shown[s][shown[s]["truster"].isin(present) & shown[s]["trustee"].isin(present)]
        g.add_weighted_edges_from(links[["truster", "trustee", "value"]].itertuples(index=False))
        values = np.asarray([d["weight"] for _, _, d in g.edges(data=True)], dtype=float)
        top = values.max() if values.size else 1.0
        nx.draw_networkx_edges(
            g,
            pos,
            ax=ax,
            arrows=True,
            arrowsize=6,
            width=0.7,
            node_size=20,
            edge_color=[(0.15, 0.15, 0.15, 0.15 + 0.7 * v / top) for v in values],
        )
        r = rep.reindex(list(g.nodes)).fillna(0.0).to_numpy()
        nx.draw_networkx_nodes(
            g,
            pos,
            ax=ax,
            node_size=6 + 70 * r / max(r.max(), 1e-9),
            node_color=[TYPE_COLOURS[types.loc[u, "user_type"]] for u in g.nodes],
            edgecolors="white",
            linewidths=0.3,
        )
        ax.set_title(f"step {s}: {g.number_of_nodes()} users, {len(snapshots[s])} trust pairs")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("arrow: truster -> most trusted; size: reputation")
        ax.set_ylabel("spring layout (no units)")
    handles = [
        Line2D([], [], marker="o", linestyle="", color=c, label=t)
        for t, c in TYPE_COLOURS.items()
        if (users["user_type"] == t).any()
    ]
    fig.legend(handles=handles, title="user type", loc="outside lower center", ncols=len(handles))
    most = "most trusted user" if per_user == 1 else f"{per_user} most trusted users"
    fig.suptitle(
        f"Trust network of {label}: an arrow from each user to their {most}; "
        "users without trust yet on the outer ring"
    )
    return fig
