"""The sandbox portal's signed, expiring link (customer and return URL)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from shared.errors import NotFound
from shared.payments.sandbox.times import now, to_unix

if TYPE_CHECKING:
    from shared.settings import Settings

PORTAL_LIFETIME = timedelta(hours=1)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def portal_token(
    settings: Settings, *, customer_ref: str, return_url: str, expires_at: datetime | None = None
) -> str:
    """The customer, return URL and expiry, HMAC-signed with derived_key(settings, "sandbox-portal")."""
    from shared.settings import derived_key

    expires = to_unix(expires_at or now() + PORTAL_LIFETIME)
    payload = _b64(json.dumps([customer_ref, expires, return_url], separators=(",", ":")).encode())
    signature = hmac.new(derived_key(settings, "sandbox-portal"), payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(signature)}"


def read_portal_token(settings: Settings, token: str, *, at: datetime | None = None) -> tuple[str, str]:
    """(customer_ref, return_url) of a valid, unexpired portal token; 404 portal_link_invalid otherwise."""
    from shared.settings import derived_key

    invalid = NotFound("This portal link is invalid or has expired.", code="portal_link_invalid")
    payload, _, signature = token.partition(".")
    expected = hmac.new(derived_key(settings, "sandbox-portal"), payload.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(signature)
        customer_ref, expires, return_url = json.loads(_unb64(payload))
    except (ValueError, TypeError):
        raise invalid from None
    if not hmac.compare_digest(given, expected):
        raise invalid
    if not isinstance(expires, int) or expires <= to_unix(at or now()):
        raise invalid
    return str(customer_ref), str(return_url)
