"""Watching: positions (Redis first, Postgres at intervals), resume, continue watching, history, next episode.

Positions: each PUT is one Lua call on the (profile, content) hash (see shared.watch.buffer), which keeps
only writes newer in (session start, session id, sequence) order and says when the last flush is older
than POSITION_FLUSH_SECONDS; the write then goes to Postgres, ordered there by its Redis acceptance time
(`updated_at`), so a late or repeated flush never rewinds a newer row. A session's end flushes it
(`flush_session`, called by the streaming domain), and `flush_expired` (every-minute maintenance) writes
what sessions that stopped sending left in Redis. Postgres therefore holds every position older than a
flush interval plus a minute, and a Redis restart loses at most that.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.catalog.visibility import Viewer
from shared.errors import BadRequest, NotFound
from shared.http.pagination import InvalidCursor, Page, PageParams, encode_cursor
from shared.infra.redis import RedisUnavailable, get_redis
from shared.settings import Settings, get_settings
from shared.watch import buffer, repository
from shared.watch.buffer import Buffered
from shared.watch.schemas import (
    ContinueWatchingItem,
    EpisodeRef,
    HistoryItem,
    NextEpisode,
    PositionInput,
    PositionRead,
)

if TYPE_CHECKING:
    from shared.catalog.schemas import TitleSummary
    from shared.streaming.sessions import StreamSession

logger = logging.getLogger("cinema.watch")

Row = dict[str, Any]
ROW_SIZE = 20
_FLUSH_BATCH = 500
_FLUSH_MAX_BATCHES = 10  # 5,000 positions a run, well inside the cron's time; a backlog drains over runs
_META_TTL = 300.0
_META_MAX = 4096


class ProfileRequired(BadRequest):
    """Positions, continue watching and history belong to a viewer profile; the token carries none."""

    code = "profile_required"
    title = "Profile required"

    def __init__(self) -> None:
        super().__init__("Select a profile first (POST /api/v1/users/me/profiles/{id}/select).")


class SessionNotFound(NotFound):
    """No live stream session of the caller has this id (ended, expired or someone else's)."""

    code = "session_not_found"


class ContentNotFound(NotFound):
    """No movie, series or episode the caller may see has this id."""

    code = "content_not_found"


def _now() -> float:
    # Playback's one time source (shared.streaming.sessions.clock), so tests move every clock together.
    from shared.streaming.sessions import clock

    return clock()


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _resume(position: float) -> float | None:
    return position if position > 0 else None


def _progress(position: float, duration: float | None) -> float:
    if not duration or duration <= 0:
        return 0.0
    return round(min(100.0, max(0.0, position * 100.0 / duration)), 1)


def _db_row(found: Buffered) -> Row:
    return {
        "profile_id": found.profile_id,
        "title_id": found.title_id,
        "episode_id": found.episode_id,
        "content_id": found.content_id,
        "position_seconds": found.position_seconds,
        "duration_seconds": found.duration_seconds,
        "sequence": found.sequence,
        "watched": found.watched,
        "updated_at": _at(found.at_ms),
    }


# --- content facts (credits, duration): cached per instance so a position write stays one Redis call ----


@dataclass(frozen=True)
class _Meta:
    credits_start_seconds: float | None
    duration_seconds: float | None


_meta_cache: dict[tuple[str, str | None, str | None], tuple[float, _Meta]] = {}


async def _content_meta(session: StreamSession, *, now: float) -> _Meta:
    """Where the credits start and the asset's duration; a database hiccup only costs the credits rule."""
    key = (str(session.title_id), _str(session.episode_id), _str(session.asset_id))
    cached = _meta_cache.get(key)
    # `now` is playback's one clock (the write's time), for this cache too: moving time expires it.
    if cached is not None and cached[0] > now:
        return cached[1]
    from shared.infra.db import get_pool

    try:
        pool = await get_pool()
        async with pool.connection() as conn:
            row = await repository.content_meta(conn, title_id=key[0], episode_id=key[1], asset_id=key[2])
    except Exception:
        logger.warning("content facts unavailable; watched is judged on the duration only", exc_info=True)
        return _Meta(None, None)
    meta = _Meta(_float(row["credits_start_seconds"]), _float(row["duration_seconds"]))
    if len(_meta_cache) >= _META_MAX:
        _meta_cache.clear()
    _meta_cache[key] = (now + _META_TTL, meta)
    return meta


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


# --- positions ------------------------------------------------------------------------------------------


def owns(session: StreamSession, *, user_id: Any, profile_id: Any) -> bool:
    """Whether the caller (account and active profile) is the one playing the session."""
    return str(session.user_id) == str(user_id) and _str(session.profile_id) == _str(profile_id)


async def save_position(
    *,
    session: StreamSession,
    position: PositionInput,
    settings: Settings | None = None,
    now: float | None = None,
) -> PositionRead:
    """Keep the position if newer than the stored one (1 Redis call); write Postgres when a flush is due."""
    settings = settings or get_settings()
    if session.profile_id is None:
        raise ProfileRequired()
    at = _now() if now is None else now
    meta = await _content_meta(session, now=at)
    now_ms = _ms(at)
    profile_id, content_id = str(session.profile_id), str(session.content_id)
    recorded = await buffer.record(
        await get_redis(),
        profile_id=profile_id,
        content_id=content_id,
        title_id=str(session.title_id),
        episode_id=_str(session.episode_id),
        session_id=str(session.id),
        session_started_ms=_ms(session.started_at),
        sequence=position.sequence,
        position_seconds=position.position_seconds,
        duration_seconds=position.duration_seconds,
        credits_start_seconds=meta.credits_start_seconds,
        fallback_duration_seconds=meta.duration_seconds,
        watched_fraction=settings.watched_fraction,
        now_ms=now_ms,
        flush_ms=settings.position_flush_seconds * 1000,
    )
    if recorded.flush_due:
        await _flush_now(
            Buffered(
                profile_id=profile_id,
                content_id=content_id,
                title_id=str(session.title_id),
                episode_id=_str(session.episode_id),
                session_id=str(session.id),
                sequence=recorded.sequence,
                position_seconds=recorded.position_seconds,
                duration_seconds=recorded.duration_seconds,
                watched=recorded.watched,
                at_ms=recorded.at_ms,
                flushed_at_ms=recorded.at_ms,
            )
        )
    return PositionRead(
        session_id=uuid.UUID(str(session.id)),
        content_id=uuid.UUID(content_id),
        position_seconds=recorded.position_seconds,
        duration_seconds=recorded.duration_seconds,
        sequence=recorded.sequence,
        applied=recorded.order == 1,
        watched=recorded.watched,
    )


async def _flush_now(found: Buffered) -> None:
    """Write one position on a connection of its own (only when due, so a PUT usually touches no database).

    The position is already safe in Redis: a failure here is logged and the key goes back on the dirty set
    for the periodic flush, and the player still gets its 200.
    """
    from shared.infra.db import get_pool

    try:
        pool = await get_pool()
        async with pool.connection() as conn:  # commits on exit
            await repository.upsert_positions(conn, [_db_row(found)])
    except Exception:
        logger.warning("position flush failed; the periodic flush retries it", exc_info=True)
        try:
            await buffer.mark_dirty(await get_redis(), [found])
        except RedisUnavailable:
            logger.warning("could not re-mark the position dirty")


async def flush_session(conn: Any, *, session_id: str) -> None:
    """Write the session's buffered position to Postgres (in the caller's transaction) as it ends."""
    try:
        store = await get_redis()
        pair = await buffer.session_member(store, str(session_id))
        found = await buffer.get(store, *pair) if pair is not None else None
    except RedisUnavailable:
        logger.warning("session %s ended without its last position: Redis is unavailable", session_id)
        return
    if found is None:
        return  # the session never reported a position
    # Always written (a no-op when Postgres has it: the upsert keeps the newer acceptance time).
    await repository.upsert_positions(conn, [_db_row(found)])
    from shared.infra.db import after_commit

    async def mark() -> None:
        await buffer.mark_flushed(store, [found], now_ms=_ms(_now()))

    await after_commit(mark)


async def flush_expired(*, settings: Settings | None = None, now: float | None = None) -> int:
    """Write positions left in Redis for longer than the flush interval (sessions that stopped sending).

    For the every-minute maintenance; returns how many positions it wrote.
    """
    from shared.infra.db import get_pool

    settings = settings or get_settings()
    store = await get_redis()
    now_ms = _ms(_now() if now is None else now)
    cutoff = now_ms - settings.position_flush_seconds * 1000
    written = 0
    for _ in range(_FLUSH_MAX_BATCHES):
        pairs = await buffer.due(store, older_than_ms=cutoff, limit=_FLUSH_BATCH)
        if not pairs:
            break
        found = await buffer.fetch(store, pairs)
        rows = [item for item in found if item is not None]
        gone = [pair for pair, item in zip(pairs, found, strict=True) if item is None]
        await buffer.drop_dirty(store, gone)
        if rows:
            pool = await get_pool()
            async with pool.connection() as conn:  # commits on exit, before the keys are marked clean
                await repository.upsert_positions(conn, [_db_row(row) for row in rows])
            await buffer.mark_flushed(store, rows, now_ms=now_ms)
            written += len(rows)
        if len(pairs) < _FLUSH_BATCH:
            break
    return written


async def resume_position(conn: Any, *, profile_id: Any, content_id: Any) -> float | None:
    """Where this profile should resume this item: Redis first, then Postgres; None to start over."""
    if profile_id is None:
        return None
    try:
        found = await buffer.get(await get_redis(), str(profile_id), str(content_id))
    except RedisUnavailable:
        found = None  # Postgres still knows everything older than a flush interval
    if found is not None:
        return None if found.watched else _resume(found.position_seconds)
    row = await repository.position(conn, str(profile_id), str(content_id))
    if row is None or row["hidden_at"] is not None or row["watched"]:
        return None
    return _resume(float(row["position_seconds"]))


# --- continue watching, history, next episode -------------------------------------------------------------


def _profile_of(viewer: Viewer) -> uuid.UUID:
    if viewer.profile_id is None:
        raise ProfileRequired()
    return viewer.profile_id


def _episode(row: Row, prefix: str) -> EpisodeRef | None:
    if row.get(f"{prefix}id") is None:
        return None
    return EpisodeRef(
        id=row[f"{prefix}id"],
        season_number=row[f"{prefix}season_number"],
        number=row[f"{prefix}number"],
        name=row[f"{prefix}name"],
        runtime_minutes=row[f"{prefix}runtime_minutes"],
        images=row[f"{prefix}images"] or {},
    )


async def _cards(conn: Any, viewer: Viewer, rows: list[Row]) -> dict[uuid.UUID, TitleSummary]:
    from shared.catalog import service as catalog

    title_ids = list(dict.fromkeys(row["title_id"] for row in rows))
    cards = await catalog.summaries_by_ids(conn, viewer=viewer, title_ids=title_ids)
    return {card.id: card for card in cards}


async def continue_watching(
    conn: Any, *, viewer: Viewer, limit: int = ROW_SIZE
) -> list[ContinueWatchingItem]:
    """The active profile's titles to resume, most recently watched first (visible titles only)."""
    profile_id = _profile_of(viewer)
    rows = await repository.continue_watching(conn, viewer, profile_id, limit=limit)
    cards = await _cards(conn, viewer, rows)
    items: list[ContinueWatchingItem] = []
    for row in rows:
        card = cards.get(row["title_id"])
        if card is None:
            continue
        position, duration = float(row["position_seconds"]), _float(row["duration_seconds"])
        items.append(
            ContinueWatchingItem(
                title=card,
                content_id=row["content_id"],
                episode=_episode(row, "ep_"),
                position_seconds=position,
                duration_seconds=duration,
                progress=_progress(position, duration),
                updated_at=row["updated_at"],
                next_episode=_episode(row, "next_"),
            )
        )
    return items


async def continue_watching_titles(conn: Any, *, viewer: Viewer, limit: int = ROW_SIZE) -> list[TitleSummary]:
    """The catalog home row: the cards of continue_watching, in its order ([] without a profile)."""
    if viewer.profile_id is None:
        return []
    return [item.title for item in await continue_watching(conn, viewer=viewer, limit=limit)]


async def history(conn: Any, *, viewer: Viewer, page: PageParams) -> Page[HistoryItem]:
    """Every movie and episode the active profile played (not removed), most recent first."""
    profile_id = _profile_of(viewer)
    after: tuple[datetime, uuid.UUID] | None = None
    if page.after is not None:
        try:
            at, content_id = page.after
            after = (datetime.fromisoformat(at), uuid.UUID(str(content_id)))
        except (TypeError, ValueError, AttributeError) as error:
            raise InvalidCursor("The cursor is malformed; start again without one.") from error
    rows = await repository.history(conn, viewer, profile_id, after=after, limit=page.limit + 1)
    cards = await _cards(conn, viewer, rows)
    items: list[HistoryItem] = []
    for row in rows[: page.limit]:
        position, duration = float(row["position_seconds"]), _float(row["duration_seconds"])
        items.append(
            HistoryItem(
                title=cards[row["title_id"]],
                content_id=row["content_id"],
                episode=_episode(row, "ep_"),
                position_seconds=position,
                duration_seconds=duration,
                progress=100.0 if row["watched"] else _progress(position, duration),
                watched=row["watched"],
                updated_at=row["updated_at"],
            )
        )
    next_cursor = None
    if len(rows) > page.limit and items:
        next_cursor = encode_cursor([items[-1].updated_at.isoformat(), str(items[-1].content_id)])
    return Page[HistoryItem](items=items, next_cursor=next_cursor)


async def remove_from_history(
    conn: Any, *, viewer: Viewer, content_id: uuid.UUID, now: float | None = None
) -> None:
    """Hide a movie or episode (a series id: all its episodes) from history and continue watching.

    Its resume position goes too. Idempotent; playing it again brings it back.
    """
    profile_id = _profile_of(viewer)
    hidden = await repository.hide(conn, profile_id, content_id, at=_at(_ms(_now() if now is None else now)))
    if not hidden:
        return
    from shared.infra.db import after_commit

    async def forget() -> None:
        # After the commit: a buffered write older than the removal must not resurface (the upsert also
        # refuses to unhide with a write accepted before hidden_at).
        await buffer.forget(await get_redis(), [(str(profile_id), str(item)) for item in hidden])

    await after_commit(forget)


async def next_episode(conn: Any, *, viewer: Viewer, content_id: uuid.UUID) -> NextEpisode | None:
    """The episode after an episode; for a series the one to play now; None for a movie or the last one."""
    row = await repository.content(conn, viewer, content_id)
    if row is None:
        raise ContentNotFound("No such movie, series or episode.")
    title_id: uuid.UUID = row["title_id"]
    if row["episode_id"] is not None:
        episode = _episode(row, "next_")
    elif row["kind"] == "series":
        if viewer.profile_id is not None:
            found = await repository.continue_watching(
                conn, viewer, viewer.profile_id, limit=1, title_id=title_id
            )
            if found and found[0]["ep_id"] is not None:
                return NextEpisode(
                    title_id=title_id,
                    episode=_episode(found[0], "ep_"),  # type: ignore[arg-type]
                    position_seconds=float(found[0]["position_seconds"]),
                )
        first = await repository.first_episode(conn, title_id)
        episode = _episode(first, "") if first is not None else None
    else:
        episode = None
    if episode is None:
        return None
    position = await resume_position(conn, profile_id=viewer.profile_id, content_id=episode.id)
    return NextEpisode(title_id=title_id, episode=episode, position_seconds=position or 0.0)
