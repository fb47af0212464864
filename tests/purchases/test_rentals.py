"""Renting through the sandbox checkout: nothing until paid, then a start-by of 30 days and a 48 h play
window from the first play; a decline cancels; a refund revokes."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.entitlements.service import mark_first_play
from tests.purchases.conftest import (
    PAYMENTS,
    Db,
    buy,
    complete,
    decide,
    decline,
    entitlements_of,
    offer,
    paid,
    purchase_row,
    started,
    title,
)
from tests.support.clock import Clock
from tests.support.commerce import problem
from tests.support.identity import SignedIn, signed_in_user

pytestmark = pytest.mark.usefixtures("sandbox")


async def _listed(client: httpx.AsyncClient, who: SignedIn, purchase_id: str) -> dict[str, Any]:
    response = await client.get(f"{PAYMENTS}/purchases/{purchase_id}", headers=who.headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "private, no-store"
    body: dict[str, Any] = response.json()
    return body


async def test_a_rental_plays_only_once_paid_then_48_hours_from_first_play(
    db: Db, client: httpx.AsyncClient, buyer: SignedIn, clock: Clock
) -> None:
    movie = await title(db)
    await offer(db, movie["id"], "rental", 399)

    body = await started(client, buyer, movie["id"], "rent")
    assert body["kind"] == "rental" and body["amount_minor"] == 399 and body["currency"] == "USD"
    assert f"/api/v1/payments/sandbox/checkout/{body['checkout_id']}" in body["checkout_url"]
    pending = await purchase_row(db, body["purchase_id"])
    assert pending["status"] == "pending" and pending["checkout_ref"] == body["checkout_id"]
    assert pending["title_name"].startswith("For sale") and pending["play_window_seconds"] == 48 * 3600
    # Not paid yet: nothing to play.
    assert await entitlements_of(db, body["purchase_id"]) == []
    refused = await decide(db, buyer, movie)
    assert not refused.allowed and refused.code == "not_entitled"

    await complete(client, body["checkout_id"])
    row = await purchase_row(db, body["purchase_id"])
    assert row["status"] == "paid" and row["payment_ref"] and row["entitlement_id"]
    (entitlement,) = await entitlements_of(db, body["purchase_id"])
    assert entitlement["kind"] == "rental" and entitlement["source"] == "sandbox"
    assert entitlement["play_window_seconds"] == 48 * 3600
    assert abs(entitlement["ends_at"] - (clock.at + timedelta(days=30))) < timedelta(seconds=2)

    allowed = await decide(db, buyer, movie)
    assert allowed.allowed and allowed.kind == "rental" and allowed.first_play and not allowed.ads
    listed = await _listed(client, buyer, body["purchase_id"])
    assert listed["status"] == "paid" and listed["kind"] == "rental" and listed["playable_now"]
    assert listed["title"] == {"id": str(movie["id"]), "name": row["title_name"]}
    assert listed["amount_minor"] == 399 and listed["currency"] == "USD" and listed["paid_at"]
    rental = listed["rental"]
    assert rental["first_played_at"] is None and rental["expires_at"] is None and rental["playable_now"]
    assert rental["start_by"] is not None and rental["play_window_seconds"] == 48 * 3600

    # First play a day later: 48 h from then, whatever the start-by date says.
    clock.advance(days=1)
    await mark_first_play(db, entitlement["id"], at=clock.at)
    started_at = clock.at
    clock.advance(hours=47, minutes=59)
    assert (await decide(db, buyer, movie)).allowed
    listed = await _listed(client, buyer, body["purchase_id"])
    assert listed["rental"]["first_played_at"] is not None and listed["rental"]["playable_now"]
    expires_at = datetime.fromisoformat(listed["rental"]["expires_at"])
    assert abs(expires_at - (started_at + timedelta(hours=48))) < timedelta(milliseconds=1)
    clock.advance(minutes=2)
    expired = await decide(db, buyer, movie)
    assert not expired.allowed and expired.code == "rental_expired"
    listed = await _listed(client, buyer, body["purchase_id"])
    assert not listed["playable_now"] and not listed["rental"]["playable_now"]

    # Over: renting again is allowed.
    again = await started(client, buyer, movie["id"], "rent")
    assert again["purchase_id"] != body["purchase_id"]


async def test_a_rental_must_be_started_within_30_days(
    db: Db, client: httpx.AsyncClient, buyer: SignedIn, clock: Clock
) -> None:
    movie, late = await title(db), await title(db)
    await offer(db, movie["id"], "rental")
    await offer(db, late["id"], "rental")
    never = await paid(client, buyer, movie["id"], "rent")
    just_in_time = await paid(client, buyer, late["id"], "rent")

    clock.advance(days=29, hours=23)
    (entitlement,) = await entitlements_of(db, just_in_time["purchase_id"])
    await mark_first_play(db, entitlement["id"], at=clock.at)
    clock.advance(hours=2)  # past the start-by date: the unplayed rental is gone, the started one plays
    unplayed = await decide(db, buyer, movie)
    assert not unplayed.allowed and unplayed.code == "rental_expired"
    assert (await decide(db, buyer, late)).allowed
    listed = (await client.get(f"{PAYMENTS}/purchases", headers=buyer.headers)).json()["items"]
    state = {item["id"]: item for item in listed}
    assert not state[never["purchase_id"]]["playable_now"]
    assert state[just_in_time["purchase_id"]]["playable_now"]
    clock.advance(hours=47)
    assert not (await decide(db, buyer, late)).allowed


async def test_a_declined_checkout_cancels_the_purchase_and_grants_nothing(
    db: Db, client: httpx.AsyncClient, buyer: SignedIn
) -> None:
    movie = await title(db)
    await offer(db, movie["id"], "rental")
    body = await started(client, buyer, movie["id"], "rent")
    await decline(client, body["checkout_id"])

    row = await purchase_row(db, body["purchase_id"])
    assert row["status"] == "canceled" and row["ended_at"] is not None and row["entitlement_id"] is None
    assert await entitlements_of(db, body["purchase_id"]) == []
    assert not (await decide(db, buyer, movie)).allowed
    # Paying a declined checkout afterwards is refused by the sandbox or changes nothing here.
    await client.post(f"{PAYMENTS}/sandbox/checkout/{body['checkout_id']}/complete")
    assert (await purchase_row(db, body["purchase_id"]))["status"] == "canceled"
    assert await entitlements_of(db, body["purchase_id"]) == []
    # A declined attempt holds nothing: the viewer may try again.
    await paid(client, buyer, movie["id"], "rent")
    assert (await decide(db, buyer, movie)).allowed


async def test_a_refund_revokes_the_rental(db: Db, client: httpx.AsyncClient, buyer: SignedIn) -> None:
    movie = await title(db)
    await offer(db, movie["id"], "rental")
    body = await paid(client, buyer, movie["id"], "rent")
    assert (await decide(db, buyer, movie)).allowed
    row = await purchase_row(db, body["purchase_id"])

    refunded = await client.post(
        f"{PAYMENTS}/sandbox/payments/{row['payment_ref']}/refund", headers=buyer.headers
    )
    assert refunded.status_code < 400, refunded.text

    row = await purchase_row(db, body["purchase_id"])
    assert row["status"] == "refunded" and row["ended_at"] is not None
    (entitlement,) = await entitlements_of(db, body["purchase_id"])
    assert entitlement["revoked_at"] is not None
    refused = await decide(db, buyer, movie)
    assert not refused.allowed and refused.code == "not_entitled"
    listed = (await client.get(f"{PAYMENTS}/purchases", headers=buyer.headers)).json()["items"]
    assert listed[0]["id"] == body["purchase_id"] and listed[0]["status"] == "refunded"
    assert not listed[0]["playable_now"]
    # Refunded: it may be rented again.
    assert (await buy(client, buyer, movie["id"], "rent")).status_code == 201


async def test_renting_what_is_rented_or_owned_is_refused(
    db: Db, database_url: str, client: httpx.AsyncClient, buyer: SignedIn
) -> None:
    movie = await title(db)
    await offer(db, movie["id"], "rental", 399)
    await offer(db, movie["id"], "purchase", 1499)
    await paid(client, buyer, movie["id"], "rent")
    problem(await buy(client, buyer, movie["id"], "rent"), 409, "already_rented")
    # Buying what one rents is fine; then it is owned.
    await paid(client, buyer, movie["id"], "buy")
    problem(await buy(client, buyer, movie["id"], "buy"), 409, "already_owned")
    problem(await buy(client, buyer, movie["id"], "rent"), 409, "already_owned")
    # Someone else is not affected.
    other = await signed_in_user(database_url)
    assert (await buy(client, other, movie["id"], "rent")).status_code == 201


async def test_a_pending_checkout_does_not_block_another(
    db: Db, client: httpx.AsyncClient, buyer: SignedIn
) -> None:
    movie = await title(db)
    await offer(db, movie["id"], "rental")
    first = await started(client, buyer, movie["id"], "rent")
    second = await started(client, buyer, movie["id"], "rent")
    assert first["purchase_id"] != second["purchase_id"] and first["checkout_id"] != second["checkout_id"]
    assert uuid.UUID(second["purchase_id"])
