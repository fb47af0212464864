"""Subscription flows over HTTP with the sandbox provider: subscribe, pay at the sandbox, see the plan,
cancel, resume, change plan, trial on the first subscription only, grace, portal, and every bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.infra.db import standalone
from shared.settings import get_settings
from tests.subscriptions.conftest import (
    API,
    Db,
    PlanSet,
    decide,
    entitlement_rows,
    subscription_rows,
)
from tests.support.clock import Clock
from tests.support.commerce import problem, rows
from tests.support.identity import SignedIn

pytestmark = pytest.mark.usefixtures("sandbox")


async def deliver() -> int:
    """Hand the sandbox's pending events to the webhook handling (what its routes and maintenance do)."""
    from shared.payments.providers import sandbox

    async with standalone() as conn:
        return await sandbox.deliver_pending(conn, settings=get_settings())


async def pay(checkout_id: str) -> None:
    """The person completes the sandbox checkout; its events are delivered."""
    from shared.payments.providers import sandbox

    await sandbox.complete_checkout(checkout_id)
    await deliver()


async def subscribe(
    client: httpx.AsyncClient, viewer: SignedIn, plan_code: str, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/subscribe", json={"plan_code": plan_code, **body}, headers=viewer.headers
    )
    assert response.status_code == 201, response.text
    started: dict[str, Any] = response.json()
    return started


