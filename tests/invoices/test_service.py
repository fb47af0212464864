"""Invoice records from provider states: upserts, statuses, receipts exactly once, purchases, refunds."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from shared.invoices import service
from shared.payments.providers.base import InvoiceLine, TaxLine
from tests.invoices.conftest import (
    Account,
    invoice_state,
    make_account,
    make_purchase,
    make_subscription,
    paid_checkout,
    receipts,
    stored,
)


async def record(db: psycopg.AsyncConnection[Any], account: Account, **kwargs: Any) -> uuid.UUID:
    """service.record in one committed transaction."""
    subscription_id = kwargs.pop("subscription_id", None)
    async with db.transaction():
        return await service.record(
            db,
            provider_name="sandbox",
            invoice=invoice_state(**kwargs),
            user_id=account.id,
            subscription_id=subscription_id,
        )


async def sequence_value(db: psycopg.AsyncConnection[Any]) -> int:
    cursor = await db.execute("select last_value from public.invoice_number_seq")
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_open_then_paid_sends_one_receipt(db: psycopg.AsyncConnection[Any], account: Account) -> None:
    subscription_id = await make_subscription(db, account.id)
    ref = "in_sbx_" + uuid.uuid4().hex
    start = datetime(2026, 12, 1, tzinfo=UTC)
    lines = (
        InvoiceLine(
            description="Unused time on Standard after 10 Dec 2026",
            amount_minor=-774,
            period_start=start + timedelta(days=9),
            period_end=start + timedelta(days=30),
            proration=True,
        ),
        InvoiceLine(
            description="Remaining time on Premium after 10 Dec 2026",
            amount_minor=1161,
            period_start=start + timedelta(days=9),
            period_end=start + timedelta(days=30),
            proration=True,
        ),
    )
    taxes = (
        TaxLine(description="VAT", amount_minor=77, rate_percent="20.0"),
        TaxLine(description="Digital services levy", amount_minor=4, rate_percent="1.25", inclusive=True),
    )
    common: dict[str, Any] = {
        "id": ref,
        "lines": lines,
        "tax_lines": taxes,
        "subtotal_minor": 387,
        "tax_minor": 81,
        "total_minor": 468,
        "billing_reason": "subscription_update",
        "subscription_id": subscription_id,
    }
    invoice_id = await record(db, account, status="open", amount_paid_minor=0, paid_at=None, **common)
    row = await stored(db, invoice_id)
    assert re.fullmatch(r"CIN-\d{8}", row["number"])
    assert row["status"] == "open" and row["paid_at"] is None and row["receipt_sent_at"] is None
    assert row["subscription_id"] == subscription_id and row["user_id"] == account.id
    assert (row["subtotal_minor"], row["tax_minor"], row["total_minor"]) == (387, 81, 468)
    assert [line["proration"] for line in row["lines"]] == [True, True]
    assert row["lines"][0]["amount_minor"] == -774
    assert datetime.fromisoformat(row["lines"][0]["period_start"]) == start + timedelta(days=9)
    assert row["tax_lines"] == [
        {"description": "VAT", "rate_percent": "20.0", "amount_minor": 77, "inclusive": False},
        {
            "description": "Digital services levy",
            "rate_percent": "1.25",
            "amount_minor": 4,
            "inclusive": True,
        },
    ]
    assert await receipts(db, account.id) == []

    # The payment succeeds: same record, now paid, and exactly one receipt.
    assert await record(db, account, status="paid", amount_paid_minor=468, **common) == invoice_id
    row = await stored(db, invoice_id)
    assert row["status"] == "paid" and row["amount_paid_minor"] == 468
    assert row["paid_at"] is not None and row["receipt_sent_at"] is not None
    mails = await receipts(db, account.id)
    assert len(mails) == 1
    mail = mails[0]
    assert mail["to_address"] == account.email
    assert mail["subject"] == f"Your Cinema Online receipt {row['number']}"
    text = mail["text_body"]
    assert "Remaining time on Premium after 10 Dec 2026 (proration)" in text
    assert "-€7.74" in text and "€11.61" in text
    assert "VAT (20%): €0.77" in text and "Digital services levy (1.25%, included): €0.04" in text
    assert "Total: €4.68" in text and "Amount paid: €4.68" in text
    assert f"/api/v1/payments/invoices/{invoice_id}/view?expires=" in text

    # Replays (the same event again, or another event re-reading the same invoice) send nothing more and
    # draw no invoice number.
    before = await sequence_value(db)
    for _ in range(3):
        assert await record(db, account, status="paid", amount_paid_minor=468, **common) == invoice_id
    assert len(await receipts(db, account.id)) == 1
    assert await sequence_value(db) == before
    assert (await stored(db, invoice_id))["number"] == row["number"]


async def test_paid_never_moves_back(db: psycopg.AsyncConnection[Any], account: Account) -> None:
    ref = "in_sbx_" + uuid.uuid4().hex
    invoice_id = await record(db, account, id=ref, status="paid")
    paid_at = (await stored(db, invoice_id))["paid_at"]
    # A stale re-read says open (or the provider's draft): the invoice stays paid.
    await record(db, account, id=ref, status="open", amount_paid_minor=0, paid_at=None)
    await record(db, account, id=ref, status="draft", amount_paid_minor=0, paid_at=None)
    row = await stored(db, invoice_id)
    assert row["status"] == "paid" and row["amount_paid_minor"] == 1439 and row["paid_at"] == paid_at
    assert len(await receipts(db, account.id)) == 1


async def test_statuses_as_the_provider_says(db: psycopg.AsyncConnection[Any], account: Account) -> None:
    draft = await record(db, account, status="draft", amount_paid_minor=0, paid_at=None)
    assert (await stored(db, draft))["status"] == "open"
    void_ref = "in_sbx_" + uuid.uuid4().hex
    void = await record(db, account, id=void_ref, status="void", amount_paid_minor=0, paid_at=None)
    assert (await stored(db, void))["status"] == "void"
    await record(db, account, id=void_ref, status="open", amount_paid_minor=0, paid_at=None)
    assert (await stored(db, void))["status"] == "void"
    # Uncollectible, then paid after all (Stripe allows it): the receipt goes out then.
    late_ref = "in_sbx_" + uuid.uuid4().hex
    late = await record(db, account, id=late_ref, status="uncollectible", amount_paid_minor=0, paid_at=None)
    assert (await stored(db, late))["status"] == "uncollectible"
    assert await receipts(db, account.id) == []
    await record(db, account, id=late_ref, status="paid", paid_at=None)
    row = await stored(db, late)
    assert row["status"] == "paid" and row["paid_at"] is not None
    assert len(await receipts(db, account.id)) == 1


async def test_parallel_paid_records_send_one_receipt(database_url: str, account: Account) -> None:
    state = invoice_state()

    async def one() -> uuid.UUID:
        connect = psycopg.AsyncConnection.connect(database_url, prepare_threshold=None)
        async with await connect as conn, conn.transaction():
            invoice_id = await service.record(
                conn, provider_name="sandbox", invoice=state, user_id=account.id, subscription_id=None
            )
            await asyncio.sleep(0.05)  # hold the transaction open while the others race
            return invoice_id

    ids = await asyncio.gather(*(one() for _ in range(6)))
    assert len(set(ids)) == 1
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        assert len(await receipts(db, account.id)) == 1
        cursor = await db.execute(
            "select count(*) from public.invoices where provider = 'sandbox' and provider_ref = %s",
            (state.id,),
        )
        assert await cursor.fetchone() == (1,)


async def test_rolled_back_record_leaves_nothing(db: psycopg.AsyncConnection[Any], account: Account) -> None:
    state = invoice_state()

    class Abort(Exception):
        pass

    try:
        async with db.transaction():
            await service.record(
                db, provider_name="sandbox", invoice=state, user_id=account.id, subscription_id=None
            )
            raise Abort
    except Abort:
        pass
    assert await receipts(db, account.id) == []
    # Processed again (the webhook is retried): recorded and the receipt sent, once.
    invoice_id = await record(db, account, id=state.id)
    assert (await stored(db, invoice_id))["status"] == "paid"
    assert len(await receipts(db, account.id)) == 1


async def test_record_purchase(db: psycopg.AsyncConnection[Any], account: Account) -> None:
    checkout = paid_checkout()
    purchase_id = await make_purchase(db, account.id, checkout_ref=checkout.id)

    async def once() -> uuid.UUID:
        async with db.transaction():
            return await service.record_purchase(
                db,
                provider_name="sandbox",
                checkout=checkout,
                purchase_id=purchase_id,
                user_id=account.id,
                description="Rental: The Long Night",
                currency="usd",
                amount_minor=399,
            )

    invoice_id = await once()
    row = await stored(db, invoice_id)
    assert row["provider_ref"] == checkout.id and row["purchase_id"] == purchase_id
    assert row["status"] == "paid" and row["billing_reason"] == "purchase"
    assert row["payment_ref"] == checkout.payment_ref and row["currency"] == "USD"
    assert (row["subtotal_minor"], row["tax_minor"], row["total_minor"], row["amount_paid_minor"]) == (
        399,
        32,
        431,
        431,
    )
    assert row["lines"][0]["description"] == "Rental: The Long Night"
    assert row["lines"][0]["amount_minor"] == 399
    assert row["tax_lines"] == [
        {"description": "Tax", "rate_percent": None, "amount_minor": 32, "inclusive": False}
    ]
    assert row["issued_at"] == checkout.created_at
    assert await once() == invoice_id
    mails = await receipts(db, account.id)
    assert len(mails) == 1
    assert "Rental: The Long Night: $3.99" in mails[0]["text_body"]
    assert "Tax: $0.32" in mails[0]["text_body"] and "Total: $4.31" in mails[0]["text_body"]


async def test_record_purchase_without_tax_and_inclusive_tax(
    db: psycopg.AsyncConnection[Any], account: Account
) -> None:
    plain = paid_checkout(amount_subtotal=None, amount_tax=None, amount_total=None, created_at=None)
    inclusive = paid_checkout(currency="EUR", amount_subtotal=499, amount_tax=83, amount_total=499)
    async with db.transaction():
        first = await service.record_purchase(
            db,
            provider_name="sandbox",
            checkout=plain,
            purchase_id=await make_purchase(db, account.id, checkout_ref=plain.id),
            user_id=account.id,
            description="Purchase: Harbour Lights",
            currency="USD",
            amount_minor=1499,
        )
        second = await service.record_purchase(
            db,
            provider_name="sandbox",
            checkout=inclusive,
            purchase_id=await make_purchase(db, account.id, checkout_ref=inclusive.id, currency="EUR"),
            user_id=account.id,
            description="Rental: Harbour Lights",
            currency="EUR",
            amount_minor=499,
        )
    row = await stored(db, first)
    assert (row["subtotal_minor"], row["tax_minor"], row["total_minor"], row["tax_lines"]) == (
        1499,
        0,
        1499,
        [],
    )
    row = await stored(db, second)
    assert (row["subtotal_minor"], row["tax_minor"], row["total_minor"]) == (499, 83, 499)
    assert row["tax_lines"][0]["inclusive"] is True
    assert len(await receipts(db, account.id)) == 2


async def test_refunds(db: psycopg.AsyncConnection[Any], account: Account) -> None:
    checkout = paid_checkout()
    purchase_id = await make_purchase(db, account.id, checkout_ref=checkout.id)
    assert checkout.payment_ref is not None
    async with db.transaction():
        invoice_id = await service.record_purchase(
            db,
            provider_name="sandbox",
            checkout=checkout,
            purchase_id=purchase_id,
            user_id=account.id,
            description="Rental: The Long Night",
            currency="USD",
            amount_minor=399,
        )

    async def refund(amount: int, *, full: bool, payment_ref: str = checkout.payment_ref or "") -> Any:
        async with db.transaction():
            return await service.refunded(
                db, provider_name="sandbox", payment_ref=payment_ref, amount_refunded_minor=amount, full=full
            )

    link = await refund(100, full=False)
    assert link == (invoice_id, None, purchase_id)
    row = await stored(db, invoice_id)
    assert (row["status"], row["amount_refunded_minor"]) == ("paid", 100)
    # A late event with an older, smaller cumulative amount does not lower it.
    await refund(50, full=False)
    assert (await stored(db, invoice_id))["amount_refunded_minor"] == 100
    await refund(431, full=True)
    row = await stored(db, invoice_id)
    assert (row["status"], row["amount_refunded_minor"]) == ("refunded", 431)
    # A payment no invoice has: nothing to link.
    assert await refund(0, full=False, payment_ref="pi_sbx_unknown") is None
    assert len(await receipts(db, account.id)) == 1


async def test_subscription_invoice_refund_names_the_subscription(
    db: psycopg.AsyncConnection[Any], account: Account
) -> None:
    subscription_id = await make_subscription(db, account.id)
    state = invoice_state()
    async with db.transaction():
        invoice_id = await service.record(
            db, provider_name="sandbox", invoice=state, user_id=account.id, subscription_id=subscription_id
        )
    assert state.payment_ref is not None
    async with db.transaction():
        link = await service.refunded(
            db, provider_name="sandbox", payment_ref=state.payment_ref, amount_refunded_minor=1439, full=True
        )
    assert link is not None
    assert (link.invoice_id, link.subscription_id, link.purchase_id) == (invoice_id, subscription_id, None)
    # Another event re-reads the invoice (paid at the provider): it stays refunded, no new receipt.
    await record(db, account, id=state.id, subscription_id=subscription_id)
    assert (await stored(db, invoice_id))["status"] == "refunded"
    assert len(await receipts(db, account.id)) == 1
    # Another provider's payment with the same id is not this one.
    async with db.transaction():
        assert (
            await service.refunded(
                db, provider_name="stripe", payment_ref=state.payment_ref, amount_refunded_minor=1, full=True
            )
            is None
        )


async def test_invoices_of_other_accounts_stay_apart(
    db: psycopg.AsyncConnection[Any], account: Account
) -> None:
    other = await make_account(db)
    mine = await record(db, account)
    theirs = await record(db, other)
    from shared.http.pagination import PageParams

    page = await service.list_for_user(db, user_id=account.id, page=PageParams(limit=10, after=None))
    assert [item.id for item in page.items] == [mine]
    assert (await service.get_for_user(db, user_id=other.id, invoice_id=theirs)).id == theirs
    try:
        await service.get_for_user(db, user_id=account.id, invoice_id=theirs)
    except service.InvoiceNotFound:
        pass
    else:
        raise AssertionError("another account's invoice was readable")
