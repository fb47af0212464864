"""Plans, plan prices, title offers and pay-per-view events: what commerce sells and at which price.

Prices and offers are immutable once created (like Stripe's prices): a new amount deactivates the old row
and inserts a new one, so existing subscribers and purchases keep what they agreed to. The free plan
(is_free) never has prices. Every admin change is audited (commerce_plan_changed / _offer_ / _ppv_).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from shared.audit import service as audit
from shared.catalog.visibility import Viewer
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.payments.clock import now
from shared.payments.providers.base import PriceSpec
from shared.plans import repository
from shared.plans.money import normalize_currency
from shared.plans.schemas import (
    AdminPlanRead,
    AdminPriceRead,
    AdminTitleOffers,
    Interval,
    OfferRead,
    OfferSet,
    Plan,
    PlanCreate,
    PlanList,
    PlanPrice,
    PlanRead,
    PlanUpdate,
    PpvEvent,
    PpvEventCreate,
    PpvEventRead,
    PpvEventUpdate,
    PpvPriceSet,
    PriceRead,
    PriceSet,
    TitleOffer,
    TitleOffers,
)

logger = logging.getLogger("cinema.plans")


@dataclass(frozen=True)
class Actor:
    """Who makes an admin change, for the audit log."""

    user_id: uuid.UUID | None
    ip: str | None = None
    user_agent: str | None = None


class PlanNotFound(NotFound):
    """No plan has this code."""

    code = "plan_not_found"


class PlanExists(Conflict):
    """A plan with this code exists already."""

    code = "plan_exists"


class PlanIsFree(Conflict):
    """The free plan has no prices and stays offered."""

    code = "plan_is_free"


class PriceNotFound(NotFound):
    """The plan has no active price in this currency and interval."""

    code = "price_not_found"


class OfferNotFound(NotFound):
    """The title has no active offer of this kind in this currency."""

    code = "offer_not_found"


class TitleNotFound(NotFound):
    """No title (not deleted) has this id."""

    code = "title_not_found"


class ContentNotFound(NotFound):
    """No title the viewer may see has this id (answered exactly like a missing one)."""

    code = "content_not_found"


class PpvEventNotFound(NotFound):
    """No pay-per-view event has this id."""

    code = "ppv_event_not_found"


class InvalidPpvWindow(ValidationFailed):
    """The sale and viewing windows of an event do not fit together."""

    code = "invalid_ppv_window"


class NullNotAllowed(ValidationFailed):
    """A PATCH sent null for a field that cannot be empty."""

    code = "null_not_allowed"


# --- records --------------------------------------------------------------------------------------------


def _plan(row: dict[str, Any]) -> Plan:
    return Plan.model_validate(row)


def _price(row: dict[str, Any]) -> PlanPrice:
    return PlanPrice.model_validate(row)


def _offer(row: dict[str, Any]) -> TitleOffer:
    return TitleOffer.model_validate(row)


def _currency_or_none(currency: str | None) -> str | None:
    return None if currency is None else normalize_currency(currency)


async def _audit(conn: Any, actor: Actor, event: str, **details: Any) -> None:
    await audit.record(
        conn,
        event=event,
        subject_id=None,  # subjects are accounts; what changed is in the details
        actor_id=actor.user_id,
        ip=actor.ip,
        user_agent=actor.user_agent,
        **details,
    )


# --- the contract other commerce domains use ------------------------------------------------------------


async def get_plan(conn: Any, code: str) -> Plan | None:
    """A plan by code, active or not."""
    row = await repository.plan(conn, code)
    return _plan(row) if row else None


async def free_plan(conn: Any) -> Plan | None:
    """The free plan (what everyone has without paying)."""
    for row in await repository.plans(conn, active_only=False):
        if row["is_free"]:
            return _plan(row)
    return None


async def price_for(conn: Any, *, plan_code: str, interval: str, currency: str) -> PlanPrice | None:
    """The active price of a plan in a currency and interval."""
    row = await repository.active_price(
        conn, plan_code=plan_code, interval=interval, currency=currency.strip().upper()
    )
    return _price(row) if row else None


async def price_by_id(conn: Any, price_id: uuid.UUID) -> PlanPrice | None:
    """A price by id, active or not."""
    row = await repository.price_by_id(conn, price_id)
    return _price(row) if row else None


async def price_by_provider_ref(conn: Any, *, provider: str, ref: str) -> PlanPrice | None:
    """The price the provider calls `ref`, active or not (subscriptions keep retired prices)."""
    row = await repository.price_by_provider_ref(conn, provider=provider, ref=ref)
    return _price(row) if row else None


async def record_provider_price(conn: Any, *, price_id: uuid.UUID, provider: str, ref: str) -> None:
    """Remember the provider's id of a price; the first one recorded stays (provider calls are idempotent)."""
    if await repository.set_provider_ref(conn, price_id=price_id, provider=provider, ref=ref) is None:
        current = await repository.price_by_id(conn, price_id)
        if current is None:
            raise PriceNotFound("No such price.")
        if (current["provider"], current["provider_price_ref"]) != (provider, ref):
            logger.warning(
                "price %s already has provider price %s at %s; %s at %s not recorded",
                price_id,
                current["provider_price_ref"],
                current["provider"],
                ref,
                provider,
            )


