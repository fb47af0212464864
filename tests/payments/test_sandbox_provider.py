"""The sandbox payment provider against the real database: every PaymentProvider method, idempotency keys,
Stripe-shaped events in order, the clock (trial end, renewals paid and failed, cancellation at period end,
stale checkouts) and deliver_pending exactly once under two concurrent callers. Time is moved, not slept."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from shared.errors import Conflict
from shared.payments.providers import sandbox
from shared.payments.providers.base import (
    CheckoutSession,
    ObjectNotFound,
    PriceSpec,
    ProviderError,
    ProviderRefused,
)
from shared.payments.providers.sandbox import SandboxProvider
from shared.settings import get_settings
from tests.support.clock import Clock, clock_fixture

Db = psycopg.AsyncConnection[Any]
DAY = 24 * 3600
URLS = {
    "success_url": "http://localhost:3000/account/billing?checkout=success",
    "cancel_url": "http://localhost:3000/account/billing?checkout=cancel",
}


clock = clock_fixture(whole_second=True)  # the playback clock commerce reads, moved by the test


@pytest.fixture
def provider() -> SandboxProvider:
    """The sandbox provider on the test settings."""
    return SandboxProvider(get_settings())


def key() -> str:
    """A fresh idempotency key."""
    return f"test-{uuid.uuid4()}"


async def price(
    provider: SandboxProvider, amount: int = 699, *, plan: str = "basic", interval: str = "month"
) -> str:
    """A new sandbox price."""
    spec = PriceSpec(
        price_id=str(uuid.uuid4()),
        plan_code=plan,
        plan_name=plan.title(),
        currency="USD",
        amount_minor=amount,
        interval=interval,  # type: ignore[arg-type]
    )
    return await provider.ensure_price(price=spec, idempotency_key=key())


async def customer(provider: SandboxProvider) -> str:
    """A new sandbox customer (no account behind it)."""
    return await provider.ensure_customer(
        user_id=str(uuid.uuid4()), email="sbx@example.com", idempotency_key=key()
    )


async def sub_checkout(
    provider: SandboxProvider, cus: str, price_ref: str, trial_days: int = 0
) -> CheckoutSession:
    """An open subscription checkout."""
    return await provider.create_subscription_checkout(
        customer_ref=cus,
        price_ref=price_ref,
        trial_days=trial_days,
        client_reference_id=str(uuid.uuid4()),
        metadata={"plan_code": "basic"},
        idempotency_key=key(),
        **URLS,
    )


async def events_of(db: Db, *object_ids: str) -> list[dict[str, Any]]:
    """The recorded events about these objects, in creation order."""
    cursor = await db.execute(
        """select data from public.sandbox_payment_objects
           where kind = 'event' and data->'event'->'data'->'object'->>'id' = any(%s)
           order by created_at, id""",
        (list(object_ids),),
    )
    return [row[0] for row in await cursor.fetchall()]


async def types_of(db: Db, *object_ids: str) -> list[str]:
    """The event types about these objects, in order."""
    return [row["event"]["type"] for row in await events_of(db, *object_ids)]


async def subscribed(
    provider: SandboxProvider, db: Db, *, trial_days: int = 0, amount: int = 699
) -> dict[str, Any]:
    """A completed subscription checkout: the session, subscription and first invoice."""
    cus = await customer(provider)
    started = await sub_checkout(provider, cus, await price(provider, amount), trial_days)
    session = await sandbox.complete_checkout(started.id)
    sub = await provider.get_subscription(session["subscription"])
    return {"customer": cus, "session": session, "subscription": sub, "invoice": session["invoice"]}


# --- customers, prices, idempotency -----------------------------------------------------------------------


async def test_customer_and_price_honour_idempotency_keys(provider: SandboxProvider) -> None:
    user = str(uuid.uuid4())
    same = key()
    first = await provider.ensure_customer(user_id=user, email="a@example.com", idempotency_key=same)
    again = await provider.ensure_customer(user_id=user, email="a@example.com", idempotency_key=same)
    other = await provider.ensure_customer(user_id=user, email="a@example.com", idempotency_key=key())
    assert first == again != other
    assert first.startswith("cus_sbx_")
    with pytest.raises(ProviderError) as reused:
        await provider.ensure_customer(user_id=str(uuid.uuid4()), email="a@example.com", idempotency_key=same)
    assert reused.value.code == "idempotency_error"

    spec = PriceSpec(
        price_id=str(uuid.uuid4()),
        plan_code="basic",
        plan_name="Basic",
        currency="EUR",
        amount_minor=699,
        interval="year",
    )
    price_key = key()
    made = await provider.ensure_price(price=spec, idempotency_key=price_key)
    assert made.startswith("price_sbx_")
    assert await provider.ensure_price(price=spec, idempotency_key=price_key) == made
    known = PriceSpec(**{**spec.__dict__, "provider_ref": made})
    assert await provider.ensure_price(price=known, idempotency_key=key()) == made


async def test_parallel_calls_with_one_key_create_one_customer(provider: SandboxProvider) -> None:
    same, user = key(), str(uuid.uuid4())
    made = await asyncio.gather(
        *(
            provider.ensure_customer(user_id=user, email="p@example.com", idempotency_key=same)
            for _ in range(5)
        )
    )
    assert len(set(made)) == 1


async def test_unknown_objects_are_not_found(provider: SandboxProvider) -> None:
    for read in (provider.get_checkout, provider.get_subscription, provider.get_invoice, provider.get_charge):
        with pytest.raises(ObjectNotFound):
            await read("xx_sbx_0000")
    with pytest.raises(ObjectNotFound):
        await provider.charge_for_payment("pi_sbx_missing")
    with pytest.raises(ObjectNotFound):
        await sub_checkout(provider, "cus_sbx_missing", await price(provider))
    with pytest.raises(ObjectNotFound):
        await sandbox.complete_checkout("cs_sbx_" + "0" * 32)


# --- checkout: subscriptions ------------------------------------------------------------------------------


async def test_subscription_checkout_with_trial(provider: SandboxProvider, db: Db, clock: Clock) -> None:
    cus = await customer(provider)
    price_ref = await price(provider)
    same = key()
    kwargs: dict[str, Any] = {
        "customer_ref": cus,
        "price_ref": price_ref,
        "trial_days": 7,
        "client_reference_id": "user-1",
        "metadata": {"plan_code": "basic"},
        **URLS,
    }
    started = await provider.create_subscription_checkout(idempotency_key=same, **kwargs)
    assert started == await provider.create_subscription_checkout(idempotency_key=same, **kwargs)
    assert started.id.startswith("cs_sbx_") and len(started.id) == len("cs_sbx_") + 32
    assert (
        started.url
        == f"{str(get_settings().public_base_url).rstrip('/')}/api/v1/payments/sandbox/checkout/{started.id}"
    )
    assert (started.status, started.payment_status, started.mode) == ("open", "unpaid", "subscription")
    assert started.amount_total == 0 and started.currency == "USD" and started.client_reference_id == "user-1"

    session = await sandbox.complete_checkout(started.id)
    done = await provider.get_checkout(started.id)
    assert (done.status, done.payment_status) == ("complete", "no_payment_required")
    assert done.subscription_ref is not None and done.invoice_ref == session["invoice"]
    sub = await provider.get_subscription(done.subscription_ref)
    assert sub.status == "trialing" and sub.customer_ref == cus and sub.price_ref == price_ref
    assert sub.amount_minor == 699 and sub.interval == "month" and sub.currency == "USD"
    assert sub.current_period_start == clock.at
    assert sub.trial_end == sub.current_period_end == clock.at + timedelta(days=7)
    assert sub.metadata == {"plan_code": "basic"} and not sub.cancel_at_period_end
    assert sub.latest_invoice_ref == done.invoice_ref and sub.item_ref.startswith("si_sbx_")
    invoice = await provider.get_invoice(done.invoice_ref or "")
    assert (invoice.status, invoice.total_minor, invoice.amount_paid_minor) == ("paid", 0, 0)
    assert (
        invoice.payment_ref is None
        and invoice.tax_lines == ()
        and invoice.billing_reason == "subscription_create"
    )
    assert invoice.subscription_ref == sub.id and invoice.number and invoice.paid_at == clock.at

    ids = (started.id, sub.id, invoice.id)
    assert await types_of(db, *ids) == [
        "checkout.session.completed",
        "customer.subscription.created",
        "invoice.paid",
    ]
    again = await sandbox.complete_checkout(started.id)  # a second click: nothing twice
    assert again["subscription"] == sub.id
    assert len(await events_of(db, *ids)) == 3
    created = (await events_of(db, sub.id))[0]
    assert created["delivered"] is False and created["event"]["id"].startswith("evt_sbx_")
    assert created["event"]["data"]["object"]["status"] == "trialing"


async def test_subscription_checkout_without_trial_charges_at_once(
    provider: SandboxProvider, db: Db, clock: Clock
) -> None:
    made = await subscribed(provider, db, amount=1299)
    sub, session = made["subscription"], made["session"]
    assert session["payment_status"] == "paid" and session["amount_total"] == 1299
    assert sub.status == "active" and sub.trial_end is None
    assert sub.current_period_end == sandbox._add_months(clock.at, 1)
    invoice = await provider.get_invoice(made["invoice"])
    assert (invoice.status, invoice.total_minor, invoice.amount_paid_minor) == ("paid", 1299, 1299)
    assert invoice.lines[0].amount_minor == 1299 and invoice.lines[0].period_end == sub.current_period_end
    assert invoice.payment_ref is not None and invoice.payment_ref.startswith("pi_sbx_")
    charge = await provider.charge_for_payment(invoice.payment_ref)
    assert charge is not None and charge.id.startswith("ch_sbx_")
    assert (charge.amount_minor, charge.refunded, charge.disputed, charge.currency) == (
        1299,
        False,
        False,
        "USD",
    )
    assert await provider.get_charge(charge.id) == charge


async def test_month_arithmetic_keeps_the_anchor_day() -> None:
    jan31 = datetime(2027, 1, 31, 12, tzinfo=UTC)
    assert sandbox._add_months(jan31, 1) == datetime(2027, 2, 28, 12, tzinfo=UTC)
    feb = sandbox._period_end(jan31, datetime(2027, 2, 1, tzinfo=UTC), "month")
    assert feb == datetime(2027, 2, 28, 12, tzinfo=UTC)
    assert sandbox._period_end(jan31, feb, "month") == datetime(2027, 3, 31, 12, tzinfo=UTC)
    assert sandbox._period_end(jan31, jan31, "year") == datetime(2028, 1, 31, 12, tzinfo=UTC)


# --- checkout: payments, refunds, disputes ---------------------------------------------------------------


async def pay_checkout(provider: SandboxProvider, cus: str, amount: int = 399) -> CheckoutSession:
    """An open one-off payment checkout."""
    return await provider.create_payment_checkout(
        customer_ref=cus,
        currency="EUR",
        amount_minor=amount,
        description="Rental: The Film",
        client_reference_id="user-2",
        metadata={"purchase_id": str(uuid.uuid4())},
        idempotency_key=key(),
        **URLS,
    )


async def test_payment_checkout_refund_and_dispute(provider: SandboxProvider, db: Db) -> None:
    cus = await customer(provider)
    started = await pay_checkout(provider, cus)
    assert (started.mode, started.amount_total, started.currency) == ("payment", 399, "EUR")
    await sandbox.complete_checkout(started.id)
    done = await provider.get_checkout(started.id)
    assert (done.status, done.payment_status) == ("complete", "paid")
    assert done.payment_ref is not None and done.payment_ref.startswith("pi_sbx_")
    assert done.metadata == started.metadata
    charge = await provider.charge_for_payment(done.payment_ref)
    assert charge is not None and charge.payment_ref == done.payment_ref and charge.amount_minor == 399
    assert await types_of(db, started.id) == ["checkout.session.completed"]

    partial = await sandbox.refund(done.payment_ref, amount_minor=100)
    assert (partial["amount_refunded"], partial["refunded"]) == (100, False)
    with pytest.raises(Conflict) as too_much:
        await sandbox.refund(done.payment_ref, amount_minor=300)
    assert too_much.value.code == "refund_too_large"
    full = await sandbox.refund(done.payment_ref)
    assert (full["amount_refunded"], full["refunded"]) == (399, True)
    with pytest.raises(Conflict):
        await sandbox.refund(done.payment_ref)
    after = await provider.get_charge(charge.id)
    assert after.refunded and after.amount_refunded_minor == 399
    assert await types_of(db, charge.id) == ["charge.refunded", "charge.refunded"]

    opened = await sandbox.dispute(done.payment_ref)
    assert opened["id"].startswith("dp_sbx_") and opened["charge"] == charge.id
    assert (await provider.get_charge(charge.id)).disputed
    [event] = await events_of(db, opened["id"])
    assert event["event"]["type"] == "charge.dispute.created"
    assert event["event"]["data"]["object"]["charge"] == charge.id
    with pytest.raises(Conflict):
        await sandbox.dispute(charge.id)


async def test_decline_expires_the_session_once(provider: SandboxProvider, db: Db) -> None:
    started = await pay_checkout(provider, await customer(provider))
    declined = await sandbox.decline_checkout(started.id)
    assert declined["status"] == "expired"
    assert (await provider.get_checkout(started.id)).status == "expired"
    await sandbox.decline_checkout(started.id)
    still = await sandbox.complete_checkout(started.id)  # too late to pay
    assert still["status"] == "expired" and still["payment_intent"] is None
    assert await types_of(db, started.id) == ["checkout.session.expired"]


async def test_tick_expires_stale_checkouts(provider: SandboxProvider, db: Db, clock: Clock) -> None:
    started = await pay_checkout(provider, await customer(provider))
    clock.advance(DAY + 1)
    async with db.transaction():
        assert await sandbox.tick(db, settings=get_settings(), at=clock.at) >= 1
    assert (await provider.get_checkout(started.id)).status == "expired"
    assert await types_of(db, started.id) == ["checkout.session.expired"]


# --- subscription life: renewals, failures, cancellation ------------------------------------------------


async def tick(db: Db, clock: Clock) -> int:
    """One sandbox tick at the clock's time, committed."""
    async with db.transaction():
        return await sandbox.tick(db, settings=get_settings(), at=clock.at)


