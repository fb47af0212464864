"""Rentals, purchases and pay-per-view tickets: a pending record and a checkout, an entitlement once paid.

- `purchase` checks the title is visible to the viewer, finds its offer (a ppv event only during its sale
  window), refuses what the account already holds (409 already_owned / already_rented), records a pending
  purchase (title name, amount and terms snapshotted) and opens a hosted payment checkout.
- `checkout_updated` (from the provider's re-read checkout, whatever event announced it) turns a pending
  purchase paid, grants its entitlement and records the invoice; it locks the row and does nothing once the
  purchase is no longer pending, so replayed or reordered events change nothing. Before granting it checks
  that the checkout really pays for this purchase (metadata, currency, amount, the buyer's customer;
  otherwise it logs an error and leaves it pending), re-reads the payment's charge (refunded or disputed
  already, e.g. its event came first: recorded so, nothing granted) and refunds at the provider what
  cannot be granted: a duplicate of what the account holds by then (two checkouts paid), or a title that
  is gone. A delayed payment that failed (async_payment_failed) fails the purchase.
- `payment_reversed` (a full refund or a dispute) ends a paid purchase and revokes its entitlement.
- `ppv_window_changed` moves an event's tickets (and their entitlements) to its new viewing window.

Entitlement terms: a rental may start within RENTAL_START_WITHIN_DAYS of payment and then plays for
RENTAL_PLAY_WINDOW_HOURS from its first play; a purchase never ends; a pay-per-view ticket plays during its
event's viewing window. All times come from shared.payments.clock.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

from shared.errors import Conflict, NotFound
from shared.http.pagination import InvalidCursor, Page, PageParams, encode_cursor
from shared.infra.ratelimit import Limit, enforce
from shared.payments import clock
from shared.purchases import repository
from shared.purchases.schemas import (
    KIND_OF_REQUEST,
    PurchaseKind,
    PurchaseRead,
    PurchaseRequestKind,
    PurchaseStarted,
    RentalState,
    TitleRef,
    ViewingWindow,
)

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from shared.catalog.visibility import Viewer
    from shared.payments.providers.base import ChargeState, CheckoutSession, PaymentProvider
    from shared.settings import Settings

    Conn = AsyncConnection[Any]
else:
    Conn = Any

logger = logging.getLogger("cinema.purchases")
Row = dict[str, Any]

SCOPE = "purchase"
# Each purchase opens a checkout at the provider: a person buys a few titles an hour, a script many.
CHECKOUTS = Limit(30, 3600)
# A bought, rented or ppv title plays ad-free in up to 4K on two screens (a subscription's better limits
# still apply: the entitlement check takes the best the account holds).
TRANSACTIONAL_LIMITS: dict[str, Any] = {"max_streams": 2, "max_height": 2160, "ad_free": True}


class OfferNotFound(NotFound):
    """The title has no such offer in that currency."""

    code = "offer_not_found"


class PurchaseNotFound(NotFound):
    """No purchase of the caller has this id."""

    code = "purchase_not_found"


def source_ref(purchase_id: uuid.UUID | str) -> str:
    """The entitlement's source_ref of a purchase."""
    return f"purchase:{purchase_id}"


# --- entitlement state -----------------------------------------------------------------------------------


def _rental_expires_at(row: Row) -> datetime | None:
    first, window = row.get("e_first_played_at"), row.get("e_play_window_seconds")
    if first is None or window is None:
        return None
    expires: datetime = first + timedelta(seconds=int(window))
    return expires


def _playable(row: Row, at: datetime) -> bool:
    """Whether the purchase's entitlement lets the title play at `at` (the entitlement check's rule)."""
    if row["status"] != "paid" or row.get("entitlement_id") is None or row.get("e_starts_at") is None:
        return False
    if row.get("e_revoked_at") is not None or at < row["e_starts_at"]:
        return False
    end = _rental_expires_at(row) if row["kind"] == "rental" else None
    if end is None:  # not started (a rental's start-by), a purchase or a ppv window
        end = row.get("e_ends_at")
    return end is None or at < end


