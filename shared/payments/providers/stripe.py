"""The Stripe payment provider: Checkout, the customer portal and subscription changes through the stripe SDK.

It speaks API version 2026-10-28.endive (the SDK's pinned version) with the SDK's async methods over
httpx, one client per event loop and configuration (connections are reused on a warm function), two
network retries (every write carries our idempotency key, so a retry never does anything twice).
Stripe's objects become the records of `base`: amounts as integer minor units, currencies upper-case,
times aware UTC. Fields moved by recent API versions are read where they live now (a subscription's
period on its item, an invoice's subscription under `parent`, its payment under `payments`), falling
back to the old places. Stripe's failures become ours: card problems ProviderRefused (402), unknown
objects ObjectNotFound (404), everything else ProviderError (502); the secret key never appears in a
message or a log line. An object that exists but is nothing we sell (a checkout in mode "setup", a
subscription billed by the week or without items, a status this code does not know) is ObjectNotFound
too: a webhook about it is recorded as ignored and answered 200, where a ProviderError would answer 503
and have Stripe retry it for days.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from shared.infra.loop_local import LoopLocal
from shared.payments.providers.base import (
    ChargeState,
    CheckoutSession,
    InvoiceLine,
    InvoiceState,
    ObjectNotFound,
    PriceSpec,
    ProviderError,
    ProviderRefused,
    SubscriptionState,
    TaxLine,
)

if TYPE_CHECKING:
    import stripe

    from shared.settings import Settings

log = logging.getLogger("cinema.payments.stripe")
T = TypeVar("T")
MAX_KEY = 255  # Stripe's limit on an Idempotency-Key
TIMEOUT_SECONDS = 20.0  # well inside a function's time limit; the SDK's default is 80 s
_SUBSCRIPTION_STATUSES = {
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "unpaid",
    "canceled",
    "paused",
}


# A subscription that has ended: Stripe answers 404 resource_missing to cancelling it again.
_ENDED_STATUSES = ("canceled", "incomplete_expired")


class _Rejected(ProviderError):
    """Stripe answered 400 invalid_request_error (not a missing object): the caller may check why."""

    def __init__(self, detail: str, *, stripe_code: str | None) -> None:
        super().__init__(detail)
        self.stripe_code = stripe_code


class _Clients:
    """The StripeClients of one event loop, one per (key, base address); closed together on reset."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str | None], tuple[stripe.StripeClient, stripe.HTTPXClient]] = {}

    def get(self, api_key: str, api_base: str | None) -> stripe.StripeClient:
        """The client for this configuration, created on first use."""
        import stripe

        found = self._clients.get((api_key, api_base))
        if found is None:
            http_client = stripe.HTTPXClient(timeout=TIMEOUT_SECONDS)
            client = stripe.StripeClient(
                api_key,
                http_client=http_client,
                max_network_retries=2,
                base_addresses={"api": api_base} if api_base else {},
            )
            found = self._clients[(api_key, api_base)] = (client, http_client)
        return found[0]

    async def close(self) -> None:
        """Close every client's connections."""
        clients, self._clients = list(self._clients.values()), {}
        for _, http_client in clients:
            await http_client.close_async()  # type: ignore[no-untyped-call]


async def _new_clients() -> _Clients:
    return _Clients()


_clients: LoopLocal[_Clients] = LoopLocal(_new_clients)


def _key(idempotency_key: str, suffix: str) -> str:
    """A key derived from the caller's for one of several requests of an operation (<= 255 chars)."""
    derived = f"{idempotency_key}:{suffix}"
    if len(derived) <= MAX_KEY:
        return derived
    return f"{hashlib.sha256(idempotency_key.encode()).hexdigest()}:{suffix}"[:MAX_KEY]


