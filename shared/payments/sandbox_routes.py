"""HTTP routes of the local payment sandbox: its hosted checkout and portal pages, and dev controls.

Only when PAYMENTS_PROVIDER=sandbox on a local machine: never in production nor on a hosted function
(else 404 sandbox_disabled). Each action changes the sandbox (committed on its own, like a call to
Stripe), then delivers the events it recorded through shared.payments.events in the request's
transaction, so the page's redirect lands on an account that already shows the result. The checkout
id and the signed portal token are the pages' capabilities; the JSON dev controls need the bearer of
the object's owner or an admin.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from shared.errors import NotFound
from shared.http.auth import Principal, current_principal
from shared.http.openapi import BEARER_ERRORS, errors
from shared.infra.db import Tx
from shared.payments import sandbox_pages as pages
from shared.payments.providers import sandbox
from shared.payments.providers.base import ObjectNotFound
from shared.settings import Settings, get_settings

router = APIRouter(prefix="/api/v1/payments", tags=["sandbox"])

_CHECKOUT_ID = re.compile(r"^cs_sbx_[0-9a-f]{32}$")


def _enabled() -> Settings:
    # Checked per request and before any database checkout: settings may change (tests), the sandbox
    # grants plans without money, so it must not answer at all where it is not the provider.
    settings = get_settings()
    from shared.payments.providers import sandbox_allowed

    if not sandbox_allowed(settings):
        raise NotFound("The payment sandbox is not enabled on this deployment.", code="sandbox_disabled")
    return settings


Enabled = Annotated[Settings, Depends(_enabled)]
_DB = {503: ["service_unavailable", "database_timeout"]}
_HTML = {"content": {"text/html": {}}, "description": "An HTML page (strict CSP, no external resources)"}
_SEE_OTHER = {"description": "Done: redirects (303) to the next page"}


def _problems(by_status: dict[int, list[str]]) -> dict[int | str, dict[str, Any]]:
    merged = {status: list(codes) for status, codes in {**_DB, **by_status}.items()}
    merged.setdefault(404, []).insert(0, "sandbox_disabled")
    return errors(merged)


def _checkout_not_found() -> NotFound:
    return NotFound("No such checkout.", code="checkout_not_found")


def _checkout_id(checkout_id: str) -> str:
    if not _CHECKOUT_ID.fullmatch(checkout_id):
        raise _checkout_not_found()
    return checkout_id


def _html(body: str, *targets: str) -> HTMLResponse:
    return HTMLResponse(body, headers=pages.headers(*targets))


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"cache-control": "no-store"})


# --- checkout ---------------------------------------------------------------------------------------------


@router.get(
    "/sandbox/checkout/{checkout_id}",
    response_class=HTMLResponse,
    summary="Sandbox checkout page: what is bought, a test card, Pay and Decline",
    responses={200: _HTML, **_problems({404: ["checkout_not_found"]})},
)
async def checkout_page(settings: Enabled, tx: Tx, checkout_id: str) -> HTMLResponse:
    """The hosted checkout page of a sandbox session (the unguessable id is the capability)."""
    session = await sandbox.load(tx, _checkout_id(checkout_id), "checkout_session")
    if session is None:
        raise _checkout_not_found()
    page = pages.checkout_page(session, action_base=f"{sandbox.CHECKOUT_PATH}{checkout_id}")
    return _html(page, session["success_url"], session["cancel_url"])


def _after_checkout(session: dict[str, Any]) -> RedirectResponse:
    url = session["success_url"] if session["status"] == "complete" else session["cancel_url"]
    return _see_other(pages.return_url(url, session["id"]))


@router.post(
    "/sandbox/checkout/{checkout_id}/complete",
    status_code=303,
    response_class=RedirectResponse,
    summary="Pay a sandbox checkout (starts the subscription or takes the payment), then 303 to success",
    responses={303: _SEE_OTHER, **_problems({404: ["checkout_not_found"]})},
)
async def complete_checkout(settings: Enabled, tx: Tx, checkout_id: str) -> RedirectResponse:
    """Complete the session once (a repeat changes nothing) and deliver its events."""
    try:
        session = await sandbox.complete_checkout(_checkout_id(checkout_id))
    except ObjectNotFound:
        raise _checkout_not_found() from None
    await sandbox.deliver_pending(tx, settings=settings)
    return _after_checkout(session)


@router.post(
    "/sandbox/checkout/{checkout_id}/decline",
    status_code=303,
    response_class=RedirectResponse,
    summary="Decline a sandbox checkout (it expires), then 303 to the cancel URL",
    responses={303: _SEE_OTHER, **_problems({404: ["checkout_not_found"]})},
)
async def decline_checkout(settings: Enabled, tx: Tx, checkout_id: str) -> RedirectResponse:
    """Expire an open session and deliver checkout.session.expired; a finished one stays as it is."""
    try:
        session = await sandbox.decline_checkout(_checkout_id(checkout_id))
    except ObjectNotFound:
        raise _checkout_not_found() from None
    await sandbox.deliver_pending(tx, settings=settings)
    return _after_checkout(session)


# --- portal -----------------------------------------------------------------------------------------------

_PORTAL_ERRORS = {404: ["portal_link_invalid"]}


@router.get(
    "/sandbox/portal/{token}",
    response_class=HTMLResponse,
    summary="Sandbox billing portal: the card and the subscriptions, with renew and cancel buttons",
    responses={200: _HTML, **_problems(_PORTAL_ERRORS)},
)
async def portal_page(settings: Enabled, tx: Tx, token: str) -> HTMLResponse:
    """The portal page behind a signed, expiring link (what portal_url() returns)."""
    customer_ref, back_url = sandbox.read_portal_token(settings, token)
    customer = await sandbox.load(tx, customer_ref, "customer")
    if customer is None:
        raise NotFound("This portal link is invalid or has expired.", code="portal_link_invalid")
    page = pages.portal_page(
        customer=customer,
        subscriptions=await sandbox.subscriptions_of(tx, customer_ref),
        action_base=f"{sandbox.PORTAL_PATH}{token}",
        back_url=back_url,
    )
    return _html(page, back_url)


@router.post(
    "/sandbox/portal/{token}/card",
    status_code=303,
    response_class=RedirectResponse,
    summary="Sandbox portal: switch the card between working and declining, then 303 to the portal",
    responses={303: _SEE_OTHER, **_problems(_PORTAL_ERRORS)},
)
async def portal_toggle_card(settings: Enabled, tx: Tx, token: str) -> RedirectResponse:
    """Toggle whether the customer's card declines future charges."""
    customer_ref, _ = sandbox.read_portal_token(settings, token)
    customer = await sandbox.load(tx, customer_ref, "customer")
    if customer is None:
        raise NotFound("This portal link is invalid or has expired.", code="portal_link_invalid")
    await sandbox.set_card_fails(customer_ref, fails=not customer.get("sandbox_card", {}).get("fails", False))
    return _see_other(f"{sandbox.PORTAL_PATH}{token}")


