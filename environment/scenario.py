"""Scenario files: a YAML document validated once into typed configuration.

Every block forbids unknown keys (``extra="forbid"``), so a typo is an error, not a silently
ignored setting. ``load_scenario`` turns every problem into one ``path.to.field: message`` line
(``ScenarioError.problems``) for the CLI to print.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from environment.datasets.config import CiaoWorldConfig, CsvWorldConfig, MovieLensWorldConfig
from environment.traits import TraitsConfig
from models.trust import TrustConfig


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Share = Annotated[float, Field(ge=0.0, le=1.0)]


class ColdStartConfig(Strict):
    """The stream of users who arrive with source-domain history but few target ratings."""

    share: Share = Field(0.2, description="share of users who arrive during the run")
    target_ratings: tuple[int, int] = Field(
        (0, 2), description="min and max target-domain ratings a newcomer brings"
    )
    arrival_steps: tuple[int, int] = Field(
        (1, 10), description="first and last step of the arrivals (uniform in between)"
    )

    @field_validator("target_ratings", "arrival_steps")
    @classmethod
    def _ordered_pair(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] < 0 or v[1] < v[0]:
            raise ValueError("expected [low, high] with 0 <= low <= high")
        return v


class AdversaryConfig(Strict):
    """Shilling profiles: rate pushed items at the top and copy popular ratings elsewhere."""

    share: Share = Field(0.0, description="share of users who are attackers")
    pushed_items: int = Field(5, ge=1, description="target items the attackers push")
    filler_items: int = Field(20, ge=0, description="popular items each attacker copies")


class SyntheticWorldConfig(Strict):
    """A generated world whose ground truth is known exactly (ARCHITECTURE.md section 3)."""

    kind: Literal["synthetic"] = "synthetic"
    domains: list[str] = Field(["books", "movies"], min_length=2)
    target: str = Field("movies", description="the target domain (one of domains)")
    users: int = Field(300, ge=2)
    items_per_domain: int = Field(200, ge=2)
    shared_dim: int = Field(6, ge=1, description="latent taste dimensions shared by all domains")
    specific_dim: int = Field(3, ge=0, description="latent dimensions specific to each domain")
    shared_weight: float = Field(0.8, ge=0.0, description="variance of the shared taste part")
    specific_weight: float = Field(0.3, ge=0.0, description="variance of the specific part")
    popularity_exponent: float = Field(1.0, ge=0.0, description="Zipf exponent of item exposure")
    history_per_domain: int = Field(
        20, ge=0, description="mean initial ratings per user and domain"
    )
    taste_exposure: float = Field(
        1.0, ge=0.0, description="how strongly tastes drive which items a user had rated"
    )
    scale: tuple[float, float] = (1.0, 5.0)
    like_threshold: float = 4.0
    cold_start: ColdStartConfig = ColdStartConfig()
    traits: TraitsConfig = TraitsConfig()
    adversaries: AdversaryConfig = AdversaryConfig()

    @model_validator(mode="after")
    def _check(self) -> SyntheticWorldConfig:
        if len(set(self.domains)) != len(self.domains):
            raise ValueError("domains must be distinct")
        if self.target not in self.domains:
            raise ValueError(f"target {self.target!r} is not one of the domains {self.domains}")
        lo, hi = self.scale
        if hi <= lo:
            raise ValueError("scale must be [low, high] with low < high")
        if not lo <= self.like_threshold <= hi:
            raise ValueError("like_threshold must lie on the rating scale")
        return self


WorldConfig = Annotated[
    SyntheticWorldConfig | MovieLensWorldConfig | CiaoWorldConfig | CsvWorldConfig,
    Field(discriminator="kind"),
]


# Deep scorers the serendipity agent can plug in (models/, built by environment/ranking_scorers.py).
DEEP_SCORERS = ("vae", "vae_cold", "serencdr", "serendiff", "purs")


class RecommenderConfig(Strict):
    """One recommender variant: TFCDSRS or the target-only collaborative-filtering baseline."""

    name: str = Field(min_length=1)
    kind: Literal["tfcdsrs", "cf"] = "tfcdsrs"
    neighbours: int = Field(30, ge=1, description="neighbourhood size K")
    candidate_pool: int = Field(
        4, ge=1, description="neighbour candidates passed to trust, as a multiple of K"
    )
    min_common: int = Field(2, ge=1, description="co-rated items needed for a similarity")
    similarity_mean: Literal["corated", "all"] = "corated"
    domain_correlation: Literal["pearson", "adjusted_cosine"] = Field(
        "pearson",
        description="item-item similarity behind cor(t, s) (FORMULAS 2); adjusted cosine removes "
        "each user's mean, and with it the rating tendency users carry across domains",
    )
    significance: int | None = Field(None, ge=1, description="significance weighting cap")
    sparse_threshold: int = Field(
        5, ge=0, description="m_min: fewer target ratings than this sends the request to sources"
    )
    prediction_threshold: float = Field(3.5, description="theta_p for candidates")
    max_candidates: int = Field(100, ge=1, description="candidates passed on, best predicted first")
    selection_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="theta_s on the fuzzy score"
    )
    fill_list: bool = Field(
        True, description="top up a list below theta_s with the next best items by score"
    )
    neighbour_rank: Literal["sim_trust", "threshold", "similarity"] = Field(
        "sim_trust",
        description="sim_trust: rank by Sim*(eps+tau); threshold: tau >= theta first; similarity",
    )
    trust_epsilon: float = Field(0.1, ge=0.0)
    weight: Literal["similarity", "harmonic"] = "similarity"
    novelty: Literal["neighbourhood", "global"] = Field(
        "neighbourhood",
        description="NS = IF*IUF over the neighbourhood (FORMULAS 7), or the global IUF/log|U|",
    )
    novelty_input: Literal["percentile", "minmax"] = "percentile"
    unexpectedness_input: Literal["absolute", "percentile"] = Field(
        "percentile",
        description="fuzzy input: une = (1 - max NPMI)/2 as is (FORMULAS 9, literal), or its "
        "percentile among the user's candidates, like novelty (the default; README ablation)",
    )
    scorer: Literal["fuzzy", "prediction", "blend", *DEEP_SCORERS] = Field(  # type: ignore[valid-type]
        "fuzzy",
        description="fuzzy: Mamdani serendipity (the paper); prediction: rank by predicted rating; "
        "a deep model's name: rank by that trained model's score; blend: the model's score "
        "(its percentile among the candidates) replaces the fuzzy relevance input",
    )
    model: Literal[*DEEP_SCORERS] = Field(  # type: ignore[valid-type]
        "vae", description="the deep model that scorer: blend feeds into the fuzzy system"
    )
    retrain_every: int = Field(
        5,
        ge=0,
        description="retrain the deep model every this many steps on the feedback so far (0: once)",
    )
    model_epochs: int | None = Field(None, ge=1, description="override the deep model's epochs")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    trust: TrustConfig = TrustConfig()

    @model_validator(mode="after")
    def _cf_defaults(self) -> RecommenderConfig:
        if self.kind == "cf" and self.scorer == "fuzzy" and "scorer" not in self.model_fields_set:
            object.__setattr__(self, "scorer", "prediction")
        return self

    @property
    def cross_domain(self) -> bool:
        return self.kind == "tfcdsrs"

    @property
    def deep_model(self) -> str | None:
        """The deep model the serendipity agent trains, if any."""
        if self.scorer == "blend":
            return self.model
        return self.scorer if self.scorer in DEEP_SCORERS else None


class RunConfig(Strict):
    steps: int = Field(20, ge=1)
    seed: int = 0
    active_share: float = Field(
        0.3, gt=0.0, le=1.0, description="share of present users active per step"
    )
    list_length: int = Field(10, ge=1, description="N, the length of a recommendation list")


class EvaluationConfig(Strict):
    """``main.py evaluate``: offline protocols on held-out data (FORMULAS 11, MODELS 5)."""

    protocols: list[Literal["accuracy", "ranking"]] = Field(
        ["accuracy"],
        description="accuracy: the TFCDSRS paper's MAE/RMSE/P/R/F comparison against CF; "
        "ranking: deep scorers and baselines on fixed candidate lists",
    )
    split: Literal["random", "time"] = "random"
    test_share: float = Field(0.2, gt=0.0, lt=1.0)
    list_lengths: list[int] = Field([5, 12, 17, 22, 27, 32], min_length=1)
    unexpectedness_lengths: list[int] = Field([5, 10, 15, 20, 25, 30], min_length=1)
    bucket_edges: list[int] = Field(
        [1, 3, 6, 11], description="cold-start buckets of target ratings: 0, 1-2, 3-5, 6-10, >10"
    )
    relevance_threshold: float | None = Field(
        4.0, description="test items rated at least this are relevant"
    )
    scorers: list[str] = Field(
        [
            "popularity",
            "bpr_mf",
            "user_cf",
            "vae_single",
            "vae_merged",
            "vae",
            "vae_cold",
            "serencdr",
        ],
        description="ranking protocol: which scorers to train and compare",
    )
    negatives: int = Field(99, ge=1, description="sampled negatives per test user (ranking)")
    epochs: int | None = Field(None, ge=1, description="override every deep scorer's epochs")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    settings: list[Literal["relevance", "serendipity", "cold_start"]] = Field(
        ["relevance", "serendipity", "cold_start"],
        min_length=1,
        description="ranking protocol: held-out liked item, held-out serendipitous item, "
        "users with all target ratings hidden",
    )
    seeds: int = Field(
        1, ge=1, description="ranking protocol: repeats with seeds run.seed, run.seed+1, ..."
    )
    max_users: int | None = Field(
        None, ge=1, description="ranking protocol: at most this many test users per setting"
    )
    cold_start_share: float = Field(
        0.2, gt=0.0, lt=1.0, description="share of users whose target ratings are hidden"
    )
    serendipity_labels: Literal["target", "all"] = Field(
        "target",
        description="ranking protocol: ground-truth serendipity labels on target ratings only, "
        "or on every domain's (SerenCDR's source side then trains too)",
    )
    serendipity_negatives: Literal["non_serendipitous", "unrated"] = Field(
        "non_serendipitous",
        description="ranking protocol, serendipity setting: negatives are unrated target items "
        "the ground truth does not call serendipitous (MODELS.md 1.8), or any unrated ones",
    )
    checkpoints: bool = Field(
        True, description="ranking protocol: save each trained scorer beside the run"
    )
    model_size: Literal["auto", "small", "medium", "large"] = Field(
        "auto",
        description="ranking protocol: deep model sizes from the number of users (auto), or a "
        "fixed tier (large: the papers' sizes)",
    )


class OutputConfig(Strict):
    db: str = Field("runs/{name}.db", description="database path or SQLAlchemy URL; {name} expands")
    trace: Literal["quiet", "info", "debug"] = "info"


class Scenario(Strict):
    name: str = Field(min_length=1)
    description: str = ""
    world: WorldConfig = SyntheticWorldConfig()
    recommenders: list[RecommenderConfig] = Field(
        default_factory=lambda: [RecommenderConfig(name="tfcdsrs")], min_length=1
    )
    run: RunConfig = RunConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    output: OutputConfig = OutputConfig()

    @model_validator(mode="after")
    def _unique_names(self) -> Scenario:
        names = [r.name for r in self.recommenders]
        if len(set(names)) != len(names):
            raise ValueError(f"recommender names must be distinct, got {names}")
        return self

    def db_target(self) -> str:
        return self.output.db.replace("{name}", self.name)

    def digest(self) -> str:
        """A stable hash of the validated scenario (what the run row records)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