async def view(client: httpx.AsyncClient, viewer: SignedIn) -> dict[str, Any]:
    response = await client.get(f"{API}/subscription", headers=viewer.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_without_a_subscription_the_free_plan_is_shown(
    client: httpx.AsyncClient, viewer: SignedIn
) -> None:
    body = await view(client, viewer)
    settings = get_settings()
    assert body["is_free"] and body["status"] == "free" and body["plan_code"] == "free"
    assert body["paid_access"] is False
    assert body["limits"] == {
        "tier": 0,
        "max_streams": settings.free_max_streams,
        "max_height": settings.free_max_height,
        "ads": True,
    }
    problem(await client.get(f"{API}/subscription"), 401, "unauthenticated")


async def test_subscribe_pay_cancel_resume(
    client: httpx.AsyncClient, db: Db, viewer: SignedIn, plans: PlanSet
) -> None:
    started = await subscribe(client, viewer, plans.high)
    assert started["checkout_url"].endswith(f"/api/v1/payments/sandbox/checkout/{started['checkout_id']}")
    assert (started["amount_minor"], started["currency"], started["interval"], started["trial_days"]) == (
        1499, "USD", "month", 0,
    )  # fmt: skip
    assert (await view(client, viewer))["is_free"]  # nothing until the payment is confirmed
    await pay(started["checkout_id"])

    body = await view(client, viewer)
    assert body["plan_code"] == plans.high and body["status"] == "active" and body["paid_access"]
    assert body["limits"] == {"tier": 6, "max_streams": 2, "max_height": 1080, "ads": False}
    assert body["interval"] == "month" and body["amount_minor"] == 1499 and not body["cancel_at_period_end"]
    decision = await decide(db, viewer.user_id, plans.title_id)
    assert decision.allowed and decision.max_streams == 2

    problem(await client.post(f"{API}/subscribe", json={"plan_code": plans.top}, headers=viewer.headers),
            409, "already_subscribed")  # fmt: skip

    cancelled = await client.post(f"{API}/subscription/cancel", headers=viewer.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancel_at_period_end"] and cancelled.json()["paid_access"]
    [entitlement] = await entitlement_rows(db, viewer.user_id)
    period_end = datetime.fromisoformat(cancelled.json()["current_period_end"])
    assert entitlement["ends_at"] == period_end  # no renewal leeway once it is set to end
    again = problem(
        await client.post(f"{API}/subscription/cancel", headers=viewer.headers), 409, "not_cancelable"
    )
    assert "already cancelled" in again["detail"]

    resumed = await client.post(f"{API}/subscription/resume", headers=viewer.headers)
    assert resumed.status_code == 200, resumed.text
    assert not resumed.json()["cancel_at_period_end"]
    [entitlement] = await entitlement_rows(db, viewer.user_id)
    assert entitlement["ends_at"] == period_end + timedelta(hours=48)
    problem(await client.post(f"{API}/subscription/resume", headers=viewer.headers), 409, "not_resumable")
    await deliver()  # the sandbox's own events about the changes agree with what was applied
    assert (await view(client, viewer))["cancel_at_period_end"] is False


async def test_nothing_to_cancel_resume_or_change(
    client: httpx.AsyncClient, viewer: SignedIn, plans: PlanSet
) -> None:
    body = problem(
        await client.post(f"{API}/subscription/cancel", headers=viewer.headers), 409, "not_cancelable"
    )
    assert "no active subscription" in body["detail"]
    problem(await client.post(f"{API}/subscription/resume", headers=viewer.headers), 409, "not_resumable")
    problem(
        await client.post(
            f"{API}/subscription/change", json={"plan_code": plans.top}, headers=viewer.headers
        ),
        409,
        "no_subscription",
    )
    problem(await client.post(f"{API}/portal", headers=viewer.headers), 409, "no_billing_account")


async def test_change_plan_moves_the_limits(
    client: httpx.AsyncClient, db: Db, viewer: SignedIn, plans: PlanSet
) -> None:
    started = await subscribe(client, viewer, plans.high)
    await pay(started["checkout_id"])

    async def change(plan_code: str, **extra: Any) -> httpx.Response:
        return await client.post(
            f"{API}/subscription/change", json={"plan_code": plan_code, **extra}, headers=viewer.headers
        )

    problem(await change(plans.high), 409, "same_plan")
    problem(await change("nope-plan"), 404, "plan_not_found")
    problem(await change("free"), 409, "plan_is_free")
    problem(await change(plans.top, interval="year"), 404, "price_not_found")
    problem(await change(plans.top, interval="weekly"), 422, "validation_failed")

    upgraded = await change(plans.top)
    assert upgraded.status_code == 200, upgraded.text
    assert upgraded.json()["plan_code"] == plans.top and upgraded.json()["amount_minor"] == 1999
    assert upgraded.json()["limits"] == {"tier": 7, "max_streams": 4, "max_height": 2160, "ads": False}
    decision = await decide(db, viewer.user_id, plans.title_id)
    assert decision.allowed and (decision.max_streams, decision.max_height) == (4, 2160)

    downgraded = await change(plans.low)
    assert downgraded.status_code == 200, downgraded.text
    assert downgraded.json()["plan_code"] == plans.low
    assert not (await decide(db, viewer.user_id, plans.title_id)).allowed  # the title needs tier 6

    yearly = await change(plans.high, interval="year")  # same tier, a higher amount: an upgrade
    assert yearly.status_code == 200, yearly.text
    assert yearly.json()["interval"] == "year" and yearly.json()["amount_minor"] == 14990
    assert (await decide(db, viewer.user_id, plans.title_id)).allowed
    await deliver()  # proration invoices and subscription updates arrive as events: nothing changes back
    body = await view(client, viewer)
    assert body["plan_code"] == plans.high and body["interval"] == "year"
    [row] = await subscription_rows(db, viewer.user_id)
    assert row["plan_code"] == plans.high


async def test_trial_only_on_the_first_subscription(
    client: httpx.AsyncClient, db: Db, viewer: SignedIn, plans: PlanSet, clock: Clock
) -> None:
    from shared.payments.providers import sandbox

    started = await subscribe(client, viewer, plans.low)
    assert started["trial_days"] == 7 and started["amount_minor"] == 999
    await pay(started["checkout_id"])
    body = await view(client, viewer)
    assert body["status"] == "trialing" and body["trial_end"] is not None
    assert (await client.post(f"{API}/subscription/cancel", headers=viewer.headers)).status_code == 200

    clock.advance(8 * 86400)  # the trial (its period) ends: the cancelled subscription ends with it
    async with standalone() as conn:
        await sandbox.tick(conn, settings=get_settings(), at=datetime.fromtimestamp(clock.now, UTC))
    await deliver()
    [row] = await subscription_rows(db, viewer.user_id)
    assert row["status"] == "canceled"
    assert (await view(client, viewer))["is_free"]

    second = await subscribe(client, viewer, plans.low)
    assert second["trial_days"] == 0


async def test_failed_renewal_grace_then_free_then_paid_again(
    client: httpx.AsyncClient, db: Db, viewer: SignedIn, plans: PlanSet, clock: Clock
) -> None:
    from shared.payments.providers import sandbox

    started = await subscribe(client, viewer, plans.high)
    await pay(started["checkout_id"])
    [row] = await subscription_rows(db, viewer.user_id)
    await sandbox.renew(row["provider_ref"], outcome="failed")
    await deliver()
    body = await view(client, viewer)
    assert body["status"] == "past_due" and body["paid_access"] and body["grace_ends_at"] is not None
    assert (await decide(db, viewer.user_id, plans.title_id)).allowed

    clock.advance(7 * 86400 + 60)
    body = await view(client, viewer)
    assert body["status"] == "past_due" and not body["paid_access"]
    assert body["limits"]["max_streams"] == get_settings().free_max_streams and body["limits"]["ads"]
    assert (await decide(db, viewer.user_id, plans.title_id)).code == "not_entitled"

    async with standalone() as conn:  # the card works: the sandbox's retry pays the open invoice
        await sandbox.tick(conn, settings=get_settings(), at=datetime.fromtimestamp(clock.now, UTC))
    await deliver()
    body = await view(client, viewer)
    assert body["status"] == "active" and body["paid_access"] and body["grace_ends_at"] is None
    assert (await decide(db, viewer.user_id, plans.title_id)).allowed


async def test_portal_link(client: httpx.AsyncClient, viewer: SignedIn, plans: PlanSet) -> None:
    started = await subscribe(client, viewer, plans.high)
    await pay(started["checkout_id"])
    response = await client.post(f"{API}/portal", headers=viewer.headers)
    assert response.status_code == 200, response.text
    assert "/api/v1/payments/sandbox/portal/" in response.json()["url"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"plan_code": "Bad Code!"}, 422, "validation_failed"),
        ({"plan_code": "basic", "interval": "week"}, 422, "validation_failed"),
        ({"plan_code": "basic", "currency": "dollars"}, 422, "validation_failed"),
        ({"plan_code": "basic", "extra": 1}, 422, "validation_failed"),
        ({}, 422, "validation_failed"),
        ({"plan_code": "no-such-plan"}, 404, "plan_not_found"),
        ({"plan_code": "basic", "currency": "JPY"}, 404, "price_not_found"),
        ({"plan_code": "free"}, 409, "plan_is_free"),
    ],
)
async def test_bad_subscribe_requests_are_problems(
    client: httpx.AsyncClient, viewer: SignedIn, body: dict[str, Any], status: int, code: str
) -> None:
    problem(await client.post(f"{API}/subscribe", json=body, headers=viewer.headers), status, code)


