"""Tests for models/fuzzy.py and models/fuzzy_skfuzzy.py (FORMULAS.md §10, §12)."""

from __future__ import annotations

import numpy as np
import pytest

import models.fuzzy as fuzzy_module
from models import fuzzy_skfuzzy
from models.fuzzy import (
    PAPER_RULES,
    TERM_NAMES,
    VARIABLES,
    RuleBase,
    build_control_system,
    default_rule_base,
    firing_strengths,
    serendipity_exact,
    serendipity_replica,
    serendipity_skfuzzy,
)

PEAK = (0.0, 0.5, 1.0)  # the b vertex of term 0, 1, 2 in the default partition
TERM_CENTROID = {"Low": 1 / 6, "Mid": 1 / 2, "High": 5 / 6}  # centroids of the bare triangles

# Consequents of rules 1..27, transcribed from the table in FORMULAS.md §10.
FORMULAS_TABLE = (
    ["Low"] * 9
    + ["Low", "Low", "Mid", "Low", "Mid", "Mid", "Mid", "Mid", "High"]
    + ["Low", "Mid", "Mid", "Mid", "Mid", "High", "Mid", "High", "High"]
)


def _cols(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return points[:, 0], points[:, 1], points[:, 2]


@pytest.fixture(scope="module")
def sample() -> np.ndarray:
    """300 inputs: uniform, plus term peaks and half-peaks that make cuts of exactly 0, .5, 1."""
    rng = np.random.default_rng(20240611)
    special = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], size=(60, 3))
    return np.vstack([special, rng.random((240, 3))])


@pytest.fixture(scope="module")
def oracle(sample: np.ndarray) -> dict[int, np.ndarray]:
    return {p: serendipity_skfuzzy(*_cols(sample), points=p) for p in (1001, 101)}


@pytest.fixture(scope="module")
def axis_grids() -> list[np.ndarray]:
    """z* on grids with step 0.01 along one axis and 0.05 across it, one grid per axis."""
    fine, coarse = np.linspace(0.0, 1.0, 101), np.linspace(0.0, 1.0, 21)
    grids = []
    for axis in range(3):
        axes = [coarse, coarse, coarse]
        axes[axis] = fine
        mesh = np.meshgrid(*axes, indexing="ij")
        grids.append(serendipity_exact(*(m.ravel() for m in mesh)).reshape(mesh[0].shape))
    return grids


@pytest.fixture(scope="module")
def paper_rule_points() -> tuple[np.ndarray, np.ndarray]:
    """The term peaks of each paper rule's antecedents, and skfuzzy's z* there."""
    rows = [default_rule_base().rule_table()[k - 1] for k in PAPER_RULES]
    peaks = np.array(
        [
            [
                PEAK[TERM_NAMES[var].index(name)]
                for var, name in zip(VARIABLES, row[1:4], strict=True)
            ]
            for row in rows
        ]
    )
    return peaks, serendipity_skfuzzy(*_cols(peaks))


# --- reference values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        ((0.0, 0.0, 0.0), 1 / 6),
        ((1.0, 0.5, 0.0), 0.5),
        ((0.5, 0.5, 0.5), 0.5),
        ((0.0, 1.0, 1.0), 0.5),
        ((1.0, 1.0, 1.0), 5 / 6),
        ((0.5, 1.0, 1.0), 5 / 6),
    ],
)
def test_reference_points_of_formulas(point: tuple[float, float, float], expected: float) -> None:
    args = [np.array([v]) for v in point]
    assert serendipity_exact(*args)[0] == pytest.approx(expected, abs=1e-9)
    assert serendipity_replica(*args)[0] == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        # Low and Mid both cut at 1/2: mu = 1/2 on [0, 3/4], then 2 - 2z.
        ((1.0, 0.25, 0.0), 37 / 84),
        # High alone cut at 1/2: mu = 2z - 1 on [1/2, 3/4], then 1/2.
        ((1.0, 0.75, 1.0), 29 / 36),
        # Low cut 3/4, Mid cut 1/4: the Low side meets Mid's level at z = 3/8.
        ((0.0, 1.0, 0.125), 65 / 184),
    ],
)
def test_hand_computed_overlapping_cuts(point: tuple[float, float, float], expected: float) -> None:
    args = [np.array([v]) for v in point]
    assert serendipity_exact(*args)[0] == pytest.approx(expected, abs=1e-12)


