"""Throughput of the serendipity FIS evaluators (FORMULAS.md §12), measured in one process.

Run from the repository root: ``python bench/bench_fuzzy.py [--items N] [--skfuzzy-items M]``.
Prints items/s for scikit-fuzzy with array inputs, the NumPy replica of its algorithm and
the exact breakpoint centroid, each one's speed relative to scikit-fuzzy, and each one's
largest difference from scikit-fuzzy on the items that scikit-fuzzy scored.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.fuzzy import serendipity_exact
from models.fuzzy_skfuzzy import serendipity_replica, serendipity_skfuzzy

Evaluator = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def best_rate(evaluate: Evaluator, inputs: np.ndarray, repeats: int) -> tuple[float, np.ndarray]:
    """Best items/s over ``repeats`` runs (the least disturbed by other load), and the output."""
    best, out = np.inf, np.empty(0)
    for _ in range(repeats):
        start = time.perf_counter()
        out = evaluate(inputs[0], inputs[1], inputs[2])
        best = min(best, time.perf_counter() - start)
    return inputs.shape[1] / best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000, help="items for replica and exact")
    parser.add_argument("--skfuzzy-items", type=int, default=1_000, help="items for scikit-fuzzy")
    parser.add_argument(
        "--points", type=int, default=1001, help="universe size for the discrete ones"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    inputs = np.random.default_rng(args.seed).random((3, args.items))
    small = inputs[:, : args.skfuzzy_items]
    points = args.points

    def skfuzzy(n: np.ndarray, r: np.ndarray, u: np.ndarray) -> np.ndarray:
        return serendipity_skfuzzy(n, r, u, points=points)

    def replica(n: np.ndarray, r: np.ndarray, u: np.ndarray) -> np.ndarray:
        return serendipity_replica(n, r, u, points=points)

    exact: Evaluator = serendipity_exact
    # Warm-up: imports, first-touch allocations.
    for evaluate in (skfuzzy, replica, exact):
        evaluate(small[0, :10], small[1, :10], small[2, :10])

    sk_rate, reference = best_rate(skfuzzy, small, repeats=1)
    rows = [("scikit-fuzzy arrays", f"{points}", small.shape[1], sk_rate, 0.0)]
    for name, universe, evaluate in (
        ("NumPy replica", f"{points}", replica),
        ("exact centroid", "none", exact),
    ):
        rate, _ = best_rate(evaluate, inputs, repeats=3)
        diff = float(np.abs(evaluate(small[0], small[1], small[2]) - reference).max())
        rows.append((name, universe, inputs.shape[1], rate, diff))

    table = Table(title="Serendipity FIS: items/s (best of 3; skfuzzy once); max |diff| vs skfuzzy")
    for column in ("method", "universe", "items", "items/s", "vs skfuzzy", "max |diff|"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, universe, items, rate, diff in rows:
        table.add_row(
            name, universe, f"{items:,}", f"{rate:,.0f}", f"{rate / sk_rate:,.1f}x", f"{diff:.1e}"
        )
    Console(width=100).print(table)


if __name__ == "__main__":
    main()
