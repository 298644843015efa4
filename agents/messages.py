"""The messages the TFCDSRS agents exchange (ARCHITECTURE.md section 2).

Each kind is a small pydantic record; the bus stores it as JSON in the ``message`` table and
validates it on the way in. Payloads carry ids and short lists (neighbours with weights,
candidates with scores), never matrices. A request is identified by its user: a user asks at
most once per step, so ``(step, user)`` names the request along the whole chain.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: int = Field(description="the user the message is about")


class Arrive(Message):
    """User -> target and source agents: the user enters the world; their history becomes
    visible to the domain agents from this step."""


class RecommendRequest(Message):
    """User -> target agent: please recommend ``n`` target-domain items."""

    n: int


class LocalNeighbours(Message):
    """Target agent -> trust agent: candidate neighbours by target-domain similarity.

    ``remote_expected`` says how many ``RemoteNeighbours`` replies follow (0 when the user is
    not sparse, or cross-domain search is off)."""

    n_rated: int = Field(description="|I_x| in the target domain")
    sparse: bool
    remote_expected: int
    neighbours: list[int]
    similarity: list[float | None]  # None where Sim_t is undefined
    co_counts: list[int]


class RemoteNeighbourRequest(Message):
    """Target agent -> source agent: the user is sparse in the target; find neighbours in
    your domain."""

    pool: int = Field(description="how many candidates to return")


class RemoteNeighbours(Message):
    """Source agent -> trust agent: neighbours in one source domain, with cor(t, s)."""

    domain: str
    correlation: float
    n_rated: int
    neighbours: list[int]
    similarity: list[float]
    co_counts: list[int]


class TrustedNeighbours(Message):
    """Trust agent -> neighbourhood agent: the final neighbourhood N_x with weights."""

    neighbours: list[int]
    weights: list[float]
    similarity: list[float]
    trust: list[float]
    remote: list[bool] = Field(description="True where the neighbour came from a source domain")
    sparse: bool


class Candidates(Message):
    """Neighbourhood agent -> serendipity agent: unseen target items predicted >= theta_p."""

    n_neighbours: int
    items: list[int]
    prediction: list[float]
    relevance: list[float]
    support: list[int]
    contributors: list[list[int]] = Field(description="per item, the neighbours who rated it")


class RecommendedItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item: int
    score: float
    prediction: float
    relevance: float
    novelty: float
    unexpectedness: float
    serendipity: float | None
    rules: list[tuple[int, float]]
    contributors: list[int]


class Recommendations(Message):
    """Serendipity agent -> user: the ranked list with every component score."""

    items: list[RecommendedItem]


class FeedbackEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item: int
    rating: float
    liked: bool
    serendipitous: bool
    contributors: list[int]


class Feedback(Message):
    """User -> target agent (new ratings) and trust agent (credit the neighbours)."""

    events: list[FeedbackEvent]


MESSAGE_KINDS: dict[str, type[BaseModel]] = {
    cls.__name__: cls
    for cls in (
        Arrive,
        RecommendRequest,
        LocalNeighbours,
        RemoteNeighbourRequest,
        RemoteNeighbours,
        TrustedNeighbours,
        Candidates,
        Recommendations,
        Feedback,
    )
}
