"""SandboxProvider: commerce's PaymentProvider over the sandbox's objects (never in production)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Literal

from shared.payments.providers.base import (
    ChargeState,
    CheckoutSession,
    InvoiceState,
    PriceSpec,
    ProviderError,
    SubscriptionState,
)
from shared.payments.sandbox.cards import TEST_CARD
from shared.payments.sandbox.charges import apply_refund, charge_of
from shared.payments.sandbox.checkouts import expire_session, new_checkout
from shared.payments.sandbox.idempotency import idempotent
from shared.payments.sandbox.ids import new_id
from shared.payments.sandbox.portal import portal_token
from shared.payments.sandbox.price_changes import change_price
from shared.payments.sandbox.prices import price_copy
from shared.payments.sandbox.shapes import charge_state, checkout_state, invoice_state, subscription_state
from shared.payments.sandbox.store import Obj, external, insert_object, read_object, require_object
from shared.payments.sandbox.subscriptions import cancel_subscription_now, mark_cancel_at_period_end
from shared.payments.sandbox.times import now, to_unix
from shared.payments.sandbox.urls import PORTAL_PATH, base_url, checked_url

if TYPE_CHECKING:
    from shared.payments.sandbox.store import Conn
    from shared.settings import Settings


class SandboxProvider:
    """PaymentProvider over the sandbox_payment_objects table (never in production)."""

    name: Literal["stripe", "sandbox"] = "sandbox"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def ensure_customer(self, *, user_id: str, email: str, idempotency_key: str) -> str:
        """Create a sandbox customer (cus_sbx_...) with a working test card."""

        async def create(conn: Conn) -> Obj:
            customer_id = new_id("cus")
            data: Obj = {
                "id": customer_id,
                "object": "customer",
                "created": to_unix(now()),
                "email": email,
                "metadata": {"user_id": str(user_id)},
                "invoice_prefix": secrets.token_hex(4).upper(),
                "next_invoice_sequence": 1,
                "sandbox_card": {**TEST_CARD, "fails": False},
            }
            return await insert_object(conn, customer_id, "customer", data)

        # Only the account counts: a retry after an email change is still the same customer.
        params = {"user_id": str(user_id)}
        return str((await idempotent(idempotency_key, "ensure_customer", params, create))["id"])

    async def ensure_price(self, *, price: PriceSpec, idempotency_key: str) -> str:
        """The price's sandbox id (price_sbx_...), created once."""
        if price.provider_ref is not None:
            return price.provider_ref

        async def create(conn: Conn) -> Obj:
            price_id = new_id("price")
            data: Obj = {
                "id": price_id,
                "object": "price",
                "active": True,
                "created": to_unix(now()),
                "currency": price.currency.lower(),
                "unit_amount": price.amount_minor,
                "recurring": {"interval": price.interval, "interval_count": 1},
                "nickname": price.plan_name,
                "product": f"prod_sbx_{price.plan_code}",
                "metadata": {"price_id": price.price_id, "plan_code": price.plan_code},
            }
            return await insert_object(conn, price_id, "price", data)

        params = {"price_id": price.price_id, "amount": price.amount_minor, "currency": price.currency}
        return str((await idempotent(idempotency_key, "ensure_price", params, create))["id"])

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
        """A sandbox checkout session starting a subscription on the page served by the sandbox routes."""

        async def create(conn: Conn) -> Obj:
            await require_object(conn, customer_ref, "customer")
            price = await require_object(conn, price_ref, "price")
            first = 0 if trial_days > 0 else int(price["unit_amount"])
            interval = price["recurring"]["interval"]
            line = {
                "price": price_copy(price),
                "quantity": 1,
                "description": f"{price['nickname']} ({'yearly' if interval == 'year' else 'monthly'})",
                "amount_total": first,
            }
            return await new_checkout(
                conn,
                self.settings,
                mode="subscription",
                customer=customer_ref,
                currency=price["currency"],
                amount=first,
                line=line,
                client_reference_id=client_reference_id,
                metadata=metadata,
                success_url=success_url,
                cancel_url=cancel_url,
                extra={"subscription_data": {"trial_period_days": trial_days or None, "metadata": metadata}},
            )

        params = {
            "customer": customer_ref,
            "price": price_ref,
            "trial": trial_days,
            "metadata": metadata,
            "urls": [success_url, cancel_url],
            "ref": client_reference_id,
        }
        return checkout_state(await idempotent(idempotency_key, "subscription_checkout", params, create))

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
        """A sandbox checkout session for one payment."""
        if amount_minor <= 0:
            raise ProviderError("A payment must be of a positive amount.", code="invalid_amount")

        async def create(conn: Conn) -> Obj:
            await require_object(conn, customer_ref, "customer")
            line = {"price": None, "quantity": 1, "description": description, "amount_total": amount_minor}
            return await new_checkout(
                conn,
                self.settings,
                mode="payment",
                customer=customer_ref,
                currency=currency.lower(),
                amount=amount_minor,
                line=line,
                client_reference_id=client_reference_id,
                metadata=metadata,
                success_url=success_url,
                cancel_url=cancel_url,
                extra={"payment_intent_data": {"description": description}},
            )

        params = {
            "customer": customer_ref,
            "currency": currency,
            "amount": amount_minor,
            "what": description,
            "metadata": metadata,
            "urls": [success_url, cancel_url],
            "ref": client_reference_id,
        }
        return checkout_state(await idempotent(idempotency_key, "payment_checkout", params, create))

    async def portal_url(self, *, customer_ref: str, return_url: str) -> str:
        """A signed, expiring link to the sandbox's portal page for this customer."""
        await read_object(customer_ref, "customer")
        token = portal_token(self.settings, customer_ref=customer_ref, return_url=checked_url(return_url))
        return f"{base_url(self.settings)}{PORTAL_PATH}{token}"

    async def get_checkout(self, ref: str) -> CheckoutSession:
        """Re-read a checkout session."""
        return checkout_state(await read_object(ref, "checkout_session"))

    async def get_subscription(self, ref: str) -> SubscriptionState:
        """Re-read a subscription."""
        return subscription_state(await read_object(ref, "subscription"))

    async def change_price(
        self, *, subscription_ref: str, item_ref: str, price_ref: str, upgrade: bool, idempotency_key: str
    ) -> SubscriptionState:
        """Move to another price: an upgrade pays the prorated difference at once, a downgrade waits."""

        async def change(conn: Conn) -> Obj:
            return await change_price(
                conn, subscription_ref, item_ref=item_ref, price_ref=price_ref, upgrade=upgrade, at=now()
            )

        params = {"sub": subscription_ref, "item": item_ref, "price": price_ref, "upgrade": upgrade}
        return subscription_state(await idempotent(idempotency_key, "change_price", params, change))

    async def set_cancel_at_period_end(
        self, *, subscription_ref: str, cancel: bool, idempotency_key: str
    ) -> SubscriptionState:
        """Cancel at period end, or resume a pending cancellation."""

        async def apply(conn: Conn) -> Obj:
            return await mark_cancel_at_period_end(conn, subscription_ref, cancel=cancel, at=now())

        params = {"sub": subscription_ref, "cancel": cancel}
        return subscription_state(await idempotent(idempotency_key, "cancel_at_period_end", params, apply))

    async def cancel_now(self, *, subscription_ref: str, idempotency_key: str) -> SubscriptionState:
        """End a subscription at once, unprorated (customer.subscription.deleted); an ended one as is."""

        async def apply(conn: Conn) -> Obj:
            return await cancel_subscription_now(conn, subscription_ref, at=now())

        params = {"sub": subscription_ref}
        return subscription_state(await idempotent(idempotency_key, "cancel_now", params, apply))

    async def expire_checkout(self, ref: str) -> CheckoutSession:
        """Expire an open checkout (checkout.session.expired); a complete or expired one is returned as is."""
        async with external() as conn:
            session = await require_object(conn, ref, "checkout_session", lock=True)
            if session["status"] != "open":
                return checkout_state(session)
            return checkout_state(await expire_session(conn, session, now()))

    async def refund(self, *, payment_ref: str, idempotency_key: str) -> ChargeState:
        """Refund what remains of a payment (charge.refunded); a fully refunded one answers its charge."""

        async def apply(conn: Conn) -> Obj:
            charge = await charge_of(conn, payment_ref)
            if charge["refunded"] or int(charge["amount_refunded"]) >= int(charge["amount"]):
                return charge
            return await apply_refund(conn, charge, amount_minor=None, at=now())

        params = {"payment": payment_ref}
        return charge_state(await idempotent(idempotency_key, "refund", params, apply))

    async def get_invoice(self, ref: str) -> InvoiceState:
        """Re-read an invoice."""
        return invoice_state(await read_object(ref, "invoice"))

    async def get_charge(self, ref: str) -> ChargeState:
        """Re-read a charge."""
        return charge_state(await read_object(ref, "charge"))

    async def charge_for_payment(self, payment_ref: str) -> ChargeState | None:
        """The latest charge of a payment intent."""
        async with external() as conn:
            intent = await require_object(conn, payment_ref, "payment_intent")
            if not intent.get("latest_charge"):
                return None
            return charge_state(await require_object(conn, intent["latest_charge"], "charge"))
