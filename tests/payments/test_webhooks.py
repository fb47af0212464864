"""The Stripe webhook endpoint: signatures on the raw body, exactly-once processing, unknown types and
objects, and a Stripe that cannot be read back (503, nothing recorded, the retry does the work).

Everything real: PostgreSQL, Redis, the stripe SDK against tests/support/stripe_server.py, payloads signed
with a test secret by tests/support/commerce.py (independently of the fake's own signer)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from typing import Any

import psycopg

from tests.support.commerce import (
    WEBHOOK,
    WEBHOOK_SECRET,
    Stripe,
    buy,
    deliver,
    entitlements,
    event_rows,
    now,
    offered_title,
    one,
    own_plan,
    paid_purchase,
    payload_of,
    problem,
    receipts,
    rows,
    signature,
    stripe_fixture,  # noqa: F401  (the `stripe` fixture)
    stripe_server_fixture,  # noqa: F401  (the `stripe_server` fixture the `stripe` one runs on)
    subscribe,
)
from tests.support.identity import SignedIn, signed_in_user

Db = psycopg.AsyncConnection[Any]
TOLERANCE = 300  # STRIPE_WEBHOOK_TOLERANCE_SECONDS' default


def unknown_event(stripe: Stripe) -> dict[str, Any]:
    """An event of a type commerce does not handle."""
    customer = {"id": "cus_unknown", "object": "customer"}
    event: dict[str, Any] = stripe.server.event("customer.created", customer)
    return event


async def start_rental(stripe: Stripe, user: SignedIn, title_id: uuid.UUID) -> dict[str, Any]:
    """POST /purchase (rent) without paying yet; its answer."""
    started = await buy(stripe, user, title_id)
    assert started.status_code == 201, started.text
    body: dict[str, Any] = started.json()
    return body


async def test_a_valid_signature_is_accepted_and_an_unknown_type_acknowledged(stripe: Stripe, db: Db) -> None:
    event = unknown_event(stripe)
    response = await deliver(stripe.client, event)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "outcome": "ignored"}
    [row] = await event_rows(db, event["id"])
    assert (row["provider"], row["type"], row["outcome"]) == ("stripe", "customer.created", "ignored")
    # Acknowledged once: a redelivery is a duplicate, not a second row.
    again = await deliver(stripe.client, event)
    assert again.json() == {"received": True, "outcome": "duplicate"}
    assert len(await event_rows(db, event["id"])) == 1


async def test_the_fake_stripes_own_signature_verifies(stripe: Stripe) -> None:
    # The fake signs like Stripe (and like commerce.signature): two independent signers agree.
    body, headers = stripe.server.webhook(unknown_event(stripe), WEBHOOK_SECRET, timestamp=int(now()))
    response = await stripe.client.post(WEBHOOK, content=body, headers=headers)
    assert response.json() == {"received": True, "outcome": "ignored"}, response.text


async def test_invalid_signatures_are_refused_and_nothing_is_recorded(stripe: Stripe, db: Db) -> None:
    event = unknown_event(stripe)
    payload = payload_of(event)
    good = signature(payload)
    t = good.split(",")[0]
    refused = [
        await deliver(stripe.client, event, secret="whsec_someone_else"),
        await stripe.client.post(WEBHOOK, content=payload),  # no Stripe-Signature
        await deliver(stripe.client, event, header=""),
        await deliver(stripe.client, event, header="garbage"),
        await deliver(stripe.client, event, header=t),  # no v1
        await deliver(stripe.client, event, header=f"{t},v0={'0' * 64}"),  # only an unknown scheme
        await deliver(stripe.client, event, header=f"{t},v1={'0' * 64}"),
        # Signed, then altered: the JSON means the same, the bytes differ.
        await deliver(stripe.client, json.dumps(event, indent=2).encode(), header=good),
        await deliver(stripe.client, payload + b" ", header=good),
    ]
    for response in refused:
        problem(response, 400, "invalid_signature")
    assert await event_rows(db, event["id"]) == []


async def test_a_rotated_secret_verifies_with_any_of_the_signatures(stripe: Stripe) -> None:
    event = unknown_event(stripe)
    payload = payload_of(event)
    old = signature(payload, secret="whsec_previous_secret").split(",v1=")[1]
    current = signature(payload)
    response = await deliver(stripe.client, event, header=f"{current},v1={old}")
    assert response.json() == {"received": True, "outcome": "ignored"}, response.text


async def test_an_expired_signature_is_refused_within_the_tolerance_it_is_not(stripe: Stripe, db: Db) -> None:
    stale = unknown_event(stripe)
    problem(await deliver(stripe.client, stale, timestamp=now() - TOLERANCE - 5), 400, "signature_expired")
    assert await event_rows(db, stale["id"]) == []
    late = await deliver(stripe.client, stale, timestamp=now() - TOLERANCE + 30)
    assert late.json() == {"received": True, "outcome": "ignored"}, late.text


async def test_a_future_dated_signature_is_refused(stripe: Stripe, db: Db) -> None:
    event = unknown_event(stripe)
    future = await deliver(stripe.client, event, timestamp=now() + TOLERANCE + 5)
    problem(future, 400, "signature_in_future")
    assert await event_rows(db, event["id"]) == []
    # A little clock skew is tolerated.
    skewed = await deliver(stripe.client, event, timestamp=now() + 30)
    assert skewed.json() == {"received": True, "outcome": "ignored"}, skewed.text


async def test_a_replayed_delivery_is_a_duplicate_with_one_effect(
    stripe: Stripe, db: Db, database_url: str
) -> None:
    user = await signed_in_user(database_url)
    title_id = await offered_title(db)
    started = await start_rental(stripe, user, title_id)
    made = stripe.server.complete_checkout(started["checkout_id"])
    event = stripe.server.event("checkout.session.completed", made["session"])
    payload = payload_of(event)
    header = signature(payload)
    # The very same delivery (bytes and signature) twice, as an attacker or a retrying proxy would.
    first = await deliver(stripe.client, payload, header=header)
    second = await deliver(stripe.client, payload, header=header)
    assert first.json() == {"received": True, "outcome": "processed"}, first.text
    assert second.json() == {"received": True, "outcome": "duplicate"}, second.text
    assert len(await event_rows(db, event["id"])) == 1
    assert len([e for e in await entitlements(db, user.user_id) if e["revoked_at"] is None]) == 1
    assert len(await rows(db, "select id from public.invoices where user_id = %s", user.user_id)) == 1
    assert len(await receipts(db, user.user_id)) == 1


async def test_the_same_event_20_times_in_parallel_has_one_effect(
    stripe: Stripe, db: Db, database_url: str
) -> None:
    user = await signed_in_user(database_url)
    plan = await own_plan(db)
    started = await subscribe(stripe, user, plan)
    assert started.status_code == 201, started.text
    made = stripe.server.complete_checkout(started.json()["checkout_id"])
    await stripe.deliver(stripe.server.event("checkout.session.completed", made["session"]))
    event = stripe.server.event("invoice.paid", made["invoice"])

    answers = await asyncio.gather(*(deliver(stripe.client, event) for _ in range(20)))

    assert [a.status_code for a in answers] == [200] * 20, [a.text for a in answers if a.status_code != 200]
    outcomes = Counter(a.json()["outcome"] for a in answers)
    assert outcomes == {"processed": 1, "duplicate": 19}, outcomes
    assert len(await event_rows(db, event["id"])) == 1
    invoices = await rows(db, "select * from public.invoices where user_id = %s", user.user_id)
    assert len(invoices) == 1 and invoices[0]["status"] == "paid", invoices
    live = [e for e in await entitlements(db, user.user_id) if e["revoked_at"] is None]
    assert len(live) == 1 and live[0]["kind"] == "subscription", live
    assert len(await receipts(db, user.user_id)) == 1


async def test_an_object_stripe_does_not_know_is_ignored(stripe: Stripe, db: Db) -> None:
    forged = stripe.server.event(
        "customer.subscription.updated",
        {"id": "sub_forged0000", "object": "subscription", "status": "active"},
    )
    response = await deliver(stripe.client, forged)
    assert response.json() == {"received": True, "outcome": "ignored"}, response.text
    [row] = await event_rows(db, forged["id"])
    assert row["outcome"] == "ignored"
    no_charge = stripe.server.event("charge.dispute.created", {"id": "dp_nothing", "object": "dispute"})
    response = await deliver(stripe.client, no_charge)
    assert response.json() == {"received": True, "outcome": "ignored"}, response.text


async def test_stripe_unreachable_is_503_nothing_recorded_and_the_retry_works(
    stripe: Stripe, db: Db, database_url: str
) -> None:
    user = await signed_in_user(database_url)
    title_id = await offered_title(db)
    started = await start_rental(stripe, user, title_id)
    made = stripe.server.complete_checkout(started["checkout_id"])
    event = stripe.server.event("checkout.session.completed", made["session"])
    stripe.server.fail_next(status=500, times=1, should_retry=False)

    problem(await deliver(stripe.client, event), 503, "payment_provider_unavailable")
    assert await event_rows(db, event["id"]) == []
    purchase = await one(db, "select status from public.purchases where id = %s", started["purchase_id"])
    assert purchase["status"] == "pending"

    retried = await deliver(stripe.client, event)  # Stripe's retry
    assert retried.json() == {"received": True, "outcome": "processed"}, retried.text
    purchase = await one(db, "select status from public.purchases where id = %s", started["purchase_id"])
    assert purchase["status"] == "paid"


async def test_the_endpoint_needs_no_bearer_and_declares_its_errors(stripe: Stripe) -> None:
    from tests.support.commerce import payments_app

    spec = payments_app().openapi()
    operation = spec["paths"][WEBHOOK]["post"]
    assert {"200", "400", "503"} <= set(operation["responses"])
    assert "invalid_signature" in operation["responses"]["400"]["description"]
    assert "security" not in operation


async def test_a_paid_rental_through_the_helper(stripe: Stripe, db: Db, database_url: str) -> None:
    # The helper flow the other tests build on: one purchase paid, its entitlement live.
    user = await signed_in_user(database_url)
    title_id = await offered_title(db)
    answer, _made = await paid_purchase(stripe, user, title_id)
    purchase = await one(db, "select status, kind from public.purchases where id = %s", answer["purchase_id"])
    assert (purchase["status"], purchase["kind"]) == ("paid", "rental")
