"""The Stripe webhook endpoint: a signed event, verified on the raw body, applied once in the request's Tx.

No bearer token and no rate limit: the signature is the authentication, and Stripe's retries must never be
refused. Answers 200 for every event it verified (processed, ignored or duplicate: Stripe stops resending)
and 503 when Stripe itself could not be read back, so that Stripe retries later.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from shared.errors import ServiceUnavailable
from shared.http.openapi import errors
from shared.infra.db import Tx
from shared.payments import events
from shared.payments.providers import provider_named
from shared.payments.providers.base import ProviderError, ProviderEvent
from shared.settings import get_settings

router = APIRouter(prefix="/api/v1/payments", tags=["webhooks"])


class WebhookReceipt(BaseModel):
    """What the endpoint answers for a verified event."""

    received: Literal[True] = True
    outcome: Literal["processed", "ignored", "duplicate"]


async def verified_event(request: Request) -> ProviderEvent:
    """The event in the body, once its Stripe-Signature verifies (before any database connection is taken)."""
    from shared.payments.signature import verify
    from shared.streaming import sessions

    settings = get_settings()
    if not settings.stripe_webhook_secret:
        raise ServiceUnavailable("Stripe webhooks are not configured.", code="payments_not_configured")
    payload = await request.body()  # the exact bytes Stripe signed, never a re-serialized JSON
    return verify(
        payload,
        request.headers.get("stripe-signature"),
        secret=settings.stripe_webhook_secret,
        tolerance=settings.stripe_webhook_tolerance_seconds,
        now=sessions.clock(),  # the playback clock: tests move it
    )


# Declared before the transaction: a forged or stale delivery is refused without a database connection.
VerifiedEvent = Annotated[ProviderEvent, Depends(verified_event)]


@router.post(
    "/webhooks/stripe",
    summary="Receive a Stripe webhook event (signed; applied exactly once)",
    response_model=WebhookReceipt,
    responses=errors(
        {
            400: ["invalid_signature", "signature_expired", "signature_in_future", "invalid_payload"],
            413: ["payload_too_large"],
            503: [
                "payment_provider_unavailable",
                "payments_not_configured",
                "service_unavailable",
                "database_timeout",
            ],
        }
    ),
)
async def stripe_webhook(event: VerifiedEvent, tx: Tx) -> WebhookReceipt:
    """Apply a Stripe event: its objects are re-read from Stripe, its id recorded with the effect."""
    provider = provider_named("stripe", get_settings())
    try:
        outcome = await events.process(tx, provider=provider, event=event)
    except ProviderError as error:
        # Raised out of the endpoint, so the transaction (the event's row with it) rolls back: Stripe's
        # retry finds nothing recorded and does the work.
        raise ServiceUnavailable(
            "Stripe could not be read back; the event will be retried.", code="payment_provider_unavailable"
        ) from error
    return WebhookReceipt(outcome=outcome)