PortalAction = Literal["renew-paid", "renew-failed", "cancel", "resume"]


@router.post(
    "/sandbox/portal/{token}/subscriptions/{subscription_ref}/{action}",
    status_code=303,
    response_class=RedirectResponse,
    summary="Sandbox portal: renew now (paid or declined), cancel at period end or resume; 303 back",
    responses={
        303: _SEE_OTHER,
        **_problems({402: ["subscription_ended"], 404: ["portal_link_invalid", "subscription_not_found"]}),
    },
)
async def portal_subscription_action(
    settings: Enabled, tx: Tx, token: str, subscription_ref: str, action: PortalAction
) -> RedirectResponse:
    """Act on one of the portal customer's subscriptions, deliver the events, back to the portal."""
    customer_ref, _ = sandbox.read_portal_token(settings, token)
    if await sandbox.customer_of(tx, subscription_ref) != customer_ref:
        raise NotFound("No such subscription.", code="subscription_not_found")
    if action in ("renew-paid", "renew-failed"):
        await sandbox.renew(subscription_ref, outcome="paid" if action == "renew-paid" else "failed")
    else:
        await sandbox.set_cancel_at_period_end(subscription_ref, cancel=action == "cancel")
    await sandbox.deliver_pending(tx, settings=settings)
    return _see_other(f"{sandbox.PORTAL_PATH}{token}")


# --- JSON dev controls (the owner's bearer, or an admin) --------------------------------------------------

_OWNER = {401: BEARER_ERRORS, 404: ["sandbox_object_not_found"]}


async def _authorize(tx: Tx, principal: Principal, object_id: str) -> None:
    """The caller owns the object (through payment_customers) or is an admin; strangers see a 404."""
    missing = NotFound("No such sandbox object.", code="sandbox_object_not_found")
    if await sandbox.customer_of(tx, object_id) is None:
        raise missing
    if "admin" in principal.roles:
        return
    if await sandbox.owner_of(tx, object_id) != principal.user_id:
        raise missing


Caller = Annotated[Principal, Depends(current_principal)]


class RenewRequest(BaseModel):
    """How the simulated renewal ends (a subscription cancelled at period end ends instead)."""

    outcome: Literal["paid", "failed"] = Field(
        description="paid: a new period; failed: past_due, open invoice"
    )


class SandboxSubscription(BaseModel):
    """A sandbox subscription after a dev control, with how many events were delivered."""

    id: str
    status: str
    current_period_start: int
    current_period_end: int
    cancel_at_period_end: bool
    latest_invoice: str | None
    delivered_events: int


