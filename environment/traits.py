"""How simulated people behave: curiosity, rating noise, choice from a list.

Shared by every kind of world (synthetic and real), so it lives apart from both schemas.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

Share = Annotated[float, Field(ge=0.0, le=1.0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TraitsConfig(Strict):
    """Simulated people: curiosity, noise, and how they choose from a list."""

    curiosity: tuple[float, float] = Field(
        (2.0, 2.0), description="Beta(a, b) of the curiosity (openness) trait"
    )
    noise_sd: float = Field(0.5, ge=0.0, description="rating = true utility + N(0, noise_sd)")
    unexpected_share: Share = Field(
        0.35, description="share of the catalogue that lies beyond a user's comfort radius"
    )
    choice_utility: float = Field(1.5, ge=0.0, description="weight of utility in the choice logit")
    choice_curiosity: float = Field(
        2.0, ge=0.0, description="weight of curiosity x unexpectedness in the choice logit"
    )
    position_decay: float = Field(0.1, ge=0.0, description="logit penalty per list position")
    serendipity_base: Share = Field(
        0.3,
        description="chance an unexpected, valuable item is felt as serendipitous at curiosity 0",
    )

    @field_validator("curiosity")
    @classmethod
    def _beta(cls, v: tuple[float, float]) -> tuple[float, float]:
        if v[0] <= 0 or v[1] <= 0:
            raise ValueError("Beta parameters must be > 0")
        return v