async def test_trial_end_renews_then_cancellation_ends_at_period_end(
    provider: SandboxProvider, db: Db, clock: Clock
) -> None:
    made = await subscribed(provider, db, trial_days=3)
    sub = made["subscription"]
    trial_end = sub.current_period_end
    clock.advance(3 * DAY)
    await tick(db, clock)
    renewed = await provider.get_subscription(sub.id)
    assert renewed.status == "active" and renewed.current_period_start == trial_end
    assert renewed.current_period_end == sandbox._add_months(trial_end, 1)
    invoice = await provider.get_invoice(renewed.latest_invoice_ref or "")
    assert (invoice.status, invoice.total_minor, invoice.billing_reason) == (
        "paid",
        699,
        "subscription_cycle",
    )
    assert (await types_of(db, sub.id, invoice.id))[-2:] == ["customer.subscription.updated", "invoice.paid"]

    cancel_key = key()
    canceling = await provider.set_cancel_at_period_end(
        subscription_ref=sub.id, cancel=True, idempotency_key=cancel_key
    )
    assert (
        canceling.cancel_at_period_end and canceling.canceled_at == clock.at and canceling.status == "active"
    )
    replay = await provider.set_cancel_at_period_end(
        subscription_ref=sub.id, cancel=True, idempotency_key=cancel_key
    )
    assert replay == canceling
    resumed = await provider.set_cancel_at_period_end(
        subscription_ref=sub.id, cancel=False, idempotency_key=key()
    )
    assert not resumed.cancel_at_period_end and resumed.canceled_at is None
    await provider.set_cancel_at_period_end(subscription_ref=sub.id, cancel=True, idempotency_key=key())
    assert (await types_of(db, sub.id))[-3:] == ["customer.subscription.updated"] * 3

    clock.advance(10 * DAY)
    await tick(db, clock)
    assert (await provider.get_subscription(sub.id)).status == "active"  # not yet at the period end
    clock.now = renewed.current_period_end.timestamp()
    await tick(db, clock)
    ended = await provider.get_subscription(sub.id)
    assert ended.status == "canceled" and ended.ended_at == renewed.current_period_end
    assert (await types_of(db, sub.id))[-1] == "customer.subscription.deleted"
    before = len(await events_of(db, sub.id))
    clock.advance(40 * DAY)
    await tick(db, clock)
    assert len(await events_of(db, sub.id)) == before
    with pytest.raises(ProviderRefused) as refused:
        await provider.set_cancel_at_period_end(subscription_ref=sub.id, cancel=False, idempotency_key=key())
    assert refused.value.code == "subscription_ended"


