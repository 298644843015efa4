"""The Mamdani serendipity fuzzy inference system (FORMULAS.md §10, performance notes §12).

Rules and membership functions are data (:class:`RuleBase`); the production evaluator
:func:`serendipity_exact` computes the exact centroid of the max-aggregated, clipped output
without any discretised universe. The scikit-fuzzy oracle and a NumPy replica of its
algorithm live in :mod:`models.fuzzy_skfuzzy` (re-exported lazily here, so importing this
module does not pull in scikit-fuzzy and networkx).

The structure (3 inputs with 3 triangular terms each, min/clip/max/centroid) is CONFIRMED by
the paper's text; the triangle parameters and 24 of the 27 rules are RECONSTRUCTED.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    from models.fuzzy_skfuzzy import (
        build_control_system,
        serendipity_replica,
        serendipity_skfuzzy,
    )

__all__ = [
    "OUTPUT_NAME",
    "PAPER_RULES",
    "TERM_NAMES",
    "VARIABLES",
    "RuleBase",
    "build_control_system",
    "default_rule_base",
    "firing_strengths",
    "serendipity_exact",
    "serendipity_replica",
    "serendipity_skfuzzy",
]

FloatArray = NDArray[np.float64]

VARIABLES: tuple[str, str, str] = ("novelty", "relevance", "unexpectedness")
OUTPUT_NAME = "serendipity"
TERM_NAMES: dict[str, tuple[str, str, str]] = {
    "novelty": ("Popular", "LessPopular", "Unseen"),
    "relevance": ("Deprecate", "Acceptable", "Valuable"),
    "unexpectedness": ("Low", "Mid", "High"),
    "serendipity": ("Low", "Mid", "High"),
}
PAPER_RULES: tuple[int, ...] = (1, 7, 16, 24, 27)

# The universe of every variable; an empty aggregate's centroid is defined as its centre.
OUTPUT_RANGE: tuple[float, float] = (0.0, 1.0)
_DEFAULT_TRIANGLES = ((0.0, 0.0, 0.5), (0.0, 0.5, 1.0), (0.5, 1.0, 1.0))


def _check_triangles(name: str, tri: FloatArray) -> None:
    a, b, c = tri[..., 0], tri[..., 1], tri[..., 2]
    if not np.all(np.isfinite(tri)):
        raise ValueError(f"{name}: triangle parameters must be finite")
    if np.any(a > b) or np.any(b > c) or np.any(a >= c):
        raise ValueError(f"{name}: each triangle needs a <= b <= c and a < c")
    lo, hi = OUTPUT_RANGE
    if np.any(a < lo) or np.any(c > hi):
        raise ValueError(f"{name}: triangles must lie within [{lo}, {hi}]")
    # A vertical side inside the universe makes the aggregate discontinuous and cannot be
    # represented by scikit-fuzzy's sampled membership functions; allow it only at a border.
    if np.any((a == b) & (a != lo)) or np.any((b == c) & (c != hi)):
        raise ValueError(f"{name}: a vertical side (a == b or b == c) is only allowed at 0 or 1")


@dataclass(frozen=True, eq=False)
class RuleBase:
    """Rules and membership functions as data (FORMULAS.md §10).

    Attributes:
        rules: (3, 3, 3) int in {0, 1, 2}; ``rules[n, r, u]`` is the output term index of the
            rule whose novelty, relevance and unexpectedness terms are n, r, u.
        input_terms: (3 variables, 3 terms, 3) triangles (a, b, c); variables ordered
            novelty, relevance, unexpectedness.
        output_terms: (3, 3) triangles (a, b, c) of the output Serendipity on [0, 1].

    The arrays are copied and made read-only on construction.
    """

    rules: np.ndarray
    input_terms: np.ndarray
    output_terms: np.ndarray

    def __post_init__(self) -> None:
        rules = np.array(self.rules)
        if rules.shape != (3, 3, 3) or not np.issubdtype(rules.dtype, np.integer):
            raise ValueError(
                f"rules: expected an integer (3, 3, 3) array, got {rules.dtype} {rules.shape}"
            )
        if np.any((rules < 0) | (rules > 2)):
            raise ValueError("rules: output term indices must be in {0, 1, 2}")
        input_terms = np.array(self.input_terms, dtype=np.float64)
        if input_terms.shape != (3, 3, 3):
            raise ValueError(f"input_terms: expected shape (3, 3, 3), got {input_terms.shape}")
        output_terms = np.array(self.output_terms, dtype=np.float64)
        if output_terms.shape != (3, 3):
            raise ValueError(f"output_terms: expected shape (3, 3), got {output_terms.shape}")
        _check_triangles("input_terms", input_terms)
        _check_triangles("output_terms", output_terms)
        for name, arr in (
            ("rules", rules.astype(np.int64)),
            ("input_terms", input_terms),
            ("output_terms", output_terms),
        ):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def rule_outputs(self) -> np.ndarray:
        """(27,) output term per rule, in rule-number order (rule k at index k - 1)."""
        # The table is ordered by relevance, then novelty, then unexpectedness.
        return self.rules.transpose(1, 0, 2).reshape(27)

    def rule_table(self) -> list[tuple[int, str, str, str, str]]:
        """The rules as (number 1..27, novelty, relevance, unexpectedness, serendipity) names.

        Numbered as in FORMULAS.md §10: rule k = 1 + 9 r + 3 n + u.
        """
        names = TERM_NAMES
        table = []
        for r, n, u in itertools.product(range(3), repeat=3):  # rule-number order
            out = names["serendipity"][int(self.rules[n, r, u])]
            table.append(
                (
                    1 + 9 * r + 3 * n + u,
                    names["novelty"][n],
                    names["relevance"][r],
                    names["unexpectedness"][u],
                    out,
                )
            )
        return table


def default_rule_base() -> RuleBase:
    """The 27-rule base of FORMULAS.md §10 (RECONSTRUCTED; contains the 5 paper rules).

    Relevance Deprecate gates the output to Low; otherwise s = n + u + (r - 1) maps
    s <= 1 -> Low, 2..3 -> Mid, >= 4 -> High. Every variable uses the triangles
    (0, 0, .5), (0, .5, 1), (.5, 1, 1).
    """
    n, r, u = np.indices((3, 3, 3))
    s = n + u + (r - 1)
    rules = np.where(r == 0, 0, np.where(s <= 1, 0, np.where(s <= 3, 1, 2)))
    tri = np.array(_DEFAULT_TRIANGLES)
    return RuleBase(rules=rules, input_terms=np.stack([tri, tri, tri]), output_terms=tri.copy())


def validate_inputs(
    nov: ArrayLike, rel: ArrayLike, une: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Checks the three fuzzy inputs and clips them to [0, 1] (FORMULAS.md: inputs on [0, 1]).

    Raises:
        ValueError: naming the argument, if it is not 1-D, contains NaN, or if the three
            lengths differ. Infinities are clipped like any other out-of-range value.
    """
    out = []
    for name, value in (("nov", nov), ("rel", rel), ("une", une)):
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim != 1:
            raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
        if np.isnan(arr).any():
            raise ValueError(f"{name}: contains NaN")
        out.append(np.clip(arr, *OUTPUT_RANGE))
    if not len(out[0]) == len(out[1]) == len(out[2]):
        raise ValueError(
            f"nov, rel, une: lengths differ ({len(out[0])}, {len(out[1])}, {len(out[2])})"
        )
    return out[0], out[1], out[2]


