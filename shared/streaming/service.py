"""Starting, keeping alive, listing and ending stream sessions.

A start checks, in this order, each refusal with its own problem code:
1. `content_not_found` (404: no such movie/episode, deleted, unpublished) or `not_available` (403: outside
   its availability window everywhere) — the catalog's visibility rule;
2. `geo_blocked` (403): hidden from the viewer's country (or the country is unknown and
   UNKNOWN_COUNTRY_POLICY=deny) but visible from another;
3. `maturity_restricted` (403): above the active profile's maturity level;
4. `not_entitled` / `rental_expired` (403, with `offers`): shared.entitlements;
5. `stream_limit_reached` (409, with `active_sessions` and `max_streams`): the plan's concurrent streams;
6. `not_playable_yet` (409): no playable asset (still transcoding, or none uploaded).
Refusals 4-6 also say which title the content belongs to (`title_id`: the series of an episode), so a
client can name it and show its prices.
Quality is capped by the plan and the device class: mobile devices at 1080p (DEVICE_MAX_HEIGHT), web and
tv at the plan's maximum. Starts are rate limited per account (STARTS: `rate_limited`, 429).

A session belongs to the profile AND the login that started it: heartbeats from another profile or login
of the account, like anyone else's, get `session_not_found`. Each heartbeat re-checks the entitlement (a
warm check is one Redis MGET) and ends the stream when it is gone; no session, delivery token or renewal
reaches past the entitlement's end (Decision.valid_until, kept in the session).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.catalog.visibility import MAX_RANK, Viewer
from shared.entitlements.schemas import Offer
from shared.errors import BadRequest, Conflict, Forbidden, NotFound
from shared.infra.ratelimit import Limit, enforce
from shared.streaming import concurrency, geo, repository
from shared.streaming.schemas import (
    ActiveSession,
    AudioTrackOut,
    HeartbeatRequest,
    HeartbeatResponse,
    Manifests,
    StartRequest,
    StartResponse,
    SubtitleTrackOut,
    ThumbnailsOut,
)
from shared.streaming.sessions import EndReason, StreamSession, close_records, end_session, get_live_session

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from shared.entitlements.schemas import Decision
    from shared.settings import Settings

logger = logging.getLogger("cinema.streaming")

API_BASE = "/api/v1/streaming"
DEVICE_MAX_HEIGHT = {"mobile": 1080}  # web and tv: the plan's maximum
RECORD_SECONDS = 60  # heartbeats write playback quality to Postgres at most this often
# Starts per account: a player starts a stream per title or episode (a binge, zapping between titles);
# 30 a minute is far above a household's use and stops a script from churning sessions and records.
STARTS = Limit(30, 60)
# Past this (after the heartbeat expiry and the lag of the recorded heartbeat time) a record still open
# belongs to a player that vanished: close_expired_sessions closes it.
EXPIRED_MARGIN_SECONDS = RECORD_SECONDS
_CLOSE_BATCH = 500
_CLOSE_MAX_BATCHES = 10


@dataclass(frozen=True)
class Caller:
    """Who starts or manages a stream: the account, its active profile and its login session."""

    user_id: uuid.UUID
    profile_id: uuid.UUID | None
    auth_session_id: str | None

    def owns(self, session: StreamSession) -> bool:
        """The session was started by this account's active profile, from this login (when both known)."""
        if session.user_id != str(self.user_id) or session.profile_id != _str(self.profile_id):
            return False
        # A sign-out kills its login's tokens; another login of the account must not keep its streams.
        return not (self.auth_session_id and session.auth_session_id) or (
            self.auth_session_id == session.auth_session_id
        )


@dataclass
class StartGuard:
    """The slot a start took, released by the route when the request's transaction does not commit."""

    session: StreamSession | None = field(default=None)

    async def release(self) -> None:
        """Free the slot now (the record never reached Postgres) rather than at the heartbeat expiry."""
        if self.session is None:
            return
        try:
            await concurrency.release(self.session)
        except Exception:  # the original error matters more; the slot then frees at its expiry
            logger.warning("could not free the slot of a failed start", exc_info=True)