async def test_failed_renewal_goes_past_due_until_the_card_works(
    provider: SandboxProvider, db: Db, clock: Clock
) -> None:
    made = await subscribed(provider, db)
    sub = made["subscription"]
    await sandbox.set_card_fails(made["customer"], fails=True)
    clock.now = sub.current_period_end.timestamp()
    await tick(db, clock)
    due = await provider.get_subscription(sub.id)
    assert due.status == "past_due" and due.current_period_start == sub.current_period_end
    unpaid = await provider.get_invoice(due.latest_invoice_ref or "")
    assert (unpaid.status, unpaid.amount_paid_minor, unpaid.total_minor) == ("open", 0, 699)
    assert (await types_of(db, sub.id, unpaid.id))[-2:] == [
        "customer.subscription.updated",
        "invoice.payment_failed",
    ]
    clock.advance(3600)
    count = len(await events_of(db, sub.id, unpaid.id))
    await tick(db, clock)  # still declining: nothing new
    assert len(await events_of(db, sub.id, unpaid.id)) == count

    await sandbox.set_card_fails(made["customer"], fails=False)
    await tick(db, clock)
    paid = await provider.get_subscription(sub.id)
    assert paid.status == "active" and paid.current_period_end == due.current_period_end
    invoice = await provider.get_invoice(unpaid.id)
    assert invoice.status == "paid" and invoice.amount_paid_minor == 699 and invoice.payment_ref
    assert (await types_of(db, sub.id, unpaid.id))[-2:] == ["invoice.paid", "customer.subscription.updated"]


