"""Commerce test helpers: the payments app's client, Stripe pointed at the local fake, signed webhook
deliveries, plans and offers of a test's own, and what the database holds afterwards.

The `stripe_server` fixture (import `stripe_server_fixture` into the test module or conftest) starts
tests/support/stripe_server.py's server and sets PAYMENTS_PROVIDER=stripe, STRIPE_SECRET_KEY,
STRIPE_WEBHOOK_SECRET (WEBHOOK_SECRET) and STRIPE_API_BASE (the fake's URL), with a pool large enough for
20 parallel deliveries; the `stripe` fixture (import `stripe_fixture` too) adds a payments client to it.
The `sandbox` fixture (`sandbox_fixture`) selects the sandbox provider instead. Webhook payloads are
signed here with the test secret, the way Stripe does it (`t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`),
so the endpoint's verification is checked against an independent signer. The movable clock the signatures
and commerce read is tests/support/clock.py's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from tests.support import catalog_factory as factory
from tests.support.identity import SignedIn, client_for, random_ip
from tests.support.stripe_server import StripeServer

Db = psycopg.AsyncConnection[Any]
PAYMENTS = "/api/v1/payments"
WEBHOOK = f"{PAYMENTS}/webhooks/stripe"
WEBHOOK_SECRET = "whsec_test_events_0123456789abcdef"
STRIPE_KEY = "sk_test_events_0123456789"


def payments_app() -> Any:
    """api/payments.py's app."""
    from api.payments import app

    return app


def payments_client(client_ip: str | None = None) -> httpx.AsyncClient:
    """A client of the payments group from its own address."""
    return client_for(payments_app(), client_ip=client_ip or random_ip())


def now() -> float:
    """The playback clock's time (moved by the `clock` fixture), which the endpoint verifies against."""
    from shared.streaming import sessions

    return sessions.clock()


def signature(payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: float | None = None) -> str:
    """A Stripe-Signature header for the payload, signed at `timestamp` (default: the playback clock)."""
    t = int(now() if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def payload_of(event: dict[str, Any]) -> bytes:
    """The bytes Stripe would send for an event."""
    return json.dumps(event, separators=(",", ":")).encode()


async def deliver(
    client: httpx.AsyncClient,
    event: dict[str, Any] | bytes,
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: float | None = None,
    header: str | None = None,
) -> httpx.Response:
    """POST one signed event to the webhook endpoint (header: send this Stripe-Signature instead)."""
    payload = event if isinstance(event, bytes) else payload_of(event)
    signed = header if header is not None else signature(payload, secret=secret, timestamp=timestamp)
    return await client.post(
        WEBHOOK, content=payload, headers={"stripe-signature": signed, "content-type": "application/json"}
    )


async def deliver_ok(client: httpx.AsyncClient, event: dict[str, Any], outcome: str = "processed") -> None:
    """Deliver a signed event and assert the endpoint's answer."""
    response = await deliver(client, event)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "outcome": outcome}, (event.get("type"), response.json())


@dataclass
class Stripe:
    """The running fake Stripe, the payments client and the secret deliveries are signed with."""

    server: StripeServer
    client: httpx.AsyncClient
    secret: str = WEBHOOK_SECRET

    async def deliver(self, event: dict[str, Any], outcome: str = "processed") -> None:
        """Deliver a signed event; assert the outcome."""
        await deliver_ok(self.client, event, outcome)

    async def deliver_all(self, events: list[dict[str, Any]]) -> None:
        """Deliver events in the given order; each must be processed."""
        for event in events:
            await deliver_ok(self.client, event)

    async def refund(self, charge: Any, amount: int | None = None, *, outcome: str = "processed") -> None:
        """Refund a charge at the fake (all, or `amount`), deliver its charge.refunded; assert the outcome."""
        self.server.refund_charge(str(charge), amount=amount)
        await self.deliver(self.server.event("charge.refunded", str(charge)), outcome)


def stripe_settings(server_url: str, **extra: str) -> dict[str, str]:
    """Environment for Stripe against the fake server."""
    return {
        "PAYMENTS_PROVIDER": "stripe",
        "STRIPE_SECRET_KEY": STRIPE_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": server_url,
        # 20 parallel deliveries each hold a connection while the first one works.
        "DB_POOL_MAX": "25",
        **extra,
    }


@pytest.fixture(name="stripe_server")
async def stripe_server_fixture(settings_env: Callable[..., None]) -> AsyncIterator[StripeServer]:
    """The fake Stripe running and the settings pointed at it (fresh per-loop clients); the server."""
    from shared.infra.loop_local import reset_all

    server = StripeServer(api_key=STRIPE_KEY)
    server.start()
    settings_env(**stripe_settings(server.url))
    await reset_all()
    try:
        yield server
    finally:
        server.stop()
        await reset_all()


@pytest.fixture(name="stripe")
async def stripe_fixture(stripe_server: StripeServer) -> AsyncIterator[Stripe]:
    """The fake Stripe running (the `stripe_server` fixture, imported alongside) and a payments client."""
    async with payments_client() as client:
        yield Stripe(server=stripe_server, client=client)


@pytest.fixture(name="sandbox")
async def sandbox_fixture(settings_env: Callable[..., None]) -> AsyncIterator[None]:
    """The sandbox provider (the default outside production), with fresh per-loop clients."""
    from shared.infra.loop_local import reset_all

    # One process serves every parallel request here (in production each has its instance and pool), and
    # the sandbox, an "external system", takes connections of its own besides each request's: more than
    # the default 5.
    settings_env(PAYMENTS_PROVIDER="sandbox", DB_POOL_MAX="20")
    await reset_all()
    yield
    await reset_all()


# --- arranging ----------------------------------------------------------------------------------------


