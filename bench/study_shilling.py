"""Shilling over several seeds: does trust drive push attackers out (issue 3)?

Runs scenarios/shilling.yaml once per seed (trust on and trust off on the same world and
requests) and prints, per variant and seed:

* the attackers' mean reputation at the last step against the honest users' median (and
  their mean percentile among all present users);
* the pushed share (share of recommended items that are attackers' pushed items) over the
  first and the second half of the run and over the whole run, with the counts of pushed
  items listed, and of those listed with an attacker among the neighbours behind them (the
  rest are honest users' doing: some rated a pushed item above their own mean);
* where the attackers stand in the pipeline: their share of the final neighbourhood slots
  (first and second half) and the share of their trust pairs that ever got feedback;

then the pushed share and the attackers' slot share per step, pooled over the seeds, and
whether each claim of issue 3 holds per seed. Ground truth (who attacks, which items are
pushed) is read here, in the study, never by the recommender.

    python bench/study_shilling.py [--seeds 11,12,13,14,15] [--steps 20]
        [--extra NAME=key:value,...]    # more variants, copies of trust_on; dotted keys
        [--set key:value,...]           # override trust_on itself (before the copies)

For example, the behaviour before feedback-earned reputation and voucher credit:
``--extra old=trust.reputation:structural,trust.credit:raters``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from environment.runner import run_scenario
from environment.scenario import load_scenario, set_path, with_overrides
from environment.world_data import WorldData


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _apply(rec: dict[str, Any], spec: str) -> dict[str, Any]:
    out = json.loads(json.dumps(rec))
    for kv in filter(None, spec.split(",")):
        key, _, value = kv.partition(":")
        set_path(out, key, _parse_value(value))
    return out


def _variant_figures(
    con: sqlite3.Connection, run_id: int, data: WorldData, steps: int
) -> tuple[dict[str, float], np.ndarray]:
    """The figures of one variant, and its per-step counts (steps, 5): pushed items listed,
    items listed, attackers' neighbourhood slots, all slots, attacker-backed pushed items."""
    is_att = data.user_kind == 1
    half = steps // 2
    (last,) = con.execute("select max(step) from reputation where run_id = ?", (run_id,)).fetchone()
    rep = np.asarray(
        con.execute(
            "select user_id, value from reputation where run_id = ? and step = ?", (run_id, last)
        ).fetchall(),
        dtype=float,
    )
    users, values = rep[:, 0].astype(np.int64), rep[:, 1]
    honest, att = values[~is_att[users]], values[is_att[users]]
    rows = con.execute(
        "select step, item_id, neighbours from recommendation where run_id = ?", (run_id,)
    ).fetchall()
    recs = np.asarray([r[:2] for r in rows], dtype=np.int64).reshape(-1, 2)
    pushed = np.isin(recs[:, 1], data.pushed_items)
    # Pushed items listed with an attacker among the neighbours behind them: the attack at
    # work (honest users who rated a pushed item above their mean can list it too).
    backed = np.array(
        [p and bool(is_att[json.loads(r[2])].any()) for p, r in zip(pushed, rows, strict=True)],
        dtype=bool,
    )
    per_step = np.zeros((steps, 5))
    per_step[:, 0] = np.bincount(recs[:, 0], weights=pushed, minlength=steps)[:steps]
    per_step[:, 1] = np.bincount(recs[:, 0], minlength=steps)[:steps]
    per_step[:, 4] = np.bincount(recs[:, 0], weights=backed, minlength=steps)[:steps]
    for step, payload in con.execute(
        "select step, payload from message where run_id = ? and kind = 'TrustedNeighbours'",
        (run_id,),
    ):
        ids = np.asarray(json.loads(payload)["neighbours"], dtype=np.int64)
        per_step[step, 2] += is_att[ids].sum()
        per_step[step, 3] += len(ids)
    trust = np.asarray(
        con.execute(
            "select truster, trustee, cause in ('liked', 'disliked') from trust where run_id = ?",
            (run_id,),
        ).fetchall(),
        dtype=np.int64,
    ).reshape(-1, 3)
    on_att = is_att[trust[:, 1]]
    pair = trust[:, 0] * data.n_users + trust[:, 1]
    known = np.unique(pair[on_att]).size
    fed = np.unique(pair[on_att & (trust[:, 2] == 1)]).size
    h1, h2 = per_step[:half].sum(axis=0), per_step[half:].sum(axis=0)
    total = per_step.sum(axis=0)
    figures = {
        "att_rep": float(att.mean()),
        "honest_median": float(np.median(honest)),
        "att_pct": float(np.mean(att[:, None] > values[None, :])),
        "pushed_h1": h1[0] / max(h1[1], 1),
        "pushed_h2": h2[0] / max(h2[1], 1),
        "pushed_all": total[0] / max(total[1], 1),
        "n_pushed_h1": h1[0],
        "n_pushed_h2": h2[0],
        "n_backed_h1": h1[4],
        "n_backed_h2": h2[4],
        "att_slots_h1": h1[2] / max(h1[3], 1),
        "att_slots_h2": h2[2] / max(h2[3], 1),
        "att_pairs_fed": fed / max(known, 1),
    }
    return figures, per_step


