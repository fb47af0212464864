"""sync() against the real stripe SDK and the local fake Stripe: each status -> the right entitlement, grace,
terminal states, concurrent syncs; plus payment_reversed and the Stripe calls subscribe makes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.infra.db import standalone
from shared.payments import idempotency
from shared.payments.providers import get_provider
from shared.settings import get_settings
from shared.subscriptions import service
from shared.subscriptions.schemas import SubscriptionRow
from tests.subscriptions.conftest import (
    API,
    Db,
    PlanSet,
    decide,
    entitlement_rows,
    subscription_rows,
)
from tests.support.clock import Clock
from tests.support.identity import SignedIn

pytestmark = pytest.mark.usefixtures("stripe")


async def subscribe(viewer: SignedIn, plan_code: str, *, key: str | None = None) -> Any:
    """service.subscribe in a transaction of its own (committed); the CheckoutStarted."""
    async with standalone() as conn:
        return await service.subscribe(
            conn,
            settings=get_settings(),
            user_id=viewer.user_id,
            email=viewer.email,
            plan_code=plan_code,
            interval="month",
            currency="USD",
            idempotency_key=key,
        )


async def sync(ref: str) -> SubscriptionRow | None:
    """service.sync in a transaction of its own."""
    async with standalone() as conn:
        return await service.sync(conn, provider=get_provider(get_settings()), subscription_ref=ref)


async def subscribed(server: Any, viewer: SignedIn, plan_code: str) -> str:
    """Subscribe, pay at the fake Stripe's checkout, deliver checkout completion; the subscription id."""
    started = await subscribe(viewer, plan_code)
    result = server.complete_checkout(started.checkout_id)
    provider = get_provider(get_settings())
    async with standalone() as conn:
        checkout = await provider.get_checkout(started.checkout_id)
        await service.checkout_completed(conn, provider=provider, checkout=checkout)
    return str(result["subscription"])


def at(stamp: int) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


async def test_subscribe_creates_customer_price_and_checkout_at_stripe(
    stripe: Any, db: Db, viewer: SignedIn, plans: PlanSet
) -> None:
    started = await subscribe(viewer, plans.low, key="first-try")
    assert started.trial_days == 7 and started.amount_minor == 999 and started.currency == "USD"
    session = stripe.get(started.checkout_id)
    assert session["mode"] == "subscription" and session["client_reference_id"] == str(viewer.user_id)
    assert session["metadata"]["plan_code"] == plans.low
    assert "checkout=success" in session["success_url"] and "checkout=cancel" in session["cancel_url"]
    customers = stripe.objects("customer")
    mine = [c for c in customers if c["email"] == viewer.email]
    assert len(mine) == 1
    stored = await db.execute(
        "select customer_ref from public.payment_customers where user_id = %s and provider = 'stripe'",
        (viewer.user_id,),
    )
    assert (await stored.fetchone()) == (mine[0]["id"],)
    price = await db.execute(
        "select provider, provider_price_ref from public.plan_prices where plan_code = %s", (plans.low,)
    )
    provider, ref = (await price.fetchone()) or (None, None)
    assert provider == "stripe" and stripe.get(ref)["unit_amount"] == 999
    # Every write carried an idempotency key; the checkout's is derived from the client's key.
    posts = stripe.requests_to("POST", "/v1/checkout/sessions")
    assert posts and all(request.headers.get("idempotency-key") for request in posts)


async def test_checkout_completion_grants_the_plan(
    stripe: Any, db: Db, viewer: SignedIn, plans: PlanSet
) -> None:
    ref = await subscribed(stripe, viewer, plans.high)
    [row] = await subscription_rows(db, viewer.user_id)
    assert row["status"] == "active" and row["plan_code"] == plans.high and row["provider_ref"] == ref
    item = stripe.get(ref)["items"]["data"][0]
    assert row["current_period_end"] == at(item["current_period_end"])
    [entitlement] = await entitlement_rows(db, viewer.user_id)
    assert entitlement["source"] == "stripe" and entitlement["source_ref"] == ref
    assert entitlement["ends_at"] == at(item["current_period_end"]) + timedelta(hours=48)
    decision = await decide(db, viewer.user_id, plans.title_id)
    assert decision.allowed and decision.kind == "subscription"
    assert (decision.max_streams, decision.max_height, decision.ads) == (2, 1080, False)


