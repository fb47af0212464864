"""Stripe webhook verification: the Stripe-Signature header checked on the raw body, then the event parsed.

The HMAC (constant-time, any of several `v1` signatures so a rotated secret keeps working) is the SDK's
`stripe.WebhookSignature.verify_header`; the time window is ours, against the injected `now`: the SDK
only rejects old timestamps and reads the wall clock, while a replayed or forged-in-advance delivery must
be refused both ways and tests must be able to move time. The body is parsed only once it verifies.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from shared.errors import BadRequest, ServiceUnavailable
from shared.payments.providers.base import InvalidSignature, ProviderEvent


def verify(payload: bytes, header: str | None, *, secret: str, tolerance: int, now: float) -> ProviderEvent:
    """The event a signed webhook body carries; InvalidSignature (400) unless it verifies within tolerance."""
    import stripe

    if not secret or not secret.strip():
        # A configuration problem, not the sender's: answer 503 so Stripe retries once it is fixed.
        raise ServiceUnavailable("Webhook verification is not configured.", code="payments_not_configured")
    if not header:
        raise InvalidSignature("The Stripe-Signature header is missing.", code="invalid_signature")
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSignature("The webhook body is not UTF-8.", code="invalid_signature") from None
    try:
        # tolerance=None: the SDK skips its own (wall-clock, past-only) age check; ours is below.
        stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=None)
    except stripe.SignatureVerificationError:
        raise InvalidSignature("The webhook signature does not verify.", code="invalid_signature") from None
    timestamp = _timestamp(header)
    if timestamp < now - tolerance:
        raise InvalidSignature("The webhook signature has expired.", code="signature_expired")
    if timestamp > now + tolerance:
        raise InvalidSignature("The webhook signature is dated in the future.", code="signature_in_future")
    return _parse(payload)


def _timestamp(header: str) -> int:
    """The `t` the SDK verified the HMAC with (its first `t=` element), which must be plain digits.

    The SDK reads only up to a second "=" (`t=123=4` verifies as t=123): such a header is malformed,
    never a 500 and never a timestamp of our guessing.
    """
    for element in header.split(","):
        key, _, value = element.partition("=")
        if key == "t":
            if not (value.isascii() and value.isdigit()):
                raise InvalidSignature(
                    "The webhook signature's timestamp is malformed.", code="invalid_signature"
                )
            return int(value)
    raise InvalidSignature("The webhook signature has no timestamp.", code="invalid_signature")


def _parse(payload: bytes) -> ProviderEvent:
    """A verified body as our event record; anything not shaped like a Stripe event is invalid_payload."""
    try:
        body: Any = json.loads(payload)
    except ValueError:
        raise BadRequest("The webhook body is not JSON.", code="invalid_payload") from None
    if not isinstance(body, dict):
        raise BadRequest("The webhook body is not a Stripe event.", code="invalid_payload")
    data = body.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    event_id, event_type, created = body.get("id"), body.get("type"), body.get("created")
    if (
        not isinstance(obj, dict)
        or not isinstance(event_id, str)
        or not event_id
        or not isinstance(event_type, str)
        or not event_type
        or not isinstance(created, int)
        or isinstance(created, bool)
    ):
        raise BadRequest("The webhook body is not a Stripe event.", code="invalid_payload")
    try:
        created_at = datetime.fromtimestamp(created, UTC)
    except (OverflowError, OSError, ValueError):
        raise BadRequest("The webhook event time is out of range.", code="invalid_payload") from None
    object_id = obj.get("id")
    return ProviderEvent(
        id=event_id,
        type=event_type,
        object_id=object_id if isinstance(object_id, str) else None,
        object=obj,
        created=created_at,
    )
