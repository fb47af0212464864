"""Prices as a checkout line, a subscription item and an invoice line carry them."""

from __future__ import annotations

from datetime import datetime

from shared.payments.sandbox.store import Obj
from shared.payments.sandbox.times import to_unix


def price_copy(price: Obj) -> Obj:
    """The price fields a checkout line or subscription item carries."""
    return {
        key: price[key]
        for key in (
            "id",
            "object",
            "currency",
            "unit_amount",
            "recurring",
            "nickname",
            "product",
            "metadata",
            "active",
        )
    }


def plan_line(price: Obj, start: datetime, end: datetime) -> Obj:
    """The invoice line of one full period of a plan price."""
    from shared.plans.money import format_amount

    per = "year" if price["recurring"]["interval"] == "year" else "month"
    amount = format_amount(int(price["unit_amount"]), price["currency"])
    return {
        "description": f"1 x {price['nickname']} (at {amount} / {per})",
        "amount": int(price["unit_amount"]),
        "quantity": 1,
        "period": {"start": to_unix(start), "end": to_unix(end)},
        "proration": False,
        "price": price["id"],
    }