async def own_plan(
    db: Db,
    *,
    tier: int = 2,
    trial_days: int = 0,
    amount_minor: int = 1299,
    currency: str = "USD",
    interval: str = "month",
    max_streams: int = 2,
    max_height: int = 1080,
) -> str:
    """A paid plan of the test's own (the default plans stay as other tests expect them); its code."""
    code = f"evt-{uuid.uuid4().hex[:10]}"
    await db.execute(
        """insert into public.plans (code, name, description, tier, max_streams, max_height, ad_free,
                                     trial_days, sort_order)
           values (%s, %s, 'A test plan', %s, %s, %s, true, %s, 50)""",
        (code, f"Plan {code}", tier, max_streams, max_height, trial_days),
    )
    await db.execute(
        """insert into public.plan_prices (plan_code, currency, billing_interval, amount_minor)
           values (%s, %s, %s, %s)""",
        (code, currency, interval, amount_minor),
    )
    return code


async def offered_title(
    db: Db,
    *,
    access: str = "transactional",
    min_tier: int = 0,
    rental: int | None = 399,
    purchase: int | None = 1499,
    currency: str = "USD",
) -> uuid.UUID:
    """A published, everywhere-visible title (rated 'all') with a rental and a purchase offer."""
    title_id = await factory.title(
        db, f"Offer {uuid.uuid4().hex[:8]}", maturity_level="all", access=access, min_tier=min_tier
    )
    for kind, amount in (("rental", rental), ("purchase", purchase)):
        if amount is not None:
            await db.execute(
                """insert into public.title_offers (title_id, kind, currency, amount_minor)
                   values (%s, %s, %s, %s)""",
                (title_id, kind, currency, amount),
            )
    return title_id


# --- checking -----------------------------------------------------------------------------------------


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert a problem+json answer with this status and code; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


async def rows(db: Db, query: str, *params: Any) -> list[dict[str, Any]]:
    """Every row of a query, as dicts."""
    async with db.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, params)
        return await cursor.fetchall()


async def one(db: Db, query: str, *params: Any) -> dict[str, Any]:
    """The single row of a query."""
    found = await rows(db, query, *params)
    assert len(found) == 1, found
    return found[0]


async def invoice_of(db: Db, purchase_id: Any) -> dict[str, Any]:
    """The invoices row of a purchase."""
    return await one(db, "select * from public.invoices where purchase_id = %s", purchase_id)


async def event_rows(db: Db, event_id: str) -> list[dict[str, Any]]:
    """payment_events rows of an event id."""
    return await rows(db, "select * from public.payment_events where event_id = %s", event_id)


async def receipts(db: Db, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """Receipt mails queued for the user."""
    return await rows(
        db, "select * from public.mail_outbox where user_id = %s and template = 'receipt'", user_id
    )


async def entitlements(db: Db, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every entitlement row of the user (revoked ones too)."""
    return await rows(db, "select * from public.entitlements where user_id = %s order by created_at", user_id)


async def may_play(db: Db, user_id: uuid.UUID, title_id: uuid.UUID) -> Any:
    """entitlements.decide() for the user and title now (the playback clock), from the database."""
    from shared.entitlements.service import decide
    from shared.settings import get_settings

    title = await one(db, "select id, access, min_tier from public.catalog_titles where id = %s", title_id)
    return await decide(db, user_id=user_id, title=title, settings=get_settings())


# --- flows through the API and the fake Stripe ----------------------------------------------------------


async def subscribe(
    stripe: Stripe,
    user: SignedIn,
    plan_code: str,
    *,
    key: str | None = None,
    interval: str = "month",
    currency: str = "USD",
) -> httpx.Response:
    """POST /subscribe (with an Idempotency-Key when given)."""
    headers = {**user.headers, **({"idempotency-key": key} if key else {})}
    body = {"plan_code": plan_code, "interval": interval, "currency": currency}
    return await stripe.client.post(f"{PAYMENTS}/subscribe", json=body, headers=headers)


async def buy(
    stripe: Stripe, user: SignedIn, title_id: uuid.UUID, *, kind: str = "rent", key: str | None = None
) -> httpx.Response:
    """POST /purchase (rent or buy, in USD)."""
    headers = {**user.headers, **({"idempotency-key": key} if key else {})}
    body = {"title_id": str(title_id), "kind": kind, "currency": "USD"}
    return await stripe.client.post(f"{PAYMENTS}/purchase", json=body, headers=headers)


async def subscribed(
    stripe: Stripe, user: SignedIn, plan_code: str, *, tax_rate: str | None = None
) -> dict[str, Any]:
    """Subscribe, pay at the fake Checkout and deliver Stripe's three events; what complete_checkout made."""
    started = await subscribe(stripe, user, plan_code)
    assert started.status_code == 201, started.text
    made: dict[str, Any] = stripe.server.complete_checkout(started.json()["checkout_id"], tax_rate=tax_rate)
    await stripe.deliver_all(
        [
            stripe.server.event("checkout.session.completed", made["session"]),
            stripe.server.event("customer.subscription.created", made["subscription"]),
            stripe.server.event("invoice.paid", made["invoice"]),
        ]
    )
    return made


async def paid_purchase(
    stripe: Stripe, user: SignedIn, title_id: uuid.UUID, *, kind: str = "rent"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Rent or buy, pay at the fake Checkout, deliver checkout.session.completed: (purchase answer, made)."""
    started = await buy(stripe, user, title_id, kind=kind)
    assert started.status_code == 201, started.text
    made: dict[str, Any] = stripe.server.complete_checkout(started.json()["checkout_id"])
    await stripe.deliver(stripe.server.event("checkout.session.completed", made["session"]))
    return started.json(), made
