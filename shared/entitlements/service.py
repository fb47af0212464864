"""Whether a user may play a title now, and with which limits: the interface commerce plugs into.

Commerce (plans, rentals, purchases, pay-per-view) calls the functions of this module, never the table:
- `grant(conn, user_id=, kind=, ..., source=, source_ref=)` when something is bought or a plan starts or
  changes (idempotent on `source`/`source_ref`, the provider's id, so a replayed webhook is harmless);
- `revoke(conn, source=, source_ref=)` on a refund, a cancellation that ends access, a chargeback;
- `extend(conn, source=, source_ref=, ends_at=)` on a renewal (or to shorten: a new end).
Each runs in the caller's transaction (a request's Tx, or shared.infra.db.standalone() in a worker) and
itself registers `invalidate(user_id)` to run AFTER that transaction commits, so no cached answer
outlives the change by more than a Redis round trip (ENTITLEMENT_CACHE_SECONDS if Redis was down).

Rules, per title access model (catalog_titles.access):
- free: anyone; free_with_ads: anyone, with ads unless an ad-free entitlement applies;
- subscription: a subscription with tier >= min_tier, or a rental/purchase/ppv of the title;
- transactional: a rental, purchase or ppv of the title only.
An entitlement counts from `starts_at` until `ends_at`; a rental must be started before `ends_at` and then
plays for `play_window_seconds` from its first play (`rental_expired` afterwards). Among the entitlements
that qualify, one that costs nothing more is used first (subscription, purchase, ppv, then a rental).
The stream's limits are the best the user holds, not only the chosen entitlement's: concurrent streams and
quality are the maximum of that entitlement, every live subscription and the free limits
(FREE_MAX_STREAMS / FREE_MAX_HEIGHT), so renting a title never lowers a Premium plan's 4 streams; ads are
off when any qualifying entitlement is ad-free.

Cost: one indexed query (entitlements_user_idx) per user and title, cached in Redis under a per-user
version (`invalidate` bumps it, so every cached answer of the user is dropped at once); a warm decision is
one Redis MGET. The cached rows are evaluated against the caller's `at`, so expiry needs no invalidation.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.entitlements import repository
from shared.entitlements.schemas import Decision, Entitlement, Kind, Offer, TitleAccess
from shared.infra.redis import RedisUnavailable, get_redis

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from shared.settings import Settings

logger = logging.getLogger("cinema.entitlements")

VERSION_KEY = "entitlements:version:{user}"
ROWS_KEY = "entitlements:rows:{user}:{title}"
# Entitlements that cost nothing more to use come first: a rental's play window only starts when nothing
# else lets the user play.
_PREFERENCE = {"subscription": 0, "purchase": 1, "ppv": 2, "rental": 3}


def _now() -> datetime:
    # Playback's one clock (tests move it instead of sleeping).
    from shared.streaming.sessions import clock

    return datetime.fromtimestamp(clock(), UTC)


def _end(entitlement: Entitlement) -> datetime | None:
    """When the entitlement stops allowing playback (None: never)."""
    if (
        entitlement.kind == "rental"
        and entitlement.first_played_at is not None
        and entitlement.play_window_seconds is not None  # 0 is a window (refused by the schema), not "none"
    ):
        # Started: the play window counts, even past ends_at (which only bounds the start).
        return entitlement.first_played_at + timedelta(seconds=entitlement.play_window_seconds)
    return entitlement.ends_at


def _live(entitlement: Entitlement, at: datetime) -> bool:
    end = _end(entitlement)
    return entitlement.starts_at <= at and (end is None or at < end)


def _limits_key(entitlement: Entitlement) -> tuple[int, int, bool]:
    # Lowest sorts first: more streams, then higher quality, then ad-free.
    return (-entitlement.max_streams, -entitlement.max_height, not entitlement.ad_free)


def _granted(
    entitlement: Entitlement,
    *,
    at: datetime,
    ads: bool,
    subscriptions: list[Entitlement],
    settings: Settings,
) -> Decision:
    first_play = entitlement.kind == "rental" and entitlement.first_played_at is None
    valid_until = _end(entitlement)
    if first_play and entitlement.play_window_seconds is not None:
        valid_until = at + timedelta(seconds=entitlement.play_window_seconds)
    # The best limits the user holds: a rental's own limits never lower the plan's.
    holders = [entitlement, *subscriptions]
    return Decision(
        allowed=True,
        entitlement_id=entitlement.id,
        kind=entitlement.kind,
        max_streams=max(settings.free_max_streams, *(e.max_streams for e in holders)),
        max_height=max(settings.free_max_height, *(e.max_height for e in holders)),
        ads=ads,
        first_play=first_play,
        valid_until=valid_until,
    )


def evaluate(
    entitlements: list[Entitlement], *, title: TitleAccess, at: datetime, settings: Settings
) -> Decision:
    """The decision for a title from the user's entitlements (no I/O)."""
    live = [e for e in entitlements if _live(e, at)]
    subscriptions = sorted((e for e in live if e.kind == "subscription"), key=_limits_key)
    own = [e for e in live if e.kind != "subscription" and e.title_id == str(title.id)]
    if title.access in ("free", "free_with_ads"):
        qualifying = [*subscriptions, *own]
        if not qualifying:
            return Decision(
                allowed=True,
                kind="free",
                max_streams=settings.free_max_streams,
                max_height=settings.free_max_height,
                ads=title.access == "free_with_ads",
            )
        best = min(qualifying, key=lambda e: (_PREFERENCE[e.kind], *_limits_key(e)))
        ads = title.access == "free_with_ads" and not any(e.ad_free for e in qualifying)
        return _granted(best, at=at, ads=ads, subscriptions=subscriptions, settings=settings)
    qualifying = list(own)
    if title.access == "subscription":
        qualifying += [e for e in subscriptions if e.tier >= title.min_tier]
    if qualifying:
        best = min(qualifying, key=lambda e: (_PREFERENCE[e.kind], *_limits_key(e)))
        # An ad-supported plan shows ads unless something else that entitles to the title is ad-free.
        ads = not any(e.ad_free for e in qualifying)
        return _granted(best, at=at, ads=ads, subscriptions=subscriptions, settings=settings)
    offers: list[Offer] = ["rent", "buy"]
    if title.access == "subscription":
        offers.insert(0, "upgrade" if subscriptions else "subscribe")
    expired_rental = any(
        e.kind == "rental" and e.title_id == str(title.id) and e.starts_at <= at and not _live(e, at)
        for e in entitlements
    )
    return Decision(allowed=False, code="rental_expired" if expired_rental else "not_entitled", offers=offers)


