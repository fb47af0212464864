"""All SQL of purchases: the visible title, the pending row, its locks by checkout and payment, the lists.

The lists and the "already owned / rented" check read the state of each purchase's entitlement (first
play, window, revocation) by joining entitlements on purchases.entitlement_id: the entitlements service
has no read by id, and its playback read is per title and cached, not per purchase.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.catalog.visibility import Viewer, visible_sql
from shared.infra.db import fetch_all, fetch_one

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    Conn = AsyncConnection[Any]
else:
    Conn = Any
Row = dict[str, Any]

VISIBLE = visible_sql("t")

# A purchase with its entitlement's state (null columns when it has none yet).
_WITH_ENTITLEMENT = """
select p.id, p.user_id, p.kind, p.title_id, p.title_name, p.offer_id, p.ppv_event_id, p.currency,
       p.amount_minor, p.status, p.provider, p.checkout_ref, p.payment_ref, p.play_window_seconds,
       p.access_starts_at, p.access_ends_at, p.entitlement_id, p.paid_at, p.ended_at, p.created_at,
       e.starts_at as e_starts_at, e.ends_at as e_ends_at, e.play_window_seconds as e_play_window_seconds,
       e.first_played_at as e_first_played_at, e.revoked_at as e_revoked_at
from public.purchases p
left join public.entitlements e on e.id = p.entitlement_id
"""


async def visible_title(conn: Conn, viewer: Viewer, title_id: uuid.UUID) -> Row | None:
    """The title (id, name, access) when the viewer may see it (the catalog's one visibility rule)."""
    return await fetch_one(
        conn,
        f"select t.id, t.title, t.access from public.catalog_titles t where t.id = %(id)s and {VISIBLE}",  # noqa: S608 - constants only
        {**viewer.params(), "id": title_id},
    )


async def lock_user_title(conn: Conn, *, user_id: uuid.UUID, title_id: uuid.UUID) -> None:
    """Serialize purchases of one title by one account until the transaction ends (no double rental)."""
    await conn.execute(
        "select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"purchase:{user_id}:{title_id}",)
    )


async def paid_for_title(conn: Conn, *, user_id: uuid.UUID, title_id: uuid.UUID) -> list[Row]:
    """The account's paid purchases of the title, with their entitlements' state."""
    return await fetch_all(
        conn,
        _WITH_ENTITLEMENT + "where p.user_id = %(user)s and p.title_id = %(title)s and p.status = 'paid'",
        {"user": user_id, "title": title_id},
    )


async def insert(conn: Conn, *, values: Row) -> Row:
    """A new pending purchase; its row."""
    row = await fetch_one(
        conn,
        """
        insert into public.purchases (user_id, kind, title_id, title_name, offer_id, ppv_event_id, currency,
            amount_minor, status, provider, play_window_seconds, access_starts_at, access_ends_at,
            created_at)
        values (%(user_id)s, %(kind)s, %(title_id)s, %(title_name)s, %(offer_id)s, %(ppv_event_id)s,
            %(currency)s, %(amount_minor)s, 'pending', %(provider)s, %(play_window_seconds)s,
            %(access_starts_at)s, %(access_ends_at)s, %(created_at)s)
        returning id, created_at
        """,
        values,
    )
    assert row is not None  # insert ... returning always answers a row
    return row


async def set_checkout(conn: Conn, *, purchase_id: uuid.UUID, checkout_ref: str) -> None:
    """Remember the provider's checkout session of a pending purchase."""
    await conn.execute(
        "update public.purchases set checkout_ref = %s where id = %s", (checkout_ref, purchase_id)
    )


async def lock_by_checkout(conn: Conn, *, provider: str, checkout_ref: str) -> Row | None:
    """The purchase paid through this checkout, locked until the transaction ends."""
    return await fetch_one(
        conn,
        "select * from public.purchases where provider = %s and checkout_ref = %s for update",
        (provider, checkout_ref),
    )


async def lock_by_payment(conn: Conn, *, provider: str, payment_ref: str) -> Row | None:
    """The purchase paid with this payment (intent), locked until the transaction ends."""
    return await fetch_one(
        conn,
        """
        select * from public.purchases where provider = %s and payment_ref = %s
        order by created_at limit 1 for update
        """,
        (provider, payment_ref),
    )


async def mark_paid(
    conn: Conn,
    *,
    purchase_id: uuid.UUID,
    paid_at: datetime,
    payment_ref: str | None,
    entitlement_id: uuid.UUID | None,
    access_starts_at: datetime | None,
    access_ends_at: datetime | None,
    status: str = "paid",
    ended_at: datetime | None = None,
) -> None:
    """A pending purchase becomes paid, with the entitlement it granted.

    A payment that was reversed (or given back) before it was applied is recorded paid and ended at once:
    status refunded or disputed, with `ended_at`, and no entitlement.
    """
    await conn.execute(
        """
        update public.purchases
        set status = %(status)s, paid_at = %(paid_at)s, payment_ref = %(payment_ref)s,
            entitlement_id = %(entitlement_id)s, access_starts_at = %(starts)s, access_ends_at = %(ends)s,
            ended_at = %(ended_at)s
        where id = %(id)s
        """,
        {
            "id": purchase_id,
            "status": status,
            "paid_at": paid_at,
            "payment_ref": payment_ref,
            "entitlement_id": entitlement_id,
            "starts": access_starts_at,
            "ends": access_ends_at,
            "ended_at": ended_at,
        },
    )


async def title_gone(conn: Conn, title_id: uuid.UUID | None) -> bool:
    """Whether the title was deleted (the row gone, or marked deleted): nothing left to play."""
    if title_id is None:
        return True
    row = await fetch_one(conn, "select deleted_at from public.catalog_titles where id = %s", (title_id,))
    return row is None or row["deleted_at"] is not None


async def lock_for_event(conn: Conn, *, ppv_event_id: uuid.UUID) -> list[Row]:
    """The pending and paid tickets of a pay-per-view event, locked until the transaction ends."""
    return await fetch_all(
        conn,
        """
        select * from public.purchases
        where ppv_event_id = %s and kind = 'ppv' and status in ('pending', 'paid')
        order by id for update
        """,
        (ppv_event_id,),
    )


async def set_access_window(
    conn: Conn,
    *,
    purchase_id: uuid.UUID,
    access_starts_at: datetime | None,
    access_ends_at: datetime | None,
    entitlement_id: uuid.UUID | None,
) -> None:
    """A ticket's viewing window moved with its event (and the entitlement that carries it)."""
    await conn.execute(
        """
        update public.purchases
        set access_starts_at = %s, access_ends_at = %s, entitlement_id = coalesce(%s, entitlement_id)
        where id = %s
        """,
        (access_starts_at, access_ends_at, entitlement_id, purchase_id),
    )


async def mark_ended(conn: Conn, *, purchase_id: uuid.UUID, status: str, at: datetime) -> None:
    """A purchase ends: canceled or failed (pending), refunded or disputed (paid)."""
    await conn.execute(
        "update public.purchases set status = %s, ended_at = %s where id = %s", (status, at, purchase_id)
    )


async def for_user(
    conn: Conn, *, user_id: uuid.UUID, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> list[Row]:
    """The account's purchases, newest first, keyset-paged on (created_at, id); `limit` rows at most."""
    condition = "where p.user_id = %(user)s"
    if after is not None:
        condition += " and (p.created_at, p.id) < (%(at)s, %(id)s)"
    return await fetch_all(
        conn,
        _WITH_ENTITLEMENT + condition + " order by p.created_at desc, p.id desc limit %(limit)s",
        {
            "user": user_id,
            "limit": limit,
            "at": after[0] if after else None,
            "id": after[1] if after else None,
        },
    )


async def one_for_user(conn: Conn, *, user_id: uuid.UUID, purchase_id: uuid.UUID) -> Row | None:
    """One purchase of the account (None for another account's)."""
    return await fetch_one(
        conn,
        _WITH_ENTITLEMENT + "where p.id = %(id)s and p.user_id = %(user)s",
        {"id": purchase_id, "user": user_id},
    )