async def test_renew_dev_control_paid_and_failed(provider: SandboxProvider, db: Db, clock: Clock) -> None:
    made = await subscribed(provider, db)
    sub = made["subscription"]
    clock.advance(5 * DAY)
    early = await sandbox.renew(sub.id, outcome="paid")
    assert early["status"] == "active" and early["current_period_start"] == int(clock.now)
    failed = await sandbox.renew(sub.id, outcome="failed")
    assert failed["status"] == "past_due"
    retried = await sandbox.renew(sub.id, outcome="failed")  # a retry of the open invoice
    assert retried["latest_invoice"] == failed["latest_invoice"]
    recovered = await sandbox.renew(sub.id, outcome="paid")
    assert recovered["status"] == "active" and recovered["latest_invoice"] == failed["latest_invoice"]
    assert (await provider.get_invoice(failed["latest_invoice"])).status == "paid"


# --- changing the price -----------------------------------------------------------------------------------


async def test_upgrade_prorates_at_once_and_downgrade_waits(
    provider: SandboxProvider, db: Db, clock: Clock
) -> None:
    made = await subscribed(provider, db, amount=699)
    sub = made["subscription"]
    premium = await price(provider, 1999, plan="premium")
    span = (sub.current_period_end - sub.current_period_start).total_seconds()
    clock.advance(span * 0.4)
    remaining = (sub.current_period_end - clock.at).total_seconds() / span
    upgrade_key = key()
    upgraded = await provider.change_price(
        subscription_ref=sub.id,
        item_ref=sub.item_ref,
        price_ref=premium,
        upgrade=True,
        idempotency_key=upgrade_key,
    )
    assert (
        upgraded.price_ref == premium and upgraded.amount_minor == 1999 and upgraded.item_ref == sub.item_ref
    )
    assert upgraded.current_period_end == sub.current_period_end
    proration = await provider.get_invoice(upgraded.latest_invoice_ref or "")
    expected = round(1999 * remaining - 699 * remaining)
    assert proration.total_minor == expected > 0 and proration.status == "paid"
    assert proration.billing_reason == "subscription_update" and all(
        line.proration for line in proration.lines
    )
    assert sum(line.amount_minor for line in proration.lines) == expected
    assert (await types_of(db, sub.id, proration.id))[-2:] == [
        "customer.subscription.updated",
        "invoice.paid",
    ]
    count = len(await events_of(db, sub.id))
    replay = await provider.change_price(
        subscription_ref=sub.id,
        item_ref=sub.item_ref,
        price_ref=premium,
        upgrade=True,
        idempotency_key=upgrade_key,
    )
    assert replay == upgraded and len(await events_of(db, sub.id)) == count

    downgraded = await provider.change_price(
        subscription_ref=sub.id,
        item_ref=sub.item_ref,
        price_ref=sub.price_ref,
        upgrade=False,
        idempotency_key=key(),
    )
    assert downgraded.price_ref == sub.price_ref and downgraded.latest_invoice_ref == proration.id
    assert (await types_of(db, sub.id))[-1] == "customer.subscription.updated"

    await sandbox.set_card_fails(made["customer"], fails=True)
    with pytest.raises(ProviderRefused) as declined:
        await provider.change_price(
            subscription_ref=sub.id,
            item_ref=sub.item_ref,
            price_ref=premium,
            upgrade=True,
            idempotency_key=key(),
        )
    assert declined.value.code == "card_declined"
    assert (await provider.get_subscription(sub.id)).price_ref == sub.price_ref
    with pytest.raises(ObjectNotFound):
        await provider.change_price(
            subscription_ref=sub.id,
            item_ref="si_sbx_other",
            price_ref=premium,
            upgrade=False,
            idempotency_key=key(),
        )


