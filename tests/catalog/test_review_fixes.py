"""Review findings: staff on a kids profile, deleted profiles, hidden people, catalog-only image keys."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from tests.catalog.conftest import CATALOG, PROFILES, auth, select_profile, unique
from tests.support import catalog_factory as factory
from tests.support.identity import signed_in_user, users_client

Db = psycopg.AsyncConnection[Any]


async def test_a_managers_kids_profile_is_still_a_kids_profile(
    database_url: str, db: Db, catalog: httpx.AsyncClient
) -> None:
    r_rated = await factory.title(db, unique("Manager Kids Check"), rating="R", maturity_level="16+")
    manager = await signed_in_user(database_url, roles=["viewer", "content_manager"])
    async with users_client() as users:
        made = await users.post(PROFILES, json={"name": "Little", "is_kids": True}, headers=manager.headers)
        assert made.status_code == 201, made.text
        kids = await select_profile(users, manager.headers, made.json()["id"])
    assert (await catalog.get(f"{CATALOG}/titles/{r_rated}", headers=manager.headers)).status_code == 200
    assert (await catalog.get(f"{CATALOG}/titles/{r_rated}", headers=kids)).status_code == 404


async def test_a_deleted_profile_falls_back_to_the_strictest_level(
    database_url: str, db: Db, catalog: httpx.AsyncClient
) -> None:
    teen = await factory.title(db, unique("Deleted Profile Check"), maturity_level="13+")
    user = await signed_in_user(database_url)
    async with users_client() as users:
        made = await users.post(PROFILES, json={"name": "Second"}, headers=user.headers)
        assert made.status_code == 201, made.text
        profile_id = made.json()["id"]
        token = await select_profile(users, user.headers, profile_id)
    assert (await catalog.get(f"{CATALOG}/titles/{teen}", headers=token)).status_code == 200
    await db.execute("delete from public.profiles where id = %s", (profile_id,))
    assert (await catalog.get(f"{CATALOG}/titles/{teen}", headers=token)).status_code == 404


async def test_people_credited_only_on_hidden_titles_have_no_public_page(
    db: Db, catalog: httpx.AsyncClient
) -> None:
    name = unique("Unreleased Star")
    await factory.title(db, unique("Secret Draft"), status="draft", cast=[(name, "Lead")])
    cursor = await db.execute("select id from public.catalog_people where name = %s", (name,))
    row = await cursor.fetchone()
    assert row is not None
    response = await catalog.get(f"{CATALOG}/people/{row[0]}")
    assert response.status_code == 404 and response.json()["code"] == "person_not_found"


async def test_catalog_images_must_live_under_the_catalog_prefix(
    database_url: str, catalog: httpx.AsyncClient
) -> None:
    manager = await signed_in_user(database_url, roles=["viewer", "content_manager"])
    body = {
        "kind": "movie",
        "title": unique("Avatar Thief"),
        "images": {"poster": {"key": "avatars/x/y.png"}},
    }
    response = await catalog.post(f"{CATALOG}/titles", json=body, headers=auth(manager.access_token))
    assert response.status_code == 422, response.text