async def test_bad_bodies_and_keys(client: httpx.AsyncClient, viewer: SignedIn) -> None:
    json_headers = {**viewer.headers, "content-type": "application/json"}
    response = await client.post(f"{API}/subscribe", content=b"{not json", headers=json_headers)
    problem(response, 422, "validation_failed")
    for key in ("has space", "x" * 256, "caf\u00e9"):
        raw = [(name.encode(), value.encode()) for name, value in json_headers.items()]
        response = await client.post(
            f"{API}/subscribe",
            content=b'{"plan_code": "basic"}',
            headers=[*raw, (b"idempotency-key", key.encode())],
        )
        problem(response, 400, "invalid_idempotency_key")
    problem(await client.post(f"{API}/subscribe", json={"plan_code": "basic"}), 401, "unauthenticated")


async def test_routes_are_documented() -> None:
    from tests.subscriptions.conftest import app

    spec = app().openapi()
    subscribe_op = spec["paths"][f"{API}/subscribe"]["post"]
    assert {"201", "400", "401", "404", "409", "422", "502"} <= set(subscribe_op["responses"])
    assert "plan_not_found" in subscribe_op["responses"]["404"]["description"]
    assert any(p["name"] == "Idempotency-Key" for p in subscribe_op["parameters"])
    for path in ("/subscription/cancel", "/subscription/resume", "/subscription/change", "/portal"):
        operation = spec["paths"][f"{API}{path}"]["post"]
        assert operation["summary"] and "409" in operation["responses"]
    assert spec["paths"][f"{API}/subscription"]["get"]["summary"]


