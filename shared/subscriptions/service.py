"""Subscriptions: start one through the provider's checkout, mirror the provider's state, apply entitlements.

The provider (Stripe, or the local sandbox) is the source of truth. `sync()` takes a transaction-scoped
advisory lock on (provider, subscription id) BEFORE re-reading the provider, so two events for the same
subscription cannot interleave their read and their write: the later one reads the later state. The row
then mirrors that state, except that a canceled or expired subscription never comes back (a stale read
after the end must not revive it). Access follows the status:
- trialing / active: the plan's entitlement until period end + PAYMENTS_RENEWAL_LEEWAY_HOURS (exactly the
  period end when it is set to cancel then), so a renewal confirmed a little late never interrupts playback;
- past_due / unpaid: kept during the grace period (PAYMENTS_GRACE_DAYS from when past_due or unpaid was
  first seen: Stripe may mark a subscription unpaid before our grace ran out), then the account falls back
  to the free limits; paid again (active) -> restored;
- paused / incomplete: no access now, but the entitlement row stays restorable (the same subscription may
  still be paid or resumed);
- canceled / incomplete_expired: revoked for good.
- a price that is not one of ours (no plan_prices row with that provider id, e.g. set in the provider's
  dashboard): no paid access whatever the status (the row keeps the status, with no price); never the
  metadata's or the previous plan, so a cheaper foreign price cannot keep a premium plan.

One subscription per account. `subscribe()` (under a per-account lock) expires the account's previous open
checkout at the provider (payment_customers.open_checkout_ref) before opening a new one, so two tabs cannot
both be paid; a previous one paid meanwhile answers 409 already_subscribed. Should a second subscription
start anyway, the first sync that sees it while the account has another live one cancels it at once at the
provider, refunds its first invoice and grants nothing (logged as an error).

A refunded or disputed subscription charge ENDS the subscription (`payment_reversed`): it is cancelled at
the provider at once and mirrored like any sync (canceled -> revoked), so the account is back on the free
plan and the provider cannot charge another renewal for a plan the account no longer has.
All times come from shared.payments.clock (tests move the playback clock).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from shared.entitlements import service as entitlements
from shared.errors import Conflict, NotFound
from shared.payments import clock, idempotency
from shared.payments.providers import get_provider, provider_named
from shared.payments.providers.base import ObjectNotFound, ProviderError
from shared.plans import service as plans
from shared.subscriptions import repository
from shared.subscriptions.repository import TERMINAL
from shared.subscriptions.schemas import CheckoutStarted, Limits, SubscriptionRow, SubscriptionView

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from shared.payments.providers.base import CheckoutSession, PaymentProvider, SubscriptionState
    from shared.plans.schemas import Plan, PlanPrice
    from shared.settings import Settings

logger = logging.getLogger("cinema.subscriptions")

PAID = ("trialing", "active")
# Billed but not paid: access is kept until the grace period ends.
OVERDUE = ("past_due", "unpaid")
# A subscription the account can cancel, resume or change: the provider still bills it.
CHANGEABLE = ("trialing", "active", "past_due", "unpaid")
# A new checkout would make a second subscription beside one of these (while its period runs).
BLOCKING = ("trialing", "active", "past_due", "unpaid", "incomplete")
FREE_PLAN_CODE = "free"


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def return_url(settings: Settings, outcome: Literal["success", "cancel"] | None = None) -> str:
    """Where the provider sends the viewer back (PAYMENTS_RETURN_URL, else the billing page)."""
    if settings.payments_return_url is not None:
        base = str(settings.payments_return_url)
    else:
        base = f"{str(settings.public_base_url).rstrip('/')}/account/billing"
    if outcome is None:
        return base
    return f"{base}{'&' if '?' in base else '?'}checkout={outcome}"


def paid_until(
    *,
    status: str,
    current_period_end: datetime | None,
    cancel_at_period_end: bool,
    grace_ends_at: datetime | None,
    settings: Settings,
) -> datetime | None:
    """When the plan's access ends for a subscription in this state (None: no paid access at all).

    past_due and unpaid alike keep access until the grace end (an unpaid one without a recorded grace end
    has none).
    """
    if status not in (*PAID, *OVERDUE) or current_period_end is None:
        return None
    if status == "unpaid" and grace_ends_at is None:
        return None
    leeway = timedelta(hours=settings.payments_renewal_leeway_hours)
    # Set to cancel: nothing is renewed, so no leeway for a late renewal either.
    end = current_period_end if cancel_at_period_end else current_period_end + leeway
    if status in OVERDUE and grace_ends_at is not None:
        end = min(end, grace_ends_at)
    return end


# --- customers ------------------------------------------------------------------------------------------


async def customer_ref(
    conn: AsyncConnection[Any], *, provider: PaymentProvider, user_id: uuid.UUID | str, email: str
) -> str:
    """The account's customer at the provider, created there once (safe under concurrency)."""
    user = _uuid(user_id)
    existing = await repository.customer(conn, user_id=user, provider=provider.name)
    if existing is not None:
        return existing
    # The key is derived from the account (and its address, so a later change of address is a new
    # request): parallel first checkouts get the same customer at the provider.
    address = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:16]
    ref = await provider.ensure_customer(
        user_id=str(user), email=email, idempotency_key=f"cinema:customer:{provider.name}:{user}:{address}"
    )
    await repository.insert_customer(conn, user_id=user, provider=provider.name, customer_ref=ref)
    stored = await repository.customer(conn, user_id=user, provider=provider.name)
    return stored or ref


