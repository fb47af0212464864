"""How a title is offered (access, min_tier): set on create and update, validated, audited, purged."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg
import pytest

from shared.catalog import cache
from shared.entitlements.service import VERSION_KEY, decide, grant
from shared.infra.db import standalone
from shared.infra.redis import get_redis
from shared.licences.repository import title_access
from shared.settings import get_settings
from tests.catalog_admin.conftest import API, audit_events, create_title, field_codes, unique
from tests.support.identity import SignedIn, signed_in_user


async def _stored(database_url: str, title_id: str) -> tuple[str, int]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "select access, min_tier from public.catalog_titles where id = %s", (title_id,)
        )
        row = await cursor.fetchone()
    assert row is not None
    return row[0], row[1]


async def test_create_with_access_and_the_defaults(
    client: httpx.AsyncClient, manager: SignedIn, database_url: str
) -> None:
    rental = await create_title(client, manager, access="transactional")
    assert (rental["access"], rental["min_tier"]) == ("transactional", 1)
    assert await _stored(database_url, rental["id"]) == ("transactional", 1)
    premium = await create_title(client, manager, access="subscription", min_tier=3)
    assert (premium["access"], premium["min_tier"]) == ("subscription", 3)
    assert await _stored(database_url, premium["id"]) == ("subscription", 3)
    (event, details), *_ = await audit_events(database_url, premium["id"])
    assert event == "catalog_created" and {"access", "min_tier"} <= set(details["changed"])
    # Left out: the migration's default, a tier-1 subscription title.
    plain = await create_title(client, manager)
    assert (plain["access"], plain["min_tier"]) == ("subscription", 1)


async def test_update_is_audited_and_purges_the_cached_title(
    client: httpx.AsyncClient, manager: SignedIn, database_url: str
) -> None:
    headers = manager.headers
    title = await create_title(client, manager, status="published")
    path = f"{API}/titles/{title['id']}"
    before = await client.get(path)  # the anonymous (cacheable) answer
    assert before.status_code == 200 and before.json()["access"] == "subscription"

    version = await cache.catalog_version()
    changed = await client.patch(path, json={"access": "free_with_ads"}, headers=headers)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["access"], changed.json()["min_tier"]) == ("free_with_ads", 1)
    assert await cache.catalog_version() != version  # purged like any other edit
    assert (await client.get(path)).json()["access"] == "free_with_ads"
    assert await _stored(database_url, title["id"]) == ("free_with_ads", 1)

    tier = await client.patch(path, json={"access": "subscription", "min_tier": 0}, headers=headers)
    assert (tier.json()["access"], tier.json()["min_tier"]) == ("subscription", 0)
    # The same values again change nothing: no audit row, no purge.
    version = await cache.catalog_version()
    same = await client.patch(path, json={"access": "subscription", "min_tier": 0}, headers=headers)
    assert same.status_code == 200 and await cache.catalog_version() == version

    details = [d for event, d in await audit_events(database_url, title["id"]) if event == "catalog_updated"]
    assert [d["changed"] for d in details] == [["access"], ["access", "min_tier"]]


INVALID: list[tuple[dict[str, Any], list[tuple[str, str]]]] = [
    ({"access": "rental"}, [("access", "literal_error")]),
    ({"access": "Free"}, [("access", "literal_error")]),
    ({"access": None}, [("access", "null_not_allowed")]),
    ({"min_tier": 11}, [("min_tier", "less_than_equal")]),
    ({"min_tier": -1}, [("min_tier", "greater_than_equal")]),
    ({"min_tier": "gold"}, [("min_tier", "int_parsing")]),
    ({"min_tier": 1.5}, [("min_tier", "int_from_float")]),
    ({"min_tier": None}, [("min_tier", "null_not_allowed")]),
]


@pytest.mark.parametrize(("fields", "expected"), INVALID, ids=[str(f) for f, _ in INVALID])
async def test_bad_values_are_refused_on_create_and_update(
    client: httpx.AsyncClient,
    manager: SignedIn,
    database_url: str,
    fields: dict[str, Any],
    expected: list[tuple[str, str]],
) -> None:
    name = unique("Offer")
    response = await client.post(
        f"{API}/titles", json={"kind": "movie", "title": name, **fields}, headers=manager.headers
    )
    assert field_codes(response) == expected
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute("select count(*) from public.catalog_titles where title = %s", (name,))
        assert await cursor.fetchone() == (0,)

    title = await create_title(client, manager, access="free", min_tier=2)
    update = await client.patch(f"{API}/titles/{title['id']}", json=fields, headers=manager.headers)
    assert field_codes(update) == expected
    assert await _stored(database_url, title["id"]) == ("free", 2)


async def test_entitlement_decisions_see_a_change_at_once(
    client: httpx.AsyncClient, manager: SignedIn, database_url: str
) -> None:
    # The entitlement cache holds the user's rows only: the title's access is read per decision.
    user = await signed_in_user(database_url)
    title = await create_title(client, manager, access="subscription", min_tier=1)
    async with standalone() as conn:
        await grant(
            conn,
            user_id=user.user_id,
            kind="subscription",
            plan_code="standard",
            tier=2,
            max_streams=2,
            max_height=1080,
            ad_free=True,
            source="sandbox",
            source_ref=f"sub_{uuid.uuid4().hex}",
        )

    async def allowed() -> bool:
        async with standalone() as conn:
            offered = await title_access(conn, title_id=title["id"])
            assert offered is not None
            return (await decide(conn, user_id=user.user_id, title=offered, settings=get_settings())).allowed

    assert await allowed()  # and the user's rows are now cached
    version = await (await get_redis()).get(VERSION_KEY.format(user=user.user_id))
    path = f"{API}/titles/{title['id']}"

    async def change(**fields: Any) -> None:
        response = await client.patch(path, json=fields, headers=manager.headers)
        assert response.status_code == 200, response.text

    await change(min_tier=3)
    assert not await allowed()  # tier 2 < 3
    await change(access="transactional")
    assert not await allowed()  # a subscription never plays a transactional title
    await change(access="free")
    assert await allowed()
    # No entitlement invalidation was needed for any of it.
    assert await (await get_redis()).get(VERSION_KEY.format(user=user.user_id)) == version
