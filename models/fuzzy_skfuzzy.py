"""scikit-fuzzy oracle for the serendipity FIS, and a vectorised NumPy replica of it.

Both are built from the same :class:`~models.fuzzy.RuleBase` as the exact evaluator
(FORMULAS.md §10, §12). They exist to test :func:`models.fuzzy.serendipity_exact`: the
replica reproduces scikit-fuzzy 0.5.0's discrete algorithm to 1e-12 at ~20x its speed,
and scikit-fuzzy itself is the independent reference.

scikit-fuzzy's algorithm on a universe of P points (``ControlSystemSimulation`` with array
inputs, ``CrispValueCalculator.find_memberships_nd`` and ``defuzz.centroid``):

1. input membership = ``np.interp`` of the sampled ``trimf`` (zero outside the universe);
2. rule firing = ``fmin`` of the three memberships; term cut = ``fmax`` over its rules;
3. for every term used by some rule, the points where its sampled mf crosses its cut
   (``_interp_universe_fast``) are merged into the universe (``np.union1d``);
4. aggregate = max over terms of min(cut, ``np.interp`` of the sampled mf) at those points;
5. centroid of the piecewise-linear curve through them (exact per segment).

The replica evaluates step 5 as a fixed linear functional of the aggregate on the P grid
points (one matrix product) plus a correction for the few grid segments that step 3 splits.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import skfuzzy as fuzz
from numpy.typing import ArrayLike
from skfuzzy import control as ctrl

from models.fuzzy import (
    OUTPUT_NAME,
    OUTPUT_RANGE,
    TERM_NAMES,
    VARIABLES,
    FloatArray,
    RuleBase,
    default_rule_base,
    output_cuts,
    rule_firing,
    validate_inputs,
)

__all__ = ["build_control_system", "serendipity_replica", "serendipity_skfuzzy"]

_REPLICA_BLOCK = 1 << 19  # grid values per block: 4 MiB of float64 stays in cache


def _universe(points: int) -> FloatArray:
    if points < 2:
        raise ValueError(f"points: need at least 2 universe points, got {points}")
    lo, hi = OUTPUT_RANGE
    return np.linspace(lo, hi, points)


def sampled_trimf(x: FloatArray, tri: FloatArray) -> FloatArray:
    """scikit-fuzzy's ``trimf`` (FORMULAS.md §10 triangles), operation for operation."""
    a, b, c = (float(v) for v in tri)
    y = np.zeros(len(x))
    if a != b:
        idx = np.nonzero((a < x) & (x < b))[0]
        y[idx] = (x[idx] - a) / float(b - a)
    if b != c:
        idx = np.nonzero((b < x) & (x < c))[0]
        y[idx] = (c - x[idx]) / float(c - b)
    y[np.nonzero(x == b)] = 1.0
    return y


def _moment_area_weights(x: FloatArray) -> FloatArray:
    """(2, P) weights w such that w @ mu = (∫ z mu, ∫ mu) for mu linear between grid points."""
    dx = np.diff(x)
    w = np.zeros((2, len(x)))
    # Segment [x_k, x_k+1]: ∫ z mu = x_k dx (y_k + y_k+1) / 2 + dx^2 (y_k + 2 y_k+1) / 6.
    w[0, :-1] += x[:-1] * dx / 2.0 + dx * dx / 6.0
    w[0, 1:] += x[:-1] * dx / 2.0 + dx * dx / 3.0
    w[1, :-1] += dx / 2.0
    w[1, 1:] += dx / 2.0
    return w


