"""A started stream: its live state in Redis (one GET to read it) and ending it.

Redis layout (shared with shared.streaming.concurrency, which writes it atomically):
- `stream:session:<id>`  the StreamSession as JSON, TTL = STREAM_HEARTBEAT_TTL_SECONDS (each heartbeat
  renews it); its absence means the session ended or expired.
- `stream:user:<user_id>` a sorted set of the user's sessions (`<session id>|<device id>`) scored by their
  heartbeat expiry (unix seconds): the slots counted against the plan's stream limit.
The Postgres row (stream_sessions) is the record for history and analytics, not the live state.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from shared.infra.redis import get_redis

if TYPE_CHECKING:
    from psycopg import AsyncConnection

logger = logging.getLogger("cinema.streaming")

DeviceClass = Literal["web", "mobile", "tv"]
EndReason = Literal["stopped", "expired", "evicted", "revoked"]

SESSION_KEY = "stream:session:{}"
USER_KEY = "stream:user:{}"


def clock() -> float:
    """Now, in unix seconds: the one time source of playback (tests move it instead of sleeping)."""
    return time.time()


@dataclass(frozen=True)
class StreamSession:
    """A live stream: who plays what, where, and within which limits."""

    id: str
    user_id: str
    profile_id: str | None
    device_id: str
    device_class: DeviceClass
    title_id: str
    episode_id: str | None
    content_id: str
    asset_id: str
    max_height: int  # already capped by the plan AND the device class
    ads: bool
    country: str | None
    entitlement_id: str | None
    started_at: float
    expires_at: float  # heartbeat expiry
    device_name: str | None = None
    auth_session_id: str | None = None  # the login session it was started from (sign-out ends keys)
    recorded_at: float = 0.0  # when playback quality last reached Postgres (heartbeats write every ~60 s)
    # When the entitlement stops allowing playback (a rental's window, a pass's end; None: open): no
    # heartbeat, token or key reaches past it.
    valid_until: float | None = None
    # The title's access model at the start: each heartbeat re-checks the entitlement without Postgres.
    access: str | None = None
    min_tier: int | None = None

    @property
    def member(self) -> str:
        """The session's member in the user's sorted set (the device rides along: one stream per device)."""
        return f"{self.id}|{self.device_id}"

    @property
    def key(self) -> str:
        """The Redis key of the JSON blob."""
        return SESSION_KEY.format(self.id)

    @property
    def user_key(self) -> str:
        """The Redis key of the user's slots."""
        return USER_KEY.format(self.user_id)

    def to_json(self) -> str:
        """Compact JSON for Redis."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> StreamSession:
        """Back from Redis (unknown fields, written by a newer version, are ignored)."""
        data = json.loads(text)
        known = {field.name for field in fields(cls)}
        return cls(**{name: value for name, value in data.items() if name in known})


def session_of_member(member: str) -> str:
    """The session id of a sorted-set member."""
    return member.partition("|")[0]


def live_from_blob(text: str | None, now: float) -> StreamSession | None:
    """The session stored in a blob when it is still live at `now` (None: no blob, or its expiry passed).

    The one reading of a blob: get_live_session, the stream-limit lists, end_session and the manifest
    caller (shared.delivery.caller) all judge liveness here.
    """
    if text is None:
        return None
    session = StreamSession.from_json(text)
    # The key's TTL ends it in real time; comparing with the clock too keeps one notion of time.
    return session if session.expires_at > now else None


async def get_live_session(session_id: str, *, now: float | None = None) -> StreamSession | None:
    """The live session (ONE Redis GET), or None when it ended or its heartbeat expired."""
    store = await get_redis()
    return live_from_blob(await store.get(SESSION_KEY.format(session_id)), clock() if now is None else now)


async def end_session(
    conn: AsyncConnection[Any], *, session_id: str, reason: EndReason, now: float | None = None
) -> None:
    """THE ending path: free the slot, drop the live state, close the record, flush the buffered position.

    A session whose heartbeat already lapsed is recorded as `expired`, whatever the reason asked for.
    Idempotent: a record already closed keeps its first end.
    """
    from shared.streaming import concurrency

    at = clock() if now is None else now
    store = await get_redis()
    text = await store.get(SESSION_KEY.format(session_id))
    live = live_from_blob(text, at)
    if text is not None:
        # Even a lapsed blob (its TTL not yet run out) holds a slot member: free both now.
        await concurrency.release(StreamSession.from_json(text))
    await close_records(
        conn, session_ids=[session_id], reason=reason if live is not None else "expired", now=at
    )


async def close_records(
    conn: AsyncConnection[Any], *, session_ids: list[str], reason: EndReason, now: float
) -> None:
    """Close the records of streams already out of Redis and flush their buffered positions."""
    from shared.streaming import repository

    await repository.end_sessions(
        conn, session_ids=session_ids, reason=reason, at=datetime.fromtimestamp(now, UTC)
    )
    for session_id in session_ids:
        await _flush_position(conn, session_id=session_id)


async def _flush_position(conn: AsyncConnection[Any], *, session_id: str) -> None:
    """Hand the session's buffered position to Postgres (the watch domain owns positions)."""
    from shared.watch import service as watch

    await watch.flush_session(conn, session_id=session_id)
