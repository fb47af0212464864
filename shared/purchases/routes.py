"""HTTP routes of purchases (/api/v1/payments): rent, buy or a pay-per-view ticket; the caller's purchases."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from shared.catalog.viewer import CurrentViewer
from shared.http.auth import Principal, current_principal
from shared.http.openapi import BEARER_ERRORS, errors
from shared.http.pagination import Page, PageParams, page_params
from shared.infra.db import Tx
from shared.payments.idempotency import IdempotencyKey
from shared.purchases import service
from shared.purchases.schemas import PurchaseInput, PurchaseRead, PurchaseStarted
from shared.settings import get_settings

router = APIRouter(prefix="/api/v1/payments", tags=["purchases"])

Caller = Annotated[Principal, Depends(current_principal)]
Paging = Annotated[PageParams, Depends(page_params)]
PurchaseId = Annotated[uuid.UUID, Path(alias="purchaseId", description="The purchase's id")]

PRIVATE = "private, no-store"
_AUTH = {401: BEARER_ERRORS, 503: ["service_unavailable", "database_timeout"]}


async def _email(tx: Tx, caller: Principal) -> str:
    """The account's address for the provider's customer (tokens may not carry it)."""
    if caller.email:
        return caller.email
    from shared.accounts import service as accounts

    user = await accounts.get_user(tx, user_id=caller.user_id)
    return str(user["email"])


@router.post(
    "/purchase",
    status_code=201,
    response_model=PurchaseStarted,
    summary="Rent or buy a title, or buy a pay-per-view ticket (opens a checkout)",
    responses=errors(
        {
            400: ["invalid_idempotency_key"],
            401: BEARER_ERRORS,
            404: ["content_not_found", "offer_not_found"],
            409: ["sale_not_open", "already_owned", "already_rented", "idempotency_key_reused"],
            422: ["validation_failed", "invalid_currency"],
            429: ["rate_limited"],
            502: ["payment_provider_error"],
            503: ["service_unavailable", "database_timeout", "payments_not_configured"],
        }
    ),
)
async def purchase(
    body: PurchaseInput,
    tx: Tx,
    caller: Caller,
    viewer: CurrentViewer,
    idempotency_key: IdempotencyKey,
    response: Response,
) -> PurchaseStarted:
    """Records a pending purchase and answers the hosted checkout to send the viewer to.

    Nothing is playable until the payment succeeds (the provider's event then grants it). `rent`: playable
    for RENTAL_PLAY_WINDOW_HOURS (48) from first play, to be started within RENTAL_START_WITHIN_DAYS (30)
    of payment; `buy`: permanent; `ppv`: a ticket for one event (`ppv_event_id`), sold during its sale window
    (else 409 `sale_not_open`) and playable during its viewing window. 409 `already_owned` /
    `already_rented` when the account already holds it. With an `Idempotency-Key`, the same key and body
    answer the first response again; the same key with another body is 409 `idempotency_key_reused`.
    """
    response.headers["cache-control"] = PRIVATE
    return await service.purchase(
        tx,
        settings=get_settings(),
        viewer=viewer,
        user_id=caller.user_id,
        email=await _email(tx, caller),
        title_id=body.title_id,
        kind=body.kind,
        ppv_event_id=body.ppv_event_id,
        currency=body.currency,
        idempotency_key=idempotency_key,
    )


@router.get(
    "/purchases",
    response_model=Page[PurchaseRead],
    summary="The caller's rentals, purchases and pay-per-view tickets",
    responses=errors({**_AUTH, 400: ["invalid_cursor"], 422: ["validation_failed"]}),
)
async def list_purchases(tx: Tx, caller: Caller, page: Paging, response: Response) -> Page[PurchaseRead]:
    """Newest first, with each one's state.

    For a rental its start-by date, first play, expiry and whether it plays now; for a ticket its viewing
    window. Pass next_cursor as `cursor` for the next page.
    """
    response.headers["cache-control"] = PRIVATE
    return await service.list_for_user(tx, user_id=caller.user_id, page=page)


@router.get(
    "/purchases/{purchaseId}",
    response_model=PurchaseRead,
    summary="One of the caller's purchases",
    responses=errors({**_AUTH, 404: ["purchase_not_found"], 422: ["validation_failed"]}),
)
async def get_purchase(purchase_id: PurchaseId, tx: Tx, caller: Caller, response: Response) -> PurchaseRead:
    """Another account's purchase answers 404 like an unknown id."""
    response.headers["cache-control"] = PRIVATE
    return await service.get_for_user(tx, user_id=caller.user_id, purchase_id=purchase_id)
