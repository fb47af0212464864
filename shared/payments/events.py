"""Provider events (Stripe webhooks, the sandbox's deliveries): each applied exactly once, from current state.

Exactly once: the event's `payment_events` row is inserted (ON CONFLICT DO NOTHING) in the SAME transaction
as its effect and BEFORE it. A replay finds the row and does nothing ("duplicate"); a parallel delivery of
the same event blocks on the primary key until the first transaction ends, then sees the row (or, if the
first rolled back, inserts it and does the work itself). A provider failure raises, so the transaction
rolls back with its row and the provider's retry does the work.

Order-proof: only the event's type and object id are trusted. Every object is re-read from the provider
and the domain services apply the state it has NOW, so a `customer.subscription.updated` arriving after
the `deleted` it preceded re-reads a canceled subscription (and terminal states never move back). A refund
or dispute whose event arrives before the payment it reverses was applied is caught when the payment is:
a paid invoice (here) or a purchase's checkout (purchases.checkout_updated) re-reads its charge first.

Unknown types are recorded as "ignored" and acknowledged; so is an event whose object the provider does
not know (a forged or foreign id), with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from shared.invoices import service as invoices
from shared.payments.providers.base import ChargeState, ObjectNotFound, PaymentProvider, ProviderEvent
from shared.purchases import service as purchases
from shared.subscriptions import service as subscriptions

if TYPE_CHECKING:
    from psycopg import AsyncConnection

logger = logging.getLogger("cinema.payments.events")

Outcome = Literal["processed", "ignored", "duplicate"]
# A handler applies one event; False when it had nothing it could act on (recorded as "ignored").
Handler = Callable[["AsyncConnection[Any]", PaymentProvider, ProviderEvent], Awaitable[bool]]


def _object_id(event: ProviderEvent) -> str:
    """The id of the event's object (what is re-read); ObjectNotFound when the event carries none."""
    ref = event.object_id or event.object.get("id")
    if not isinstance(ref, str) or not ref:
        raise ObjectNotFound(f"Event {event.id} ({event.type}) names no object.")
    return ref


async def _checkout(conn: AsyncConnection[Any], provider: PaymentProvider, event: ProviderEvent) -> bool:
    checkout = await provider.get_checkout(_object_id(event))
    if checkout.mode == "subscription":
        await subscriptions.checkout_completed(conn, provider=provider, checkout=checkout)
    else:
        await purchases.checkout_updated(
            conn,
            provider=provider,
            checkout=checkout,
            payment_failed=event.type == "checkout.session.async_payment_failed",
        )
    return True


async def _subscription(conn: AsyncConnection[Any], provider: PaymentProvider, event: ProviderEvent) -> bool:
    await subscriptions.sync(conn, provider=provider, subscription_ref=_object_id(event))
    return True


async def _invoice(conn: AsyncConnection[Any], provider: PaymentProvider, event: ProviderEvent) -> bool:
    invoice = await provider.get_invoice(_object_id(event))
    subscription_id = None
    user_id = None
    if invoice.subscription_ref:
        # The subscription first: the invoice then links to its row, and a paid invoice of a past_due
        # subscription has already restored it (the provider's subscription state says active again).
        row = await subscriptions.sync(conn, provider=provider, subscription_ref=invoice.subscription_ref)
        if row is not None:
            subscription_id, user_id = row.id, row.user_id
    if invoice.status == "draft":
        return True  # not an invoice yet: it is recorded when finalized (its own event)
    if user_id is None:
        user_id = await subscriptions.user_for_customer(
            conn, provider_name=provider.name, customer_ref=invoice.customer_ref
        )
    if user_id is None:
        logger.warning("invoice %s of unknown customer %s not recorded", invoice.id, invoice.customer_ref)
        return False
    await invoices.record(
        conn, provider_name=provider.name, invoice=invoice, user_id=user_id, subscription_id=subscription_id
    )
    if invoice.status == "paid" and invoice.payment_ref and subscription_id is not None:
        # Refunded or disputed before this invoice was recorded (its charge event came first and found no
        # invoice): apply the reversal now, as charge.refunded / charge.dispute.created would have.
        charge = await provider.charge_for_payment(invoice.payment_ref)
        if charge is not None and (charge.refunded or charge.disputed):
            await _apply_reversal(
                conn, provider, charge=charge, reason="refund" if charge.refunded else "dispute"
            )
    return True


async def _reverse(
    conn: AsyncConnection[Any],
    provider: PaymentProvider,
    *,
    charge_id: str,
    reason: Literal["refund", "dispute"],
) -> bool:
    """A refund or a dispute of a charge: record it on its invoice, revoke what it paid for when reversed."""
    return await _apply_reversal(conn, provider, charge=await provider.get_charge(charge_id), reason=reason)


