"""The receipt email: its template (registered as "receipt" in shared.mail.templates) and its data."""

from __future__ import annotations

import json

from shared.invoices.html import format_date, period_text, tax_label
from shared.invoices.schemas import InvoiceRead
from shared.mail.templates import Block, Button, Draft, Facts, Note, Paragraph, Values
from shared.plans.money import format_amount

PRODUCT = "Cinema Online"
LINK_LIFETIME = "30 days"


def _one_line(text: str, *, limit: int) -> str:
    """One printable line: a title name or a provider's description must not break the layout."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:limit]


def _rows(v: Values, key: str) -> tuple[tuple[str, str], ...]:
    """Label/value rows passed as a JSON list of pairs (mail data values are strings)."""
    try:
        value = json.loads(v[key])
    except json.JSONDecodeError as error:
        raise ValueError(f"mail template 'receipt': data[{key!r}] is not JSON") from error
    if not isinstance(value, list) or not all(
        isinstance(row, list) and len(row) == 2 and all(isinstance(part, str) for part in row)
        for row in value
    ):
        raise ValueError(f"mail template 'receipt': data[{key!r}] must be a list of [label, value] pairs")
    return tuple((_one_line(label, limit=160), _one_line(amount, limit=40)) for label, amount in value)


def receipt(v: Values) -> Draft:
    """A paid invoice: what was paid for, the totals and a link to the printable invoice."""
    number = _one_line(v["number"], limit=40)
    paid = _one_line(v["amount_paid"], limit=40)
    date = _one_line(v["date"], limit=40)
    lines = _rows(v, "lines")
    totals = _rows(v, "totals")
    return Draft(
        subject=f"Your {PRODUCT} receipt {number}",
        preheader=f"{paid} paid on {date}. Thank you!",
        blocks=(
            Paragraph(f"Thank you for your payment. This is your receipt for invoice {number}."),
            Facts((("Invoice", number), ("Date paid", date), ("Amount paid", paid))),
            *((Facts(lines),) if lines else ()),
            Facts(totals),
            # The signed view link opens the invoice without signing in, for a while.
            *_view(v),
            Note(
                f"Your invoices are always in your {PRODUCT} account under Billing. This receipt was sent "
                "because a payment was made with your account."
            ),
        ),
    )


def _view(v: Values) -> tuple[Block, ...]:
    lifetime = v.get("link_lifetime") or LINK_LIFETIME
    return (
        Button("View or print your invoice", v.link("link")),
        Note(f"This link to your invoice works for {lifetime}; after that, sign in to see it."),
    )


def _line_label(description: str, quantity: int, proration: bool, period: str | None) -> str:
    label = f"{quantity} \N{MULTIPLICATION SIGN} {description}" if quantity != 1 else description
    if proration:
        label += " (proration)"
    if period:
        label += f", {period}"
    return label


def receipt_data(invoice: InvoiceRead, *, link: str) -> dict[str, str]:
    """The receipt template's data for a paid invoice (every value a string, as queue_mail wants)."""
    money = invoice.currency
    lines = [
        [
            _line_label(line.description, line.quantity, line.proration, period_text(line)),
            format_amount(line.amount_minor, money),
        ]
        for line in invoice.lines
    ]
    totals = [["Subtotal", format_amount(invoice.subtotal_minor, money)]]
    totals += [[tax_label(tax), format_amount(tax.amount_minor, money)] for tax in invoice.tax_lines]
    if not invoice.tax_lines and invoice.tax_minor:
        totals.append(["Tax", format_amount(invoice.tax_minor, money)])
    totals.append(["Total", format_amount(invoice.total_minor, money)])
    totals.append(["Amount paid", format_amount(invoice.amount_paid_minor, money)])
    return {
        "number": invoice.number,
        "date": format_date(invoice.paid_at or invoice.issued_at),
        "amount_paid": format_amount(invoice.amount_paid_minor, money),
        "lines": json.dumps(lines, ensure_ascii=False),
        "totals": json.dumps(totals, ensure_ascii=False),
        "link": link,
        "link_lifetime": LINK_LIFETIME,
    }
