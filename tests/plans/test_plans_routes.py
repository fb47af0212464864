"""The public plans list and the admin plan and price endpoints, through HTTP on the real database."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.plans.conftest import API, Db, audit_events, create_plan, problem, unique_code
from tests.support import catalog_factory as factory
from tests.support.identity import SignedIn


async def test_public_list_needs_no_sign_in_and_is_cacheable(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/plans")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "public, max-age=60"
    body = response.json()
    assert body["currency"] is None
    codes = [plan["code"] for plan in body["plans"]]
    assert {"free", "basic", "standard", "premium"} <= set(codes)
    free = next(plan for plan in body["plans"] if plan["code"] == "free")
    assert free["is_free"] is True and free["prices"] == [] and free["ad_free"] is False
    standard = next(plan for plan in body["plans"] if plan["code"] == "standard")
    assert {(p["currency"], p["interval"]) for p in standard["prices"]} >= {("USD", "month"), ("EUR", "year")}
    assert "provider_price_ref" not in standard["prices"][0]
    # Display order: sort_order first (the free plan is 0).
    orders = [plan["sort_order"] for plan in body["plans"]]
    assert orders == sorted(orders)


async def test_public_list_filters_by_currency_in_any_case(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/plans", params={"currency": "usd"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["currency"] == "USD"
    standard = next(plan for plan in body["plans"] if plan["code"] == "standard")
    monthly = next(p for p in standard["prices"] if p["interval"] == "month")
    assert monthly["currency"] == "USD"
    assert monthly["display"].startswith("$")
    assert all(p["currency"] == "USD" for plan in body["plans"] for p in plan["prices"])

    response = await client.get(f"{API}/plans", params={"currency": "JPY"})
    assert response.status_code == 200
    assert all(plan["prices"] == [] for plan in response.json()["plans"])


async def test_public_list_refuses_a_malformed_currency(client: httpx.AsyncClient) -> None:
    for bad in ("US", "US1", "dollars", ""):
        body = problem(await client.get(f"{API}/plans", params={"currency": bad}), 422, "validation_failed")
        assert body["errors"][0]["type"] in ("invalid_currency",), body


async def test_admin_creates_a_plan_and_a_code_is_unique(
    client: httpx.AsyncClient, admin: SignedIn, db: Db
) -> None:
    code = unique_code()
    created = await create_plan(client, admin, code=code, name="Family", tier=2, trial_days=14)
    assert created["code"] == code and created["tier"] == 2 and created["trial_days"] == 14
    assert created["is_free"] is False and created["active"] is True and created["prices"] == []
    response = await client.post(
        f"{API}/plans",
        json={"code": code, "name": "Again", "max_streams": 1, "max_height": 720},
        headers=admin.headers,
    )
    problem(response, 409, "plan_exists")
    assert await audit_events(db, "commerce_plan_changed", "plan", code) == [
        {"action": "created", "plan": code}
    ]
    listed = (await client.get(f"{API}/plans")).json()["plans"]
    assert code in [plan["code"] for plan in listed]


async def test_plan_fields_are_validated(client: httpx.AsyncClient, admin: SignedIn) -> None:
    base = {"code": unique_code(), "name": "X", "max_streams": 1, "max_height": 720}
    for changes in (
        {"code": "Bad Code"},
        {"max_streams": 0},
        {"max_height": 100000},
        {"tier": 11},
        {"trial_days": -1},
        {"is_free": True},  # there is one free plan, made by the migration
        {"name": ""},
    ):
        response = await client.post(f"{API}/plans", json={**base, **changes}, headers=admin.headers)
        problem(response, 422, "validation_failed")


async def test_viewers_and_anonymous_callers_cannot_manage(
    client: httpx.AsyncClient, viewer: SignedIn
) -> None:
    body = {"code": unique_code(), "name": "X", "max_streams": 1, "max_height": 720}
    problem(await client.post(f"{API}/plans", json=body, headers=viewer.headers), 403, "permission_denied")
    problem(await client.post(f"{API}/plans", json=body), 401, "unauthenticated")
    price = {"currency": "USD", "interval": "month", "amount_minor": 100}
    response = await client.put(f"{API}/plans/standard/prices", json=price, headers=viewer.headers)
    problem(response, 403, "permission_denied")
    response = await client.patch(f"{API}/plans/standard", json={"name": "Mine"}, headers=viewer.headers)
    problem(response, 403, "permission_denied")
    response = await client.delete(f"{API}/plans/standard/prices/USD/month", headers=viewer.headers)
    problem(response, 403, "permission_denied")
    problem(await client.get(f"{API}/plans/standard", headers=viewer.headers), 403, "permission_denied")


async def test_patch_changes_the_fields_sent(client: httpx.AsyncClient, admin: SignedIn, db: Db) -> None:
    code = (await create_plan(client, admin))["code"]
    response = await client.patch(
        f"{API}/plans/{code}", json={"name": "Renamed", "max_streams": 3}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["max_streams"], body["max_height"]) == ("Renamed", 3, 1080)
    events = await audit_events(db, "commerce_plan_changed", "plan", code)
    assert events[-1] == {"action": "updated", "plan": code, "changed": {"name": "Renamed", "max_streams": 3}}

    problem(
        await client.patch(f"{API}/plans/{code}", json={"name": None}, headers=admin.headers),
        422,
        "null_not_allowed",
    )
    problem(
        await client.patch(f"{API}/plans/{code}", json={"colour": "red"}, headers=admin.headers),
        422,
        "validation_failed",
    )
    problem(
        await client.patch(f"{API}/plans/{unique_code()}", json={"name": "X"}, headers=admin.headers),
        404,
        "plan_not_found",
    )

    # Withdrawn: gone from the public list, still readable by admins.
    response = await client.patch(f"{API}/plans/{code}", json={"active": False}, headers=admin.headers)
    assert response.status_code == 200 and response.json()["active"] is False
    listed = (await client.get(f"{API}/plans")).json()["plans"]
    assert code not in [plan["code"] for plan in listed]
    response = await client.get(f"{API}/plans/{code}", headers=admin.headers)
    assert response.status_code == 200 and response.json()["active"] is False


async def test_the_free_plan_refuses_prices_and_withdrawal(
    client: httpx.AsyncClient, admin: SignedIn
) -> None:
    price = {"currency": "USD", "interval": "month", "amount_minor": 499}
    problem(
        await client.put(f"{API}/plans/free/prices", json=price, headers=admin.headers), 409, "plan_is_free"
    )
    problem(
        await client.delete(f"{API}/plans/free/prices/USD/month", headers=admin.headers), 409, "plan_is_free"
    )
    problem(
        await client.patch(f"{API}/plans/free", json={"active": False}, headers=admin.headers),
        409,
        "plan_is_free",
    )
    listed = (await client.get(f"{API}/plans")).json()["plans"]
    free = next(plan for plan in listed if plan["code"] == "free")
    assert free["prices"] == [] and free["active"] is True


async def test_a_changed_price_retires_the_old_row(
    client: httpx.AsyncClient, admin: SignedIn, db: Db
) -> None:
    code = (await create_plan(client, admin))["code"]
    url = f"{API}/plans/{code}/prices"
    response = await client.put(
        url, json={"currency": "usd", "interval": "month", "amount_minor": 999}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    [first] = response.json()["prices"]
    assert (first["currency"], first["amount_minor"], first["display"]) == ("USD", 999, "$9.99")
    assert first["provider"] is None and first["provider_price_ref"] is None

    # The same amount again changes nothing.
    response = await client.put(
        url, json={"currency": "USD", "interval": "month", "amount_minor": 999}, headers=admin.headers
    )
    assert [p["id"] for p in response.json()["prices"]] == [first["id"]]

    response = await client.put(
        url, json={"currency": "USD", "interval": "month", "amount_minor": 1099}, headers=admin.headers
    )
    [second] = response.json()["prices"]
    assert second["id"] != first["id"] and second["amount_minor"] == 1099
    cursor = await db.execute(
        "select id, amount_minor, active from public.plan_prices where plan_code = %s order by created_at",
        (code,),
    )
    rows = await cursor.fetchall()
    assert [(str(r[0]), r[1], r[2]) for r in rows] == [(first["id"], 999, False), (second["id"], 1099, True)]
    events = [
        e for e in await audit_events(db, "commerce_plan_changed", "plan", code) if e["action"] == "price_set"
    ]
    assert [(e["amount_minor"], e["previous_amount_minor"]) for e in events] == [(999, None), (1099, 999)]

    # Another currency and interval live side by side; JPY has no minor unit.
    response = await client.put(
        url, json={"currency": "JPY", "interval": "year", "amount_minor": 12000}, headers=admin.headers
    )
    displays = {(p["currency"], p["interval"]): p["display"] for p in response.json()["prices"]}
    assert displays == {("USD", "month"): "$10.99", ("JPY", "year"): "JPY 12000"}
    listed = (await client.get(f"{API}/plans", params={"currency": "JPY"})).json()["plans"]
    mine = next(plan for plan in listed if plan["code"] == code)
    assert [(p["interval"], p["amount_minor"]) for p in mine["prices"]] == [("year", 12000)]


async def test_price_input_is_validated(client: httpx.AsyncClient, admin: SignedIn) -> None:
    code = (await create_plan(client, admin))["code"]
    url = f"{API}/plans/{code}/prices"
    for body in (
        {"currency": "USD", "interval": "week", "amount_minor": 100},
        {"currency": "USD", "interval": "month", "amount_minor": 0},
        {"currency": "USD", "interval": "month", "amount_minor": 100_000_001},
        {"currency": "USD", "interval": "month", "amount_minor": 1.5},
        {"currency": "U$D", "interval": "month", "amount_minor": 100},
        {"currency": "USD", "interval": "month"},
    ):
        problem(await client.put(url, json=body, headers=admin.headers), 422, "validation_failed")
    price = {"currency": "USD", "interval": "month", "amount_minor": 100}
    response = await client.put(f"{API}/plans/{unique_code()}/prices", json=price, headers=admin.headers)
    problem(response, 404, "plan_not_found")


async def test_removing_a_price(client: httpx.AsyncClient, admin: SignedIn, db: Db) -> None:
    code = (await create_plan(client, admin))["code"]
    price = {"currency": "EUR", "interval": "year", "amount_minor": 9900}
    response = await client.put(f"{API}/plans/{code}/prices", json=price, headers=admin.headers)
    price_id = uuid.UUID(response.json()["prices"][0]["id"])
    response = await client.delete(f"{API}/plans/{code}/prices/eur/year", headers=admin.headers)
    assert response.status_code == 204, response.text
    cursor = await db.execute("select active from public.plan_prices where id = %s", (price_id,))
    assert await cursor.fetchone() == (False,)
    problem(
        await client.delete(f"{API}/plans/{code}/prices/EUR/year", headers=admin.headers),
        404,
        "price_not_found",
    )
    problem(
        await client.delete(f"{API}/plans/{code}/prices/EURO/year", headers=admin.headers),
        422,
        "validation_failed",
    )
    problem(
        await client.delete(f"{API}/plans/{code}/prices/EUR/week", headers=admin.headers),
        422,
        "validation_failed",
    )


async def test_parallel_price_changes_leave_one_active_price(
    client: httpx.AsyncClient, admin: SignedIn, db: Db
) -> None:
    code = (await create_plan(client, admin))["code"]
    url = f"{API}/plans/{code}/prices"
    responses = await asyncio.gather(
        *(
            client.put(
                url,
                json={"currency": "USD", "interval": "year", "amount_minor": 5000 + n},
                headers=admin.headers,
            )
            for n in range(8)
        )
    )
    assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
    cursor = await db.execute(
        "select count(*), count(*) filter (where active) from public.plan_prices where plan_code = %s",
        (code,),
    )
    assert await cursor.fetchone() == (8, 1)


async def test_parallel_offer_changes_leave_one_active_offer(
    client: httpx.AsyncClient, admin: SignedIn, db: Db
) -> None:
    title_id = await factory.title(db, f"Race {uuid.uuid4().hex[:6]}")
    responses = await asyncio.gather(
        *(
            client.put(
                f"{API}/titles/{title_id}/offers",
                json={"kind": "purchase", "currency": "EUR", "amount_minor": 700 + n},
                headers=admin.headers,
            )
            for n in range(8)
        )
    )
    assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
    cursor = await db.execute(
        "select count(*) filter (where active) from public.title_offers where title_id = %s", (title_id,)
    )
    assert await cursor.fetchone() == (1,)
