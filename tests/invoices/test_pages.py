"""The HTML invoice and the receipt email, rendered from invoice records (no database)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.invoices.html import rate_text, render_invoice
from shared.invoices.receipt import receipt_data
from shared.invoices.schemas import InvoiceLineRead, InvoiceRead, TaxLineRead
from shared.mail import templates

AT = datetime(2026, 11, 21, 15, 30, tzinfo=UTC)
LINK = "http://localhost:3000/api/v1/payments/invoices/x/view?expires=1&sig=ab"


def invoice(**overrides: Any) -> InvoiceRead:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "number": "CIN-00000042",
        "status": "paid",
        "description": "Premium (yearly)",
        "currency": "JPY",
        "subtotal_minor": 12000,
        "tax_minor": 1200,
        "total_minor": 13200,
        "amount_paid_minor": 13200,
        "amount_refunded_minor": 0,
        "total_formatted": "JPY 13200",
        "issued_at": AT,
        "paid_at": AT + timedelta(minutes=2),
        "lines": [
            InvoiceLineRead(
                description="Premium (yearly)",
                amount_minor=12000,
                period_start=AT,
                period_end=AT + timedelta(days=365),
            )
        ],
        "tax_lines": [TaxLineRead(description="JCT", rate_percent="10.00", amount_minor=1200)],
    }
    values.update(overrides)
    return InvoiceRead(**values)


def test_jpy_has_no_decimals() -> None:
    page = render_invoice(invoice(), billed_to="viewer@example.com")
    assert "JPY 12000" in page and "JPY 1200<" in page and "JPY 13200" in page
    assert "JPY 120.00" not in page and "JPY 132.00" not in page
    assert "JCT (10%)" in page
    assert "21 November 2026" in page and "21 Nov 2026 \N{EN DASH} 21 Nov 2027" in page
    data = receipt_data(invoice(), link=LINK)
    assert data["amount_paid"] == "JPY 13200"
    assert json.loads(data["totals"])[-1] == ["Amount paid", "JPY 13200"]


def test_page_shows_what_a_bill_needs() -> None:
    page = render_invoice(
        invoice(
            currency="USD",
            status="paid",
            amount_refunded_minor=500,
            provider_number="SBX-0042",
            lines=[
                InvoiceLineRead(description="Standard", amount_minor=-700, proration=True),
                InvoiceLineRead(description="Premium", amount_minor=1200, quantity=2, proration=True),
            ],
            tax_lines=[
                TaxLineRead(description="Sales tax", rate_percent="8.875", amount_minor=89, inclusive=True)
            ],
        ),
        billed_to="viewer@example.com",
    )
    for text in (
        "Cinema Online",
        "CIN-00000042",
        "SBX-0042",
        "viewer@example.com",
        "Paid, partially refunded",
        "Proration",
        "-$7.00",
        "Sales tax (8.875%, included)",
        "Refunded",
        "-$5.00",
        "Date paid",
        "@media print",
    ):
        assert text in page, text
    assert page.count(">Proration<") == 2


def test_open_invoice_shows_amount_due() -> None:
    page = render_invoice(
        invoice(currency="EUR", status="open", amount_paid_minor=0, paid_at=None, tax_lines=[], tax_minor=0),
        billed_to="viewer@example.com",
    )
    assert "Due" in page and "Amount due" in page and "Date paid" not in page


@pytest.mark.parametrize(
    ("rate", "shown"), [("20.0", "20%"), ("8.875", "8.875%"), ("10.00", "10%"), ("0", "0%"), (None, None)]
)
def test_rates(rate: str | None, shown: str | None) -> None:
    assert rate_text(rate) == shown


def test_receipt_renders_with_the_mail_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.invoices.receipt import receipt

    monkeypatch.setitem(templates.TEMPLATES, "receipt", receipt)
    data = receipt_data(
        invoice(
            currency="GBP", lines=[InvoiceLineRead(description="Rental:\nThe <Night>", amount_minor=12000)]
        ),
        link="https://cinema.example/api/v1/payments/invoices/1/view?expires=9&sig=ab",
    )
    assert all(isinstance(value, str) and value for value in data.values())
    mail = templates.render("receipt", data)
    assert mail.subject == "Your Cinema Online receipt CIN-00000042"
    assert "Rental: The <Night>: £120.00" in mail.text
    assert "JCT (10%): £12.00" in mail.text and "Total: £132.00" in mail.text
    assert "https://cinema.example/api/v1/payments/invoices/1/view?expires=9&sig=ab" in mail.text
    assert "The &lt;Night&gt;" in mail.html and "<Night>" not in mail.html
    with pytest.raises(ValueError, match="link"):
        templates.render("receipt", {**data, "link": "javascript:alert(1)"})
    with pytest.raises(ValueError, match="lines"):
        templates.render("receipt", {**data, "lines": '{"not": "rows"}'})
