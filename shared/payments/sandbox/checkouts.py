"""Hosted checkout sessions: opened, completed or declined by a person on the sandbox's page, expired."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from shared.payments.sandbox.charges import new_payment
from shared.payments.sandbox.events import emit
from shared.payments.sandbox.store import Obj, external, insert_object, require_object, save_object
from shared.payments.sandbox.subscriptions import start_subscription
from shared.payments.sandbox.times import now, to_unix
from shared.payments.sandbox.urls import CHECKOUT_PATH, base_url, checked_url

if TYPE_CHECKING:
    from shared.payments.sandbox.store import Conn
    from shared.settings import Settings

CHECKOUT_LIFETIME = timedelta(hours=24)  # Stripe's default expiry of an unfinished session


async def new_checkout(
    conn: Conn,
    settings: Settings,
    *,
    mode: Literal["subscription", "payment"],
    customer: str,
    currency: str,
    amount: int,
    line: Obj,
    client_reference_id: str,
    metadata: dict[str, str],
    success_url: str,
    cancel_url: str,
    extra: Obj,
) -> Obj:
    """An open checkout session, expiring after CHECKOUT_LIFETIME, on the sandbox's page."""
    at = now()
    session_id = "cs_sbx_" + secrets.token_hex(16)  # the id is the page's capability: 128 random bits
    data: Obj = {
        "id": session_id,
        "object": "checkout.session",
        "mode": mode,
        "status": "open",
        "payment_status": "unpaid",
        "created": to_unix(at),
        "expires_at": to_unix(at + CHECKOUT_LIFETIME),
        "customer": customer,
        "client_reference_id": client_reference_id,
        "metadata": dict(metadata),
        "currency": currency,
        "amount_subtotal": amount,
        "amount_total": amount,
        "total_details": {"amount_tax": 0, "amount_discount": 0},
        "line_items": {"object": "list", "data": [line]},
        "success_url": checked_url(success_url),
        "cancel_url": checked_url(cancel_url),
        "url": f"{base_url(settings)}{CHECKOUT_PATH}{session_id}",
        "subscription": None,
        "invoice": None,
        "payment_intent": None,
        **extra,
    }
    return await insert_object(conn, session_id, "checkout_session", data)


async def complete_checkout(checkout_id: str, *, at: datetime | None = None) -> Obj:
    """The person paid: start the subscription or take the payment; a finished session stays as it is."""
    at = at or now()
    async with external() as conn:
        session = await require_object(conn, checkout_id, "checkout_session", lock=True)
        if session["status"] != "open":
            return session
        if int(session["expires_at"]) <= to_unix(at):
            return await expire_session(conn, session, at)
        follow: list[tuple[str, Obj]] = []
        if session["mode"] == "subscription":
            subscription, invoice = await start_subscription(conn, session, at)
            session.update(
                subscription=subscription["id"],
                invoice=invoice["id"],
                payment_status="paid" if invoice["total"] > 0 else "no_payment_required",
            )
            follow = [("customer.subscription.created", subscription), ("invoice.paid", invoice)]
        else:
            intent, _ = await new_payment(
                conn,
                customer=session["customer"],
                currency=session["currency"],
                amount=int(session["amount_total"]),
                description=session["line_items"]["data"][0]["description"],
                metadata=session["metadata"],
                invoice=None,
                at=at,
            )
            session.update(payment_intent=intent["id"], payment_status="paid")
        session.update(status="complete", completed_at=to_unix(at))
        await save_object(conn, session)
        # Stripe's order as the brief fixes it: the session, then what it created.
        await emit(conn, "checkout.session.completed", session, at)
        for event_type, obj in follow:
            await emit(conn, event_type, obj, at)
        return session


async def expire_session(conn: Conn, session: Obj, at: datetime) -> Obj:
    """The open session expires (checkout.session.expired)."""
    session.update(status="expired")
    await save_object(conn, session)
    await emit(conn, "checkout.session.expired", session, at)
    return session


async def decline_checkout(checkout_id: str, *, at: datetime | None = None) -> Obj:
    """The person declined: the session expires (nothing happens to a finished one)."""
    at = at or now()
    async with external() as conn:
        session = await require_object(conn, checkout_id, "checkout_session", lock=True)
        if session["status"] != "open":
            return session
        return await expire_session(conn, session, at)