def price_spec(plan: Plan, price: PlanPrice, *, provider: str | None = None) -> PriceSpec:
    """What the provider needs to create or find the price (its ref only when recorded at `provider`)."""
    ref = price.provider_price_ref
    if provider is not None and price.provider != provider:
        ref = None
    return PriceSpec(
        price_id=str(price.id),
        plan_code=plan.code,
        plan_name=plan.name,
        currency=price.currency,
        amount_minor=price.amount_minor,
        interval=price.interval,
        provider_ref=ref,
    )


async def offer_for(
    conn: Any,
    *,
    title_id: uuid.UUID,
    kind: Literal["rental", "purchase", "ppv"],
    currency: str,
    ppv_event_id: uuid.UUID | None = None,
) -> TitleOffer | None:
    """The active offer; ppv without an event id: the event on sale now, else the next one to open."""
    row = await repository.offer_for(
        conn,
        title_id=title_id,
        kind=kind,
        currency=currency.strip().upper(),
        ppv_event_id=ppv_event_id if kind == "ppv" else None,
        at=now(),
    )
    return _offer(row) if row else None


async def sold_as(conn: Any, *, title_id: uuid.UUID) -> set[str]:
    """The ways a title can be bought now, in any currency: "rental", "purchase" (from its active offers)."""
    rows = await repository.active_offers(
        conn, title_id=title_id, kinds=["rental", "purchase"], currency=None
    )
    return {row["kind"] for row in rows}


async def ppv_event(conn: Any, event_id: uuid.UUID) -> PpvEvent | None:
    """A pay-per-view event by id."""
    row = await repository.event(conn, event_id)
    return PpvEvent.model_validate(row) if row else None


# --- public reads ---------------------------------------------------------------------------------------


async def list_plans(conn: Any, *, currency: str | None) -> PlanList:
    """Active plans (free included) with their active prices in `currency`, or all prices."""
    code = _currency_or_none(currency)
    plans = [_plan(row) for row in await repository.plans(conn, active_only=True)]
    prices = await repository.active_prices(conn, plan_codes=[p.code for p in plans], currency=code)
    by_plan: dict[str, list[PriceRead]] = {}
    for row in prices:
        by_plan.setdefault(row["plan_code"], []).append(PriceRead.of(_price(row)))
    return PlanList(
        currency=code,
        plans=[PlanRead(**p.model_dump(), prices=by_plan.get(p.code, [])) for p in plans],
    )


async def _visible(conn: Any, viewer: Viewer, title_id: uuid.UUID) -> bool:
    # The catalog's one visibility rule (shared.catalog.visibility): hidden answers like missing.
    return await repository.title_visible(conn, viewer, title_id)


async def title_offers(
    conn: Any, *, viewer: Viewer, title_id: uuid.UUID, currency: str | None
) -> TitleOffers:
    """What the viewer can pay for on a visible title: rent, buy, ppv events on sale or upcoming."""
    code = _currency_or_none(currency)
    if not await _visible(conn, viewer, title_id):
        raise ContentNotFound("No such title.")
    at = now()
    offers = [
        _offer(row)
        for row in await repository.active_offers(
            conn, title_id=title_id, kinds=["rental", "purchase"], currency=code
        )
    ]
    events = [
        PpvEvent.model_validate(row)
        for row in await repository.events(conn, title_id=title_id, not_ended_at=at)
    ]
    ticket_prices = await _event_prices(conn, title_id=title_id, events=events, currency=code)
    return TitleOffers(
        title_id=title_id,
        currency=code,
        rental=[OfferRead.of(o) for o in offers if o.kind == "rental"],
        purchase=[OfferRead.of(o) for o in offers if o.kind == "purchase"],
        # An event without a ticket price (in this currency) cannot be bought: not shown to viewers.
        ppv_events=[_event_read(e, ticket_prices[e.id], at=at) for e in events if ticket_prices.get(e.id)],
    )


