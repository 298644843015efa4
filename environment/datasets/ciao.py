"""Ciao (Tang et al.): ratings 1-5 in six product categories, and a directed trust network.

The files are whitespace-separated numbers in Matlab ``%e`` style (``1.0000000e+000``), read
straight from ``ciao_with_rating_timestamp_txt.zip`` or from its unzipped folder. Categories
become the domains ``cat1``..``cat6``. Research use; cite Tang, Gao & Liu, WSDM 2012 and KDD
2012. The data are read from a path and never copied into the project.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from environment.datasets.cleaning import (
    ROW,
    clean_ratings,
    clean_trust,
    filter_users,
    parse_numbers,
    parse_whole,
    read_table,
)
from environment.datasets.common import OTHER_DOMAIN, DataError, LoadReport, RatingsDataset
from environment.datasets.config import CiaoWorldConfig

ZIP_NAME = "ciao_with_rating_timestamp_txt.zip"
FOLDER_NAME = "ciao_with_rating_timestamp_txt"
RATINGS_FILE = "rating_with_timestamp.txt"
TRUST_FILE = "trust.txt"
RATING_FIELDS = ["user", "item", "category", "rating", "helpfulness", "timestamp"]
TRUST_FIELDS = ["truster", "trustee"]
SCALE = (1.0, 5.0)


class _CiaoFiles:
    """Where the two Ciao files live: inside a zip, or in a folder."""

    def __init__(self, path: Path) -> None:
        if path.is_file():
            self.location, self.zipped = path, True
        elif (path / RATINGS_FILE).is_file():
            self.location, self.zipped = path, False
        elif (path / FOLDER_NAME / RATINGS_FILE).is_file():
            self.location, self.zipped = path / FOLDER_NAME, False
        elif (path / ZIP_NAME).is_file():
            self.location, self.zipped = path / ZIP_NAME, True
        else:
            what = "folder" if path.is_dir() else "path"
            raise DataError(
                str(path),
                f"file not found: this {what} holds neither {ZIP_NAME} nor {RATINGS_FILE}",
            )

    @contextmanager
    def open(self, name: str) -> Iterator[tuple[IO[bytes] | Path, str]]:
        """Yield (what pandas reads, the name used in messages) for ``name``."""
        if not self.zipped:
            yield self.location / name, str(self.location / name)
            return
        try:
            archive = zipfile.ZipFile(self.location)
        except zipfile.BadZipFile:
            raise DataError(str(self.location), "not a readable zip file") from None
        with archive:
            members = [m for m in archive.namelist() if m.rsplit("/", 1)[-1] == name]
            if not members:
                raise DataError(f"{self.location}:{name}", "file not found in the zip")
            with archive.open(members[0]) as fh:
                yield fh, f"{self.location}:{members[0]}"


def _read_ratings(files: _CiaoFiles) -> tuple[pd.DataFrame, str]:
    with files.open(RATINGS_FILE) as (src, display):
        raw = read_table(src, display, sep=r"\s+", names=RATING_FIELDS)
    names = {"user": "user id", "item": "product id", "category": "category", "rating": "rating"}
    cols = {c: parse_whole(raw, c, display, what=what) for c, what in names.items()}
    stamp = parse_numbers(
        raw, "timestamp", display, what="timestamp", expected="seconds since 1970"
    )
    frame = pd.DataFrame(
        {
            "user": pd.array(cols["user"], dtype="Int64"),
            "item": pd.array(cols["item"], dtype="Int64"),
            "rating": cols["rating"],
            "timestamp": stamp,
            "category": cols["category"],
            ROW: raw[ROW].to_numpy(),
        }
    )
    return frame, display


def _read_trust(files: _CiaoFiles) -> pd.DataFrame:
    with files.open(TRUST_FILE) as (src, display):
        raw = read_table(src, display, sep=r"\s+", names=TRUST_FIELDS)
    a = parse_whole(raw, "truster", display, what="truster id")
    b = parse_whole(raw, "trustee", display, what="trustee id")
    return pd.DataFrame(
        {
            "truster": pd.array(a, dtype="Int64"),
            "trustee": pd.array(b, dtype="Int64"),
            "value": np.ones(len(a)),
        }
    )


def load_ciao(cfg: CiaoWorldConfig) -> RatingsDataset:
    """Load Ciao with the chosen categories as domains and the trust network among raters.

    Raises:
        DataError: the path holds no Ciao files, a malformed row, or a category absent
            from the data.
    """
    start = time.perf_counter()
    files = _CiaoFiles(Path(cfg.path))
    frame, display = _read_ratings(files)
    report = LoadReport(source=display, rows_read=len(frame))

    present = sorted(int(c) for c in pd.unique(frame["category"].dropna()))
    wanted = (
        cfg.source_categories
        if cfg.source_categories is not None
        else [c for c in present if c != cfg.target_category]
    )
    for c in [cfg.target_category, *wanted]:
        if c not in present:
            raise DataError(display, f"category {c} has no ratings (categories: {present})")
    chosen = sorted({cfg.target_category, *wanted})
    if len(chosen) < 2:
        report.notes.append("Only one category: the world is single-domain.")
    cat = frame.pop("category").to_numpy()
    outside = ~np.isnan(cat) & ~np.isin(cat, chosen)
    report.drop(OTHER_DOMAIN, int(outside.sum()), f"categories other than {chosen}")
    frame = frame.loc[~outside]
    cat = cat[~outside]
    names = "cat" + pd.Series(cat, index=frame.index).astype("Int64").astype(str)
    frame = frame.assign(domain=names.where(~np.isnan(cat), None))

    df = clean_ratings(frame, report, display=display, scale=SCALE, rating_step=1.0)
    df = df.astype({"user": np.int64, "item": np.int64})
    df = filter_users(df, report, min_ratings=cfg.min_ratings, max_users=cfg.max_users)
    if df.empty:
        raise DataError(display, "no ratings left after choosing the categories and users")
    trust = _read_trust(files)
    trust = clean_trust(trust, df["user"], report).astype(
        {"truster": np.int64, "trustee": np.int64}
    )

    report.rows_kept = len(df)
    report.notes.append(
        f"Domains: {', '.join(f'cat{c}' for c in chosen)} (target cat{cfg.target_category}); "
        f"{df['user'].nunique():,} users, {df['item'].nunique():,} products."
    )
    report.seconds = time.perf_counter() - start
    items = pd.Index(np.sort(df["item"].unique()))
    return RatingsDataset(
        name=f"ciao:cat{cfg.target_category}",
        ratings=df.drop(columns=ROW),
        domain_names=[f"cat{c}" for c in chosen],
        target_domain=f"cat{cfg.target_category}",
        item_labels=dict(
            zip(items.tolist(), ("product " + items.astype(str)).tolist(), strict=True)
        ),
        scale=SCALE,
        rating_step=1.0,
        trust=trust,
        report=report,
    )
