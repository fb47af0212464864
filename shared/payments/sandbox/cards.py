"""The customer's test card: one that works, or one that declines every charge."""

from __future__ import annotations

from shared.payments.sandbox.store import Obj, external, require_object, save_object

TEST_CARD = {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034}
FAILING_LAST4 = "0341"  # Stripe's test card that attaches but declines every charge


def card_fails(customer: Obj) -> bool:
    """Whether the customer's sandbox card declines charges."""
    return bool(customer.get("sandbox_card", {}).get("fails"))


async def set_card_fails(customer_ref: str, *, fails: bool) -> Obj:
    """Make the customer's card decline (or work again) for renewals and upgrades."""
    async with external() as conn:
        customer = await require_object(conn, customer_ref, "customer", lock=True)
        customer["sandbox_card"] = {**TEST_CARD, "last4": FAILING_LAST4 if fails else "4242", "fails": fails}
        return await save_object(conn, customer)
