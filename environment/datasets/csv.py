"""A researcher's own ratings CSV (with a header line), and optionally a trust CSV.

Columns are found by the names in ``world.columns``. Without a domain column the world is
single-domain (the report says so): the recommender then has no source domain to borrow
from. Timestamps may be seconds or dates. Ids are kept as the text written in the file.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel

from environment.datasets.cleaning import (
    ROW,
    clean_ratings,
    clean_trust,
    filter_users,
    is_missing,
    parse_numbers,
    read_table,
    require_columns,
)
from environment.datasets.common import DataError, LoadReport, RatingsDataset
from environment.datasets.config import CsvWorldConfig

SINGLE_DOMAIN = "all"


def _optional_column(
    frame: pd.DataFrame, display: str, name: str | None, explicit: bool, role: str
) -> str | None:
    """The column to use for an optional role: None when unset or absent by default."""
    if name is None:
        return None
    if name in frame.columns:
        return name
    if explicit:
        require_columns(frame, display, {role: name})
    return None


def _ids(frame: pd.DataFrame, column: str) -> pd.Series:
    """Stripped id strings, None where missing."""
    text = frame[column].str.strip()
    return text.where(~is_missing(text), None).astype(object)


def _timestamps(frame: pd.DataFrame, column: str, display: str) -> np.ndarray:
    """Seconds since 1970 from numbers or dates (NaN where missing)."""
    text = frame[column].str.strip()
    missing = is_missing(text)
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, copy=True)
    words = np.isnan(numbers) & ~missing
    if not words.any():
        return numbers
    dates = pd.to_datetime(text[words], errors="coerce", utc=True, format="mixed")
    bad = dates.isna().to_numpy()
    if bad.any():
        k = int(np.flatnonzero(words)[np.argmax(bad)])
        raise DataError(
            display,
            f"timestamp {text.iloc[k]!r} is neither a number nor a date "
            "(expected seconds since 1970 or a date such as 2016-05-31)",
            row=int(frame[ROW].iloc[k]),
        )
    epoch = pd.Timestamp(0, tz="UTC")
    numbers[words] = ((dates - epoch) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)
    return numbers


def _domains(
    frame: pd.DataFrame, column: str | None, target: str | None, display: str
) -> tuple[pd.Series, list[str], str]:
    """Per-row domain names, the sorted domain list, and the target domain."""
    if column is None:
        if target is not None:
            raise DataError(display, "target_domain is set but the file has no domain column")
        names = pd.Series(SINGLE_DOMAIN, index=frame.index, dtype=object)
        return names, [SINGLE_DOMAIN], SINGLE_DOMAIN
    domain = _ids(frame, column)
    found = sorted(str(d) for d in pd.unique(domain.dropna()))
    if target is None:
        raise DataError(
            display,
            f"the file has a domain column {column!r}; set world.target_domain to one of {found}",
        )
    if target not in found:
        raise DataError(display, f"target_domain {target!r} is not among the domains {found}")
    return domain, found, target


def _read_trust(cfg: CsvWorldConfig, path: str) -> pd.DataFrame:
    raw = read_table(path, path, sep=cfg.delimiter)
    cols = cfg.trust_columns
    require_columns(raw, path, {"truster": cols.truster, "trustee": cols.trustee})
    value_col = _optional_column(raw, path, cols.value, _renamed(cols, "value"), "value")
    values = (
        parse_numbers(raw, value_col, path, what="trust value", expected="a number")
        if value_col is not None
        else np.ones(len(raw))
    )
    return pd.DataFrame(
        {
            "truster": _ids(raw, cols.truster),
            "trustee": _ids(raw, cols.trustee),
            # A missing value is an edge of default strength, not a missing edge.
            "value": np.where(np.isnan(values), 1.0, values),
        }
    )


def load_csv(cfg: CsvWorldConfig) -> RatingsDataset:
    """Load a ratings CSV (and a trust CSV when ``cfg.trust`` is set).

    Raises:
        DataError: a missing file, a missing column, a malformed row (naming the file and the
            row), a missing or unknown target domain, or a scale that most ratings miss.
    """
    start = time.perf_counter()
    display = cfg.ratings
    raw = read_table(cfg.ratings, display, sep=cfg.delimiter)
    cols = cfg.columns
    require_columns(raw, display, {"user": cols.user, "item": cols.item, "rating": cols.rating})
    ts_col = _optional_column(
        raw, display, cols.timestamp, _renamed(cols, "timestamp"), "timestamp"
    )
    dom_col = _optional_column(raw, display, cols.domain, _renamed(cols, "domain"), "domain")
    lo, hi = cfg.scale
    domain, domain_names, target = _domains(raw, dom_col, cfg.target_domain, display)
    frame = pd.DataFrame(
        {
            "user": _ids(raw, cols.user),
            "item": _ids(raw, cols.item),
            "rating": parse_numbers(
                raw,
                cols.rating,
                display,
                what="rating",
                expected=f"a number on the scale {lo:g}-{hi:g}",
            ),
            "timestamp": _timestamps(raw, ts_col, display) if ts_col else np.full(len(raw), np.nan),
            "domain": domain,
            ROW: raw[ROW].to_numpy(),
        }
    )
    report = LoadReport(source=display, rows_read=len(frame))
    df = clean_ratings(frame, report, display=display, scale=cfg.scale, rating_step=cfg.rating_step)
    df = filter_users(df, report, min_ratings=cfg.min_ratings, max_users=cfg.max_users)
    if df.empty:
        raise DataError(display, "no ratings left after cleaning and the user filters")
    # A domain whose every row was dropped is no longer a domain of the world.
    kept_domains = [d for d in domain_names if (df["domain"] == d).any()]
    if target not in kept_domains:
        raise DataError(display, f"no ratings of the target domain {target!r} were kept")
    trust = None
    if cfg.trust is not None:
        trust = clean_trust(_read_trust(cfg, cfg.trust), df["user"], report)

    report.rows_kept = len(df)
    if len(kept_domains) == 1:
        report.notes.append(
            "Single-domain world: no domain column, so no source domain to borrow from."
            if dom_col is None
            else f"Single-domain world: only {target!r} has ratings."
        )
    else:
        report.notes.append(f"Domains: {', '.join(kept_domains)} (target {target!r}).")
    report.seconds = time.perf_counter() - start
    items = df["item"].unique()
    return RatingsDataset(
        name=cfg.name or Path(cfg.ratings).stem,
        ratings=df.drop(columns=ROW).reset_index(drop=True),
        domain_names=kept_domains,
        target_domain=target,
        item_labels=dict(zip(items, items, strict=True)),
        scale=(float(lo), float(hi)),
        rating_step=cfg.rating_step,
        trust=trust,
        report=report,
    )


def _renamed(columns: BaseModel, field: str) -> bool:
    """An optional column the scenario renamed must exist; one left at its default name may be
    absent. Decided from the value (not model_fields_set), so a scenario validated again after
    a command-line override behaves the same."""
    return getattr(columns, field) != type(columns).model_fields[field].default