async def test_an_account_with_a_renewing_subscription_cannot_be_deleted_until_cancelled(
    client: httpx.AsyncClient, db: Db, viewer: SignedIn, plans: PlanSet
) -> None:
    from tests.support.identity import users_client

    await pay((await subscribe(client, viewer, plans.high))["checkout_id"])
    async with users_client() as users:
        refused = await users.request(
            "DELETE", "/api/v1/users/me", json={"password": viewer.password}, headers=viewer.headers
        )
        problem(refused, 409, "subscription_active")
        # Nothing was erased: the account still signs in and still has its plan.
        assert (await view(client, viewer))["plan_code"] == plans.high
        # Its data export carries what it paid for.
        exported = (await users.get("/api/v1/users/me/export", headers=viewer.headers)).json()
        assert [row["plan_code"] for row in exported["subscriptions"]] == [plans.high]
        assert exported["invoices"][0]["number"].startswith("CIN-") and exported["purchases"] == []
        cancelled = await client.post(f"{API}/subscription/cancel", headers=viewer.headers)
        assert cancelled.status_code == 200, cancelled.text
        deleted = await users.request(
            "DELETE", "/api/v1/users/me", json={"password": viewer.password}, headers=viewer.headers
        )
        assert deleted.status_code == 204, deleted.text


@pytest.mark.parametrize("reversal", ["refund", "dispute"])
async def test_a_reversed_subscription_charge_ends_the_subscription(
    client: httpx.AsyncClient, db: Db, viewer: SignedIn, plans: PlanSet, reversal: str
) -> None:
    from shared.payments.providers import sandbox

    started = await subscribe(client, viewer, plans.high)
    await pay(started["checkout_id"])
    [invoice] = await rows(db, "select * from public.invoices where user_id = %s", viewer.user_id)
    assert invoice["payment_ref"]
    if reversal == "refund":
        await sandbox.refund(invoice["payment_ref"])
    else:
        await sandbox.dispute(invoice["payment_ref"])
    await deliver()
    await deliver()  # the sandbox's own customer.subscription.deleted agrees

    body = await view(client, viewer)
    assert body["is_free"] and body["status"] == "free"
    [row] = await subscription_rows(db, viewer.user_id)
    assert row["status"] == "canceled"
    async with standalone() as conn:
        at_sandbox = await sandbox.load(conn, row["provider_ref"], "subscription")
    assert at_sandbox is not None and at_sandbox["status"] == "canceled"  # never renewed (charged) again
    assert not (await decide(db, viewer.user_id, plans.title_id)).allowed
    again = await subscribe(client, viewer, plans.high)  # the account may subscribe again
    assert again["trial_days"] == 0


async def test_two_tabs_only_the_newest_checkout_can_be_paid(
    client: httpx.AsyncClient, db: Db, viewer: SignedIn, plans: PlanSet
) -> None:
    from shared.payments.providers import sandbox

    first = await subscribe(client, viewer, plans.high)
    second = await subscribe(client, viewer, plans.top)
    async with standalone() as conn:
        old = await sandbox.load(conn, first["checkout_id"], "checkout_session")
    assert old is not None and old["status"] == "expired"
    stale = await sandbox.complete_checkout(first["checkout_id"])  # the older tab's Pay button
    assert stale["status"] == "expired" and not stale.get("subscription")
    await pay(second["checkout_id"])
    await deliver()
    [row] = await subscription_rows(db, viewer.user_id)
    assert row["plan_code"] == plans.top and row["status"] == "active"
