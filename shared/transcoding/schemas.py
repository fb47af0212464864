"""Transcode job shapes: the request to queue one, and the job as content managers see it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobState = Literal["queued", "probing", "encoding", "packaging", "publishing", "ready", "failed", "cancelled"]
FINISHED_STATES: tuple[str, ...] = ("ready", "failed", "cancelled")
# Named priorities of the API, mapped onto the numeric -10..10 scale.
NAMED_PRIORITIES: dict[str, int] = {"low": -5, "normal": 0, "high": 5}


class TranscodeOptions(BaseModel):
    """Per-job encoding choices; omitted means the settings' defaults."""

    model_config = ConfigDict(extra="forbid")

    hevc: bool | None = Field(default=None, description="Add HEVC rungs (>= 1080p only)")
    max_height: int | None = Field(default=None, ge=144, le=4320, description="Cap the ladder's top rung")

    def as_stored(self) -> dict[str, Any]:
        """The jsonb of transcode_jobs.options: only what was given, so equal requests compare equal."""
        return self.model_dump(exclude_none=True)


class TranscodeJobCreate(BaseModel):
    """Queue a transcode (or a re-encode) of an uploaded source."""

    model_config = ConfigDict(extra="forbid")

    source_id: uuid.UUID
    priority: Annotated[int, Field(ge=-10, le=10)] | Literal["low", "normal", "high"] = Field(
        default=0, description="-10 (lowest) .. 10 (highest), or low | normal | high"
    )
    options: TranscodeOptions = Field(default_factory=TranscodeOptions)

    def numeric_priority(self) -> int:
        """The priority on the -10..10 scale (named ones mapped)."""
        if isinstance(self.priority, str):
            return NAMED_PRIORITIES[self.priority]
        return self.priority


class JobEventOut(BaseModel):
    """One entry of a job's history."""

    at: datetime
    state: str
    message: str


class AssetSummary(BaseModel):
    """The asset a job produces; manifests are storage keys under the asset's prefix."""

    id: uuid.UUID
    state: str
    hls_master: str | None = None
    dash_manifest: str | None = None


class TranscodeJobOut(BaseModel):
    """A transcode job: where it is, how far, and why it failed when it did."""

    id: uuid.UUID
    source_id: uuid.UUID
    title_id: uuid.UUID
    episode_id: uuid.UUID | None = None
    purpose: str = "main"
    reason: Literal["upload", "reencode"]
    priority: int
    state: JobState
    progress: float = Field(description="0..100 over the whole job")
    eta_seconds: int | None = None
    stage_detail: str | None = None
    renditions_done: list[str] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)
    attempts: int
    failure_code: str | None = None
    failure_reason: str | None = None
    dead_lettered: bool = False
    cancel_requested: bool = False
    created_by: uuid.UUID | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    asset: AssetSummary | None = None
    history: list[JobEventOut] = Field(default_factory=list)
