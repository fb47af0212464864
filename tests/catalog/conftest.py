"""Catalog test helpers: the catalog app's client, signed-in viewers with profiles, unique names."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from api.catalog import app as catalog_app
from tests.support.cloudflare_server import CloudflareServer
from tests.support.identity import SignedIn, client_for, signed_in_user, users_client

CATALOG = "/api/v1/catalog"
PROFILES = "/api/v1/users/me/profiles"


def auth(token: str) -> dict[str, str]:
    """Authorization header for an access token."""
    return {"authorization": f"Bearer {token}"}


def unique(prefix: str) -> str:
    """A name no other test uses (genres, categories, titles share one database per run)."""
    return f"{prefix} {uuid.uuid4().hex[:10]}"


def genre_slug(name: str) -> str:
    """The slug the factory gives a genre or category name."""
    return "-".join(name.lower().split())


def ids(body: dict[str, Any] | list[Any]) -> list[str]:
    """The title ids of a page (`items`) or a list of cards."""
    items = body["items"] if isinstance(body, dict) else body
    return [item["id"] if "id" in item else item["title"]["id"] for item in items]


@dataclass
class Viewers:
    """One account seen four ways, plus a content manager."""

    user: SignedIn
    no_profile: dict[str, str]  # signed in, no profile selected
    adult: dict[str, str]  # the default '18+' profile selected
    kids: dict[str, str]  # a kids profile ('7+') selected
    adult_profile_id: str
    kids_profile_id: str
    manager: dict[str, str]


async def select_profile(
    client: httpx.AsyncClient, headers: dict[str, str], profile_id: str
) -> dict[str, str]:
    """Headers of a token bound to this profile."""
    response = await client.post(f"{PROFILES}/{profile_id}/select", headers=headers)
    assert response.status_code == 200, response.text
    return auth(response.json()["access_token"])


@pytest.fixture(scope="session")
async def viewers(database_url: str) -> Viewers:
    """Signed-in callers shared by the catalog tests (sign-up is slow; nothing here changes them)."""
    user = await signed_in_user(database_url)
    manager = await signed_in_user(database_url, roles=["viewer", "content_manager"])
    async with users_client() as client:
        listed = await client.get(PROFILES, headers=user.headers)
        assert listed.status_code == 200, listed.text
        adult_id = listed.json()[0]["id"]
        made = await client.post(PROFILES, json={"name": "Kid", "is_kids": True}, headers=user.headers)
        assert made.status_code == 201, made.text
        kids_id = made.json()["id"]
        adult = await select_profile(client, user.headers, adult_id)
        kids = await select_profile(client, user.headers, kids_id)
    return Viewers(user, user.headers, adult, kids, adult_id, kids_id, manager.headers)


@pytest.fixture
async def catalog() -> AsyncIterator[httpx.AsyncClient]:
    """A client of the catalog group (its own random address)."""
    async with client_for(catalog_app) as opened:
        yield opened


@pytest.fixture(scope="session")
def cloudflare_server() -> Iterator[CloudflareServer]:
    """The local Cloudflare purge API stand-in, for the whole run."""
    with CloudflareServer() as server:
        yield server


@pytest.fixture
def cloudflare(settings_env: Any, cloudflare_server: CloudflareServer) -> Iterator[CloudflareServer]:
    """Settings pointing purges at the stand-in, with its records cleared."""
    cloudflare_server.reset()
    settings_env(
        CLOUDFLARE_ZONE_ID=cloudflare_server.zone_id,
        CLOUDFLARE_API_TOKEN=cloudflare_server.api_token,
        CLOUDFLARE_API_URL=cloudflare_server.url,
    )
    yield cloudflare_server
    cloudflare_server.reset()
