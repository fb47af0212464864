"""HTTP routes of subscriptions (/api/v1/payments/...): subscribe, current plan, cancel, resume, change."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from shared.http.auth import Principal, current_principal
from shared.http.openapi import BEARER_ERRORS, errors
from shared.infra import ratelimit
from shared.infra.db import Tx
from shared.infra.ratelimit import Limit
from shared.payments import idempotency
from shared.payments.idempotency import IdempotencyKey
from shared.settings import get_settings
from shared.subscriptions import service
from shared.subscriptions.schemas import (
    ChangePlanRequest,
    CheckoutStarted,
    PortalLink,
    SubscribeRequest,
    SubscriptionView,
)

router = APIRouter(prefix="/api/v1/payments", tags=["subscriptions"])

Caller = Annotated[Principal, Depends(current_principal)]
# Each of these calls the payment provider: bounded per account.
PROVIDER_CALLS = Limit(30, 3600)

_AUTH: dict[int, list[str]] = {401: BEARER_ERRORS, 429: ["rate_limited"], 503: ["service_unavailable"]}
_PROVIDER = {502: ["payment_provider_error"], 503: ["service_unavailable", "payments_not_configured"]}
_KEY = {400: ["invalid_idempotency_key"], 409: ["idempotency_key_reused", "idempotency_key_in_use"]}


def _merge(*parts: dict[int, list[str]]) -> dict[int, list[str]]:
    merged: dict[int, list[str]] = {}
    for part in parts:
        for status, codes in part.items():
            merged[status] = [
                *merged.get(status, []),
                *(code for code in codes if code not in merged.get(status, [])),
            ]
    return merged


async def _email(tx: Tx, caller: Principal) -> str:
    if caller.email:
        return caller.email
    from shared.accounts import service as accounts

    user = await accounts.get_user(tx, user_id=caller.user_id)
    return str(user["email"])


async def _limit(caller: Principal) -> None:
    await ratelimit.enforce(rules=[PROVIDER_CALLS.rule(f"payments:subscription:{caller.user_id}")])


def _replayed(replay: idempotency.Replay) -> JSONResponse:
    return JSONResponse(
        replay.response, status_code=replay.status_code, headers={"idempotent-replayed": "true"}
    )


async def _finish(tx: Tx, caller: Principal, key: str | None, status: int, result: BaseModel) -> None:
    await idempotency.finish(
        tx, user_id=caller.user_id, key=key, status_code=status, response=result.model_dump(mode="json")
    )


@router.post(
    "/subscribe",
    status_code=201,
    response_model=CheckoutStarted,
    summary="Start a subscription: a checkout page to pay at",
    responses=errors(
        _merge(
            _AUTH,
            _PROVIDER,
            _KEY,
            {
                404: ["plan_not_found", "price_not_found"],
                409: ["plan_is_free", "already_subscribed"],
                422: ["validation_failed"],
            },
        )
    ),
)
async def subscribe(body: SubscribeRequest, tx: Tx, caller: Caller, idempotency_key: IdempotencyKey) -> Any:
    """Send the viewer to `checkout_url`; the plan applies once the provider confirms the payment.

    The first subscription of an account starts with the plan's trial. With an Idempotency-Key the same
    request answers the same checkout (replays carry `idempotent-replayed: true`).
    """
    settings = get_settings()
    currency = body.currency or settings.payments_default_currency
    request = {"plan_code": body.plan_code, "interval": body.interval, "currency": currency}
    replay = await idempotency.begin(
        tx, user_id=caller.user_id, key=idempotency_key, scope="subscribe", body=request
    )
    if replay is not None:
        return _replayed(replay)
    await _limit(caller)
    started = await service.subscribe(
        tx,
        settings=settings,
        user_id=caller.user_id,
        email=await _email(tx, caller),
        plan_code=body.plan_code,
        interval=body.interval,
        currency=currency,
        idempotency_key=idempotency_key,
    )
    await _finish(tx, caller, idempotency_key, 201, started)
    return started


@router.get(
    "/subscription",
    response_model=SubscriptionView,
    summary="The account's subscription, or the free plan, with the limits in effect",
    responses=errors(_AUTH),
)
async def get_subscription(tx: Tx, caller: Caller) -> SubscriptionView:
    """Always 200: the live subscription (trialing, active, past due...) or the free plan."""
    return await service.current(tx, settings=get_settings(), user_id=caller.user_id)


@router.post(
    "/subscription/cancel",
    response_model=SubscriptionView,
    summary="Cancel the subscription at the end of the paid period",
    responses=errors(_merge(_AUTH, _PROVIDER, _KEY, {409: ["not_cancelable"]})),
)
async def cancel_subscription(tx: Tx, caller: Caller, idempotency_key: IdempotencyKey) -> Any:
    """The plan stays until `current_period_end`, then the account is on the free plan; resume undoes it."""
    replay = await idempotency.begin(tx, user_id=caller.user_id, key=idempotency_key, scope="cancel", body={})
    if replay is not None:
        return _replayed(replay)
    await _limit(caller)
    view = await service.cancel(
        tx, settings=get_settings(), user_id=caller.user_id, idempotency_key=idempotency_key
    )
    await _finish(tx, caller, idempotency_key, 200, view)
    return view


@router.post(
    "/subscription/resume",
    response_model=SubscriptionView,
    summary="Keep a cancelled subscription (before its period ends)",
    responses=errors(_merge(_AUTH, _PROVIDER, _KEY, {409: ["not_resumable"]})),
)
async def resume_subscription(tx: Tx, caller: Caller, idempotency_key: IdempotencyKey) -> Any:
    """Undo a pending cancellation: the subscription renews as before."""
    replay = await idempotency.begin(tx, user_id=caller.user_id, key=idempotency_key, scope="resume", body={})
    if replay is not None:
        return _replayed(replay)
    await _limit(caller)
    view = await service.resume(
        tx, settings=get_settings(), user_id=caller.user_id, idempotency_key=idempotency_key
    )
    await _finish(tx, caller, idempotency_key, 200, view)
    return view


@router.post(
    "/subscription/change",
    response_model=SubscriptionView,
    summary="Change plan or billing interval (prorated)",
    responses=errors(
        _merge(
            _AUTH,
            _PROVIDER,
            _KEY,
            {
                402: ["payment_refused"],
                404: ["plan_not_found", "price_not_found"],
                409: ["no_subscription", "same_plan", "plan_is_free"],
                422: ["validation_failed"],
            },
        )
    ),
)
async def change_subscription(
    body: ChangePlanRequest, tx: Tx, caller: Caller, idempotency_key: IdempotencyKey
) -> Any:
    """Upgrades (higher tier or price) apply now and are charged now; downgrades credit the unused time."""
    replay = await idempotency.begin(
        tx, user_id=caller.user_id, key=idempotency_key, scope="change", body=body.model_dump(mode="json")
    )
    if replay is not None:
        return _replayed(replay)
    await _limit(caller)
    view = await service.change_plan(
        tx,
        settings=get_settings(),
        user_id=caller.user_id,
        plan_code=body.plan_code,
        interval=body.interval,
        idempotency_key=idempotency_key,
    )
    await _finish(tx, caller, idempotency_key, 200, view)
    return view


@router.post(
    "/portal",
    response_model=PortalLink,
    summary="A link to the payment provider's billing portal (cards, billing details)",
    responses=errors(_merge(_AUTH, _PROVIDER, {409: ["no_billing_account"]})),
)
async def billing_portal(tx: Tx, caller: Caller) -> PortalLink:
    """Send the viewer to `url`; the portal links back to the billing page."""
    await _limit(caller)
    return PortalLink(url=await service.portal(tx, settings=get_settings(), user_id=caller.user_id))