def _read(row: Row, at: datetime) -> PurchaseRead:
    playable = _playable(row, at)
    rental = None
    if row["kind"] == "rental":
        rental = RentalState(
            start_by=row.get("e_ends_at") or row.get("access_ends_at"),
            play_window_seconds=row.get("e_play_window_seconds") or row.get("play_window_seconds"),
            first_played_at=row.get("e_first_played_at"),
            expires_at=_rental_expires_at(row),
            playable_now=playable,
        )
    window = None
    if row["kind"] == "ppv":
        window = ViewingWindow(
            ppv_event_id=row["ppv_event_id"], starts_at=row["access_starts_at"], ends_at=row["access_ends_at"]
        )
    return PurchaseRead(
        id=row["id"],
        kind=row["kind"],
        title=TitleRef(id=row["title_id"], name=row["title_name"]),
        amount_minor=row["amount_minor"],
        currency=row["currency"],
        status=row["status"],
        created_at=row["created_at"],
        paid_at=row["paid_at"],
        ended_at=row["ended_at"],
        playable_now=playable,
        rental=rental,
        viewing_window=window,
    )


def _already_held(
    rows: list[Row], *, kind: PurchaseKind, ppv_event_id: uuid.UUID | None, at: datetime
) -> Conflict | None:
    """Why the account may not buy this again (None: it may)."""
    live = [row for row in rows if row.get("e_revoked_at") is None]
    if any(row["kind"] == "purchase" for row in live) and kind != "ppv":
        return Conflict("You already own this title.", code="already_owned")
    if kind == "rental" and any(row["kind"] == "rental" and _playable(row, at) for row in live):
        return Conflict("You are already renting this title.", code="already_rented")
    if kind == "ppv" and any(row["kind"] == "ppv" and row["ppv_event_id"] == ppv_event_id for row in live):
        return Conflict("You already have a ticket for this event.", code="already_owned")
    return None


# --- purchase --------------------------------------------------------------------------------------------


def _return_urls(settings: Settings, purchase_id: uuid.UUID) -> tuple[str, str]:
    base = str(settings.payments_return_url or f"{str(settings.public_base_url).rstrip('/')}/account/billing")
    glue = "&" if "?" in base else "?"
    success = f"{base}{glue}{urlencode({'checkout': 'success', 'purchase': str(purchase_id)})}"
    cancel = f"{base}{glue}{urlencode({'checkout': 'cancel', 'purchase': str(purchase_id)})}"
    return success, cancel


def _description(
    kind: PurchaseKind, title_name: str, *, window_seconds: int | None, start_days: int, event: str | None
) -> str:
    if kind == "rental":
        hours = (window_seconds or 0) // 3600
        return f"Rental: {title_name} ({hours} h from first play, start within {start_days} days)"
    if kind == "purchase":
        return f"Purchase: {title_name}"
    return f"Pay-per-view: {title_name}" + (f" ({event})" if event else "")


async def purchase(
    conn: Conn,
    *,
    settings: Settings,
    viewer: Viewer,
    user_id: uuid.UUID,
    email: str,
    title_id: uuid.UUID,
    kind: PurchaseRequestKind,
    ppv_event_id: uuid.UUID | None,
    currency: str | None,
    idempotency_key: str | None,
) -> PurchaseStarted:
    """Record a pending rental, purchase or ppv ticket and open its checkout (replayed under the same key)."""
    from shared.payments import idempotency
    from shared.plans.money import normalize_currency

    code = normalize_currency(currency or settings.payments_default_currency)
    body = {
        "title_id": str(title_id),
        "kind": kind,
        "ppv_event_id": str(ppv_event_id) if ppv_event_id else None,
        "currency": code,
    }
    replay = await idempotency.begin(conn, user_id=user_id, key=idempotency_key, scope=SCOPE, body=body)
    if replay is not None:
        return PurchaseStarted.model_validate(replay.response)
    await enforce(rules=[CHECKOUTS.rule(f"purchase_checkout:{user_id}")])
    started = await _start(
        conn,
        settings=settings,
        viewer=viewer,
        user_id=user_id,
        email=email,
        title_id=title_id,
        kind=KIND_OF_REQUEST[kind],
        ppv_event_id=ppv_event_id,
        currency=code,
        idempotency_key=idempotency_key,
    )
    await idempotency.finish(
        conn, user_id=user_id, key=idempotency_key, status_code=201, response=started.model_dump(mode="json")
    )
    return started


