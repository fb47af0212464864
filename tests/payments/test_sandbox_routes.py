"""The sandbox's HTTP side through api/payments.py: subscribe and pay on the sandbox checkout page (the same
event handling as Stripe's webhooks makes the subscription), decline, the page's safety (CSP, escaping), the
portal, the owner-only dev controls, and the whole sandbox answering 404 where it is not the provider."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from shared.payments.providers import sandbox
from shared.payments.providers.sandbox import SandboxProvider
from shared.settings import get_settings
from tests.support.identity import SignedIn, client_for, random_ip, signed_in_user

Db = psycopg.AsyncConnection[Any]
PAYMENTS = "/api/v1/payments"
URLS = {
    "success_url": "http://localhost:3000/account/billing?checkout=success&session={CHECKOUT_SESSION_ID}",
    "cancel_url": "http://localhost:3000/account/billing?checkout=cancel",
}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client of the payments group from a fresh address."""
    from api.payments import app

    async with client_for(app, client_ip=random_ip()) as opened:
        yield opened


def problem(response: httpx.Response, status: int, code: str) -> None:
    """Assert a problem+json answer with this status and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code, response.json()


async def rows(db: Db, query: str, *params: Any) -> list[dict[str, Any]]:
    """Rows as dicts."""
    async with db.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        await cursor.execute(query, params)
        return await cursor.fetchall()


async def start_subscription(client: httpx.AsyncClient, user: SignedIn, plan: str = "standard") -> str:
    """POST /subscribe; the checkout page's path."""
    started = await client.post(
        f"{PAYMENTS}/subscribe",
        json={"plan_code": plan, "interval": "month", "currency": "USD"},
        headers=user.headers,
    )
    assert started.status_code == 201, started.text
    url: str = started.json()["checkout_url"]
    assert url.startswith(str(get_settings().public_base_url).rstrip("/") + sandbox.CHECKOUT_PATH)
    return urlsplit(url).path


async def subscribed(client: httpx.AsyncClient, db: Db, user: SignedIn) -> dict[str, Any]:
    """Subscribe and pay on the sandbox page; the user's subscriptions row."""
    path = await start_subscription(client, user)
    done = await client.post(f"{path}/complete")
    assert done.status_code == 303, done.text
    [row] = await rows(db, "select * from public.subscriptions where user_id = %s", user.user_id)
    return row


async def sandbox_events(db: Db, object_id: str) -> list[dict[str, Any]]:
    """The sandbox's events about one object, in order."""
    found = await rows(
        db,
        """select data from public.sandbox_payment_objects where kind = 'event'
           and data->'event'->'data'->'object'->>'id' = %s order by created_at, id""",
        object_id,
    )
    return [row["data"] for row in found]


async def handled(db: Db, event_ids: list[str]) -> list[dict[str, Any]]:
    """payment_events rows of these sandbox events."""
    return await rows(
        db,
        "select event_id, type, outcome from public.payment_events"
        " where provider = 'sandbox' and event_id = any(%s)",
        event_ids,
    )


async def test_subscribe_and_pay_on_the_checkout_page(
    database_url: str, db: Db, client: httpx.AsyncClient
) -> None:
    user = await signed_in_user(database_url)
    path = await start_subscription(client, user)
    checkout_id = path.rsplit("/", 1)[1]

    page = await client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp
    assert "form-action 'self' http://localhost:3000" in csp and "unsafe-inline" not in csp
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    html = page.text
    assert "$12.99" in html and "Free trial: 7 days" in html and "$0.00" in html
    assert f'action="{path}/complete"' in html and f'action="{path}/decline"' in html
    assert '<label for="card-number">' in html and "4242 4242 4242 4242" in html
    assert "<script" not in html and "<link" not in html and "src=" not in html

    done = await client.post(f"{path}/complete")
    assert done.status_code == 303
    assert urlsplit(done.headers["location"]).query.startswith("checkout=success")

    [row] = await rows(db, "select * from public.subscriptions where user_id = %s", user.user_id)
    assert (row["provider"], row["plan_code"], row["status"]) == ("sandbox", "standard", "trialing")
    events = await sandbox_events(db, checkout_id) + await sandbox_events(db, row["provider_ref"])
    assert [event["event"]["type"] for event in events] == [
        "checkout.session.completed",
        "customer.subscription.created",
    ]
    session = events[0]["event"]["data"]["object"]
    invoice_events = await sandbox_events(db, session["invoice"])
    assert [event["event"]["type"] for event in invoice_events] == ["invoice.paid"]
    ids = [event["event"]["id"] for event in events + invoice_events]
    assert all(event["delivered"] for event in events + invoice_events)
    assert sorted(r["type"] for r in await handled(db, ids)) == sorted(
        ["checkout.session.completed", "customer.subscription.created", "invoice.paid"]
    )
    invoices = await rows(
        db, "select status, total_minor from public.invoices where user_id = %s", user.user_id
    )
    assert invoices == [{"status": "paid", "total_minor": 0}]
    current = await client.get(f"{PAYMENTS}/subscription", headers=user.headers)
    assert current.status_code == 200, current.text
    assert (current.json()["plan_code"], current.json()["status"]) == ("standard", "trialing")

    again = await client.post(f"{path}/complete")  # a second click: the same redirect, nothing twice
    assert again.status_code == 303 and again.headers["location"] == done.headers["location"]
    assert len(await rows(db, "select 1 from public.subscriptions where user_id = %s", user.user_id)) == 1
    assert len(await handled(db, ids)) == 3
    assert len(await sandbox_events(db, checkout_id)) == 1
    finished = await client.get(path)
    assert finished.status_code == 200 and "This checkout is complete" in finished.text