async def _event_prices(
    conn: Any, *, title_id: uuid.UUID, events: list[PpvEvent], currency: str | None
) -> dict[uuid.UUID, list[OfferRead]]:
    if not events:
        return {}
    rows = await repository.active_offers(
        conn, title_id=title_id, kinds=["ppv"], currency=currency, ppv_event_ids=[e.id for e in events]
    )
    prices: dict[uuid.UUID, list[OfferRead]] = {}
    for row in rows:
        prices.setdefault(row["ppv_event_id"], []).append(OfferRead.of(_offer(row)))
    return prices


def _event_read(event: PpvEvent, prices: list[OfferRead], *, at: datetime) -> PpvEventRead:
    on_sale = event.sale_starts_at <= at < event.sale_ends_at
    return PpvEventRead(**event.model_dump(), on_sale=on_sale, prices=prices)


# --- admin: plans and prices ----------------------------------------------------------------------------


async def admin_plan(conn: Any, code: str) -> AdminPlanRead:
    """A plan with every active price and its provider references."""
    row = await repository.plan(conn, code)
    if row is None:
        raise PlanNotFound("No such plan.")
    plan = _plan(row)
    prices = await repository.active_prices(conn, plan_codes=[code], currency=None)
    return AdminPlanRead(
        **plan.model_dump(),
        prices=[
            AdminPriceRead(
                **PriceRead.of(price).model_dump(),
                provider=price.provider,
                provider_price_ref=price.provider_price_ref,
            )
            for price in map(_price, prices)
        ],
    )


async def create_plan(conn: Any, *, data: PlanCreate, actor: Actor) -> AdminPlanRead:
    """A new paid plan (409 plan_exists when the code is taken)."""
    row = await repository.insert_plan(conn, data.model_dump())
    if row is None:
        raise PlanExists(f"A plan with the code {data.code!r} exists already.")
    await _audit(conn, actor, "commerce_plan_changed", action="created", plan=data.code)
    return await admin_plan(conn, data.code)


def _changes(data: Any) -> dict[str, Any]:
    """The fields a PATCH sent; null is refused (none of these fields can be empty)."""
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    nulls = sorted(name for name, value in changes.items() if value is None)
    if nulls:
        raise NullNotAllowed(f"These fields cannot be null: {', '.join(nulls)}.", fields=nulls)
    return changes


async def update_plan(conn: Any, *, code: str, data: PlanUpdate, actor: Actor) -> AdminPlanRead:
    """Change some of a plan's fields (the free plan cannot be withdrawn: 409 plan_is_free)."""
    changes = _changes(data)
    row = await repository.plan(conn, code, lock=True)
    if row is None:
        raise PlanNotFound("No such plan.")
    if row["is_free"] and changes.get("active") is False:
        raise PlanIsFree("The free plan is what everyone has without paying; it cannot be withdrawn.")
    changed = {name: value for name, value in changes.items() if row[name] != value}
    if changed:
        await repository.update_plan(conn, code, changed)
        await _audit(conn, actor, "commerce_plan_changed", action="updated", plan=code, changed=changed)
    return await admin_plan(conn, code)


async def _paid_plan(conn: Any, code: str) -> dict[str, Any]:
    row = await repository.plan(conn, code, lock=True)  # serialises price changes of the plan
    if row is None:
        raise PlanNotFound("No such plan.")
    if row["is_free"]:
        raise PlanIsFree("The free plan has no prices.")
    return row


async def set_price(conn: Any, *, code: str, data: PriceSet, actor: Actor) -> AdminPlanRead:
    """Set a plan's price; a changed amount retires the old row (its subscribers keep it) for a new one."""
    await _paid_plan(conn, code)
    current = await repository.active_price(
        conn, plan_code=code, interval=data.interval, currency=data.currency
    )
    if current is None or current["amount_minor"] != data.amount_minor:
        if current is not None:
            await repository.deactivate_price(conn, current["id"])
        new = await repository.insert_price(
            conn,
            plan_code=code,
            currency=data.currency,
            interval=data.interval,
            amount_minor=data.amount_minor,
        )
        await _audit(
            conn,
            actor,
            "commerce_plan_changed",
            action="price_set",
            plan=code,
            currency=data.currency,
            interval=data.interval,
            amount_minor=data.amount_minor,
            previous_amount_minor=current["amount_minor"] if current else None,
            price_id=new["id"],
            retired_price_id=current["id"] if current else None,
        )
    return await admin_plan(conn, code)


