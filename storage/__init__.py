"""Storage: SQLModel tables, the repository and the message bus (ARCHITECTURE.md section 5).

Imports no other project folder.
"""

from storage.bus import Envelope, MessageBus
from storage.repository import Repository, database_url
from storage.tables import (
    ALL_TABLES,
    METRIC_GROUPS,
    PER_STEP_TABLES,
    RATING_ORIGINS,
    RUN_STATUSES,
    TRUST_CAUSES,
    USER_KINDS,
    AgentStateRecord,
    DomainRecord,
    FeedbackRecord,
    ItemRecord,
    MessageRecord,
    MetricRecord,
    RatingRecord,
    RecommendationRecord,
    ReputationRecord,
    RunRecord,
    TrustRecord,
    UserRecord,
    UTCDateTime,
    utcnow,
)

__all__ = [
    "ALL_TABLES",
    "METRIC_GROUPS",
    "PER_STEP_TABLES",
    "RATING_ORIGINS",
    "RUN_STATUSES",
    "TRUST_CAUSES",
    "USER_KINDS",
    "AgentStateRecord",
    "DomainRecord",
    "Envelope",
    "FeedbackRecord",
    "ItemRecord",
    "MessageBus",
    "MessageRecord",
    "MetricRecord",
    "RatingRecord",
    "RecommendationRecord",
    "Repository",
    "ReputationRecord",
    "RunRecord",
    "TrustRecord",
    "UTCDateTime",
    "UserRecord",
    "database_url",
    "utcnow",
]