def _str(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def _at(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


# --- start --------------------------------------------------------------------------------------------


async def start_session(
    conn: AsyncConnection[Any],
    *,
    caller: Caller,
    viewer: Viewer,
    data: StartRequest,
    settings: Settings,
    now: float,
    guard: StartGuard | None = None,
) -> StartResponse:
    """Run the checks of the module docstring, take a stream slot and describe the stream.

    The slot is taken in Redis before the request's transaction commits: the caller releases it
    (`guard.release()`) when that transaction fails (the route does, see routes.start_session).
    """
    from shared.entitlements.service import decide, mark_first_play

    if caller.profile_id is None:
        raise BadRequest(
            "Choose a viewer profile first (POST /api/v1/users/me/profiles/{id}/select).",
            code="profile_required",
        )
    await enforce(rules=[STARTS.rule(f"stream_start:{caller.user_id}")])
    at = _at(now)
    # Playback never uses the staff view of the catalog: a manager plays what a viewer could.
    as_viewer = replace(viewer, at=at, manager=False)
    row = await _visible_content(conn, content_id=data.content_id, viewer=as_viewer, settings=settings)
    title = {"id": row["title_id"], "access": row["access"], "min_tier": row["min_tier"]}
    decision = await decide(conn, user_id=caller.user_id, title=title, at=at, settings=settings)
    if not decision.allowed:
        offers = await _offers_on_sale(conn, title_id=row["title_id"], offers=decision.offers)
        message = _REFUSED.get(decision.code or "", _REFUSED["not_entitled"])
        if decision.code == "not_entitled" and row["access"] == "transactional":
            message = "This title is not part of any plan: rent or buy it to watch."
        raise Forbidden(message, code=decision.code, offers=offers, title_id=str(row["title_id"]))
    session = _new_session(
        caller, row=row, data=data, decision=decision, country=viewer.country, settings=settings, now=now
    )
    ttl = settings.stream_heartbeat_ttl_seconds
    if row["asset_id"] is None:
        # The limit is reported first (the order of the checks), without taking a slot.
        check = await concurrency.claim(
            session, limit=decision.max_streams, ttl=ttl, now=now, check_only=True
        )
        if not check.ok:
            limit = decision.max_streams
            raise await _limit_reached(check.active, caller=caller, limit=limit, now=now, row=row)
        raise Conflict(
            "This title cannot be played yet; try again later.",
            code="not_playable_yet",
            title_id=str(row["title_id"]),
        )
    await repository.insert_session(conn, session=session, started_at=at)
    if decision.first_play and decision.entitlement_id:
        await mark_first_play(conn, decision.entitlement_id, at=at)
    # Last: the slot. A refusal raises, and the request's rollback drops the record written above.
    claim = await concurrency.claim(session, limit=decision.max_streams, ttl=ttl, now=now)
    if not claim.ok:
        raise await _limit_reached(claim.active, caller=caller, limit=decision.max_streams, now=now, row=row)
    if guard is not None:
        guard.session = session  # from here on, a failure (up to the commit) must free the slot
    await close_records(conn, session_ids=claim.expired, reason="expired", now=now)
    await close_records(conn, session_ids=claim.replaced, reason="stopped", now=now)
    resume = await _resume_position(conn, profile_id=caller.profile_id, content_id=session.content_id)
    return _started(session, row=row, decision=decision, resume=resume, settings=settings, now=now)


async def _offers_on_sale(
    conn: AsyncConnection[Any], *, title_id: uuid.UUID, offers: list[Offer]
) -> list[Offer]:
    """The refusal's offers less a rental or purchase the title is not sold as (a refusal only: one query)."""
    from shared.plans.service import sold_as

    sold = await sold_as(conn, title_id=title_id)
    wanted = {"rent": "rental", "buy": "purchase"}
    return [offer for offer in offers if offer not in wanted or wanted[offer] in sold]


_REFUSED = {
    "not_entitled": "Your plan does not include this title.",
    "rental_expired": "Your rental of this title has expired.",
}


async def _visible_content(
    conn: AsyncConnection[Any], *, content_id: uuid.UUID, viewer: Viewer, settings: Settings
) -> dict[str, Any]:
    """The content row when the viewer may watch it here, else the first refusal of checks 1-3."""
    any_rank = replace(viewer, max_rank=MAX_RANK)
    row = await repository.content(conn, content_id=content_id, viewer=viewer, any_rank=any_rank)
    if row is None or (row["kind"] == "series" and row["episode_id"] is None):
        raise NotFound("No such movie or episode.", code="content_not_found")
    if not row["visible_any_rank"]:
        # Not visible here: visible from a country the title admits (then only geography stands in the
        # way), or not at all (unpublished, outside its window).
        witness = geo.witness_country(row["country_allow"], row["country_deny"])
        elsewhere = witness is not None and await repository.visible_to(
            conn, title_id=row["title_id"], viewer=replace(any_rank, country=witness)
        )
        if not elsewhere:
            if row["status"] in ("published", "scheduled"):
                raise Forbidden("This title is not available at the moment.", code="not_available")
            raise NotFound("No such movie or episode.", code="content_not_found")
        raise Forbidden("This title is not available in your country.", code="geo_blocked")
    if geo.unknown_country_refused(viewer.country, settings):
        raise Forbidden(
            "Your country could not be determined, so playback is not allowed.", code="geo_blocked"
        )
    if not row["visible"]:
        raise Forbidden("This title is above the maturity level of your profile.", code="maturity_restricted")
    return row


def _new_session(
    caller: Caller,
    *,
    row: dict[str, Any],
    data: StartRequest,
    decision: Decision,
    country: str | None,
    settings: Settings,
    now: float,
) -> StreamSession:
    cap = DEVICE_MAX_HEIGHT.get(data.device_class)
    valid_until = decision.valid_until.timestamp() if decision.valid_until else None
    return StreamSession(
        id=str(uuid.uuid4()),
        user_id=str(caller.user_id),
        profile_id=str(caller.profile_id) if caller.profile_id else None,
        device_id=data.device_id,
        device_class=data.device_class,
        title_id=str(row["title_id"]),
        episode_id=str(row["episode_id"]) if row["episode_id"] else None,
        content_id=str(data.content_id),
        asset_id=str(row["asset_id"] or uuid.UUID(int=0)),
        max_height=min(decision.max_height, cap) if cap else decision.max_height,
        ads=decision.ads,
        country=country,
        entitlement_id=decision.entitlement_id,
        started_at=now,
        expires_at=_capped(now + settings.stream_heartbeat_ttl_seconds, valid_until),
        device_name=data.device_name,
        auth_session_id=caller.auth_session_id,
        recorded_at=now,
        valid_until=valid_until,
        access=str(row["access"]),
        min_tier=int(row["min_tier"]),
    )


def _capped(expiry: float, valid_until: float | None) -> float:
    """An expiry that never passes the entitlement's end."""
    return expiry if valid_until is None else min(expiry, valid_until)


async def _limit_reached(
    active_ids: list[str], *, caller: Caller, limit: int, now: float, row: dict[str, Any]
) -> Conflict:
    active = await concurrency.sessions_by_id(active_ids, now=now)
    return Conflict(
        f"Your plan allows {limit} stream(s) at a time; end one of the active streams to start this one.",
        code="stream_limit_reached",
        title_id=str(row["title_id"]),
        max_streams=limit,
        active_sessions=[
            ActiveSession.of(session, profile_id=_str(caller.profile_id)).model_dump(mode="json")
            for session in active
        ],
    )


def _token(settings: Settings, session: StreamSession, now: float) -> tuple[str, int]:
    """A delivery token for the session, expiring at STREAM_TOKEN_TTL_SECONDS or the entitlement's end."""
    from shared.delivery.tokens import session_token

    return session_token(settings, session=session, now=_token_now(settings, session, now))


def _signed_base(settings: Settings, session: StreamSession, now: float) -> str:
    """`{media_base_url}/t/{token}/` with the same token as _token (deterministic for the same inputs)."""
    from shared.delivery.tokens import signed_base

    return signed_base(settings, session=session, now=_token_now(settings, session, now))


def _token_now(settings: Settings, session: StreamSession, now: float) -> int:
    # The tokens module signs for now + STREAM_TOKEN_TTL_SECONDS: signing "as of" an earlier instant makes
    # the token expire at the entitlement's end instead, never after it.
    if session.valid_until is None:
        return int(now)
    return min(int(now), int(session.valid_until) - settings.stream_token_ttl_seconds)


def _started(
    session: StreamSession,
    *,
    row: dict[str, Any],
    decision: Decision,
    resume: float | None,
    settings: Settings,
    now: float,
) -> StartResponse:
    token, token_expires_at = _token(settings, session, now)
    # Storage keys appended to this are signed URLs (the token opens the asset's prefix only).
    signed = _signed_base(settings, session, now)
    prefix = str(row["storage_prefix"])
    manifest = f"{API_BASE}/{session.content_id}/manifest?session={session.id}&format="
    images = row["images"] or {}
    thumbnails = None
    if images.get("thumbnails_vtt"):
        thumbnails = ThumbnailsOut(
            url=signed + str(images["thumbnails_vtt"]),
            tile_width=images.get("tile_width"),
            tile_height=images.get("tile_height"),
            interval_seconds=images.get("interval_seconds"),
        )
    return StartResponse(
        session_id=uuid.UUID(session.id),
        content_id=uuid.UUID(session.content_id),
        title_id=uuid.UUID(session.title_id),
        episode_id=uuid.UUID(session.episode_id) if session.episode_id else None,
        manifests=Manifests(hls=manifest + "hls", dash=manifest + "dash"),
        resume_position=resume,
        duration_seconds=row["duration_seconds"],
        audio_tracks=[AudioTrackOut.model_validate(track) for track in row["audio"]],
        subtitle_tracks=_subtitles(row["subtitles"], base=signed + prefix),
        thumbnails=thumbnails,
        ads=session.ads,
        entitlement=decision.kind or "free",
        max_height=session.max_height,
        expires_at=_at(session.expires_at),
        heartbeat_seconds=_heartbeat_interval(settings),
        delivery_token=token,
        token_expires_at=_at(token_expires_at),
    )


def _subtitles(tracks: list[dict[str, Any]], *, base: str) -> list[SubtitleTrackOut]:
    """Each track with its signed HLS subtitle playlist, named as the packager names it."""
    from pathlib import Path

    from shared.transcoding.pipeline.manifests import subtitle_stems
    from shared.transcoding.pipeline.model import SubtitleTrack

    stems = subtitle_stems(
        [SubtitleTrack(t["language"], t["label"], t["forced"], t["sdh"], vtt_path=Path()) for t in tracks]
    )
    return [
        SubtitleTrackOut(
            language=track["language"],
            label=track["label"],
            forced=track["forced"],
            sdh=track["sdh"],
            url=f"{base}hls/subtitles/{stem}.m3u8",
        )
        for track, stem in zip(tracks, stems, strict=True)
    ]


def _heartbeat_interval(settings: Settings) -> int:
    # A third of the expiry: two beats may be lost before the slot is freed.
    return max(5, settings.stream_heartbeat_ttl_seconds // 3)


# --- heartbeat, list, end -----------------------------------------------------------------------------


async def heartbeat(
    *, caller: Caller, session_id: uuid.UUID, data: HeartbeatRequest, settings: Settings, now: float
) -> HeartbeatResponse:
    """Re-check the entitlement, keep the session alive, hand out a fresh token.

    Warm cost: 3 Redis calls (the session, the cached entitlement, the renewal); Postgres at most every
    RECORD_SECONDS (playback quality), or on a cache miss of the entitlement.
    """
    session = await get_live_session(str(session_id), now=now)
    if session is None or not caller.owns(session):
        raise await _not_live(caller, session_id=session_id, live=session is not None)
    decision = await _recheck(session, settings=settings, now=now)
    valid_until = decision.valid_until.timestamp() if decision.valid_until else None
    if decision.first_play and session.valid_until is not None and valid_until is not None:
        # A cached answer from before this stream's first play: the window started with the stream.
        valid_until = min(valid_until, session.valid_until)
    record = now - session.recorded_at >= RECORD_SECONDS
    renewed = replace(
        session,
        expires_at=_capped(now + settings.stream_heartbeat_ttl_seconds, valid_until),
        recorded_at=now if record else session.recorded_at,
        valid_until=valid_until,
    )
    if not await concurrency.renew(renewed, ttl=settings.stream_heartbeat_ttl_seconds, now=now):
        raise _ended()
    if record:
        await _record_playback(session_id=session.id, at=_at(now), playback=data.playback())
    token, token_expires_at = _token(settings, renewed, now)
    return HeartbeatResponse(
        session_id=session_id,
        expires_at=_at(renewed.expires_at),
        delivery_token=token,
        token_expires_at=_at(token_expires_at),
    )


async def _recheck(session: StreamSession, *, settings: Settings, now: float) -> Decision:
    """The entitlement decision now; when it is gone, the session ends and the refusal is raised."""
    from shared.entitlements.service import decide
    from shared.infra.db import standalone

    title: dict[str, Any] | None = None
    if session.access is not None and session.min_tier is not None:
        title = {"id": session.title_id, "access": session.access, "min_tier": session.min_tier}
    else:  # a session started by an older version: read the title's access model once
        async with standalone() as conn:
            title = await repository.title_access(conn, title_id=session.title_id)
    decision = (
        await decide(None, user_id=session.user_id, title=title, at=_at(now), settings=settings)
        if title is not None
        else None
    )
    if decision is not None and decision.allowed:
        return decision
    async with standalone() as conn:
        await end_session(conn, session_id=session.id, reason="revoked", now=now)
    code = decision.code if decision is not None and decision.code else "not_entitled"
    raise Forbidden(
        _REFUSED.get(code, _REFUSED["not_entitled"]),
        code=code,
        offers=decision.offers if decision is not None else [],
    )


async def _not_live(caller: Caller, *, session_id: uuid.UUID, live: bool) -> NotFound:
    """`session_ended` for the caller's own ended session; `session_not_found` for anything else.

    A session of another account, profile or login answers the same whether it is live or ended, so a
    heartbeat never tells whether someone else's session exists (the record is read in both cases: the
    same work, the same time).
    """
    from shared.infra.db import standalone

    async with standalone() as conn:
        owner = await repository.session_owner(conn, session_id=session_id)
    # The record does not know the login: within one profile an ended session may be named.
    mine = (caller.user_id, caller.profile_id)
    if not live and owner is not None and (owner["user_id"], owner["profile_id"]) == mine:
        return _ended()
    return NotFound("No such stream session.", code="session_not_found")


def _ended() -> NotFound:
    return NotFound("This stream session has ended; start playback again.", code="session_ended")


async def _record_playback(*, session_id: str, at: datetime, playback: dict[str, Any]) -> None:
    """Best effort, in a transaction of its own: heartbeats open no request transaction."""
    from shared.infra.db import standalone

    try:
        async with standalone() as conn:
            await repository.record_playback(conn, session_id=session_id, at=at, playback=playback)
    except Exception:  # analytics must never fail a heartbeat
        logger.warning("playback quality not recorded", exc_info=True, extra={"session_id": session_id})


async def list_sessions(*, caller: Caller, now: float) -> list[ActiveSession]:
    """The account's live streams, oldest first; what plays is shown for the caller's profile only."""
    active = await concurrency.active_sessions(str(caller.user_id), now=now)
    return [ActiveSession.of(session, profile_id=_str(caller.profile_id)) for session in active]


async def stop_session(
    conn: AsyncConnection[Any],
    *,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    device_id: str | None,
    now: float,
) -> None:
    """End a stream of the account: its own device stops it, another device evicts it (idempotent).

    Any profile of the account may end any of its streams: at the stream limit the household frees a slot.
    """
    session = await get_live_session(str(session_id), now=float("-inf"))  # lapsed ones too
    if session is not None:
        owner: Any = session.user_id
    else:  # gone from Redis (expired or ended): the record says whose it was
        row = await repository.session_owner(conn, session_id=session_id)
        owner = None if row is None else str(row["user_id"])
    if owner != str(user_id):
        raise NotFound("No such stream session.", code="session_not_found")
    evicted = session is not None and device_id is not None and device_id != session.device_id
    reason: EndReason = "evicted" if evicted else "stopped"
    await end_session(conn, session_id=str(session_id), reason=reason, now=now)


async def close_expired_sessions(*, settings: Settings, now: float | None = None) -> int:
    """Close the records of streams whose player vanished (no heartbeat, no stop); how many were closed.

    For the every-minute maintenance. A record still open whose last recorded heartbeat is older than the
    heartbeat expiry plus EXPIRED_MARGIN_SECONDS, and whose session is no longer live in Redis, gets
    ended_at (the latest instant it could have been alive) and end_reason 'expired'. Their buffered
    positions are flushed by shared.watch.service.flush_expired in the same maintenance run.
    """
    from shared.infra.db import standalone
    from shared.infra.redis import RedisUnavailable, get_redis
    from shared.streaming.sessions import SESSION_KEY, clock, live_from_blob

    at = clock() if now is None else now
    ttl = settings.stream_heartbeat_ttl_seconds
    before = _at(at - ttl - EXPIRED_MARGIN_SECONDS)
    closed = 0
    after: str | None = None
    for _ in range(_CLOSE_MAX_BATCHES):
        async with standalone() as conn:
            ids = await repository.lapsed_open_sessions(conn, before=before, after=after, limit=_CLOSE_BATCH)
            if not ids:
                break
            after = ids[-1]
            try:
                blobs = await (await get_redis()).mget(*(SESSION_KEY.format(i) for i in ids))
            except RedisUnavailable:
                # Whether they still play cannot be told: leave them to the next run.
                logger.warning("stream records not closed: Redis is unavailable")
                break
            gone = [i for i, blob in zip(ids, blobs, strict=True) if live_from_blob(blob, at) is None]
            closed += await repository.close_lapsed(
                conn, session_ids=gone, lapse_seconds=ttl + RECORD_SECONDS, at=_at(at)
            )
        if len(ids) < _CLOSE_BATCH:
            break
    return closed


async def _resume_position(
    conn: AsyncConnection[Any], *, profile_id: uuid.UUID, content_id: str
) -> float | None:
    from shared.watch import service as watch

    return await watch.resume_position(conn, profile_id=profile_id, content_id=content_id)
