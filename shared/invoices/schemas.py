"""Response models of invoices: what the owner sees of a charge (lines, taxes, totals in minor units)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal, NamedTuple

from pydantic import BaseModel, Field

InvoiceStatus = Literal["open", "paid", "void", "uncollectible", "refunded"]


class InvoiceLink(NamedTuple):
    """What a refund touched: the invoice and the subscription or purchase it billed."""

    invoice_id: uuid.UUID
    subscription_id: uuid.UUID | None
    purchase_id: uuid.UUID | None


class InvoiceLineRead(BaseModel):
    """One billed item: a plan period, a proration or a title."""

    description: str
    quantity: int = 1
    amount_minor: int = Field(description="in the invoice's currency's minor units (negative for a credit)")
    period_start: datetime | None = None
    period_end: datetime | None = None
    proration: bool = Field(default=False, description="an adjustment for a plan change mid-period")


class TaxLineRead(BaseModel):
    """A tax the payment provider computed."""

    description: str
    rate_percent: str | None = Field(default=None, description='decimal as text, e.g. "20.0"')
    amount_minor: int
    inclusive: bool = Field(default=False, description="already included in the line amounts")


class InvoiceSummary(BaseModel):
    """An invoice as a billing history lists it."""

    id: uuid.UUID
    number: str = Field(description="our invoice number, e.g. CIN-00000042")
    status: InvoiceStatus
    description: str = Field(description="the first line's description")
    currency: str
    total_minor: int
    amount_paid_minor: int
    amount_refunded_minor: int
    total_formatted: str = Field(description='the total for display, e.g. "$12.99" or "JPY 1200"')
    issued_at: datetime
    paid_at: datetime | None = None


class InvoiceRead(InvoiceSummary):
    """One invoice in full."""

    subscription_id: uuid.UUID | None = None
    purchase_id: uuid.UUID | None = None
    provider_number: str | None = Field(default=None, description="the payment provider's own number")
    billing_reason: str | None = None
    subtotal_minor: int
    tax_minor: int
    lines: list[InvoiceLineRead]
    tax_lines: list[TaxLineRead]