async def remove_price(conn: Any, *, code: str, currency: str, interval: Interval, actor: Actor) -> None:
    """Stop offering a plan in a currency and interval (current subscribers keep their price)."""
    await _paid_plan(conn, code)
    currency = normalize_currency(currency)
    current = await repository.active_price(conn, plan_code=code, interval=interval, currency=currency)
    if current is None:
        raise PriceNotFound(f"The plan has no {interval}ly price in {currency}.")
    await repository.deactivate_price(conn, current["id"])
    await _audit(
        conn,
        actor,
        "commerce_plan_changed",
        action="price_removed",
        plan=code,
        currency=currency,
        interval=interval,
        price_id=current["id"],
    )


# --- admin: title offers --------------------------------------------------------------------------------


async def _existing_title(conn: Any, title_id: uuid.UUID) -> None:
    # As a catalog manager sees it: any title not deleted (drafts may be priced before they go live).
    if not await _visible(conn, Viewer(manager=True), title_id):
        raise TitleNotFound("No such title.")


async def _replace_offer(
    conn: Any,
    *,
    title_id: uuid.UUID,
    kind: str,
    currency: str,
    amount_minor: int,
    ppv_event_id: uuid.UUID | None,
) -> dict[str, Any] | None:
    """Insert the offer unless the same amount is active already; the retired row when one was replaced."""
    await repository.lock_title_offers(conn, title_id)
    current = await repository.active_offer(
        conn, title_id=title_id, kind=kind, currency=currency, ppv_event_id=ppv_event_id
    )
    if current is not None and current["amount_minor"] == amount_minor:
        return current
    if current is not None:
        await repository.deactivate_offer(conn, current["id"])
    await repository.insert_offer(
        conn,
        title_id=title_id,
        kind=kind,
        currency=currency,
        amount_minor=amount_minor,
        ppv_event_id=ppv_event_id,
    )
    return None if current is None else {**current, "replaced": True}


async def admin_title_offers(conn: Any, *, title_id: uuid.UUID) -> AdminTitleOffers:
    """A title's active rental and purchase offers in every currency."""
    offers = [
        _offer(row)
        for row in await repository.active_offers(
            conn, title_id=title_id, kinds=["rental", "purchase"], currency=None
        )
    ]
    return AdminTitleOffers(
        title_id=title_id,
        rental=[OfferRead.of(o) for o in offers if o.kind == "rental"],
        purchase=[OfferRead.of(o) for o in offers if o.kind == "purchase"],
    )


async def set_offer(conn: Any, *, title_id: uuid.UUID, data: OfferSet, actor: Actor) -> AdminTitleOffers:
    """Set a title's rental or purchase price in a currency (a changed amount is a new offer row)."""
    await _existing_title(conn, title_id)
    previous = await _replace_offer(
        conn,
        title_id=title_id,
        kind=data.kind,
        currency=data.currency,
        amount_minor=data.amount_minor,
        ppv_event_id=None,
    )
    if previous is None or previous.get("replaced"):
        await _audit(
            conn,
            actor,
            "commerce_offer_changed",
            action="set",
            title_id=title_id,
            kind=data.kind,
            currency=data.currency,
            amount_minor=data.amount_minor,
            previous_amount_minor=previous["amount_minor"] if previous else None,
        )
    return await admin_title_offers(conn, title_id=title_id)


async def remove_offer(
    conn: Any, *, title_id: uuid.UUID, kind: Literal["rental", "purchase"], currency: str, actor: Actor
) -> None:
    """Stop renting or selling a title in a currency (404 offer_not_found when it is not offered)."""
    currency = normalize_currency(currency)
    await repository.lock_title_offers(conn, title_id)
    current = await repository.active_offer(
        conn, title_id=title_id, kind=kind, currency=currency, ppv_event_id=None
    )
    if current is None:
        raise OfferNotFound(f"The title has no {kind} offer in {currency}.")
    await repository.deactivate_offer(conn, current["id"])
    await _audit(
        conn,
        actor,
        "commerce_offer_changed",
        action="removed",
        title_id=title_id,
        kind=kind,
        currency=currency,
    )


# --- admin: pay-per-view events -------------------------------------------------------------------------


