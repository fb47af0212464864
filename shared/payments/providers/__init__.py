"""The configured payment provider: Stripe, or locally the sandbox (never in production nor when hosted)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from shared.errors import ServiceUnavailable

if TYPE_CHECKING:
    from shared.payments.providers.base import PaymentProvider
    from shared.settings import Settings

# Set by the platforms we deploy to: a function there is never a developer's machine.
_HOSTED_MARKERS = ("VERCEL", "VERCEL_ENV", "AWS_LAMBDA_FUNCTION_NAME")


def _sandbox_may_run(settings: Settings) -> bool:
    # The sandbox hands out plans without money: a preview deployment that forgot APP_ENV=production
    # must not become a free premium service.
    return settings.app_env != "production" and not any(os.environ.get(marker) for marker in _HOSTED_MARKERS)


def sandbox_allowed(settings: Settings) -> bool:
    """Whether the sandbox is the provider here (PAYMENTS_PROVIDER=sandbox on a local machine)."""
    return settings.payments_provider == "sandbox" and _sandbox_may_run(settings)


def get_provider(settings: Settings) -> PaymentProvider:
    """The provider new payments go to (PAYMENTS_PROVIDER)."""
    return provider_named(settings.payments_provider, settings)


def provider_named(name: str, settings: Settings) -> PaymentProvider:
    """The provider that holds an existing object (a subscription keeps its provider)."""
    if name == "stripe":
        if not settings.stripe_secret_key:
            raise ServiceUnavailable("Stripe is not configured.", code="payments_not_configured")
        from shared.payments.providers.stripe import StripeProvider

        return StripeProvider(settings)
    if name == "sandbox":
        if not _sandbox_may_run(settings):
            raise ServiceUnavailable("Payments are not configured.", code="payments_not_configured")
        from shared.payments.providers.sandbox import SandboxProvider

        return SandboxProvider(settings)
    raise ServiceUnavailable(f"Unknown payment provider {name!r}.", code="payments_not_configured")