def triangle_membership(x: FloatArray, tri: FloatArray) -> FloatArray:
    """Exact triangular membership (trimf, FORMULAS.md §10) of ``x`` (any shape) in (a, b, c).

    A vertical side (a == b or b == c) contributes no constraint, so x == b gives 1.
    """
    a, b, c = (float(v) for v in tri)
    mu = np.ones_like(x)
    if b > a:
        np.minimum(mu, (x - a) / (b - a), out=mu)
    if c > b:
        np.minimum(mu, (c - x) / (c - b), out=mu)
    return np.maximum(mu, 0.0, out=mu)


def firing_strengths(
    nov: ArrayLike, rel: ArrayLike, une: ArrayLike, rule_base: RuleBase
) -> FloatArray:
    """Firing strength of every rule: AND = min of the three memberships (FORMULAS.md §10).

    Args:
        nov, rel, une: (n,) inputs in [0, 1] (clipped; NaN raises ValueError).
        rule_base: the rules and triangles.

    Returns:
        (n, 27) firing strengths, column k - 1 for rule number k.
    """
    x = validate_inputs(nov, rel, une)
    return rule_firing(*(term_memberships(x[v], rule_base.input_terms[v]) for v in range(3)))


def term_memberships(x: FloatArray, terms: FloatArray) -> FloatArray:
    """(n, 3) memberships of (n,) crisp values in a variable's 3 triangles (FORMULAS.md §10)."""
    return np.stack([triangle_membership(x, tri) for tri in terms], axis=1)


