"""Request and response shapes of stream sessions (/api/v1/streaming/sessions...)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.streaming.sessions import StreamSession

_FORBID = ConfigDict(extra="forbid")

# A client-chosen id, stable per device (per browser for the web): printable, no spaces, no '|'.
DeviceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
DeviceName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class StartRequest(BaseModel):
    """Start playback of a movie (its title id) or an episode (its id) on a device."""

    model_config = _FORBID

    content_id: uuid.UUID = Field(description="A movie's title id or an episode's id")
    device_id: DeviceId = Field(description="Stable per device; a new start from it replaces its stream")
    device_name: DeviceName | None = Field(default=None, description="Shown in the list of active devices")
    device_class: Literal["web", "mobile", "tv"] = Field(
        default="web", description="Caps the quality: mobile at 1080p, web and tv at the plan's maximum"
    )


class Manifests(BaseModel):
    """Per-session master manifests (paths under the API; they answer with signed media URLs)."""

    hls: str
    dash: str


class AudioTrackOut(BaseModel):
    """An audio rendition (also in the manifests)."""

    name: str
    language: str | None
    label: str | None
    default: bool
    codecs: str


class SubtitleTrackOut(BaseModel):
    """A subtitle track; `url` is its signed HLS subtitle playlist (also in the manifests)."""

    language: str
    label: str
    forced: bool = Field(description="Shown without the viewer choosing subtitles (foreign dialogue)")
    sdh: bool
    url: str


class ThumbnailsOut(BaseModel):
    """The storyboard thumbnails track (WebVTT with `sprite.jpg#xywh=` cues), signed."""

    url: str
    tile_width: int | None = None
    tile_height: int | None = None
    interval_seconds: float | None = None


class StartResponse(BaseModel):
    """A started session: where to fetch the stream and how to keep it alive."""

    session_id: uuid.UUID
    content_id: uuid.UUID
    title_id: uuid.UUID
    episode_id: uuid.UUID | None
    manifests: Manifests
    resume_position: float | None = Field(description="Seconds to resume at (None: from the start)")
    duration_seconds: float | None
    audio_tracks: list[AudioTrackOut]
    subtitle_tracks: list[SubtitleTrackOut]
    thumbnails: ThumbnailsOut | None
    ads: bool = Field(description="Whether ads apply to this stream")
    entitlement: str = Field(description="What allows it: free, subscription, rental, purchase or ppv")
    max_height: int = Field(description="Highest rendition height this stream may use (plan and device)")
    expires_at: datetime = Field(description="The session ends unless a heartbeat comes before")
    heartbeat_seconds: int = Field(description="Suggested interval between heartbeats")
    delivery_token: str = Field(description="The token in the media URLs' /t/<token>/ path segment")
    token_expires_at: datetime


class HeartbeatRequest(BaseModel):
    """Optional playback quality, kept for analytics (the last values every ~60 s)."""

    model_config = _FORBID

    bitrate: int | None = Field(default=None, ge=0, le=1_000_000_000, description="Current bits/s")
    height: int | None = Field(default=None, ge=0, le=4320, description="Current rendition height")
    buffering_ms: int | None = Field(default=None, ge=0, le=86_400_000, description="Stalled since last beat")
    rebuffer_count: int | None = Field(default=None, ge=0, le=100_000)
    dropped_frames: int | None = Field(default=None, ge=0, le=100_000_000)

    def playback(self) -> dict[str, Any]:
        """The reported fields (unset ones left out)."""
        return self.model_dump(exclude_none=True)


class HeartbeatResponse(BaseModel):
    """The renewed session: a fresh delivery token to swap into the media URLs' /t/<token>/ segment."""

    session_id: uuid.UUID
    expires_at: datetime
    delivery_token: str
    token_expires_at: datetime


class ActiveSession(BaseModel):
    """A live stream of the account (to end one at the stream limit).

    What plays is shown only for the caller's own profile: another profile's stream is a device.
    """

    session_id: uuid.UUID
    device_id: str
    device_name: str | None
    device_class: str
    this_profile: bool = Field(description="Started by the caller's active profile (else: content hidden)")
    content_id: uuid.UUID | None
    title_id: uuid.UUID | None
    episode_id: uuid.UUID | None
    started_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, session: StreamSession, *, profile_id: str | None) -> ActiveSession:
        """From the live state, as the profile `profile_id` of the account may see it."""
        mine = profile_id is not None and session.profile_id == profile_id
        return cls(
            session_id=uuid.UUID(session.id),
            device_id=session.device_id,
            device_name=session.device_name,
            device_class=session.device_class,
            this_profile=mine,
            content_id=uuid.UUID(session.content_id) if mine else None,
            title_id=uuid.UUID(session.title_id) if mine else None,
            episode_id=uuid.UUID(session.episode_id) if mine and session.episode_id else None,
            started_at=_when(session.started_at),
            expires_at=_when(session.expires_at),
        )
