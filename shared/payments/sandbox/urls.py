"""Where the sandbox's pages are served, and the return URLs it accepts."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from shared.payments.providers.base import ProviderError

if TYPE_CHECKING:
    from shared.settings import Settings

CHECKOUT_PATH = "/api/v1/payments/sandbox/checkout/"
PORTAL_PATH = "/api/v1/payments/sandbox/portal/"


def checked_url(url: str) -> str:
    """The URL itself when absolute http(s); ProviderError invalid_return_url otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ProviderError("Checkout return URLs must be absolute http(s) URLs.", code="invalid_return_url")
    return url


def base_url(settings: Settings) -> str:
    """The public base URL without its trailing slash."""
    return str(settings.public_base_url).rstrip("/")
