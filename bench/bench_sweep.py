"""A sweep in parallel processes against the same runs one after another (issue 6).

The quickstart scenario over 5 seeds (each run holds its 2 recommender variants), first one
run after another in this process, then with ``--workers`` spawned worker processes; both in
this process, each into its own temporary folder. It logs both wall times, their ratio, and
whether the two summaries hold exactly the same numbers, and each run's wall and CPU time
(CPU time tells a run slowed by other processes on the machine from one that costs more).
The parallel time includes starting the workers (each imports NumPy, torch and the
simulation); the sequential one does not pay the imports, made before the clock starts.

Run from the repository root: ``python -m bench.bench_sweep [--steps 8] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from environment.scenario import Scenario, load_scenario, with_overrides
from environment.sweep import SweepResult, run_sweep, seeds_of

logger = logging.getLogger("bench_sweep")
REPO = Path(__file__).resolve().parent.parent


def timed_sweep(
    scenario: Scenario, seeds: list[int], out: Path, workers: int
) -> tuple[float, SweepResult]:
    """Wall time and result of one sweep."""
    start = time.perf_counter()
    result = run_sweep(scenario, grid={}, seeds=seeds, out=out, workers=workers)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--steps", type=int, default=None, help="override run.steps (default: the scenario's)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scenario", type=Path, default=REPO / "scenarios" / "quickstart.yaml")
    args = parser.parse_args()

    scenario = load_scenario(args.scenario)
    if args.steps is not None:
        scenario = with_overrides(scenario, {"run.steps": args.steps}, source="--steps")
    seeds = seeds_of(scenario, args.seeds)
    import environment.runner  # noqa: F401  (the sequential clock should not include imports)

    logger.info(
        "%s: %d steps, seeds %s, variants %s; %d CPU(s), load average %s",
        scenario.name,
        scenario.run.steps,
        seeds,
        [r.name for r in scenario.recommenders],
        os.cpu_count() or 0,
        " ".join(f"{x:.1f}" for x in os.getloadavg()),
    )
    with tempfile.TemporaryDirectory() as tmp:
        seq_s, seq = timed_sweep(scenario, seeds, Path(tmp) / "sequential", 1)
        logger.info("one after another: %.1f s", seq_s)
        par_s, par = timed_sweep(scenario, seeds, Path(tmp) / "parallel", args.workers)
        logger.info("%d workers:       %.1f s", args.workers, par_s)
        failed = [r for r in (*seq.results, *par.results) if r.status != "completed"]
        for r in failed:
            logger.info("failed: %s seed %d: %s", r.point, r.seed, r.error)
        try:
            pd.testing.assert_frame_equal(seq.frame, par.frame, check_exact=True)
            same = True
        except AssertionError:
            same = False
    for name, res in (("one after another", seq), ("in the workers", par)):
        logger.info(
            "%s, per run: wall %s s, CPU %s s (CPU total %.1f s)",
            name,
            [round(r.seconds, 1) for r in res.results],
            [round(r.cpu_seconds, 1) for r in res.results],
            sum(r.cpu_seconds for r in res.results),
        )
    logger.info("speed-up (sequential / parallel wall time): x%.2f", seq_s / par_s)
    logger.info(
        "same numbers: %s (%d whole-run values of %d runs x %d variants compared exactly)",
        same,
        len(seq.frame),
        len(seeds),
        len(scenario.recommenders),
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout)
    logger.setLevel(logging.INFO)
    # a failed run is logged above on one line; the runner's traceback would repeat it
    logging.getLogger("environment.runner").setLevel(logging.CRITICAL)
    main()