async def test_upgrade_during_a_trial_charges_nothing(provider: SandboxProvider, db: Db) -> None:
    made = await subscribed(provider, db, trial_days=7)
    sub = made["subscription"]
    upgraded = await provider.change_price(
        subscription_ref=sub.id,
        item_ref=sub.item_ref,
        price_ref=await price(provider, 1999, plan="premium"),
        upgrade=True,
        idempotency_key=key(),
    )
    assert upgraded.status == "trialing" and upgraded.latest_invoice_ref == sub.latest_invoice_ref


# --- portal link ------------------------------------------------------------------------------------------


async def test_portal_url_is_signed_and_expires(provider: SandboxProvider, clock: Clock) -> None:
    cus = await customer(provider)
    url = await provider.portal_url(customer_ref=cus, return_url="http://localhost:3000/account/billing")
    token = url.rsplit("/", 1)[1]
    assert "/api/v1/payments/sandbox/portal/" in url
    settings = get_settings()
    assert sandbox.read_portal_token(settings, token) == (cus, "http://localhost:3000/account/billing")
    payload, _, signature = token.partition(".")
    for forged in (f"{payload}.{signature[:-2]}xx", f"x{payload}.{signature}", "nonsense", ""):
        with pytest.raises(Exception) as bad:
            sandbox.read_portal_token(settings, forged)
        assert getattr(bad.value, "code", None) == "portal_link_invalid"
    clock.advance(2 * 3600)
    with pytest.raises(Exception) as expired:
        sandbox.read_portal_token(settings, token)
    assert getattr(expired.value, "code", None) == "portal_link_invalid"
    with pytest.raises(ObjectNotFound):
        await provider.portal_url(customer_ref="cus_sbx_missing", return_url="http://localhost:3000/")