@pytest.mark.parametrize(
    ("status", "allowed", "revoked"),
    [
        ("trialing", True, False),
        ("active", True, False),
        ("past_due", True, False),  # within the grace period
        ("unpaid", True, False),  # within the grace period, like past_due
        ("paused", False, False),
        ("incomplete", False, False),
        ("canceled", False, True),
        ("incomplete_expired", False, True),
    ],
)
async def test_each_status_maps_to_its_entitlement(
    stripe: Any, db: Db, viewer: SignedIn, plans: PlanSet, status: str, allowed: bool, revoked: bool
) -> None:
    ref = await subscribed(stripe, viewer, plans.high)
    stripe.set_subscription(ref, status=status)
    row = await sync(ref)
    assert row is not None and row.status == status
    decision = await decide(db, viewer.user_id, plans.title_id)
    assert decision.allowed is allowed, decision
    [entitlement] = await entitlement_rows(db, viewer.user_id)
    assert (entitlement["revoked_at"] is not None) is revoked
    if status in ("past_due", "unpaid"):
        assert row.past_due_since is not None and row.grace_ends_at == row.past_due_since + timedelta(days=7)


async def test_unpaid_then_paid_restores_access(
    stripe: Any, db: Db, viewer: SignedIn, plans: PlanSet, clock: Clock
) -> None:
    ref = await subscribed(stripe, viewer, plans.high)
    stripe.set_subscription(ref, status="unpaid")
    await sync(ref)
    clock.advance(7 * 86400 + 60)  # past the grace period
    assert not (await decide(db, viewer.user_id, plans.title_id)).allowed
    stripe.set_subscription(ref, status="active")
    await sync(ref)
    assert (await decide(db, viewer.user_id, plans.title_id)).allowed


async def test_past_due_grace_then_free_then_restored_when_paid(
    stripe: Any, db: Db, viewer: SignedIn, plans: PlanSet, clock: Clock
) -> None:
    ref = await subscribed(stripe, viewer, plans.high)
    customer = stripe.get(ref)["customer"]
    stripe.set_card_failing(customer)
    renewal = stripe.advance_period(ref, paid=False)
    row = await sync(ref)
    assert row is not None and row.status == "past_due"
    first_seen = row.past_due_since
    assert first_seen == datetime.fromtimestamp(clock.now, UTC)
    assert row.grace_ends_at == first_seen + timedelta(days=7)
    assert (await decide(db, viewer.user_id, plans.title_id)).allowed  # grace

    clock.advance(3 * 86400)  # a later event does not restart the grace period
    row = await sync(ref)
    assert row is not None and row.past_due_since == first_seen

    clock.advance(4 * 86400 + 60)  # past the grace period: back to the free tier
    denied = await decide(db, viewer.user_id, plans.title_id)
    assert not denied.allowed and denied.code == "not_entitled"
    free = await decide(db, viewer.user_id, plans.free_title_id)
    settings = get_settings()
    assert free.allowed and free.kind == "free" and free.ads
    assert (free.max_streams, free.max_height) == (settings.free_max_streams, settings.free_max_height)
    async with standalone() as conn:
        view = await service.current(conn, settings=settings, user_id=viewer.user_id)
    assert view.status == "past_due" and not view.paid_access and view.limits.ads

    stripe.set_card_failing(customer, failing=False)
    stripe.pay_invoice(renewal["invoice"])
    row = await sync(ref)
    assert (
        row is not None
        and row.status == "active"
        and row.past_due_since is None
        and row.grace_ends_at is None
    )
    restored = await decide(db, viewer.user_id, plans.title_id)
    assert restored.allowed and restored.max_streams == 2