async def test_decline_redirects_to_the_cancel_url(
    database_url: str, db: Db, client: httpx.AsyncClient
) -> None:
    user = await signed_in_user(database_url)
    path = await start_subscription(client, user, "basic")
    declined = await client.post(f"{path}/decline")
    assert declined.status_code == 303
    assert urlsplit(declined.headers["location"]).query.startswith("checkout=cancel")
    [event] = await sandbox_events(db, path.rsplit("/", 1)[1])
    assert event["event"]["type"] == "checkout.session.expired" and event["delivered"]
    assert [r["type"] for r in await handled(db, [event["event"]["id"]])] == ["checkout.session.expired"]
    assert await rows(db, "select 1 from public.subscriptions where user_id = %s", user.user_id) == []
    late = await client.post(f"{path}/complete")  # too late: back to the cancel URL, nothing bought
    assert late.status_code == 303 and late.headers["location"] == declined.headers["location"]
    assert await rows(db, "select 1 from public.subscriptions where user_id = %s", user.user_id) == []
    page = await client.get(path)
    assert page.status_code == 200 and "declined or has expired" in page.text


async def test_checkout_page_escapes_what_it_shows(client: httpx.AsyncClient) -> None:
    provider = SandboxProvider(get_settings())
    cus = await provider.ensure_customer(
        user_id=str(uuid.uuid4()), email="x@example.com", idempotency_key=str(uuid.uuid4())
    )
    started = await provider.create_payment_checkout(
        customer_ref=cus,
        currency="JPY",
        amount_minor=1200,
        description="<script>alert('x')</script> & \"Friends\"",
        client_reference_id="someone",
        metadata={},
        idempotency_key=str(uuid.uuid4()),
        **URLS,
    )
    page = await client.get(urlsplit(started.url or "").path)
    assert page.status_code == 200
    assert (
        "<script>" not in page.text
        and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;Friends&quot;" in page.text
    )
    assert "JPY 1200" in page.text and "Pay JPY 1200" in page.text
    done = await client.post(urlsplit(started.url or "").path + "/complete")
    assert done.status_code == 303
    assert done.headers["location"].endswith(f"session={started.id}")  # Stripe's placeholder filled in


async def test_unknown_or_malformed_checkouts_are_404(client: httpx.AsyncClient) -> None:
    for path in (f"{sandbox.CHECKOUT_PATH}cs_sbx_{'0' * 32}", f"{sandbox.CHECKOUT_PATH}cs_nope"):
        problem(await client.get(path), 404, "checkout_not_found")
        problem(await client.post(f"{path}/complete"), 404, "checkout_not_found")
        problem(await client.post(f"{path}/decline"), 404, "checkout_not_found")


@pytest.mark.parametrize(
    "env",
    [
        {"PAYMENTS_PROVIDER": "stripe", "STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_WEBHOOK_SECRET": "whsec_x"},
        {"APP_ENV": "production"},
    ],
)
async def test_sandbox_is_disabled_unless_it_is_the_provider_outside_production(
    env: dict[str, str], settings_env: Callable[..., None], client: httpx.AsyncClient
) -> None:
    from shared.infra.loop_local import reset_all

    settings_env(**env)
    await reset_all()
    try:
        checkout = f"{sandbox.CHECKOUT_PATH}cs_sbx_{'0' * 32}"
        problem(await client.get(checkout), 404, "sandbox_disabled")
        problem(await client.post(f"{checkout}/complete"), 404, "sandbox_disabled")
        problem(await client.post(f"{checkout}/decline"), 404, "sandbox_disabled")
        problem(await client.get(f"{sandbox.PORTAL_PATH}abc.def"), 404, "sandbox_disabled")
        problem(
            await client.post(f"{PAYMENTS}/sandbox/subscriptions/sub_sbx_00/renew", json={"outcome": "paid"}),
            404,
            "sandbox_disabled",
        )
        problem(await client.post(f"{PAYMENTS}/sandbox/payments/pi_sbx_00/refund"), 404, "sandbox_disabled")
    finally:
        settings_env()
        await reset_all()


