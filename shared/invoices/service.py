"""Invoice logic: one record per charge from the provider's state, the receipt mail, signed view links.

Every write here runs in the caller's transaction (the webhook's, with its exactly-once event row), so an
invoice, its receipt mail and the event that caused them commit together or not at all.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.errors import AppError, Forbidden, NotFound
from shared.http.pagination import InvalidCursor, Page, PageParams, encode_cursor
from shared.invoices import repository
from shared.invoices.html import render_invoice
from shared.invoices.receipt import receipt_data
from shared.invoices.schemas import (
    InvoiceLineRead,
    InvoiceLink,
    InvoiceRead,
    InvoiceSummary,
    TaxLineRead,
)
from shared.payments import clock
from shared.payments.providers.base import CheckoutSession, InvoiceLine, InvoiceState, TaxLine
from shared.plans.money import format_amount
from shared.settings import Settings, derived_key, get_settings

if TYPE_CHECKING:
    from psycopg import AsyncConnection

logger = logging.getLogger("cinema.invoices")

RECEIPT_TEMPLATE = "receipt"
LINK_LIFETIME = timedelta(days=30)
_LINK_PURPOSE = "invoice-links"
_SIG = re.compile(r"[0-9a-f]{64}")
_EXPIRES = re.compile(r"[0-9]{1,12}")


class InvoiceNotFound(NotFound):
    """No invoice with this id belongs to the caller (someone else's looks the same as none)."""

    code = "invoice_not_found"
    title = "Invoice not found"


class LinkInvalid(Forbidden):
    """The invoice link was altered or not made by us."""

    code = "link_invalid"
    title = "Invalid invoice link"


class LinkExpired(AppError):
    """The invoice link is genuine but too old: the owner signs in to see the invoice."""

    status = 410
    code = "link_expired"
    title = "Invoice link expired"


# Writing (from the payment provider's state).


def _status(provider_status: str) -> str:
    # A draft is not yet a bill anyone can pay; it is shown as open until the provider finalizes it.
    return "open" if provider_status == "draft" else provider_status


def _line(line: InvoiceLine) -> dict[str, Any]:
    return {
        "description": line.description,
        "quantity": line.quantity,
        "amount_minor": line.amount_minor,
        "period_start": line.period_start.isoformat() if line.period_start else None,
        "period_end": line.period_end.isoformat() if line.period_end else None,
        "proration": line.proration,
    }


def _tax(tax: TaxLine) -> dict[str, Any]:
    return {
        "description": tax.description,
        "rate_percent": tax.rate_percent,
        "amount_minor": tax.amount_minor,
        "inclusive": tax.inclusive,
    }


async def _upsert(conn: AsyncConnection[Any], values: dict[str, Any]) -> dict[str, Any]:
    """Update the invoice of (provider, provider_ref), or insert it; the row as stored."""
    # Update first: a replayed event then never consumes an invoice number (insert ... on conflict would
    # draw one from the sequence each time). A parallel first insert loses the race and updates instead.
    row = await repository.update_by_ref(conn, values)
    if row is None:
        row = await repository.insert(conn, values)
    if row is None:
        row = await repository.update_by_ref(conn, values)
    assert row is not None  # inserted, or present since the conflict
    return row


async def record(
    conn: AsyncConnection[Any],
    *,
    provider_name: str,
    invoice: InvoiceState,
    user_id: uuid.UUID,
    subscription_id: uuid.UUID | None,
) -> uuid.UUID:
    """Store the provider's invoice as it is now (upsert); queue the receipt once when it is paid."""
    from psycopg.types.json import Jsonb

    status = _status(invoice.status)
    paid_at = invoice.paid_at or (clock.now() if status == "paid" else None)
    row = await _upsert(
        conn,
        {
            "user_id": user_id,
            "provider": provider_name,
            "provider_ref": invoice.id,
            "provider_number": invoice.number,
            "subscription_id": subscription_id,
            "purchase_id": None,
            "status": status,
            "currency": invoice.currency.upper(),
            "subtotal_minor": invoice.subtotal_minor,
            "tax_minor": invoice.tax_minor,
            "total_minor": invoice.total_minor,
            "amount_paid_minor": invoice.amount_paid_minor,
            "lines": Jsonb([_line(line) for line in invoice.lines]),
            "tax_lines": Jsonb([_tax(tax) for tax in invoice.tax_lines]),
            "payment_ref": invoice.payment_ref,
            "billing_reason": invoice.billing_reason,
            "issued_at": invoice.created_at,
            "paid_at": paid_at if status == "paid" else None,
        },
    )
    await _receipt_once(conn, row)
    return uuid.UUID(str(row["id"]))


async def record_purchase(
    conn: AsyncConnection[Any],
    *,
    provider_name: str,
    checkout: CheckoutSession,
    purchase_id: uuid.UUID,
    user_id: uuid.UUID,
    description: str,
    currency: str,
    amount_minor: int,
) -> uuid.UUID:
    """The paid invoice of a rental, purchase or pay-per-view ticket (one per checkout); receipt once."""
    from psycopg.types.json import Jsonb

    subtotal = checkout.amount_subtotal if checkout.amount_subtotal is not None else amount_minor
    tax = checkout.amount_tax or 0
    total = checkout.amount_total if checkout.amount_total is not None else subtotal + tax
    # A checkout reports only the tax amount. When the total does not exceed the subtotal, the tax was
    # included in the price (Stripe's inclusive tax behaviour), otherwise it was added on top.
    tax_lines = [TaxLine(description="Tax", amount_minor=tax, inclusive=total <= subtotal)] if tax else []
    now = clock.now()
    row = await _upsert(
        conn,
        {
            "user_id": user_id,
            "provider": provider_name,
            "provider_ref": checkout.id,
            "provider_number": None,
            "subscription_id": None,
            "purchase_id": purchase_id,
            "status": "paid",
            "currency": currency.upper(),
            "subtotal_minor": subtotal,
            "tax_minor": tax,
            "total_minor": total,
            "amount_paid_minor": total,
            "lines": Jsonb([_line(InvoiceLine(description=description, amount_minor=subtotal))]),
            "tax_lines": Jsonb([_tax(line) for line in tax_lines]),
            "payment_ref": checkout.payment_ref,
            "billing_reason": "purchase",
            "issued_at": checkout.created_at or now,
            "paid_at": now,
        },
    )
    await _receipt_once(conn, row)
    return uuid.UUID(str(row["id"]))


async def _receipt_once(conn: AsyncConnection[Any], row: dict[str, Any]) -> None:
    """Queue the receipt if the invoice is paid and none went out (claimed in this transaction)."""
    # Nothing charged (a trial's first invoice), nothing to acknowledge: no receipt, like Stripe's.
    if row["status"] != "paid" or row["receipt_sent_at"] is not None or row["amount_paid_minor"] <= 0:
        return
    claimed = await repository.claim_receipt(conn, row["id"], at=clock.now())
    if claimed is None:
        return  # a parallel transaction sent it
    from shared.accounts import service as accounts
    from shared.mail.service import queue_mail

    user = await accounts.get_user(conn, user_id=claimed["user_id"])
    invoice = _read(claimed)
    await queue_mail(
        conn,
        to=user["email"],
        template=RECEIPT_TEMPLATE,
        data=receipt_data(invoice, link=invoice_link(get_settings(), invoice.id)),
        user_id=claimed["user_id"],
    )
    logger.info("receipt queued", extra={"invoice_id": str(invoice.id), "number": invoice.number})


async def refunded(
    conn: AsyncConnection[Any],
    *,
    provider_name: str,
    payment_ref: str,
    amount_refunded_minor: int,
    full: bool,
) -> InvoiceLink | None:
    """Record a refund on the invoice its payment paid (refunded when full); what it billed, or None."""
    row = await repository.refund(
        conn,
        provider=provider_name,
        payment_ref=payment_ref,
        amount_refunded_minor=amount_refunded_minor,
        full=full,
    )
    if row is None:
        return None
    return InvoiceLink(
        invoice_id=row["id"], subscription_id=row["subscription_id"], purchase_id=row["purchase_id"]
    )


# Signed links (the receipt's "view invoice" button works without signing in, for LINK_LIFETIME).


def _signature(settings: Settings, invoice_id: uuid.UUID, expires: int) -> str:
    message = f"invoice-view:{invoice_id}:{expires}".encode()
    return hmac.new(derived_key(settings, _LINK_PURPOSE), message, hashlib.sha256).hexdigest()


def signed_query(settings: Settings, invoice_id: uuid.UUID, *, expires: int) -> str:
    """The ?expires=&sig= query of a view link that stops working at `expires` (unix seconds)."""
    return f"expires={expires}&sig={_signature(settings, invoice_id, expires)}"


def invoice_link(settings: Settings, invoice_id: uuid.UUID) -> str:
    """A signed view URL of the invoice that works for LINK_LIFETIME (for the receipt email)."""
    expires = int((clock.now() + LINK_LIFETIME).timestamp())
    base = str(settings.public_base_url).rstrip("/")
    query = signed_query(settings, invoice_id, expires=expires)
    return f"{base}/api/v1/payments/invoices/{invoice_id}/view?{query}"


def check_link(settings: Settings, invoice_id: uuid.UUID, *, expires: str | None, sig: str | None) -> None:
    """Accept a genuine, unexpired view link; 403 link_invalid or 410 link_expired otherwise."""
    if not expires or not sig or not _EXPIRES.fullmatch(expires) or not _SIG.fullmatch(sig):
        raise LinkInvalid("This invoice link is incomplete or damaged.")
    expected = _signature(settings, invoice_id, int(expires))
    if not hmac.compare_digest(expected.encode(), sig.encode()):
        raise LinkInvalid("This invoice link is incomplete or damaged.")
    # Checked after the signature, so only a genuine link learns that it expired.
    if int(expires) <= clock.now().timestamp():
        raise LinkExpired("This invoice link has expired. Sign in to see your invoices under Billing.")


# Reading (the owner's billing history).


def _read(row: dict[str, Any]) -> InvoiceRead:
    lines = [InvoiceLineRead.model_validate(line) for line in row["lines"] or []]
    return InvoiceRead(
        id=row["id"],
        number=row["number"],
        status=row["status"],
        description=lines[0].description if lines else "Invoice",
        currency=row["currency"],
        subtotal_minor=row["subtotal_minor"],
        tax_minor=row["tax_minor"],
        total_minor=row["total_minor"],
        amount_paid_minor=row["amount_paid_minor"],
        amount_refunded_minor=row["amount_refunded_minor"],
        total_formatted=format_amount(row["total_minor"], row["currency"]),
        issued_at=row["issued_at"],
        paid_at=row["paid_at"],
        subscription_id=row["subscription_id"],
        purchase_id=row["purchase_id"],
        provider_number=row["provider_number"],
        billing_reason=row["billing_reason"],
        lines=lines,
        tax_lines=[TaxLineRead.model_validate(tax) for tax in row["tax_lines"] or []],
    )


def _summary(row: dict[str, Any]) -> InvoiceSummary:
    full = _read(row)
    return InvoiceSummary.model_validate(full.model_dump(include=set(InvoiceSummary.model_fields)))


def _after(page: PageParams) -> tuple[datetime, uuid.UUID] | None:
    if page.after is None:
        return None
    try:
        at, last_id = page.after
        return datetime.fromisoformat(str(at)), uuid.UUID(str(last_id))
    except (TypeError, ValueError) as error:
        raise InvalidCursor("The cursor is malformed; start again without one.") from error


async def list_for_user(
    conn: AsyncConnection[Any], *, user_id: uuid.UUID, page: PageParams
) -> Page[InvoiceSummary]:
    """The account's invoices, newest first, one page."""
    rows = await repository.list_for_user(conn, user_id=user_id, after=_after(page), limit=page.limit + 1)
    items = [_summary(row) for row in rows[: page.limit]]
    more = len(rows) > page.limit and items
    cursor = encode_cursor([items[-1].issued_at.isoformat(), str(items[-1].id)]) if more else None
    return Page[InvoiceSummary](items=items, next_cursor=cursor)


async def get_for_user(
    conn: AsyncConnection[Any], *, user_id: uuid.UUID, invoice_id: uuid.UUID
) -> InvoiceRead:
    """One of the account's invoices; 404 invoice_not_found for anyone else's."""
    row = await repository.get_for_user(conn, user_id=user_id, invoice_id=invoice_id)
    if row is None:
        raise InvoiceNotFound("No invoice with this id in your account.")
    return _read(row)


async def _page(conn: AsyncConnection[Any], invoice: InvoiceRead, user_id: uuid.UUID) -> str:
    from shared.accounts import service as accounts

    user = await accounts.get_user(conn, user_id=user_id)
    return render_invoice(invoice, billed_to=str(user["email"]))


async def html_for_user(conn: AsyncConnection[Any], *, user_id: uuid.UUID, invoice_id: uuid.UUID) -> str:
    """The printable HTML page of one of the account's invoices."""
    invoice = await get_for_user(conn, user_id=user_id, invoice_id=invoice_id)
    return await _page(conn, invoice, user_id)


async def html_for_link(
    conn: AsyncConnection[Any],
    *,
    settings: Settings,
    invoice_id: uuid.UUID,
    expires: str | None,
    sig: str | None,
) -> str:
    """The printable HTML page behind a signed view link (no sign-in)."""
    check_link(settings, invoice_id, expires=expires, sig=sig)
    row = await repository.get(conn, invoice_id)
    if row is None:
        raise InvoiceNotFound("This invoice no longer exists.")
    return await _page(conn, _read(row), row["user_id"])