def _time(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if isinstance(value, int) else None


def _required_time(value: Any, what: str) -> datetime:
    moment = _time(value)
    if moment is None:
        raise ProviderError(f"Stripe sent no {what}.")
    return moment


def _ref(value: Any) -> str | None:
    """An expandable field's id, whether Stripe sent the id or the expanded object."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _metadata(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _currency(value: Any) -> str:
    return str(value).upper()


def _plain(obj: Any) -> dict[str, Any]:
    """A StripeObject as plain nested dicts (what the mappers read)."""
    to_dict = getattr(obj, "to_dict", None)
    return cast(dict[str, Any], to_dict() if callable(to_dict) else dict(obj))


def checkout_from_stripe(session: Mapping[str, Any]) -> CheckoutSession:
    """Our record of a Checkout Session object."""
    mode = session.get("mode")
    if mode not in ("subscription", "payment"):
        # e.g. mode "setup" (saving a card from the Dashboard): nothing we sell.
        raise ObjectNotFound(f"Checkout session in mode {mode!r} is not one of ours.")
    totals = session.get("total_details") or {}
    currency = session.get("currency")
    return CheckoutSession(
        id=str(session["id"]),
        url=session.get("url"),
        mode=mode,
        status=session.get("status") or "open",
        payment_status=session.get("payment_status") or "unpaid",
        customer_ref=_ref(session.get("customer")),
        client_reference_id=session.get("client_reference_id"),
        metadata=_metadata(session.get("metadata")),
        subscription_ref=_ref(session.get("subscription")),
        payment_ref=_ref(session.get("payment_intent")),
        invoice_ref=_ref(session.get("invoice")),
        currency=_currency(currency) if currency else None,
        amount_subtotal=session.get("amount_subtotal"),
        amount_tax=totals.get("amount_tax"),
        amount_total=session.get("amount_total"),
        created_at=_time(session.get("created")),
    )


def subscription_from_stripe(subscription: Mapping[str, Any]) -> SubscriptionState:
    """Our record of a Subscription object (its single item's price and period)."""
    items = (subscription.get("items") or {}).get("data") or []
    if not items:
        raise ObjectNotFound("Subscription without items is not one of ours.")
    item = items[0]
    price = item.get("price") or {}
    recurring = price.get("recurring") or {}
    interval = recurring.get("interval")
    if interval not in ("month", "year"):
        raise ObjectNotFound(f"Subscription billed by interval {interval!r} is not one of ours.")
    status = subscription.get("status")
    if status not in _SUBSCRIPTION_STATUSES:
        raise ObjectNotFound(f"Subscription in unknown status {status!r}.")
    # Since 2025-03-31 the period lives on the item; older versions had it on the subscription.
    start = item.get("current_period_start", subscription.get("current_period_start"))
    end = item.get("current_period_end", subscription.get("current_period_end"))
    period_end = _required_time(end, "current_period_end")
    cancel_at = _time(subscription.get("cancel_at"))
    customer = _ref(subscription.get("customer"))
    if customer is None:
        raise ProviderError("Stripe sent a subscription without a customer.")
    return SubscriptionState(
        id=str(subscription["id"]),
        customer_ref=customer,
        status=status,
        price_ref=str(_ref(price) or ""),
        item_ref=str(item["id"]),
        currency=_currency(price.get("currency") or subscription.get("currency")),
        amount_minor=int(price.get("unit_amount") or 0) * int(item.get("quantity") or 1),
        interval=interval,
        current_period_start=_required_time(start, "current_period_start"),
        current_period_end=period_end,
        # A cancellation dated exactly at period end (what the portal may set) is the same thing.
        cancel_at_period_end=bool(subscription.get("cancel_at_period_end")) or cancel_at == period_end,
        trial_end=_time(subscription.get("trial_end")),
        canceled_at=_time(subscription.get("canceled_at")),
        ended_at=_time(subscription.get("ended_at")),
        latest_invoice_ref=_ref(subscription.get("latest_invoice")),
        metadata=_metadata(subscription.get("metadata")),
        created_at=_time(subscription.get("created")),
    )


def _line_from_stripe(line: Mapping[str, Any]) -> InvoiceLine:
    parent = line.get("parent") or {}
    details = parent.get("subscription_item_details") or parent.get("invoice_item_details") or {}
    period = line.get("period") or {}
    return InvoiceLine(
        description=str(line.get("description") or ""),
        amount_minor=int(line.get("amount") or 0),
        quantity=int(line.get("quantity") or 1),
        period_start=_time(period.get("start")),
        period_end=_time(period.get("end")),
        proration=bool(details.get("proration", line.get("proration", False))),
    )


def invoice_from_stripe(
    invoice: Mapping[str, Any],
    *,
    lines: list[Mapping[str, Any]] | None = None,
    tax_rates: Mapping[str, Mapping[str, Any]] | None = None,
) -> InvoiceState:
    """Our record of an Invoice object; `lines` when paged separately, `tax_rates` by id for the taxes."""
    tax_rates = tax_rates or {}
    parent = invoice.get("parent") or {}
    subscription = (parent.get("subscription_details") or {}).get("subscription") or invoice.get(
        "subscription"
    )
    taxes: list[TaxLine] = []
    for tax in _taxes(invoice):
        rate = tax_rates.get(tax["rate_ref"] or "") or {}
        percentage = rate.get("percentage")
        taxes.append(
            TaxLine(
                description=str(rate.get("display_name") or "Tax"),
                amount_minor=tax["amount"],
                rate_percent=str(percentage) if percentage is not None else None,
                inclusive=tax["inclusive"],
            )
        )
    status = invoice.get("status")
    if status not in ("draft", "open", "paid", "void", "uncollectible"):
        raise ObjectNotFound(f"Invoice in unknown status {status!r}.")
    customer = _ref(invoice.get("customer"))
    if customer is None:
        raise ProviderError("Stripe sent an invoice without a customer.")
    transitions = invoice.get("status_transitions") or {}
    source = lines if lines is not None else (invoice.get("lines") or {}).get("data") or []
    return InvoiceState(
        id=str(invoice["id"]),
        customer_ref=customer,
        status=status,
        currency=_currency(invoice.get("currency")),
        subtotal_minor=int(invoice.get("subtotal") or 0),
        tax_minor=sum(tax.amount_minor for tax in taxes),
        total_minor=int(invoice.get("total") or 0),
        amount_paid_minor=int(invoice.get("amount_paid") or 0),
        lines=tuple(_line_from_stripe(line) for line in source),
        tax_lines=tuple(taxes),
        created_at=_required_time(invoice.get("created"), "invoice creation time"),
        number=invoice.get("number"),
        subscription_ref=_ref(subscription),
        payment_ref=_invoice_payment_ref(invoice),
        paid_at=_time(transitions.get("paid_at")),
        billing_reason=invoice.get("billing_reason"),
    )


def _taxes(invoice: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The invoice's taxes as {amount, inclusive, rate_ref}, from total_taxes (or the pre-2025 field)."""
    current = invoice.get("total_taxes")
    if current is not None:
        return [
            {
                "amount": int(tax.get("amount") or 0),
                "inclusive": tax.get("tax_behavior") == "inclusive",
                "rate_ref": _ref((tax.get("tax_rate_details") or {}).get("tax_rate")),
            }
            for tax in current
        ]
    return [
        {
            "amount": int(tax.get("amount") or 0),
            "inclusive": bool(tax.get("inclusive")),
            "rate_ref": _ref(tax.get("tax_rate")),
        }
        for tax in invoice.get("total_tax_amounts") or []
    ]


def tax_rate_refs(invoice: Mapping[str, Any]) -> set[str]:
    """The tax rate ids an invoice's taxes refer to."""
    return {tax["rate_ref"] for tax in _taxes(invoice) if tax["rate_ref"]}


def _invoice_payment_ref(invoice: Mapping[str, Any]) -> str | None:
    """The payment intent that paid the invoice (its paid invoice payment, else the default one)."""
    payments = (invoice.get("payments") or {}).get("data") or []
    ordered = sorted(payments, key=lambda p: (p.get("status") != "paid", not p.get("is_default")))
    for payment in ordered:
        ref = _ref((payment.get("payment") or {}).get("payment_intent"))
        if ref:
            return ref
    return _ref(invoice.get("payment_intent"))


def charge_from_stripe(charge: Mapping[str, Any]) -> ChargeState:
    """Our record of a Charge object."""
    return ChargeState(
        id=str(charge["id"]),
        payment_ref=_ref(charge.get("payment_intent")),
        currency=_currency(charge.get("currency")),
        amount_minor=int(charge.get("amount") or 0),
        amount_refunded_minor=int(charge.get("amount_refunded") or 0),
        refunded=bool(charge.get("refunded")),
        disputed=bool(charge.get("disputed")),
    )


class StripeProvider:
    """PaymentProvider over the Stripe API."""

    name: Literal["stripe", "sandbox"] = "stripe"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def _client(self) -> stripe.StripeClient:
        key = self._settings.stripe_secret_key
        if not key:
            raise ProviderError("Stripe is not configured.", code="payments_not_configured")
        base = self._settings.stripe_api_base
        return (await _clients.get()).get(key, str(base).rstrip("/") if base else None)

    async def _call(
        self,
        operation: str,
        call: Callable[[stripe.StripeClient], Awaitable[T]],
        *,
        may_be_done: bool = False,
    ) -> T:
        """Run one SDK call, turning Stripe's errors into ours.

        `may_be_done`: a rejection may only mean the thing is already done (the caller re-reads and
        decides), so it is logged quietly and raised as _Rejected (a ProviderError).
        """
        import stripe

        client = await self._client()
        try:
            return await call(client)
        except stripe.CardError as error:
            log.info("stripe %s refused: %s", operation, error.code)
            raise ProviderRefused(
                error.user_message or "The card was declined.", code="payment_refused"
            ) from None
        except stripe.InvalidRequestError as error:
            if error.code == "resource_missing":
                raise ObjectNotFound(f"Stripe has no such object ({operation}).") from None
            log.log(
                logging.INFO if may_be_done else logging.ERROR,
                "stripe %s rejected: status=%s code=%s param=%s request=%s",
                operation,
                error.http_status,
                error.code,
                error.param,
                error.request_id,
            )
            raise _Rejected(f"Stripe rejected the request ({operation}).", stripe_code=error.code) from None
        except stripe.AuthenticationError as error:
            # Its message quotes part of the key: log the status only.
            log.error("stripe %s: authentication failed (status %s)", operation, error.http_status)
            raise ProviderError("Stripe rejected our credentials.") from None
        except stripe.StripeError as error:
            log.warning(
                "stripe %s failed: %s status=%s code=%s request=%s",
                operation,
                type(error).__name__,
                error.http_status,
                error.code,
                error.request_id,
            )
            raise ProviderError(f"Stripe did not answer ({operation}).") from None

    async def ensure_customer(self, *, user_id: str, email: str, idempotency_key: str) -> str:
        """Create the Stripe customer for an account; its id."""
        customer = await self._call(
            "create customer",
            lambda c: c.v1.customers.create_async(
                {"email": email, "metadata": {"user_id": user_id}},
                options={"idempotency_key": idempotency_key},
            ),
        )
        return str(customer.id)

    async def ensure_price(self, *, price: PriceSpec, idempotency_key: str) -> str:
        """The Stripe price for a plan price: the known ref, the one holding our lookup key, or a new one."""
        if price.provider_ref:
            return price.provider_ref
        lookup_key = f"cinema_{price.price_id}"
        found = await self._call(
            "find price",
            lambda c: c.v1.prices.list_async({"lookup_keys": [lookup_key], "limit": 1}),
        )
        existing = found.data[0] if found.data else None
        # A price created by an earlier attempt whose ref was never recorded (the same plan price).
        if existing is not None and _matches(_plain(existing), price):
            return str(existing.id)
        created = await self._call(
            "create price",
            lambda c: c.v1.prices.create_async(
                {
                    "currency": price.currency.lower(),
                    "unit_amount": price.amount_minor,
                    "recurring": {"interval": price.interval},
                    "product_data": {"name": price.plan_name, "metadata": {"plan_code": price.plan_code}},
                    "lookup_key": lookup_key,
                    # A stale holder of the key (another amount) must not block the real price.
                    "transfer_lookup_key": existing is not None,
                    "metadata": {"price_id": price.price_id, "plan_code": price.plan_code},
                },
                options={"idempotency_key": _key(idempotency_key, "price")},
            ),
        )
        return str(created.id)

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
        """A hosted Checkout in subscription mode (a trial when trial_days > 0)."""
        subscription_data: stripe.params.checkout.SessionCreateParamsSubscriptionData = {"metadata": metadata}
        if trial_days > 0:
            subscription_data["trial_period_days"] = trial_days
        params: stripe.params.checkout.SessionCreateParams = {
            "mode": "subscription",
            "customer": customer_ref,
            "client_reference_id": client_reference_id,
            "line_items": [{"price": price_ref, "quantity": 1}],
            "subscription_data": subscription_data,
            "metadata": metadata,
            "success_url": success_url,
            "cancel_url": cancel_url,
            "allow_promotion_codes": False,
        }
        session = await self._call(
            "create checkout",
            lambda c: c.v1.checkout.sessions.create_async(
                params, options={"idempotency_key": idempotency_key}
            ),
        )
        return checkout_from_stripe(_plain(session))

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
        """A hosted Checkout for one payment of an ad-hoc price (the title and its amount)."""
        session = await self._call(
            "create checkout",
            lambda c: c.v1.checkout.sessions.create_async(
                {
                    "mode": "payment",
                    "customer": customer_ref,
                    "client_reference_id": client_reference_id,
                    "line_items": [
                        {
                            "quantity": 1,
                            "price_data": {
                                "currency": currency.lower(),
                                "unit_amount": amount_minor,
                                "product_data": {"name": description},
                            },
                        }
                    ],
                    "payment_intent_data": {"metadata": metadata, "description": description},
                    "metadata": metadata,
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                    "allow_promotion_codes": False,
                },
                options={"idempotency_key": idempotency_key},
            ),
        )
        return checkout_from_stripe(_plain(session))

    async def portal_url(self, *, customer_ref: str, return_url: str) -> str:
        """A Billing Portal session's URL (short-lived, single use)."""
        session = await self._call(
            "create portal session",
            lambda c: c.v1.billing_portal.sessions.create_async(
                {"customer": customer_ref, "return_url": return_url}
            ),
        )
        return str(session.url)

    async def get_checkout(self, ref: str) -> CheckoutSession:
        """Re-read a Checkout Session."""
        session = await self._call("read checkout", lambda c: c.v1.checkout.sessions.retrieve_async(ref))
        return checkout_from_stripe(_plain(session))

    async def get_subscription(self, ref: str) -> SubscriptionState:
        """Re-read a subscription."""
        subscription = await self._call("read subscription", lambda c: c.v1.subscriptions.retrieve_async(ref))
        return subscription_from_stripe(_plain(subscription))

    async def change_price(
        self, *, subscription_ref: str, item_ref: str, price_ref: str, upgrade: bool, idempotency_key: str
    ) -> SubscriptionState:
        """Move to another price (an upgrade invoiced at once, applied once paid; else a credit)."""
        params: stripe.params.SubscriptionUpdateParams = {
            "items": [{"id": item_ref, "price": price_ref}],
            "proration_behavior": "always_invoice" if upgrade else "create_prorations",
        }
        if upgrade:
            params["payment_behavior"] = "pending_if_incomplete"
        subscription = await self._call(
            "change subscription price",
            lambda c: c.v1.subscriptions.update_async(
                subscription_ref, params, options={"idempotency_key": idempotency_key}
            ),
        )
        state = _plain(subscription)
        if state.get("pending_update"):
            # Stripe kept the old price because the proration invoice was not paid.
            raise ProviderRefused("The payment for the new plan was declined.", code="payment_refused")
        return subscription_from_stripe(state)

    async def set_cancel_at_period_end(
        self, *, subscription_ref: str, cancel: bool, idempotency_key: str
    ) -> SubscriptionState:
        """Cancel at period end, or resume a pending cancellation."""
        subscription = await self._call(
            "cancel subscription" if cancel else "resume subscription",
            lambda c: c.v1.subscriptions.update_async(
                subscription_ref,
                {"cancel_at_period_end": cancel},
                options={"idempotency_key": idempotency_key},
            ),
        )
        return subscription_from_stripe(_plain(subscription))

    async def cancel_now(self, *, subscription_ref: str, idempotency_key: str) -> SubscriptionState:
        """End a subscription at once (no proration, no final invoice); an ended one answers its state."""
        try:
            subscription = await self._call(
                "cancel subscription now",
                lambda c: c.v1.subscriptions.cancel_async(
                    subscription_ref,
                    {"prorate": False, "invoice_now": False},
                    options={"idempotency_key": idempotency_key},
                ),
                may_be_done=True,
            )
        except (ObjectNotFound, _Rejected):
            # Stripe answers 404 resource_missing for a subscription that has already ended (it can still
            # be read): a retry, or a cancellation that raced ours. A truly unknown id stays not found.
            current = await self.get_subscription(subscription_ref)
            if current.status in _ENDED_STATUSES:
                return current
            log.error("stripe refused to cancel the %s subscription %s", current.status, subscription_ref)
            raise
        return subscription_from_stripe(_plain(subscription))

    async def expire_checkout(self, ref: str) -> CheckoutSession:
        """Expire an open Checkout Session; a complete or expired one is re-read and returned as is."""
        try:
            session = await self._call(
                "expire checkout",
                lambda c: c.v1.checkout.sessions.expire_async(ref),
                may_be_done=True,
            )
        except _Rejected:
            # Only open sessions can be expired: one that was paid (or expired) meanwhile answers 400.
            current = await self.get_checkout(ref)
            if current.status != "open":
                return current
            log.error("stripe refused to expire the open checkout %s", ref)
            raise
        return checkout_from_stripe(_plain(session))

    async def refund(self, *, payment_ref: str, idempotency_key: str) -> ChargeState:
        """Refund what remains of a payment intent; its charge afterwards (already refunded: the charge)."""
        try:
            created = await self._call(
                "refund payment",
                lambda c: c.v1.refunds.create_async(
                    {"payment_intent": payment_ref},
                    options={"idempotency_key": idempotency_key},
                ),
                may_be_done=True,
            )
        except _Rejected as error:
            # charge_already_refunded: a retry with another key, or a refund made in the Dashboard.
            charge = await self.charge_for_payment(payment_ref)
            if charge is not None and charge.refunded:
                return charge
            log.error("stripe refused to refund %s (code %s)", payment_ref, error.stripe_code)
            raise
        charge_ref = _ref(_plain(created).get("charge"))
        if charge_ref:
            return await self.get_charge(charge_ref)
        charge = await self.charge_for_payment(payment_ref)
        if charge is None:
            raise ProviderError("Stripe refunded a payment that has no charge.")
        return charge

    async def get_invoice(self, ref: str) -> InvoiceState:
        """Re-read an invoice with its payments, every line and its tax rates."""
        invoice = _plain(
            await self._call(
                "read invoice", lambda c: c.v1.invoices.retrieve_async(ref, {"expand": ["payments"]})
            )
        )
        lines: list[Mapping[str, Any]] | None = None
        embedded = invoice.get("lines") or {}
        if embedded.get("has_more"):
            lines = await self._all_lines(ref)
        rates: dict[str, Mapping[str, Any]] = {}
        for rate_ref in sorted(tax_rate_refs(invoice)):
            try:
                rates[rate_ref] = _plain(await self._call("read tax rate", _tax_rate(rate_ref)))
            except ObjectNotFound:
                log.warning("stripe invoice %s names a missing tax rate %s", ref, rate_ref)
        return invoice_from_stripe(invoice, lines=lines, tax_rates=rates)

    async def _all_lines(self, ref: str) -> list[Mapping[str, Any]]:
        """Every line of a long invoice (the invoice object embeds the first ten)."""
        lines: list[Mapping[str, Any]] = []
        while True:
            params: stripe.params.InvoiceLineItemListParams = {"limit": 100}
            if lines:
                params["starting_after"] = str(lines[-1]["id"])
            page = await self._call("read invoice lines", _lines_page(ref, params))
            lines.extend(_plain(line) for line in page.data)
            if not page.has_more or not page.data:
                return lines

    async def get_charge(self, ref: str) -> ChargeState:
        """Re-read a charge."""
        charge = await self._call("read charge", lambda c: c.v1.charges.retrieve_async(ref))
        return charge_from_stripe(_plain(charge))

    async def charge_for_payment(self, payment_ref: str) -> ChargeState | None:
        """The latest charge of a payment intent (None before any)."""
        intent = await self._call(
            "read payment",
            lambda c: c.v1.payment_intents.retrieve_async(payment_ref, {"expand": ["latest_charge"]}),
        )
        charge = _plain(intent).get("latest_charge")
        if not charge:
            return None
        if isinstance(charge, str):  # not expanded after all
            return await self.get_charge(charge)
        return charge_from_stripe(_plain(charge))


def _tax_rate(ref: str) -> Callable[[stripe.StripeClient], Awaitable[stripe.TaxRate]]:
    """Read one tax rate (a closure: the loop variable must not be shared)."""

    def call(client: stripe.StripeClient) -> Awaitable[stripe.TaxRate]:
        return client.v1.tax_rates.retrieve_async(ref)

    return call


def _lines_page(
    ref: str, params: stripe.params.InvoiceLineItemListParams
) -> Callable[[stripe.StripeClient], Awaitable[stripe.ListObject[stripe.InvoiceLineItem]]]:
    """One page of an invoice's lines (a closure over this page's params)."""

    def call(client: stripe.StripeClient) -> Awaitable[stripe.ListObject[stripe.InvoiceLineItem]]:
        return client.v1.invoices.line_items.list_async(ref, params)

    return call


def _matches(existing: Mapping[str, Any], price: PriceSpec) -> bool:
    recurring = existing.get("recurring") or {}
    return (
        str(existing.get("currency", "")).upper() == price.currency.upper()
        and existing.get("unit_amount") == price.amount_minor
        and recurring.get("interval") == price.interval
        and bool(existing.get("active"))
    )


__all__ = [
    "StripeProvider",
    "charge_from_stripe",
    "checkout_from_stripe",
    "invoice_from_stripe",
    "subscription_from_stripe",
]
