"""Shared pieces of the media tests: a content manager, a viewer, a client on the media app, storage calls."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from api.media import app as media_app
from shared.infra.storage.local_http import app as storage_app
from tests.support import catalog_factory
from tests.support.identity import SignedIn, client_for, signed_in_user

API = "/api/v1/media"


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
    """An HTTP client on the media app from a fresh address."""
    async with client_for(media_app) as opened:
        yield opened


@pytest.fixture
async def movie(db: psycopg.AsyncConnection[Any]) -> str:
    """A published movie's id."""
    return str(await catalog_factory.title(db, "Media Test Film"))


async def storage_call(method: str, url: str, **kwargs: Any) -> httpx.Response:
    """A request to a local presigned URL, served by the dev server's storage app."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=storage_app)) as http:
        return await http.request(method, url, **kwargs)


def payload(size: int) -> bytes:
    """Random bytes standing in for a video file (the transcoder, not these tests, judges content)."""
    return os.urandom(size)


def upload_body(title_id: str, data: bytes, **fields: Any) -> dict[str, Any]:
    """A POST /uploads body for these bytes."""
    return {
        "title_id": title_id,
        "filename": "My Film (final).mp4",
        "content_type": "video/mp4",
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        **fields,
    }


async def start_upload(
    client: httpx.AsyncClient, who: SignedIn, title_id: str, data: bytes, **fields: Any
) -> dict[str, Any]:
    """POST /uploads, asserting 201; the ticket."""
    response = await client.post(
        f"{API}/uploads", json=upload_body(title_id, data, **fields), headers=who.headers
    )
    assert response.status_code == 201, response.text
    ticket: dict[str, Any] = response.json()
    return ticket


async def put(grant: dict[str, Any], data: bytes) -> None:
    """Send bytes to a presigned PUT (a single upload or one part)."""
    response = await storage_call("PUT", grant["url"], content=data, headers=grant["headers"])
    assert response.status_code == 200, response.text