def rule_firing(nov_mu: FloatArray, rel_mu: FloatArray, une_mu: FloatArray) -> FloatArray:
    """(n, 27) rule firing, AND = min of (n, 3) term memberships (FORMULAS.md §10).

    Columns are in rule-number order: rule k = 1 + 9 r + 3 n + u at column k - 1.
    """
    # Axes (n, r, nov, une) so that the flattening matches the rule numbering.
    fire = np.minimum(
        np.minimum(rel_mu[:, :, None, None], nov_mu[:, None, :, None]),
        une_mu[:, None, None, :],
    )
    return fire.reshape(nov_mu.shape[0], 27)


def output_cuts(fire: FloatArray, rule_base: RuleBase) -> FloatArray:
    """(n, 3) clip level of each output term: max over its rules' firing (FORMULAS.md §10).

    Implication by clipping and aggregation by max commute, so one level per term suffices.
    """
    outputs = rule_base.rule_outputs
    cuts = np.zeros((fire.shape[0], 3))
    for j in range(3):
        cols = outputs == j
        if cols.any():
            cuts[:, j] = fire[:, cols].max(axis=1)
    return cuts


def _edges(output_terms: FloatArray) -> list[tuple[float, float, bool]]:
    """Non-vertical sides of the output triangles as (z0, z1, rising)."""
    edges = []
    for a, b, c in output_terms:
        if b > a:
            edges.append((float(a), float(b), True))
        if c > b:
            edges.append((float(b), float(c), False))
    return edges


def _fixed_breakpoints(output_terms: FloatArray) -> FloatArray:
    """Breakpoints that do not depend on the inputs: universe ends, vertices, edge crossings."""
    lo, hi = OUTPUT_RANGE
    points = [lo, hi, *output_terms.ravel().tolist()]
    edges = _edges(output_terms)
    for i, (p0, p1, pr) in enumerate(edges):
        for q0, q1, qr in edges[i + 1 :]:
            # Each side is y = alpha + beta z on its interval.
            b1 = (1.0 if pr else -1.0) / (p1 - p0)
            a1 = -p0 * b1 if pr else p1 / (p1 - p0)
            b2 = (1.0 if qr else -1.0) / (q1 - q0)
            a2 = -q0 * b2 if qr else q1 / (q1 - q0)
            if b1 == b2:
                continue
            z = (a2 - a1) / (b1 - b2)
            if max(p0, q0) <= z <= min(p1, q1):
                points.append(z)
    return np.unique(np.clip(points, lo, hi))


