"""Commerce end to end over HTTP: subscribe through Stripe Checkout and its webhooks, events out of order,
refunds and disputes revoking what they paid for, past_due with a grace period (time moved, not slept),
and Idempotency-Key reuse on POST subscribe and POST purchase.

The real stripe SDK talks to tests/support/stripe_server.py; webhooks are signed with the test secret."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from tests.support.clock import Clock, clock_fixture
from tests.support.commerce import (
    PAYMENTS,
    Stripe,
    buy,
    entitlements,
    invoice_of,
    may_play,
    offered_title,
    one,
    own_plan,
    paid_purchase,
    problem,
    receipts,
    rows,
    stripe_fixture,  # noqa: F401  (the `stripe` fixture)
    stripe_server_fixture,  # noqa: F401  (the `stripe_server` fixture the `stripe` one runs on)
    subscribe,
    subscribed,
)
from tests.support.identity import SignedIn, signed_in_user

Db = psycopg.AsyncConnection[Any]
DAY = 24 * 3600

clock = clock_fixture()


async def subscription_of(stripe: Stripe, user: SignedIn) -> dict[str, Any]:
    """GET /subscription."""
    response = await stripe.client.get(f"{PAYMENTS}/subscription", headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def subscription_row(db: Db, ref: str) -> dict[str, Any]:
    """Our subscriptions row of a Stripe subscription."""
    return await one(
        db, "select * from public.subscriptions where provider = 'stripe' and provider_ref = %s", ref
    )


async def test_subscribe_checkout_and_webhooks_show_the_plan_an_invoice_and_a_receipt(
    stripe: Stripe, db: Db, database_url: str
) -> None:
    user = await signed_in_user(database_url)
    plan = await own_plan(db, amount_minor=1299)
    vat = stripe.server.add_tax_rate(display_name="VAT", percentage=20.0)

    made = await subscribed(stripe, user, plan, tax_rate=vat)

    # What the SDK sent: a subscription checkout for our customer, with an idempotency key.
    [checkout] = stripe.server.requests_to("POST", "/v1/checkout/sessions")
    assert checkout.params["mode"] == "subscription"
    assert checkout.headers.get("idempotency-key")
    current = await subscription_of(stripe, user)
    assert current["plan_code"] == plan
    assert current["status"] == "active"
    assert current["provider"] == "stripe"
    assert current["paid_access"] is True
    assert current["limits"]["max_streams"] == 2 and current["limits"]["ads"] is False
    listed = await stripe.client.get(f"{PAYMENTS}/invoices", headers=user.headers)
    assert listed.status_code == 200, listed.text
    [summary] = listed.json()["items"]
    invoice = (await stripe.client.get(f"{PAYMENTS}/invoices/{summary['id']}", headers=user.headers)).json()
    assert invoice["number"].startswith("CIN-")
    assert invoice["status"] == "paid"
    assert invoice["subtotal_minor"] == 1299
    assert invoice["tax_minor"] == 260 and invoice["total_minor"] == 1559, invoice
    assert invoice["tax_lines"] and invoice["tax_lines"][0]["amount_minor"] == 260, invoice["tax_lines"]
    assert invoice["lines"] and invoice["lines"][0]["amount_minor"] == 1299
    row = await subscription_row(db, str(made["subscription"]))
    assert invoice["subscription_id"] == str(row["id"])
    [receipt] = await receipts(db, user.user_id)
    assert receipt["to_address"].lower() == user.email.lower()
    assert invoice["number"] in receipt["subject"] + receipt["text_body"]


async def test_deleted_before_an_older_updated_stays_canceled_and_revoked(
    stripe: Stripe, db: Db, database_url: str
) -> None:
    user = await signed_in_user(database_url)
    plan = await own_plan(db, tier=2)
    title_id = await offered_title(db, access="subscription", min_tier=2, rental=None, purchase=None)
    made = await subscribed(stripe, user, plan)
    sub = str(made["subscription"])
    assert (await may_play(db, user.user_id, title_id)).allowed

    # Stripe sends `updated` (the customer scheduled a cancellation), then the subscription is deleted;
    # the deliveries arrive the other way round.
    stripe.server.set_subscription(sub, cancel_at_period_end=True)
    older = stripe.server.event("customer.subscription.updated", sub)
    stripe.server.cancel_subscription(sub)
    deleted = stripe.server.event("customer.subscription.deleted", sub)
    await stripe.deliver(deleted)
    await stripe.deliver(older)

    row = await subscription_row(db, sub)
    assert row["status"] == "canceled", row
    [entitlement] = [e for e in await entitlements(db, user.user_id) if e["kind"] == "subscription"]
    assert entitlement["revoked_at"] is not None
    decision = await may_play(db, user.user_id, title_id)
    assert not decision.allowed and decision.code == "not_entitled"
    current = await subscription_of(stripe, user)
    assert current["is_free"] is True and current["paid_access"] is False, current


async def test_a_refund_revokes_a_rental(stripe: Stripe, db: Db, database_url: str) -> None:
    user = await signed_in_user(database_url)
    title_id = await offered_title(db, rental=399)
    answer, made = await paid_purchase(stripe, user, title_id, kind="rent")
    decision = await may_play(db, user.user_id, title_id)
    assert decision.allowed and decision.kind == "rental"

    await stripe.refund(made["charge"])

    decision = await may_play(db, user.user_id, title_id)
    assert not decision.allowed, decision
    purchase = await stripe.client.get(f"{PAYMENTS}/purchases/{answer['purchase_id']}", headers=user.headers)
    assert purchase.json()["status"] == "refunded", purchase.text
    invoice = await invoice_of(db, answer["purchase_id"])
    assert invoice["status"] == "refunded" and invoice["amount_refunded_minor"] == 399


async def test_a_partial_refund_is_recorded_and_access_stays(
    stripe: Stripe, db: Db, database_url: str
) -> None:
    user = await signed_in_user(database_url)
    title_id = await offered_title(db, purchase=1499)
    answer, made = await paid_purchase(stripe, user, title_id, kind="buy")

    await stripe.refund(made["charge"], amount=500)

    assert (await may_play(db, user.user_id, title_id)).allowed
    invoice = await invoice_of(db, answer["purchase_id"])
    assert invoice["status"] == "paid" and invoice["amount_refunded_minor"] == 500


async def test_a_dispute_revokes_a_purchase(stripe: Stripe, db: Db, database_url: str) -> None:
    user = await signed_in_user(database_url)
    title_id = await offered_title(db, purchase=1499)
    answer, made = await paid_purchase(stripe, user, title_id, kind="buy")
    decision = await may_play(db, user.user_id, title_id)
    assert decision.allowed and decision.kind == "purchase"

    dispute = stripe.server.dispute_charge(str(made["charge"]))
    await stripe.deliver(stripe.server.event("charge.dispute.created", dispute))

    assert not (await may_play(db, user.user_id, title_id)).allowed
    purchase = await one(db, "select status from public.purchases where id = %s", answer["purchase_id"])
    assert purchase["status"] == "disputed"


async def test_a_refunded_subscription_charge_revokes_the_plan(
    stripe: Stripe, db: Db, database_url: str
) -> None:
    user = await signed_in_user(database_url)
    plan = await own_plan(db, tier=2)
    title_id = await offered_title(db, access="subscription", min_tier=2, rental=None, purchase=None)
    made = await subscribed(stripe, user, plan)
    assert (await may_play(db, user.user_id, title_id)).allowed

    await stripe.refund(made["charge"])

    assert not (await may_play(db, user.user_id, title_id)).allowed
    invoice = await one(db, "select * from public.invoices where user_id = %s", user.user_id)
    assert invoice["status"] == "refunded"


async def test_a_failed_renewal_is_past_due_with_grace_then_free_then_restored_by_payment(
    stripe: Stripe, db: Db, database_url: str, clock: Clock
) -> None:
    from shared.settings import get_settings

    grace_days = get_settings().payments_grace_days
    stripe.server.clock = clock  # Stripe's time moves with ours
    user = await signed_in_user(database_url)
    plan = await own_plan(db, tier=2)
    paid_title = await offered_title(db, access="subscription", min_tier=2, rental=None, purchase=None)
    free_title = await offered_title(db, access="free_with_ads", rental=None, purchase=None)
    made = await subscribed(stripe, user, plan)
    sub = str(made["subscription"])

    # The period ends and the renewal's payment fails.
    period_end = stripe.server.get(sub)["items"]["data"][0]["current_period_end"]
    clock.now = period_end + 60
    renewal = stripe.server.advance_period(sub, paid=False)
    await stripe.deliver(stripe.server.event("invoice.payment_failed", str(renewal["invoice"])))
    await stripe.deliver(stripe.server.event("customer.subscription.updated", sub))

    row = await subscription_row(db, sub)
    assert row["status"] == "past_due"
    assert row["grace_ends_at"] is not None
    assert abs(row["grace_ends_at"].timestamp() - (clock.now + grace_days * DAY)) < 120, row
    failed = await one(db, "select * from public.invoices where provider_ref = %s", renewal["invoice"])
    assert failed["status"] == "open"

    # During the grace period the plan still plays.
    clock.advance((grace_days - 1) * DAY)
    decision = await may_play(db, user.user_id, paid_title)
    assert decision.allowed and decision.kind == "subscription", decision

    # After it: the free tier (free titles with ads, nothing of the plan).
    clock.advance(2 * DAY)
    decision = await may_play(db, user.user_id, paid_title)
    assert not decision.allowed and decision.code == "not_entitled", decision
    free = await may_play(db, user.user_id, free_title)
    assert free.allowed and free.kind == "free" and free.ads
    assert (await subscription_of(stripe, user))["paid_access"] is False

    # The customer pays: invoice.paid restores the plan.
    stripe.server.pay_invoice(str(renewal["invoice"]))
    await stripe.deliver(stripe.server.event("invoice.paid", str(renewal["invoice"])))
    row = await subscription_row(db, sub)
    assert row["status"] == "active" and row["past_due_since"] is None and row["grace_ends_at"] is None
    decision = await may_play(db, user.user_id, paid_title)
    assert decision.allowed and decision.kind == "subscription", decision
    assert (await subscription_of(stripe, user))["paid_access"] is True
    paid = await one(db, "select * from public.invoices where provider_ref = %s", renewal["invoice"])
    assert paid["status"] == "paid"


async def test_subscribe_idempotency_key_reuse_both_ways(stripe: Stripe, db: Db, database_url: str) -> None:
    user = await signed_in_user(database_url)
    plan = await own_plan(db)
    key = f"sub-{uuid.uuid4()}"

    first = await subscribe(stripe, user, plan, key=key)
    again = await subscribe(stripe, user, plan, key=key)

    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    [sent] = stripe.server.requests_to("POST", "/v1/checkout/sessions")
    assert sent.headers.get("idempotency-key")
    problem(await subscribe(stripe, user, plan, key=key, currency="EUR"), 409, "idempotency_key_reused")
    assert len(stripe.server.requests_to("POST", "/v1/checkout/sessions")) == 1
    # Another key is another request.
    other = await subscribe(stripe, user, plan, key=f"sub-{uuid.uuid4()}")
    assert other.status_code == 201, other.text
    assert other.json()["checkout_id"] != first.json()["checkout_id"]


async def test_purchase_idempotency_key_reuse_both_ways(stripe: Stripe, db: Db, database_url: str) -> None:
    user = await signed_in_user(database_url)
    title_id = await offered_title(db)
    key = f"buy-{uuid.uuid4()}"

    first = await buy(stripe, user, title_id, kind="rent", key=key)
    again = await buy(stripe, user, title_id, kind="rent", key=key)

    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    [sent] = stripe.server.requests_to("POST", "/v1/checkout/sessions")
    assert sent.params["mode"] == "payment"
    assert sent.headers.get("idempotency-key")
    problem(await buy(stripe, user, title_id, kind="buy", key=key), 409, "idempotency_key_reused")
    assert len(stripe.server.requests_to("POST", "/v1/checkout/sessions")) == 1
    pending = await rows(db, "select id from public.purchases where user_id = %s", user.user_id)
    assert len(pending) == 1


async def test_an_expired_checkout_cancels_the_pending_purchase(
    stripe: Stripe, db: Db, database_url: str
) -> None:
    user = await signed_in_user(database_url)
    title_id = await offered_title(db)
    started = await buy(stripe, user, title_id)
    assert started.status_code == 201, started.text
    checkout_id = started.json()["checkout_id"]
    stripe.server.expire_checkout(checkout_id)
    await stripe.deliver(stripe.server.event("checkout.session.expired", checkout_id))
    purchase = await one(
        db, "select status from public.purchases where id = %s", started.json()["purchase_id"]
    )
    assert purchase["status"] == "canceled"
    assert not (await may_play(db, user.user_id, title_id)).allowed


async def test_a_refund_or_dispute_delivered_before_the_checkout_completion_grants_nothing(
    stripe: Stripe, db: Db, database_url: str
) -> None:
    for reason in ("refund", "dispute"):
        user = await signed_in_user(database_url)
        title_id = await offered_title(db, rental=399)
        started = await buy(stripe, user, title_id, kind="rent")
        assert started.status_code == 201, started.text
        purchase_id = started.json()["purchase_id"]
        made = stripe.server.complete_checkout(started.json()["checkout_id"])
        # The payment is given back at once, and its event overtakes the completion's.
        if reason == "refund":
            stripe.server.refund_charge(str(made["charge"]))
            early = stripe.server.event("charge.refunded", str(made["charge"]))
        else:
            early = stripe.server.event(
                "charge.dispute.created", stripe.server.dispute_charge(str(made["charge"]))
            )
        await stripe.deliver(early, outcome="ignored")  # no paid purchase has that payment yet
        await stripe.deliver(stripe.server.event("checkout.session.completed", made["session"]))

        purchase = await one(db, "select * from public.purchases where id = %s", purchase_id)
        assert purchase["status"] == ("refunded" if reason == "refund" else "disputed"), purchase
        assert purchase["entitlement_id"] is None and purchase["ended_at"] is not None
        assert purchase["payment_ref"] == made["payment_intent"]
        assert await entitlements(db, user.user_id) == []
        assert not (await may_play(db, user.user_id, title_id)).allowed
        invoice = await invoice_of(db, purchase_id)
        if reason == "refund":
            assert invoice["status"] == "refunded" and invoice["amount_refunded_minor"] == 399
        else:
            assert invoice["status"] == "paid" and invoice["amount_refunded_minor"] == 0


async def test_a_subscription_charge_refunded_before_its_invoice_is_recorded_revokes_the_plan(
    stripe: Stripe, db: Db, database_url: str
) -> None:
    user = await signed_in_user(database_url)
    plan = await own_plan(db, tier=2)
    title_id = await offered_title(db, access="subscription", min_tier=2, rental=None, purchase=None)
    started = await subscribe(stripe, user, plan)
    assert started.status_code == 201, started.text
    made = stripe.server.complete_checkout(started.json()["checkout_id"])
    # charge.refunded first: no invoice records that payment yet.
    await stripe.refund(made["charge"], outcome="ignored")
    await stripe.deliver_all(
        [
            stripe.server.event("checkout.session.completed", made["session"]),
            stripe.server.event("customer.subscription.created", str(made["subscription"])),
            stripe.server.event("invoice.paid", str(made["invoice"])),
        ]
    )

    assert not (await may_play(db, user.user_id, title_id)).allowed
    [entitlement] = [e for e in await entitlements(db, user.user_id) if e["kind"] == "subscription"]
    assert entitlement["revoked_at"] is not None
    invoice = await one(db, "select * from public.invoices where provider_ref = %s", made["invoice"])
    assert invoice["status"] == "refunded" and invoice["amount_refunded_minor"] == invoice["total_minor"]


async def test_a_second_paid_checkout_for_the_same_title_is_refunded_at_stripe(
    stripe: Stripe, db: Db, database_url: str
) -> None:
    user = await signed_in_user(database_url)
    title_id = await offered_title(db, purchase=1499)
    first = await buy(stripe, user, title_id, kind="buy")
    second = await buy(stripe, user, title_id, kind="buy")  # another tab, before the first was paid
    assert first.status_code == 201 and second.status_code == 201, second.text
    made_first = stripe.server.complete_checkout(first.json()["checkout_id"])
    made_second = stripe.server.complete_checkout(second.json()["checkout_id"])
    await stripe.deliver(stripe.server.event("checkout.session.completed", made_first["session"]))
    await stripe.deliver(stripe.server.event("checkout.session.completed", made_second["session"]))

    kept = await one(db, "select * from public.purchases where id = %s", first.json()["purchase_id"])
    duplicate = await one(db, "select * from public.purchases where id = %s", second.json()["purchase_id"])
    assert kept["status"] == "paid"
    assert duplicate["status"] == "refunded" and duplicate["entitlement_id"] is None, duplicate
    [refund] = stripe.server.requests_to("POST", "/v1/refunds")
    assert refund.params.get("payment_intent") == made_second["payment_intent"], refund.params
    assert refund.headers.get("idempotency-key")
    assert stripe.server.get(str(made_second["charge"]))["refunded"] is True
    assert stripe.server.get(str(made_first["charge"]))["refunded"] is False
    invoice = await invoice_of(db, duplicate["id"])
    assert invoice["status"] == "refunded" and invoice["amount_refunded_minor"] == 1499
    # Stripe's charge.refunded for it follows: the purchase kept plays on.
    await stripe.deliver(stripe.server.event("charge.refunded", str(made_second["charge"])))
    decision = await may_play(db, user.user_id, title_id)
    assert decision.allowed and decision.kind == "purchase"
    assert [e["source_ref"] for e in await entitlements(db, user.user_id)] == [f"purchase:{kept['id']}"]


async def test_a_failed_async_payment_fails_the_purchase(stripe: Stripe, db: Db, database_url: str) -> None:
    user = await signed_in_user(database_url)
    title_id = await offered_title(db, rental=399)
    started = await buy(stripe, user, title_id, kind="rent")
    assert started.status_code == 201, started.text
    purchase_id = started.json()["purchase_id"]
    made = stripe.server.complete_checkout(started.json()["checkout_id"], paid=False)  # a bank debit
    await stripe.deliver(stripe.server.event("checkout.session.completed", made["session"]))
    assert (await one(db, "select status from public.purchases where id = %s", purchase_id))[
        "status"
    ] == "pending"

    stripe.server.settle_checkout(str(made["session"]), succeeded=False)
    await stripe.deliver(stripe.server.event("checkout.session.async_payment_failed", made["session"]))

    purchase = await one(db, "select * from public.purchases where id = %s", purchase_id)
    assert purchase["status"] == "failed" and purchase["ended_at"] is not None, purchase
    assert purchase["entitlement_id"] is None
    assert not (await may_play(db, user.user_id, title_id)).allowed