async def user_for_customer(
    conn: AsyncConnection[Any], *, provider_name: str, customer_ref: str
) -> uuid.UUID | None:
    """The account a provider's customer belongs to (None: not one of ours)."""
    return await repository.user_for_customer(conn, provider=provider_name, customer_ref=customer_ref)


# --- prices ---------------------------------------------------------------------------------------------


async def _price_ref(
    conn: AsyncConnection[Any], provider: PaymentProvider, plan: Plan, price: PlanPrice
) -> str:
    """The provider's id of a plan price, created there on first use and recorded."""
    if price.provider == provider.name and price.provider_price_ref:
        return price.provider_price_ref
    spec = plans.price_spec(plan, price, provider=provider.name)
    ref = await provider.ensure_price(price=spec, idempotency_key=f"cinema:price:{provider.name}:{price.id}")
    if price.provider is None:
        await plans.record_provider_price(conn, price_id=price.id, provider=provider.name, ref=ref)
    return ref


async def _active_plan(conn: AsyncConnection[Any], plan_code: str) -> Plan:
    plan = await plans.get_plan(conn, plan_code)
    if plan is None or not plan.active:
        raise NotFound(f"There is no plan {plan_code!r} to subscribe to.", code="plan_not_found")
    if plan.is_free:
        raise Conflict(
            "The free plan needs no subscription: every account has it (cancel a paid plan to go back).",
            code="plan_is_free",
        )
    return plan


def _no_price(plan: Plan, interval: str, currency: str) -> NotFound:
    return NotFound(f"The {plan.name} plan has no {interval}ly price in {currency}.", code="price_not_found")


# --- subscribe ------------------------------------------------------------------------------------------


def _blocks_new(row: dict[str, Any], now: datetime) -> bool:
    end = row["current_period_end"]
    return row["status"] in BLOCKING and (end is None or end > now)


