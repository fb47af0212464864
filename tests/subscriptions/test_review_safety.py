"""Review findings against the fake Stripe: a reversed charge ends the subscription, two checkouts cannot
make two subscriptions (the older checkout expires; a duplicate is cancelled and refunded), unpaid keeps
access during the grace period, a foreign checkout cannot bind a customer, a foreign price gives no plan."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.errors import Conflict
from shared.infra.db import standalone
from shared.payments.providers import get_provider
from shared.payments.providers.base import PriceSpec
from shared.settings import get_settings
from shared.subscriptions import service
from tests.subscriptions.conftest import Db, PlanSet, decide, entitlement_rows, subscription_rows
from tests.subscriptions.test_sync_stripe import subscribe, subscribed, sync
from tests.support.clock import Clock
from tests.support.commerce import rows
from tests.support.identity import SignedIn

pytestmark = pytest.mark.usefixtures("stripe")


async def complete(server: Any, checkout_id: str) -> dict[str, Any]:
    """Pay at the fake Stripe and hand the checkout's completion to the service; what the server made."""
    result: dict[str, Any] = server.complete_checkout(checkout_id)
    await checkout_event(checkout_id)
    return result


async def checkout_event(checkout_id: str) -> None:
    """checkout.session.* as the events module hands it over (the checkout re-read)."""
    provider = get_provider(get_settings())
    async with standalone() as conn:
        checkout = await provider.get_checkout(checkout_id)
        await service.checkout_completed(conn, provider=provider, checkout=checkout)


async def open_checkout(db: Db, user_id: uuid.UUID) -> str | None:
    found = await rows(
        db, "select open_checkout_ref from public.payment_customers where user_id = %s", user_id
    )
    return found[0]["open_checkout_ref"] if found else None


async def view(user_id: uuid.UUID) -> Any:
    async with standalone() as conn:
        return await service.current(conn, settings=get_settings(), user_id=user_id)


# --- 1. a refunded or disputed charge ends the subscription ----------------------------------------------


@pytest.mark.parametrize("reason", ["refund", "dispute"])
async def test_a_reversed_charge_cancels_the_subscription_at_the_provider(
    stripe: Any, db: Db, viewer: SignedIn, plans: PlanSet, reason: str
) -> None:
    ref = await subscribed(stripe, viewer, plans.high)
    [row] = await subscription_rows(db, viewer.user_id)
    for _ in range(2):  # a replayed event is harmless
        async with standalone() as conn:
            await service.payment_reversed(
                conn,
                provider_name="stripe",
                subscription_id=row["id"],
                reason=reason,  # type: ignore[arg-type]
            )
    # Stripe no longer bills it: ended at once, no renewal can be charged.
    assert stripe.get(ref)["status"] == "canceled"
    deletes = stripe.requests_to("DELETE", f"/v1/subscriptions/{ref}")
    assert deletes, "cancel_now was not called"
    [stored] = await subscription_rows(db, viewer.user_id)
    assert stored["status"] == "canceled"
    [entitlement] = await entitlement_rows(db, viewer.user_id)
    assert entitlement["revoked_at"] is not None
    assert not (await decide(db, viewer.user_id, plans.title_id)).allowed
    shown = await view(viewer.user_id)
    assert shown.is_free and shown.status == "free"
    # The account can subscribe again (nothing live blocks it).
    again = await subscribe(viewer, plans.high)
    assert again.checkout_id


# --- 2. two checkouts side by side ------------------------------------------------------------------------


async def test_a_new_checkout_expires_the_previous_one(
    stripe: Any, db: Db, viewer: SignedIn, plans: PlanSet
) -> None:
    first = await subscribe(viewer, plans.high)
    assert await open_checkout(db, viewer.user_id) == first.checkout_id
    second = await subscribe(viewer, plans.top)
    assert second.checkout_id != first.checkout_id
    assert stripe.get(first.checkout_id)["status"] == "expired"
    assert await open_checkout(db, viewer.user_id) == second.checkout_id
    with pytest.raises(ValueError, match="expired"):
        stripe.complete_checkout(first.checkout_id)  # the older tab can no longer be paid
    await complete(stripe, second.checkout_id)
    [row] = await subscription_rows(db, viewer.user_id)
    assert row["plan_code"] == plans.top
    assert await open_checkout(db, viewer.user_id) is None  # completed: no longer open


