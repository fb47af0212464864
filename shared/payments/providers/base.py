"""The payment provider contract: what commerce asks of Stripe or of the local sandbox, in our own types.

Services never touch a provider's objects: each provider turns its answers into these frozen records, so
the subscription, purchase and invoice logic (and the webhook handling) is the same code for both.
Amounts are integer minor units; times are aware UTC datetimes; every write takes an idempotency key that
the provider honours (Stripe's Idempotency-Key header; the sandbox stores the first answer under it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from shared.errors import AppError

SubscriptionStatus = Literal[
    "incomplete", "incomplete_expired", "trialing", "active", "past_due", "unpaid", "canceled", "paused"
]
Interval = Literal["month", "year"]


class ProviderError(AppError):
    """The payment provider failed or could not be reached (the request may be retried)."""

    status = 502
    code = "payment_provider_error"
    title = "The payment provider did not answer"


class ProviderRefused(AppError):
    """The provider refused the request for a reason the caller should see (e.g. a card problem)."""

    status = 402
    code = "payment_refused"
    title = "The payment provider refused the request"


class ObjectNotFound(AppError):
    """The provider has no such object (a forged or foreign id)."""

    status = 404
    code = "payment_object_not_found"
    title = "No such payment object"


class InvalidSignature(AppError):
    """A webhook whose signature does not verify (or is outside the time tolerance)."""

    status = 400
    code = "invalid_signature"
    title = "Invalid webhook signature"


@dataclass(frozen=True)
class PriceSpec:
    """A plan price as commerce knows it; `provider_ref` is None until created at the provider."""

    price_id: str  # our plan_prices.id
    plan_code: str
    plan_name: str
    currency: str
    amount_minor: int
    interval: Interval
    provider_ref: str | None = None


@dataclass(frozen=True)
class CheckoutSession:
    """A hosted checkout: where to send the viewer, and what came of it."""

    id: str
    url: str | None
    mode: Literal["subscription", "payment"]
    status: Literal["open", "complete", "expired"]
    payment_status: Literal["paid", "unpaid", "no_payment_required"]
    customer_ref: str | None
    client_reference_id: str | None  # our user id
    metadata: dict[str, str] = field(default_factory=dict)
    subscription_ref: str | None = None  # mode subscription, once complete
    payment_ref: str | None = None  # mode payment: the payment intent
    invoice_ref: str | None = None  # mode subscription: the first invoice
    currency: str | None = None
    amount_subtotal: int | None = None
    amount_tax: int | None = None
    amount_total: int | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class SubscriptionState:
    """A subscription as the provider holds it now."""

    id: str
    customer_ref: str
    status: SubscriptionStatus
    price_ref: str  # the (single) item's price id
    item_ref: str  # the (single) item's id, needed to change the price
    currency: str
    amount_minor: int
    interval: Interval
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool
    trial_end: datetime | None = None
    canceled_at: datetime | None = None
    ended_at: datetime | None = None
    latest_invoice_ref: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None


@dataclass(frozen=True)
class InvoiceLine:
    """One line of an invoice (a plan period, a proration, a title)."""

    description: str
    amount_minor: int
    quantity: int = 1
    period_start: datetime | None = None
    period_end: datetime | None = None
    proration: bool = False


@dataclass(frozen=True)
class TaxLine:
    """A tax the provider computed (e.g. VAT 20 %)."""

    description: str
    amount_minor: int
    rate_percent: str | None = None  # decimal as text, e.g. "20.0"
    inclusive: bool = False


@dataclass(frozen=True)
class InvoiceState:
    """An invoice as the provider holds it now."""

    id: str
    customer_ref: str
    status: Literal["draft", "open", "paid", "void", "uncollectible"]
    currency: str
    subtotal_minor: int
    tax_minor: int
    total_minor: int
    amount_paid_minor: int
    lines: tuple[InvoiceLine, ...]
    tax_lines: tuple[TaxLine, ...]
    created_at: datetime
    number: str | None = None
    subscription_ref: str | None = None
    payment_ref: str | None = None  # the payment intent that paid it
    paid_at: datetime | None = None
    billing_reason: str | None = None  # subscription_create | subscription_cycle | subscription_update...


@dataclass(frozen=True)
class ChargeState:
    """A charge (one card payment) as the provider holds it now."""

    id: str
    payment_ref: str | None  # its payment intent
    currency: str
    amount_minor: int
    amount_refunded_minor: int
    refunded: bool  # fully refunded
    disputed: bool


@dataclass(frozen=True)
class ProviderEvent:
    """A notification from the provider; only its id, type and object id are used, for routing.

    The object itself is always re-read from the provider (events arrive late, twice and out of order).
    """

    id: str
    type: str
    object_id: str | None
    object: dict[str, Any]
    created: datetime


class PaymentProvider(Protocol):
    """What commerce needs from a payment provider (Stripe, or the local sandbox)."""

    name: Literal["stripe", "sandbox"]

    async def ensure_customer(self, *, user_id: str, email: str, idempotency_key: str) -> str:
        """Create the provider's customer for an account; its id (called once per account)."""
        ...

    async def ensure_price(self, *, price: PriceSpec, idempotency_key: str) -> str:
        """The provider's price id for a plan price, created there when `provider_ref` is None."""
        ...

    async def create_subscription_checkout(
        self,
        *,
        customer_ref: str,
        price_ref: str,
        trial_days: int,
        client_reference_id: str,
        metadata: dict[str, str],
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> CheckoutSession:
        """A hosted checkout that starts a subscription (with a trial when trial_days > 0)."""
        ...

    async def create_payment_checkout(
        self,
        *,
        customer_ref: str,
        currency: str,
        amount_minor: int,
        description: str,
        client_reference_id: str,
        metadata: dict[str, str],
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> CheckoutSession:
        """A hosted checkout for one payment (a rental, a purchase, a pay-per-view ticket)."""
        ...

    async def portal_url(self, *, customer_ref: str, return_url: str) -> str:
        """A link to the provider's customer portal (cards, billing details)."""
        ...

    async def get_checkout(self, ref: str) -> CheckoutSession:
        """Re-read a checkout session."""
        ...

    async def get_subscription(self, ref: str) -> SubscriptionState:
        """Re-read a subscription."""
        ...

    async def change_price(
        self, *, subscription_ref: str, item_ref: str, price_ref: str, upgrade: bool, idempotency_key: str
    ) -> SubscriptionState:
        """Move a subscription to another price with proration (an upgrade is invoiced at once)."""
        ...

    async def set_cancel_at_period_end(
        self, *, subscription_ref: str, cancel: bool, idempotency_key: str
    ) -> SubscriptionState:
        """Cancel at the end of the paid period (True) or resume a pending cancellation (False)."""
        ...

    async def cancel_now(self, *, subscription_ref: str, idempotency_key: str) -> SubscriptionState:
        """End a subscription at once, without proration (a refunded or disputed charge, a duplicate).

        Ending one that has already ended answers its current state (a retry is harmless).
        """
        ...

    async def expire_checkout(self, ref: str) -> CheckoutSession:
        """Close an open checkout so it can no longer be paid; a complete or expired one is returned as is."""
        ...

    async def refund(self, *, payment_ref: str, idempotency_key: str) -> ChargeState:
        """Refund a payment in full (a duplicate purchase, a title that is gone); its charge afterwards."""
        ...

    async def get_invoice(self, ref: str) -> InvoiceState:
        """Re-read an invoice."""
        ...

    async def get_charge(self, ref: str) -> ChargeState:
        """Re-read a charge."""
        ...

    async def charge_for_payment(self, payment_ref: str) -> ChargeState | None:
        """The latest charge of a payment intent (None when it has none)."""
        ...