# --- delivery ---------------------------------------------------------------------------------------------


async def test_deliver_pending_exactly_once_under_two_concurrent_callers(
    provider: SandboxProvider, db: Db
) -> None:
    from shared.infra.db import standalone

    ids: list[str] = []
    for _ in range(3):
        started = await pay_checkout(provider, await customer(provider))
        await sandbox.complete_checkout(started.id)
        await sandbox.decline_checkout(started.id)  # nothing: already complete
        ids.append(started.id)
    declined = await pay_checkout(provider, await customer(provider))
    await sandbox.decline_checkout(declined.id)
    paid = await provider.get_checkout(ids[0])
    charge = await sandbox.refund(paid.payment_ref or "")
    opened = await sandbox.dispute(paid.payment_ref or "")
    ids += [declined.id, charge["id"], opened["id"]]
    mine = [row["event"]["id"] for row in await events_of(db, *ids)]
    assert len(mine) == 6

    async def deliver() -> int:
        async with standalone() as conn:
            return await sandbox.deliver_pending(conn, settings=get_settings())

    counts = await asyncio.gather(deliver(), deliver())
    assert sum(counts) >= len(mine)
    rows = await events_of(db, *ids)
    assert all(row["delivered"] for row in rows), [row for row in rows if not row["delivered"]]
    cursor = await db.execute(
        "select event_id, count(*) from public.payment_events"
        " where provider = 'sandbox' and event_id = any(%s) group by event_id",
        (mine,),
    )
    assert dict(await cursor.fetchall()) == dict.fromkeys(mine, 1)
    async with standalone() as conn:  # nothing left of ours: a third call delivers none of them again
        await sandbox.deliver_pending(conn, settings=get_settings())
    cursor = await db.execute(
        "select count(*) from public.payment_events where provider = 'sandbox' and event_id = any(%s)",
        (mine,),
    )
    assert (await cursor.fetchone()) == (len(mine),)


