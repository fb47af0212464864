"""All SQL of the invoices domain: the public.invoices table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.infra.db import fetch_all, fetch_one

if TYPE_CHECKING:
    from psycopg import AsyncConnection

Row = dict[str, Any]

_COLUMNS = """id, number, user_id, provider, provider_ref, provider_number, subscription_id, purchase_id,
    status, currency, subtotal_minor, tax_minor, total_minor, amount_paid_minor, amount_refunded_minor, lines,
    tax_lines, payment_ref, billing_reason, issued_at, paid_at, receipt_sent_at, created_at, updated_at"""

# The provider's state wins, except that a paid, refunded or void invoice never moves back: a stale re-read
# (or an event that arrives late) must not reopen it. An uncollectible invoice may still be paid later.
_UPDATE = f"""
update public.invoices set
  status = case when status in ('paid', 'refunded', 'void') then status else %(status)s end,
  subscription_id = coalesce(%(subscription_id)s::uuid, subscription_id),
  purchase_id = coalesce(%(purchase_id)s::uuid, purchase_id),
  provider_number = coalesce(%(provider_number)s::text, provider_number),
  currency = %(currency)s,
  subtotal_minor = %(subtotal_minor)s,
  tax_minor = %(tax_minor)s,
  total_minor = %(total_minor)s,
  amount_paid_minor = greatest(amount_paid_minor, %(amount_paid_minor)s),
  lines = %(lines)s,
  tax_lines = %(tax_lines)s,
  payment_ref = coalesce(%(payment_ref)s::text, payment_ref),
  billing_reason = coalesce(%(billing_reason)s::text, billing_reason),
  paid_at = coalesce(paid_at, case when status in ('open', 'uncollectible') then %(paid_at)s::timestamptz end)
where provider = %(provider)s and provider_ref = %(provider_ref)s
returning {_COLUMNS}
"""  # noqa: S608 - constant column list

_INSERT = f"""
insert into public.invoices (user_id, provider, provider_ref, provider_number, subscription_id, purchase_id,
  status, currency, subtotal_minor, tax_minor, total_minor, amount_paid_minor, lines, tax_lines, payment_ref,
  billing_reason, issued_at, paid_at)
values (%(user_id)s, %(provider)s, %(provider_ref)s, %(provider_number)s, %(subscription_id)s,
  %(purchase_id)s, %(status)s, %(currency)s, %(subtotal_minor)s, %(tax_minor)s, %(total_minor)s,
  %(amount_paid_minor)s, %(lines)s, %(tax_lines)s, %(payment_ref)s, %(billing_reason)s, %(issued_at)s,
  %(paid_at)s)
on conflict (provider, provider_ref) do nothing
returning {_COLUMNS}
"""  # noqa: S608 - constant column list


async def update_by_ref(conn: AsyncConnection[Any], values: dict[str, Any]) -> Row | None:
    """Apply the provider's current state to an existing invoice; None when there is none yet."""
    return await fetch_one(conn, _UPDATE, values)


async def insert(conn: AsyncConnection[Any], values: dict[str, Any]) -> Row | None:
    """Insert a new invoice (its number comes from the sequence); None when a parallel insert won."""
    return await fetch_one(conn, _INSERT, values)


async def claim_receipt(conn: AsyncConnection[Any], invoice_id: uuid.UUID, *, at: datetime) -> Row | None:
    """Mark the receipt as sent if the invoice is paid and none was sent; the row when this call did it."""
    # One UPDATE is the guard: a parallel caller waits on the row lock, then sees receipt_sent_at set.
    return await fetch_one(
        conn,
        f"""update public.invoices set receipt_sent_at = %s
            where id = %s and status = 'paid' and receipt_sent_at is null
            returning {_COLUMNS}""",  # noqa: S608 - constant column list
        (at, invoice_id),
    )


async def refund(
    conn: AsyncConnection[Any], *, provider: str, payment_ref: str, amount_refunded_minor: int, full: bool
) -> Row | None:
    """Record the refunded amount on the invoice paid by this payment (the newest one); None if none."""
    # Charges report the cumulative refunded amount and events come out of order: keep the largest.
    return await fetch_one(
        conn,
        f"""update public.invoices set
              amount_refunded_minor = greatest(amount_refunded_minor, %(amount)s),
              status = case when %(full)s and status <> 'void' then 'refunded' else status end
            where id = (select id from public.invoices
                        where provider = %(provider)s and payment_ref = %(payment_ref)s
                        order by issued_at desc, id desc limit 1)
            returning {_COLUMNS}""",  # noqa: S608 - constant column list
        {"amount": amount_refunded_minor, "full": full, "provider": provider, "payment_ref": payment_ref},
    )


async def get(conn: AsyncConnection[Any], invoice_id: uuid.UUID) -> Row | None:
    """One invoice by id."""
    return await fetch_one(
        conn,
        f"select {_COLUMNS} from public.invoices where id = %s",  # noqa: S608 - constant column list
        (invoice_id,),
    )


async def get_for_user(
    conn: AsyncConnection[Any], *, user_id: uuid.UUID, invoice_id: uuid.UUID
) -> Row | None:
    """One invoice of this account."""
    return await fetch_one(
        conn,
        f"select {_COLUMNS} from public.invoices where id = %s and user_id = %s",  # noqa: S608
        (invoice_id, user_id),
    )


async def list_for_user(
    conn: AsyncConnection[Any], *, user_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Row]:
    """The account's invoices, newest first, after a keyset position (issued_at, id)."""
    at, last_id = after if after is not None else (None, None)
    return await fetch_all(
        conn,
        f"""select {_COLUMNS} from public.invoices
            where user_id = %(user_id)s
              and (%(at)s::timestamptz is null or (issued_at, id) < (%(at)s::timestamptz, %(id)s::uuid))
            order by issued_at desc, id desc
            limit %(limit)s""",  # noqa: S608 - constant column list
        {"user_id": user_id, "at": at, "id": last_id, "limit": limit},
    )
