"""What every rating loader returns, and the error a person sees when a file is wrong.

A loader reads a real data set (MovieLens, Ciao, a researcher's CSV) into a
``RatingsDataset``: original ids, one domain per item, the rating scale, an optional trust
network and a ``LoadReport`` that says what was dropped or changed and why. The world builder
(``environment/realworld.py``) turns it into dense arrays with ``to_dense_ids()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# Reasons a rating row is dropped (keys of LoadReport.dropped); phrased to follow a count.
MISSING = "rows with a missing user, item, rating or domain"
OUT_OF_RANGE = "ratings outside the rating scale"
DUPLICATE = "duplicate (user, item) rows (the latest one kept)"
OTHER_DOMAIN = "rows outside the chosen domains"
OVERLAP = "rows of items in both domains (drop_overlap)"
FEW_RATINGS = "rows of users with fewer than min_ratings ratings"
MAX_USERS = "rows of users beyond max_users, the most active kept"
# Changes made to kept rows (keys of LoadReport.changed).
ROUNDED = "ratings rounded to the rating step"
REASSIGNED = "items found under several domains, each put in the domain of most of its ratings"
# Reasons a trust edge is dropped (keys of LoadReport.trust_dropped).
TRUST_MISSING = "edges with a missing truster or trustee"
TRUST_SELF = "self-trust edges"
TRUST_UNKNOWN = "edges touching a user without kept ratings"
TRUST_DUPLICATE = "duplicate edges (the last one kept)"
TRUST_NONPOSITIVE = "edges with a trust value of 0 or less"

RATING_COLUMNS = ["user", "item", "rating", "timestamp", "domain"]


class DataError(Exception):
    """A problem with a data file that its user can fix.

    ``str()`` is one line: the file, the row (1-based, as a person counts the lines of the
    file, a header line included) or the column, and what was expected.
    """

    def __init__(
        self, source: str, problem: str, *, row: int | None = None, column: str | None = None
    ) -> None:
        where = source
        if row is not None:
            where += f", row {row}"
        elif column is not None:
            where += f", column {column!r}"
        super().__init__(" ".join(f"{where}: {problem}".split()))
        self.source = source
        self.row = row
        self.column = column


def _plural(n: int) -> str:
    return f"{n:,}"


@dataclass
class LoadReport:
    """What a loader read, kept, dropped and changed, counted by reason."""

    source: str
    rows_read: int = 0
    rows_kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)  # reason -> "first at row 12: ..."
    trust_read: int = 0
    trust_kept: int = 0
    trust_dropped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def drop(self, reason: str, count: int, example: str | None = None) -> None:
        """Count ``count`` rating rows dropped for ``reason`` (zero counts are not recorded)."""
        if count > 0:
            self.dropped[reason] = self.dropped.get(reason, 0) + int(count)
            if example and reason not in self.examples:
                self.examples[reason] = example

    def change(self, reason: str, count: int, example: str | None = None) -> None:
        """Count ``count`` kept rows (or items) modified for ``reason``."""
        if count > 0:
            self.changed[reason] = self.changed.get(reason, 0) + int(count)
            if example and reason not in self.examples:
                self.examples[reason] = example

    def drop_trust(self, reason: str, count: int) -> None:
        """Count ``count`` trust edges dropped for ``reason``."""
        if count > 0:
            self.trust_dropped[reason] = self.trust_dropped.get(reason, 0) + int(count)

    def lines(self) -> list[str]:
        """Human sentences, one per fact, in the order a reader needs them."""
        share = self.rows_kept / self.rows_read if self.rows_read else 0.0
        out = [
            f"{self.source}: read {_plural(self.rows_read)} rating rows, "
            f"kept {_plural(self.rows_kept)} ({share:.1%}) in {self.seconds:.2f} s."
        ]
        for reason, n in self.dropped.items():
            ex = f" ({self.examples[reason]})" if reason in self.examples else ""
            out.append(f"Dropped {_plural(n)} {reason}{ex}.")
        for reason, n in self.changed.items():
            ex = f" ({self.examples[reason]})" if reason in self.examples else ""
            out.append(f"Changed {_plural(n)} {reason}{ex}.")
        if self.trust_read:
            out.append(
                f"Trust network: read {_plural(self.trust_read)} edges, "
                f"kept {_plural(self.trust_kept)}."
            )
            out.extend(f"Dropped {_plural(n)} trust {r}." for r, n in self.trust_dropped.items())
        out.extend(self.notes)
        return out


@dataclass
class DenseRatings:
    """A data set on dense ids: users ``0..U-1`` and items ``0..I-1`` over all domains.

    ``user_ids[u]`` and ``item_ids[i]`` give back the original ids. Shapes: R ratings,
    E trust edges.
    """

    name: str
    users: np.ndarray  # (R,) int64
    items: np.ndarray  # (R,) int64
    ratings: np.ndarray  # (R,) float64
    timestamps: np.ndarray  # (R,) float64 seconds, NaN when unknown
    user_ids: np.ndarray  # (U,) original ids
    item_ids: np.ndarray  # (I,) original ids
    item_domain: np.ndarray  # (I,) int64 index into domain_names
    item_labels: list[str]
    domain_names: list[str]
    target_domain: int
    scale: tuple[float, float]
    rating_step: float
    trust_edges: np.ndarray | None = None  # (E, 2) int64 truster, trustee
    trust_values: np.ndarray | None = None  # (E,) float64

    @property
    def n_users(self) -> int:
        return int(self.user_ids.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.item_ids.shape[0])

    @property
    def n_domains(self) -> int:
        return len(self.domain_names)


@dataclass
class RatingsDataset:
    """Ratings on original ids, with their domains, scale, trust network and load report.

    ``ratings`` has the columns ``user, item, rating, timestamp, domain``: ``timestamp`` is
    float seconds (NaN when the source has none), ``domain`` one of ``domain_names``, whose
    order fixes the domain indices. Every item lies in exactly one domain. ``trust`` has the
    columns ``truster, trustee, value`` (or is None), restricted to users with ratings.
    """

    name: str
    ratings: pd.DataFrame
    domain_names: list[str]
    target_domain: str
    item_labels: dict[object, str]
    scale: tuple[float, float]
    rating_step: float
    trust: pd.DataFrame | None
    report: LoadReport

    @property
    def single_domain(self) -> bool:
        """True when the world has no source domain (no cross-domain transfer possible)."""
        return len(self.domain_names) == 1

    def to_dense_ids(self) -> DenseRatings:
        """Map original ids to dense ``0..U-1`` / ``0..I-1`` (sorted by original id)."""
        df = self.ratings
        u_codes, user_ids = pd.factorize(df["user"], sort=True)
        i_codes, item_ids = pd.factorize(df["item"], sort=True)
        dom_index = {name: k for k, name in enumerate(self.domain_names)}
        row_domain = df["domain"].map(dom_index).to_numpy(dtype=np.int64)
        item_domain = np.zeros(len(item_ids), dtype=np.int64)
        item_domain[i_codes] = row_domain  # every item has one domain, so any row will do
        named = pd.Series(item_ids).map(self.item_labels)
        labels = named.where(named.notna(), pd.Series(item_ids).astype(str)).tolist()
        edges = values = None
        if self.trust is not None:
            user_index = pd.Index(user_ids)
            a = user_index.get_indexer(self.trust["truster"])
            b = user_index.get_indexer(self.trust["trustee"])
            keep = (a >= 0) & (b >= 0)
            edges = np.stack([a[keep], b[keep]], axis=1).astype(np.int64)
            values = self.trust["value"].to_numpy(dtype=np.float64)[keep]
        return DenseRatings(
            name=self.name,
            users=u_codes.astype(np.int64),
            items=i_codes.astype(np.int64),
            ratings=df["rating"].to_numpy(dtype=np.float64),
            timestamps=df["timestamp"].to_numpy(dtype=np.float64),
            user_ids=np.asarray(user_ids),
            item_ids=np.asarray(item_ids),
            item_domain=item_domain,
            item_labels=labels,
            domain_names=list(self.domain_names),
            target_domain=self.domain_names.index(self.target_domain),
            scale=self.scale,
            rating_step=self.rating_step,
            trust_edges=edges,
            trust_values=values,
        )
