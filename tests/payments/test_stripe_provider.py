"""StripeProvider: the real stripe SDK against the local Stripe stand-in, checking what it sent."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.payments.providers.base import (
    ObjectNotFound,
    PriceSpec,
    ProviderError,
    ProviderRefused,
)
from shared.payments.providers.stripe import (
    StripeProvider,
    checkout_from_stripe,
    invoice_from_stripe,
    subscription_from_stripe,
)
from tests.support.stripe_server import API_VERSION, StripeServer

WEBHOOK_SECRET = "whsec_provider_tests"


@pytest.fixture(scope="module")
def server() -> Iterator[StripeServer]:
    with StripeServer() as running:
        yield running


@pytest.fixture
def make_provider(settings_env: Callable[..., None]) -> Callable[[StripeServer], StripeProvider]:
    from shared.settings import get_settings

    def make(target: StripeServer) -> StripeProvider:
        settings_env(
            PAYMENTS_PROVIDER="stripe",
            STRIPE_SECRET_KEY=target.api_key,
            STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            STRIPE_API_BASE=target.url,
        )
        return StripeProvider(get_settings())

    return make


@pytest.fixture
def provider(server: StripeServer, make_provider: Callable[[StripeServer], StripeProvider]) -> StripeProvider:
    server.reset_requests()
    return make_provider(server)


def _price(amount: int = 999, interval: str = "month", **overrides: Any) -> PriceSpec:
    values: dict[str, Any] = {
        "price_id": f"pp-{_k()}",
        "plan_code": "standard",
        "plan_name": "Standard",
        "currency": "USD",
        "amount_minor": amount,
        "interval": interval,
    }
    values.update(overrides)
    return PriceSpec(**values)


def _only(server: StripeServer, method: str, path: str) -> Any:
    matches = server.requests_to(method, path)
    assert len(matches) == 1, [(r.method, r.path, r.status) for r in server.requests]
    return matches[0]


async def _subscribed(
    server: StripeServer, provider: StripeProvider, *, amount: int = 999, trial_days: int = 0
) -> dict[str, Any]:
    customer = await provider.ensure_customer(user_id="u-1", email="viewer@example.com", idempotency_key=_k())
    price = await provider.ensure_price(price=_price(amount), idempotency_key=_k())
    checkout = await provider.create_subscription_checkout(
        customer_ref=customer,
        price_ref=price,
        trial_days=trial_days,
        client_reference_id="u-1",
        metadata={"user_id": "u-1", "plan_code": "standard", "price_id": "p1"},
        success_url="https://cinema.test/account/billing?checkout=success",
        cancel_url="https://cinema.test/account/billing?checkout=cancel",
        idempotency_key=_k(),
    )
    ids = server.complete_checkout(checkout.id)
    return {"customer": customer, "price": price, "checkout": checkout, **ids}


_counter = iter(range(1_000_000))


def _k() -> str:
    return f"test-key-{next(_counter)}-{datetime.now().timestamp()}"


# ------------------------------------------------------------------------------------------ basics


def test_importing_the_provider_does_not_import_the_sdk() -> None:
    code = (
        "import sys, shared.payments.providers.stripe, shared.payments.signature;"
        "assert 'stripe' not in sys.modules, 'stripe imported at module level'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_ensure_customer_sends_email_metadata_key_auth_and_version(
    server: StripeServer, provider: StripeProvider
) -> None:
    key = _k()
    ref = await provider.ensure_customer(user_id="user-42", email="a@example.com", idempotency_key=key)
    assert ref.startswith("cus_")
    sent = _only(server, "POST", "/v1/customers")
    assert sent.params == {"email": "a@example.com", "metadata": {"user_id": "user-42"}}
    assert sent.headers["idempotency-key"] == key
    assert sent.headers["authorization"] == f"Bearer {server.api_key}"
    assert sent.headers["stripe-version"] == API_VERSION
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    # A retry with the same key gets the same customer, and Stripe holds only one.
    again = await provider.ensure_customer(user_id="user-42", email="a@example.com", idempotency_key=key)
    assert again == ref
    assert [c["id"] for c in server.objects("customer") if c["metadata"].get("user_id") == "user-42"] == [ref]


async def test_ensure_price_known_ref_makes_no_request(
    server: StripeServer, provider: StripeProvider
) -> None:
    assert await provider.ensure_price(price=_price(provider_ref="price_known"), idempotency_key=_k()) == (
        "price_known"
    )
    assert server.requests == []


async def test_ensure_price_creates_a_recurring_price_with_our_lookup_key(
    server: StripeServer, provider: StripeProvider
) -> None:
    spec = _price(1299, "year", plan_name="Premium", plan_code="premium", currency="EUR")
    key = _k()
    ref = await provider.ensure_price(price=spec, idempotency_key=key)
    sent = _only(server, "POST", "/v1/prices")
    assert sent.params == {
        "currency": "eur",
        "unit_amount": "1299",
        "recurring": {"interval": "year"},
        "product_data": {"name": "Premium", "metadata": {"plan_code": "premium"}},
        "lookup_key": f"cinema_{spec.price_id}",
        "transfer_lookup_key": "false",
        "metadata": {"price_id": spec.price_id, "plan_code": "premium"},
    }
    assert sent.headers["idempotency-key"] == f"{key}:price"
    lookup = _only(server, "GET", "/v1/prices")
    assert lookup.params == {"lookup_keys": [f"cinema_{spec.price_id}"], "limit": "1"}
    price = server.get(ref)
    assert (price["unit_amount"], price["currency"], price["recurring"]["interval"]) == (1299, "eur", "year")
    assert server.get(price["product"])["name"] == "Premium"
    # Lost the ref (e.g. the transaction that recorded it rolled back): found again, nothing created.
    server.reset_requests()
    assert await provider.ensure_price(price=spec, idempotency_key=_k()) == ref
    assert server.requests_to("POST", "/v1/prices") == []


async def test_ensure_price_takes_the_lookup_key_from_a_stale_price(
    server: StripeServer, provider: StripeProvider
) -> None:
    spec = _price(500)
    stale = await provider.ensure_price(price=spec, idempotency_key=_k())
    changed = _price(700, price_id=spec.price_id)
    fresh = await provider.ensure_price(price=changed, idempotency_key=_k())
    assert fresh != stale
    assert server.get(fresh)["lookup_key"] == f"cinema_{spec.price_id}"
    assert server.get(stale)["lookup_key"] is None
    assert server.requests_to("POST", "/v1/prices")[-1].params["transfer_lookup_key"] == "true"


async def test_subscription_checkout_with_a_trial(server: StripeServer, provider: StripeProvider) -> None:
    customer = await provider.ensure_customer(user_id="u-2", email="b@example.com", idempotency_key=_k())
    price = await provider.ensure_price(price=_price(), idempotency_key=_k())
    key = _k()
    checkout = await provider.create_subscription_checkout(
        customer_ref=customer,
        price_ref=price,
        trial_days=14,
        client_reference_id="u-2",
        metadata={"user_id": "u-2", "plan_code": "standard", "price_id": "p1"},
        success_url="https://cinema.test/ok",
        cancel_url="https://cinema.test/cancel",
        idempotency_key=key,
    )
    sent = _only(server, "POST", "/v1/checkout/sessions")
    assert sent.headers["idempotency-key"] == key
    assert sent.params == {
        "mode": "subscription",
        "customer": customer,
        "client_reference_id": "u-2",
        "line_items": [{"price": price, "quantity": "1"}],
        "subscription_data": {
            "metadata": {"user_id": "u-2", "plan_code": "standard", "price_id": "p1"},
            "trial_period_days": "14",
        },
        "metadata": {"user_id": "u-2", "plan_code": "standard", "price_id": "p1"},
        "success_url": "https://cinema.test/ok",
        "cancel_url": "https://cinema.test/cancel",
        "allow_promotion_codes": "false",
    }
    assert checkout.id.startswith("cs_test_")
    assert checkout.url and checkout.url.startswith(server.url)
    assert (checkout.mode, checkout.status, checkout.payment_status) == ("subscription", "open", "unpaid")
    assert checkout.customer_ref == customer
    assert checkout.client_reference_id == "u-2"
    assert checkout.metadata["plan_code"] == "standard"
    assert checkout.currency == "USD"
    assert checkout.created_at is not None and checkout.created_at.tzinfo is UTC

    ids = server.complete_checkout(checkout.id)
    done = await provider.get_checkout(checkout.id)
    assert (done.status, done.payment_status) == ("complete", "no_payment_required")
    assert done.subscription_ref == ids["subscription"]
    assert done.invoice_ref == ids["invoice"]
    state = await provider.get_subscription(ids["subscription"] or "")
    assert state.status == "trialing"
    assert state.trial_end is not None
    assert state.current_period_end == state.trial_end
    assert state.metadata == {"user_id": "u-2", "plan_code": "standard", "price_id": "p1"}


async def test_subscription_checkout_without_trial_sends_no_trial(
    server: StripeServer, provider: StripeProvider
) -> None:
    subscribed = await _subscribed(server, provider, trial_days=0)
    sent = _only(server, "POST", "/v1/checkout/sessions")
    assert "trial_period_days" not in sent.params["subscription_data"]
    checkout = await provider.get_checkout(subscribed["checkout"].id)
    assert checkout.payment_status == "paid"
    assert checkout.amount_total == 999


async def test_get_subscription_maps_the_item_period(server: StripeServer, provider: StripeProvider) -> None:
    subscribed = await _subscribed(server, provider, amount=1499)
    start, end = 1_900_000_000, 1_902_592_000
    server.set_subscription(subscribed["subscription"], current_period_start=start, current_period_end=end)
    state = await provider.get_subscription(subscribed["subscription"])
    raw = server.get(subscribed["subscription"])
    assert "current_period_end" not in raw  # 2026 API: only on the item
    assert state.id == subscribed["subscription"]
    assert state.customer_ref == subscribed["customer"]
    assert state.status == "active"
    assert state.price_ref == subscribed["price"]
    assert state.item_ref == raw["items"]["data"][0]["id"]
    assert (state.currency, state.amount_minor, state.interval) == ("USD", 1499, "month")
    assert state.current_period_start == datetime.fromtimestamp(start, UTC)
    assert state.current_period_end == datetime.fromtimestamp(end, UTC)
    assert state.cancel_at_period_end is False
    assert state.latest_invoice_ref == subscribed["invoice"]
    assert state.created_at is not None and state.created_at.tzinfo is UTC
    sent = _only(server, "GET", f"/v1/subscriptions/{subscribed['subscription']}")
    assert sent.headers["authorization"] == f"Bearer {server.api_key}"


async def test_change_price_upgrade_is_invoiced_at_once(
    server: StripeServer, provider: StripeProvider
) -> None:
    subscribed = await _subscribed(server, provider, amount=999)
    state = await provider.get_subscription(subscribed["subscription"])
    premium = await provider.ensure_price(price=_price(1999), idempotency_key=_k())
    server.reset_requests()
    key = _k()
    changed = await provider.change_price(
        subscription_ref=state.id,
        item_ref=state.item_ref,
        price_ref=premium,
        upgrade=True,
        idempotency_key=key,
    )
    sent = _only(server, "POST", f"/v1/subscriptions/{state.id}")
    assert sent.params == {
        "items": [{"id": state.item_ref, "price": premium}],
        "proration_behavior": "always_invoice",
        "payment_behavior": "pending_if_incomplete",
    }
    assert sent.headers["idempotency-key"] == key
    assert changed.price_ref == premium
    assert changed.amount_minor == 1999
    proration = await provider.get_invoice(changed.latest_invoice_ref or "")
    assert proration.billing_reason == "subscription_update"
    assert proration.status == "paid"
    assert all(line.proration for line in proration.lines)
    assert proration.subscription_ref == state.id
    assert proration.payment_ref is not None


async def test_change_price_downgrade_leaves_a_credit(server: StripeServer, provider: StripeProvider) -> None:
    subscribed = await _subscribed(server, provider, amount=1999)
    state = await provider.get_subscription(subscribed["subscription"])
    basic = await provider.ensure_price(price=_price(599), idempotency_key=_k())
    server.reset_requests()
    changed = await provider.change_price(
        subscription_ref=state.id,
        item_ref=state.item_ref,
        price_ref=basic,
        upgrade=False,
        idempotency_key=_k(),
    )
    sent = _only(server, "POST", f"/v1/subscriptions/{state.id}")
    assert sent.params == {
        "items": [{"id": state.item_ref, "price": basic}],
        "proration_behavior": "create_prorations",
    }
    assert changed.price_ref == basic
    assert changed.latest_invoice_ref == subscribed["invoice"]  # nothing invoiced now
    renewal = server.advance_period(state.id)
    invoice = await provider.get_invoice(renewal["invoice"] or "")
    assert [line.proration for line in invoice.lines] == [False, True, True]
    assert invoice.total_minor < 599  # the unused time of the dearer plan is credited


async def test_change_price_upgrade_declined_keeps_the_old_price(
    server: StripeServer, provider: StripeProvider
) -> None:
    subscribed = await _subscribed(server, provider, amount=999)
    state = await provider.get_subscription(subscribed["subscription"])
    premium = await provider.ensure_price(price=_price(1999), idempotency_key=_k())
    server.set_card_failing(subscribed["customer"])
    with pytest.raises(ProviderRefused) as error:
        await provider.change_price(
            subscription_ref=state.id,
            item_ref=state.item_ref,
            price_ref=premium,
            upgrade=True,
            idempotency_key=_k(),
        )
    assert (error.value.status, error.value.code) == (402, "payment_refused")
    after = await provider.get_subscription(state.id)
    assert after.price_ref == subscribed["price"]
    assert after.status == "active"


async def test_cancel_at_period_end_and_resume(server: StripeServer, provider: StripeProvider) -> None:
    subscribed = await _subscribed(server, provider)
    key = _k()
    cancelled = await provider.set_cancel_at_period_end(
        subscription_ref=subscribed["subscription"], cancel=True, idempotency_key=key
    )
    assert cancelled.cancel_at_period_end is True
    assert cancelled.status == "active"
    sent = server.requests_to("POST", f"/v1/subscriptions/{subscribed['subscription']}")
    assert [(r.params, r.headers["idempotency-key"]) for r in sent] == [
        ({"cancel_at_period_end": "true"}, key)
    ]
    resumed = await provider.set_cancel_at_period_end(
        subscription_ref=subscribed["subscription"], cancel=False, idempotency_key=_k()
    )
    assert resumed.cancel_at_period_end is False
    assert server.requests_to("POST", "/v1/subscriptions/")[-1].params == {"cancel_at_period_end": "false"}


async def test_cancel_at_period_end_then_the_period_ends(
    server: StripeServer, provider: StripeProvider
) -> None:
    subscribed = await _subscribed(server, provider)
    await provider.set_cancel_at_period_end(
        subscription_ref=subscribed["subscription"], cancel=True, idempotency_key=_k()
    )
    server.advance_period(subscribed["subscription"])
    state = await provider.get_subscription(subscribed["subscription"])
    assert state.status == "canceled"
    assert state.ended_at == state.current_period_end


async def test_payment_checkout_and_its_charge(server: StripeServer, provider: StripeProvider) -> None:
    customer = await provider.ensure_customer(user_id="u-3", email="c@example.com", idempotency_key=_k())
    key = _k()
    checkout = await provider.create_payment_checkout(
        customer_ref=customer,
        currency="GBP",
        amount_minor=399,
        description="Rent: The Third Man",
        client_reference_id="u-3",
        metadata={"purchase_id": "pur-1", "user_id": "u-3"},
        success_url="https://cinema.test/ok",
        cancel_url="https://cinema.test/cancel",
        idempotency_key=key,
    )
    sent = _only(server, "POST", "/v1/checkout/sessions")
    assert sent.headers["idempotency-key"] == key
    assert sent.params == {
        "mode": "payment",
        "customer": customer,
        "client_reference_id": "u-3",
        "line_items": [
            {
                "quantity": "1",
                "price_data": {
                    "currency": "gbp",
                    "unit_amount": "399",
                    "product_data": {"name": "Rent: The Third Man"},
                },
            }
        ],
        "payment_intent_data": {
            "metadata": {"purchase_id": "pur-1", "user_id": "u-3"},
            "description": "Rent: The Third Man",
        },
        "metadata": {"purchase_id": "pur-1", "user_id": "u-3"},
        "success_url": "https://cinema.test/ok",
        "cancel_url": "https://cinema.test/cancel",
        "allow_promotion_codes": "false",
    }
    assert (checkout.mode, checkout.status, checkout.amount_total, checkout.currency) == (
        "payment",
        "open",
        399,
        "GBP",
    )
    assert checkout.payment_ref is None

    vat = server.add_tax_rate("VAT", 20.0)
    ids = server.complete_checkout(checkout.id, tax_rate=vat)
    done = await provider.get_checkout(checkout.id)
    assert (done.status, done.payment_status) == ("complete", "paid")
    assert done.payment_ref == ids["payment_intent"]
    assert (done.amount_subtotal, done.amount_tax, done.amount_total) == (399, 80, 479)
    assert server.get(ids["payment_intent"] or "")["metadata"] == {"purchase_id": "pur-1", "user_id": "u-3"}

    charge = await provider.charge_for_payment(ids["payment_intent"] or "")
    assert charge is not None
    assert charge.id == ids["charge"]
    assert (charge.payment_ref, charge.currency, charge.amount_minor) == (ids["payment_intent"], "GBP", 479)
    assert (charge.amount_refunded_minor, charge.refunded, charge.disputed) == (0, False, False)
    assert _only(server, "GET", f"/v1/payment_intents/{ids['payment_intent']}").params == {
        "expand": ["latest_charge"]
    }


async def test_refunds_and_disputes_show_on_the_charge(
    server: StripeServer, provider: StripeProvider
) -> None:
    subscribed = await _subscribed(server, provider, amount=1000)
    charge_id = subscribed["charge"]
    server.refund_charge(charge_id, amount=300)
    partial = await provider.get_charge(charge_id)
    assert (partial.amount_refunded_minor, partial.refunded) == (300, False)
    server.refund_charge(charge_id)
    full = await provider.get_charge(charge_id)
    assert (full.amount_refunded_minor, full.refunded) == (1000, True)
    server.dispute_charge(charge_id)
    assert (await provider.get_charge(charge_id)).disputed is True


async def test_payment_without_a_charge_yet(server: StripeServer, provider: StripeProvider) -> None:
    customer = await provider.ensure_customer(user_id="u-4", email="d@example.com", idempotency_key=_k())
    checkout = await provider.create_payment_checkout(
        customer_ref=customer,
        currency="USD",
        amount_minor=500,
        description="Buy: Metropolis",
        client_reference_id="u-4",
        metadata={"purchase_id": "pur-2"},
        success_url="https://cinema.test/ok",
        cancel_url="https://cinema.test/cancel",
        idempotency_key=_k(),
    )
    ids = server.complete_checkout(checkout.id, paid=False)
    pending = await provider.get_checkout(checkout.id)
    assert (pending.status, pending.payment_status) == ("complete", "unpaid")
    assert await provider.charge_for_payment(ids["payment_intent"] or "") is None
    server.settle_checkout(checkout.id, succeeded=True)
    assert (await provider.get_checkout(checkout.id)).payment_status == "paid"
    assert await provider.charge_for_payment(ids["payment_intent"] or "") is not None


async def test_expired_checkout(server: StripeServer, provider: StripeProvider) -> None:
    customer = await provider.ensure_customer(user_id="u-5", email="e@example.com", idempotency_key=_k())
    checkout = await provider.create_payment_checkout(
        customer_ref=customer,
        currency="USD",
        amount_minor=500,
        description="Buy: Nosferatu",
        client_reference_id="u-5",
        metadata={},
        success_url="https://cinema.test/ok",
        cancel_url="https://cinema.test/cancel",
        idempotency_key=_k(),
    )
    server.expire_checkout(checkout.id)
    assert (await provider.get_checkout(checkout.id)).status == "expired"


async def test_get_invoice_with_taxes_payment_and_subscription(
    server: StripeServer, provider: StripeProvider
) -> None:
    subscribed = await _subscribed(server, provider, amount=1000)
    vat = server.add_tax_rate("VAT", 20.0)
    renewal = server.advance_period(subscribed["subscription"], tax_rate=vat)
    server.reset_requests()
    invoice = await provider.get_invoice(renewal["invoice"] or "")
    assert _only(server, "GET", f"/v1/invoices/{renewal['invoice']}").params == {"expand": ["payments"]}
    assert _only(server, "GET", f"/v1/tax_rates/{vat}").status == 200
    assert invoice.status == "paid"
    assert invoice.customer_ref == subscribed["customer"]
    assert invoice.subscription_ref == subscribed["subscription"]
    assert invoice.payment_ref == renewal["payment_intent"]
    assert invoice.billing_reason == "subscription_cycle"
    assert (invoice.currency, invoice.subtotal_minor, invoice.tax_minor, invoice.total_minor) == (
        "USD",
        1000,
        200,
        1200,
    )
    assert invoice.amount_paid_minor == 1200
    assert invoice.number and invoice.number.endswith("-0002")
    assert invoice.paid_at is not None and invoice.paid_at.tzinfo is UTC
    assert len(invoice.tax_lines) == 1
    tax = invoice.tax_lines[0]
    assert (tax.description, tax.amount_minor, tax.rate_percent, tax.inclusive) == ("VAT", 200, "20.0", False)
    (line,) = invoice.lines
    assert (line.amount_minor, line.quantity, line.proration) == (1000, 1, False)
    assert (
        line.period_start is not None and line.period_end is not None and line.period_start < line.period_end
    )


async def test_get_invoice_inclusive_tax(server: StripeServer, provider: StripeProvider) -> None:
    subscribed = await _subscribed(server, provider, amount=1200)
    vat = server.add_tax_rate("MwSt", 20.0, inclusive=True)
    renewal = server.advance_period(subscribed["subscription"], tax_rate=vat)
    invoice = await provider.get_invoice(renewal["invoice"] or "")
    assert (invoice.subtotal_minor, invoice.tax_minor, invoice.total_minor) == (1200, 200, 1200)
    assert invoice.tax_lines[0].inclusive is True


async def test_failed_renewal_and_later_payment(server: StripeServer, provider: StripeProvider) -> None:
    subscribed = await _subscribed(server, provider)
    renewal = server.advance_period(subscribed["subscription"], paid=False)
    open_invoice = await provider.get_invoice(renewal["invoice"] or "")
    assert (open_invoice.status, open_invoice.amount_paid_minor, open_invoice.paid_at) == ("open", 0, None)
    assert (await provider.get_subscription(subscribed["subscription"])).status == "past_due"
    failed = await provider.get_charge(renewal["charge"] or "")
    assert failed.amount_minor == 999
    server.pay_invoice(renewal["invoice"] or "")
    assert (await provider.get_invoice(renewal["invoice"] or "")).status == "paid"
    assert (await provider.get_subscription(subscribed["subscription"])).status == "active"


async def test_long_invoices_are_read_in_full(server: StripeServer, provider: StripeProvider) -> None:
    subscribed = await _subscribed(server, provider)
    more = [(f"Extra {n}", 10 + n) for n in range(14)]
    invoice_id = server.add_invoice(
        subscribed["subscription"], amount=100, description="Main", more_lines=more
    )
    assert server.get(invoice_id)["lines"]["has_more"] is True
    server.reset_requests()
    invoice = await provider.get_invoice(invoice_id)
    assert [line.description for line in invoice.lines] == ["Main", *(text for text, _ in more)]
    assert _only(server, "GET", f"/v1/invoices/{invoice_id}/lines").params == {"limit": "100"}


async def test_portal_url(server: StripeServer, provider: StripeProvider) -> None:
    customer = await provider.ensure_customer(user_id="u-6", email="f@example.com", idempotency_key=_k())
    url = await provider.portal_url(customer_ref=customer, return_url="https://cinema.test/account/billing")
    assert url.startswith(f"{server.url}/p/session/")
    sent = _only(server, "POST", "/v1/billing_portal/sessions")
    assert sent.params == {"customer": customer, "return_url": "https://cinema.test/account/billing"}


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("call", "ref"),
    [
        ("get_subscription", "sub_missing"),
        ("get_invoice", "in_missing"),
        ("get_charge", "ch_missing"),
        ("get_checkout", "cs_test_missing"),
        ("charge_for_payment", "pi_missing"),
    ],
)
async def test_unknown_objects_are_not_found(
    server: StripeServer, provider: StripeProvider, call: str, ref: str
) -> None:
    with pytest.raises(ObjectNotFound) as error:
        await getattr(provider, call)(ref)
    assert (error.value.status, error.value.code) == (404, "payment_object_not_found")


async def test_unknown_customer_in_a_write_is_not_found(
    server: StripeServer, provider: StripeProvider
) -> None:
    with pytest.raises(ObjectNotFound):
        await provider.portal_url(customer_ref="cus_missing", return_url="https://cinema.test/")


async def test_server_errors_are_retried_with_the_same_key(
    server: StripeServer, provider: StripeProvider
) -> None:
    server.fail_next(500, times=1)
    key = _k()
    ref = await provider.ensure_customer(user_id="u-7", email="g@example.com", idempotency_key=key)
    attempts = server.requests_to("POST", "/v1/customers")
    assert [r.status for r in attempts] == [500, 200]
    assert {r.headers["idempotency-key"] for r in attempts} == {key}
    assert ref.startswith("cus_")


async def test_persistent_server_errors_become_provider_error(
    server: StripeServer, provider: StripeProvider
) -> None:
    server.fail_next(503, times=3)
    with pytest.raises(ProviderError) as error:
        await provider.get_subscription("sub_whatever")
    assert (error.value.status, error.value.code) == (502, "payment_provider_error")
    assert len(server.requests_to("GET", "/v1/subscriptions/")) == 3  # first try + 2 retries


@pytest.mark.parametrize(
    ("status", "kind", "code", "expected"),
    [
        (429, "invalid_request_error", "rate_limit", ProviderError),
        (400, "invalid_request_error", "parameter_invalid_empty", ProviderError),
        (400, "idempotency_error", None, ProviderError),
        (402, "card_error", "card_declined", ProviderRefused),
        (403, "invalid_request_error", None, ProviderError),
    ],
)
async def test_error_mapping(
    server: StripeServer,
    provider: StripeProvider,
    status: int,
    kind: str,
    code: str | None,
    expected: type[Exception],
) -> None:
    server.fail_next(status, type=kind, code=code, message="Your card was declined.", should_retry=False)
    with pytest.raises(expected) as error:
        await provider.ensure_customer(user_id="u-8", email="h@example.com", idempotency_key=_k())
    if expected is ProviderRefused:
        assert (error.value.status, error.value.code) == (402, "payment_refused")  # type: ignore[attr-defined]
        assert "declined" in str(error.value)
    else:
        assert (error.value.status, error.value.code) == (502, "payment_provider_error")  # type: ignore[attr-defined]


async def test_idempotency_key_reused_with_other_params(
    server: StripeServer, provider: StripeProvider
) -> None:
    key = _k()
    await provider.ensure_customer(user_id="u-9", email="i@example.com", idempotency_key=key)
    with pytest.raises(ProviderError):
        await provider.ensure_customer(user_id="u-9", email="other@example.com", idempotency_key=key)
    assert server.requests_to("POST", "/v1/customers")[-1].body["error"]["type"] == "idempotency_error"


async def test_a_wrong_key_never_shows_in_errors_or_logs(
    make_provider: Callable[[StripeServer], StripeProvider], caplog: pytest.LogCaptureFixture
) -> None:
    with StripeServer() as strict:
        other = StripeServer()  # only for its random key
        other.stop()
        provider = make_provider(strict)
        wrong = other.api_key
        provider._settings = provider._settings.model_copy(update={"stripe_secret_key": wrong})
        caplog.set_level(logging.DEBUG)
        with pytest.raises(ProviderError) as error:
            await provider.get_subscription("sub_x")
        assert strict.requests[-1].status == 401
    text = f"{error.value} {error.value.detail} {error.value.extra} {caplog.text}"
    assert wrong not in text and wrong[-12:] not in text


async def test_unreachable_stripe_is_a_provider_error(
    make_provider: Callable[[StripeServer], StripeProvider],
) -> None:
    gone = StripeServer()
    gone.stop()  # the port is released: nothing listens
    provider = make_provider(gone)
    with pytest.raises(ProviderError):
        await provider.get_charge("ch_x")


def test_not_configured_is_a_provider_error(settings_env: Callable[..., None]) -> None:
    import asyncio

    from shared.settings import get_settings

    settings_env(PAYMENTS_PROVIDER="sandbox", STRIPE_SECRET_KEY=None, STRIPE_API_BASE=None)
    provider = StripeProvider(get_settings())
    with pytest.raises(ProviderError) as error:
        asyncio.run(provider.get_charge("ch_x"))
    assert error.value.code == "payments_not_configured"


# ------------------------------------------------------------------------------- shapes and versions


async def test_reads_pre_2025_shapes_too(make_provider: Callable[[StripeServer], StripeProvider]) -> None:
    with StripeServer(legacy_fields=True) as legacy:
        provider = make_provider(legacy)
        subscribed = await _subscribed(legacy, provider, amount=800)
        raw = legacy.get(subscribed["subscription"])
        assert "current_period_end" in raw
        state = await provider.get_subscription(subscribed["subscription"])
        assert state.current_period_end == datetime.fromtimestamp(raw["current_period_end"], UTC)


def test_mappers_fall_back_to_the_old_fields() -> None:
    subscription = {
        "id": "sub_old",
        "object": "subscription",
        "customer": {"id": "cus_old", "object": "customer"},
        "status": "active",
        "current_period_start": 1_700_000_000,
        "current_period_end": 1_702_592_000,
        "cancel_at_period_end": False,
        "cancel_at": None,
        "items": {
            "data": [
                {
                    "id": "si_old",
                    "quantity": 2,
                    "price": {
                        "id": "price_old",
                        "currency": "eur",
                        "unit_amount": 500,
                        "recurring": {"interval": "year"},
                    },
                }
            ]
        },
        "latest_invoice": {"id": "in_old"},
        "metadata": {},
        "created": 1_700_000_000,
    }
    state = subscription_from_stripe(subscription)
    assert (state.customer_ref, state.amount_minor, state.interval, state.currency) == (
        "cus_old",
        1000,
        "year",
        "EUR",
    )
    assert state.current_period_end == datetime.fromtimestamp(1_702_592_000, UTC)
    assert state.latest_invoice_ref == "in_old"
    # A cancellation dated at period end (cancel_at) counts as cancel_at_period_end.
    assert subscription_from_stripe({**subscription, "cancel_at": 1_702_592_000}).cancel_at_period_end is True

    invoice = {
        "id": "in_old",
        "customer": "cus_old",
        "status": "paid",
        "currency": "eur",
        "subtotal": 1000,
        "total": 1190,
        "amount_paid": 1190,
        "created": 1_700_000_000,
        "subscription": "sub_old",
        "payment_intent": "pi_old",
        "total_tax_amounts": [{"amount": 190, "inclusive": False, "tax_rate": "txr_old"}],
        "lines": {"data": [{"description": "Plan", "amount": 1000, "quantity": 1, "proration": True}]},
        "status_transitions": {"paid_at": 1_700_000_100},
    }
    rates = {"txr_old": {"display_name": "IVA", "percentage": 19.0}}
    mapped = invoice_from_stripe(invoice, tax_rates=rates)
    assert (mapped.subscription_ref, mapped.payment_ref, mapped.tax_minor) == ("sub_old", "pi_old", 190)
    assert mapped.tax_lines[0].description == "IVA" and mapped.tax_lines[0].rate_percent == "19.0"
    assert mapped.lines[0].proration is True


# ------------------------------------------------------------------- cancel now, expire, refund


async def _paid_payment(
    server: StripeServer, provider: StripeProvider, *, amount: int = 450
) -> dict[str, Any]:
    customer = await provider.ensure_customer(user_id="u-20", email="t@example.com", idempotency_key=_k())
    checkout = await provider.create_payment_checkout(
        customer_ref=customer,
        currency="USD",
        amount_minor=amount,
        description="Rent: Sunrise",
        client_reference_id="u-20",
        metadata={"purchase_id": "pur-20", "user_id": "u-20"},
        success_url="https://cinema.test/ok",
        cancel_url="https://cinema.test/cancel",
        idempotency_key=_k(),
    )
    return {"checkout": checkout, **server.complete_checkout(checkout.id)}


def _no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_cancel_now_ends_at_once_without_proration(
    server: StripeServer, provider: StripeProvider
) -> None:
    subscribed = await _subscribed(server, provider)
    ref = subscribed["subscription"]
    server.reset_requests()
    key = _k()
    state = await provider.cancel_now(subscription_ref=ref, idempotency_key=key)
    sent = _only(server, "DELETE", f"/v1/subscriptions/{ref}")
    assert sent.params == {"prorate": "false", "invoice_now": "false"}
    assert sent.headers["idempotency-key"] == key
    assert sent.status == 200
    assert state.status == "canceled"
    assert state.ended_at is not None and state.canceled_at is not None
    assert server.get(ref)["status"] == "canceled"
    assert server.requests_to("POST", "/v1/invoices") == []  # no final invoice


async def test_cancel_now_again_answers_the_ended_subscription(
    server: StripeServer, provider: StripeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    subscribed = await _subscribed(server, provider)
    ref = subscribed["subscription"]
    key = _k()
    first = await provider.cancel_now(subscription_ref=ref, idempotency_key=key)
    caplog.set_level(logging.INFO, logger="cinema.payments.stripe")
    server.reset_requests()
    # The same key (a retry) and another key (a second reason to end it): Stripe answers 404 to both.
    again = await provider.cancel_now(subscription_ref=ref, idempotency_key=key)
    other = await provider.cancel_now(subscription_ref=ref, idempotency_key=_k())
    assert again == first and other == first
    assert [r.status for r in server.requests_to("DELETE", "/v1/subscriptions/")] == [404, 404]
    assert len(server.requests_to("GET", f"/v1/subscriptions/{ref}")) == 2
    _no_errors_logged(caplog)


async def test_cancel_now_of_a_subscription_that_ended_at_period_end(
    server: StripeServer, provider: StripeProvider
) -> None:
    subscribed = await _subscribed(server, provider)
    ref = subscribed["subscription"]
    await provider.set_cancel_at_period_end(subscription_ref=ref, cancel=True, idempotency_key=_k())
    server.advance_period(ref)
    ended = server.get(ref)
    state = await provider.cancel_now(subscription_ref=ref, idempotency_key=_k())
    assert state.status == "canceled"
    assert state.ended_at == datetime.fromtimestamp(ended["ended_at"], UTC)


async def test_cancel_now_of_an_unknown_subscription_is_not_found(
    server: StripeServer, provider: StripeProvider
) -> None:
    with pytest.raises(ObjectNotFound):
        await provider.cancel_now(subscription_ref="sub_missing", idempotency_key=_k())


async def test_expire_checkout_closes_an_open_session(server: StripeServer, provider: StripeProvider) -> None:
    customer = await provider.ensure_customer(user_id="u-21", email="x@example.com", idempotency_key=_k())
    checkout = await provider.create_payment_checkout(
        customer_ref=customer,
        currency="USD",
        amount_minor=300,
        description="Buy: Vampyr",
        client_reference_id="u-21",
        metadata={},
        success_url="https://cinema.test/ok",
        cancel_url="https://cinema.test/cancel",
        idempotency_key=_k(),
    )
    server.reset_requests()
    expired = await provider.expire_checkout(checkout.id)
    sent = _only(server, "POST", f"/v1/checkout/sessions/{checkout.id}/expire")
    assert sent.params == {}
    assert sent.headers.get("idempotency-key")  # the SDK keys every POST, so its retries are safe
    assert (expired.id, expired.status, expired.url) == (checkout.id, "expired", None)
    assert server.get(checkout.id)["status"] == "expired"


async def test_expire_checkout_already_expired_or_complete_is_returned_as_is(
    server: StripeServer, provider: StripeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cinema.payments.stripe")
    paid = await _paid_payment(server, provider)
    server.reset_requests()
    complete = await provider.expire_checkout(paid["checkout"].id)
    assert (complete.status, complete.payment_status) == ("complete", "paid")
    assert complete.payment_ref == paid["payment_intent"]
    assert [r.status for r in server.requests_to("POST", "/v1/checkout/sessions/")] == [400]

    open_one = await provider.create_payment_checkout(
        customer_ref=paid["customer"],
        currency="USD",
        amount_minor=300,
        description="Buy: Faust",
        client_reference_id="u-20",
        metadata={},
        success_url="https://cinema.test/ok",
        cancel_url="https://cinema.test/cancel",
        idempotency_key=_k(),
    )
    first = await provider.expire_checkout(open_one.id)
    again = await provider.expire_checkout(open_one.id)
    assert first == again and again.status == "expired"
    _no_errors_logged(caplog)


async def test_expire_checkout_of_an_unknown_session_is_not_found(
    server: StripeServer, provider: StripeProvider
) -> None:
    with pytest.raises(ObjectNotFound):
        await provider.expire_checkout("cs_test_missing")


async def test_refund_sends_the_payment_intent_and_answers_the_refunded_charge(
    server: StripeServer, provider: StripeProvider
) -> None:
    paid = await _paid_payment(server, provider, amount=450)
    server.reset_requests()
    key = _k()
    charge = await provider.refund(payment_ref=paid["payment_intent"], idempotency_key=key)
    sent = _only(server, "POST", "/v1/refunds")
    assert sent.params == {"payment_intent": paid["payment_intent"]}  # no amount: all of it
    assert sent.headers["idempotency-key"] == key
    assert charge.id == paid["charge"]
    assert (charge.payment_ref, charge.amount_minor, charge.amount_refunded_minor, charge.refunded) == (
        paid["payment_intent"],
        450,
        450,
        True,
    )
    assert [r["charge"] for r in server.objects("refund")].count(paid["charge"]) == 1


async def test_refund_retried_with_its_key_refunds_once(
    server: StripeServer, provider: StripeProvider
) -> None:
    paid = await _paid_payment(server, provider)
    key = _k()
    first = await provider.refund(payment_ref=paid["payment_intent"], idempotency_key=key)
    again = await provider.refund(payment_ref=paid["payment_intent"], idempotency_key=key)
    assert first == again
    assert [r.status for r in server.requests_to("POST", "/v1/refunds")][-2:] == [200, 200]
    assert [r["charge"] for r in server.objects("refund")].count(paid["charge"]) == 1


async def test_refund_of_a_fully_refunded_payment_answers_its_charge(
    server: StripeServer, provider: StripeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cinema.payments.stripe")
    paid = await _paid_payment(server, provider)
    server.refund_charge(paid["charge"])  # e.g. from the Dashboard
    server.reset_requests()
    charge = await provider.refund(payment_ref=paid["payment_intent"], idempotency_key=_k())
    assert charge.refunded is True and charge.id == paid["charge"]
    refused = _only(server, "POST", "/v1/refunds")
    assert (refused.status, refused.body["error"]["code"]) == (400, "charge_already_refunded")
    _no_errors_logged(caplog)


async def test_refund_after_a_partial_refund_takes_the_rest(
    server: StripeServer, provider: StripeProvider
) -> None:
    paid = await _paid_payment(server, provider, amount=1000)
    server.refund_charge(paid["charge"], amount=300)
    charge = await provider.refund(payment_ref=paid["payment_intent"], idempotency_key=_k())
    assert (charge.amount_refunded_minor, charge.refunded) == (1000, True)


async def test_refund_of_a_disputed_payment_is_a_provider_error(
    server: StripeServer, provider: StripeProvider
) -> None:
    paid = await _paid_payment(server, provider)
    server.dispute_charge(paid["charge"])
    with pytest.raises(ProviderError) as error:
        await provider.refund(payment_ref=paid["payment_intent"], idempotency_key=_k())
    assert (error.value.status, error.value.code) == (502, "payment_provider_error")
    assert server.requests_to("POST", "/v1/refunds")[-1].body["error"]["code"] == "charge_disputed"


async def test_refund_of_an_unknown_payment_is_not_found(
    server: StripeServer, provider: StripeProvider
) -> None:
    with pytest.raises(ObjectNotFound):
        await provider.refund(payment_ref="pi_missing", idempotency_key=_k())


# ------------------------------------------------------------------------ objects we do not sell


def _subscription_object(**overrides: Any) -> dict[str, Any]:
    subscription: dict[str, Any] = {
        "id": "sub_x",
        "customer": "cus_x",
        "status": "active",
        "cancel_at_period_end": False,
        "items": {
            "data": [
                {
                    "id": "si_x",
                    "quantity": 1,
                    "current_period_start": 1_700_000_000,
                    "current_period_end": 1_702_592_000,
                    "price": {
                        "id": "price_x",
                        "currency": "usd",
                        "unit_amount": 500,
                        "recurring": {"interval": "month"},
                    },
                }
            ]
        },
    }
    subscription.update(overrides)
    return subscription


def _weekly() -> dict[str, Any]:
    subscription = _subscription_object()
    subscription["items"]["data"][0]["price"]["recurring"] = {"interval": "week"}
    return subscription


@pytest.mark.parametrize(
    "subscription",
    [
        _weekly(),
        _subscription_object(items={"data": []}),
        _subscription_object(items=None),
        _subscription_object(status="some_future_status"),
    ],
    ids=["weekly", "no-items", "items-missing", "unknown-status"],
)
def test_subscriptions_we_do_not_sell_are_not_found(subscription: dict[str, Any]) -> None:
    assert subscription_from_stripe(_subscription_object()).status == "active"  # the baseline maps
    with pytest.raises(ObjectNotFound) as error:
        subscription_from_stripe(subscription)
    assert (error.value.status, error.value.code) == (404, "payment_object_not_found")


def test_a_setup_checkout_is_not_found() -> None:
    session = {
        "id": "cs_test_x",
        "mode": "setup",
        "status": "complete",
        "payment_status": "no_payment_required",
    }
    with pytest.raises(ObjectNotFound):
        checkout_from_stripe(session)
    assert checkout_from_stripe({**session, "mode": "payment"}).mode == "payment"


def test_an_invoice_in_an_unknown_status_is_not_found() -> None:
    invoice = {
        "id": "in_x",
        "customer": "cus_x",
        "status": "some_future_status",
        "currency": "usd",
        "created": 1,
    }
    with pytest.raises(ObjectNotFound):
        invoice_from_stripe(invoice)


async def test_a_subscription_read_in_a_status_we_do_not_know_is_not_found(
    server: StripeServer, provider: StripeProvider
) -> None:
    subscribed = await _subscribed(server, provider)
    server.set_subscription(subscribed["subscription"], status="some_future_status")
    with pytest.raises(ObjectNotFound):
        await provider.get_subscription(subscribed["subscription"])