async def _start(
    conn: Conn,
    *,
    settings: Settings,
    viewer: Viewer,
    user_id: uuid.UUID,
    email: str,
    title_id: uuid.UUID,
    kind: PurchaseKind,
    ppv_event_id: uuid.UUID | None,
    currency: str,
    idempotency_key: str | None,
) -> PurchaseStarted:
    from shared.payments.idempotency import provider_key
    from shared.payments.providers import get_provider
    from shared.plans import service as plans
    from shared.subscriptions import service as subscriptions

    now = clock.now()
    title = await repository.visible_title(conn, dataclasses.replace(viewer, at=now), title_id)
    if title is None:
        raise NotFound("No such title.", code="content_not_found")
    offer = await plans.offer_for(
        conn, title_id=title_id, kind=kind, currency=currency, ppv_event_id=ppv_event_id
    )
    if offer is None:
        raise OfferNotFound(f"This title cannot be bought that way in {currency}.")
    if kind == "ppv" and not (
        offer.sale_starts_at is not None
        and offer.sale_ends_at is not None
        and offer.sale_starts_at <= now < offer.sale_ends_at
    ):
        raise Conflict("Tickets for this event are not on sale now.", code="sale_not_open")
    event_id = offer.ppv_event_id if kind == "ppv" else None  # given, or the event on sale now
    # One purchase of a title per account at a time: two parallel requests cannot both pass the check.
    await repository.lock_user_title(conn, user_id=user_id, title_id=title_id)
    held = _already_held(
        await repository.paid_for_title(conn, user_id=user_id, title_id=title_id),
        kind=kind,
        ppv_event_id=event_id,
        at=now,
    )
    if held is not None:
        raise held
    provider = get_provider(settings)
    row_window = settings.rental_play_window_hours * 3600 if kind == "rental" else None
    row = await repository.insert(
        conn,
        values={
            "user_id": user_id,
            "kind": kind,
            "title_id": title_id,
            "title_name": title["title"],
            "offer_id": offer.id,
            "ppv_event_id": event_id,
            "currency": offer.currency,
            "amount_minor": offer.amount_minor,
            "provider": provider.name,
            "play_window_seconds": row_window,
            "access_starts_at": offer.view_starts_at if kind == "ppv" else None,
            "access_ends_at": offer.view_ends_at if kind == "ppv" else None,
            "created_at": now,
        },
    )
    purchase_id: uuid.UUID = row["id"]
    customer = await subscriptions.customer_ref(conn, provider=provider, user_id=user_id, email=email)
    success_url, cancel_url = _return_urls(settings, purchase_id)
    checkout = await provider.create_payment_checkout(
        customer_ref=customer,
        currency=offer.currency,
        amount_minor=offer.amount_minor,
        description=_description(
            kind,
            title["title"],
            window_seconds=row_window,
            start_days=settings.rental_start_within_days,
            event=offer.ppv_event_name,
        ),
        client_reference_id=str(user_id),
        metadata={"purchase_id": str(purchase_id), "user_id": str(user_id)},
        success_url=success_url,
        cancel_url=cancel_url,
        # Per purchase row: a retry after a rolled-back attempt makes a new row, hence a new checkout (with
        # its own metadata); nothing is charged until the viewer pays, and the old checkout just expires.
        idempotency_key=provider_key(
            user_id=user_id, key=idempotency_key, operation=f"purchase-checkout:{purchase_id}"
        ),
    )
    await repository.set_checkout(conn, purchase_id=purchase_id, checkout_ref=checkout.id)
    return PurchaseStarted(
        purchase_id=purchase_id,
        checkout_id=checkout.id,
        checkout_url=checkout.url,
        kind=kind,
        amount_minor=offer.amount_minor,
        currency=offer.currency,
    )