async def test_cancel_at_period_end_ends_access_exactly_then(
    stripe: Any, db: Db, viewer: SignedIn, plans: PlanSet
) -> None:
    ref = await subscribed(stripe, viewer, plans.high)
    stripe.set_subscription(ref, cancel_at_period_end=True)
    row = await sync(ref)
    assert row is not None and row.cancel_at_period_end
    [entitlement] = await entitlement_rows(db, viewer.user_id)
    assert entitlement["ends_at"] == row.current_period_end


async def test_canceled_stays_canceled_when_an_older_state_is_read_later(
    stripe: Any, db: Db, viewer: SignedIn, plans: PlanSet
) -> None:
    ref = await subscribed(stripe, viewer, plans.high)
    stripe.cancel_subscription(ref)
    row = await sync(ref)
    assert row is not None and row.status == "canceled"
    stripe.set_subscription(ref, status="active", ended_at=None, canceled_at=None)  # a stale replica
    row = await sync(ref)
    assert row is not None and row.status == "canceled"
    [stored] = await subscription_rows(db, viewer.user_id)
    assert stored["status"] == "canceled"
    [entitlement] = await entitlement_rows(db, viewer.user_id)
    assert entitlement["revoked_at"] is not None
    assert not (await decide(db, viewer.user_id, plans.title_id)).allowed


class _Interleaving:
    """The real Stripe provider, except that the first read of a subscription is slow and the subscription
    is set to cancel at period end while that read is on its way back (a second sync reads the newer one)."""

    def __init__(self, inner: Any, server: Any) -> None:
        self.inner = inner
        self.server = server
        self.name = inner.name
        self.reads = 0
        self.first_read = asyncio.Event()

    async def get_subscription(self, ref: str) -> Any:
        state = await self.inner.get_subscription(ref)
        self.reads += 1
        if self.reads == 1:
            self.server.set_subscription(ref, cancel_at_period_end=True)
            self.first_read.set()
            await asyncio.sleep(0.5)  # the second sync starts meanwhile
        return state


async def test_concurrent_syncs_of_one_subscription_leave_the_newest_state(
    stripe: Any, db: Db, viewer: SignedIn, plans: PlanSet
) -> None:
    ref = await subscribed(stripe, viewer, plans.high)
    provider = _Interleaving(get_provider(get_settings()), stripe)

    async def one_sync(wait: bool) -> SubscriptionRow | None:
        if wait:
            await provider.first_read.wait()
        async with standalone() as conn:
            return await service.sync(conn, provider=provider, subscription_ref=ref)  # type: ignore[arg-type]

    first, second = await asyncio.gather(one_sync(False), one_sync(True))
    assert first is not None and not first.cancel_at_period_end  # what it read, before the change
    assert second is not None and second.cancel_at_period_end  # read after the first one committed
    # Without the lock the second would read and write first, then the first's older read overwrite it.
    [stored] = await subscription_rows(db, viewer.user_id)
    assert stored["cancel_at_period_end"] is True
    [entitlement] = await entitlement_rows(db, viewer.user_id)
    assert entitlement["ends_at"] == stored["current_period_end"]


async def test_payment_reversed_revokes_the_subscription(
    stripe: Any, db: Db, viewer: SignedIn, plans: PlanSet
) -> None:
    await subscribed(stripe, viewer, plans.high)
    [row] = await subscription_rows(db, viewer.user_id)
    async with standalone() as conn:
        await service.payment_reversed(
            conn, provider_name="stripe", subscription_id=row["id"], reason="dispute"
        )
    assert not (await decide(db, viewer.user_id, plans.title_id)).allowed


