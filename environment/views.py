"""Rich renderables for the command line: built here, printed only by main.py."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from environment.inspect import MessageLine, UserTrace, summarise
from environment.metrics import SUMMARY_METRICS
from environment.runner import VariantResult
from models.fuzzy import default_rule_base

# Shown only when a run has them: trust against a real trust network, shilling exposure.
OPTIONAL_METRICS = ("trust_auc", "pushed_share")
LIVE_METRICS = ("mae", "hit_rate", "serendipity", "unexpectedness", "acceptance", "mean_trust")


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def summary_table(
    results: Sequence[VariantResult], groups: Sequence[str] = ("all", "cold", "warm")
) -> Table:
    """One table, a column per recommender variant and group, a row per metric."""
    t = Table(title="Run summary (whole run; cold = cold-start users)", header_style="bold")
    t.add_column("metric")
    for r in results:
        for g in groups:
            t.add_column(f"{r.name}\n{g}", justify="right")
    optional = [m for m in OPTIONAL_METRICS if any((m, "all") in r.metrics for r in results)]
    for name in ("requests", *SUMMARY_METRICS, *optional):
        t.add_row(name, *[fmt(r.metrics.get((name, g))) for r in results for g in groups])
    if any(("mean_reputation", "adversarial") in r.metrics for r in results):
        row = ["reputation (attackers)"]
        for r in results:
            row += [fmt(r.metrics.get(("mean_reputation", "adversarial")))] + [""] * (
                len(groups) - 1
            )
        t.add_row(*row)
    t.caption = "run ids: " + ", ".join(f"{r.name}={r.run_id} ({r.seconds:.1f}s)" for r in results)
    return t


def messages_table(lines: Sequence[MessageLine], title: str) -> Table:
    t = Table(title=title, expand=True, show_lines=False)
    t.add_column("id", justify="right", style="dim", width=7)
    t.add_column("from -> to", width=30)
    t.add_column("kind", style="cyan", width=22)
    t.add_column("what")
    for m in lines:
        t.add_row(str(m.id), f"{m.sender} -> {m.recipient}", m.kind, m.summary)
    return t


def metrics_panel(
    name: str, step: int, metrics: dict[tuple[str, str], float | None], requests: int
) -> Panel:
    t = Table.grid(padding=(0, 2))
    t.add_column()
    t.add_column(justify="right")
    t.add_column(justify="right")
    t.add_row(Text("metric", style="bold"), Text("all", style="bold"), Text("cold", style="bold"))
    for key in LIVE_METRICS:
        t.add_row(key, fmt(metrics.get((key, "all"))), fmt(metrics.get((key, "cold"))))
    return Panel(t, title=f"{name}: step {step} ({requests} requests)")


def trace_view(tr: UserTrace) -> Group:
    """The chain of messages behind one user's list, with every component score."""
    rule_names = {no: f"{n}/{r}/{u} -> {o}" for no, n, r, u, o in default_rule_base().rule_table()}
    head = Text(f"run {tr.run.id} ({tr.run.variant}), user {tr.user}, step {tr.step}", style="bold")
    tree = Tree(head)
    for msg, payload in tr.messages:
        node = tree.add(
            f"[cyan]{msg.kind}[/] {msg.sender} -> {msg.recipient}: {summarise(msg.kind, payload)}"
        )
        if msg.kind == "TrustedNeighbours" and payload["neighbours"]:
            nt = Table("neighbour", "origin", "similarity", "trust", "weight", box=None)
            rows = zip(
                payload["neighbours"],
                payload["remote"],
                payload["similarity"],
                payload["trust"],
                payload["weights"],
                strict=True,
            )
            for y, remote, s, tau, w in list(rows)[:15]:
                nt.add_row(
                    str(y), "remote" if remote else "local", f"{s:.3f}", f"{tau:.3f}", f"{w:.3f}"
                )
            node.add(nt)
        if msg.kind == "RemoteNeighbours" and payload["neighbours"]:
            node.add(
                "top: "
                + ", ".join(
                    f"{y} ({s:.2f})"
                    for y, s in list(
                        zip(payload["neighbours"], payload["similarity"], strict=True)
                    )[:8]
                )
            )
    listing = Tree(Text("the list (rank: item, score)", style="bold"))
    feedback = {f.item_id: f for f in tr.feedback}
    for r in tr.recommendations:
        node = listing.add(f"[bold]#{r.rank}[/]: item {r.item_id}, score {fmt(r.score)}")
        node.add(
            f"prediction {fmt(r.prediction)} | novelty {fmt(r.novelty)} | relevance {fmt(r.relevance)} | "
            f"unexpectedness {fmt(r.unexpectedness)} -> serendipity {fmt(r.serendipity)}"
        )
        fired = _rules(r.rules)
        if fired:
            rules = node.add("rules fired (strength):")
            for no, strength in fired[:3]:
                rules.add(f"R{no} {rule_names.get(no, '')} ({strength:.2f})")
        f = feedback.get(r.item_id)
        if f is not None:
            if f.consumed:
                outcome = f"consumed, rated {f.rating:g}, {'serendipitous!' if f.serendipitous else 'not serendipitous'}"
            else:
                outcome = "not consumed"
            node.add(f"outcome: {outcome} (true utility {f.true_utility:.2f})")
        if r.neighbours and r.neighbours != "[]":
            node.add(f"neighbours behind it: {r.neighbours}")
    return Group(tree, listing)


def _rules(text: str) -> list[tuple[int, float]]:
    import json

    return [(int(a), float(b)) for a, b in json.loads(text or "[]")]
