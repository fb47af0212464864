"""Purchase test helpers: a signed-in buyer, titles for sale (offers and pay-per-view events as SQL rows),
the payments app's client, the sandbox checkout driven over HTTP, and a movable commerce clock
(tests/support/clock.py's; the sandbox provider is tests/support/commerce.py's `sandbox` fixture)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from tests.support import catalog_factory as factory
from tests.support.clock import clock_fixture
from tests.support.commerce import (
    PAYMENTS,
    one,
    rows,
    sandbox_fixture,  # noqa: F401  (the `sandbox` fixture)
)
from tests.support.identity import SignedIn, client_for, random_ip, signed_in_user

Db = psycopg.AsyncConnection[Any]

clock = clock_fixture()


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


def tonight(now: datetime) -> dict[str, tuple[datetime, datetime]]:
    """ppv_event()'s windows: a show on sale from an hour ago until it starts in 2 hours; it runs 3 hours."""
    return {
        "sale": (now - timedelta(hours=1), now + timedelta(hours=2)),
        "view": (now + timedelta(hours=2), now + timedelta(hours=5)),
    }


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
    return await one(db, "select * from public.purchases where id = %s", purchase_id)


async def entitlements_of(db: Db, purchase_id: str | uuid.UUID) -> list[dict[str, Any]]:
    """The entitlement rows of a purchase (by its source_ref)."""
    return await rows(
        db, "select * from public.entitlements where source_ref = %s", f"purchase:{purchase_id}"
    )


async def decide(db: Db, who: SignedIn, title: dict[str, Any], at: datetime | None = None) -> Any:
    """The entitlement check playback makes."""
    from shared.entitlements.service import decide as entitlement_decide
    from shared.settings import get_settings

    return await entitlement_decide(db, user_id=who.user_id, title=title, at=at, settings=get_settings())