def test_uniform_inputs_match_the_published_shares() -> None:
    z = serendipity_exact(*np.random.default_rng(7).random((3, 100_000)))
    assert np.mean(z > 0.5) == pytest.approx(0.287, abs=0.005)
    assert np.mean(z > 0.6) == pytest.approx(0.050, abs=0.003)


# --- the rule base ------------------------------------------------------------------------


def test_rule_table_matches_formulas() -> None:
    table = default_rule_base().rule_table()
    assert [row[0] for row in table] == list(range(1, 28))
    assert [row[4] for row in table] == FORMULAS_TABLE
    nov, rel, une = (TERM_NAMES[v] for v in ("novelty", "relevance", "unexpectedness"))
    for k, n_name, r_name, u_name, _ in table:
        assert k == 1 + 9 * rel.index(r_name) + 3 * nov.index(n_name) + une.index(u_name)


def test_rule_counts_and_deprecate_gate() -> None:
    table = default_rule_base().rule_table()
    outputs = [row[4] for row in table]
    assert (outputs.count("Low"), outputs.count("Mid"), outputs.count("High")) == (13, 10, 4)
    assert all(row[4] == "Low" for row in table if row[2] == "Deprecate")
    # Low unexpectedness or a Popular item never reaches High.
    assert not any(row[4] == "High" for row in table if row[3] == "Low" or row[1] == "Popular")


def test_paper_rules_consequents() -> None:
    rows = {row[0]: row[1:] for row in default_rule_base().rule_table()}
    assert PAPER_RULES == (1, 7, 16, 24, 27)
    assert rows[1] == ("Popular", "Deprecate", "Low", "Low")
    assert rows[7] == ("Unseen", "Deprecate", "Low", "Low")
    assert rows[16] == ("Unseen", "Acceptable", "Low", "Mid")
    assert rows[24] == ("LessPopular", "Valuable", "High", "High")
    assert rows[27] == ("Unseen", "Valuable", "High", "High")


def test_rules_monotone_at_rule_level() -> None:
    rules = default_rule_base().rules
    for axis in range(3):
        assert np.all(np.diff(rules, axis=axis) >= 0)


def test_rule_outputs_follow_rule_numbers() -> None:
    rb = default_rule_base()
    names = TERM_NAMES["serendipity"]
    assert [names[j] for j in rb.rule_outputs] == FORMULAS_TABLE


@pytest.mark.parametrize("i", range(len(PAPER_RULES)))
def test_paper_rule_at_term_peaks(i: int, paper_rule_points: tuple[np.ndarray, np.ndarray]) -> None:
    rb, rule = default_rule_base(), PAPER_RULES[i]
    peaks, skfuzzy_z = paper_rule_points
    point = [peaks[i : i + 1, v] for v in range(3)]
    expected = np.zeros(27)
    expected[rule - 1] = 1.0
    np.testing.assert_array_equal(firing_strengths(*point, rb)[0], expected)
    centroid = TERM_CENTROID[rb.rule_table()[rule - 1][4]]
    assert serendipity_exact(*point, rule_base=rb)[0] == pytest.approx(centroid, abs=1e-12)
    assert serendipity_replica(*point, rule_base=rb)[0] == pytest.approx(centroid, abs=1e-12)
    assert skfuzzy_z[i] == pytest.approx(centroid, abs=1e-12)


def test_firing_strengths_are_min_of_memberships() -> None:
    # nov 0.25: Popular .5, LessPopular .5; rel 0.6: Acceptable .8, Valuable .2; une 1: High.
    fire = firing_strengths(
        np.array([0.25]), np.array([0.6]), np.array([1.0]), default_rule_base()
    )[0]
    expected = np.zeros(27)
    expected[[12 - 1, 15 - 1, 21 - 1, 24 - 1]] = [0.5, 0.5, 0.2, 0.2]
    np.testing.assert_allclose(fire, expected, atol=1e-15)


# --- agreement with scikit-fuzzy ----------------------------------------------------------