async def decide(
    conn: AsyncConnection[Any] | None,
    *,
    user_id: uuid.UUID | str,
    title: TitleAccess | Mapping[str, Any],
    at: datetime | None = None,
    settings: Settings,
) -> Decision:
    """May the user play the title at `at` (default: now): one indexed query, cached in Redis.

    `conn` None (a heartbeat, which holds no transaction): a pooled connection is taken only on a cache miss.
    """
    access = TitleAccess.of(title)
    entitlements = await _entitlements(
        conn, user_id=uuid.UUID(str(user_id)), title_id=access.id, settings=settings
    )
    return evaluate(entitlements, title=access, at=at or _now(), settings=settings)


async def _entitlements(
    conn: AsyncConnection[Any] | None, *, user_id: uuid.UUID, title_id: uuid.UUID, settings: Settings
) -> list[Entitlement]:
    seconds = settings.entitlement_cache_seconds
    if seconds <= 0:
        return await _load(conn, user_id=user_id, title_id=title_id)
    version_key = VERSION_KEY.format(user=user_id)
    rows_key = ROWS_KEY.format(user=user_id, title=title_id)
    try:
        store = await get_redis()
        version, cached = await store.mget(version_key, rows_key)
    except RedisUnavailable as error:
        # The database alone can answer: slower, never wrong.
        logger.warning("entitlement cache unavailable: %s", error)
        return await _load(conn, user_id=user_id, title_id=title_id)
    version = version or "0"
    if cached is not None:
        data = json.loads(cached)
        # An entry written before the last invalidate() carries an older version: a miss.
        if data.get("v") == version:
            return [Entitlement.from_row(row) for row in data["rows"]]
    # The version was read BEFORE the query: if commerce commits and invalidates meanwhile, this entry
    # is stored under the old version and never served.
    entitlements = await _load(conn, user_id=user_id, title_id=title_id)
    payload = {"v": version, "rows": [entitlement.to_json() for entitlement in entitlements]}
    try:
        await store.set(rows_key, json.dumps(payload, separators=(",", ":")), ex=seconds)
    except RedisUnavailable as error:
        logger.warning("entitlement cache not written: %s", error)
    return entitlements


