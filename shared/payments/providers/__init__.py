"""The configured payment provider: Stripe, or locally the sandbox (never in production)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.errors import ServiceUnavailable

if TYPE_CHECKING:
    from shared.payments.providers.base import PaymentProvider
    from shared.settings import Settings


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
        if settings.app_env == "production":
            # The sandbox grants plans without money: never in production, whatever the configuration.
            raise ServiceUnavailable("Payments are not configured.", code="payments_not_configured")
        from shared.payments.providers.sandbox import SandboxProvider

        return SandboxProvider(settings)
    raise ServiceUnavailable(f"Unknown payment provider {name!r}.", code="payments_not_configured")