async def _close_open_checkout(
    conn: AsyncConnection[Any], *, provider: PaymentProvider, user_id: uuid.UUID
) -> None:
    """Expire the account's previous open checkout so only the newest can be paid (call under its lock).

    409 already_subscribed when it was paid meanwhile (its webhook not processed yet) and its subscription
    still runs.
    """
    previous = await repository.open_checkout(conn, user_id=user_id, provider=provider.name)
    if previous is None:
        return
    try:
        closed = await provider.expire_checkout(previous)
    except ObjectNotFound:
        logger.warning("open checkout %s:%s is unknown to the provider", provider.name, previous)
    else:
        if closed.status == "complete" and await _still_runs(provider, closed.subscription_ref):
            raise Conflict(
                "Your previous checkout has just been paid: your subscription is being set up. Change its "
                "plan instead of subscribing again.",
                code="already_subscribed",
            )
    await repository.set_open_checkout(conn, user_id=user_id, provider=provider.name, checkout_ref=None)


async def _still_runs(provider: PaymentProvider, subscription_ref: str | None) -> bool:
    """Whether the provider's subscription has not ended (a complete checkout without one: assume it runs)."""
    if subscription_ref is None:
        return True
    try:
        state = await provider.get_subscription(subscription_ref)
    except ObjectNotFound:
        return False
    return state.status not in TERMINAL


async def subscribe(
    conn: AsyncConnection[Any],
    *,
    settings: Settings,
    user_id: uuid.UUID | str,
    email: str,
    plan_code: str,
    interval: Literal["month", "year"],
    currency: str,
    idempotency_key: str | None,
) -> CheckoutStarted:
    """Start a subscription: a hosted checkout for the plan's price (a trial on the first one only)."""
    user = _uuid(user_id)
    plan = await _active_plan(conn, plan_code)
    price = await plans.price_for(conn, plan_code=plan.code, interval=interval, currency=currency)
    if price is None:
        raise _no_price(plan, interval, currency)
    # One subscribe at a time per account: two checkouts started side by side could both be paid.
    await repository.lock(conn, f"subscriptions:user:{user}")
    current_row = await repository.current_for_user(conn, user_id=user)
    if current_row is not None and _blocks_new(current_row, clock.now()):
        raise Conflict(
            "This account already has a subscription; change its plan instead of subscribing again.",
            code="already_subscribed",
        )
    trial_days = 0 if await repository.trial_used(conn, user_id=user) else plan.trial_days
    provider = get_provider(settings)
    customer = await customer_ref(conn, provider=provider, user_id=user, email=email)
    await _close_open_checkout(conn, provider=provider, user_id=user)
    price_ref = await _price_ref(conn, provider, plan, price)
    checkout = await provider.create_subscription_checkout(
        customer_ref=customer,
        price_ref=price_ref,
        trial_days=trial_days,
        client_reference_id=str(user),
        metadata={"user_id": str(user), "plan_code": plan.code, "price_id": str(price.id)},
        success_url=return_url(settings, "success"),
        cancel_url=return_url(settings, "cancel"),
        idempotency_key=idempotency.provider_key(user_id=user, key=idempotency_key, operation="subscribe"),
    )
    if not checkout.url:
        raise ProviderError("The payment provider returned no checkout page.")
    await repository.set_open_checkout(conn, user_id=user, provider=provider.name, checkout_ref=checkout.id)
    return CheckoutStarted(
        checkout_id=checkout.id,
        checkout_url=checkout.url,
        plan_code=plan.code,
        interval=interval,
        currency=price.currency,
        amount_minor=price.amount_minor,
        trial_days=trial_days,
    )


# --- the provider's state -> our row and the entitlement --------------------------------------------------


async def sync(
    conn: AsyncConnection[Any], *, provider: PaymentProvider, subscription_ref: str
) -> SubscriptionRow | None:
    """Mirror the provider's current subscription state and apply its entitlement (None: not ours)."""
    # The lock first, then the read: a concurrent sync of the same subscription waits here and then reads
    # the newer state, so the row is never overwritten by an older read.
    await _lock_subscription(conn, provider.name, subscription_ref)
    state = await provider.get_subscription(subscription_ref)
    return await _apply(conn, provider=provider, state=state)