# --- cancel now, expire, refund (what commerce calls) ----------------------------------------------------


async def test_cancel_now_ends_at_once_and_sends_deleted(
    provider: SandboxProvider, db: Db, clock: Clock
) -> None:
    made = await subscribed(provider, db)
    ref = made["subscription"].id
    clock.advance(3 * DAY)
    k = key()
    state = await provider.cancel_now(subscription_ref=ref, idempotency_key=k)
    assert state.status == "canceled"
    assert state.ended_at == clock.at and state.canceled_at == clock.at
    assert state.current_period_end == made["subscription"].current_period_end  # no proration, no credit
    assert await provider.get_subscription(ref) == state
    assert await types_of(db, ref) == ["customer.subscription.created", "customer.subscription.deleted"]
    [deleted] = (await events_of(db, ref))[1:]
    assert deleted["event"]["data"]["object"]["status"] == "canceled"
    assert await types_of(db, made["invoice"]) == ["invoice.paid"]  # no final invoice

    clock.advance(60)
    again = await provider.cancel_now(subscription_ref=ref, idempotency_key=k)  # a retry
    other = await provider.cancel_now(subscription_ref=ref, idempotency_key=key())  # another reason
    assert again == state and other == state
    assert await types_of(db, ref) == ["customer.subscription.created", "customer.subscription.deleted"]


async def test_cancel_now_of_a_subscription_ended_at_period_end(
    provider: SandboxProvider, db: Db, clock: Clock
) -> None:
    made = await subscribed(provider, db)
    ref = made["subscription"].id
    await provider.set_cancel_at_period_end(subscription_ref=ref, cancel=True, idempotency_key=key())
    clock.advance((made["subscription"].current_period_end - clock.at).total_seconds() + 1)
    async with db.transaction():
        await sandbox.tick(db, settings=get_settings(), at=clock.at)
    ended = await provider.get_subscription(ref)
    assert ended.status == "canceled"
    assert await provider.cancel_now(subscription_ref=ref, idempotency_key=key()) == ended
    assert (await types_of(db, ref)).count("customer.subscription.deleted") == 1