# --- provider events -------------------------------------------------------------------------------------


async def checkout_updated(
    conn: Conn, *, provider: PaymentProvider, checkout: CheckoutSession, payment_failed: bool = False
) -> None:
    """Apply a checkout's current state: paid -> entitlement + invoice; expired -> canceled (pending only).

    `payment_failed`: the event was checkout.session.async_payment_failed, whose session stays complete and
    unpaid for good (a delayed payment, e.g. a bank debit, that did not clear): the purchase fails.
    """
    row = await repository.lock_by_checkout(conn, provider=provider.name, checkout_ref=checkout.id)
    if row is None:
        logger.warning("checkout %s of %s belongs to no purchase", checkout.id, provider.name)
        return
    claimed = checkout.metadata.get("purchase_id")
    if claimed is not None and claimed != str(row["id"]):
        logger.warning("checkout %s names purchase %s, not %s: ignored", checkout.id, claimed, row["id"])
        return
    if row["status"] != "pending":
        return  # applied already (a replayed, duplicated or late event): nothing changes twice
    now = clock.now()
    if checkout.status == "complete" and checkout.payment_status == "paid":
        await _paid(conn, provider=provider, checkout=checkout, row=row, now=now)
    elif checkout.status == "expired":
        await repository.mark_ended(conn, purchase_id=row["id"], status="canceled", at=now)
    elif checkout.status == "complete" and checkout.payment_status == "unpaid" and payment_failed:
        await repository.mark_ended(conn, purchase_id=row["id"], status="failed", at=now)


async def _mismatch(conn: Conn, *, provider_name: str, checkout: CheckoutSession, row: Row) -> str | None:
    """Why the checkout does not pay for this purchase (None: it does)."""
    from shared.subscriptions import service as subscriptions

    if checkout.metadata.get("purchase_id") != str(row["id"]):
        return f"its metadata names purchase {checkout.metadata.get('purchase_id')!r}"
    if checkout.payment_ref is None:
        return "it has no payment"
    if (checkout.currency or "").upper() != row["currency"]:
        return f"its currency is {checkout.currency!r}, not {row['currency']}"
    if checkout.amount_subtotal is not None and checkout.amount_subtotal != row["amount_minor"]:
        return f"its amount is {checkout.amount_subtotal}, not {row['amount_minor']}"
    owner = None
    if checkout.customer_ref is not None:
        owner = await subscriptions.user_for_customer(
            conn, provider_name=provider_name, customer_ref=checkout.customer_ref
        )
    if owner is None or owner != row["user_id"]:
        return f"its customer {checkout.customer_ref!r} is not the buyer's"
    return None


async def _grant(
    conn: Conn, *, source: str, row: Row, starts_at: datetime | None, ends_at: datetime | None
) -> uuid.UUID:
    """Grant (or, replayed, update) the entitlement of a purchase with these terms; its id."""
    from shared.entitlements import service as entitlements

    kind: PurchaseKind = row["kind"]
    return await entitlements.grant(
        conn,
        user_id=row["user_id"],
        kind=kind,
        title_id=row["title_id"],
        starts_at=starts_at,
        ends_at=ends_at,
        play_window_seconds=row["play_window_seconds"] if kind == "rental" else None,
        source=source,
        source_ref=source_ref(row["id"]),
        **TRANSACTIONAL_LIMITS,
    )