async def test_an_expired_checkout_is_no_longer_open(
    stripe: Any, db: Db, viewer: SignedIn, plans: PlanSet
) -> None:
    started = await subscribe(viewer, plans.high)
    stripe.expire_checkout(started.checkout_id)
    await checkout_event(started.checkout_id)
    assert await open_checkout(db, viewer.user_id) is None


async def test_a_previous_checkout_paid_meanwhile_is_already_subscribed(
    stripe: Any, db: Db, viewer: SignedIn, plans: PlanSet
) -> None:
    first = await subscribe(viewer, plans.high)
    stripe.complete_checkout(first.checkout_id)  # paid; its webhook not processed yet
    with pytest.raises(Conflict) as refused:
        await subscribe(viewer, plans.top)
    assert refused.value.code == "already_subscribed"
    assert len(stripe.objects("checkout.session")) == 1  # no second checkout was opened


async def test_a_duplicate_subscription_is_cancelled_refunded_and_not_granted(
    stripe: Any, db: Db, viewer: SignedIn, plans: PlanSet
) -> None:
    first = await subscribe(viewer, plans.high)
    # A checkout opened while the first one was not recorded (before this fix, or by a race).
    await db.execute(
        "update public.payment_customers set open_checkout_ref = null where user_id = %s", (viewer.user_id,)
    )
    second = await subscribe(viewer, plans.top)
    kept = stripe.complete_checkout(first.checkout_id)
    duplicate = stripe.complete_checkout(second.checkout_id)
    await checkout_event(first.checkout_id)
    # The duplicate seen first through its own subscription event (Stripe's order varies): same outcome.
    await sync(str(duplicate["subscription"]))
    await checkout_event(second.checkout_id)

    assert stripe.get(str(duplicate["subscription"]))["status"] == "canceled"
    assert stripe.get(str(duplicate["charge"]))["refunded"] is True
    assert stripe.get(str(kept["subscription"]))["status"] == "active"
    assert stripe.get(str(kept["charge"]))["refunded"] is False
    by_ref = {row["provider_ref"]: row for row in await subscription_rows(db, viewer.user_id)}
    assert by_ref[str(duplicate["subscription"])]["status"] == "canceled"
    assert by_ref[str(kept["subscription"])]["status"] == "active"
    live = [e for e in await entitlement_rows(db, viewer.user_id) if e["revoked_at"] is None]
    assert [e["source_ref"] for e in live] == [kept["subscription"]]
    decision = await decide(db, viewer.user_id, plans.title_id)
    assert decision.allowed and decision.max_streams == 2  # the high plan's, not the duplicate's top
    shown = await view(viewer.user_id)
    assert shown.plan_code == plans.high and shown.paid_access


# --- 3. unpaid keeps access until the grace end ------------------------------------------------------------


async def test_unpaid_keeps_access_until_the_grace_end(
    stripe: Any, db: Db, viewer: SignedIn, plans: PlanSet, clock: Clock
) -> None:
    ref = await subscribed(stripe, viewer, plans.high)
    stripe.set_subscription(ref, status="unpaid")  # Stripe marked it unpaid before our grace ran out
    row = await sync(ref)
    assert row is not None and row.status == "unpaid"
    assert row.past_due_since == datetime.fromtimestamp(clock.now, UTC)
    assert row.grace_ends_at == row.past_due_since + timedelta(days=7)
    assert (await decide(db, viewer.user_id, plans.title_id)).allowed
    assert (await view(viewer.user_id)).paid_access

    clock.advance(7 * 86400 + 60)
    assert not (await decide(db, viewer.user_id, plans.title_id)).allowed
    assert not (await view(viewer.user_id)).paid_access


async def test_past_due_then_unpaid_keeps_the_first_grace_end(
    stripe: Any, db: Db, viewer: SignedIn, plans: PlanSet, clock: Clock
) -> None:
    ref = await subscribed(stripe, viewer, plans.high)
    stripe.set_subscription(ref, status="past_due")
    first = await sync(ref)
    clock.advance(3 * 86400)
    stripe.set_subscription(ref, status="unpaid")
    row = await sync(ref)
    assert first is not None and row is not None and row.grace_ends_at == first.grace_ends_at
    assert (await decide(db, viewer.user_id, plans.title_id)).allowed
    clock.advance(4 * 86400 + 60)
    assert not (await decide(db, viewer.user_id, plans.title_id)).allowed


