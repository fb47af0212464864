"""The local sandbox payment provider: Stripe-shaped objects in our own database, a checkout page of our own.

With no Stripe account (`make dev`) commerce runs against this. It behaves like Stripe where commerce can
tell: customers, prices, hosted checkout sessions (completed or declined by a person on the page served by
shared/payments/sandbox_routes.py), subscriptions with trials, renewals, proration and cancellation at
period end, invoices, payment intents, charges, refunds and disputes. Every change records Stripe-shaped
events (rows of kind "event"); `deliver_pending` feeds them to shared.payments.events.process, the very
code Stripe's webhooks reach, and `tick` is the sandbox's clock (renewals, period ends, expiring sessions).

It is an external system: its writes commit on a connection of its own (outside the request pool), never
with the request that called it, exactly as a Stripe call cannot be rolled back; the events a call
records are delivered once the calling request commits, as Stripe's webhooks arrive after its answer.
Every write honours its idempotency key: the first answer is stored under the key (kind "idempotency")
and replayed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import logging
import secrets
import time
from calendar import monthrange
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit
from uuid import UUID

from shared.errors import Conflict, NotFound
from shared.payments.providers.base import (
    ChargeState,
    CheckoutSession,
    InvoiceLine,
    InvoiceState,
    ObjectNotFound,
    PriceSpec,
    ProviderError,
    ProviderEvent,
    ProviderRefused,
    SubscriptionState,
)

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from shared.settings import Settings

    Conn = AsyncConnection[Any]

logger = logging.getLogger("cinema.payments.sandbox")

Obj = dict[str, Any]
Outcome = Literal["paid", "failed"]

CHECKOUT_PATH = "/api/v1/payments/sandbox/checkout/"
PORTAL_PATH = "/api/v1/payments/sandbox/portal/"
CHECKOUT_LIFETIME = timedelta(hours=24)  # Stripe's default expiry of an unfinished session
PORTAL_LIFETIME = timedelta(hours=1)
MAX_DELIVERY_ATTEMPTS = 10  # a poisoned event stops being retried; it stays visible in the table
TEST_CARD = {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034}
FAILING_LAST4 = "0341"  # Stripe's test card that attaches but declines every charge
LIVE_STATUSES = ("trialing", "active", "past_due")


# --- small helpers ----------------------------------------------------------------------------------------


def _now() -> datetime:
    from shared.payments.clock import now

    return now()


def _ts(at: datetime) -> int:
    return int(at.timestamp())


def _dt(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(int(value), UTC)


def _need_dt(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value), UTC)


def _new_id(prefix: str, hex_chars: int = 24) -> str:
    return f"{prefix}_sbx_{secrets.token_hex(hex_chars // 2)}"


_event_counter = itertools.count()


def _event_id() -> str:
    # Sortable within a process (time, then a counter): equal creation timestamps keep the emission order.
    return f"evt_sbx_{time.time_ns():016x}{next(_event_counter) % 0x10000:04x}{secrets.token_hex(4)}"


def _add_months(moment: datetime, months: int) -> datetime:
    """The same day and time `months` later, clamped to the month's last day (Jan 31 + 1 = Feb 28/29)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, monthrange(year, month)[1]))


