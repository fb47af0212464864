"""Fixtures of the invoice tests: accounts, provider invoice states, the receipt template and a clock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI

from shared.payments.providers.base import CheckoutSession, InvoiceLine, InvoiceState, TaxLine
from tests.support.clock import clock_fixture
from tests.support.commerce import one, rows

clock = clock_fixture()


@dataclass
class Account:
    """A user row made directly in the database (service tests need no sign-in)."""

    id: uuid.UUID
    email: str


async def make_account(db: psycopg.AsyncConnection[Any]) -> Account:
    """Insert a fresh user."""
    email = f"buyer-{uuid.uuid4().hex[:10]}@example.com"
    cursor = await db.execute("insert into public.users (email) values (%s) returning id", (email,))
    row = await cursor.fetchone()
    assert row is not None
    return Account(id=row[0], email=email)


@pytest.fixture
async def account(db: psycopg.AsyncConnection[Any]) -> Account:
    """A fresh account."""
    return await make_account(db)


async def make_subscription(db: psycopg.AsyncConnection[Any], user_id: uuid.UUID) -> uuid.UUID:
    """A subscriptions row (what invoices point at), as the subscription service would store it."""
    cursor = await db.execute(
        """insert into public.subscriptions (user_id, provider, provider_ref, plan_code, status)
           values (%s, 'sandbox', %s, 'standard', 'active') returning id""",
        (user_id, f"sub_sbx_{uuid.uuid4().hex[:16]}"),
    )
    row = await cursor.fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


async def make_purchase(
    db: psycopg.AsyncConnection[Any], user_id: uuid.UUID, *, checkout_ref: str, currency: str = "USD"
) -> uuid.UUID:
    """A purchases row for a rental, as the purchase service would store it."""
    cursor = await db.execute(
        """insert into public.purchases (user_id, kind, title_name, currency, amount_minor, provider,
                                         checkout_ref)
           values (%s, 'rental', 'The Long Night', %s, 399, 'sandbox', %s) returning id""",
        (user_id, currency, checkout_ref),
    )
    row = await cursor.fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def provider_ref(prefix: str = "in_sbx") -> str:
    """A fresh provider object id."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def invoice_state(**overrides: Any) -> InvoiceState:
    """A Standard-plan cycle invoice with VAT added on top, as a provider would report it."""
    start = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    values: dict[str, Any] = {
        "id": provider_ref(),
        "customer_ref": "cus_sbx_test",
        "status": "paid",
        "currency": "EUR",
        "subtotal_minor": 1199,
        "tax_minor": 240,
        "total_minor": 1439,
        "amount_paid_minor": 1439,
        "lines": (
            InvoiceLine(
                description="Standard (monthly)",
                amount_minor=1199,
                period_start=start,
                period_end=start + timedelta(days=30),
            ),
        ),
        "tax_lines": (TaxLine(description="VAT", amount_minor=240, rate_percent="20.0"),),
        "created_at": start,
        "number": "SBX-0001",
        "subscription_ref": "sub_sbx_test",
        "payment_ref": provider_ref("pi_sbx"),
        "paid_at": start + timedelta(minutes=1),
        "billing_reason": "subscription_cycle",
    }
    values.update(overrides)
    return InvoiceState(**values)


def paid_checkout(**overrides: Any) -> CheckoutSession:
    """A completed, paid one-off checkout (a rental) with tax added on top."""
    values: dict[str, Any] = {
        "id": provider_ref("cs_sbx"),
        "url": None,
        "mode": "payment",
        "status": "complete",
        "payment_status": "paid",
        "customer_ref": "cus_sbx_test",
        "client_reference_id": None,
        "payment_ref": provider_ref("pi_sbx"),
        "currency": "USD",
        "amount_subtotal": 399,
        "amount_tax": 32,
        "amount_total": 431,
        "created_at": datetime(2026, 11, 22, 9, 30, tzinfo=UTC),
    }
    values.update(overrides)
    return CheckoutSession(**values)


async def receipts(db: psycopg.AsyncConnection[Any], user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The receipt mails queued for an account, oldest first."""
    return await rows(
        db,
        """select to_address, subject, text_body, html_body from public.mail_outbox
           where user_id = %s and template = 'receipt' order by created_at""",
        user_id,
    )


async def stored(db: psycopg.AsyncConnection[Any], invoice_id: uuid.UUID) -> dict[str, Any]:
    """The invoices row."""
    return await one(db, "select * from public.invoices where id = %s", invoice_id)


@pytest.fixture(scope="session")
def invoices_app() -> FastAPI:
    """The invoices router in an app with the platform's conventions (problem+json, request ids)."""
    from shared.http.app import create_app
    from shared.invoices.routes import router

    return create_app(router, group="payments")


@pytest.fixture
async def client(invoices_app: FastAPI) -> Any:
    """An HTTP client on the invoices app."""
    from tests.support.identity import client_for

    async with client_for(invoices_app) as http:
        yield http