async def _lock_subscription(conn: AsyncConnection[Any], provider_name: str, subscription_ref: str) -> None:
    await repository.lock(conn, f"subscriptions:{provider_name}:{subscription_ref}")


async def _price_of(
    conn: AsyncConnection[Any], *, provider_name: str, state: SubscriptionState
) -> PlanPrice | None:
    """Our plan price of the provider's price; None when it is not one of ours (no paid plan then).

    Only the provider's price id counts: neither the metadata's price_id (set when the subscription was
    bought, not updated when the price is changed in the provider's dashboard) nor the previous plan, so a
    cheaper price set elsewhere never keeps a higher plan.
    """
    price = await plans.price_by_provider_ref(conn, provider=provider_name, ref=state.price_ref)
    if price is None:
        logger.warning(
            "subscription %s:%s has a price we do not sell (%s): no paid plan",
            provider_name, state.id, state.price_ref,
        )  # fmt: skip
    return price


async def _apply(
    conn: AsyncConnection[Any], *, provider: PaymentProvider, state: SubscriptionState
) -> SubscriptionRow | None:
    from shared.settings import get_settings

    settings = get_settings()
    provider_name = provider.name
    existing = await repository.by_ref(conn, provider=provider_name, ref=state.id)
    if existing is not None and existing["status"] in TERMINAL:
        if state.status != existing["status"]:
            logger.warning(
                "subscription %s:%s is %s; the provider's %s is not applied (a terminal state stays)",
                provider_name, state.id, existing["status"], state.status,
            )  # fmt: skip
        await entitlements.revoke(conn, source=provider_name, source_ref=state.id)
        return SubscriptionRow.model_validate(existing)
    price = await _price_of(conn, provider_name=provider_name, state=state)
    # A foreign price: the row keeps its status and last plan code, without a price (no paid access).
    plan_code = price.plan_code if price is not None else existing["plan_code"] if existing else None
    plan = None if plan_code is None else await plans.get_plan(conn, plan_code)
    if plan is None:
        return None
    user_id = await repository.user_for_customer(
        conn, provider=provider_name, customer_ref=state.customer_ref
    )
    if user_id is None and existing is not None:
        user_id = existing["user_id"]
    if user_id is None:
        logger.warning(
            "subscription %s:%s of unknown customer %s", provider_name, state.id, state.customer_ref
        )
        return None
    if existing is None and state.status not in TERMINAL:
        state = await _end_if_duplicate(conn, provider=provider, state=state, user_id=user_id)
    past_due_since: datetime | None = existing["past_due_since"] if existing else None
    grace_ends_at: datetime | None = existing["grace_ends_at"] if existing else None
    if state.status in OVERDUE:
        # Grace counts from when we first saw it overdue: a late event cannot shorten it to nothing.
        past_due_since = past_due_since or clock.now()
        grace_ends_at = past_due_since + timedelta(days=settings.payments_grace_days)
    elif state.status in PAID:
        past_due_since = grace_ends_at = None
    row = await repository.upsert(
        conn,
        values={
            "user_id": user_id,
            "provider": provider_name,
            "provider_ref": state.id,
            "customer_ref": state.customer_ref,
            "plan_code": plan.code,
            "price_id": price.id if price is not None else None,
            "status": state.status,
            "billing_interval": state.interval,
            "currency": state.currency,
            "amount_minor": state.amount_minor,
            "current_period_start": state.current_period_start,
            "current_period_end": state.current_period_end,
            "trial_end": state.trial_end,
            "cancel_at_period_end": state.cancel_at_period_end,
            "canceled_at": state.canceled_at,
            "ended_at": state.ended_at,
            "past_due_since": past_due_since,
            "grace_ends_at": grace_ends_at,
        },
    )
    await _apply_entitlement(
        conn,
        provider_name=provider_name,
        state=state,
        plan=plan if price is not None else None,
        row=row,
        settings=settings,
    )
    return SubscriptionRow.model_validate(row)


