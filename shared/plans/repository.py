"""All SQL of the plans domain: plans, plan_prices, title_offers and ppv_events (psycopg 3, dict rows)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.catalog.visibility import Viewer, visible_sql
from shared.infra.db import fetch_all, fetch_one

if TYPE_CHECKING:
    from psycopg.sql import Composed

Conn = Any
Row = dict[str, Any]

PLAN = """code, name, description, tier, max_streams, max_height, ad_free, trial_days, is_free, active,
    sort_order"""
PRICE = """p.id, p.plan_code, p.currency, p.billing_interval as interval, p.amount_minor, p.provider,
    p.provider_price_ref, p.active"""
OFFER = """o.id, o.title_id, o.kind, o.currency, o.amount_minor, o.ppv_event_id, e.name as ppv_event_name,
    e.sale_starts_at, e.sale_ends_at, e.view_starts_at, e.view_ends_at"""
EVENT = "id, title_id, name, sale_starts_at, sale_ends_at, view_starts_at, view_ends_at"

# The columns a PATCH may set (names come from these tuples only, never from the request).
PLAN_COLUMNS = (
    "name",
    "description",
    "tier",
    "max_streams",
    "max_height",
    "ad_free",
    "trial_days",
    "active",
    "sort_order",
)
EVENT_COLUMNS = ("name", "sale_starts_at", "sale_ends_at", "view_starts_at", "view_ends_at")


def _set_clause(changes: dict[str, Any], allowed: tuple[str, ...]) -> Composed:
    from psycopg import sql  # not at import: a cold start of the payments function loads no driver

    unknown = set(changes) - set(allowed)
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    return sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column)) for column in changes
    )


# --- titles -------------------------------------------------------------------------------------------

_VISIBLE_TITLE = f"select 1 from public.catalog_titles t where t.id = %(id)s and {visible_sql('t')}"  # noqa: S608


async def title_visible(conn: Conn, viewer: Viewer, title_id: uuid.UUID) -> bool:
    """Whether the viewer may see the title: the catalog's one visibility rule (managers: not deleted)."""
    return await fetch_one(conn, _VISIBLE_TITLE, {**viewer.params(), "id": title_id}) is not None


# --- plans ----------------------------------------------------------------------------------------------


async def plans(conn: Conn, *, active_only: bool) -> list[Row]:
    """Plans in display order."""
    return await fetch_all(
        conn,
        f"""select {PLAN} from public.plans where active or not %(active_only)s
            order by sort_order, tier, code""",  # noqa: S608 - constants only
        {"active_only": active_only},
    )


_PLAN_BY_CODE = f"select {PLAN} from public.plans where code = %(code)s"  # noqa: S608 - constants only
_PLAN_LOCKED = _PLAN_BY_CODE + " for update"


async def plan(conn: Conn, code: str, *, lock: bool = False) -> Row | None:
    """One plan by code (locked FOR UPDATE when its prices are about to change)."""
    query = _PLAN_LOCKED if lock else _PLAN_BY_CODE
    return await fetch_one(conn, query, {"code": code})


async def insert_plan(conn: Conn, values: dict[str, Any]) -> Row | None:
    """A new plan, or None when the code is taken."""
    return await fetch_one(
        conn,
        f"""insert into public.plans (code, name, description, tier, max_streams, max_height, ad_free,
                trial_days, active, sort_order)
            values (%(code)s, %(name)s, %(description)s, %(tier)s, %(max_streams)s, %(max_height)s,
                %(ad_free)s, %(trial_days)s, %(active)s, %(sort_order)s)
            on conflict (code) do nothing returning {PLAN}""",  # noqa: S608 - constants only
        values,
    )


async def update_plan(conn: Conn, code: str, changes: dict[str, Any]) -> Row | None:
    """Set some columns of a plan."""
    from psycopg import sql

    query = sql.SQL("update public.plans set {} where code = %(code)s returning {}").format(
        _set_clause(changes, PLAN_COLUMNS), sql.SQL(PLAN)
    )
    return await fetch_one(conn, query, {**changes, "code": code})


# --- plan prices ----------------------------------------------------------------------------------------


async def active_prices(conn: Conn, *, plan_codes: list[str], currency: str | None) -> list[Row]:
    """The active prices of these plans (in one currency, or all)."""
    return await fetch_all(
        conn,
        f"""select {PRICE} from public.plan_prices p
            where p.plan_code = any(%(codes)s) and p.active
              and (%(currency)s::text is null or p.currency = %(currency)s::text)
            order by p.plan_code, p.currency, p.billing_interval""",  # noqa: S608 - constants only
        {"codes": plan_codes, "currency": currency},
    )