async def test_parallel_first_customers_make_one_at_stripe(stripe: Any, db: Db, viewer: SignedIn) -> None:
    provider = get_provider(get_settings())

    async def one() -> str:
        async with standalone() as conn:
            return await service.customer_ref(
                conn, provider=provider, user_id=viewer.user_id, email=viewer.email
            )

    refs = await asyncio.gather(*(one() for _ in range(4)))
    assert len(set(refs)) == 1
    assert [c["id"] for c in stripe.objects("customer") if c["email"] == viewer.email] == [refs[0]]
    async with standalone() as conn:
        found = await service.user_for_customer(conn, provider_name="stripe", customer_ref=refs[0])
    assert found == viewer.user_id
    async with standalone() as conn:
        assert (
            await service.user_for_customer(conn, provider_name="stripe", customer_ref="cus_nobody") is None
        )


async def test_sync_of_a_foreign_price_is_ignored(
    stripe: Any, db: Db, viewer: SignedIn, plans: PlanSet
) -> None:
    ref = await subscribed(stripe, viewer, plans.high)
    await db.execute("delete from public.subscriptions where provider_ref = %s", (ref,))
    foreign = stripe.objects("price")[0]["id"]
    stripe.set_subscription(ref, price=foreign, metadata={})
    await db.execute("update public.plan_prices set provider = null, provider_price_ref = null "
                     "where provider_price_ref = %s", (foreign,))  # fmt: skip
    assert await sync(ref) is None
    assert await subscription_rows(db, viewer.user_id) == []


async def test_subscribe_with_a_key_reaches_stripe_once(
    stripe: Any, client: httpx.AsyncClient, viewer: SignedIn, plans: PlanSet
) -> None:
    key = f"stripe-{uuid.uuid4()}"
    headers = {**viewer.headers, "idempotency-key": key}
    answers = await asyncio.gather(
        *(client.post(f"{API}/subscribe", json={"plan_code": plans.high}, headers=headers) for _ in range(3))
    )
    assert [answer.status_code for answer in answers] == [201] * 3, [answer.text for answer in answers]
    again = await client.post(f"{API}/subscribe", json={"plan_code": plans.high}, headers=headers)
    assert again.status_code == 201 and again.json() == answers[0].json()
    assert len({answer.json()["checkout_id"] for answer in answers}) == 1
    posts = stripe.requests_to("POST", "/v1/checkout/sessions")
    assert len(posts) == 1
    assert posts[0].headers["idempotency-key"] == idempotency.provider_key(
        user_id=viewer.user_id, key=key, operation="subscribe"
    )
    assert len(stripe.objects("checkout.session")) == 1


async def test_change_plan_at_stripe(stripe: Any, db: Db, viewer: SignedIn, plans: PlanSet) -> None:
    ref = await subscribed(stripe, viewer, plans.high)
    async with standalone() as conn:
        view = await service.change_plan(
            conn,
            settings=get_settings(),
            user_id=viewer.user_id,
            plan_code=plans.top,
            interval=None,
            idempotency_key="change-1",
        )
    assert view.plan_code == plans.top and view.limits.max_streams == 4
    updates = stripe.requests_to("POST", f"/v1/subscriptions/{ref}")
    assert updates and updates[-1].headers.get("idempotency-key")
    item_price = stripe.get(ref)["items"]["data"][0]["price"]
    price_id = item_price["id"] if isinstance(item_price, dict) else item_price
    [stored] = await subscription_rows(db, viewer.user_id)
    assert stored["plan_code"] == plans.top and stored["amount_minor"] == 1999
    found = await db.execute(
        "select provider_price_ref from public.plan_prices where plan_code = %s", (plans.top,)
    )
    assert (await found.fetchone()) == (price_id,)
    decision = await decide(db, viewer.user_id, plans.title_id)
    assert decision.allowed and (decision.max_streams, decision.max_height) == (4, 2160)