async def test_cancel_now_of_an_unknown_subscription(provider: SandboxProvider) -> None:
    with pytest.raises(ObjectNotFound):
        await provider.cancel_now(subscription_ref="sub_sbx_missing", idempotency_key=key())


async def test_expire_checkout_closes_an_open_session_once(provider: SandboxProvider, db: Db) -> None:
    started = await pay_checkout(provider, await customer(provider))
    expired = await provider.expire_checkout(started.id)
    assert (expired.id, expired.status, expired.payment_status) == (started.id, "expired", "unpaid")
    assert await provider.expire_checkout(started.id) == expired
    assert (await sandbox.complete_checkout(started.id))["status"] == "expired"  # no longer payable
    assert await types_of(db, started.id) == ["checkout.session.expired"]


async def test_expire_checkout_of_a_complete_session_returns_it(provider: SandboxProvider, db: Db) -> None:
    started = await pay_checkout(provider, await customer(provider))
    await sandbox.complete_checkout(started.id)
    complete = await provider.expire_checkout(started.id)
    assert (complete.status, complete.payment_status) == ("complete", "paid")
    assert complete.payment_ref is not None
    assert await types_of(db, started.id) == ["checkout.session.completed"]


async def test_expire_checkout_of_an_unknown_session(provider: SandboxProvider) -> None:
    with pytest.raises(ObjectNotFound):
        await provider.expire_checkout("cs_sbx_missing")


async def test_refund_in_full_once_per_key_and_when_already_refunded(
    provider: SandboxProvider, db: Db
) -> None:
    started = await pay_checkout(provider, await customer(provider), amount=399)
    done = await sandbox.complete_checkout(started.id)
    payment_ref = done["payment_intent"]
    k = key()
    charge = await provider.refund(payment_ref=payment_ref, idempotency_key=k)
    assert (charge.payment_ref, charge.amount_minor, charge.amount_refunded_minor, charge.refunded) == (
        payment_ref,
        399,
        399,
        True,
    )
    assert await provider.get_charge(charge.id) == charge
    assert await provider.refund(payment_ref=payment_ref, idempotency_key=k) == charge  # a retry
    assert await provider.refund(payment_ref=payment_ref, idempotency_key=key()) == charge  # done already
    assert await types_of(db, charge.id) == ["charge.refunded"]
    with pytest.raises(ProviderError) as reused:
        await provider.refund(payment_ref=charge.id, idempotency_key=k)  # same key, other payment
    assert reused.value.code == "idempotency_error"


async def test_refund_after_a_partial_refund_takes_the_rest(provider: SandboxProvider, db: Db) -> None:
    started = await pay_checkout(provider, await customer(provider), amount=500)
    payment_ref = (await sandbox.complete_checkout(started.id))["payment_intent"]
    await sandbox.refund(payment_ref, amount_minor=200)
    charge = await provider.refund(payment_ref=payment_ref, idempotency_key=key())
    assert (charge.amount_refunded_minor, charge.refunded) == (500, True)
    assert await types_of(db, charge.id) == ["charge.refunded", "charge.refunded"]


async def test_refund_of_a_subscription_payment(provider: SandboxProvider, db: Db) -> None:
    made = await subscribed(provider, db, amount=899)
    invoice = await provider.get_invoice(made["invoice"])
    assert invoice.payment_ref is not None
    charge = await provider.refund(payment_ref=invoice.payment_ref, idempotency_key=key())
    assert (charge.amount_refunded_minor, charge.refunded) == (899, True)


async def test_refund_of_an_unknown_payment(provider: SandboxProvider) -> None:
    with pytest.raises(ObjectNotFound):
        await provider.refund(payment_ref="pi_sbx_missing", idempotency_key=key())