def _exact_centroid(cuts: FloatArray, rule_base: RuleBase, fixed: FloatArray) -> FloatArray:
    """Exact centroid of max_j min(cut_j, T_j(z)) for (n, 3) cuts; see serendipity_exact."""
    n = cuts.shape[0]
    moving = []
    for z0, z1, rising in _edges(rule_base.output_terms):
        # Where this side crosses every clip level: kinks of min(.) and of max(.).
        width = z1 - z0
        moving.append(z0 + cuts * width if rising else z1 - cuts * width)
    pts = np.concatenate([np.broadcast_to(fixed, (n, fixed.size)), *moving], axis=1)
    pts.sort(axis=1)  # (n, K)
    mu = np.zeros_like(pts)
    for j in range(3):
        np.maximum(
            mu,
            np.minimum(cuts[:, j : j + 1], triangle_membership(pts, rule_base.output_terms[j])),
            out=mu,
        )
    z1, z2 = pts[:, :-1], pts[:, 1:]
    y1, y2 = mu[:, :-1], mu[:, 1:]
    dz = z2 - z1
    # mu is linear between consecutive breakpoints, so both integrals are exact.
    area = (dz * (y1 + y2)).sum(axis=1) / 2.0
    moment = (dz * (z1 * (2.0 * y1 + y2) + z2 * (y1 + 2.0 * y2))).sum(axis=1) / 6.0
    empty = area <= 0.0
    centre = 0.5 * (OUTPUT_RANGE[0] + OUTPUT_RANGE[1])
    return np.where(empty, centre, moment / np.where(empty, 1.0, area))


def serendipity_exact(
    nov: ArrayLike,
    rel: ArrayLike,
    une: ArrayLike,
    rule_base: RuleBase | None = None,
    chunk: int = 16384,
) -> FloatArray:
    """Crisp serendipity z* = ∫ z μ(z) dz / ∫ μ(z) dz, computed exactly (FORMULAS.md §10, §12).

    Mamdani inference with AND = min, clip implication, max aggregation and centroid
    defuzzification. The aggregate μ is piecewise linear; its breakpoints are the triangle
    vertices, the side-side crossings, and every side's crossing with every clip level
    (17 per item for the default partition). Between consecutive breakpoints μ is linear, so
    ∫ μ (trapezoid) and ∫ z μ = Δz (z1 (2 y1 + y2) + z2 (y1 + 2 y2)) / 6 are exact.
    Parameters and rules are RECONSTRUCTED (see :func:`default_rule_base`).

    If no rule fires at all (impossible with the default partition, whose memberships sum
    to 1), the aggregate is empty and the centroid is undefined; this function then returns
    the centre of the output universe, 0.5.

    Args:
        nov, rel, une: (n,) inputs; clipped to [0, 1]; NaN raises ValueError.
        rule_base: defaults to :func:`default_rule_base`.
        chunk: items per vectorised block (8-16k fit in cache best).

    Returns:
        (n,) crisp serendipity in [1/6, 5/6] for the default rule base.
    """
    if chunk < 1:
        raise ValueError(f"chunk: must be positive, got {chunk}")
    rb = default_rule_base() if rule_base is None else rule_base
    x = validate_inputs(nov, rel, une)
    fixed = _fixed_breakpoints(rb.output_terms)
    out = np.empty(len(x[0]))
    for start in range(0, len(out), chunk):
        part = slice(start, start + chunk)
        fire = rule_firing(*(term_memberships(x[v][part], rb.input_terms[v]) for v in range(3)))
        out[part] = _exact_centroid(output_cuts(fire, rb), rb, fixed)
    return out


def __getattr__(name: str) -> Any:
    # The oracle pulls in scikit-fuzzy and networkx; load it only when asked for.
    if name in ("build_control_system", "serendipity_replica", "serendipity_skfuzzy"):
        from models import fuzzy_skfuzzy

        return getattr(fuzzy_skfuzzy, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