class ScenarioError(Exception):
    """A scenario that cannot be used; ``problems`` holds one readable line each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


def format_validation_error(err: ValidationError) -> list[str]:
    """One ``path.to.field: message`` line per problem (no pydantic boilerplate)."""
    lines = []
    for e in err.errors(include_url=False):
        loc = [str(p) for p in e["loc"]]
        # Drop the discriminator tag pydantic inserts for tagged unions (world.synthetic.users).
        if (
            len(loc) >= 2
            and loc[0] == "world"
            and loc[1] in ("synthetic", "movielens", "ciao", "csv")
        ):
            loc = [loc[0], *loc[2:]]
        path = ".".join(loc) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not part of the scenario schema)"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        lines.append(f"{path}: {msg}")
    return lines


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(source, ["(top level): expected a mapping of scenario keys"])
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise ScenarioError(source, format_validation_error(err)) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a YAML scenario file; raises ScenarioError with readable lines."""
    p = Path(path)
    if not p.is_file():
        raise ScenarioError(str(p), ["file not found"])
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ScenarioError(str(p), [f"{where}invalid YAML ({problem})"]) from None
    return parse_scenario(data, str(p))


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` (list indices allowed: ``recommenders.0.neighbours``) in nested data."""
    keys = dotted.split(".")
    node: Any = data
    for k in keys[:-1]:
        if isinstance(node, list):
            node = node[int(k)]
        else:
            node = node.setdefault(k, {})
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def with_overrides(
    scenario: Scenario, overrides: dict[str, Any], source: str = "<overrides>"
) -> Scenario:
    """Apply dotted-path overrides and validate again (model_copy(update=) skips validation)."""
    data = scenario.model_dump(mode="json")
    for key, value in overrides.items():
        try:
            set_path(data, key, value)
        except (IndexError, ValueError, TypeError, AttributeError):
            raise ScenarioError(source, [f"{key}: no such field to override"]) from None
    return parse_scenario(data, source)