def check_windows(values: dict[str, Any]) -> None:
    """Sale opens before it closes, viewing starts before it ends, the sale ends by the viewing's end."""
    if values["sale_starts_at"] >= values["sale_ends_at"]:
        raise InvalidPpvWindow("The sale must start before it ends.", rule="sale_order")
    if values["view_starts_at"] >= values["view_ends_at"]:
        raise InvalidPpvWindow("The viewing window must start before it ends.", rule="view_order")
    if values["sale_ends_at"] > values["view_ends_at"]:
        raise InvalidPpvWindow(
            "The sale must end no later than the viewing window ends.", rule="sale_after_view"
        )


async def _event_admin_read(conn: Any, row: dict[str, Any]) -> PpvEventRead:
    event = PpvEvent.model_validate(row)
    prices = await _event_prices(conn, title_id=event.title_id, events=[event], currency=None)
    return _event_read(event, prices.get(event.id, []), at=now())


def _unique_currencies(prices: list[PpvPriceSet]) -> None:
    currencies = [p.currency for p in prices]
    if len(set(currencies)) != len(currencies):
        raise ValidationFailed("Each currency may have one ticket price.", code="duplicate_currency")


async def create_event(conn: Any, *, data: PpvEventCreate, actor: Actor) -> PpvEventRead:
    """A new pay-per-view event of a title, with its ticket prices."""
    values = data.model_dump(exclude={"prices"})
    check_windows(values)
    _unique_currencies(data.prices)
    await _existing_title(conn, data.title_id)
    row = await repository.insert_event(conn, values)
    for price in data.prices:
        await _replace_offer(
            conn,
            title_id=data.title_id,
            kind="ppv",
            currency=price.currency,
            amount_minor=price.amount_minor,
            ppv_event_id=row["id"],
        )
    await _audit(
        conn,
        actor,
        "commerce_ppv_changed",
        action="created",
        ppv_event_id=row["id"],
        title_id=data.title_id,
        prices={p.currency: p.amount_minor for p in data.prices},
    )
    return await _event_admin_read(conn, row)


async def update_event(conn: Any, *, event_id: uuid.UUID, data: PpvEventUpdate, actor: Actor) -> PpvEventRead:
    """Change an event's name or windows (checked on the result)."""
    changes = _changes(data)
    row = await repository.event(conn, event_id, lock=True)
    if row is None:
        raise PpvEventNotFound("No such pay-per-view event.")
    check_windows({**row, **changes})
    changed = {name: value for name, value in changes.items() if row[name] != value}
    if changed:
        row = await repository.update_event(conn, event_id, changed) or row
        moved = 0
        if {"view_starts_at", "view_ends_at"} & changed.keys():
            # Ticket holders' access moves with the window, in this transaction.
            from shared.purchases import service as purchases

            moved = await purchases.ppv_window_changed(
                conn,
                ppv_event_id=event_id,
                view_starts_at=row["view_starts_at"],
                view_ends_at=row["view_ends_at"],
            )
        await _audit(
            conn,
            actor,
            "commerce_ppv_changed",
            action="updated",
            ppv_event_id=event_id,
            changed=changed,
            **({"tickets_moved": moved} if moved else {}),
        )
    return await _event_admin_read(conn, row)


async def set_event_price(conn: Any, *, event_id: uuid.UUID, data: PpvPriceSet, actor: Actor) -> PpvEventRead:
    """Set an event's ticket price in a currency (a changed amount is a new offer row)."""
    row = await repository.event(conn, event_id, lock=True)
    if row is None:
        raise PpvEventNotFound("No such pay-per-view event.")
    previous = await _replace_offer(
        conn,
        title_id=row["title_id"],
        kind="ppv",
        currency=data.currency,
        amount_minor=data.amount_minor,
        ppv_event_id=event_id,
    )
    if previous is None or previous.get("replaced"):
        await _audit(
            conn,
            actor,
            "commerce_ppv_changed",
            action="price_set",
            ppv_event_id=event_id,
            currency=data.currency,
            amount_minor=data.amount_minor,
            previous_amount_minor=previous["amount_minor"] if previous else None,
        )
    return await _event_admin_read(conn, row)


async def list_events(conn: Any, *, title_id: uuid.UUID | None) -> list[PpvEventRead]:
    """Every event (of a title, or all), by viewing start, with its ticket prices."""
    rows = await repository.events(conn, title_id=title_id)
    return [await _event_admin_read(conn, row) for row in rows]