async def _end_if_duplicate(
    conn: AsyncConnection[Any], *, provider: PaymentProvider, state: SubscriptionState, user_id: uuid.UUID
) -> SubscriptionState:
    """The state to mirror of a subscription seen for the first time (canceled when it is a duplicate).

    A duplicate: the account has another live subscription (two checkouts paid side by side). It is
    cancelled at once at the provider and its first payment refunded; nothing is granted.
    """
    # New subscriptions of one account are checked one at a time (this lock is always taken last: no
    # cycle with the per-account lock of subscribe/cancel/change, taken before a subscription's).
    await repository.lock(conn, f"subscriptions:new:{user_id}")
    other = await repository.other_live_for_user(
        conn, user_id=user_id, statuses=BLOCKING, now=clock.now(), except_ref=state.id
    )
    if other is None:
        return state
    logger.error(
        "subscription %s:%s duplicates %s:%s of account %s: cancelled at once and refunded, not granted",
        provider.name, state.id, other["provider"], other["provider_ref"], user_id,
    )  # fmt: skip
    ended = await provider.cancel_now(
        subscription_ref=state.id, idempotency_key=f"cinema:subscription:{provider.name}:{state.id}:duplicate"
    )
    if state.latest_invoice_ref:
        invoice = await provider.get_invoice(state.latest_invoice_ref)
        if invoice.payment_ref and invoice.amount_paid_minor > 0:
            await provider.refund(
                payment_ref=invoice.payment_ref,
                idempotency_key=f"cinema:subscription:{provider.name}:{state.id}:duplicate-refund",
            )
    return ended


async def _apply_entitlement(
    conn: AsyncConnection[Any],
    *,
    provider_name: str,
    state: SubscriptionState,
    plan: Plan | None,
    row: dict[str, Any],
    settings: Settings,
) -> None:
    """The entitlement of the subscription's state (plan None: a price not ours, no paid access)."""
    source, source_ref = provider_name, state.id
    if state.status in TERMINAL:
        await entitlements.revoke(conn, source=source, source_ref=source_ref)
        return
    until = paid_until(
        status=state.status,
        current_period_end=state.current_period_end,
        cancel_at_period_end=state.cancel_at_period_end,
        grace_ends_at=row["grace_ends_at"],
        settings=settings,
    )
    if until is None or plan is None:
        # paused / incomplete / a foreign price: no access now, but not revoked, so paying, resuming or
        # going back to one of our prices restores it.
        await entitlements.extend(conn, source=source, source_ref=source_ref, ends_at=clock.now())
        return
    await entitlements.grant(
        conn,
        user_id=row["user_id"],
        kind="subscription",
        plan_code=plan.code,
        tier=plan.tier,
        max_streams=plan.max_streams,
        max_height=plan.max_height,
        ad_free=plan.ad_free,
        starts_at=state.created_at or state.current_period_start,
        ends_at=until,
        source=source,
        source_ref=source_ref,
    )


