"""HTTP routes of plans and offers (/api/v1/payments/...): public plans, a title's offers, admin endpoints.

The plans list is public and cacheable; a title's offers answer only for titles the viewer may see; the
admin endpoints (commerce:write) manage plans, prices, title offers and pay-per-view events.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from shared.catalog.viewer import CurrentViewer
from shared.http.auth import Principal
from shared.http.client_meta import ClientMeta, Meta
from shared.http.openapi import BEARER_ERRORS, errors
from shared.http.permissions import CanWriteCommerce, permission_responses
from shared.infra.db import Tx
from shared.plans import service
from shared.plans.schemas import (
    AdminPlanRead,
    AdminTitleOffers,
    Currency,
    Interval,
    OfferSet,
    PlanCreate,
    PlanList,
    PlanUpdate,
    PpvEventCreate,
    PpvEventRead,
    PpvEventUpdate,
    PpvPriceSet,
    PriceSet,
    TitleOffers,
)

router = APIRouter(prefix="/api/v1/payments", tags=["plans"])

PlanCodePath = Annotated[str, Path(max_length=40, description="the plan's code, e.g. 'standard'")]
CurrencyQuery = Annotated[Currency | None, Query(description="ISO 4217 code; all currencies when left out")]
CurrencyPath = Annotated[Currency, Path(description="ISO 4217 code")]

_INVALID = {422: ["validation_failed"]}
_PLAN = {404: ["plan_not_found"]}
_EVENT = {404: ["ppv_event_not_found"]}
_WINDOWS = {422: ["validation_failed", "invalid_ppv_window", "null_not_allowed"]}
_DB = {503: ["service_unavailable"]}
PUBLIC_CACHE = "public, max-age=60"


def _actor(caller: Principal, meta: ClientMeta) -> service.Actor:
    return service.Actor(user_id=caller.user_id, ip=meta.ip, user_agent=meta.user_agent)


# Public.


@router.get(
    "/plans",
    response_model=PlanList,
    summary="List the plans and their prices",
    responses=errors({**_INVALID, **_DB}),
)
async def list_plans(tx: Tx, response: Response, currency: CurrencyQuery = None) -> PlanList:
    """Active plans in display order, the free plan included, with their prices in `currency` (or all)."""
    response.headers["cache-control"] = PUBLIC_CACHE
    return await service.list_plans(tx, currency=currency)


@router.get(
    "/titles/{title_id}/offers",
    response_model=TitleOffers,
    summary="What a title costs to rent, buy or watch at a pay-per-view event",
    responses=errors({401: BEARER_ERRORS, 404: ["content_not_found"], **_INVALID, **_DB}),
)
async def title_offers(
    title_id: uuid.UUID, tx: Tx, viewer: CurrentViewer, response: Response, currency: CurrencyQuery = None
) -> TitleOffers:
    """Rental and purchase prices, pay-per-view events on sale or upcoming (404 for a title not visible)."""
    # Visibility depends on the caller, so only the caller's own cache may keep it.
    response.headers["cache-control"] = "private, max-age=30"
    return await service.title_offers(tx, viewer=viewer, title_id=title_id, currency=currency)


# Admin: plans and prices.


@router.get(
    "/plans/{code}",
    response_model=AdminPlanRead,
    summary="A plan with its provider prices (admin)",
    responses=permission_responses(_PLAN),
)
async def get_plan(code: PlanCodePath, tx: Tx, caller: CanWriteCommerce) -> AdminPlanRead:
    """Active or not, with every active price and where it lives at the payment provider."""
    return await service.admin_plan(tx, code)


@router.post(
    "/plans",
    status_code=201,
    response_model=AdminPlanRead,
    summary="Create a plan (admin)",
    responses=permission_responses({409: ["plan_exists"], **_INVALID}),
)
async def create_plan(body: PlanCreate, tx: Tx, caller: CanWriteCommerce, meta: Meta) -> AdminPlanRead:
    """A paid plan without prices yet (PUT .../prices adds them)."""
    return await service.create_plan(tx, data=body, actor=_actor(caller, meta))


@router.patch(
    "/plans/{code}",
    response_model=AdminPlanRead,
    summary="Change a plan (admin)",
    responses=permission_responses(
        {**_PLAN, 409: ["plan_is_free"], 422: ["validation_failed", "null_not_allowed"]}
    ),
)
async def update_plan(
    code: PlanCodePath, body: PlanUpdate, tx: Tx, caller: CanWriteCommerce, meta: Meta
) -> AdminPlanRead:
    """Name, description, tier, limits, ad-free, trial, active, order (the fields sent change)."""
    return await service.update_plan(tx, code=code, data=body, actor=_actor(caller, meta))


@router.put(
    "/plans/{code}/prices",
    response_model=AdminPlanRead,
    summary="Set a plan's price in a currency and interval (admin)",
    responses=permission_responses({**_PLAN, 409: ["plan_is_free"], **_INVALID}),
)
async def set_price(
    code: PlanCodePath, body: PriceSet, tx: Tx, caller: CanWriteCommerce, meta: Meta
) -> AdminPlanRead:
    """A changed amount retires the old price and creates a new one: existing subscribers keep theirs."""
    return await service.set_price(tx, code=code, data=body, actor=_actor(caller, meta))


@router.delete(
    "/plans/{code}/prices/{currency}/{interval}",
    status_code=204,
    summary="Stop offering a plan in a currency and interval (admin)",
    responses=permission_responses(
        {404: ["plan_not_found", "price_not_found"], 409: ["plan_is_free"], **_INVALID}
    ),
)
async def remove_price(
    code: PlanCodePath,
    currency: CurrencyPath,
    interval: Interval,
    tx: Tx,
    caller: CanWriteCommerce,
    meta: Meta,
) -> Response:
    """New subscribers can no longer choose it; current subscribers keep paying it."""
    await service.remove_price(
        tx, code=code, currency=currency, interval=interval, actor=_actor(caller, meta)
    )
    return Response(status_code=204)


# Admin: rental and purchase offers.


@router.put(
    "/titles/{title_id}/offers",
    response_model=AdminTitleOffers,
    summary="Set a title's rental or purchase price in a currency (admin)",
    responses=permission_responses({404: ["title_not_found"], **_INVALID}),
)
async def set_offer(
    title_id: uuid.UUID, body: OfferSet, tx: Tx, caller: CanWriteCommerce, meta: Meta
) -> AdminTitleOffers:
    """A changed amount retires the old offer for a new one (past purchases keep their price)."""
    return await service.set_offer(tx, title_id=title_id, data=body, actor=_actor(caller, meta))


@router.delete(
    "/titles/{title_id}/offers/{kind}/{currency}",
    status_code=204,
    summary="Stop renting or selling a title in a currency (admin)",
    responses=permission_responses({404: ["offer_not_found"], **_INVALID}),
)
async def remove_offer(
    title_id: uuid.UUID,
    kind: Literal["rental", "purchase"],
    currency: CurrencyPath,
    tx: Tx,
    caller: CanWriteCommerce,
    meta: Meta,
) -> Response:
    """Past rentals and purchases stay valid."""
    await service.remove_offer(
        tx, title_id=title_id, kind=kind, currency=currency, actor=_actor(caller, meta)
    )
    return Response(status_code=204)


# Admin: pay-per-view events.


@router.get(
    "/ppv-events",
    response_model=list[PpvEventRead],
    summary="List pay-per-view events (admin)",
    responses=permission_responses(_INVALID),
)
async def list_events(
    tx: Tx, caller: CanWriteCommerce, title_id: Annotated[uuid.UUID | None, Query()] = None
) -> list[PpvEventRead]:
    """Of one title or all (at most 200), by viewing start, with their ticket prices."""
    return await service.list_events(tx, title_id=title_id)


@router.post(
    "/ppv-events",
    status_code=201,
    response_model=PpvEventRead,
    summary="Create a pay-per-view event (admin)",
    responses=permission_responses(
        {404: ["title_not_found"], 422: ["validation_failed", "invalid_ppv_window", "duplicate_currency"]}
    ),
)
async def create_event(body: PpvEventCreate, tx: Tx, caller: CanWriteCommerce, meta: Meta) -> PpvEventRead:
    """Sale window before or overlapping the viewing window (the sale ends by the viewing's end)."""
    return await service.create_event(tx, data=body, actor=_actor(caller, meta))


@router.patch(
    "/ppv-events/{event_id}",
    response_model=PpvEventRead,
    summary="Change a pay-per-view event (admin)",
    responses=permission_responses({**_EVENT, **_WINDOWS}),
)
async def update_event(
    event_id: uuid.UUID, body: PpvEventUpdate, tx: Tx, caller: CanWriteCommerce, meta: Meta
) -> PpvEventRead:
    """The windows are checked on the merged result."""
    return await service.update_event(tx, event_id=event_id, data=body, actor=_actor(caller, meta))


@router.put(
    "/ppv-events/{event_id}/prices",
    response_model=PpvEventRead,
    summary="Set a pay-per-view event's ticket price in a currency (admin)",
    responses=permission_responses({**_EVENT, **_INVALID}),
)
async def set_event_price(
    event_id: uuid.UUID, body: PpvPriceSet, tx: Tx, caller: CanWriteCommerce, meta: Meta
) -> PpvEventRead:
    """A changed amount retires the old ticket price for a new one."""
    return await service.set_event_price(tx, event_id=event_id, data=body, actor=_actor(caller, meta))
