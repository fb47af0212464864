"""Value types of the entitlement check: a title's access model, one entitlement row, the decision."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Access = Literal["free", "free_with_ads", "subscription", "transactional"]
Kind = Literal["subscription", "rental", "purchase", "ppv"]
# What a decision may answer with besides an entitlement row: a free title played without a subscription.
DecisionKind = Literal["free", "subscription", "rental", "purchase", "ppv"]
Offer = Literal["subscribe", "upgrade", "rent", "buy"]


@dataclass(frozen=True)
class TitleAccess:
    """How a title is offered (catalog_titles.access / min_tier)."""

    id: uuid.UUID
    access: Access
    min_tier: int

    @classmethod
    def of(cls, title: TitleAccess | Mapping[str, Any]) -> TitleAccess:
        """Accept the dataclass or any mapping with id, access and min_tier (a catalog row)."""
        if isinstance(title, TitleAccess):
            return title
        return cls(id=uuid.UUID(str(title["id"])), access=title["access"], min_tier=int(title["min_tier"]))


@dataclass(frozen=True)
class Entitlement:
    """One live (not revoked) entitlements row, as cached."""

    id: str
    kind: Kind
    title_id: str | None
    plan_code: str | None
    tier: int
    max_streams: int
    max_height: int
    ad_free: bool
    starts_at: datetime
    ends_at: datetime | None
    play_window_seconds: int | None
    first_played_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Entitlement:
        """From a repository row (or its cached JSON form, with ISO timestamps)."""

        def when(value: Any) -> datetime | None:
            if value is None or isinstance(value, datetime):
                return value
            return datetime.fromisoformat(str(value))

        starts_at = when(row["starts_at"])
        if starts_at is None:  # the column is not null
            raise ValueError("an entitlement needs starts_at")
        return cls(
            id=str(row["id"]),
            kind=row["kind"],
            title_id=None if row["title_id"] is None else str(row["title_id"]),
            plan_code=row["plan_code"],
            tier=int(row["tier"]),
            max_streams=int(row["max_streams"]),
            max_height=int(row["max_height"]),
            ad_free=bool(row["ad_free"]),
            starts_at=starts_at,
            ends_at=when(row["ends_at"]),
            play_window_seconds=row["play_window_seconds"],
            first_played_at=when(row["first_played_at"]),
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form for the Redis cache."""
        return {
            "id": self.id,
            "kind": self.kind,
            "title_id": self.title_id,
            "plan_code": self.plan_code,
            "tier": self.tier,
            "max_streams": self.max_streams,
            "max_height": self.max_height,
            "ad_free": self.ad_free,
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat() if self.ends_at else None,
            "play_window_seconds": self.play_window_seconds,
            "first_played_at": self.first_played_at.isoformat() if self.first_played_at else None,
        }


@dataclass(frozen=True)
class Decision:
    """May the user play the title now, on which entitlement, and with which limits."""

    allowed: bool
    code: str | None = None  # refusal: 'not_entitled' | 'rental_expired'
    entitlement_id: str | None = None  # None for a free title played without a subscription
    kind: DecisionKind | None = None
    max_streams: int = 1  # concurrent streams of the user while playing on this entitlement
    max_height: int = 1080  # highest rendition height
    ads: bool = False
    offers: list[Offer] = field(default_factory=list)  # what would entitle (refusals only)
    first_play: bool = False  # a rental not played yet: the stream start calls mark_first_play
    valid_until: datetime | None = None  # when the entitlement stops allowing playback (None: open)
