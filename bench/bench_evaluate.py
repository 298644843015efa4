"""Wall time and peak memory of the offline accuracy evaluation (``main.py evaluate``).

Run from the repository root: ``python -m bench.bench_evaluate [SCENARIO]`` (default:
``scenarios/movielens_cold_start.yaml``, MovieLens Action -> Comedy). Reports the world build,
the evaluation's wall time per stage (split, trust fixed point, each recommender's users),
the peak of the arrays it allocates (tracemalloc, a second run: tracing slows it down) and the
process's peak resident memory (``resource.getrusage``).
"""

from __future__ import annotations

import logging
import resource
import sys
import time
import tracemalloc
from pathlib import Path

from environment.offline import evaluate_accuracy
from environment.runner import build_world
from environment.scenario import load_scenario

logger = logging.getLogger("bench_evaluate")
DEFAULT = Path("scenarios/movielens_cold_start.yaml")


class StageClock:
    """Progress callback that records when each stage first reports."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.first: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.first.setdefault(stage, time.perf_counter() - self.start)

    def durations(self, end: float) -> list[tuple[str, float]]:
        stages = sorted(self.first.items(), key=lambda kv: kv[1])
        ends = [t for _, t in stages[1:]] + [end]
        return [(name, stop - t) for (name, t), stop in zip(stages, ends, strict=True)]


def main(path: Path = DEFAULT) -> None:
    scenario = load_scenario(path)
    t0 = time.perf_counter()
    world = build_world(scenario)
    build = time.perf_counter() - t0

    clock = StageClock()
    result = evaluate_accuracy(scenario, world, clock)
    wall = time.perf_counter() - clock.start

    tracemalloc.start()
    evaluate_accuracy(scenario, world)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    s = result.split
    logger.info("scenario %s: %d users, %d items", path, world.n_users, world.n_items)
    logger.info(
        "split %s, seed %d: %d test ratings of %d users", s.kind, s.seed, s.n_test, s.n_test_users
    )
    logger.info("world build (load + oracle fit): %.2f s", build)
    logger.info("evaluate_accuracy wall time: %.2f s", wall)
    for stage, seconds in clock.durations(wall):
        logger.info("  %-22s %.2f s", stage, seconds)
    logger.info("peak traced allocations (evaluation alone): %.1f MiB", traced_peak / 2**20)
    logger.info("peak resident memory of the process: %.1f MiB", rss_mb)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)