@dataclass(frozen=True)
class _Replica:
    """Everything about one (rule base, universe) pair that does not depend on the inputs."""

    rule_base: RuleBase
    x: FloatArray  # (P,) universe, shared by inputs and output
    input_mf: FloatArray  # (3 variables, 3 terms, P)
    output_mf: FloatArray  # (3, P)
    used: tuple[int, ...]  # output terms that some rule concludes (others are never cut)
    peaks: tuple[int, ...]  # argmax of each output mf: it rises before, falls after
    weights: FloatArray  # (2, P)

    @classmethod
    def build(cls, rule_base: RuleBase, points: int) -> _Replica:
        x = _universe(points)
        input_mf = np.array(
            [[sampled_trimf(x, tri) for tri in var] for var in rule_base.input_terms]
        )
        output_mf = np.array([sampled_trimf(x, tri) for tri in rule_base.output_terms])
        used = tuple(int(j) for j in np.unique(rule_base.rules))
        return cls(
            rule_base=rule_base,
            x=x,
            input_mf=input_mf,
            output_mf=output_mf,
            used=used,
            peaks=tuple(int(np.argmax(mf)) for mf in output_mf),
            weights=_moment_area_weights(x),
        )

    def cuts(self, nov: FloatArray, rel: FloatArray, une: FloatArray) -> FloatArray:
        """(n, 3) term cuts from steps 1-2."""
        mu = [
            np.stack(
                [np.interp(v, self.x, mf, left=0.0, right=0.0) for mf in self.input_mf[i]], axis=1
            )
            for i, v in enumerate((nov, rel, une))
        ]
        return output_cuts(rule_firing(*mu), self.rule_base)

    def aggregate(self, z: FloatArray, cuts: FloatArray) -> FloatArray:
        """Step 4 at points z of shape (n, m)."""
        mu = np.zeros_like(z)
        for j in self.used:
            term = np.interp(z, self.x, self.output_mf[j], left=0.0, right=0.0)
            np.maximum(mu, np.minimum(cuts[:, j : j + 1], term), out=mu)
        return mu

    def crossings(self, cuts: FloatArray) -> tuple[FloatArray, np.ndarray]:
        """Step 3: (n, 2 per used term) crossing points and a mask of those that exist.

        The sampled triangle is unimodal, so {mf >= y} (or {mf > 0} when y == 0, as in
        ``_interp_universe_fast``) is one run of indices [lo, hi]; its two ends are found by
        binary search in the rising and the reversed falling half.
        """
        x, last = self.x, len(self.x) - 1
        points, exists = [], []
        for j in self.used:
            mf, p, y = self.output_mf[j], self.peaks[j], cuts[:, j]
            rise, fall_rev = mf[: p + 1], mf[p:][::-1]
            zero = y == 0.0
            lo = np.where(
                zero, np.searchsorted(rise, 0.0, "right"), np.searchsorted(rise, y, "left")
            )
            n_fall = len(fall_rev) - np.where(
                zero, np.searchsorted(fall_rev, 0.0, "right"), np.searchsorted(fall_rev, y, "left")
            )
            hi = p + n_fall - 1
            nonempty = lo <= p
            for idx, ok in ((lo - 1, nonempty & (lo >= 1)), (hi, nonempty & (hi <= last - 1))):
                i = np.clip(idx, 0, last - 1)
                points.append(
                    x[i] + (y - mf[i]) * (x[i + 1] - x[i]) / np.where(ok, mf[i + 1] - mf[i], 1.0)
                )
                exists.append(ok)
        return np.stack(points, axis=1), np.stack(exists, axis=1)

    def split_correction(self, cuts: FloatArray, mu_grid: FloatArray) -> FloatArray:
        """(n, 2) change in (∫ z mu, ∫ mu) from the crossing points that split grid segments."""
        x, n = self.x, cuts.shape[0]
        pts, exists = self.crossings(cuts)
        host = np.searchsorted(x, pts, "right") - 1
        # Points on a grid node vanish in np.union1d; points a rounding error outside the
        # universe add an area of order 1e-16, which the replica leaves out.
        inside = exists & (host >= 0) & (host <= len(x) - 2)
        inside &= pts > x[np.clip(host, 0, len(x) - 1)]
        pts = np.sort(np.where(inside, pts, np.inf), axis=1)
        inside = np.isfinite(pts)
        host = np.clip(np.searchsorted(x, pts, "right") - 1, 0, len(x) - 2)
        pts = np.where(inside, pts, x[0])
        lo = np.where(inside, x[host], x[0])
        hi = np.where(inside, x[host + 1], x[0])
        # Sub-segments of split host segments are exactly the pairs of neighbours, in the
        # merged list of crossings and host ends, that include at least one crossing.
        merged = np.concatenate([pts, lo, hi], axis=1)
        flag = np.concatenate([inside, np.zeros_like(inside), np.zeros_like(inside)], axis=1)
        order = np.argsort(merged, axis=1, kind="stable")
        z = np.take_along_axis(merged, order, axis=1)
        flag = np.take_along_axis(flag, order, axis=1)
        y = self.aggregate(z, cuts)
        pair = flag[:, :-1] | flag[:, 1:]
        added = _segments(z[:, :-1], z[:, 1:], y[:, :-1], y[:, 1:], pair)
        # Each split host segment counted in the grid sum is removed once.
        first = inside.copy()
        first[:, 1:] &= host[:, 1:] != host[:, :-1]
        rows = np.arange(n)[:, None]
        removed = _segments(lo, hi, mu_grid[rows, host], mu_grid[rows, host + 1], first)
        return added - removed

    def centroid(self, cuts: FloatArray) -> FloatArray:
        """Step 5 for (n, 3) cuts; the centre of the universe where the aggregate is empty."""
        mu_grid = np.zeros((cuts.shape[0], len(self.x)))  # (n, P)
        for j in self.used:
            np.maximum(mu_grid, np.minimum(cuts[:, j : j + 1], self.output_mf[j]), out=mu_grid)
        # einsum, not a BLAS product: BLAS threads oversubscribe a small shared machine.
        grid = np.stack([np.einsum("ip,p->i", mu_grid, w) for w in self.weights], axis=1)
        moment_area = grid + self.split_correction(cuts, mu_grid)
        area = moment_area[:, 1]
        empty = area <= 0.0
        centre = 0.5 * (OUTPUT_RANGE[0] + OUTPUT_RANGE[1])
        return np.where(empty, centre, moment_area[:, 0] / np.where(empty, 1.0, area))