@pytest.mark.parametrize("marker", ["VERCEL", "VERCEL_ENV", "AWS_LAMBDA_FUNCTION_NAME"])
async def test_sandbox_is_disabled_on_a_hosted_function(
    marker: str, monkeypatch: pytest.MonkeyPatch, client: httpx.AsyncClient
) -> None:
    # A preview deployment that forgot APP_ENV=production must not hand out plans without money.
    from shared.errors import ServiceUnavailable
    from shared.payments.providers import provider_named, sandbox_allowed

    settings = get_settings()
    assert settings.payments_provider == "sandbox" and settings.app_env != "production"
    checkout = f"{sandbox.CHECKOUT_PATH}cs_sbx_{'0' * 32}"
    for name in ("VERCEL", "VERCEL_ENV", "AWS_LAMBDA_FUNCTION_NAME"):
        monkeypatch.delenv(name, raising=False)
    assert sandbox_allowed(settings)
    problem(await client.get(checkout), 404, "checkout_not_found")  # enabled here: the id is unknown

    monkeypatch.setenv(marker, "preview" if marker == "VERCEL_ENV" else "1")
    assert not sandbox_allowed(settings)
    problem(await client.get(checkout), 404, "sandbox_disabled")
    problem(await client.post(f"{checkout}/complete"), 404, "sandbox_disabled")
    problem(await client.post(f"{checkout}/decline"), 404, "sandbox_disabled")
    problem(await client.get(f"{sandbox.PORTAL_PATH}abc.def"), 404, "sandbox_disabled")
    problem(
        await client.post(f"{PAYMENTS}/sandbox/subscriptions/sub_sbx_00/renew", json={"outcome": "paid"}),
        404,
        "sandbox_disabled",
    )
    problem(await client.post(f"{PAYMENTS}/sandbox/payments/pi_sbx_00/refund"), 404, "sandbox_disabled")
    problem(await client.post(f"{PAYMENTS}/sandbox/payments/pi_sbx_00/dispute"), 404, "sandbox_disabled")
    with pytest.raises(ServiceUnavailable) as refused:
        provider_named("sandbox", settings)
    assert refused.value.code == "payments_not_configured"


async def test_renew_dev_control_is_for_the_owner_or_an_admin(
    database_url: str, db: Db, client: httpx.AsyncClient
) -> None:
    owner = await signed_in_user(database_url)
    stranger = await signed_in_user(database_url)
    admin = await signed_in_user(database_url, roles=["admin"])
    row = await subscribed(client, db, owner)
    renew = f"{PAYMENTS}/sandbox/subscriptions/{row['provider_ref']}/renew"

    problem(await client.post(renew, json={"outcome": "paid"}), 401, "unauthenticated")
    problem(
        await client.post(renew, json={"outcome": "paid"}, headers=stranger.headers),
        404,
        "sandbox_object_not_found",
    )
    problem(
        await client.post(
            f"{PAYMENTS}/sandbox/subscriptions/sub_sbx_nothing/renew",
            json={"outcome": "paid"},
            headers=admin.headers,
        ),
        404,
        "sandbox_object_not_found",
    )
    problem(
        await client.post(renew, json={"outcome": "later"}, headers=owner.headers), 422, "validation_failed"
    )

    failed = await client.post(renew, json={"outcome": "failed"}, headers=owner.headers)
    assert failed.status_code == 200, failed.text
    assert failed.json()["status"] == "past_due" and failed.json()["delivered_events"] >= 2
    [now] = await rows(db, "select status, grace_ends_at from public.subscriptions where id = %s", row["id"])
    assert now["status"] == "past_due" and now["grace_ends_at"] is not None

    paid = await client.post(renew, json={"outcome": "paid"}, headers=admin.headers)
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "active"
    [now] = await rows(db, "select status, grace_ends_at from public.subscriptions where id = %s", row["id"])
    assert now["status"] == "active" and now["grace_ends_at"] is None

    card = f"{PAYMENTS}/sandbox/customers/{row['customer_ref']}/card"
    problem(
        await client.post(card, json={"fails": True}, headers=stranger.headers),
        404,
        "sandbox_object_not_found",
    )
    toggled = await client.post(card, json={"fails": True}, headers=owner.headers)
    assert toggled.status_code == 200 and toggled.json() == {
        "customer": row["customer_ref"],
        "brand": "visa",
        "last4": "0341",
        "fails": True,
    }