class RefundRequest(BaseModel):
    """How much to refund (everything that is left by default)."""

    amount_minor: int | None = Field(default=None, gt=0, le=100_000_000)


class SandboxCharge(BaseModel):
    """A sandbox charge after a refund or a dispute."""

    id: str
    payment_ref: str | None
    currency: str
    amount_minor: int
    amount_refunded_minor: int
    refunded: bool
    disputed: bool
    dispute_id: str | None = None
    delivered_events: int


class CardRequest(BaseModel):
    """Whether the customer's card declines charges from now on."""

    fails: bool


class SandboxCard(BaseModel):
    """The customer's test card."""

    customer: str
    brand: str
    last4: str
    fails: bool


@router.post(
    "/sandbox/subscriptions/{subscription_ref}/renew",
    response_model=SandboxSubscription,
    summary="Sandbox dev control: run one billing cycle now, paid or declined",
    responses=_problems({**_OWNER, 402: ["subscription_ended"], 422: ["validation_failed"]}),
)
async def renew_subscription(
    settings: Enabled,
    tx: Tx,
    caller: Caller,
    subscription_ref: str,
    body: RenewRequest,
) -> SandboxSubscription:
    """paid: new period, paid invoice (or the open one paid); failed: past_due with an open invoice."""
    await _authorize(tx, caller, subscription_ref)
    subscription = await sandbox.renew(subscription_ref, outcome=body.outcome)
    delivered = await sandbox.deliver_pending(tx, settings=settings)
    return SandboxSubscription(
        id=subscription["id"],
        status=subscription["status"],
        current_period_start=subscription["current_period_start"],
        current_period_end=subscription["current_period_end"],
        cancel_at_period_end=subscription["cancel_at_period_end"],
        latest_invoice=subscription.get("latest_invoice"),
        delivered_events=delivered,
    )


def _charge_view(charge: dict[str, Any], delivered: int, dispute_id: str | None = None) -> SandboxCharge:
    return SandboxCharge(
        id=charge["id"],
        payment_ref=charge.get("payment_intent"),
        currency=str(charge["currency"]).upper(),
        amount_minor=charge["amount"],
        amount_refunded_minor=charge["amount_refunded"],
        refunded=charge["refunded"],
        disputed=charge["disputed"],
        dispute_id=dispute_id,
        delivered_events=delivered,
    )


@router.post(
    "/sandbox/payments/{payment_ref}/refund",
    response_model=SandboxCharge,
    summary="Sandbox dev control: refund a payment (charge.refunded)",
    responses=_problems(
        {**_OWNER, 409: ["already_refunded", "refund_too_large"], 422: ["validation_failed"]}
    ),
)
async def refund_payment(
    settings: Enabled, tx: Tx, caller: Caller, payment_ref: str, body: RefundRequest | None = None
) -> SandboxCharge:
    """Refund a payment intent's charge (all that is left unless amount_minor) and deliver charge.refunded."""
    await _authorize(tx, caller, payment_ref)
    charge = await sandbox.refund(payment_ref, amount_minor=body.amount_minor if body else None)
    return _charge_view(charge, await sandbox.deliver_pending(tx, settings=settings))


@router.post(
    "/sandbox/payments/{payment_ref}/dispute",
    response_model=SandboxCharge,
    summary="Sandbox dev control: the card holder disputes a payment (charge.dispute.created)",
    responses=_problems({**_OWNER, 409: ["already_disputed"]}),
)
async def dispute_payment(settings: Enabled, tx: Tx, caller: Caller, payment_ref: str) -> SandboxCharge:
    """Open a dispute on a payment intent's charge and deliver charge.dispute.created."""
    await _authorize(tx, caller, payment_ref)
    opened = await sandbox.dispute(payment_ref)
    charge = await sandbox.load(tx, opened["charge"], "charge")
    if charge is None:  # written in the same sandbox transaction as the dispute; never missing
        raise NotFound("No such sandbox object.", code="sandbox_object_not_found")
    return _charge_view(charge, await sandbox.deliver_pending(tx, settings=settings), opened["id"])


@router.post(
    "/sandbox/customers/{customer_ref}/card",
    response_model=SandboxCard,
    summary="Sandbox dev control: make the customer's card decline charges (or work again)",
    responses=_problems({**_OWNER, 422: ["validation_failed"]}),
)
async def set_card(
    settings: Enabled, tx: Tx, caller: Caller, customer_ref: str, body: CardRequest
) -> SandboxCard:
    """Renewals and upgrades charge this card: a declining one leaves subscriptions past_due."""
    await _authorize(tx, caller, customer_ref)
    customer = await sandbox.set_card_fails(customer_ref, fails=body.fails)
    card = customer["sandbox_card"]
    return SandboxCard(customer=customer_ref, brand=card["brand"], last4=card["last4"], fails=card["fails"])
