"""The local sandbox payment provider; the code lives in shared.payments.sandbox, re-exported here."""

from __future__ import annotations

from shared.payments.sandbox.billing_periods import add_months as _add_months
from shared.payments.sandbox.billing_periods import period_end as _period_end
from shared.payments.sandbox.cards import FAILING_LAST4, TEST_CARD, set_card_fails
from shared.payments.sandbox.charges import dispute, refund
from shared.payments.sandbox.checkouts import CHECKOUT_LIFETIME, complete_checkout, decline_checkout
from shared.payments.sandbox.delivery import MAX_DELIVERY_ATTEMPTS, deliver_pending
from shared.payments.sandbox.lookups import customer_of, load, owner_of, subscriptions_of
from shared.payments.sandbox.portal import PORTAL_LIFETIME, portal_token, read_portal_token
from shared.payments.sandbox.provider import SandboxProvider
from shared.payments.sandbox.renewals import Outcome, renew
from shared.payments.sandbox.shapes import charge_state, checkout_state, invoice_state, subscription_state
from shared.payments.sandbox.store import Obj
from shared.payments.sandbox.subscriptions import LIVE_STATUSES, set_cancel_at_period_end
from shared.payments.sandbox.tick import tick
from shared.payments.sandbox.urls import CHECKOUT_PATH, PORTAL_PATH

# The underscored names are the billing calendar that tests/payments checks directly.
__all__ = [
    "CHECKOUT_LIFETIME",
    "CHECKOUT_PATH",
    "FAILING_LAST4",
    "LIVE_STATUSES",
    "MAX_DELIVERY_ATTEMPTS",
    "PORTAL_LIFETIME",
    "PORTAL_PATH",
    "TEST_CARD",
    "Obj",
    "Outcome",
    "SandboxProvider",
    "_add_months",
    "_period_end",
    "charge_state",
    "checkout_state",
    "complete_checkout",
    "customer_of",
    "decline_checkout",
    "deliver_pending",
    "dispute",
    "invoice_state",
    "load",
    "owner_of",
    "portal_token",
    "read_portal_token",
    "refund",
    "renew",
    "set_cancel_at_period_end",
    "set_card_fails",
    "subscription_state",
    "subscriptions_of",
    "tick",
]