def _period_end(anchor: datetime, start: datetime, interval: str) -> datetime:
    """The first billing date after `start`, counted from the anchor (so Jan 31 bills Feb 28, then Mar 31)."""
    step = 12 if interval == "year" else 1
    elapsed = (start.year - anchor.year) * 12 + start.month - anchor.month
    k = max(1, elapsed // step)
    end = _add_months(anchor, k * step)
    while end <= start:
        k += 1
        end = _add_months(anchor, k * step)
    return end


def _checked_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ProviderError("Checkout return URLs must be absolute http(s) URLs.", code="invalid_return_url")
    return url


def _base_url(settings: Settings) -> str:
    return str(settings.public_base_url).rstrip("/")


def _price_copy(price: Obj) -> Obj:
    return {
        key: price[key]
        for key in (
            "id",
            "object",
            "currency",
            "unit_amount",
            "recurring",
            "nickname",
            "product",
            "metadata",
            "active",
        )
    }


def _card_fails(customer: Obj) -> bool:
    return bool(customer.get("sandbox_card", {}).get("fails"))


# --- rows -------------------------------------------------------------------------------------------------

# The events recorded inside the current _external() block (None outside one).
_emitted: ContextVar[list[str] | None] = ContextVar("sandbox_emitted", default=None)


@asynccontextmanager
async def _external() -> AsyncIterator[Conn]:
    """A transaction on a connection of the sandbox's own, committed when the block ends.

    Not a pooled one: a request that holds a pooled connection while it waits on the sandbox must not
    also wait for a second one (parallel requests would starve the pool; Stripe never takes one). Once
    committed, the events it recorded are delivered after the calling request commits (at once outside
    a request), like webhooks following Stripe's answer.
    """
    import psycopg

    from shared.infra.db import after_commit, connection_kwargs, database_url, in_transaction
    from shared.settings import get_settings

    settings = get_settings()
    emitted: list[str] = []
    token = _emitted.set(emitted)
    try:
        async with (
            await psycopg.AsyncConnection.connect(
                database_url(settings), **connection_kwargs(settings)
            ) as conn,
            conn.transaction(),
        ):
            yield conn
    finally:
        _emitted.reset(token)
    if emitted and in_transaction():
        await after_commit(_deliver_after_commit)


async def _deliver_after_commit() -> None:
    """Deliver what the sandbox recorded for a request, in a transaction of its own (or at the next tick)."""
    from shared.infra.db import standalone
    from shared.settings import get_settings

    try:
        async with standalone() as conn:
            await deliver_pending(conn, settings=get_settings())
    except Exception:
        logger.exception("sandbox events not delivered now; the next maintenance tick retries them")


async def _load(conn: Conn, object_id: str, kind: str, *, lock: bool = False) -> Obj | None:
    from shared.infra.db import fetch_one

    query = "select data from public.sandbox_payment_objects where id = %s and kind = %s"
    row = await fetch_one(conn, query + (" for update" if lock else ""), (object_id, kind))
    return None if row is None else dict(row["data"])


async def _require(conn: Conn, object_id: str, kind: str, *, lock: bool = False) -> Obj:
    found = await _load(conn, object_id, kind, lock=lock)
    if found is None:
        raise ObjectNotFound(f"The sandbox has no {kind.replace('_', ' ')} {object_id!r}.")
    return found


async def _insert(conn: Conn, object_id: str, kind: str, data: Obj) -> Obj:
    from psycopg.types.json import Jsonb

    # clock_timestamp(), not now(): rows written in one transaction keep their order (events rely on it).
    await conn.execute(
        """insert into public.sandbox_payment_objects (id, kind, data, created_at)
           values (%s, %s, %s, clock_timestamp())""",
        (object_id, kind, Jsonb(data)),
    )
    return data


async def _save(conn: Conn, data: Obj) -> Obj:
    from psycopg.types.json import Jsonb

    await conn.execute(
        "update public.sandbox_payment_objects set data = %s where id = %s", (Jsonb(data), data["id"])
    )
    return data


async def _emit(conn: Conn, event_type: str, obj: Obj, at: datetime) -> str:
    """Record a Stripe-shaped event carrying a snapshot of the object, for deliver_pending."""
    event_id = _event_id()
    event = {
        "id": event_id,
        "object": "event",
        "api_version": "sandbox",
        "created": _ts(at),
        "livemode": False,
        "type": event_type,
        "data": {"object": json.loads(json.dumps(obj))},
    }
    await _insert(conn, event_id, "event", {"event": event, "delivered": False})
    emitted = _emitted.get()
    if emitted is not None:
        emitted.append(event_id)
    return event_id


async def _idempotent(key: str, operation: str, params: Obj, action: Callable[[Conn], Awaitable[Obj]]) -> Obj:
    """Run `action` once per key in its own committed transaction; a repeat gets the first answer back."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()
    record_id = "idem_sbx_" + hashlib.sha256(key.encode()).hexdigest()
    async with _external() as conn:
        # Two calls with one key at once: the second waits here, then finds the first one's answer.
        await conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (record_id,))
        stored = await _load(conn, record_id, "idempotency")
        if stored is not None:
            if stored["operation"] != operation or stored["params"] != digest:
                raise ProviderError(
                    "This idempotency key was already used with other parameters.", code="idempotency_error"
                )
            response: Obj = stored["response"]
            return response
        response = await action(conn)
        await _insert(
            conn,
            record_id,
            "idempotency",
            {"id": record_id, "key": key, "operation": operation, "params": digest, "response": response},
        )
        return response


async def _read(object_id: str, kind: str) -> Obj:
    async with _external() as conn:
        return await _require(conn, object_id, kind)


# --- conversions to commerce's types ----------------------------------------------------------------------


def checkout_state(data: Obj) -> CheckoutSession:
    """A stored checkout session as commerce's CheckoutSession."""
    currency = data.get("currency")
    return CheckoutSession(
        id=data["id"],
        url=data.get("url"),
        mode=data["mode"],
        status=data["status"],
        payment_status=data["payment_status"],
        customer_ref=data.get("customer"),
        client_reference_id=data.get("client_reference_id"),
        metadata=dict(data.get("metadata") or {}),
        subscription_ref=data.get("subscription"),
        payment_ref=data.get("payment_intent"),
        invoice_ref=data.get("invoice"),
        currency=currency.upper() if currency else None,
        amount_subtotal=data.get("amount_subtotal"),
        amount_tax=data.get("total_details", {}).get("amount_tax"),
        amount_total=data.get("amount_total"),
        created_at=_dt(data.get("created")),
    )


def subscription_state(data: Obj) -> SubscriptionState:
    """A stored subscription as commerce's SubscriptionState."""
    item = data["items"]["data"][0]
    price = item["price"]
    return SubscriptionState(
        id=data["id"],
        customer_ref=data["customer"],
        status=data["status"],
        price_ref=price["id"],
        item_ref=item["id"],
        currency=price["currency"].upper(),
        amount_minor=int(price["unit_amount"]),
        interval=price["recurring"]["interval"],
        current_period_start=_need_dt(data["current_period_start"]),
        current_period_end=_need_dt(data["current_period_end"]),
        cancel_at_period_end=bool(data["cancel_at_period_end"]),
        trial_end=_dt(data.get("trial_end")),
        canceled_at=_dt(data.get("canceled_at")),
        ended_at=_dt(data.get("ended_at")),
        latest_invoice_ref=data.get("latest_invoice"),
        metadata=dict(data.get("metadata") or {}),
        created_at=_dt(data.get("created")),
    )


def invoice_state(data: Obj) -> InvoiceState:
    """A stored invoice as commerce's InvoiceState (the sandbox charges no tax)."""
    lines = tuple(
        InvoiceLine(
            description=line["description"],
            amount_minor=int(line["amount"]),
            quantity=int(line.get("quantity") or 1),
            period_start=_dt(line.get("period", {}).get("start")),
            period_end=_dt(line.get("period", {}).get("end")),
            proration=bool(line.get("proration")),
        )
        for line in data["lines"]["data"]
    )
    return InvoiceState(
        id=data["id"],
        customer_ref=data["customer"],
        status=data["status"],
        currency=data["currency"].upper(),
        subtotal_minor=int(data["subtotal"]),
        tax_minor=int(data.get("tax") or 0),
        total_minor=int(data["total"]),
        amount_paid_minor=int(data["amount_paid"]),
        lines=lines,
        tax_lines=(),
        created_at=_need_dt(data["created"]),
        number=data.get("number"),
        subscription_ref=data.get("subscription"),
        payment_ref=data.get("payment_intent"),
        paid_at=_dt(data.get("status_transitions", {}).get("paid_at")),
        billing_reason=data.get("billing_reason"),
    )


def charge_state(data: Obj) -> ChargeState:
    """A stored charge as commerce's ChargeState."""
    return ChargeState(
        id=data["id"],
        payment_ref=data.get("payment_intent"),
        currency=data["currency"].upper(),
        amount_minor=int(data["amount"]),
        amount_refunded_minor=int(data["amount_refunded"]),
        refunded=bool(data["refunded"]),
        disputed=bool(data["disputed"]),
    )


# --- the provider -----------------------------------------------------------------------------------------


class SandboxProvider:
    """PaymentProvider over the sandbox_payment_objects table (never in production)."""

    name: Literal["stripe", "sandbox"] = "sandbox"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def ensure_customer(self, *, user_id: str, email: str, idempotency_key: str) -> str:
        """Create a sandbox customer (cus_sbx_...) with a working test card."""

        async def create(conn: Conn) -> Obj:
            customer_id = _new_id("cus")
            data: Obj = {
                "id": customer_id,
                "object": "customer",
                "created": _ts(_now()),
                "email": email,
                "metadata": {"user_id": str(user_id)},
                "invoice_prefix": secrets.token_hex(4).upper(),
                "next_invoice_sequence": 1,
                "sandbox_card": {**TEST_CARD, "fails": False},
            }
            return await _insert(conn, customer_id, "customer", data)

        # Only the account counts: a retry after an email change is still the same customer.
        params = {"user_id": str(user_id)}
        return str((await _idempotent(idempotency_key, "ensure_customer", params, create))["id"])

    async def ensure_price(self, *, price: PriceSpec, idempotency_key: str) -> str:
        """The price's sandbox id (price_sbx_...), created once."""
        if price.provider_ref is not None:
            return price.provider_ref

        async def create(conn: Conn) -> Obj:
            price_id = _new_id("price")
            data: Obj = {
                "id": price_id,
                "object": "price",
                "active": True,
                "created": _ts(_now()),
                "currency": price.currency.lower(),
                "unit_amount": price.amount_minor,
                "recurring": {"interval": price.interval, "interval_count": 1},
                "nickname": price.plan_name,
                "product": f"prod_sbx_{price.plan_code}",
                "metadata": {"price_id": price.price_id, "plan_code": price.plan_code},
            }
            return await _insert(conn, price_id, "price", data)

        params = {"price_id": price.price_id, "amount": price.amount_minor, "currency": price.currency}
        return str((await _idempotent(idempotency_key, "ensure_price", params, create))["id"])

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
            await _require(conn, customer_ref, "customer")
            price = await _require(conn, price_ref, "price")
            first = 0 if trial_days > 0 else int(price["unit_amount"])
            interval = price["recurring"]["interval"]
            line = {
                "price": _price_copy(price),
                "quantity": 1,
                "description": f"{price['nickname']} ({'yearly' if interval == 'year' else 'monthly'})",
                "amount_total": first,
            }
            return await _new_checkout(
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
        return checkout_state(await _idempotent(idempotency_key, "subscription_checkout", params, create))

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
            await _require(conn, customer_ref, "customer")
            line = {"price": None, "quantity": 1, "description": description, "amount_total": amount_minor}
            return await _new_checkout(
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
        return checkout_state(await _idempotent(idempotency_key, "payment_checkout", params, create))

    async def portal_url(self, *, customer_ref: str, return_url: str) -> str:
        """A signed, expiring link to the sandbox's portal page for this customer."""
        await _read(customer_ref, "customer")
        token = portal_token(self.settings, customer_ref=customer_ref, return_url=_checked_url(return_url))
        return f"{_base_url(self.settings)}{PORTAL_PATH}{token}"

    async def get_checkout(self, ref: str) -> CheckoutSession:
        """Re-read a checkout session."""
        return checkout_state(await _read(ref, "checkout_session"))

    async def get_subscription(self, ref: str) -> SubscriptionState:
        """Re-read a subscription."""
        return subscription_state(await _read(ref, "subscription"))

    async def change_price(
        self, *, subscription_ref: str, item_ref: str, price_ref: str, upgrade: bool, idempotency_key: str
    ) -> SubscriptionState:
        """Move to another price: an upgrade pays the prorated difference at once, a downgrade waits."""

        async def change(conn: Conn) -> Obj:
            return await _change_price(
                conn, subscription_ref, item_ref=item_ref, price_ref=price_ref, upgrade=upgrade, at=_now()
            )

        params = {"sub": subscription_ref, "item": item_ref, "price": price_ref, "upgrade": upgrade}
        return subscription_state(await _idempotent(idempotency_key, "change_price", params, change))

    async def set_cancel_at_period_end(
        self, *, subscription_ref: str, cancel: bool, idempotency_key: str
    ) -> SubscriptionState:
        """Cancel at period end, or resume a pending cancellation."""

        async def apply(conn: Conn) -> Obj:
            return await _set_cancel(conn, subscription_ref, cancel=cancel, at=_now())

        params = {"sub": subscription_ref, "cancel": cancel}
        return subscription_state(await _idempotent(idempotency_key, "cancel_at_period_end", params, apply))

    async def cancel_now(self, *, subscription_ref: str, idempotency_key: str) -> SubscriptionState:
        """End a subscription at once, unprorated (customer.subscription.deleted); an ended one as is."""

        async def apply(conn: Conn) -> Obj:
            return await _cancel_now(conn, subscription_ref, at=_now())

        params = {"sub": subscription_ref}
        return subscription_state(await _idempotent(idempotency_key, "cancel_now", params, apply))

    async def expire_checkout(self, ref: str) -> CheckoutSession:
        """Expire an open checkout (checkout.session.expired); a complete or expired one is returned as is."""
        async with _external() as conn:
            session = await _require(conn, ref, "checkout_session", lock=True)
            if session["status"] != "open":
                return checkout_state(session)
            return checkout_state(await _expire(conn, session, _now()))

    async def refund(self, *, payment_ref: str, idempotency_key: str) -> ChargeState:
        """Refund what remains of a payment (charge.refunded); a fully refunded one answers its charge."""

        async def apply(conn: Conn) -> Obj:
            charge = await _charge_of(conn, payment_ref)
            if charge["refunded"] or int(charge["amount_refunded"]) >= int(charge["amount"]):
                return charge
            return await _refund(conn, charge, amount_minor=None, at=_now())

        params = {"payment": payment_ref}
        return charge_state(await _idempotent(idempotency_key, "refund", params, apply))

    async def get_invoice(self, ref: str) -> InvoiceState:
        """Re-read an invoice."""
        return invoice_state(await _read(ref, "invoice"))

    async def get_charge(self, ref: str) -> ChargeState:
        """Re-read a charge."""
        return charge_state(await _read(ref, "charge"))

    async def charge_for_payment(self, payment_ref: str) -> ChargeState | None:
        """The latest charge of a payment intent."""
        async with _external() as conn:
            intent = await _require(conn, payment_ref, "payment_intent")
            if not intent.get("latest_charge"):
                return None
            return charge_state(await _require(conn, intent["latest_charge"], "charge"))


# --- what happens inside the sandbox ---------------------------------------------------------------------


async def _new_checkout(
    conn: Conn,
    settings: Settings,
    *,
    mode: Literal["subscription", "payment"],
    customer: str,
    currency: str,
    amount: int,
    line: Obj,
    client_reference_id: str,
    metadata: dict[str, str],
    success_url: str,
    cancel_url: str,
    extra: Obj,
) -> Obj:
    at = _now()
    session_id = "cs_sbx_" + secrets.token_hex(16)  # the id is the page's capability: 128 random bits
    data: Obj = {
        "id": session_id,
        "object": "checkout.session",
        "mode": mode,
        "status": "open",
        "payment_status": "unpaid",
        "created": _ts(at),
        "expires_at": _ts(at + CHECKOUT_LIFETIME),
        "customer": customer,
        "client_reference_id": client_reference_id,
        "metadata": dict(metadata),
        "currency": currency,
        "amount_subtotal": amount,
        "amount_total": amount,
        "total_details": {"amount_tax": 0, "amount_discount": 0},
        "line_items": {"object": "list", "data": [line]},
        "success_url": _checked_url(success_url),
        "cancel_url": _checked_url(cancel_url),
        "url": f"{_base_url(settings)}{CHECKOUT_PATH}{session_id}",
        "subscription": None,
        "invoice": None,
        "payment_intent": None,
        **extra,
    }
    return await _insert(conn, session_id, "checkout_session", data)


async def _new_payment(
    conn: Conn,
    *,
    customer: str,
    currency: str,
    amount: int,
    description: str,
    metadata: Obj,
    invoice: str | None,
    at: datetime,
) -> tuple[Obj, Obj]:
    """A succeeded payment intent and its charge."""
    intent_id, charge_id = _new_id("pi"), _new_id("ch")
    card = (await _require(conn, customer, "customer")).get("sandbox_card", TEST_CARD)
    charge: Obj = {
        "id": charge_id,
        "object": "charge",
        "created": _ts(at),
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": 0,
        "currency": currency,
        "customer": customer,
        "description": description,
        "disputed": False,
        "invoice": invoice,
        "paid": True,
        "payment_intent": intent_id,
        "payment_method_details": {"type": "card", "card": {"brand": card["brand"], "last4": card["last4"]}},
        "refunded": False,
        "status": "succeeded",
    }
    intent: Obj = {
        "id": intent_id,
        "object": "payment_intent",
        "created": _ts(at),
        "amount": amount,
        "amount_received": amount,
        "currency": currency,
        "customer": customer,
        "description": description,
        "invoice": invoice,
        "latest_charge": charge_id,
        "metadata": dict(metadata),
        "status": "succeeded",
    }
    await _insert(conn, intent_id, "payment_intent", intent)
    await _insert(conn, charge_id, "charge", charge)
    return intent, charge


async def _new_invoice(
    conn: Conn,
    *,
    customer_id: str,
    subscription: Obj | None,
    currency: str,
    lines: list[Obj],
    billing_reason: str,
    paid: bool,
    at: datetime,
) -> Obj:
    """A finalized invoice, paid (with a payment for a positive total) or left open (a declined card)."""
    customer = await _require(conn, customer_id, "customer", lock=True)
    sequence = int(customer.get("next_invoice_sequence") or 1)
    customer["next_invoice_sequence"] = sequence + 1
    await _save(conn, customer)
    invoice_id = _new_id("in")
    total = sum(int(line["amount"]) for line in lines)
    data: Obj = {
        "id": invoice_id,
        "object": "invoice",
        "created": _ts(at),
        "customer": customer_id,
        "subscription": subscription["id"] if subscription else None,
        "number": f"{customer['invoice_prefix']}-{sequence:04d}",
        "billing_reason": billing_reason,
        "currency": currency,
        "status": "open",
        "subtotal": total,
        "tax": 0,
        "total": total,
        "total_tax_amounts": [],
        "amount_due": total,
        "amount_paid": 0,
        "amount_remaining": total,
        "attempt_count": 1,
        "lines": {
            "object": "list",
            "data": [{"id": _new_id("il"), "object": "line_item", **line} for line in lines],
        },
        "payment_intent": None,
        "status_transitions": {"finalized_at": _ts(at), "paid_at": None},
    }
    if paid:
        await _pay_invoice(conn, data, at=at, insert=True)
    else:
        await _insert(conn, invoice_id, "invoice", data)
    return data


async def _pay_invoice(conn: Conn, invoice: Obj, *, at: datetime, insert: bool = False) -> Obj:
    if invoice["total"] > 0:
        intent, _ = await _new_payment(
            conn,
            customer=invoice["customer"],
            currency=invoice["currency"],
            amount=invoice["total"],
            description=f"Invoice {invoice['number']}",
            metadata={},
            invoice=invoice["id"],
            at=at,
        )
        invoice["payment_intent"] = intent["id"]
    invoice.update(status="paid", amount_paid=invoice["total"], amount_remaining=0)
    invoice["status_transitions"]["paid_at"] = _ts(at)
    if insert:
        return await _insert(conn, invoice["id"], "invoice", invoice)
    return await _save(conn, invoice)


def _plan_line(price: Obj, start: datetime, end: datetime) -> Obj:
    from shared.plans.money import format_amount

    per = "year" if price["recurring"]["interval"] == "year" else "month"
    amount = format_amount(int(price["unit_amount"]), price["currency"])
    return {
        "description": f"1 x {price['nickname']} (at {amount} / {per})",
        "amount": int(price["unit_amount"]),
        "quantity": 1,
        "period": {"start": _ts(start), "end": _ts(end)},
        "proration": False,
        "price": price["id"],
    }


async def complete_checkout(checkout_id: str, *, at: datetime | None = None) -> Obj:
    """The person paid: start the subscription or take the payment; a finished session stays as it is."""
    at = at or _now()
    async with _external() as conn:
        session = await _require(conn, checkout_id, "checkout_session", lock=True)
        if session["status"] != "open":
            return session
        if int(session["expires_at"]) <= _ts(at):
            return await _expire(conn, session, at)
        follow: list[tuple[str, Obj]] = []
        if session["mode"] == "subscription":
            subscription, invoice = await _start_subscription(conn, session, at)
            session.update(
                subscription=subscription["id"],
                invoice=invoice["id"],
                payment_status="paid" if invoice["total"] > 0 else "no_payment_required",
            )
            follow = [("customer.subscription.created", subscription), ("invoice.paid", invoice)]
        else:
            intent, _ = await _new_payment(
                conn,
                customer=session["customer"],
                currency=session["currency"],
                amount=int(session["amount_total"]),
                description=session["line_items"]["data"][0]["description"],
                metadata=session["metadata"],
                invoice=None,
                at=at,
            )
            session.update(payment_intent=intent["id"], payment_status="paid")
        session.update(status="complete", completed_at=_ts(at))
        await _save(conn, session)
        # Stripe's order as the brief fixes it: the session, then what it created.
        await _emit(conn, "checkout.session.completed", session, at)
        for event_type, obj in follow:
            await _emit(conn, event_type, obj, at)
        return session


async def _start_subscription(conn: Conn, session: Obj, at: datetime) -> tuple[Obj, Obj]:
    price_ref = session["line_items"]["data"][0]["price"]["id"]
    price = await _require(conn, price_ref, "price")
    trial_days = int(session.get("subscription_data", {}).get("trial_period_days") or 0)
    interval = price["recurring"]["interval"]
    subscription_id = _new_id("sub")
    if trial_days > 0:
        trial_end = at + timedelta(days=trial_days)
        start, end, anchor, status = at, trial_end, trial_end, "trialing"
    else:
        start, anchor, status = at, at, "active"
        end = _period_end(anchor, start, interval)
    subscription: Obj = {
        "id": subscription_id,
        "object": "subscription",
        "created": _ts(at),
        "start_date": _ts(at),
        "customer": session["customer"],
        "status": status,
        "currency": price["currency"],
        "billing_cycle_anchor": _ts(anchor),
        "current_period_start": _ts(start),
        "current_period_end": _ts(end),
        "items": {
            "object": "list",
            "data": [
                {
                    "id": _new_id("si"),
                    "object": "subscription_item",
                    "price": _price_copy(price),
                    "quantity": 1,
                    "current_period_start": _ts(start),
                    "current_period_end": _ts(end),
                }
            ],
        },
        "cancel_at_period_end": False,
        "cancel_at": None,
        "canceled_at": None,
        "ended_at": None,
        "trial_start": _ts(at) if trial_days > 0 else None,
        "trial_end": _ts(end) if trial_days > 0 else None,
        "latest_invoice": None,
        "metadata": dict(
            session.get("subscription_data", {}).get("metadata") or session.get("metadata") or {}
        ),
    }
    if trial_days > 0:
        line = {
            "description": f"Trial period for {price['nickname']}",
            "amount": 0,
            "quantity": 1,
            "period": {"start": _ts(start), "end": _ts(end)},
            "proration": False,
            "price": price["id"],
        }
    else:
        line = _plan_line(price, start, end)
    invoice = await _new_invoice(
        conn,
        customer_id=session["customer"],
        subscription=subscription,
        currency=price["currency"],
        lines=[line],
        billing_reason="subscription_create",
        paid=True,
        at=at,
    )
    subscription["latest_invoice"] = invoice["id"]
    await _insert(conn, subscription_id, "subscription", subscription)
    return subscription, invoice


async def _expire(conn: Conn, session: Obj, at: datetime) -> Obj:
    session.update(status="expired")
    await _save(conn, session)
    await _emit(conn, "checkout.session.expired", session, at)
    return session


async def decline_checkout(checkout_id: str, *, at: datetime | None = None) -> Obj:
    """The person declined: the session expires (nothing happens to a finished one)."""
    at = at or _now()
    async with _external() as conn:
        session = await _require(conn, checkout_id, "checkout_session", lock=True)
        if session["status"] != "open":
            return session
        return await _expire(conn, session, at)


def _set_period(subscription: Obj, start: datetime, end: datetime) -> None:
    subscription["current_period_start"], subscription["current_period_end"] = _ts(start), _ts(end)
    item = subscription["items"]["data"][0]
    item["current_period_start"], item["current_period_end"] = _ts(start), _ts(end)


async def _live_subscription(conn: Conn, ref: str) -> Obj:
    subscription = await _require(conn, ref, "subscription", lock=True)
    if subscription["status"] not in LIVE_STATUSES:
        raise ProviderRefused(
            f"The subscription is {subscription['status']}; it can no longer change.",
            code="subscription_ended",
        )
    return subscription


async def _end(conn: Conn, subscription: Obj, at: datetime) -> Obj:
    """A cancellation that reached the period end: the subscription is over."""
    subscription.update(
        status="canceled",
        ended_at=subscription["current_period_end"],
        canceled_at=subscription.get("canceled_at") or _ts(at),
    )
    await _save(conn, subscription)
    await _emit(conn, "customer.subscription.deleted", subscription, at)
    return subscription


async def _cancel_now(conn: Conn, ref: str, *, at: datetime) -> Obj:
    """End a subscription now, as Stripe cancels with prorate and invoice_now false (no credit or invoice)."""
    subscription = await _require(conn, ref, "subscription", lock=True)
    if subscription["status"] in ("canceled", "incomplete_expired"):
        return subscription
    subscription.update(
        status="canceled",
        ended_at=_ts(at),
        canceled_at=subscription.get("canceled_at") or _ts(at),
        cancellation_details={"reason": "cancellation_requested"},
    )
    await _save(conn, subscription)
    await _emit(conn, "customer.subscription.deleted", subscription, at)
    return subscription


async def _renew(conn: Conn, subscription: Obj, *, outcome: Outcome, at: datetime) -> Obj:
    """One billing cycle: a new period and its invoice, paid or left open (past_due)."""
    if subscription["cancel_at_period_end"]:
        return await _end(conn, subscription, at)
    latest = (
        await _load(conn, subscription["latest_invoice"], "invoice", lock=True)
        if subscription.get("latest_invoice")
        else None
    )
    if subscription["status"] == "past_due" and latest is not None and latest["status"] == "open":
        # A retry of the unpaid invoice: the period already moved when it failed.
        if outcome == "failed":
            latest["attempt_count"] = int(latest.get("attempt_count") or 1) + 1
            await _save(conn, latest)
            await _emit(conn, "invoice.payment_failed", latest, at)
            return subscription
        await _pay_invoice(conn, latest, at=at)
        subscription["status"] = "active"
        await _save(conn, subscription)
        await _emit(conn, "invoice.paid", latest, at)
        await _emit(conn, "customer.subscription.updated", subscription, at)
        return subscription
    price = subscription["items"]["data"][0]["price"]
    interval = price["recurring"]["interval"]
    old_end = _need_dt(subscription["current_period_end"])
    if old_end <= at:
        start, anchor = old_end, _need_dt(subscription["billing_cycle_anchor"])
    else:  # renewed early (a dev control): the new cycle starts now, like resetting Stripe's anchor
        start = anchor = at
        subscription["billing_cycle_anchor"] = _ts(at)
    end = _period_end(anchor, start, interval)
    _set_period(subscription, start, end)
    invoice = await _new_invoice(
        conn,
        customer_id=subscription["customer"],
        subscription=subscription,
        currency=price["currency"],
        lines=[_plan_line(price, start, end)],
        billing_reason="subscription_cycle",
        paid=outcome == "paid",
        at=at,
    )
    subscription.update(latest_invoice=invoice["id"], status="active" if outcome == "paid" else "past_due")
    await _save(conn, subscription)
    await _emit(conn, "customer.subscription.updated", subscription, at)
    await _emit(conn, "invoice.paid" if outcome == "paid" else "invoice.payment_failed", invoice, at)
    return subscription


async def renew(subscription_ref: str, *, outcome: Outcome, at: datetime | None = None) -> Obj:
    """Run one billing cycle now (a dev control): paid, or failed as with a declined card."""
    at = at or _now()
    async with _external() as conn:
        subscription = await _live_subscription(conn, subscription_ref)
        return await _renew(conn, subscription, outcome=outcome, at=at)


async def _set_cancel(conn: Conn, ref: str, *, cancel: bool, at: datetime) -> Obj:
    subscription = await _live_subscription(conn, ref)
    if bool(subscription["cancel_at_period_end"]) == cancel:
        return subscription
    subscription.update(
        cancel_at_period_end=cancel,
        cancel_at=subscription["current_period_end"] if cancel else None,
        canceled_at=_ts(at) if cancel else None,
    )
    await _save(conn, subscription)
    await _emit(conn, "customer.subscription.updated", subscription, at)
    return subscription


async def set_cancel_at_period_end(subscription_ref: str, *, cancel: bool, at: datetime | None = None) -> Obj:
    """Cancel or resume from the sandbox portal (no idempotency key: a person's click)."""
    async with _external() as conn:
        return await _set_cancel(conn, subscription_ref, cancel=cancel, at=at or _now())


async def _change_price(
    conn: Conn, ref: str, *, item_ref: str, price_ref: str, upgrade: bool, at: datetime
) -> Obj:
    subscription = await _live_subscription(conn, ref)
    item = subscription["items"]["data"][0]
    if item["id"] != item_ref:
        raise ObjectNotFound(f"The subscription has no item {item_ref!r}.")
    new_price = await _require(conn, price_ref, "price")
    old_price = item["price"]
    if new_price["id"] == old_price["id"]:
        return subscription
    if new_price["currency"] != old_price["currency"]:
        raise ProviderRefused("A subscription cannot change currency.", code="currency_mismatch")
    start = _need_dt(subscription["current_period_start"])
    end = _need_dt(subscription["current_period_end"])
    new_interval = new_price["recurring"]["interval"]
    interval_changed = new_interval != old_price["recurring"]["interval"]
    invoice: Obj | None = None
    if upgrade and subscription["status"] != "trialing":
        span = (end - start).total_seconds()
        remaining = min(1.0, max(0.0, (end - at).total_seconds() / span)) if span > 0 else 0.0
        old_amount, new_amount = int(old_price["unit_amount"]), int(new_price["unit_amount"])
        if interval_changed:  # a new cycle starts now at the full new price, less the unused old time
            new_end = _period_end(at, at, new_interval)
            total = max(0, round(new_amount - old_amount * remaining))
            added = new_amount
        else:
            new_end = end
            total = max(0, round(new_amount * remaining - old_amount * remaining))
            added = round(new_amount * remaining)
        if total > 0:
            customer = await _require(conn, subscription["customer"], "customer")
            if _card_fails(customer):
                raise ProviderRefused("Your card was declined.", code="card_declined")
            period = {"start": _ts(at), "end": _ts(new_end)}
            lines = [
                {
                    "description": f"Remaining time on {new_price['nickname']}",
                    "amount": added,
                    "quantity": 1,
                    "period": period,
                    "proration": True,
                    "price": new_price["id"],
                },
                {
                    "description": f"Unused time on {old_price['nickname']}",
                    "amount": total - added,
                    "quantity": 1,
                    "period": period,
                    "proration": True,
                    "price": old_price["id"],
                },
            ]
            invoice = await _new_invoice(
                conn,
                customer_id=subscription["customer"],
                subscription=subscription,
                currency=new_price["currency"],
                lines=lines,
                billing_reason="subscription_update",
                paid=True,
                at=at,
            )
            subscription["latest_invoice"] = invoice["id"]
        if interval_changed:
            subscription["billing_cycle_anchor"] = _ts(at)
            _set_period(subscription, at, new_end)
    item["price"] = _price_copy(new_price)
    await _save(conn, subscription)
    await _emit(conn, "customer.subscription.updated", subscription, at)
    if invoice is not None:
        await _emit(conn, "invoice.paid", invoice, at)
    return subscription


async def _charge_of(conn: Conn, payment_ref: str) -> Obj:
    if payment_ref.startswith("ch_"):
        return await _require(conn, payment_ref, "charge", lock=True)
    intent = await _require(conn, payment_ref, "payment_intent")
    if not intent.get("latest_charge"):
        raise ObjectNotFound("This payment has no charge.")
    return await _require(conn, intent["latest_charge"], "charge", lock=True)


async def refund(payment_ref: str, *, amount_minor: int | None = None, at: datetime | None = None) -> Obj:
    """Refund a payment (all of it by default): the charge is refunded and charge.refunded sent."""
    async with _external() as conn:
        charge = await _charge_of(conn, payment_ref)
        return await _refund(conn, charge, amount_minor=amount_minor, at=at or _now())


async def _refund(conn: Conn, charge: Obj, *, amount_minor: int | None, at: datetime) -> Obj:
    left = int(charge["amount"]) - int(charge["amount_refunded"])
    if left <= 0:
        raise Conflict("This payment is already fully refunded.", code="already_refunded")
    amount = left if amount_minor is None else amount_minor
    if not 0 < amount <= left:
        raise Conflict(f"At most {left} (minor units) can still be refunded.", code="refund_too_large")
    charge["amount_refunded"] = int(charge["amount_refunded"]) + amount
    charge["refunded"] = charge["amount_refunded"] >= int(charge["amount"])
    await _save(conn, charge)
    await _emit(conn, "charge.refunded", charge, at)
    return charge


async def dispute(payment_ref: str, *, at: datetime | None = None) -> Obj:
    """The card holder disputes a payment: charge.dispute.created, whose object names the charge."""
    at = at or _now()
    async with _external() as conn:
        charge = await _charge_of(conn, payment_ref)
        if charge["disputed"]:
            raise Conflict("This payment is already disputed.", code="already_disputed")
        charge["disputed"] = True
        await _save(conn, charge)
        dispute_id = _new_id("dp")
        data: Obj = {
            "id": dispute_id,
            "object": "dispute",
            "created": _ts(at),
            "amount": charge["amount"],
            "currency": charge["currency"],
            "charge": charge["id"],
            "payment_intent": charge.get("payment_intent"),
            "reason": "fraudulent",
            "status": "needs_response",
        }
        await _insert(conn, dispute_id, "dispute", data)
        await _emit(conn, "charge.dispute.created", data, at)
        return data


async def set_card_fails(customer_ref: str, *, fails: bool) -> Obj:
    """Make the customer's card decline (or work again) for renewals and upgrades."""
    async with _external() as conn:
        customer = await _require(conn, customer_ref, "customer", lock=True)
        customer["sandbox_card"] = {**TEST_CARD, "last4": FAILING_LAST4 if fails else "4242", "fails": fails}
        return await _save(conn, customer)


# --- reads for the sandbox's own pages and guards ---------------------------------------------------------


async def load(conn: Conn, object_id: str, kind: str) -> Obj | None:
    """A sandbox object by id and kind (None when there is none)."""
    return await _load(conn, object_id, kind)


async def subscriptions_of(conn: Conn, customer_ref: str) -> list[Obj]:
    """The customer's subscriptions, newest first."""
    from shared.infra.db import fetch_all

    rows = await fetch_all(
        conn,
        """select data from public.sandbox_payment_objects
           where kind = 'subscription' and data->>'customer' = %s order by created_at desc limit 50""",
        (customer_ref,),
    )
    return [dict(row["data"]) for row in rows]


async def customer_of(conn: Conn, object_id: str) -> str | None:
    """The customer an object (customer, subscription, payment intent, charge, invoice) belongs to."""
    from shared.infra.db import fetch_one

    row = await fetch_one(
        conn,
        """select kind, data->>'customer' as customer from public.sandbox_payment_objects
           where id = %s and kind in ('customer', 'subscription', 'payment_intent', 'charge', 'invoice')""",
        (object_id,),
    )
    if row is None:
        return None
    return object_id if row["kind"] == "customer" else row["customer"]


async def owner_of(conn: Conn, object_id: str) -> UUID | None:
    """The account an object belongs to, through payment_customers (None when unknown)."""
    from shared.infra.db import fetch_one

    customer = await customer_of(conn, object_id)
    if customer is None:
        return None
    # The sandbox simulates Stripe's dashboard here: it reads the account mapping directly.
    row = await fetch_one(
        conn,
        "select user_id from public.payment_customers where provider = 'sandbox' and customer_ref = %s",
        (customer,),
    )
    return None if row is None else UUID(str(row["user_id"]))


# --- the portal's signed link -----------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def portal_token(
    settings: Settings, *, customer_ref: str, return_url: str, expires_at: datetime | None = None
) -> str:
    """The customer, return URL and expiry, HMAC-signed with derived_key(settings, "sandbox-portal")."""
    from shared.settings import derived_key

    expires = _ts(expires_at or _now() + PORTAL_LIFETIME)
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
    if not isinstance(expires, int) or expires <= _ts(at or _now()):
        raise invalid
    return str(customer_ref), str(return_url)


# --- delivery and the clock -------------------------------------------------------------------------------


def _provider_event(event: Obj) -> ProviderEvent:
    obj: Obj = event["data"]["object"]
    return ProviderEvent(
        id=event["id"],
        type=event["type"],
        object_id=obj.get("id"),
        object=obj,
        created=_need_dt(event["created"]),
    )


async def deliver_pending(conn: Conn, *, settings: Settings) -> int:
    """Hand undelivered events, oldest first, to shared.payments.events.process in the caller's transaction.

    Each event is processed and marked delivered together (a savepoint each): two callers at once never
    deliver one event twice (FOR UPDATE SKIP LOCKED), and a failing event is kept for the next call.
    """
    from psycopg.types.json import Jsonb

    from shared.infra.db import fetch_all
    from shared.payments.events import process

    provider = SandboxProvider(settings)
    delivered = 0
    failed: list[str] = []
    while True:
        rows = await fetch_all(
            conn,
            """select id, data from public.sandbox_payment_objects
               where kind = 'event' and not (data->>'delivered')::boolean
                 and coalesce((data->>'attempts')::int, 0) < %s and id <> all(%s)
               order by created_at, id
               limit 100
               for update skip locked""",
            (MAX_DELIVERY_ATTEMPTS, failed),
        )
        if not rows:
            return delivered
        for row in rows:
            data: Obj = dict(row["data"])
            try:
                async with conn.transaction():
                    outcome = await process(conn, provider=provider, event=_provider_event(data["event"]))
                    data.update(delivered=True, outcome=outcome, delivered_at=_ts(_now()))
                    await conn.execute(
                        "update public.sandbox_payment_objects set data = %s where id = %s",
                        (Jsonb(data), row["id"]),
                    )
            except Exception as error:  # kept for a later call; the others still go out
                logger.exception(
                    "sandbox event %s (%s) could not be delivered", row["id"], data["event"]["type"]
                )
                failed.append(row["id"])
                data.update(attempts=int(data.get("attempts") or 0) + 1, last_error=str(error)[:500])
                await conn.execute(
                    "update public.sandbox_payment_objects set data = %s where id = %s",
                    (Jsonb(data), row["id"]),
                )
                continue
            delivered += 1


async def tick(conn: Conn, *, settings: Settings, at: datetime) -> int:
    """The sandbox's clock: renewals, retries, period ends and stale checkouts due at `at`; how many changed.

    Due subscriptions renew (a failing card leaves them past_due), unpaid ones are retried once the card
    works, those cancelled at period end end, and open checkouts past their expiry expire.
    """
    from shared.infra.db import fetch_all

    del settings  # same signature as the other maintenance steps; nothing is configurable yet
    moment = _ts(at)
    due = await fetch_all(
        conn,
        """select id, kind from public.sandbox_payment_objects
           where (kind = 'subscription' and data->>'status' in ('trialing', 'active', 'past_due')
                  and ((data->>'current_period_end')::bigint <= %(at)s or data->>'status' = 'past_due'))
              or (kind = 'checkout_session' and data->>'status' = 'open'
                  and (data->>'expires_at')::bigint <= %(at)s)
           order by created_at""",
        {"at": moment},
    )
    changed = 0
    for row in due:
        try:
            async with conn.transaction():  # one savepoint each: a broken object does not stop the rest
                if await _tick_one(conn, row["id"], row["kind"], at):
                    changed += 1
        except Exception:
            logger.exception("sandbox tick failed for %s", row["id"])
    return changed


async def _tick_one(conn: Conn, object_id: str, kind: str, at: datetime) -> bool:
    moment = _ts(at)
    if kind == "checkout_session":
        session = await _require(conn, object_id, kind, lock=True)
        if session["status"] != "open" or int(session["expires_at"]) > moment:
            return False
        await _expire(conn, session, at)
        return True
    subscription = await _require(conn, object_id, kind, lock=True)
    if subscription["status"] not in LIVE_STATUSES:
        return False
    is_due = int(subscription["current_period_end"]) <= moment
    customer = await _require(conn, subscription["customer"], "customer")
    fails = _card_fails(customer)
    if subscription["cancel_at_period_end"] and is_due:
        await _end(conn, subscription, at)
        return True
    if subscription["status"] == "past_due":
        if fails:  # Stripe's retries would fail too; the grace period in commerce decides what follows
            return False
        await _renew(conn, subscription, outcome="paid", at=at)  # pays the open invoice
        return True
    if not is_due:
        return False
    await _renew(conn, subscription, outcome="failed" if fails else "paid", at=at)
    return True
