"""Shared pieces of the catalog management tests: a content manager, a viewer, clients on the catalog app,
and the steps of an artwork upload (a real image, its ticket, the browser's PUT, the confirm)."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
from PIL import Image

from api.catalog import app as catalog_app
from shared.infra.storage.local_http import app as storage_app
from tests.support.identity import SignedIn, client_for, signed_in_user

API = "/api/v1/catalog"
UPLOAD = f"{API}/images/upload"
CONFIRM = f"{API}/images"


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


# --- artwork uploads -----------------------------------------------------------------------------------


def encoded(size: tuple[int, int], image_format: str = "PNG", *, mode: str = "RGB", **options: Any) -> bytes:
    """A real image of `size`: a gradient, so the encoders have something to do (RGBA: fading out)."""
    image = Image.linear_gradient("L").resize(size).convert(mode)
    if mode == "RGBA":
        image.putalpha(Image.linear_gradient("L").rotate(90).resize(size))
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


async def storage_call(method: str, url: str, **kwargs: Any) -> httpx.Response:
    """A request to a local presigned URL, served by the dev server's storage app."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=storage_app)) as http:
        return await http.request(method, url, **kwargs)


async def ticket(
    client: httpx.AsyncClient, who: SignedIn, kind: str, content_type: str, size: int
) -> httpx.Response:
    return await client.post(
        UPLOAD, json={"kind": kind, "content_type": content_type, "size": size}, headers=who.headers
    )


async def uploaded(
    client: httpx.AsyncClient,
    who: SignedIn,
    data: bytes,
    *,
    kind: str = "poster",
    content_type: str = "image/png",
) -> str:
    """Ticket, then the browser's PUT to storage; the key to confirm."""
    response = await ticket(client, who, kind, content_type, len(data))
    assert response.status_code == 200, response.text
    grant = response.json()
    assert grant["backend"] == "storage" and grant["method"] == "PUT"
    assert grant["max_bytes"] == 10 * 1024 * 1024
    assert re.fullmatch(rf"catalog-uploads/{who.user_id}/[0-9]+-[0-9a-f]{{32}}\.[a-z]+", grant["key"])
    put = await storage_call("PUT", grant["upload_url"], content=data, headers=grant["headers"])
    assert put.is_success, put.text
    return str(grant["key"])


async def confirm(client: httpx.AsyncClient, who: SignedIn, **body: Any) -> httpx.Response:
    return await client.post(CONFIRM, json=body, headers=who.headers)