async def _load(
    conn: AsyncConnection[Any] | None, *, user_id: uuid.UUID, title_id: uuid.UUID
) -> list[Entitlement]:
    if conn is None:
        from shared.infra.db import standalone

        async with standalone() as own:
            rows = await repository.live_for_title(own, user_id=user_id, title_id=title_id)
    else:
        rows = await repository.live_for_title(conn, user_id=user_id, title_id=title_id)
    return [Entitlement.from_row(row) for row in rows]


async def invalidate(user_id: uuid.UUID | str) -> None:
    """Drop every cached entitlement answer of the user (one INCR).

    Never raises for Redis: when it is unreachable the change still takes effect within
    ENTITLEMENT_CACHE_SECONDS (the cache's lifetime), which a warning records.
    """
    try:
        store = await get_redis()
        await store.incr(VERSION_KEY.format(user=uuid.UUID(str(user_id))))
    except RedisUnavailable as error:
        logger.warning("entitlements of user %s not invalidated (the cache expires): %s", user_id, error)


async def _invalidate_after_commit(user_id: uuid.UUID | str) -> None:
    """Invalidate once the caller's transaction commits (at once outside a transaction of ours)."""
    from shared.infra.db import after_commit

    async def drop_cached() -> None:
        await invalidate(user_id)

    await after_commit(drop_cached)


async def mark_first_play(
    conn: AsyncConnection[Any], entitlement_id: uuid.UUID | str, *, at: datetime | None = None
) -> None:
    """Start a rental's play window (first play only); the cache is invalidated once the request commits."""
    user_id = await repository.mark_first_play(
        conn, entitlement_id=uuid.UUID(str(entitlement_id)), at=at or _now()
    )
    if user_id is not None:
        await _invalidate_after_commit(user_id)


# --- commerce's interface ----------------------------------------------------------------------------


async def grant(
    conn: AsyncConnection[Any],
    *,
    user_id: uuid.UUID | str,
    kind: Kind,
    title_id: uuid.UUID | str | None = None,
    plan_code: str | None = None,
    tier: int = 0,
    max_streams: int,
    max_height: int,
    ad_free: bool,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    play_window_seconds: int | None = None,
    source: str,
    source_ref: str,
) -> uuid.UUID:
    """Record an entitlement (idempotent on source + source_ref: a replay updates the same row); its id.

    A replay updates the terms (plan, tier, limits, window) but never un-revokes a revoked row, nor
    moves a rental's first play; the same source_ref for another user, kind or title is refused
    (ValueError: a bug of the caller, not a request error).
    """
    if not source_ref:
        raise ValueError("grant needs the provider's id (source_ref) to be idempotent")
    entitlement_id = await repository.upsert(
        conn,
        values={
            "user_id": uuid.UUID(str(user_id)),
            "kind": kind,
            "title_id": None if title_id is None else uuid.UUID(str(title_id)),
            "plan_code": plan_code,
            "tier": tier,
            "max_streams": max_streams,
            "max_height": max_height,
            "ad_free": ad_free,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "play_window_seconds": play_window_seconds,
            "source": source,
            "source_ref": source_ref,
            "now": _now(),
        },
    )
    if entitlement_id is None:
        raise ValueError(f"{source}:{source_ref} is already an entitlement of another user, kind or title")
    await _invalidate_after_commit(user_id)
    return entitlement_id


async def revoke(conn: AsyncConnection[Any], *, source: str, source_ref: str) -> bool:
    """End an entitlement now (refund, cancellation, chargeback); False when none is live under that id."""
    user_id = await repository.revoke(conn, source=source, source_ref=source_ref, at=_now())
    if user_id is None:
        return False
    await _invalidate_after_commit(user_id)
    return True


async def extend(
    conn: AsyncConnection[Any], *, source: str, source_ref: str, ends_at: datetime | None
) -> bool:
    """Move an entitlement's end (a renewal; None: no end); False when none is live under that id."""
    user_id = await repository.extend(conn, source=source, source_ref=source_ref, ends_at=ends_at)
    if user_id is None:
        return False
    await _invalidate_after_commit(user_id)
    return True