async def _record_invoice(
    conn: Conn, *, provider: PaymentProvider, checkout: CheckoutSession, row: Row
) -> None:
    from shared.invoices import service as invoices
    from shared.settings import get_settings

    await invoices.record_purchase(
        conn,
        provider_name=provider.name,
        checkout=checkout,
        purchase_id=row["id"],
        user_id=row["user_id"],
        description=_description(
            row["kind"],
            row["title_name"],
            window_seconds=row["play_window_seconds"],
            start_days=get_settings().rental_start_within_days,
            event=None,
        ),
        currency=row["currency"],
        amount_minor=row["amount_minor"],
    )


async def _paid_but_reversed(
    conn: Conn,
    *,
    provider: PaymentProvider,
    checkout: CheckoutSession,
    row: Row,
    now: datetime,
    charge: ChargeState,
    status: Literal["refunded", "disputed"],
) -> None:
    """A payment given back (or disputed) before it was applied: recorded and invoiced, nothing granted."""
    from shared.invoices import service as invoices

    assert checkout.payment_ref is not None  # checked by _mismatch
    await repository.mark_paid(
        conn,
        purchase_id=row["id"],
        paid_at=now,
        payment_ref=checkout.payment_ref,
        entitlement_id=None,
        access_starts_at=row["access_starts_at"],
        access_ends_at=row["access_ends_at"],
        status=status,
        ended_at=now,
    )
    await _record_invoice(conn, provider=provider, checkout=checkout, row=row)
    await invoices.refunded(
        conn,
        provider_name=provider.name,
        payment_ref=checkout.payment_ref,
        amount_refunded_minor=charge.amount_refunded_minor,
        full=charge.refunded,
    )


async def _refusal(conn: Conn, *, row: Row, now: datetime) -> str | None:
    """Why a paid purchase must not be granted but given back (None: grant it)."""
    if await repository.title_gone(conn, row["title_id"]):
        return "title_deleted"
    # Two checkouts of one title paid (two tabs, a retry): the second is a duplicate of what the account
    # holds by then. Serialized with purchase() and with the other checkout's completion.
    await repository.lock_user_title(conn, user_id=row["user_id"], title_id=row["title_id"])
    held = _already_held(
        await repository.paid_for_title(conn, user_id=row["user_id"], title_id=row["title_id"]),
        kind=row["kind"],
        ppv_event_id=row["ppv_event_id"],
        at=now,
    )
    return None if held is None else held.code


async def _paid(
    conn: Conn, *, provider: PaymentProvider, checkout: CheckoutSession, row: Row, now: datetime
) -> None:
    from shared.settings import get_settings

    mismatch = await _mismatch(conn, provider_name=provider.name, checkout=checkout, row=row)
    if mismatch is not None:
        logger.error(
            "checkout %s of %s does not pay for purchase %s: %s; nothing granted",
            checkout.id,
            provider.name,
            row["id"],
            mismatch,
        )
        return
    assert checkout.payment_ref is not None  # checked by _mismatch
    # A refund or dispute processed before this completion found no paid purchase to end: the charge as it
    # is now decides.
    charge = await provider.charge_for_payment(checkout.payment_ref)
    if charge is not None and (charge.refunded or charge.disputed):
        status: Literal["refunded", "disputed"] = "refunded" if charge.refunded else "disputed"
        logger.warning(
            "purchase %s was %s before its payment was applied: nothing granted", row["id"], status
        )
        await _paid_but_reversed(
            conn, provider=provider, checkout=checkout, row=row, now=now, charge=charge, status=status
        )
        return
    refusal = await _refusal(conn, row=row, now=now)
    if refusal is not None:
        charge = await provider.refund(
            payment_ref=checkout.payment_ref, idempotency_key=f"purchase-refund:{row['id']}"
        )
        logger.warning(
            "purchase %s refunded instead of granted (%s): payment %s",
            row["id"],
            refusal,
            checkout.payment_ref,
        )
        await _paid_but_reversed(
            conn, provider=provider, checkout=checkout, row=row, now=now, charge=charge, status="refunded"
        )
        return

    kind: PurchaseKind = row["kind"]
    starts_at: datetime | None = now
    ends_at: datetime | None = None
    if kind == "rental":
        ends_at = now + timedelta(days=get_settings().rental_start_within_days)  # the start-by date
    elif kind == "ppv":
        starts_at, ends_at = row["access_starts_at"], row["access_ends_at"]
    entitlement_id = await _grant(conn, source=provider.name, row=row, starts_at=starts_at, ends_at=ends_at)
    await repository.mark_paid(
        conn,
        purchase_id=row["id"],
        paid_at=now,
        payment_ref=checkout.payment_ref,
        entitlement_id=entitlement_id,
        access_starts_at=starts_at,
        access_ends_at=ends_at,
    )
    await _record_invoice(conn, provider=provider, checkout=checkout, row=row)