async def _apply_reversal(
    conn: AsyncConnection[Any],
    provider: PaymentProvider,
    *,
    charge: ChargeState,
    reason: Literal["refund", "dispute"],
) -> bool:
    """Record a charge's refund on its invoice; end what it paid for when fully refunded (or disputed)."""
    if charge.payment_ref is None:
        logger.warning("charge %s has no payment intent: nothing to reverse", charge.id)
        return False
    # The invoice keeps the refunded amount the charge has now (a dispute leaves it as is); its link tells
    # which subscription or purchase the payment was for.
    link = await invoices.refunded(
        conn,
        provider_name=provider.name,
        payment_ref=charge.payment_ref,
        amount_refunded_minor=charge.amount_refunded_minor,
        full=charge.refunded,
    )
    reversed_ = charge.refunded if reason == "refund" else charge.disputed
    if not reversed_:
        return True  # a partial refund, or a charge no longer disputed: access stays
    if await purchases.payment_reversed(
        conn, provider_name=provider.name, payment_ref=charge.payment_ref, reason=reason
    ):
        return True
    if link is not None and link.subscription_id is not None:
        await subscriptions.payment_reversed(
            conn, provider_name=provider.name, subscription_id=link.subscription_id, reason=reason
        )
        return True
    logger.warning("reversed charge %s paid for nothing we know", charge.id)
    return False


async def _refund(conn: AsyncConnection[Any], provider: PaymentProvider, event: ProviderEvent) -> bool:
    return await _reverse(conn, provider, charge_id=_object_id(event), reason="refund")


async def _dispute(conn: AsyncConnection[Any], provider: PaymentProvider, event: ProviderEvent) -> bool:
    # The event's object is the dispute; the charge it disputes is what is re-read.
    charge = event.object.get("charge")
    if isinstance(charge, dict):  # expanded
        charge = charge.get("id")
    if not isinstance(charge, str) or not charge:
        raise ObjectNotFound(f"Dispute event {event.id} names no charge.")
    return await _reverse(conn, provider, charge_id=charge, reason="dispute")


HANDLERS: dict[str, Handler] = {
    **dict.fromkeys(
        (
            "checkout.session.completed",
            "checkout.session.async_payment_succeeded",
            "checkout.session.async_payment_failed",
            "checkout.session.expired",
        ),
        _checkout,
    ),
    **dict.fromkeys(
        (
            "customer.subscription.created",
            "customer.subscription.updated",
            "customer.subscription.deleted",
            "customer.subscription.paused",
            "customer.subscription.resumed",
            "customer.subscription.trial_will_end",
        ),
        _subscription,
    ),
    **dict.fromkeys(
        (
            "invoice.paid",
            "invoice.payment_succeeded",
            "invoice.payment_failed",
            "invoice.finalized",
            "invoice.voided",
            "invoice.marked_uncollectible",
        ),
        _invoice,
    ),
    "charge.refunded": _refund,
    "charge.dispute.created": _dispute,
    "charge.dispute.funds_withdrawn": _dispute,
}


async def _record(conn: AsyncConnection[Any], *, provider: str, event: ProviderEvent, outcome: str) -> bool:
    """Insert the event's row; False when it is already there (waits for a parallel insert to end first)."""
    cursor = await conn.execute(
        """insert into public.payment_events (provider, event_id, type, object_id, outcome)
           values (%s, %s, %s, %s, %s)
           on conflict (provider, event_id) do nothing
           returning event_id""",
        (provider, event.id, event.type, event.object_id, outcome),
    )
    return await cursor.fetchone() is not None


async def process(conn: AsyncConnection[Any], *, provider: PaymentProvider, event: ProviderEvent) -> Outcome:
    """Apply a provider event once, in the caller's transaction: processed, ignored or duplicate.

    Raises what the provider raises when it cannot be read (ProviderError): the caller's transaction must
    then roll back (the event's row with it) so that the provider's retry is processed.
    """
    handler = HANDLERS.get(event.type)
    if not await _record(
        conn, provider=provider.name, event=event, outcome="ignored" if handler is None else "processed"
    ):
        logger.info("%s event %s (%s) already handled", provider.name, event.id, event.type)
        return "duplicate"
    if handler is None:
        logger.info("%s event %s of type %s ignored", provider.name, event.id, event.type)
        return "ignored"
    try:
        # A savepoint: an object the provider does not know undoes whatever the handler did before.
        async with conn.transaction():
            applied = await handler(conn, provider, event)
    except ObjectNotFound as error:
        logger.warning("%s event %s (%s) ignored: %s", provider.name, event.id, event.type, error.detail)
        applied = False
    if not applied:
        await conn.execute(
            "update public.payment_events set outcome = 'ignored' where provider = %s and event_id = %s",
            (provider.name, event.id),
        )
        return "ignored"
    return "processed"
