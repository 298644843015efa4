"""Reading text tables with row numbers, and the cleaning steps every loader shares.

Tables are read as strings first so that a bad value can be reported with the row a person
sees in their editor (``DataError``), then converted column by column with whole-array
operations. The cleaning steps fill the ``LoadReport`` as they drop or change rows.
"""

from __future__ import annotations

import re
from typing import IO

import numpy as np
import pandas as pd

from environment.datasets.common import (
    DUPLICATE,
    FEW_RATINGS,
    MAX_USERS,
    MISSING,
    OUT_OF_RANGE,
    REASSIGNED,
    ROUNDED,
    TRUST_DUPLICATE,
    TRUST_MISSING,
    TRUST_NONPOSITIVE,
    TRUST_SELF,
    TRUST_UNKNOWN,
    DataError,
    LoadReport,
)

MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})
ROW = "_row"  # column holding each row's line number in its file

_LINE_RE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def read_table(
    source: str | IO[bytes],
    display: str,
    *,
    sep: str,
    names: list[str] | None = None,
) -> pd.DataFrame:
    """Read a delimited text file as strings, one column ``_row`` with each row's line number.

    Args:
        source: a path or an open binary file (a zip member).
        display: how the file is named in error messages.
        sep: the delimiter (``r"\\s+"`` for whitespace-separated files).
        names: column names for a file without a header line; None when it has one.

    Raises:
        DataError: file not found, empty, not text, or a row with too many fields.
    """
    try:
        frame = pd.read_csv(
            source,
            sep=sep,
            header=None if names is not None else 0,
            names=names,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,  # keeps the frame's index aligned with the file's lines
            engine="c" if len(sep) == 1 or sep == r"\s+" else "python",
        )
    except FileNotFoundError:
        raise DataError(display, "file not found") from None
    except IsADirectoryError:
        raise DataError(display, "is a folder, expected a file") from None
    except pd.errors.EmptyDataError:
        raise DataError(display, "the file is empty") from None
    except UnicodeDecodeError as err:
        raise DataError(display, f"not a UTF-8 text file ({err.reason})") from None
    except pd.errors.ParserError as err:
        m = _LINE_RE.search(str(err))
        if m is None:
            raise DataError(display, f"cannot be parsed ({str(err).strip()})") from None
        expected, line, saw = m.groups()
        raise DataError(
            display, f"expected {expected} fields, found {saw} (check the delimiter)", row=int(line)
        ) from None
    frame = frame.fillna("")
    first_row = 1 if names is not None else 2
    frame[ROW] = np.arange(first_row, first_row + len(frame), dtype=np.int64)
    blank = (frame.drop(columns=ROW).apply(lambda c: c.str.strip()) == "").all(axis=1)
    return frame.loc[~blank].reset_index(drop=True)


def require_columns(frame: pd.DataFrame, display: str, wanted: dict[str, str]) -> None:
    """Raise DataError when a configured column (role -> name) is missing from the header."""
    present = [c for c in frame.columns if c != ROW]
    for role, name in wanted.items():
        if name not in frame.columns:
            raise DataError(
                display,
                f"no column named {name!r} for the {role} (the header has: "
                f"{', '.join(present)}); set world.columns.{role}",
            )


def is_missing(values: pd.Series) -> np.ndarray:
    """True where a string cell holds no value (empty, NA, nan, null, none)."""
    return values.str.strip().str.lower().isin(MISSING_TOKENS).to_numpy()


def parse_numbers(
    frame: pd.DataFrame, column: str, display: str, *, what: str, expected: str
) -> np.ndarray:
    """Convert a string column to float64 (NaN where missing).

    Raises:
        DataError: naming the first row whose value is present but not a number.
    """
    text = frame[column].str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(values) & ~is_missing(text)
    if bad.any():
        k = int(np.argmax(bad))
        raise DataError(
            display,
            f"{what} {text.iloc[k]!r} is not a number (expected {expected})",
            row=int(frame[ROW].iloc[k]),
        )
    return values


def parse_whole(frame: pd.DataFrame, column: str, display: str, *, what: str) -> np.ndarray:
    """Convert a column of whole numbers written in any float style (``1.0000000e+000``).

    Returns float64 (NaN where missing) whose present values are integral.
    """
    values = parse_numbers(frame, column, display, what=what, expected="a whole number")
    present = ~np.isnan(values)
    bad = present & ~(np.isfinite(values) & (values == np.round(values)))
    if bad.any():
        k = int(np.argmax(bad))
        raise DataError(
            display,
            f"{what} {frame[column].iloc[k].strip()!r} is not a whole number",
            row=int(frame[ROW].iloc[k]),
        )
    return values


def _scale_text(scale: tuple[float, float]) -> str:
    return f"{scale[0]:g}-{scale[1]:g}"


