"""Helpers of the profile tests: a signed-in account, its profiles over HTTP, token claims, tiny images."""

from __future__ import annotations

import base64
import io
import json
import struct
import uuid
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.identity import SignedIn, signed_in_user, users_client

PROFILES = "/api/v1/users/me/profiles"


@pytest.fixture
async def user(database_url: str) -> SignedIn:
    """A new verified, signed-in account."""
    return await signed_in_user(database_url)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client of the users group (its own random address)."""
    async with users_client() as opened:
        yield opened


def auth(token: str) -> dict[str, str]:
    """Authorization header for an access token."""
    return {"authorization": f"Bearer {token}"}


async def profiles_of(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    """GET the profile list (asserting 200)."""
    response = await client.get(PROFILES, headers=headers)
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


async def create(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> httpx.Response:
    """POST a new profile (a unique name unless one is given)."""
    fields.setdefault("name", f"P-{uuid.uuid4().hex[:8]}")
    return await client.post(PROFILES, json=fields, headers=headers)


async def made(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    """Create a profile, asserting 201; return it."""
    response = await create(client, headers, **fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def claims(token: str) -> dict[str, Any]:
    """The (unchecked) claims of a JWT."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def png(width: int = 8, height: int = 8, *, padding: int = 0) -> bytes:
    """A real (tiny, grey) PNG; `padding` adds an ancillary chunk to make it bigger."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    if padding:
        body += chunk(b"teXt", b"pad\x00" + b"x" * padding)
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def encoded(size: tuple[int, int], image_format: str, **options: Any) -> bytes:
    """A real image of `size` in `image_format` ("PNG", "JPEG", "WEBP"), drawn with Pillow."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 60, 20)).save(buffer, image_format, **options)
    return buffer.getvalue()


def same_pixels(first: bytes, second: bytes) -> bool:
    """Whether two encoded images decode to the same pixels (a lossless re-encode keeps them)."""
    from PIL import Image, ImageChops

    one, other = (Image.open(io.BytesIO(data)).convert("RGBA") for data in (first, second))
    return one.size == other.size and ImageChops.difference(one, other).getbbox() is None
