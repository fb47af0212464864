"""Subscriptions tests: plans and titles of a test's own, a movable clock, clients, the fake Stripe."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from tests.support import catalog_factory as factory
from tests.support.identity import SignedIn, client_for, signed_in_user

API = "/api/v1/payments"
Db = psycopg.AsyncConnection[Any]
STRIPE_KEY = "sk_test_subscriptions_0123456789"
STRIPE_WEBHOOK_SECRET = "whsec_test_subscriptions_0123456789"


def app() -> Any:
    """An app of the subscriptions routes only (checkouts are completed through the sandbox's functions)."""
    from shared.http.app import create_app
    from shared.subscriptions.routes import router

    if "app" not in _apps:
        _apps["app"] = create_app(router, group="subscriptions-test")
    return _apps["app"]


_apps: dict[str, Any] = {}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client from a fresh address (rate limits never bleed between tests)."""
    async with client_for(app()) as opened:
        yield opened


@pytest.fixture
async def viewer(database_url: str) -> SignedIn:
    """A new signed-in account per test (subscriptions are per account)."""
    return await signed_in_user(database_url)


class Clock:
    """The playback clock (shared.streaming.sessions.clock) that commerce reads, moved instead of sleeping."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    """A controllable clock starting a little after the real time.

    Frozen until advanced: starting it ahead means an object the fake Stripe stamps with the real time later
    in the test (a subscription's creation, where its entitlement starts) is never in the clock's future.
    """
    import time

    from shared.streaming import sessions

    moving = Clock(time.time() + 30)
    monkeypatch.setattr(sessions, "clock", moving)
    yield moving


@pytest.fixture
async def sandbox(settings_env: Callable[..., None]) -> AsyncIterator[None]:
    """The sandbox provider (the default)."""
    from shared.infra.loop_local import reset_all

    # One process serves every parallel request here (in production each has its instance and pool);
    # the sandbox, an "external system", takes connections of its own besides each request's.
    settings_env(PAYMENTS_PROVIDER="sandbox", DB_POOL_MAX="20")
    await reset_all()
    yield
    await reset_all()


@pytest.fixture
async def stripe(settings_env: Callable[..., None]) -> AsyncIterator[Any]:
    """The fake Stripe server running, the app's settings pointed at it; the server."""
    from shared.infra.loop_local import reset_all
    from tests.support.stripe_server import StripeServer

    server = StripeServer(api_key=STRIPE_KEY)
    server.start()
    settings_env(
        PAYMENTS_PROVIDER="stripe",
        STRIPE_SECRET_KEY=STRIPE_KEY,
        STRIPE_WEBHOOK_SECRET=STRIPE_WEBHOOK_SECRET,
        STRIPE_API_BASE=server.url,
        DB_POOL_MAX="20",
    )
    await reset_all()
    try:
        yield server
    finally:
        server.stop()
        await reset_all()


@dataclass
class PlanSet:
    """Three paid plans of the test's own (lower to higher tier) with monthly USD prices."""

    low: str
    high: str
    top: str
    title_id: uuid.UUID  # a subscription title needing the `high` tier
    free_title_id: uuid.UUID  # a free-with-ads title


async def make_plan(
    db: Db,
    *,
    tier: int,
    trial_days: int = 0,
    max_streams: int = 1,
    max_height: int = 720,
    prices: tuple[tuple[str, str, int], ...] = (("USD", "month", 999),),
) -> str:
    """A paid plan with its prices; its code."""
    code = f"sub-{uuid.uuid4().hex[:10]}"
    await db.execute(
        """insert into public.plans (code, name, description, tier, max_streams, max_height, ad_free,
                                     trial_days, sort_order)
           values (%s, %s, 'A test plan', %s, %s, %s, true, %s, 60)""",
        (code, f"Plan {code}", tier, max_streams, max_height, trial_days),
    )
    for currency, interval, amount in prices:
        await db.execute(
            "insert into public.plan_prices (plan_code, currency, billing_interval, amount_minor) "
            "values (%s, %s, %s, %s)",
            (code, currency, interval, amount),
        )
    return code


@pytest.fixture
async def plans(db: Db) -> PlanSet:
    """Plans at tiers 5/6/7 (so the default plans never qualify) and titles to decide on."""
    low = await make_plan(db, tier=5, trial_days=7, max_streams=1, max_height=720)
    high = await make_plan(
        db, tier=6, max_streams=2, max_height=1080, prices=(("USD", "month", 1499), ("USD", "year", 14990))
    )
    top = await make_plan(db, tier=7, max_streams=4, max_height=2160, prices=(("USD", "month", 1999),))
    title_id = await factory.title(
        db, f"Sub {uuid.uuid4().hex[:6]}", maturity_level="all", access="subscription", min_tier=6
    )
    free_title_id = await factory.title(
        db, f"Free {uuid.uuid4().hex[:6]}", maturity_level="all", access="free_with_ads", min_tier=0
    )
    return PlanSet(low=low, high=high, top=top, title_id=title_id, free_title_id=free_title_id)


async def rows(db: Db, query: str, *params: Any) -> list[dict[str, Any]]:
    """Every row of a query, as dicts."""
    async with db.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, params)
        return await cursor.fetchall()


async def subscription_rows(db: Db, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The user's subscriptions rows, oldest first."""
    return await rows(
        db, "select * from public.subscriptions where user_id = %s order by created_at", user_id
    )


async def entitlement_rows(db: Db, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The user's entitlements (revoked ones too)."""
    return await rows(db, "select * from public.entitlements where user_id = %s order by created_at", user_id)


async def decide(db: Db, user_id: uuid.UUID, title_id: uuid.UUID) -> Any:
    """entitlements.decide() for the user and title at the (moved) playback clock's now."""
    from shared.entitlements.service import decide as decide_now
    from shared.settings import get_settings

    found = await rows(db, "select id, access, min_tier from public.catalog_titles where id = %s", title_id)
    return await decide_now(db, user_id=user_id, title=found[0], settings=get_settings())


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert a problem+json answer with this status and code; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body
