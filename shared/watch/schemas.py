"""Request and response models of watching: positions, continue watching, history, next episode."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.catalog.schemas import TitleSummary

MAX_SECONDS = 10 * 24 * 3600.0  # far beyond any title; keeps absurd numbers out of Redis and Postgres
MAX_SEQUENCE = 2**53 - 1  # a JavaScript player's largest exact integer


class PositionInput(BaseModel):
    """Where the player is; `sequence` grows with each write of the session (retries repeat it)."""

    model_config = ConfigDict(extra="forbid")
    position_seconds: float = Field(ge=0, le=MAX_SECONDS)
    duration_seconds: float | None = Field(default=None, gt=0, le=MAX_SECONDS)
    sequence: int = Field(ge=0, le=MAX_SEQUENCE)


class PositionRead(BaseModel):
    """The stored position after a write (the newer one when this write arrived late)."""

    session_id: uuid.UUID
    content_id: uuid.UUID
    position_seconds: float
    duration_seconds: float | None = None
    sequence: int
    applied: bool = Field(description="false when this write was a repeat or older than the stored one")
    watched: bool = Field(description="reached the watched fraction of the duration or the credits")


class EpisodeRef(BaseModel):
    """An episode as a continue-watching or next-episode entry shows it."""

    id: uuid.UUID
    season_number: int
    number: int
    name: str
    runtime_minutes: int | None = None
    images: dict[str, object] = Field(default_factory=dict)


class ContinueWatchingItem(BaseModel):
    """A title to resume: what to play (the movie or an episode), how far it got, and what follows."""

    title: TitleSummary
    content_id: uuid.UUID = Field(description="what to start: the movie's title id or the episode id")
    episode: EpisodeRef | None = None
    position_seconds: float
    duration_seconds: float | None = None
    progress: float = Field(ge=0, le=100, description="percent of the duration watched")
    updated_at: datetime
    next_episode: EpisodeRef | None = Field(default=None, description="series: the episode after this one")


class ContinueWatching(BaseModel):
    """The active profile's unfinished titles, most recently watched first."""

    items: list[ContinueWatchingItem]


class HistoryItem(BaseModel):
    """A movie or episode the profile played (finished or not)."""

    title: TitleSummary
    content_id: uuid.UUID
    episode: EpisodeRef | None = None
    position_seconds: float
    duration_seconds: float | None = None
    progress: float = Field(ge=0, le=100)
    watched: bool
    updated_at: datetime


class NextEpisode(BaseModel):
    """The episode to play next."""

    title_id: uuid.UUID
    episode: EpisodeRef
    position_seconds: float = Field(default=0, description="where to resume it (0 = from the start)")