@pytest.mark.parametrize("points", [1001, 101])
def test_replica_matches_skfuzzy(
    sample: np.ndarray, oracle: dict[int, np.ndarray], points: int
) -> None:
    replica = serendipity_replica(*_cols(sample), points=points)
    np.testing.assert_allclose(replica, oracle[points], rtol=0, atol=1e-12)


@pytest.mark.parametrize(("points", "atol"), [(1001, 1e-6), (101, 1e-4)])
def test_exact_close_to_skfuzzy(
    sample: np.ndarray, oracle: dict[int, np.ndarray], points: int, atol: float
) -> None:
    exact = serendipity_exact(*_cols(sample))
    np.testing.assert_allclose(exact, oracle[points], rtol=0, atol=atol)
    # The discretisation error is real: a coarser universe is measurably worse.
    assert np.abs(exact - oracle[101]).max() > np.abs(exact - oracle[1001]).max()


def test_asymmetric_rule_base_off_grid(sample: np.ndarray) -> None:
    """Triangle vertices off the universe grid and uneven rules: the generic code paths."""
    inputs = [
        [[0, 0, 0.3], [0.1, 0.45, 0.9], [0.4, 1, 1]],
        [[0, 0, 0.7], [0.2, 0.3, 0.8], [0.6, 1, 1]],
        [[0, 0, 0.5], [0, 0.6, 1], [0.35, 1, 1]],
    ]
    outputs = [[0, 0, 0.4], [0.15, 0.55, 0.9], [0.45, 1, 1]]
    rb = RuleBase(np.random.default_rng(5).integers(0, 3, (3, 3, 3)), inputs, outputs)
    cols = _cols(sample)
    np.testing.assert_allclose(
        serendipity_replica(*cols, rule_base=rb, points=100),
        serendipity_skfuzzy(*cols, rule_base=rb, points=100),
        rtol=0,
        atol=1e-12,
    )
    head = _cols(sample[:100])
    np.testing.assert_allclose(
        serendipity_exact(*head, rule_base=rb),
        serendipity_skfuzzy(*head, rule_base=rb, points=1001),
        rtol=0,
        atol=1e-6,
    )


def test_control_system_is_built_from_the_rule_base() -> None:
    system = build_control_system(points=11)
    rules = list(system.rules)
    assert [r.label for r in rules] == [f"rule{k:02d}" for k in range(1, 28)]
    assert {a.label for a in system.antecedents} == {"novelty", "relevance", "unexpectedness"}
    (consequent,) = list(system.consequents)
    assert consequent.label == "serendipity"
    assert list(consequent.terms) == list(TERM_NAMES["serendipity"])
    np.testing.assert_allclose(
        consequent["Mid"].mf, [0, 0.2, 0.4, 0.6, 0.8, 1, 0.8, 0.6, 0.4, 0.2, 0]
    )


# --- shape of the output surface ----------------------------------------------------------


def test_monotone_within_tolerance_but_not_strictly(axis_grids: list[np.ndarray]) -> None:
    dips = [np.diff(grid, axis=axis).min() for axis, grid in enumerate(axis_grids)]
    assert min(dips) >= -5e-3
    # FORMULAS.md §10: min/max centroids dip by up to 0.0044 per 0.01 step along an axis.
    assert min(dips) < -3e-3


def test_output_range(axis_grids: list[np.ndarray]) -> None:
    z = serendipity_exact(*np.random.default_rng(3).random((3, 20_000)))
    for values in (z, *axis_grids):
        assert values.min() >= 1 / 6 - 1e-12
        assert values.max() <= 5 / 6 + 1e-12
    assert axis_grids[0].min() == pytest.approx(1 / 6, abs=1e-12)
    assert axis_grids[0].max() == pytest.approx(5 / 6, abs=1e-12)


def test_chunking_does_not_change_results(sample: np.ndarray) -> None:
    whole = serendipity_exact(*_cols(sample))
    np.testing.assert_array_equal(serendipity_exact(*_cols(sample), chunk=7), whole)