def _user_of(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def checkout_completed(
    conn: AsyncConnection[Any], *, provider: PaymentProvider, checkout: CheckoutSession
) -> None:
    """A subscription checkout changed: once complete, mirror the subscription it created.

    A complete or expired checkout is no longer the account's open one. An unknown customer is bound to
    the account named by client_reference_id only when the checkout is one we made for it (its metadata
    names the same account): anyone can put any client_reference_id on a Payment Link.
    """
    if checkout.mode != "subscription":
        return
    if checkout.status in ("complete", "expired"):
        await repository.clear_open_checkout(conn, provider=provider.name, checkout_ref=checkout.id)
    if checkout.status != "complete" or not checkout.subscription_ref:
        return
    if not checkout.customer_ref:
        logger.warning("subscription checkout %s:%s has no customer: ignored", provider.name, checkout.id)
        return
    owner = await repository.user_for_customer(
        conn, provider=provider.name, customer_ref=checkout.customer_ref
    )
    claimed = _user_of(checkout.client_reference_id)
    if owner is None:
        if claimed is None or checkout.metadata.get("user_id") != str(claimed):
            logger.warning(
                "subscription checkout %s:%s of unknown customer %s names account %s without our "
                "metadata: ignored",
                provider.name, checkout.id, checkout.customer_ref, checkout.client_reference_id,
            )  # fmt: skip
            return
        # Our checkout for an account whose customer was made elsewhere (e.g. by the checkout itself).
        await repository.insert_customer(
            conn, user_id=claimed, provider=provider.name, customer_ref=checkout.customer_ref
        )
        if (
            await repository.user_for_customer(
                conn, provider=provider.name, customer_ref=checkout.customer_ref
            )
            != claimed
        ):
            logger.warning(
                "subscription checkout %s:%s: account %s has another customer than %s: ignored",
                provider.name, checkout.id, claimed, checkout.customer_ref,
            )  # fmt: skip
            return
    elif claimed is not None and claimed != owner:
        logger.warning(
            "subscription checkout %s:%s names account %s but its customer %s is account %s's",
            provider.name, checkout.id, claimed, checkout.customer_ref, owner,
        )  # fmt: skip
    await sync(conn, provider=provider, subscription_ref=checkout.subscription_ref)


async def payment_reversed(
    conn: AsyncConnection[Any],
    *,
    provider_name: str,
    subscription_id: uuid.UUID,
    reason: Literal["refund", "dispute"],
    provider: PaymentProvider | None = None,
) -> None:
    """A subscription charge was fully refunded or disputed: the subscription ENDS.

    Policy: a reversed charge means the account did not pay for its plan, and keeping the subscription
    (billed again at the next renewal) with its access revoked for good would charge for nothing. So it is
    cancelled at once at the provider (idempotency key from our subscription id + "reversed": a replayed
    event cancels once) and the provider's answer is applied like any sync (canceled -> revoked):
    GET /subscription shows the free plan and no further renewal can be charged. The provider is looked
    up by the row's provider name unless given.
    """
    row = await repository.by_id(conn, subscription_id)
    if row is None:
        logger.warning("%s of a charge of unknown subscription %s", reason, subscription_id)
        return
    if provider is None:
        from shared.settings import get_settings

        provider = provider_named(row["provider"] or provider_name, get_settings())
    await _lock_subscription(conn, provider.name, row["provider_ref"])
    ended = await provider.cancel_now(
        subscription_ref=row["provider_ref"], idempotency_key=f"cinema:subscription:{row['id']}:reversed"
    )
    await _apply(conn, provider=provider, state=ended)
    if ended.status not in TERMINAL:
        logger.error(
            "subscription %s (%s) is still %s after cancel_now on a %s", row["id"], provider.name,
            ended.status, reason,
        )  # fmt: skip
        await entitlements.revoke(conn, source=row["provider"], source_ref=row["provider_ref"])
    logger.info("subscription %s (%s) ended: its charge was reversed (%s)", row["id"], provider.name, reason)


# --- the account's view and changes ------------------------------------------------------------------------


async def _free_plan(conn: AsyncConnection[Any]) -> tuple[str, str, int, bool]:
    plan = await plans.free_plan(conn)
    if plan is None:
        return FREE_PLAN_CODE, "Free", 0, False
    return plan.code, plan.name, plan.tier, plan.ad_free


async def current(
    conn: AsyncConnection[Any], *, settings: Settings, user_id: uuid.UUID | str
) -> SubscriptionView:
    """The account's subscription (or the free plan) and the limits that apply now."""
    user = _uuid(user_id)
    row = await repository.current_for_user(conn, user_id=user)
    free_code, free_name, free_tier, free_ad_free = await _free_plan(conn)
    free_limits = Limits(
        tier=free_tier,
        max_streams=settings.free_max_streams,
        max_height=settings.free_max_height,
        ads=not free_ad_free,
    )
    if row is None:
        return SubscriptionView(
            plan_code=free_code, plan_name=free_name, is_free=True, status="free", paid_access=False,
            limits=free_limits,
        )  # fmt: skip
    plan = await plans.get_plan(conn, row["plan_code"])
    until = paid_until(
        status=row["status"],
        current_period_end=row["current_period_end"],
        cancel_at_period_end=row["cancel_at_period_end"],
        grace_ends_at=row["grace_ends_at"],
        settings=settings,
    )
    if row["price_id"] is None:
        until = None  # the provider's price is not one we sell: no paid plan (see _price_of)
    paid = plan is not None and until is not None and clock.now() < until
    limits = free_limits
    if paid and plan is not None:
        # As playback decides: the best of the plan and the free limits.
        limits = Limits(
            tier=plan.tier,
            max_streams=max(settings.free_max_streams, plan.max_streams),
            max_height=max(settings.free_max_height, plan.max_height),
            ads=not plan.ad_free,
        )
    return SubscriptionView(
        plan_code=row["plan_code"],
        plan_name=plan.name if plan is not None else row["plan_code"],
        is_free=False,
        status=row["status"],
        subscription_id=row["id"],
        provider=row["provider"],
        interval=row["billing_interval"],
        currency=row["currency"],
        amount_minor=row["amount_minor"],
        current_period_end=row["current_period_end"],
        cancel_at_period_end=row["cancel_at_period_end"],
        trial_end=row["trial_end"],
        past_due_since=row["past_due_since"],
        grace_ends_at=row["grace_ends_at"],
        paid_access=paid,
        paid_access_until=until,
        limits=limits,
    )


def _changeable(row: dict[str, Any] | None, now: datetime) -> bool:
    if row is None or row["status"] not in CHANGEABLE:
        return False
    end = row["current_period_end"]
    return end is None or end > now


async def _billed_row(conn: AsyncConnection[Any], user: uuid.UUID) -> dict[str, Any] | None:
    # Serializes the account's own changes (cancel, resume, change, subscribe) with each other.
    await repository.lock(conn, f"subscriptions:user:{user}")
    row = await repository.current_for_user(conn, user_id=user)
    return row if _changeable(row, clock.now()) else None


async def refuse_while_billing(conn: AsyncConnection[Any], *, user_id: uuid.UUID | str) -> None:
    """409 subscription_active while the account has a subscription that will renew (account deletion)."""
    row = await repository.current_for_user(conn, user_id=_uuid(user_id))
    if row is not None and _changeable(row, clock.now()) and not row["cancel_at_period_end"]:
        # Deleting the account would leave the provider charging a card nobody can see or cancel.
        raise Conflict(
            "Your subscription renews automatically: cancel it first (it stays active until the end of "
            "the paid period), then delete the account.",
            code="subscription_active",
        )


async def cancel(
    conn: AsyncConnection[Any], *, settings: Settings, user_id: uuid.UUID | str, idempotency_key: str | None
) -> SubscriptionView:
    """Cancel at the end of the paid period (access runs until then); 409 not_cancelable otherwise."""
    user = _uuid(user_id)
    row = await _billed_row(conn, user)
    if row is None:
        raise Conflict("You have no active subscription to cancel.", code="not_cancelable")
    if row["cancel_at_period_end"]:
        raise Conflict(
            f"Your subscription is already cancelled and ends on {row['current_period_end']:%Y-%m-%d}; "
            "resume it to keep it.",
            code="not_cancelable",
        )
    provider = provider_named(row["provider"], settings)
    await provider.set_cancel_at_period_end(
        subscription_ref=row["provider_ref"],
        cancel=True,
        idempotency_key=idempotency.provider_key(
            user_id=user, key=idempotency_key, operation=f"cancel:{row['provider_ref']}"
        ),
    )
    await sync(conn, provider=provider, subscription_ref=row["provider_ref"])
    return await current(conn, settings=settings, user_id=user)


async def resume(
    conn: AsyncConnection[Any], *, settings: Settings, user_id: uuid.UUID | str, idempotency_key: str | None
) -> SubscriptionView:
    """Undo a pending cancellation (before the period ends); 409 not_resumable otherwise."""
    user = _uuid(user_id)
    row = await _billed_row(conn, user)
    if row is None:
        raise Conflict(
            "You have no subscription that can be resumed; subscribe again from the plans page.",
            code="not_resumable",
        )
    if not row["cancel_at_period_end"]:
        raise Conflict(
            "Your subscription is not cancelled: there is nothing to resume.", code="not_resumable"
        )
    provider = provider_named(row["provider"], settings)
    await provider.set_cancel_at_period_end(
        subscription_ref=row["provider_ref"],
        cancel=False,
        idempotency_key=idempotency.provider_key(
            user_id=user, key=idempotency_key, operation=f"resume:{row['provider_ref']}"
        ),
    )
    await sync(conn, provider=provider, subscription_ref=row["provider_ref"])
    return await current(conn, settings=settings, user_id=user)


async def change_plan(
    conn: AsyncConnection[Any],
    *,
    settings: Settings,
    user_id: uuid.UUID | str,
    plan_code: str,
    interval: Literal["month", "year"] | None,
    idempotency_key: str | None,
) -> SubscriptionView:
    """Move to another plan or interval, prorated: an upgrade is invoiced at once, a downgrade credited."""
    user = _uuid(user_id)
    row = await _billed_row(conn, user)
    if row is None:
        raise Conflict("You have no active subscription to change; subscribe first.", code="no_subscription")
    plan = await _active_plan(conn, plan_code)
    wanted = interval or row["billing_interval"] or "month"
    if plan.code == row["plan_code"] and wanted == row["billing_interval"]:
        raise Conflict(f"You are already on the {plan.name} plan, billed every {wanted}.", code="same_plan")
    currency = row["currency"] or settings.payments_default_currency
    price = await plans.price_for(conn, plan_code=plan.code, interval=wanted, currency=currency)
    if price is None:
        raise _no_price(plan, wanted, currency)
    now_plan = await plans.get_plan(conn, row["plan_code"])
    now_tier = now_plan.tier if now_plan is not None else -1
    upgrade = plan.tier > now_tier or (
        plan.tier == now_tier and price.amount_minor > (row["amount_minor"] or 0)
    )
    provider = provider_named(row["provider"], settings)
    price_ref = await _price_ref(conn, provider, plan, price)
    state = await provider.get_subscription(row["provider_ref"])
    await provider.change_price(
        subscription_ref=row["provider_ref"],
        item_ref=state.item_ref,
        price_ref=price_ref,
        upgrade=upgrade,
        idempotency_key=idempotency.provider_key(
            user_id=user, key=idempotency_key, operation=f"change:{row['provider_ref']}"
        ),
    )
    await sync(conn, provider=provider, subscription_ref=row["provider_ref"])
    return await current(conn, settings=settings, user_id=user)


async def portal(conn: AsyncConnection[Any], *, settings: Settings, user_id: uuid.UUID | str) -> str:
    """A link to the provider's customer portal for the account (cards, billing details)."""
    user = _uuid(user_id)
    row = await repository.current_for_user(conn, user_id=user) or await repository.newest_for_user(
        conn, user_id=user
    )
    if row is not None:
        provider = provider_named(row["provider"], settings)
        customer = row["customer_ref"] or await repository.customer(
            conn, user_id=user, provider=provider.name
        )
    else:
        provider = get_provider(settings)
        customer = await repository.customer(conn, user_id=user, provider=provider.name)
    if customer is None:
        raise Conflict(
            "You have no billing account yet: subscribe or buy something first.", code="no_billing_account"
        )
    return await provider.portal_url(customer_ref=customer, return_url=return_url(settings))
