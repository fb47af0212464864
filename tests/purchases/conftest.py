"""Purchase test helpers: a signed-in buyer, titles for sale (offers and pay-per-view events as SQL rows),
the payments app's client, the sandbox checkout driven over HTTP, and a movable commerce clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from tests.support import catalog_factory as factory
from tests.support.identity import SignedIn, client_for, random_ip, signed_in_user

Db = psycopg.AsyncConnection[Any]
PAYMENTS = "/api/v1/payments"


class Clock:
    """The playback clock (shared.streaming.sessions.clock), which commerce reads too; moved, never slept."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move time forward by a timedelta's keywords (hours=..., days=...)."""
        self.now += timedelta(**delta).total_seconds()

    @property
    def at(self) -> datetime:
        """The current time as an aware datetime."""
        return datetime.fromtimestamp(self.now, UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    """A controllable clock starting at the real time."""
    import time

    from shared.streaming import sessions

    moving = Clock(time.time())
    monkeypatch.setattr(sessions, "clock", moving)
    yield moving


@pytest.fixture
async def sandbox(settings_env: Any) -> AsyncIterator[None]:
    """The sandbox provider (the default outside production), with fresh per-loop clients."""
    from shared.infra.loop_local import reset_all

    # Parallel requests each hold a pooled connection while the sandbox (an "external system") takes its
    # own: more than the default 5 (one request per serverless instance in production).
    settings_env(PAYMENTS_PROVIDER="sandbox", DB_POOL_MAX="20")
    await reset_all()
    yield
    await reset_all()


@pytest.fixture
async def client(sandbox: None) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the payments group from its own random address."""
    from api.payments import app

    async with client_for(app, client_ip=random_ip()) as opened:
        yield opened


@pytest.fixture
async def buyer(database_url: str) -> SignedIn:
    """A fresh signed-in account (no profile selected: an adult viewer)."""
    return await signed_in_user(database_url)


async def title(db: Db, **columns: Any) -> dict[str, Any]:
    """A published transactional title; the mapping decide() takes."""
    columns.setdefault("access", "transactional")
    title_id = await factory.title(db, f"For sale {uuid.uuid4().hex[:8]}", **columns)
    return {"id": title_id, "access": columns["access"], "min_tier": 0}


async def offer(
    db: Db,
    title_id: uuid.UUID,
    kind: str,
    amount_minor: int = 399,
    currency: str = "USD",
    ppv_event_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """An active rental / purchase / ppv offer."""
    cursor = await db.execute(
        """insert into public.title_offers (title_id, kind, ppv_event_id, currency, amount_minor)
           values (%s, %s, %s, %s, %s) returning id""",
        (title_id, kind, ppv_event_id, currency, amount_minor),
    )
    row = await cursor.fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


async def ppv_event(
    db: Db,
    title_id: uuid.UUID,
    *,
    sale: tuple[datetime, datetime],
    view: tuple[datetime, datetime],
    amount_minor: int = 1499,
) -> uuid.UUID:
    """A pay-per-view event with its USD ticket offer."""
    cursor = await db.execute(
        """insert into public.ppv_events (title_id, name, sale_starts_at, sale_ends_at, view_starts_at,
                                          view_ends_at)
           values (%s, 'Championship night', %s, %s, %s, %s) returning id""",
        (title_id, *sale, *view),
    )
    row = await cursor.fetchone()
    assert row is not None
    event_id = uuid.UUID(str(row[0]))
    await offer(db, title_id, "ppv", amount_minor, ppv_event_id=event_id)
    return event_id


async def buy(
    client: httpx.AsyncClient,
    who: SignedIn,
    title_id: uuid.UUID,
    kind: str,
    *,
    key: str | None = None,
    **fields: Any,
) -> httpx.Response:
    """POST /purchase."""
    headers = dict(who.headers)
    if key is not None:
        headers["idempotency-key"] = key
    body = {"title_id": str(title_id), "kind": kind, **fields}
    return await client.post(f"{PAYMENTS}/purchase", json=body, headers=headers)


async def started(
    client: httpx.AsyncClient, who: SignedIn, title_id: uuid.UUID, kind: str, **fields: Any
) -> Any:
    """POST /purchase, asserting 201; its body."""
    response = await buy(client, who, title_id, kind, **fields)
    assert response.status_code == 201, response.text
    return response.json()


async def complete(client: httpx.AsyncClient, checkout_id: str) -> None:
    """Pay on the sandbox checkout page (which delivers the events like Stripe's webhooks)."""
    response = await client.post(f"{PAYMENTS}/sandbox/checkout/{checkout_id}/complete")
    assert response.status_code == 303, response.text


async def decline(client: httpx.AsyncClient, checkout_id: str) -> None:
    """Decline on the sandbox checkout page."""
    response = await client.post(f"{PAYMENTS}/sandbox/checkout/{checkout_id}/decline")
    assert response.status_code == 303, response.text


async def paid(
    client: httpx.AsyncClient, who: SignedIn, title_id: uuid.UUID, kind: str, **fields: Any
) -> Any:
    """Start a purchase and pay it; the POST's body."""
    body = await started(client, who, title_id, kind, **fields)
    await complete(client, body["checkout_id"])
    return body


async def purchase_row(db: Db, purchase_id: str | uuid.UUID) -> dict[str, Any]:
    """The purchases row."""
    from psycopg.rows import dict_row

    async with db.cursor(row_factory=dict_row) as cursor:
        await cursor.execute("select * from public.purchases where id = %s", (purchase_id,))
        row = await cursor.fetchone()
    assert row is not None
    return row


async def entitlements_of(db: Db, purchase_id: str | uuid.UUID) -> list[dict[str, Any]]:
    """The entitlement rows of a purchase (by its source_ref)."""
    from psycopg.rows import dict_row

    async with db.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            "select * from public.entitlements where source_ref = %s", (f"purchase:{purchase_id}",)
        )
        return await cursor.fetchall()


async def decide(db: Db, who: SignedIn, title: dict[str, Any], at: datetime | None = None) -> Any:
    """The entitlement check playback makes."""
    from shared.entitlements.service import decide as entitlement_decide
    from shared.settings import get_settings

    return await entitlement_decide(db, user_id=who.user_id, title=title, at=at, settings=get_settings())


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert a problem+json answer with this status and code; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body