def _segments(
    z1: FloatArray, z2: FloatArray, y1: FloatArray, y2: FloatArray, keep: np.ndarray
) -> FloatArray:
    """(n, 2) sums of (∫ z mu, ∫ mu) over the kept linear segments, row by row."""
    dz = np.where(keep, z2 - z1, 0.0)
    moment = (dz * (z1 * (2.0 * y1 + y2) + z2 * (y1 + 2.0 * y2))).sum(axis=1) / 6.0
    area = (dz * (y1 + y2)).sum(axis=1) / 2.0
    return np.stack([moment, area], axis=1)


def serendipity_replica(
    nov: ArrayLike,
    rel: ArrayLike,
    une: ArrayLike,
    rule_base: RuleBase | None = None,
    points: int = 1001,
) -> FloatArray:
    """scikit-fuzzy's Mamdani centroid on a P-point universe, vectorised (FORMULAS.md §10, §12).

    Same discretisation (``np.linspace(0, 1, points)`` for inputs and output), same
    ``np.interp`` memberships, clip, max and segment-exact centroid as
    :func:`serendipity_skfuzzy`; agrees with it to ~1e-15. Rules and parameters are
    RECONSTRUCTED. Where no rule fires (scikit-fuzzy raises), returns the centre 0.5.

    Args:
        nov, rel, une: (n,) inputs; clipped to [0, 1]; NaN raises ValueError.
        rule_base: defaults to :func:`~models.fuzzy.default_rule_base`.
        points: universe size; odd sizes put the default triangle vertices on the grid.

    Returns:
        (n,) crisp serendipity.
    """
    rb = default_rule_base() if rule_base is None else rule_base
    x = validate_inputs(nov, rel, une)
    replica = _Replica.build(rb, points)
    out = np.empty(len(x[0]))
    block = max(1, _REPLICA_BLOCK // points)
    for start in range(0, len(out), block):
        part = slice(start, start + block)
        out[part] = replica.centroid(replica.cuts(x[0][part], x[1][part], x[2][part]))
    return out


def build_control_system(
    rule_base: RuleBase | None = None, points: int = 1001
) -> ctrl.ControlSystem:
    """The scikit-fuzzy ``ControlSystem`` built from the rule base (FORMULAS.md §10).

    Antecedents novelty, relevance, unexpectedness and Consequent serendipity share the
    universe ``np.linspace(0, 1, points)``; terms are ``trimf`` of the rule base's triangles
    named by ``TERM_NAMES``; AND = min (``fmin``), accumulation = max, centroid defuzzifier.
    The 27 rules are added in rule-number order, labelled ``rule01`` .. ``rule27``.

    Returns:
        the control system, ready for ``ControlSystemSimulation``.
    """
    rb = default_rule_base() if rule_base is None else rule_base
    x = _universe(points)
    antecedents = {name: ctrl.Antecedent(x, name) for name in VARIABLES}
    for v, name in enumerate(VARIABLES):
        for t, term in enumerate(TERM_NAMES[name]):
            antecedents[name][term] = fuzz.trimf(x, rb.input_terms[v, t])
    consequent = ctrl.Consequent(x, OUTPUT_NAME, defuzzify_method="centroid")
    for t, term in enumerate(TERM_NAMES[OUTPUT_NAME]):
        consequent[term] = fuzz.trimf(x, rb.output_terms[t])
    rules = [
        ctrl.Rule(
            antecedents["novelty"][nov]
            & antecedents["relevance"][rel]
            & antecedents["unexpectedness"][une],
            consequent[out],
            label=f"rule{k:02d}",
            and_func=np.fmin,
        )
        for k, nov, rel, une, out in rb.rule_table()
    ]
    return ctrl.ControlSystem(rules)


def serendipity_skfuzzy(
    nov: ArrayLike,
    rel: ArrayLike,
    une: ArrayLike,
    rule_base: RuleBase | None = None,
    points: int = 1001,
) -> FloatArray:
    """Serendipity from scikit-fuzzy's ``ControlSystemSimulation`` with array inputs.

    Test oracle only (about 5k items/s; FORMULAS.md §12). Builds the system with
    :func:`build_control_system`; scikit-fuzzy raises where no rule fires.

    Args:
        nov, rel, une: (n,) inputs; clipped to [0, 1]; NaN raises ValueError.
        rule_base: defaults to :func:`~models.fuzzy.default_rule_base`.
        points: universe size.

    Returns:
        (n,) crisp serendipity.
    """
    x = validate_inputs(nov, rel, une)
    if len(x[0]) == 0:
        return np.empty(0)
    sim = ctrl.ControlSystemSimulation(build_control_system(rule_base, points))
    for name, values in zip(VARIABLES, x, strict=True):
        sim.input[name] = values
    with warnings.catch_warnings():
        # scikit-fuzzy 0.5.0 calls np.maximum(a, b, out) positionally, once per item.
        warnings.filterwarnings("ignore", "Passing more than 2 positional", DeprecationWarning)
        sim.compute()
    return np.asarray(sim.output[OUTPUT_NAME], dtype=np.float64)
