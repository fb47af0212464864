"""shared.entitlements: the rules per access model, rental windows, revocation, and the Redis cache with
its per-user version (commerce's invalidate)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from shared.entitlements.schemas import Entitlement, TitleAccess
from shared.entitlements.service import VERSION_KEY, decide, evaluate, invalidate, mark_first_play
from shared.infra.loop_local import reset_all
from shared.infra.redis import get_redis
from shared.settings import get_settings
from tests.streaming.conftest import entitle
from tests.support import catalog_factory as factory
from tests.support.identity import signed_in_user

Db = psycopg.AsyncConnection[Any]
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TITLE = uuid.uuid4()


def ent(kind: str = "subscription", **fields: Any) -> Entitlement:
    base: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "kind": kind,
        "title_id": None if kind == "subscription" else str(TITLE),
        "plan_code": None,
        "tier": 1,
        "max_streams": 2,
        "max_height": 1080,
        "ad_free": True,
        "starts_at": NOW - timedelta(days=10),
        "ends_at": None,
        "play_window_seconds": None,
        "first_played_at": None,
    }
    return Entitlement(**{**base, **fields})


def judge(access: str, entitlements: list[Entitlement], *, min_tier: int = 1, at: datetime = NOW) -> Any:
    return evaluate(
        entitlements,
        title=TitleAccess(TITLE, access, min_tier),
        at=at,
        settings=get_settings(),  # type: ignore[arg-type]
    )


def test_free_titles_use_the_free_limits_or_the_best_subscription() -> None:
    settings = get_settings()
    free = judge("free", [])
    assert free.allowed and free.kind == "free" and free.entitlement_id is None and not free.ads
    assert (free.max_streams, free.max_height) == (settings.free_max_streams, settings.free_max_height)
    assert judge("free_with_ads", []).ads
    small, big = ent(max_streams=1, ad_free=False), ent(max_streams=4, max_height=2160)
    best = judge("free_with_ads", [small, big])
    assert best.entitlement_id == big.id and (best.max_streams, best.max_height, best.ads) == (4, 2160, False)
    assert judge("free_with_ads", [small]).ads  # an ad-supported plan keeps the ads


def test_subscription_titles_need_the_tier_or_a_title_entitlement() -> None:
    basic = ent(tier=1)
    assert judge("subscription", [basic], min_tier=1).allowed
    refused = judge("subscription", [basic], min_tier=2)
    assert not refused.allowed and refused.code == "not_entitled"
    assert refused.offers == ["upgrade", "rent", "buy"]
    assert judge("subscription", [], min_tier=2).offers == ["subscribe", "rent", "buy"]
    bought = ent("purchase", max_streams=1)
    assert judge("subscription", [basic, bought], min_tier=2).entitlement_id == bought.id
    # Another title's purchase does not count.
    assert not judge("subscription", [ent("purchase", title_id=str(uuid.uuid4()))]).allowed


def test_transactional_titles_ignore_subscriptions() -> None:
    refused = judge("transactional", [ent(tier=10)])
    assert not refused.allowed and refused.offers == ["rent", "buy"]
    assert judge("transactional", [ent("ppv")]).kind == "ppv"


def test_a_subscription_is_used_before_a_rental_whose_window_would_start() -> None:
    rental = ent("rental", ends_at=NOW + timedelta(days=30), play_window_seconds=48 * 3600, max_streams=4)
    sub = ent(tier=1, max_streams=1)
    assert judge("subscription", [rental, sub]).entitlement_id == sub.id
    chosen = judge("transactional", [rental, sub])
    assert chosen.entitlement_id == rental.id and chosen.first_play
    assert chosen.valid_until == NOW + timedelta(hours=48)


def test_a_title_entitlement_never_lowers_the_plan_limits() -> None:
    settings = get_settings()
    premium = ent(tier=4, max_streams=4, max_height=2160, ad_free=False)
    rental = ent("rental", ends_at=NOW + timedelta(days=30), play_window_seconds=3600, max_streams=1)
    chosen = judge("transactional", [premium, rental])
    assert chosen.entitlement_id == rental.id and chosen.kind == "rental"
    assert (chosen.max_streams, chosen.max_height) == (4, 2160)
    # A premium title above the plan's tier, bought: the purchase plays, with the plan's streams.
    bought = ent("purchase", max_streams=1, max_height=1080)
    assert judge("subscription", [premium, bought], min_tier=5).max_streams == 4
    # Nothing below the free limits, even on a paid entitlement.
    meagre = ent("ppv", max_streams=1, max_height=240)
    decision = judge("transactional", [meagre])
    assert decision.max_height == max(240, settings.free_max_height)
    assert decision.max_streams == max(1, settings.free_max_streams)


def test_any_ad_free_entitlement_that_applies_removes_the_ads() -> None:
    with_ads = ent(tier=1, ad_free=False)
    bought = ent("purchase", ad_free=True)
    assert judge("subscription", [with_ads]).ads
    both = judge("subscription", [with_ads, bought])
    assert both.entitlement_id == with_ads.id and not both.ads  # the plan is used, the purchase is ad-free
    assert not judge("free_with_ads", [with_ads, ent(tier=0, ad_free=True)]).ads
    # An entitlement that does not apply to the title changes nothing.
    other_title = ent("purchase", title_id=str(uuid.uuid4()), ad_free=True)
    assert judge("subscription", [with_ads, other_title]).ads


def test_a_zero_play_window_is_a_window_not_none() -> None:
    # The schema now refuses it (migration 20261121001100); the rule must not read 0 as "no window".
    started = ent("rental", play_window_seconds=0, first_played_at=NOW - timedelta(seconds=1))
    decision = judge("transactional", [started])
    assert not decision.allowed and decision.code == "rental_expired"


def test_rental_windows() -> None:
    window = 48 * 3600
    unplayed = ent("rental", ends_at=NOW + timedelta(days=30), play_window_seconds=window)
    assert judge("transactional", [unplayed]).allowed
    # Must be started before ends_at.
    late = judge("transactional", [unplayed], at=NOW + timedelta(days=31))
    assert not late.allowed and late.code == "rental_expired"
    # Once started: playable for the window, even past ends_at.
    started = ent(
        "rental",
        ends_at=NOW + timedelta(hours=1),
        play_window_seconds=window,
        first_played_at=NOW - timedelta(hours=1),
    )
    decision = judge("transactional", [started], at=NOW + timedelta(hours=2))
    assert decision.allowed and not decision.first_play
    assert decision.valid_until == NOW + timedelta(hours=47)
    over = judge("transactional", [started], at=NOW + timedelta(hours=47))
    assert not over.allowed and over.code == "rental_expired"
    # Not yet started (a pay-per-view event tomorrow): not entitled, not expired.
    upcoming = judge("transactional", [ent("ppv", starts_at=NOW + timedelta(days=1))])
    assert not upcoming.allowed and upcoming.code == "not_entitled"
    ended_sub = judge("subscription", [ent(ends_at=NOW - timedelta(seconds=1))])
    assert not ended_sub.allowed and ended_sub.offers[0] == "subscribe"


# --- with the database and Redis ---------------------------------------------------------------------


async def _title(db: Db, access: str = "subscription", min_tier: int = 1) -> dict[str, Any]:
    title_id = await factory.title(db, f"Ent {uuid.uuid4().hex[:6]}", access=access, min_tier=min_tier)
    return {"id": title_id, "access": access, "min_tier": min_tier}


async def _decide(db: Db, user_id: uuid.UUID, title: dict[str, Any], at: datetime | None = None) -> Any:
    return await decide(db, user_id=user_id, title=title, at=at or datetime.now(UTC), settings=get_settings())


async def test_answers_are_cached_until_commerce_invalidates(db: Db, database_url: str) -> None:
    user = await signed_in_user(database_url)
    title = await _title(db)
    assert not (await _decide(db, user.user_id, title)).allowed
    # Commerce writes the row: until it invalidates, the cached answer stands.
    entitlement_id = await entitle(db, user.user_id, invalidate=False)
    assert not (await _decide(db, user.user_id, title)).allowed
    await invalidate(user.user_id)
    decision = await _decide(db, user.user_id, title)
    assert decision.allowed and decision.entitlement_id == str(entitlement_id)
    # Revoked rows are ignored (once invalidated).
    await db.execute("update public.entitlements set revoked_at = now() where id = %s", (entitlement_id,))
    assert (await _decide(db, user.user_id, title)).allowed
    await invalidate(user.user_id)
    assert not (await _decide(db, user.user_id, title)).allowed
    store = await get_redis()
    assert await store.get(VERSION_KEY.format(user=user.user_id)) == "2"


async def test_a_cache_entry_written_across_an_invalidation_is_never_served(
    db: Db, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.entitlements import service

    user = await signed_in_user(database_url)
    title = await _title(db)
    # A decision reads the version, then queries; commerce commits and invalidates in between (the real
    # query runs; the wrapper only adds commerce's write at that moment).
    load = service._load

    async def slow_load(conn: Any, **kwargs: Any) -> Any:
        rows = await load(conn, **kwargs)
        await entitle(db, user.user_id)  # commits and invalidates while the old rows are in flight
        return rows

    monkeypatch.setattr(service, "_load", slow_load)
    assert not (await _decide(db, user.user_id, title)).allowed
    monkeypatch.setattr(service, "_load", load)
    assert (await _decide(db, user.user_id, title)).allowed


async def test_without_redis_the_database_answers(
    db: Db, database_url: str, settings_env: Any, redis_url: str
) -> None:
    user = await signed_in_user(database_url)
    title = await _title(db)
    await entitle(db, user.user_id)
    settings_env(REDIS_URL="redis://127.0.0.1:1/0")
    await reset_all()
    try:
        assert (await _decide(db, user.user_id, title)).allowed
    finally:
        settings_env(REDIS_URL=redis_url)
        await reset_all()


async def test_no_cache_when_its_lifetime_is_zero(db: Db, database_url: str, settings_env: Any) -> None:
    settings_env(ENTITLEMENT_CACHE_SECONDS="0")
    user = await signed_in_user(database_url)
    title = await _title(db)
    assert not (await _decide(db, user.user_id, title)).allowed
    await entitle(db, user.user_id, invalidate=False)
    assert (await _decide(db, user.user_id, title)).allowed


async def test_the_first_play_starts_the_window_once(db: Db, database_url: str) -> None:
    from shared.infra.db import transaction

    user = await signed_in_user(database_url)
    title = await _title(db, access="transactional")
    rental = await entitle(
        db,
        user.user_id,
        kind="rental",
        title_id=title["id"],
        ends_at=NOW + timedelta(days=30),
        play_window_seconds=3600,
    )
    first = NOW - timedelta(minutes=10)
    for at in (first, NOW):  # a second call keeps the first time
        tx = transaction()
        conn = await anext(tx)
        await mark_first_play(conn, rental, at=at)
        with pytest.raises(StopAsyncIteration):
            await anext(tx)  # commits, then invalidates
    cursor = await db.execute("select first_played_at from public.entitlements where id = %s", (rental,))
    assert (await cursor.fetchone()) == (first,)
    decision = await _decide(db, user.user_id, title, at=NOW)
    assert decision.allowed and not decision.first_play
    expired = await _decide(db, user.user_id, title, at=first + timedelta(hours=1))
    assert expired.code == "rental_expired"
