"""The printable HTML invoice page: self-contained (inline CSS, no external resources), all escaped."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from shared.invoices.schemas import InvoiceLineRead, InvoiceRead, TaxLineRead
from shared.plans.money import format_amount

SELLER = "Cinema Online"
# No scripts, no remote loads (fonts, images, trackers): the page is a document, and the signed link that
# may open it must not leak through a Referer either.
HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "cache-control": "private, no-store",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-robots-tag": "noindex, nofollow",
}

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_STATUS = {
    "open": "Due",
    "paid": "Paid",
    "void": "Void",
    "uncollectible": "Uncollectible",
    "refunded": "Refunded",
}
_E = html.escape  # quote=True: safe in attribute values as well as text


def format_date(at: datetime, *, short: bool = False) -> str:
    """A UTC date as people read it, e.g. "21 November 2026" (short: "21 Nov 2026"); locale-independent."""
    day = at.astimezone(UTC)
    month = _MONTHS[day.month - 1]
    return f"{day.day} {month[:3] if short else month} {day.year}"


def period_text(line: InvoiceLineRead) -> str | None:
    """The billed period of a line, e.g. "21 Nov 2026 - 21 Dec 2026" (with an en dash), or None."""
    if line.period_start is None or line.period_end is None:
        return None
    return (
        f"{format_date(line.period_start, short=True)} \N{EN DASH} {format_date(line.period_end, short=True)}"
    )


def rate_text(rate_percent: str | None) -> str | None:
    """A tax rate for display: "20.0" -> "20%", "8.875" -> "8.875%"; None when unknown."""
    if rate_percent is None:
        return None
    try:
        value = Decimal(rate_percent)
    except InvalidOperation:
        return f"{rate_percent}%"  # shown as the provider said it (escaped by the caller)
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


def tax_label(tax: TaxLineRead) -> str:
    """A tax line's label: "VAT (20%, included)"."""
    details = [part for part in (rate_text(tax.rate_percent), "included" if tax.inclusive else None) if part]
    return f"{tax.description} ({', '.join(details)})" if details else tax.description


def status_text(invoice: InvoiceRead) -> str:
    """The status as a person reads it ("Paid, partially refunded")."""
    label = _STATUS[invoice.status]
    if invoice.status == "paid" and invoice.amount_refunded_minor > 0:
        return f"{label}, partially refunded"
    return label


def amount_due_minor(invoice: InvoiceRead) -> int:
    """What is still owed on an open invoice (0 otherwise)."""
    return max(invoice.total_minor - invoice.amount_paid_minor, 0) if invoice.status == "open" else 0