def clean_ratings(
    df: pd.DataFrame,
    report: LoadReport,
    *,
    display: str,
    scale: tuple[float, float],
    rating_step: float,
) -> pd.DataFrame:
    """Drop and fix rows shared by every source, filling ``report``.

    ``df`` has the columns user, item, rating (float, NaN = missing), timestamp (float or
    NaN), domain (str or None = missing) and ``_row``. Steps: rows with a missing value;
    ratings off the scale (a DataError when most are, since the scale is then wrong);
    ratings off the step are rounded; duplicate (user, item) rows keep the latest (ties: the
    last in the file); an item under several domains goes to the domain of most of its rows.
    """
    missing = (
        df["user"].isna() | df["item"].isna() | df["rating"].isna() | df["domain"].isna()
    ).to_numpy()
    if missing.any():
        report.drop(
            MISSING, int(missing.sum()), f"first at row {int(df[ROW].to_numpy()[missing][0])}"
        )
        df = df.loc[~missing]

    lo, hi = scale
    r = df["rating"].to_numpy(dtype=np.float64)
    out = (r < lo) | (r > hi)
    if out.any():
        first = int(np.argmax(out))
        example = f"first at row {int(df[ROW].iloc[first])}: {r[first]:g}"
        if out.sum() * 2 > len(r):
            raise DataError(
                display,
                f"{int(out.sum()):,} of {len(r):,} ratings lie outside the scale "
                f"{_scale_text(scale)} ({example}); check the scale",
            )
        report.drop(OUT_OF_RANGE, int(out.sum()), f"{_scale_text(scale)}, {example}")
        df = df.loc[~out]
        r = r[~out]

    on_step = lo + np.round((r - lo) / rating_step) * rating_step
    off = ~np.isclose(on_step, r)
    if off.any():
        first = int(np.argmax(off))
        report.change(
            ROUNDED,
            int(off.sum()),
            f"step {rating_step:g}, first at row {int(df[ROW].iloc[first])}",
        )
    df = df.assign(rating=np.clip(on_step, lo, hi))

    # Stable sort: rows without a timestamp sort first, so a timed row wins over an untimed one
    # and among equals the last in the file wins.
    df = df.sort_values("timestamp", kind="stable", na_position="first")
    dup = df.duplicated(["user", "item"], keep="last").to_numpy()
    if dup.any():
        report.drop(DUPLICATE, int(dup.sum()))
        df = df.loc[~dup]

    per_item = df.groupby("item", sort=False)["domain"].nunique()
    multi = per_item.index[per_item.to_numpy() > 1]
    if len(multi):
        rows = df.loc[df["item"].isin(multi), ["item", "domain"]]
        counts = rows.value_counts().rename("n").reset_index()
        # Most rows first; ties go to the alphabetically first domain for determinism.
        counts = counts.sort_values(["item", "n", "domain"], ascending=[True, False, True])
        home = counts.drop_duplicates("item").set_index("item")["domain"]
        moved = df["item"].map(home)
        df = df.assign(domain=moved.where(moved.notna(), df["domain"]))
        report.change(REASSIGNED, len(multi), f"e.g. item {multi[0]}")
    return df.sort_values(ROW, kind="stable").reset_index(drop=True)


def filter_users(
    df: pd.DataFrame, report: LoadReport, *, min_ratings: int, max_users: int | None
) -> pd.DataFrame:
    """Keep users with at least ``min_ratings`` rows, then the ``max_users`` most active."""
    counts = df["user"].value_counts()
    few = counts.index[counts.to_numpy() < min_ratings]
    if len(few):
        drop = df["user"].isin(few).to_numpy()
        report.drop(FEW_RATINGS, int(drop.sum()), f"{len(few):,} users, min_ratings={min_ratings}")
        df = df.loc[~drop]
        counts = counts.loc[counts.to_numpy() >= min_ratings]
    if max_users is not None and len(counts) > max_users:
        ranked = pd.DataFrame({"user": counts.index, "n": counts.to_numpy()})
        ranked = ranked.sort_values(["n", "user"], ascending=[False, True], kind="stable")
        keep = df["user"].isin(ranked["user"].iloc[:max_users]).to_numpy()
        report.drop(MAX_USERS, int((~keep).sum()), f"{len(counts) - max_users:,} users")
        df = df.loc[keep]
    return df.reset_index(drop=True)


def clean_trust(trust: pd.DataFrame, known_users: pd.Series, report: LoadReport) -> pd.DataFrame:
    """Keep trust edges between known users, without self-loops, duplicates or values <= 0.

    ``trust`` has the columns truster, trustee, value (NaN truster/trustee = missing).
    """
    report.trust_read = len(trust)
    missing = (trust["truster"].isna() | trust["trustee"].isna()).to_numpy()
    report.drop_trust(TRUST_MISSING, int(missing.sum()))
    trust = trust.loc[~missing]
    self_loop = (trust["truster"] == trust["trustee"]).to_numpy()
    report.drop_trust(TRUST_SELF, int(self_loop.sum()))
    trust = trust.loc[~self_loop]
    nonpositive = (trust["value"] <= 0).to_numpy()
    report.drop_trust(TRUST_NONPOSITIVE, int(nonpositive.sum()))
    trust = trust.loc[~nonpositive]
    dup = trust.duplicated(["truster", "trustee"], keep="last").to_numpy()
    report.drop_trust(TRUST_DUPLICATE, int(dup.sum()))
    trust = trust.loc[~dup]
    known = (trust["truster"].isin(known_users) & trust["trustee"].isin(known_users)).to_numpy()
    report.drop_trust(TRUST_UNKNOWN, int((~known).sum()))
    trust = trust.loc[known, ["truster", "trustee", "value"]].reset_index(drop=True)
    report.trust_kept = len(trust)
    return trust
