"""Buying (permanent) and pay-per-view tickets (a sale window and a viewing window); what the buyer may not
see or buy; replayed and reordered checkout events; Idempotency-Key both ways."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from shared.infra.db import standalone
from tests.purchases.conftest import (
    PAYMENTS,
    Db,
    buy,
    complete,
    decide,
    entitlements_of,
    offer,
    paid,
    ppv_event,
    purchase_row,
    started,
    title,
    tonight,
)
from tests.support.clock import Clock
from tests.support.commerce import problem
from tests.support.identity import SignedIn, signed_in_user

pytestmark = pytest.mark.usefixtures("sandbox")


async def _count(db: Db, query: str, *params: Any) -> int:
    cursor = await db.execute(query, params)
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_a_purchase_is_permanent(
    db: Db, client: httpx.AsyncClient, buyer: SignedIn, clock: Clock
) -> None:
    movie = await title(db)
    await offer(db, movie["id"], "purchase", 1499, currency="EUR")
    problem(await buy(client, buyer, movie["id"], "buy"), 404, "offer_not_found")  # no USD price
    body = await paid(client, buyer, movie["id"], "buy", currency="eur")
    assert body["kind"] == "purchase" and body["currency"] == "EUR" and body["amount_minor"] == 1499

    (entitlement,) = await entitlements_of(db, body["purchase_id"])
    assert entitlement["kind"] == "purchase" and entitlement["ends_at"] is None
    assert entitlement["play_window_seconds"] is None
    clock.advance(days=5 * 365)
    decision = await decide(db, buyer, movie)
    assert decision.allowed and decision.kind == "purchase" and not decision.first_play
    listed = (await client.get(f"{PAYMENTS}/purchases", headers=buyer.headers)).json()
    (item,) = listed["items"]
    assert item["kind"] == "purchase" and item["playable_now"] and item["rental"] is None
    assert (
        await _count(db, "select count(*) from public.invoices where purchase_id = %s", body["purchase_id"])
        == 1
    )


async def test_ppv_is_sold_only_during_its_sale_window(
    db: Db, client: httpx.AsyncClient, buyer: SignedIn, clock: Clock
) -> None:
    event = await title(db)
    now = clock.at
    upcoming = await ppv_event(
        db,
        event["id"],
        sale=(now + timedelta(days=1), now + timedelta(days=2)),
        view=(now + timedelta(days=2), now + timedelta(days=2, hours=3)),
    )
    over = await ppv_event(
        db,
        event["id"],
        sale=(now - timedelta(days=3), now - timedelta(days=1)),
        view=(now - timedelta(days=1), now - timedelta(hours=1)),
    )
    for event_id in (upcoming, over):
        problem(
            await buy(client, buyer, event["id"], "ppv", ppv_event_id=str(event_id)), 409, "sale_not_open"
        )
    # Without an event: the one on sale now, else the next to open (not yet on sale).
    problem(await buy(client, buyer, event["id"], "ppv"), 409, "sale_not_open")
    clock.advance(days=1, minutes=1)
    body = await started(client, buyer, event["id"], "ppv", ppv_event_id=str(upcoming))
    assert body["kind"] == "ppv" and body["amount_minor"] == 1499


async def test_a_ppv_ticket_plays_only_in_the_viewing_window(
    db: Db, client: httpx.AsyncClient, buyer: SignedIn, clock: Clock
) -> None:
    show = await title(db)
    now = clock.at
    event_id = await ppv_event(db, show["id"], **tonight(now))
    body = await paid(client, buyer, show["id"], "ppv", ppv_event_id=str(event_id))
    (entitlement,) = await entitlements_of(db, body["purchase_id"])
    assert entitlement["kind"] == "ppv"
    assert entitlement["starts_at"] == now + timedelta(hours=2) and entitlement["ends_at"] == now + timedelta(
        hours=5
    )
    listed = (await client.get(f"{PAYMENTS}/purchases/{body['purchase_id']}", headers=buyer.headers)).json()
    assert listed["viewing_window"]["ppv_event_id"] == str(event_id) and not listed["playable_now"]

    assert not (await decide(db, buyer, show)).allowed  # before the show
    clock.advance(hours=2, minutes=1)
    assert (await decide(db, buyer, show)).allowed
    listed = (await client.get(f"{PAYMENTS}/purchases/{body['purchase_id']}", headers=buyer.headers)).json()
    assert listed["playable_now"]
    problem(await buy(client, buyer, show["id"], "ppv", ppv_event_id=str(event_id)), 409, "sale_not_open")
    clock.advance(hours=3)
    assert not (await decide(db, buyer, show)).allowed  # after it


async def test_a_second_ticket_for_the_same_event_is_refused(
    db: Db, client: httpx.AsyncClient, buyer: SignedIn, clock: Clock
) -> None:
    show = await title(db)
    now = clock.at
    event_id = await ppv_event(db, show["id"], **tonight(now))
    await paid(client, buyer, show["id"], "ppv")  # the event on sale now
    problem(await buy(client, buyer, show["id"], "ppv", ppv_event_id=str(event_id)), 409, "already_owned")


async def test_what_the_viewer_cannot_see_cannot_be_bought(
    db: Db, database_url: str, client: httpx.AsyncClient, buyer: SignedIn
) -> None:
    hidden = await title(db, status="draft")
    gone = await title(db, deleted_at="2020-01-01T00:00:00Z")
    elsewhere = await title(db, country_allow=["ZZ"])
    for movie in (hidden, gone, elsewhere):
        await offer(db, movie["id"], "rental")
        problem(await buy(client, buyer, movie["id"], "rent"), 404, "content_not_found")
    problem(await buy(client, buyer, uuid.uuid4(), "buy"), 404, "content_not_found")
    no_offer = await title(db)
    problem(await buy(client, buyer, no_offer["id"], "buy"), 404, "offer_not_found")
    assert await _count(db, "select count(*) from public.purchases where user_id = %s", buyer.user_id) == 0

    # Someone else's purchase answers like an unknown one.
    movie = await title(db)
    await offer(db, movie["id"], "rental")
    body = await started(client, buyer, movie["id"], "rent")
    other = await signed_in_user(database_url)
    for who, purchase_id in ((other, body["purchase_id"]), (buyer, str(uuid.uuid4()))):
        response = await client.get(f"{PAYMENTS}/purchases/{purchase_id}", headers=who.headers)
        problem(response, 404, "purchase_not_found")
    assert (await client.get(f"{PAYMENTS}/purchases", headers=other.headers)).json()["items"] == []


async def test_bad_requests(db: Db, client: httpx.AsyncClient, buyer: SignedIn) -> None:
    movie = await title(db)
    await offer(db, movie["id"], "rental")
    problem(
        await buy(client, buyer, movie["id"], "rent", ppv_event_id=str(uuid.uuid4())),
        422,
        "validation_failed",
    )
    problem(await buy(client, buyer, movie["id"], "lease"), 422, "validation_failed")
    problem(await buy(client, buyer, movie["id"], "rent", currency="US"), 422, "validation_failed")
    problem(await buy(client, buyer, movie["id"], "rent", key="has space"), 400, "invalid_idempotency_key")
    response = await client.post(f"{PAYMENTS}/purchase", json={"title_id": str(movie["id"]), "kind": "rent"})
    assert response.status_code == 401
    assert (await client.get(f"{PAYMENTS}/purchases")).status_code == 401
    problem(
        await client.get(f"{PAYMENTS}/purchases?cursor=bm9wZQ", headers=buyer.headers), 400, "invalid_cursor"
    )


async def test_the_list_pages_newest_first(db: Db, client: httpx.AsyncClient, buyer: SignedIn) -> None:
    ids = []
    for _ in range(3):
        movie = await title(db)
        await offer(db, movie["id"], "purchase")
        ids.append((await started(client, buyer, movie["id"], "buy"))["purchase_id"])
    first = (await client.get(f"{PAYMENTS}/purchases?limit=2", headers=buyer.headers)).json()
    assert [item["id"] for item in first["items"]] == ids[::-1][:2] and first["next_cursor"]
    rest = await client.get(
        f"{PAYMENTS}/purchases?limit=2&cursor={first['next_cursor']}", headers=buyer.headers
    )
    assert [item["id"] for item in rest.json()["items"]] == ids[:1] and rest.json()["next_cursor"] is None
    assert all(item["status"] == "pending" and item["paid_at"] is None for item in first["items"])


async def test_replayed_and_reordered_checkout_events_change_nothing(
    db: Db, client: httpx.AsyncClient, buyer: SignedIn
) -> None:
    from shared.payments.providers import get_provider
    from shared.purchases import service
    from shared.settings import get_settings

    movie = await title(db)
    await offer(db, movie["id"], "rental")
    body = await paid(client, buyer, movie["id"], "rent")
    before = await purchase_row(db, body["purchase_id"])

    provider = get_provider(get_settings())
    checkout = await provider.get_checkout(body["checkout_id"])
    assert checkout.status == "complete" and checkout.payment_status == "paid"

    async def apply(session: Any) -> None:
        async with standalone() as conn:
            await service.checkout_updated(conn, provider=provider, checkout=session)

    # The same completion many times at once, the page's Pay button again, then an "expired" arriving late.
    await asyncio.gather(*(apply(checkout) for _ in range(10)))
    await complete(client, body["checkout_id"])
    await apply(dataclasses.replace(checkout, status="expired", payment_status="unpaid"))

    after = await purchase_row(db, body["purchase_id"])
    assert after["status"] == "paid" and after["paid_at"] == before["paid_at"]
    assert after["entitlement_id"] == before["entitlement_id"]
    assert len(await entitlements_of(db, body["purchase_id"])) == 1
    assert (
        await _count(db, "select count(*) from public.invoices where purchase_id = %s", body["purchase_id"])
        == 1
    )
    assert (await decide(db, buyer, movie)).allowed


async def test_a_checkout_of_no_purchase_is_ignored(db: Db, client: httpx.AsyncClient) -> None:
    from shared.payments.providers import get_provider
    from shared.payments.providers.base import CheckoutSession
    from shared.purchases import service
    from shared.settings import get_settings

    stray = CheckoutSession(
        id=f"cs_sbx_{uuid.uuid4().hex}",
        url=None,
        mode="payment",
        status="complete",
        payment_status="paid",
        customer_ref=None,
        client_reference_id=None,
    )
    async with standalone() as conn:
        await service.checkout_updated(conn, provider=get_provider(get_settings()), checkout=stray)
        assert not await service.payment_reversed(
            conn, provider_name="sandbox", payment_ref=f"pi_sbx_{uuid.uuid4().hex}", reason="refund"
        )


async def test_the_same_idempotency_key_replays_or_conflicts(
    db: Db, database_url: str, client: httpx.AsyncClient, buyer: SignedIn
) -> None:
    movie, other = await title(db), await title(db)
    await offer(db, movie["id"], "rental")
    await offer(db, movie["id"], "purchase")
    await offer(db, other["id"], "rental")
    key = f"rent-{uuid.uuid4()}"

    first = await buy(client, buyer, movie["id"], "rent", key=key)
    assert first.status_code == 201, first.text
    again = await buy(client, buyer, movie["id"], "rent", key=key, currency="USD")  # same request
    assert again.status_code == 201 and again.json() == first.json()
    rows = await _count(db, "select count(*) from public.purchases where user_id = %s", buyer.user_id)
    assert rows == 1

    # Paid meanwhile: the same request still answers the same (not already_rented).
    await complete(client, first.json()["checkout_id"])
    replay = await buy(client, buyer, movie["id"], "rent", key=key)
    assert replay.status_code == 201 and replay.json() == first.json()

    # The same key for another request.
    problem(await buy(client, buyer, movie["id"], "buy", key=key), 409, "idempotency_key_reused")
    problem(await buy(client, buyer, other["id"], "rent", key=key), 409, "idempotency_key_reused")
    assert await _count(db, "select count(*) from public.purchases where user_id = %s", buyer.user_id) == 1
    # Keys are per account, and a new key is a new request.
    stranger = await signed_in_user(database_url)
    assert (await buy(client, stranger, other["id"], "rent", key=key)).status_code == 201
    assert (await buy(client, buyer, other["id"], "rent", key=f"rent-{uuid.uuid4()}")).status_code == 201


async def test_parallel_requests_with_one_key_make_one_purchase(
    db: Db, client: httpx.AsyncClient, buyer: SignedIn
) -> None:
    movie = await title(db)
    await offer(db, movie["id"], "purchase")
    key = str(uuid.uuid4())
    answers = await asyncio.gather(*(buy(client, buyer, movie["id"], "buy", key=key) for _ in range(5)))
    assert {answer.status_code for answer in answers} == {201}, [answer.text for answer in answers]
    assert len({answer.json()["purchase_id"] for answer in answers}) == 1
    assert await _count(db, "select count(*) from public.purchases where user_id = %s", buyer.user_id) == 1
