"""The quickstart claims over several seeds: TFCDSRS against target-only CF.

Runs scenarios/quickstart.yaml once per seed (each run = both variants on the same world and
requests), then prints mean and standard deviation across seeds for all / cold / warm users,
and whether each claim of issue 2 holds on every seed.

    python bench/study_quickstart.py [--seeds 1,2,3,4,5] [--steps 15] [--extra NAME=key:value,...]

``--extra`` adds TFCDSRS variants for ablations, e.g.
``--extra une_abs=unexpectedness_input:absolute``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from environment.runner import run_scenario
from environment.scenario import load_scenario, with_overrides

METRICS = (
    "mae",
    "rmse",
    "precision",
    "unexpectedness",
    "serendipity",
    "hit_rate",
    "acceptance",
    "mean_trust",
)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--extra", action="append", default=[])
    args = ap.parse_args()
    base = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.yaml")
    recs = [r.model_dump(mode="json") for r in base.recommenders]
    for spec in args.extra:
        name, _, kvs = spec.partition("=")
        extra = dict(kv.split(":", 1) for kv in kvs.split(",") if kv)
        recs.append({"name": name, "kind": "tfcdsrs", **extra})
    seeds = [int(s) for s in args.seeds.split(",")]
    table: dict[tuple[str, str, str], list[float]] = {}
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
            for v in run_scenario(sc, db=str(Path(tmp) / f"s{seed}.db")).variants:
                for (name, group), value in v.metrics.items():
                    table.setdefault((v.name, name, group), []).append(
                        np.nan if value is None else value
                    )
            print(f"seed {seed} done", file=sys.stderr)
    names = [r["name"] for r in recs]
    print(f"quickstart, seeds {seeds}, {args.steps} steps: mean (sd) across seeds")
    for group in ("all", "cold", "warm"):
        print(f"\n[{group}]".ljust(18) + "".join(f"{n:>18s}" for n in names))
        for metric in METRICS:
            cells = []
            for n in names:
                vals = np.asarray(table.get((n, metric, group), [np.nan]))
                cells.append(f"{np.nanmean(vals):.4f} ({np.nanstd(vals):.4f})")
            print(f"  {metric:16s}" + "".join(f"{c:>18s}" for c in cells))

    def per_seed(n: str, m: str, g: str) -> np.ndarray:
        return np.asarray(table[(n, m, g)])

    t, c = "tfcdsrs", "cf"
    claims = {
        "cold-start MAE lower than CF": per_seed(t, "mae", "cold") < per_seed(c, "mae", "cold"),
        "serendipity hit rate higher than CF": per_seed(t, "hit_rate", "all")
        > per_seed(c, "hit_rate", "all"),
        "unexpectedness@N higher than CF": per_seed(t, "unexpectedness", "all")
        > per_seed(c, "unexpectedness", "all"),
        "warm MAE at most 10% worse": per_seed(t, "mae", "warm")
        <= 1.1 * per_seed(c, "mae", "warm"),
    }
    print()
    for claim, ok in claims.items():
        print(f"  {claim:40s} holds on {int(ok.sum())}/{len(ok)} seeds")


if __name__ == "__main__":
    main()