COLUMNS = (
    ("att_rep", "attacker rep"),
    ("honest_median", "honest median"),
    ("att_pct", "att. percentile"),
    ("pushed_h1", "pushed 1st half"),
    ("pushed_h2", "pushed 2nd half"),
    ("pushed_all", "pushed all"),
    ("n_pushed_h1", "n pushed 1st"),
    ("n_pushed_h2", "n pushed 2nd"),
    ("n_backed_h1", "att-backed 1st"),
    ("n_backed_h2", "att-backed 2nd"),
    ("att_slots_h1", "att. slots 1st"),
    ("att_slots_h2", "att. slots 2nd"),
    ("att_pairs_fed", "att. pairs fed"),
)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", default="11,12,13,14,15")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--extra", action="append", default=[])
    ap.add_argument("--set", default="", help="overrides of the trust_on variant")
    args = ap.parse_args()
    base = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "shilling.yaml")
    recs = [r.model_dump(mode="json") for r in base.recommenders]
    recs[0] = _apply(recs[0], args.set)
    for spec in args.extra:
        name, _, kvs = spec.partition("=")
        recs.append({**_apply(recs[0], kvs), "name": name})
    names = [r["name"] for r in recs]
    seeds = [int(s) for s in args.seeds.split(",")]
    table: dict[tuple[str, str], list[float]] = {}
    series: dict[str, np.ndarray] = {n: np.zeros((args.steps, 5)) for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            sc = with_overrides(
                base,
                {
                    "run.seed": seed,
                    "run.steps": args.steps,
                    "recommenders": recs,
                    "output.trace": "quiet",
                },
            )
            db = Path(tmp) / f"s{seed}.db"
            result = run_scenario(sc, db=str(db))
            con = sqlite3.connect(db)
            for v in result.variants:
                figs, per_step = _variant_figures(con, v.run_id, result.world, args.steps)
                series[v.name] += per_step
                for key, value in figs.items():
                    table.setdefault((v.name, key), []).append(value)
            con.close()
            print(f"seed {seed} done", file=sys.stderr)

    print(f"shilling, seeds {seeds}, {args.steps} steps")
    for n in names:
        print(f"\n[{n}]  " + "  ".join(f"{label:>15s}" for _, label in COLUMNS))
        for k, seed in enumerate(seeds):
            cells = [f"{table[(n, key)][k]:15.4f}" for key, _ in COLUMNS]
            print(f"  seed {seed:<4d}" + "  ".join(cells))
        means = [f"{np.nanmean(table[(n, key)]):15.4f}" for key, _ in COLUMNS]
        print("  mean     " + "  ".join(means))

    print(
        "\nper step, pooled over the seeds: pushed share and attacker-backed pushed share "
        "(per mille), attackers' share of neighbourhood slots (per mille)"
    )
    for n in names:
        listed = np.maximum(series[n][:, 1], 1)
        sh = 1000 * series[n][:, 0] / listed
        bk = 1000 * series[n][:, 4] / listed
        sl = 1000 * series[n][:, 2] / np.maximum(series[n][:, 3], 1)
        print(f"  {n:>14s} pushed " + " ".join(f"{v:4.1f}" for v in sh))
        print(f"  {'':>14s} backed " + " ".join(f"{v:4.1f}" for v in bk))
        print(f"  {'':>14s} slots  " + " ".join(f"{v:4.0f}" for v in sl))

    def per_seed(n: str, key: str) -> np.ndarray:
        return np.asarray(table[(n, key)])

    on, off = names[0], names[1]
    print()
    for n in [on, *names[2:]]:
        claims = {
            "attackers' reputation below honest median": per_seed(n, "att_rep")
            < per_seed(n, "honest_median"),
            "pushed share falls (2nd half < 1st half)": per_seed(n, "pushed_h2")
            < per_seed(n, "pushed_h1"),
            "pushed share does not rise (2nd <= 1st half)": per_seed(n, "pushed_h2")
            <= per_seed(n, "pushed_h1"),
            f"pushed share 2nd half below {off}'s": per_seed(n, "pushed_h2")
            < per_seed(off, "pushed_h2"),
            f"pushed share (whole run) below {off}'s": per_seed(n, "pushed_all")
            < per_seed(off, "pushed_all"),
            "attacker-backed pushed items fall (2nd < 1st half)": per_seed(n, "n_backed_h2")
            < per_seed(n, "n_backed_h1"),
        }
        for claim, ok in claims.items():
            print(f"  {n}: {claim:48s} holds on {int(ok.sum())}/{len(ok)} seeds")


if __name__ == "__main__":
    main()