async def active_price(conn: Conn, *, plan_code: str, interval: str, currency: str) -> Row | None:
    """The active price of a plan in a currency and interval."""
    return await fetch_one(
        conn,
        f"""select {PRICE} from public.plan_prices p
            where p.plan_code = %(plan)s and p.billing_interval = %(interval)s and p.currency = %(currency)s
              and p.active""",  # noqa: S608 - constants only
        {"plan": plan_code, "interval": interval, "currency": currency},
    )


_PRICE_BY_ID = f"select {PRICE} from public.plan_prices p where p.id = %(id)s"  # noqa: S608 - constants only


async def price_by_id(conn: Conn, price_id: uuid.UUID) -> Row | None:
    """A price row, active or not."""
    return await fetch_one(conn, _PRICE_BY_ID, {"id": price_id})


async def price_by_provider_ref(conn: Conn, *, provider: str, ref: str) -> Row | None:
    """The price the provider knows by this id, active or not."""
    return await fetch_one(
        conn,
        f"""select {PRICE} from public.plan_prices p
            where p.provider = %(provider)s and p.provider_price_ref = %(ref)s""",  # noqa: S608 - constants only
        {"provider": provider, "ref": ref},
    )


async def deactivate_price(conn: Conn, price_id: uuid.UUID) -> None:
    """Retire a price (subscribers on it keep it at the provider)."""
    await conn.execute("update public.plan_prices set active = false where id = %(id)s", {"id": price_id})


async def insert_price(conn: Conn, *, plan_code: str, currency: str, interval: str, amount_minor: int) -> Row:
    """A new active price."""
    row = await fetch_one(
        conn,
        f"""insert into public.plan_prices as p (plan_code, currency, billing_interval, amount_minor)
            values (%(plan)s, %(currency)s, %(interval)s, %(amount)s) returning {PRICE}""",  # noqa: S608
        {"plan": plan_code, "currency": currency, "interval": interval, "amount": amount_minor},
    )
    assert row is not None
    return row


async def set_provider_ref(conn: Conn, *, price_id: uuid.UUID, provider: str, ref: str) -> Row | None:
    """Record where the price lives at the provider, only when no provider was recorded yet."""
    return await fetch_one(
        conn,
        f"""update public.plan_prices p set provider = %(provider)s, provider_price_ref = %(ref)s
            where p.id = %(id)s and p.provider_price_ref is null returning {PRICE}""",  # noqa: S608
        {"id": price_id, "provider": provider, "ref": ref},
    )


# --- title offers ---------------------------------------------------------------------------------------


async def lock_title_offers(conn: Conn, title_id: uuid.UUID) -> None:
    """Serialise offer changes of one title (the 'one active offer' index would otherwise fail a racer)."""
    await conn.execute(
        "select pg_advisory_xact_lock(hashtextextended('title_offers:' || %(id)s::text, 0))", {"id": title_id}
    )


async def active_offers(
    conn: Conn,
    *,
    title_id: uuid.UUID,
    kinds: list[str],
    currency: str | None,
    ppv_event_ids: list[uuid.UUID] | None = None,
) -> list[Row]:
    """The title's active offers of these kinds (one currency or all; ppv ones of these events)."""
    return await fetch_all(
        conn,
        f"""select {OFFER} from public.title_offers o
              left join public.ppv_events e on e.id = o.ppv_event_id
            where o.title_id = %(title)s and o.active and o.kind = any(%(kinds)s)
              and (%(currency)s::text is null or o.currency = %(currency)s::text)
              and (%(events)s::uuid[] is null or o.ppv_event_id = any(%(events)s::uuid[]))
            order by o.kind, o.currency""",  # noqa: S608 - constants only
        {"title": title_id, "kinds": kinds, "currency": currency, "events": ppv_event_ids},
    )


