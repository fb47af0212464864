"""Title offers (rent, buy) and pay-per-view events: admin writes, and what a viewer sees of a title."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.plans.conftest import API, Db, audit_events, problem, windows
from tests.support import catalog_factory as factory
from tests.support.identity import SignedIn


async def _title(db: Db, **columns: Any) -> uuid.UUID:
    return await factory.title(db, f"Offer film {uuid.uuid4().hex[:6]}", **columns)


async def _offer(
    client: httpx.AsyncClient, admin: SignedIn, title_id: uuid.UUID, **body: Any
) -> httpx.Response:
    return await client.put(f"{API}/titles/{title_id}/offers", json=body, headers=admin.headers)


async def _event(
    client: httpx.AsyncClient, admin: SignedIn, title_id: uuid.UUID, **fields: Any
) -> dict[str, Any]:
    body = {"title_id": str(title_id), "name": "Live final", **windows(), **fields}
    response = await client.post(f"{API}/ppv-events", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_viewers_see_rental_and_purchase_prices(
    client: httpx.AsyncClient, admin: SignedIn, db: Db
) -> None:
    title_id = await _title(db)
    assert (
        await _offer(client, admin, title_id, kind="rental", currency="USD", amount_minor=399)
    ).status_code == 200
    await _offer(client, admin, title_id, kind="rental", currency="EUR", amount_minor=349)
    response = await _offer(client, admin, title_id, kind="purchase", currency="gbp", amount_minor=1299)
    assert response.status_code == 200, response.text
    admin_view = response.json()
    assert [(o["currency"], o["amount_minor"]) for o in admin_view["rental"]] == [("EUR", 349), ("USD", 399)]
    assert [o["display"] for o in admin_view["purchase"]] == ["£12.99"]

    response = await client.get(f"{API}/titles/{title_id}/offers")  # anonymous
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"].startswith("private")
    body = response.json()
    assert [o["display"] for o in body["rental"]] == ["€3.49", "$3.99"]
    assert [o["currency"] for o in body["purchase"]] == ["GBP"]
    assert body["ppv_events"] == []

    body = (await client.get(f"{API}/titles/{title_id}/offers", params={"currency": "usd"})).json()
    assert body["currency"] == "USD"
    assert [o["amount_minor"] for o in body["rental"]] == [399] and body["purchase"] == []
    problem(
        await client.get(f"{API}/titles/{title_id}/offers", params={"currency": "US"}),
        422,
        "validation_failed",
    )
    assert await audit_events(db, "commerce_offer_changed", "title_id", str(title_id))


async def test_a_changed_offer_retires_the_old_one(
    client: httpx.AsyncClient, admin: SignedIn, db: Db
) -> None:
    title_id = await _title(db)
    first = (await _offer(client, admin, title_id, kind="rental", currency="USD", amount_minor=399)).json()
    same = (await _offer(client, admin, title_id, kind="rental", currency="USD", amount_minor=399)).json()
    assert same["rental"][0]["id"] == first["rental"][0]["id"]
    changed = (await _offer(client, admin, title_id, kind="rental", currency="USD", amount_minor=499)).json()
    assert changed["rental"][0]["id"] != first["rental"][0]["id"]
    cursor = await db.execute(
        "select amount_minor, active from public.title_offers where title_id = %s order by created_at",
        (title_id,),
    )
    assert await cursor.fetchall() == [(399, False), (499, True)]


async def test_invisible_titles_have_no_offers(client: httpx.AsyncClient, admin: SignedIn, db: Db) -> None:
    draft = await _title(db, status="draft")
    response = await _offer(client, admin, draft, kind="purchase", currency="USD", amount_minor=999)
    assert response.status_code == 200, response.text  # priced before it goes live
    problem(await client.get(f"{API}/titles/{draft}/offers"), 404, "content_not_found")
    # Staff outside a profile see every title that is not deleted, like the catalog shows it to them.
    response = await client.get(f"{API}/titles/{draft}/offers", headers=admin.headers)
    assert response.status_code == 200 and response.json()["purchase"][0]["amount_minor"] == 999

    elsewhere = await _title(db, country_allow=["ZW"])
    problem(await client.get(f"{API}/titles/{elsewhere}/offers"), 404, "content_not_found")
    problem(await client.get(f"{API}/titles/{uuid.uuid4()}/offers"), 404, "content_not_found")
    problem(await client.get(f"{API}/titles/not-a-uuid/offers"), 422, "validation_failed")

    deleted = await _title(db, deleted_at="2020-01-01T00:00:00Z")
    response = await _offer(client, admin, deleted, kind="purchase", currency="USD", amount_minor=999)
    problem(response, 404, "title_not_found")
    response = await _offer(client, admin, uuid.uuid4(), kind="purchase", currency="USD", amount_minor=999)
    problem(response, 404, "title_not_found")


async def test_offer_input_and_permissions(
    client: httpx.AsyncClient, admin: SignedIn, viewer: SignedIn, db: Db
) -> None:
    title_id = await _title(db)
    for body in (
        {"kind": "ppv", "currency": "USD", "amount_minor": 100},  # ppv prices belong to an event
        {"kind": "rent", "currency": "USD", "amount_minor": 100},
        {"kind": "rental", "currency": "USDX", "amount_minor": 100},
        {"kind": "rental", "currency": "USD", "amount_minor": -1},
    ):
        problem(await _offer(client, admin, title_id, **body), 422, "validation_failed")
    body = {"kind": "rental", "currency": "USD", "amount_minor": 100}
    problem(await _offer(client, viewer, title_id, **body), 403, "permission_denied")
    response = await client.delete(f"{API}/titles/{title_id}/offers/rental/USD", headers=viewer.headers)
    problem(response, 403, "permission_denied")


async def test_removing_an_offer(client: httpx.AsyncClient, admin: SignedIn, db: Db) -> None:
    title_id = await _title(db)
    await _offer(client, admin, title_id, kind="rental", currency="USD", amount_minor=399)
    response = await client.delete(f"{API}/titles/{title_id}/offers/rental/usd", headers=admin.headers)
    assert response.status_code == 204, response.text
    assert (await client.get(f"{API}/titles/{title_id}/offers")).json()["rental"] == []
    response = await client.delete(f"{API}/titles/{title_id}/offers/rental/USD", headers=admin.headers)
    problem(response, 404, "offer_not_found")
    response = await client.delete(f"{API}/titles/{title_id}/offers/ppv/USD", headers=admin.headers)
    problem(response, 422, "validation_failed")


async def test_ppv_events_on_sale_and_upcoming(client: httpx.AsyncClient, admin: SignedIn, db: Db) -> None:
    title_id = await _title(db)
    on_sale = await _event(
        client,
        admin,
        title_id,
        prices=[{"currency": "USD", "amount_minor": 2499}, {"currency": "EUR", "amount_minor": 2299}],
    )
    assert on_sale["on_sale"] is True
    assert sorted((p["currency"], p["display"]) for p in on_sale["prices"]) == [
        ("EUR", "€22.99"),
        ("USD", "$24.99"),
    ]
    upcoming = await _event(
        client,
        admin,
        title_id,
        name="Rematch",
        **windows(sale_starts_at=48, sale_ends_at=72, view_starts_at=72, view_ends_at=75),
        prices=[{"currency": "USD", "amount_minor": 1999}],
    )
    assert upcoming["on_sale"] is False
    # Sale over (still watchable): no longer offered.
    await _event(
        client,
        admin,
        title_id,
        name="Yesterday",
        **windows(sale_starts_at=-30, sale_ends_at=-1, view_starts_at=-2, view_ends_at=2),
        prices=[{"currency": "USD", "amount_minor": 999}],
    )
    # No ticket price: cannot be bought, so not offered.
    await _event(client, admin, title_id, name="Unpriced")

    body = (await client.get(f"{API}/titles/{title_id}/offers")).json()
    assert [(e["name"], e["on_sale"]) for e in body["ppv_events"]] == [
        ("Live final", True),
        ("Rematch", False),
    ]
    body = (await client.get(f"{API}/titles/{title_id}/offers", params={"currency": "EUR"})).json()
    assert [(e["name"], [p["amount_minor"] for p in e["prices"]]) for e in body["ppv_events"]] == [
        ("Live final", [2299])
    ]

    listed = await client.get(f"{API}/ppv-events", params={"title_id": str(title_id)}, headers=admin.headers)
    assert listed.status_code == 200, listed.text
    assert [e["name"] for e in listed.json()] == ["Yesterday", "Live final", "Unpriced", "Rematch"]
    audits = await audit_events(db, "commerce_ppv_changed", "ppv_event_id", on_sale["id"])
    assert audits[0]["action"] == "created" and audits[0]["prices"] == {"USD": 2499, "EUR": 2299}


async def test_ppv_windows_are_validated(client: httpx.AsyncClient, admin: SignedIn, db: Db) -> None:
    title_id = await _title(db)
    url = f"{API}/ppv-events"
    for shifted, rule in (
        ({"sale_starts_at": 5, "sale_ends_at": 4}, "sale_order"),
        ({"sale_starts_at": 4, "sale_ends_at": 4}, "sale_order"),
        ({"view_starts_at": 30, "view_ends_at": 29}, "view_order"),
        ({"sale_ends_at": 28}, "sale_after_view"),  # the sale must end by the viewing's end
    ):
        body: dict[str, Any] = {"title_id": str(title_id), "name": "Bad", **windows(**shifted)}
        response = await client.post(url, json=body, headers=admin.headers)
        assert problem(response, 422, "invalid_ppv_window")["rule"] == rule
    naive = {**windows(), "sale_starts_at": "2030-01-01T00:00:00"}
    problem(
        await client.post(url, json={"title_id": str(title_id), "name": "N", **naive}, headers=admin.headers),
        422,
        "validation_failed",
    )
    body = {
        "title_id": str(title_id),
        "name": "Dup",
        **windows(),
        "prices": [{"currency": "USD", "amount_minor": 1}, {"currency": "usd", "amount_minor": 2}],
    }
    problem(await client.post(url, json=body, headers=admin.headers), 422, "duplicate_currency")
    body = {"title_id": str(uuid.uuid4()), "name": "Nowhere", **windows()}
    problem(await client.post(url, json=body, headers=admin.headers), 404, "title_not_found")

    event = await _event(client, admin, title_id)
    patch_url = f"{url}/{event['id']}"
    # Checked on the merged state: moving only the viewing end before the sale end is refused.
    late_sale = {"sale_ends_at": windows(sale_ends_at=28)["sale_ends_at"]}
    response = await client.patch(patch_url, json=late_sale, headers=admin.headers)
    assert problem(response, 422, "invalid_ppv_window")["rule"] == "sale_after_view"
    early_end = {"view_ends_at": windows(view_ends_at=10)["view_ends_at"]}
    response = await client.patch(patch_url, json=early_end, headers=admin.headers)
    assert problem(response, 422, "invalid_ppv_window")["rule"] == "view_order"
    problem(
        await client.patch(patch_url, json={"name": None}, headers=admin.headers), 422, "null_not_allowed"
    )
    later = {"view_ends_at": windows(view_ends_at=30)["view_ends_at"], "name": "Final (extended)"}
    response = await client.patch(patch_url, json=later, headers=admin.headers)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Final (extended)"
    problem(
        await client.patch(f"{url}/{uuid.uuid4()}", json={"name": "X"}, headers=admin.headers),
        404,
        "ppv_event_not_found",
    )


async def test_ppv_ticket_prices(
    client: httpx.AsyncClient, admin: SignedIn, viewer: SignedIn, db: Db
) -> None:
    title_id = await _title(db)
    event = await _event(client, admin, title_id)
    url = f"{API}/ppv-events/{event['id']}/prices"
    response = await client.put(url, json={"currency": "USD", "amount_minor": 1500}, headers=admin.headers)
    assert response.status_code == 200, response.text
    first = response.json()["prices"][0]
    response = await client.put(url, json={"currency": "USD", "amount_minor": 1700}, headers=admin.headers)
    [second] = response.json()["prices"]
    assert second["id"] != first["id"] and second["amount_minor"] == 1700
    cursor = await db.execute(
        """select amount_minor, active, kind from public.title_offers where ppv_event_id = %s
           order by created_at""",
        (uuid.UUID(event["id"]),),
    )
    assert await cursor.fetchall() == [(1500, False, "ppv"), (1700, True, "ppv")]
    problem(
        await client.put(
            f"{API}/ppv-events/{uuid.uuid4()}/prices",
            json={"currency": "USD", "amount_minor": 1},
            headers=admin.headers,
        ),
        404,
        "ppv_event_not_found",
    )
    problem(
        await client.put(url, json={"currency": "USD", "amount_minor": 1}, headers=viewer.headers),
        403,
        "permission_denied",
    )
    problem(await client.get(f"{API}/ppv-events", headers=viewer.headers), 403, "permission_denied")
    problem(await client.post(f"{API}/ppv-events", json={}, headers=viewer.headers), 403, "permission_denied")
