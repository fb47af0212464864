"""Payment intents and their charges; refunds and disputes of a payment."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from shared.errors import Conflict
from shared.payments.providers.base import ObjectNotFound
from shared.payments.sandbox.cards import TEST_CARD
from shared.payments.sandbox.events import emit
from shared.payments.sandbox.ids import new_id
from shared.payments.sandbox.store import Obj, external, insert_object, require_object, save_object
from shared.payments.sandbox.times import now, to_unix

if TYPE_CHECKING:
    from shared.payments.sandbox.store import Conn


async def new_payment(
    conn: Conn,
    *,
    customer: str,
    currency: str,
    amount: int,
    description: str,
    metadata: Obj,
    invoice: str | None,
    at: datetime,
) -> tuple[Obj, Obj]:
    """A succeeded payment intent and its charge."""
    intent_id, charge_id = new_id("pi"), new_id("ch")
    card = (await require_object(conn, customer, "customer")).get("sandbox_card", TEST_CARD)
    charge: Obj = {
        "id": charge_id,
        "object": "charge",
        "created": to_unix(at),
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": 0,
        "currency": currency,
        "customer": customer,
        "description": description,
        "disputed": False,
        "invoice": invoice,
        "paid": True,
        "payment_intent": intent_id,
        "payment_method_details": {"type": "card", "card": {"brand": card["brand"], "last4": card["last4"]}},
        "refunded": False,
        "status": "succeeded",
    }
    intent: Obj = {
        "id": intent_id,
        "object": "payment_intent",
        "created": to_unix(at),
        "amount": amount,
        "amount_received": amount,
        "currency": currency,
        "customer": customer,
        "description": description,
        "invoice": invoice,
        "latest_charge": charge_id,
        "metadata": dict(metadata),
        "status": "succeeded",
    }
    await insert_object(conn, intent_id, "payment_intent", intent)
    await insert_object(conn, charge_id, "charge", charge)
    return intent, charge


async def charge_of(conn: Conn, payment_ref: str) -> Obj:
    """The charge, locked, of a payment intent or charge id."""
    if payment_ref.startswith("ch_"):
        return await require_object(conn, payment_ref, "charge", lock=True)
    intent = await require_object(conn, payment_ref, "payment_intent")
    if not intent.get("latest_charge"):
        raise ObjectNotFound("This payment has no charge.")
    return await require_object(conn, intent["latest_charge"], "charge", lock=True)


async def refund(payment_ref: str, *, amount_minor: int | None = None, at: datetime | None = None) -> Obj:
    """Refund a payment (all of it by default): the charge is refunded and charge.refunded sent."""
    async with external() as conn:
        charge = await charge_of(conn, payment_ref)
        return await apply_refund(conn, charge, amount_minor=amount_minor, at=at or now())


async def apply_refund(conn: Conn, charge: Obj, *, amount_minor: int | None, at: datetime) -> Obj:
    """Refund part or all of what is left of a charge (charge.refunded)."""
    left = int(charge["amount"]) - int(charge["amount_refunded"])
    if left <= 0:
        raise Conflict("This payment is already fully refunded.", code="already_refunded")
    amount = left if amount_minor is None else amount_minor
    if not 0 < amount <= left:
        raise Conflict(f"At most {left} (minor units) can still be refunded.", code="refund_too_large")
    charge["amount_refunded"] = int(charge["amount_refunded"]) + amount
    charge["refunded"] = charge["amount_refunded"] >= int(charge["amount"])
    await save_object(conn, charge)
    await emit(conn, "charge.refunded", charge, at)
    return charge


async def dispute(payment_ref: str, *, at: datetime | None = None) -> Obj:
    """The card holder disputes a payment: charge.dispute.created, whose object names the charge."""
    at = at or now()
    async with external() as conn:
        charge = await charge_of(conn, payment_ref)
        if charge["disputed"]:
            raise Conflict("This payment is already disputed.", code="already_disputed")
        charge["disputed"] = True
        await save_object(conn, charge)
        dispute_id = new_id("dp")
        data: Obj = {
            "id": dispute_id,
            "object": "dispute",
            "created": to_unix(at),
            "amount": charge["amount"],
            "currency": charge["currency"],
            "charge": charge["id"],
            "payment_intent": charge.get("payment_intent"),
            "reason": "fraudulent",
            "status": "needs_response",
        }
        await insert_object(conn, dispute_id, "dispute", data)
        await emit(conn, "charge.dispute.created", data, at)
        return data
