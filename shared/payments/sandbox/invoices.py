"""Finalized invoices, numbered per customer, paid at once or left open."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from shared.payments.sandbox.charges import new_payment
from shared.payments.sandbox.ids import new_id
from shared.payments.sandbox.store import Obj, insert_object, require_object, save_object
from shared.payments.sandbox.times import to_unix

if TYPE_CHECKING:
    from shared.payments.sandbox.store import Conn


async def new_invoice(
    conn: Conn,
    *,
    customer_id: str,
    subscription: Obj | None,
    currency: str,
    lines: list[Obj],
    billing_reason: str,
    paid: bool,
    at: datetime,
) -> Obj:
    """A finalized invoice, paid (with a payment for a positive total) or left open (a declined card)."""
    customer = await require_object(conn, customer_id, "customer", lock=True)
    sequence = int(customer.get("next_invoice_sequence") or 1)
    customer["next_invoice_sequence"] = sequence + 1
    await save_object(conn, customer)
    invoice_id = new_id("in")
    total = sum(int(line["amount"]) for line in lines)
    data: Obj = {
        "id": invoice_id,
        "object": "invoice",
        "created": to_unix(at),
        "customer": customer_id,
        "subscription": subscription["id"] if subscription else None,
        "number": f"{customer['invoice_prefix']}-{sequence:04d}",
        "billing_reason": billing_reason,
        "currency": currency,
        "status": "open",
        "subtotal": total,
        "tax": 0,
        "total": total,
        "total_tax_amounts": [],
        "amount_due": total,
        "amount_paid": 0,
        "amount_remaining": total,
        "attempt_count": 1,
        "lines": {
            "object": "list",
            "data": [{"id": new_id("il"), "object": "line_item", **line} for line in lines],
        },
        "payment_intent": None,
        "status_transitions": {"finalized_at": to_unix(at), "paid_at": None},
    }
    if paid:
        await pay_invoice(conn, data, at=at, insert=True)
    else:
        await insert_object(conn, invoice_id, "invoice", data)
    return data


async def pay_invoice(conn: Conn, invoice: Obj, *, at: datetime, insert: bool = False) -> Obj:
    """Pay an invoice (a payment for a positive total), inserting or updating its row."""
    if invoice["total"] > 0:
        intent, _ = await new_payment(
            conn,
            customer=invoice["customer"],
            currency=invoice["currency"],
            amount=invoice["total"],
            description=f"Invoice {invoice['number']}",
            metadata={},
            invoice=invoice["id"],
            at=at,
        )
        invoice["payment_intent"] = intent["id"]
    invoice.update(status="paid", amount_paid=invoice["total"], amount_remaining=0)
    invoice["status_transitions"]["paid_at"] = to_unix(at)
    if insert:
        return await insert_object(conn, invoice["id"], "invoice", invoice)
    return await save_object(conn, invoice)
