"""What a paid checkout grants only after checks: it must pay for this very purchase (currency, amount,
the buyer's customer, the purchase named in its metadata); a second paid checkout of what the account holds
by then, or a payment for a title that is gone, is refunded at the provider; a pay-per-view event whose
viewing window moves takes its tickets along."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.infra.db import standalone
from tests.purchases.conftest import (
    PAYMENTS,
    Db,
    complete,
    decide,
    entitlements_of,
    offer,
    ppv_event,
    purchase_row,
    started,
    title,
    tonight,
)
from tests.support.clock import Clock
from tests.support.identity import SignedIn, signed_in_user

pytestmark = pytest.mark.usefixtures("sandbox")


async def _invoice(db: Db, purchase_id: str) -> tuple[Any, ...]:
    cursor = await db.execute(
        "select status, amount_refunded_minor from public.invoices where purchase_id = %s", (purchase_id,)
    )
    rows = await cursor.fetchall()
    assert len(rows) == 1, rows
    return tuple(rows[0])


async def _charge_of(payment_ref: str) -> Any:
    from shared.payments.providers import get_provider
    from shared.settings import get_settings

    return await get_provider(get_settings()).charge_for_payment(payment_ref)


async def test_a_checkout_that_does_not_pay_for_the_purchase_grants_nothing(
    db: Db, database_url: str, client: httpx.AsyncClient, buyer: SignedIn
) -> None:
    from shared.payments.providers import get_provider
    from shared.payments.providers import sandbox as sandbox_provider
    from shared.purchases import service
    from shared.settings import get_settings
    from shared.subscriptions import service as subscriptions

    movie = await title(db)
    await offer(db, movie["id"], "purchase", 1499)
    body = await started(client, buyer, movie["id"], "buy")
    provider = get_provider(get_settings())
    # Paid at the sandbox, its events not delivered (outside a request): the service is driven directly.
    await sandbox_provider.complete_checkout(body["checkout_id"])
    checkout = await provider.get_checkout(body["checkout_id"])
    assert checkout.status == "complete" and checkout.payment_status == "paid"

    stranger = await signed_in_user(database_url)
    async with standalone() as conn:
        strangers_customer = await subscriptions.customer_ref(
            conn, provider=provider, user_id=stranger.user_id, email=stranger.email
        )
    forged = [
        dataclasses.replace(checkout, currency="EUR"),
        dataclasses.replace(checkout, amount_subtotal=1),
        dataclasses.replace(checkout, customer_ref=strangers_customer),
        dataclasses.replace(checkout, customer_ref="cus_sbx_nobody"),
        dataclasses.replace(checkout, customer_ref=None),
        dataclasses.replace(checkout, metadata={"user_id": str(buyer.user_id)}),  # no purchase_id
    ]
    for session in forged:
        async with standalone() as conn:
            await service.checkout_updated(conn, provider=provider, checkout=session)
        row = await purchase_row(db, body["purchase_id"])
        assert row["status"] == "pending" and row["entitlement_id"] is None, session
        assert await entitlements_of(db, body["purchase_id"]) == []
    assert not (await decide(db, buyer, movie)).allowed

    # The genuine checkout (its events delivered) is granted.
    async with standalone() as conn:
        await sandbox_provider.deliver_pending(conn, settings=get_settings())
    assert (await purchase_row(db, body["purchase_id"]))["status"] == "paid"
    assert (await decide(db, buyer, movie)).allowed


@pytest.mark.parametrize("kind", ["rent", "buy", "ppv"])
async def test_a_second_paid_checkout_of_what_is_held_is_refunded(
    db: Db, client: httpx.AsyncClient, buyer: SignedIn, clock: Clock, kind: str
) -> None:
    movie = await title(db)
    fields: dict[str, Any] = {}
    if kind == "ppv":
        now = clock.at
        event_id = await ppv_event(
            db,
            movie["id"],
            sale=(now - timedelta(hours=1), now + timedelta(hours=2)),
            view=(now - timedelta(minutes=30), now + timedelta(hours=5)),
        )
        fields["ppv_event_id"] = str(event_id)
    else:
        await offer(db, movie["id"], "rental" if kind == "rent" else "purchase", 999)
    # Two tabs: both checkouts open before either is paid, then both are paid.
    first = await started(client, buyer, movie["id"], kind, **fields)
    second = await started(client, buyer, movie["id"], kind, **fields)
    await complete(client, first["checkout_id"])
    await complete(client, second["checkout_id"])

    kept, duplicate = (
        await purchase_row(db, first["purchase_id"]),
        await purchase_row(db, second["purchase_id"]),
    )
    assert kept["status"] == "paid" and kept["entitlement_id"] is not None
    assert duplicate["status"] == "refunded" and duplicate["ended_at"] is not None, duplicate
    assert duplicate["entitlement_id"] is None and duplicate["payment_ref"]
    assert await entitlements_of(db, second["purchase_id"]) == []
    charge = await _charge_of(duplicate["payment_ref"])
    assert charge is not None and charge.refunded and charge.amount_refunded_minor == charge.amount_minor
    assert await _invoice(db, second["purchase_id"]) == ("refunded", charge.amount_minor)
    # The sandbox's charge.refunded for the duplicate (delivered since) leaves the first purchase alone.
    assert (await purchase_row(db, first["purchase_id"]))["status"] == "paid"
    assert (await decide(db, buyer, movie)).allowed


async def test_a_payment_for_a_deleted_title_is_refunded(
    db: Db, client: httpx.AsyncClient, buyer: SignedIn
) -> None:
    movie = await title(db)
    await offer(db, movie["id"], "purchase", 1299)
    body = await started(client, buyer, movie["id"], "buy")
    await db.execute("update public.catalog_titles set deleted_at = now() where id = %s", (movie["id"],))
    await complete(client, body["checkout_id"])

    row = await purchase_row(db, body["purchase_id"])
    assert row["status"] == "refunded" and row["entitlement_id"] is None, row
    assert await entitlements_of(db, body["purchase_id"]) == []
    charge = await _charge_of(row["payment_ref"])
    assert charge is not None and charge.refunded
    assert await _invoice(db, body["purchase_id"]) == ("refunded", 1299)


async def test_moving_a_ppv_events_viewing_window_moves_its_tickets(
    db: Db, database_url: str, client: httpx.AsyncClient, buyer: SignedIn, clock: Clock
) -> None:
    show = await title(db)
    now = clock.at
    event_id = await ppv_event(db, show["id"], **tonight(now))
    paid_ticket = await started(client, buyer, show["id"], "ppv", ppv_event_id=str(event_id))
    await complete(client, paid_ticket["checkout_id"])
    late_buyer = await signed_in_user(database_url)
    pending_ticket = await started(client, late_buyer, show["id"], "ppv", ppv_event_id=str(event_id))

    # The show is postponed by a day and runs an hour longer.
    admin = await signed_in_user(database_url, roles=["admin"])
    new_start, new_end = now + timedelta(days=1, hours=2), now + timedelta(days=1, hours=6)
    response = await client.patch(
        f"{PAYMENTS}/ppv-events/{event_id}",
        json={
            "sale_ends_at": new_start.isoformat(),
            "view_starts_at": new_start.isoformat(),
            "view_ends_at": new_end.isoformat(),
        },
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text

    (entitlement,) = await entitlements_of(db, paid_ticket["purchase_id"])
    assert (entitlement["starts_at"], entitlement["ends_at"]) == (new_start, new_end)
    row = await purchase_row(db, paid_ticket["purchase_id"])
    assert (row["access_starts_at"], row["access_ends_at"]) == (new_start, new_end)
    listed = await client.get(f"{PAYMENTS}/purchases/{paid_ticket['purchase_id']}", headers=buyer.headers)
    window = listed.json()["viewing_window"]
    assert [datetime.fromisoformat(window[k].replace("Z", "+00:00")) for k in ("starts_at", "ends_at")] == [
        new_start,
        new_end,
    ]

    # A ticket paid after the change gets the new window too.
    await complete(client, pending_ticket["checkout_id"])
    (late,) = await entitlements_of(db, pending_ticket["purchase_id"])
    assert (late["starts_at"], late["ends_at"]) == (new_start, new_end)

    clock.advance(hours=3)  # the old window: nothing plays
    assert not (await decide(db, buyer, show)).allowed
    clock.advance(days=1)  # the new one
    assert (await decide(db, buyer, show)).allowed
    clock.advance(hours=2)  # still on: it runs an hour longer than before
    assert (await decide(db, buyer, show)).allowed
    clock.advance(hours=2)
    assert not (await decide(db, buyer, show)).allowed
