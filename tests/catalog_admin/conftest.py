"""Shared pieces of the catalog management tests: a content manager, a viewer, clients on the catalog app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from api.catalog import app as catalog_app
from tests.support.identity import SignedIn, client_for, signed_in_user

API = "/api/v1/catalog"


@pytest.fixture(scope="session")
async def manager(database_url: str) -> SignedIn:
    """A signed-in content manager (one per run: sign-ups are slow on purpose)."""
    return await signed_in_user(database_url, roles=["content_manager"])


@pytest.fixture(scope="session")
async def viewer(database_url: str) -> SignedIn:
    """A signed-in plain viewer."""
    return await signed_in_user(database_url)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the catalog app from a fresh address."""
    async with client_for(catalog_app) as opened:
        yield opened


def unique(name: str) -> str:
    """A title or person name no other test uses (the database is shared by the run)."""
    return f"{name} {uuid.uuid4().hex[:8]}"


def imdb(prefix: str) -> str:
    """A fresh IMDb id: "tt" (titles) or "nm" (people) and 9 random digits."""
    return f"{prefix}{uuid.uuid4().int % 10**9:09d}"


def field_codes(response: httpx.Response) -> list[tuple[str, str]]:
    """(dotted field, code) of every error of a 422 problem."""
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_failed"
    return [(".".join(error["loc"][1:]), error["type"]) for error in body["errors"]]


async def create_title(client: httpx.AsyncClient, who: SignedIn, **fields: Any) -> dict[str, Any]:
    """POST /titles (a movie named uniquely unless given); the answer's body."""
    body = {"kind": "movie", "title": unique("Film"), **fields}
    response = await client.post(f"{API}/titles", json=body, headers=who.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def audit_events(database_url: str, entity_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(event, details) of the catalog audit rows about one entity, oldest first."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            """select event, details from public.audit_log
               where event like 'catalog_%%' and details->>'id' = %s order by id""",
            (entity_id,),
        )
        return [(row[0], row[1]) for row in await cursor.fetchall()]