_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f3f3f3;color:#141414;font:15px/1.5 Helvetica,Arial,sans-serif}
.sheet{max-width:800px;margin:32px auto;padding:40px;background:#fff;box-shadow:0 1px 4px rgba(0,0,0,.12)}
header{display:flex;justify-content:space-between;align-items:flex-start;gap:24px;margin-bottom:32px}
.brand{font-size:24px;font-weight:bold;color:#e50914}
.doc{text-align:right}
h1{margin:0;font-size:28px;letter-spacing:.02em}
.number{font-size:16px;color:#444}
.status{display:inline-block;margin-top:8px;padding:2px 10px;border-radius:12px;font-size:13px;
  font-weight:bold;border:1px solid currentColor}
.status-paid{color:#1a7f37}.status-open{color:#b35900}.status-refunded,.status-void,
.status-uncollectible{color:#6b6b6b}
.meta{display:grid;grid-template-columns:1fr 1fr;gap:24px;margin-bottom:32px}
dl{margin:0;display:grid;grid-template-columns:max-content 1fr;gap:4px 16px}
dt{color:#6b6b6b}dd{margin:0;word-break:break-word}
h2{font-size:13px;text-transform:uppercase;letter-spacing:.08em;color:#6b6b6b;margin:0 0 8px}
table{width:100%;border-collapse:collapse}
th{text-align:left;font-size:13px;color:#6b6b6b;border-bottom:2px solid #141414;padding:8px 0}
td{padding:10px 0;border-bottom:1px solid #e5e5e5;vertical-align:top}
.num{text-align:right;white-space:nowrap;padding-left:16px}
.qty{text-align:right;width:64px}
.period{font-size:13px;color:#6b6b6b}
.tag{display:inline-block;margin-left:8px;padding:0 6px;border-radius:4px;background:#fff3cd;color:#7a5a00;
  font-size:12px}
.totals{width:auto;margin:24px 0 0 auto;min-width:320px}
.totals td{border-bottom:none;padding:4px 0}
.totals .grand td{border-top:2px solid #141414;font-weight:bold;font-size:17px;padding-top:8px}
.totals .strong td{font-weight:bold}
footer{margin-top:40px;font-size:12px;color:#6b6b6b}
@media print{body{background:#fff}.sheet{margin:0;box-shadow:none;padding:0;max-width:none}}
"""


def _line_row(line: InvoiceLineRead, currency: str) -> str:
    period = period_text(line)
    tag = '<span class="tag">Proration</span>' if line.proration else ""
    extra = f'<div class="period">{_E(period)}</div>' if period else ""
    return (
        f"<tr><td>{_E(line.description)}{tag}{extra}</td>"
        f'<td class="qty">{line.quantity}</td>'
        f'<td class="num">{_E(format_amount(line.amount_minor, currency))}</td></tr>'
    )


def _total_row(label: str, amount: str, css: str = "") -> str:
    attribute = f' class="{css}"' if css else ""
    return f'<tr{attribute}><td>{_E(label)}</td><td class="num">{_E(amount)}</td></tr>'


def _totals(invoice: InvoiceRead) -> str:
    money = invoice.currency
    rows = [_total_row("Subtotal", format_amount(invoice.subtotal_minor, money))]
    if invoice.tax_lines:
        rows += [
            _total_row(tax_label(tax), format_amount(tax.amount_minor, money)) for tax in invoice.tax_lines
        ]
    elif invoice.tax_minor:
        rows.append(_total_row("Tax", format_amount(invoice.tax_minor, money)))
    rows.append(_total_row("Total", format_amount(invoice.total_minor, money), "grand"))
    rows.append(_total_row("Amount paid", format_amount(invoice.amount_paid_minor, money)))
    if invoice.amount_refunded_minor:
        rows.append(_total_row("Refunded", format_amount(-invoice.amount_refunded_minor, money)))
    due = amount_due_minor(invoice)
    if due:
        rows.append(_total_row("Amount due", format_amount(due, money), "strong"))
    return f'<table class="totals" aria-label="Totals">{"".join(rows)}</table>'


def _facts(rows: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{_E(label)}</dt><dd>{_E(value)}</dd>" for label, value in rows) + "</dl>"


def render_invoice(invoice: InvoiceRead, *, billed_to: str) -> str:
    """The whole HTML document of one invoice."""
    details = [("Invoice number", invoice.number), ("Date of issue", format_date(invoice.issued_at))]
    if invoice.paid_at is not None:
        details.append(("Date paid", format_date(invoice.paid_at)))
    details.append(("Status", status_text(invoice)))
    if invoice.provider_number:
        details.append(("Payment reference", invoice.provider_number))
    lines = "".join(_line_row(line, invoice.currency) for line in invoice.lines) or (
        '<tr><td colspan="3">No items</td></tr>'
    )
    title = f"Invoice {invoice.number} · {SELLER}"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex,nofollow">'
        f"<title>{_E(title)}</title><style>{_CSS}</style></head><body>"
        '<main class="sheet">'
        f'<header><div class="brand">{_E(SELLER)}</div>'
        f'<div class="doc"><h1>Invoice</h1><div class="number">{_E(invoice.number)}</div>'
        f'<span class="status status-{_E(invoice.status)}">{_E(status_text(invoice))}</span></div></header>'
        '<section class="meta">'
        f"<div><h2>Details</h2>{_facts(details)}</div>"
        f"<div><h2>Billed to</h2>{_facts([('Email', billed_to)])}"
        f'<h2 style="margin-top:16px">From</h2>{_facts([("Seller", SELLER)])}</div>'
        "</section>"
        '<table aria-label="Items"><thead><tr><th>Description</th><th class="qty">Qty</th>'
        f'<th class="num">Amount</th></tr></thead><tbody>{lines}</tbody></table>'
        f"{_totals(invoice)}"
        f"<footer><p>Amounts in {_E(invoice.currency)}. Dates are in UTC.</p>"
        f"<p>Questions about this invoice? Contact {_E(SELLER)} support and quote {_E(invoice.number)}.</p>"
        "</footer></main></body></html>"
    )
