"""Billing cycles: a renewal's new period and invoice, paid or left open (past_due), and its retries."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

from shared.payments.sandbox.billing_periods import period_end
from shared.payments.sandbox.events import emit
from shared.payments.sandbox.invoices import new_invoice, pay_invoice
from shared.payments.sandbox.prices import plan_line
from shared.payments.sandbox.store import Obj, external, load_object, save_object
from shared.payments.sandbox.subscriptions import end_subscription, live_subscription, set_period
from shared.payments.sandbox.times import from_unix, now, to_unix

if TYPE_CHECKING:
    from shared.payments.sandbox.store import Conn

Outcome = Literal["paid", "failed"]


async def renew_cycle(conn: Conn, subscription: Obj, *, outcome: Outcome, at: datetime) -> Obj:
    """One billing cycle: a new period and its invoice, paid or left open (past_due)."""
    if subscription["cancel_at_period_end"]:
        return await end_subscription(conn, subscription, at)
    latest = (
        await load_object(conn, subscription["latest_invoice"], "invoice", lock=True)
        if subscription.get("latest_invoice")
        else None
    )
    if subscription["status"] == "past_due" and latest is not None and latest["status"] == "open":
        # A retry of the unpaid invoice: the period already moved when it failed.
        if outcome == "failed":
            latest["attempt_count"] = int(latest.get("attempt_count") or 1) + 1
            await save_object(conn, latest)
            await emit(conn, "invoice.payment_failed", latest, at)
            return subscription
        await pay_invoice(conn, latest, at=at)
        subscription["status"] = "active"
        await save_object(conn, subscription)
        await emit(conn, "invoice.paid", latest, at)
        await emit(conn, "customer.subscription.updated", subscription, at)
        return subscription
    price = subscription["items"]["data"][0]["price"]
    interval = price["recurring"]["interval"]
    old_end = from_unix(subscription["current_period_end"])
    if old_end <= at:
        start, anchor = old_end, from_unix(subscription["billing_cycle_anchor"])
    else:  # renewed early (a dev control): the new cycle starts now, like resetting Stripe's anchor
        start = anchor = at
        subscription["billing_cycle_anchor"] = to_unix(at)
    end = period_end(anchor, start, interval)
    set_period(subscription, start, end)
    invoice = await new_invoice(
        conn,
        customer_id=subscription["customer"],
        subscription=subscription,
        currency=price["currency"],
        lines=[plan_line(price, start, end)],
        billing_reason="subscription_cycle",
        paid=outcome == "paid",
        at=at,
    )
    subscription.update(latest_invoice=invoice["id"], status="active" if outcome == "paid" else "past_due")
    await save_object(conn, subscription)
    await emit(conn, "customer.subscription.updated", subscription, at)
    await emit(conn, "invoice.paid" if outcome == "paid" else "invoice.payment_failed", invoice, at)
    return subscription


async def renew(subscription_ref: str, *, outcome: Outcome, at: datetime | None = None) -> Obj:
    """Run one billing cycle now (a dev control): paid, or failed as with a declined card."""
    at = at or now()
    async with external() as conn:
        subscription = await live_subscription(conn, subscription_ref)
        return await renew_cycle(conn, subscription, outcome=outcome, at=at)