async def offer_for(
    conn: Conn, *, title_id: uuid.UUID, kind: str, currency: str, ppv_event_id: uuid.UUID | None, at: datetime
) -> Row | None:
    """The active offer; ppv without an event: the one on sale at `at`, else the next one to open."""
    return await fetch_one(
        conn,
        f"""select {OFFER} from public.title_offers o
              left join public.ppv_events e on e.id = o.ppv_event_id
            where o.title_id = %(title)s and o.active and o.kind = %(kind)s and o.currency = %(currency)s
              and (o.kind <> 'ppv' or (case when %(event)s::uuid is null
                    then e.sale_ends_at > %(at)s
                    else o.ppv_event_id = %(event)s::uuid end))
            order by e.sale_starts_at > %(at)s nulls first, e.sale_starts_at, e.view_starts_at, o.created_at
            limit 1""",  # noqa: S608 - constants only
        {"title": title_id, "kind": kind, "currency": currency, "event": ppv_event_id, "at": at},
    )


async def active_offer(
    conn: Conn, *, title_id: uuid.UUID, kind: str, currency: str, ppv_event_id: uuid.UUID | None
) -> Row | None:
    """The one active offer of this key (admin writes)."""
    return await fetch_one(
        conn,
        f"""select {OFFER} from public.title_offers o
              left join public.ppv_events e on e.id = o.ppv_event_id
            where o.title_id = %(title)s and o.active and o.kind = %(kind)s and o.currency = %(currency)s
              and o.ppv_event_id is not distinct from %(event)s::uuid""",  # noqa: S608 - constants only
        {"title": title_id, "kind": kind, "currency": currency, "event": ppv_event_id},
    )


async def deactivate_offer(conn: Conn, offer_id: uuid.UUID) -> None:
    """Retire an offer (purchases keep pointing at it)."""
    await conn.execute("update public.title_offers set active = false where id = %(id)s", {"id": offer_id})


async def insert_offer(
    conn: Conn,
    *,
    title_id: uuid.UUID,
    kind: str,
    currency: str,
    amount_minor: int,
    ppv_event_id: uuid.UUID | None,
) -> uuid.UUID:
    """A new active offer; its id."""
    row = await fetch_one(
        conn,
        """insert into public.title_offers (title_id, kind, currency, amount_minor, ppv_event_id)
           values (%(title)s, %(kind)s, %(currency)s, %(amount)s, %(event)s) returning id""",
        {
            "title": title_id,
            "kind": kind,
            "currency": currency,
            "amount": amount_minor,
            "event": ppv_event_id,
        },
    )
    assert row is not None
    return uuid.UUID(str(row["id"]))


# --- pay-per-view events --------------------------------------------------------------------------------


async def insert_event(conn: Conn, values: dict[str, Any]) -> Row:
    """A new pay-per-view event."""
    row = await fetch_one(
        conn,
        f"""insert into public.ppv_events (title_id, name, sale_starts_at, sale_ends_at, view_starts_at,
                view_ends_at)
            values (%(title_id)s, %(name)s, %(sale_starts_at)s, %(sale_ends_at)s, %(view_starts_at)s,
                %(view_ends_at)s)
            returning {EVENT}""",  # noqa: S608 - constants only
        values,
    )
    assert row is not None
    return row


_EVENT_BY_ID = f"select {EVENT} from public.ppv_events where id = %(id)s"  # noqa: S608 - constants only
_EVENT_LOCKED = _EVENT_BY_ID + " for update"


async def event(conn: Conn, event_id: uuid.UUID, *, lock: bool = False) -> Row | None:
    """One event (locked FOR UPDATE before a change)."""
    return await fetch_one(conn, _EVENT_LOCKED if lock else _EVENT_BY_ID, {"id": event_id})


async def update_event(conn: Conn, event_id: uuid.UUID, changes: dict[str, Any]) -> Row | None:
    """Set some columns of an event."""
    from psycopg import sql

    query = sql.SQL("update public.ppv_events set {} where id = %(id)s returning {}").format(
        _set_clause(changes, EVENT_COLUMNS), sql.SQL(EVENT)
    )
    return await fetch_one(conn, query, {**changes, "id": event_id})


async def events(
    conn: Conn, *, title_id: uuid.UUID | None, not_ended_at: datetime | None = None, limit: int = 200
) -> list[Row]:
    """Events of a title (or all) by viewing start; with `not_ended_at`: those on sale or upcoming then."""
    return await fetch_all(
        conn,
        f"""select {EVENT} from public.ppv_events
            where (%(title)s::uuid is null or title_id = %(title)s::uuid)
              and (%(at)s::timestamptz is null or sale_ends_at > %(at)s::timestamptz)
            order by view_starts_at, id limit %(limit)s""",  # noqa: S608 - constants only
        {"title": title_id, "at": not_ended_at, "limit": limit},
    )