async def test_refund_and_dispute_dev_controls(database_url: str, db: Db, client: httpx.AsyncClient) -> None:
    owner = await signed_in_user(database_url)
    stranger = await signed_in_user(database_url)
    row = await subscribed(client, db, owner)
    provider = SandboxProvider(get_settings())
    started = await provider.create_payment_checkout(
        customer_ref=row["customer_ref"],
        currency="USD",
        amount_minor=499,
        description="Rental",
        client_reference_id=str(owner.user_id),
        metadata={},
        idempotency_key=str(uuid.uuid4()),
        **URLS,
    )
    assert (await client.post(urlsplit(started.url or "").path + "/complete")).status_code == 303
    payment_ref = (await provider.get_checkout(started.id)).payment_ref
    refund = f"{PAYMENTS}/sandbox/payments/{payment_ref}/refund"

    problem(await client.post(refund, headers=stranger.headers), 404, "sandbox_object_not_found")
    problem(await client.post(refund), 401, "unauthenticated")
    refunded = await client.post(refund, headers=owner.headers)
    assert refunded.status_code == 200, refunded.text
    body = refunded.json()
    assert body["refunded"] and body["amount_refunded_minor"] == 499 and body["payment_ref"] == payment_ref
    [event] = await sandbox_events(db, body["id"])
    assert event["event"]["type"] == "charge.refunded" and event["delivered"]
    assert len(await handled(db, [event["event"]["id"]])) == 1
    problem(await client.post(refund, headers=owner.headers), 409, "already_refunded")

    dispute = f"{PAYMENTS}/sandbox/payments/{payment_ref}/dispute"
    problem(await client.post(dispute, headers=stranger.headers), 404, "sandbox_object_not_found")
    disputed = await client.post(dispute, headers=owner.headers)
    assert disputed.status_code == 200, disputed.text
    assert disputed.json()["disputed"] and disputed.json()["dispute_id"].startswith("dp_sbx_")
    [event] = await sandbox_events(db, disputed.json()["dispute_id"])
    assert event["event"]["type"] == "charge.dispute.created" and event["delivered"]
    assert event["event"]["data"]["object"]["charge"] == body["id"]
    problem(await client.post(dispute, headers=owner.headers), 409, "already_disputed")


async def test_portal_page_and_its_buttons(database_url: str, db: Db, client: httpx.AsyncClient) -> None:
    owner = await signed_in_user(database_url)
    other = await signed_in_user(database_url)
    row = await subscribed(client, db, owner)
    theirs = await subscribed(client, db, other)
    provider = SandboxProvider(get_settings())
    url = await provider.portal_url(
        customer_ref=row["customer_ref"], return_url="http://localhost:3000/account"
    )
    path = urlsplit(url).path

    page = await client.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert row["provider_ref"] in page.text and theirs["provider_ref"] not in page.text
    assert "ending in 4242" in page.text and 'href="http://localhost:3000/account"' in page.text
    assert "Renew now (card declined)" in page.text and "Cancel at period end" in page.text

    toggled = await client.post(f"{path}/card")
    assert toggled.status_code == 303 and toggled.headers["location"] == path
    assert "ending in 0341" in (await client.get(path)).text

    failed = await client.post(f"{path}/subscriptions/{row['provider_ref']}/renew-failed")
    assert failed.status_code == 303
    [now] = await rows(db, "select status from public.subscriptions where id = %s", row["id"])
    assert now["status"] == "past_due"
    await client.post(f"{path}/subscriptions/{row['provider_ref']}/renew-paid")
    assert (await client.post(f"{path}/subscriptions/{row['provider_ref']}/cancel")).status_code == 303
    [now] = await rows(
        db, "select status, cancel_at_period_end from public.subscriptions where id = %s", row["id"]
    )
    assert now == {"status": "active", "cancel_at_period_end": True}
    assert "Resume" in (await client.get(path)).text
    await client.post(f"{path}/subscriptions/{row['provider_ref']}/resume")
    [now] = await rows(db, "select cancel_at_period_end from public.subscriptions where id = %s", row["id"])
    assert now["cancel_at_period_end"] is False

    problem(
        await client.post(f"{path}/subscriptions/{theirs['provider_ref']}/renew-paid"),
        404,
        "subscription_not_found",
    )
    problem(await client.get(path[:-3] + "xyz"), 404, "portal_link_invalid")
