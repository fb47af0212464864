"""A subscription's move to another price: an upgrade pays the prorated difference at once."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from shared.payments.providers.base import ObjectNotFound, ProviderRefused
from shared.payments.sandbox.billing_periods import period_end
from shared.payments.sandbox.cards import card_fails
from shared.payments.sandbox.events import emit
from shared.payments.sandbox.invoices import new_invoice
from shared.payments.sandbox.prices import price_copy
from shared.payments.sandbox.store import Obj, require_object, save_object
from shared.payments.sandbox.subscriptions import live_subscription, set_period
from shared.payments.sandbox.times import from_unix, to_unix

if TYPE_CHECKING:
    from shared.payments.sandbox.store import Conn


async def change_price(
    conn: Conn, ref: str, *, item_ref: str, price_ref: str, upgrade: bool, at: datetime
) -> Obj:
    """Move the subscription's item to another price, prorating an upgrade at once."""
    subscription = await live_subscription(conn, ref)
    item = subscription["items"]["data"][0]
    if item["id"] != item_ref:
        raise ObjectNotFound(f"The subscription has no item {item_ref!r}.")
    new_price = await require_object(conn, price_ref, "price")
    old_price = item["price"]
    if new_price["id"] == old_price["id"]:
        return subscription
    if new_price["currency"] != old_price["currency"]:
        raise ProviderRefused("A subscription cannot change currency.", code="currency_mismatch")
    start = from_unix(subscription["current_period_start"])
    end = from_unix(subscription["current_period_end"])
    new_interval = new_price["recurring"]["interval"]
    interval_changed = new_interval != old_price["recurring"]["interval"]
    invoice: Obj | None = None
    if upgrade and subscription["status"] != "trialing":
        span = (end - start).total_seconds()
        remaining = min(1.0, max(0.0, (end - at).total_seconds() / span)) if span > 0 else 0.0
        old_amount, new_amount = int(old_price["unit_amount"]), int(new_price["unit_amount"])
        if interval_changed:  # a new cycle starts now at the full new price, less the unused old time
            new_end = period_end(at, at, new_interval)
            total = max(0, round(new_amount - old_amount * remaining))
            added = new_amount
        else:
            new_end = end
            total = max(0, round(new_amount * remaining - old_amount * remaining))
            added = round(new_amount * remaining)
        if total > 0:
            customer = await require_object(conn, subscription["customer"], "customer")
            if card_fails(customer):
                raise ProviderRefused("Your card was declined.", code="card_declined")
            period = {"start": to_unix(at), "end": to_unix(new_end)}
            lines = [
                {
                    "description": f"Remaining time on {new_price['nickname']}",
                    "amount": added,
                    "quantity": 1,
                    "period": period,
                    "proration": True,
                    "price": new_price["id"],
                },
                {
                    "description": f"Unused time on {old_price['nickname']}",
                    "amount": total - added,
                    "quantity": 1,
                    "period": period,
                    "proration": True,
                    "price": old_price["id"],
                },
            ]
            invoice = await new_invoice(
                conn,
                customer_id=subscription["customer"],
                subscription=subscription,
                currency=new_price["currency"],
                lines=lines,
                billing_reason="subscription_update",
                paid=True,
                at=at,
            )
            subscription["latest_invoice"] = invoice["id"]
        if interval_changed:
            subscription["billing_cycle_anchor"] = to_unix(at)
            set_period(subscription, at, new_end)
    item["price"] = price_copy(new_price)
    await save_object(conn, subscription)
    await emit(conn, "customer.subscription.updated", subscription, at)
    if invoice is not None:
        await emit(conn, "invoice.paid", invoice, at)
    return subscription
