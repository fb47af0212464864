"""Shared pieces of the plans tests: an admin, a viewer, a client on an app serving only the plans router."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from shared.http.app import create_app
from shared.plans.routes import router
from tests.support.commerce import problem  # noqa: F401  (for the tests)
from tests.support.identity import SignedIn, client_for, signed_in_user

API = "/api/v1/payments"
Db = psycopg.AsyncConnection[Any]

app = create_app(router, group="payments-test")


@pytest.fixture(scope="session")
async def admin(database_url: str) -> SignedIn:
    """A signed-in admin (commerce:write), one per run: sign-ups are slow on purpose."""
    return await signed_in_user(database_url, roles=["admin"])


@pytest.fixture(scope="session")
async def viewer(database_url: str) -> SignedIn:
    """A signed-in plain viewer."""
    return await signed_in_user(database_url)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the plans router from a fresh address."""
    async with client_for(app) as opened:
        yield opened


def unique_code(prefix: str = "t") -> str:
    """A plan code no other test uses (the database is shared by the run; default plans stay untouched)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def windows(**shift_hours: float) -> dict[str, str]:
    """A valid set of ppv windows around now (sale now-1h..+24h, view +24h..+27h), shifted per field."""
    base = datetime.now(UTC)
    values = {
        "sale_starts_at": base - timedelta(hours=1),
        "sale_ends_at": base + timedelta(hours=24),
        "view_starts_at": base + timedelta(hours=24),
        "view_ends_at": base + timedelta(hours=27),
    }
    for name, hours in shift_hours.items():
        values[name] = base + timedelta(hours=hours)
    return {name: value.isoformat() for name, value in values.items()}


async def create_plan(client: httpx.AsyncClient, who: SignedIn, **fields: Any) -> dict[str, Any]:
    """POST /plans (a fresh code unless given); the answer's body."""
    body = {"code": unique_code(), "name": "Test plan", "max_streams": 2, "max_height": 1080, **fields}
    response = await client.post(f"{API}/plans", json=body, headers=who.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def audit_events(db: Db, event: str, key: str, value: str) -> list[dict[str, Any]]:
    """The details of audit rows of this event whose details[key] is value."""
    cursor = await db.execute(
        "select details from public.audit_log where event = %s and details ->> %s = %s order by id",
        (event, key, value),
    )
    return [row[0] for row in await cursor.fetchall()]
