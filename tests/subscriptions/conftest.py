"""Subscriptions tests: plans and titles of a test's own, a movable clock, clients, the fake Stripe
(the clock is tests/support/clock.py's; the providers and row helpers tests/support/commerce.py's)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from tests.support import catalog_factory as factory
from tests.support.clock import clock_fixture
from tests.support.commerce import (
    entitlements,
    may_play,
    rows,
    sandbox_fixture,  # noqa: F401  (the `sandbox` fixture)
    stripe_server_fixture,  # noqa: F401  (the `stripe_server` fixture)
)
from tests.support.identity import SignedIn, client_for, signed_in_user
from tests.support.stripe_server import StripeServer

API = "/api/v1/payments"
Db = psycopg.AsyncConnection[Any]

entitlement_rows = entitlements  # the user's entitlements rows (revoked ones too), oldest first
decide = may_play  # entitlements.decide() for the user and title at the (moved) playback clock's now


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


# A controllable clock starting a little after the real time. Frozen until advanced: starting it ahead means
# an object the fake Stripe stamps with the real time later in the test (a subscription's creation, where its
# entitlement starts) is never in the clock's future.
clock = clock_fixture(ahead=30)


@pytest.fixture
def stripe(stripe_server: StripeServer) -> StripeServer:
    """The fake Stripe server running, the app's settings pointed at it (commerce's `stripe_server`)."""
    return stripe_server


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


async def subscription_rows(db: Db, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The user's subscriptions rows, oldest first."""
    return await rows(
        db, "select * from public.subscriptions where user_id = %s order by created_at", user_id
    )