# --- 4. customer binding ----------------------------------------------------------------------------------


async def foreign_checkout(stripe: Any, *, claimed: uuid.UUID, metadata: dict[str, str]) -> dict[str, Any]:
    """A checkout made outside our subscribe (a Payment Link): a new customer, any client_reference_id."""
    provider = get_provider(get_settings())
    price = stripe.objects("price")[0]["id"] if stripe.objects("price") else None
    assert price is not None
    customer = await provider.ensure_customer(
        user_id=str(uuid.uuid4()), email="someone@example.com", idempotency_key=f"t-{uuid.uuid4()}"
    )
    checkout = await provider.create_subscription_checkout(
        customer_ref=customer,
        price_ref=price,
        trial_days=0,
        client_reference_id=str(claimed),
        metadata=metadata,
        success_url="https://example.com/s",
        cancel_url="https://example.com/c",
        idempotency_key=f"t-{uuid.uuid4()}",
    )
    result: dict[str, Any] = stripe.complete_checkout(checkout.id)
    await checkout_event(checkout.id)
    return result


async def test_a_checkout_naming_an_account_without_our_metadata_binds_nothing(
    stripe: Any, db: Db, viewer: SignedIn, plans: PlanSet
) -> None:
    await subscribe(viewer, plans.high)  # the plan's price exists at Stripe
    # An account without a customer yet (the one a Payment Link could otherwise claim).
    await db.execute("delete from public.payment_customers where user_id = %s", (viewer.user_id,))
    made = await foreign_checkout(stripe, claimed=viewer.user_id, metadata={})
    assert await rows(db, "select * from public.payment_customers where user_id = %s", viewer.user_id) == []
    assert await subscription_rows(db, viewer.user_id) == []
    assert (await sync(str(made["subscription"]))) is None  # still nobody's
    # Metadata naming another account than client_reference_id is not ours either.
    made = await foreign_checkout(stripe, claimed=viewer.user_id, metadata={"user_id": str(uuid.uuid4())})
    assert await subscription_rows(db, viewer.user_id) == []


async def test_our_checkout_with_a_new_customer_is_bound(
    stripe: Any, db: Db, viewer: SignedIn, plans: PlanSet
) -> None:
    await subscribe(viewer, plans.high)
    await db.execute("delete from public.payment_customers where user_id = %s", (viewer.user_id,))
    made = await foreign_checkout(stripe, claimed=viewer.user_id, metadata={"user_id": str(viewer.user_id)})
    [bound] = await rows(db, "select * from public.payment_customers where user_id = %s", viewer.user_id)
    assert bound["customer_ref"] == made["customer"]
    [row] = await subscription_rows(db, viewer.user_id)
    assert row["provider_ref"] == made["subscription"]


# --- 5. a price that is not ours --------------------------------------------------------------------------


async def test_a_foreign_price_gives_no_paid_plan(
    stripe: Any, db: Db, viewer: SignedIn, plans: PlanSet
) -> None:
    ref = await subscribed(stripe, viewer, plans.top)
    ours = stripe.get(ref)["items"]["data"][0]["price"]
    ours_id = ours["id"] if isinstance(ours, dict) else ours
    provider = get_provider(get_settings())
    cheap = await provider.ensure_price(
        price=PriceSpec(
            price_id=str(uuid.uuid4()), plan_code="elsewhere", plan_name="Cheap", currency="USD",
            amount_minor=100, interval="month",
        ),
        idempotency_key=f"t-{uuid.uuid4()}",
    )  # fmt: skip
    # The metadata still names our top price: it must not count.
    assert stripe.get(ref)["metadata"].get("price_id")
    stripe.set_subscription(ref, price=cheap)
    row = await sync(ref)
    assert row is not None and row.status == "active" and row.price_id is None
    assert not (await decide(db, viewer.user_id, plans.title_id)).allowed
    shown = await view(viewer.user_id)
    assert not shown.paid_access and shown.limits.ads

    stripe.set_subscription(ref, price=ours_id)  # back on our price: restored
    row = await sync(ref)
    assert row is not None and row.price_id is not None and row.plan_code == plans.top
    assert (await decide(db, viewer.user_id, plans.title_id)).allowed