async def ppv_window_changed(
    conn: Conn, *, ppv_event_id: uuid.UUID, view_starts_at: datetime, view_ends_at: datetime
) -> int:
    """An event's viewing window moved: its tickets (and paid ones' entitlements) move with it; how many paid.

    Called in the transaction that changes the event (which holds the event's row lock). Pending tickets
    get the new window too, so a payment applied afterwards grants it.
    """
    moved = 0
    for row in await repository.lock_for_event(conn, ppv_event_id=ppv_event_id):
        entitlement_id = None
        if row["status"] == "paid" and row["title_id"] is not None:
            entitlement_id = await _grant(
                conn, source=row["provider"], row=row, starts_at=view_starts_at, ends_at=view_ends_at
            )
            moved += 1
        await repository.set_access_window(
            conn,
            purchase_id=row["id"],
            access_starts_at=view_starts_at,
            access_ends_at=view_ends_at,
            entitlement_id=entitlement_id,
        )
    if moved:
        logger.info("ppv event %s: %d tickets moved to its new viewing window", ppv_event_id, moved)
    return moved


async def payment_reversed(
    conn: Conn, *, provider_name: str, payment_ref: str, reason: Literal["refund", "dispute"]
) -> bool:
    """A refunded or disputed payment: end its paid purchase and revoke the entitlement; False if none."""
    from shared.entitlements import service as entitlements

    row = await repository.lock_by_payment(conn, provider=provider_name, payment_ref=payment_ref)
    if row is None:
        return False
    if row["status"] == "paid":
        status = "refunded" if reason == "refund" else "disputed"
        await repository.mark_ended(conn, purchase_id=row["id"], status=status, at=clock.now())
        await entitlements.revoke(conn, source=provider_name, source_ref=source_ref(row["id"]))
    return True


# --- reads -----------------------------------------------------------------------------------------------


def _after(page: PageParams) -> tuple[datetime, uuid.UUID] | None:
    if page.after is None:
        return None
    try:
        at, purchase_id = page.after
        return datetime.fromisoformat(str(at)), uuid.UUID(str(purchase_id))
    except (TypeError, ValueError) as error:
        raise InvalidCursor("The cursor is malformed; start again without one.") from error


async def list_for_user(conn: Conn, *, user_id: uuid.UUID, page: PageParams) -> Page[PurchaseRead]:
    """The account's rentals, purchases and tickets, newest first, with their entitlement state."""
    rows = await repository.for_user(conn, user_id=user_id, limit=page.limit + 1, after=_after(page))
    now = clock.now()
    items = [_read(row, now) for row in rows[: page.limit]]
    more = len(rows) > page.limit and items
    last = items[-1] if more else None
    return Page[PurchaseRead](
        items=items, next_cursor=encode_cursor([last.created_at.isoformat(), str(last.id)]) if last else None
    )


async def get_for_user(conn: Conn, *, user_id: uuid.UUID, purchase_id: uuid.UUID) -> PurchaseRead:
    """One purchase of the account (404 purchase_not_found for another account's or an unknown id)."""
    row = await repository.one_for_user(conn, user_id=user_id, purchase_id=purchase_id)
    if row is None:
        raise PurchaseNotFound("No purchase of yours has this id.")
    return _read(row, clock.now())
