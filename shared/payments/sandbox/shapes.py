"""Stored sandbox objects as commerce's dataclasses (CheckoutSession, SubscriptionState, ...)."""

from __future__ import annotations

from shared.payments.providers.base import (
    ChargeState,
    CheckoutSession,
    InvoiceLine,
    InvoiceState,
    SubscriptionState,
)
from shared.payments.sandbox.store import Obj
from shared.payments.sandbox.times import from_unix, from_unix_or_none


def checkout_state(data: Obj) -> CheckoutSession:
    """A stored checkout session as commerce's CheckoutSession."""
    currency = data.get("currency")
    return CheckoutSession(
        id=data["id"],
        url=data.get("url"),
        mode=data["mode"],
        status=data["status"],
        payment_status=data["payment_status"],
        customer_ref=data.get("customer"),
        client_reference_id=data.get("client_reference_id"),
        metadata=dict(data.get("metadata") or {}),
        subscription_ref=data.get("subscription"),
        payment_ref=data.get("payment_intent"),
        invoice_ref=data.get("invoice"),
        currency=currency.upper() if currency else None,
        amount_subtotal=data.get("amount_subtotal"),
        amount_tax=data.get("total_details", {}).get("amount_tax"),
        amount_total=data.get("amount_total"),
        created_at=from_unix_or_none(data.get("created")),
    )


def subscription_state(data: Obj) -> SubscriptionState:
    """A stored subscription as commerce's SubscriptionState."""
    item = data["items"]["data"][0]
    price = item["price"]
    return SubscriptionState(
        id=data["id"],
        customer_ref=data["customer"],
        status=data["status"],
        price_ref=price["id"],
        item_ref=item["id"],
        currency=price["currency"].upper(),
        amount_minor=int(price["unit_amount"]),
        interval=price["recurring"]["interval"],
        current_period_start=from_unix(data["current_period_start"]),
        current_period_end=from_unix(data["current_period_end"]),
        cancel_at_period_end=bool(data["cancel_at_period_end"]),
        trial_end=from_unix_or_none(data.get("trial_end")),
        canceled_at=from_unix_or_none(data.get("canceled_at")),
        ended_at=from_unix_or_none(data.get("ended_at")),
        latest_invoice_ref=data.get("latest_invoice"),
        metadata=dict(data.get("metadata") or {}),
        created_at=from_unix_or_none(data.get("created")),
    )


def invoice_state(data: Obj) -> InvoiceState:
    """A stored invoice as commerce's InvoiceState (the sandbox charges no tax)."""
    lines = tuple(
        InvoiceLine(
            description=line["description"],
            amount_minor=int(line["amount"]),
            quantity=int(line.get("quantity") or 1),
            period_start=from_unix_or_none(line.get("period", {}).get("start")),
            period_end=from_unix_or_none(line.get("period", {}).get("end")),
            proration=bool(line.get("proration")),
        )
        for line in data["lines"]["data"]
    )
    return InvoiceState(
        id=data["id"],
        customer_ref=data["customer"],
        status=data["status"],
        currency=data["currency"].upper(),
        subtotal_minor=int(data["subtotal"]),
        tax_minor=int(data.get("tax") or 0),
        total_minor=int(data["total"]),
        amount_paid_minor=int(data["amount_paid"]),
        lines=lines,
        tax_lines=(),
        created_at=from_unix(data["created"]),
        number=data.get("number"),
        subscription_ref=data.get("subscription"),
        payment_ref=data.get("payment_intent"),
        paid_at=from_unix_or_none(data.get("status_transitions", {}).get("paid_at")),
        billing_reason=data.get("billing_reason"),
    )


def charge_state(data: Obj) -> ChargeState:
    """A stored charge as commerce's ChargeState."""
    return ChargeState(
        id=data["id"],
        payment_ref=data.get("payment_intent"),
        currency=data["currency"].upper(),
        amount_minor=int(data["amount"]),
        amount_refunded_minor=int(data["amount_refunded"]),
        refunded=bool(data["refunded"]),
        disputed=bool(data["disputed"]),
    )
