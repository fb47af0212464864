"""Commerce's interface: grant (idempotent per provider id), revoke and extend, each invalidating the user's
cached answers once ITS transaction commits; the schema's rules on rentals; invalidate without Redis."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from shared.entitlements.service import VERSION_KEY, decide, extend, grant, invalidate, revoke
from shared.infra.db import standalone
from shared.infra.loop_local import reset_all
from shared.infra.redis import get_redis
from shared.settings import get_settings
from tests.support import catalog_factory as factory
from tests.support.identity import signed_in_user

Db = psycopg.AsyncConnection[Any]


async def _title(db: Db, access: str = "subscription") -> dict[str, Any]:
    title_id = await factory.title(db, f"Shop {uuid.uuid4().hex[:6]}", access=access, min_tier=1)
    return {"id": title_id, "access": access, "min_tier": 1}


async def _decide(db: Db, user_id: uuid.UUID, title: dict[str, Any], at: datetime | None = None) -> Any:
    return await decide(db, user_id=user_id, title=title, at=at, settings=get_settings())


async def _version(user_id: uuid.UUID) -> str | None:
    return await (await get_redis()).get(VERSION_KEY.format(user=user_id))


def _plan(user_id: uuid.UUID, ref: str, **terms: Any) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "kind": "subscription",
        "plan_code": "standard",
        "tier": 2,
        "max_streams": 2,
        "max_height": 1080,
        "ad_free": True,
        "source": "sandbox",
        "source_ref": ref,
        **terms,
    }


async def test_a_grant_counts_once_its_transaction_commits(db: Db, database_url: str) -> None:
    user = await signed_in_user(database_url)
    title = await _title(db)
    assert not (await _decide(db, user.user_id, title)).allowed  # cached: refused
    before = await _version(user.user_id)
    async with standalone() as conn:
        entitlement_id = await grant(conn, **_plan(user.user_id, f"sub_{uuid.uuid4().hex}"))
        # Not committed yet: nothing is invalidated (a decision now would cache the old rows again).
        assert await _version(user.user_id) == before
    assert await _version(user.user_id) != before
    decision = await _decide(db, user.user_id, title)
    assert decision.allowed and decision.entitlement_id == str(entitlement_id)


async def test_a_rolled_back_grant_leaves_no_row_and_no_invalidation(db: Db, database_url: str) -> None:
    user = await signed_in_user(database_url)
    ref = f"sub_{uuid.uuid4().hex}"
    before = await _version(user.user_id)
    with pytest.raises(RuntimeError):
        async with standalone() as conn:
            await grant(conn, **_plan(user.user_id, ref))
            raise RuntimeError("the payment step failed")
    assert await _version(user.user_id) == before
    cursor = await db.execute("select count(*) from public.entitlements where source_ref = %s", (ref,))
    assert await cursor.fetchone() == (0,)


async def test_a_replayed_grant_updates_the_same_row(db: Db, database_url: str) -> None:
    user, stranger = await signed_in_user(database_url), await signed_in_user(database_url)
    ref = f"sub_{uuid.uuid4().hex}"
    async with standalone() as conn:
        first = await grant(conn, **_plan(user.user_id, ref))
    async with standalone() as conn:  # the webhook again, now for the upgraded plan
        again = await grant(conn, **_plan(user.user_id, ref, plan_code="premium", tier=4, max_streams=4))
    assert again == first
    cursor = await db.execute(
        "select plan_code, tier, max_streams from public.entitlements"
        " where source = 'sandbox' and source_ref = %s",
        (ref,),
    )
    assert await cursor.fetchall() == [("premium", 4, 4)]
    # The same provider id for someone else is a bug of the caller, never a silent transfer.
    with pytest.raises(ValueError, match="another user"):
        async with standalone() as conn:
            await grant(conn, **_plan(stranger.user_id, ref))


async def test_revoke_and_extend(db: Db, database_url: str) -> None:
    user = await signed_in_user(database_url)
    title = await _title(db, access="transactional")
    now = datetime.now(UTC)
    ref = f"pi_{uuid.uuid4().hex}"
    async with standalone() as conn:
        await grant(
            conn,
            user_id=user.user_id,
            kind="ppv",
            title_id=title["id"],
            max_streams=1,
            max_height=1080,
            ad_free=True,
            ends_at=now + timedelta(hours=1),
            source="sandbox",
            source_ref=ref,
        )
    later = now + timedelta(hours=2)
    assert not (await _decide(db, user.user_id, title, at=later)).allowed
    async with standalone() as conn:
        assert await extend(conn, source="sandbox", source_ref=ref, ends_at=now + timedelta(hours=3))
    assert (await _decide(db, user.user_id, title, at=later)).allowed
    async with standalone() as conn:
        assert await revoke(conn, source="sandbox", source_ref=ref)
    assert not (await _decide(db, user.user_id, title)).allowed
    async with standalone() as conn:
        assert not await revoke(conn, source="sandbox", source_ref=ref)  # already revoked
        assert not await extend(conn, source="sandbox", source_ref=ref, ends_at=later)
        assert not await revoke(conn, source="sandbox", source_ref="unknown")
    # A replay of the original grant does not bring a revoked entitlement back.
    async with standalone() as conn:
        await grant(
            conn,
            user_id=user.user_id,
            kind="ppv",
            title_id=title["id"],
            max_streams=1,
            max_height=1080,
            ad_free=True,
            source="sandbox",
            source_ref=ref,
        )
    assert not (await _decide(db, user.user_id, title)).allowed


async def test_the_schema_refuses_unbounded_or_empty_rentals(db: Db, database_url: str) -> None:
    user = await signed_in_user(database_url)
    title = await _title(db, access="transactional")
    rental = {
        "user_id": user.user_id,
        "kind": "rental",
        "title_id": title["id"],
        "max_streams": 1,
        "max_height": 1080,
        "ad_free": True,
        "source": "sandbox",
    }
    for window, ends_at in ((0, None), (-5, None), (None, None)):
        with pytest.raises(psycopg.errors.CheckViolation):
            async with standalone() as conn:
                await grant(
                    conn, **rental, play_window_seconds=window, ends_at=ends_at, source_ref=uuid.uuid4().hex
                )
    async with standalone() as conn:  # a window, or an end, is enough
        await grant(conn, **rental, play_window_seconds=3600, source_ref=uuid.uuid4().hex)
        await grant(
            conn, **rental, ends_at=datetime.now(UTC) + timedelta(days=1), source_ref=uuid.uuid4().hex
        )


async def test_invalidate_without_redis_only_warns(
    settings_env: Any, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings_env(REDIS_URL="redis://127.0.0.1:1/0")
    await reset_all()
    try:
        with caplog.at_level(logging.WARNING, logger="cinema.entitlements"):
            await invalidate(uuid.uuid4())  # commerce's commit stands; the cache expires on its own
        assert any("not invalidated" in record.getMessage() for record in caplog.records)
    finally:
        settings_env(REDIS_URL=redis_url)
        await reset_all()