def test_empty_aggregate_returns_universe_centre() -> None:
    # Inputs below 0.5 belong to no term of this partition, so no rule fires.
    shifted = np.tile([0.5, 0.75, 1.0], (3, 3, 1))
    rb = RuleBase(default_rule_base().rules, shifted, default_rule_base().output_terms)
    nov, rel, une = np.array([0.0, 0.75]), np.array([0.2, 0.75]), np.array([0.3, 0.75])
    assert np.all(firing_strengths(nov, rel, une, rb)[0] == 0.0)
    for evaluate in (serendipity_exact, serendipity_replica):
        z = evaluate(nov, rel, une, rule_base=rb)
        assert z[0] == 0.5
        # All terms coincide at 0.75, so every rule fires fully and the aggregate is symmetric.
        assert z[1] == pytest.approx(0.5, abs=1e-12)


def test_empty_input() -> None:
    empty = np.empty(0)
    for evaluate in (serendipity_exact, serendipity_replica, serendipity_skfuzzy):
        assert evaluate(empty, empty, empty).shape == (0,)


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["nov", "rel", "une"])
def test_nan_input_names_the_argument(bad: str) -> None:
    args = {"nov": np.array([0.1, 0.2]), "rel": np.array([0.3, 0.4]), "une": np.array([0.5, 0.6])}
    args[bad] = np.array([0.5, np.nan])
    for evaluate in (serendipity_exact, serendipity_replica, serendipity_skfuzzy):
        with pytest.raises(ValueError, match=f"^{bad}: contains NaN"):
            evaluate(**args)
    with pytest.raises(ValueError, match=f"^{bad}:"):
        firing_strengths(**args, rule_base=default_rule_base())


def test_shape_errors() -> None:
    one = np.array([0.5])
    with pytest.raises(ValueError, match=r"^rel: expected a 1-D array"):
        serendipity_exact(one, np.ones((1, 1)), one)
    with pytest.raises(ValueError, match="lengths differ"):
        serendipity_exact(one, one, np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match=r"^chunk"):
        serendipity_exact(one, one, one, chunk=0)
    with pytest.raises(ValueError, match=r"^points"):
        serendipity_replica(one, one, one, points=1)


def test_out_of_range_inputs_are_clipped() -> None:
    wild = serendipity_exact(
        np.array([-3.0, 2.0]), np.array([np.inf, 1.5]), np.array([-np.inf, 9.0])
    )
    tame = serendipity_exact(np.array([0.0, 1.0]), np.array([1.0, 1.0]), np.array([0.0, 1.0]))
    np.testing.assert_array_equal(wild, tame)
    np.testing.assert_array_equal(
        serendipity_replica(np.array([-1.0]), np.array([2.0]), np.array([0.5])),
        serendipity_replica(np.array([0.0]), np.array([1.0]), np.array([0.5])),
    )


def test_rule_base_validation() -> None:
    rb = default_rule_base()
    with pytest.raises(ValueError, match=r"^rules"):
        RuleBase(np.full((3, 3, 3), 3), rb.input_terms, rb.output_terms)
    with pytest.raises(ValueError, match=r"^rules"):
        RuleBase(rb.rules[:2], rb.input_terms, rb.output_terms)
    with pytest.raises(ValueError, match=r"^input_terms"):
        RuleBase(rb.rules, rb.input_terms[:, :2], rb.output_terms)
    with pytest.raises(ValueError, match=r"^output_terms: each triangle"):
        RuleBase(rb.rules, rb.input_terms, [[0.5, 0.0, 1.0]] * 3)
    with pytest.raises(ValueError, match=r"^output_terms: a vertical side"):
        RuleBase(rb.rules, rb.input_terms, [[0.2, 0.2, 0.6]] * 3)
    with pytest.raises(ValueError, match=r"^input_terms: triangles must lie"):
        RuleBase(rb.rules, rb.input_terms + 0.5, rb.output_terms)


def test_rule_base_is_immutable() -> None:
    rb = default_rule_base()
    with pytest.raises(ValueError, match="read-only"):
        rb.rules[0, 0, 0] = 2
    with pytest.raises(ValueError, match="read-only"):
        rb.output_terms[0, 0] = 0.1


def test_oracle_names_are_reexported_lazily() -> None:
    assert fuzzy_module.serendipity_replica is fuzzy_skfuzzy.serendipity_replica
    with pytest.raises(AttributeError):
        _ = fuzzy_module.no_such_name
