"""The invoice endpoints: the owner's list, JSON and HTML; 404 for others; the signed view link."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import psycopg

from shared.invoices import service
from shared.payments.providers.base import InvoiceLine
from tests.invoices.conftest import invoice_state, receipts
from tests.support.clock import Clock
from tests.support.commerce import problem
from tests.support.identity import SignedIn, signed_in_user

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


async def record_for(db: psycopg.AsyncConnection[Any], user: SignedIn, **kwargs: Any) -> uuid.UUID:
    async with db.transaction():
        return await service.record(
            db,
            provider_name="sandbox",
            invoice=invoice_state(**kwargs),
            user_id=user.user_id,
            subscription_id=None,
        )


def assert_page_headers(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["cache-control"] == "private, no-store"


def view_path(link: str) -> str:
    """The path and query of an emailed link (the app is served at the test client's base URL)."""
    url = httpx.URL(link)
    return f"{url.path}?{url.query.decode()}"


async def test_owner_lists_reads_and_prints(
    client: httpx.AsyncClient, db: psycopg.AsyncConnection[Any], database_url: str
) -> None:
    from datetime import UTC, datetime, timedelta

    owner = await signed_in_user(database_url)
    stranger = await signed_in_user(database_url)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    ids = [await record_for(db, owner, created_at=base + timedelta(days=day)) for day in range(3)]
    await record_for(db, stranger)

    response = await client.get("/api/v1/payments/invoices", params={"limit": 2}, headers=owner.headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "private, no-store"
    body = response.json()
    assert [item["id"] for item in body["items"]] == [str(ids[2]), str(ids[1])]
    first = body["items"][0]
    assert first["description"] == "Standard (monthly)" and first["total_formatted"] == "€14.39"
    assert first["status"] == "paid" and re.fullmatch(r"CIN-\d{8}", first["number"])
    response = await client.get(
        "/api/v1/payments/invoices", params={"limit": 2, "cursor": body["next_cursor"]}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    assert [item["id"] for item in response.json()["items"]] == [str(ids[0])]
    assert response.json()["next_cursor"] is None
    problem(
        await client.get("/api/v1/payments/invoices", params={"cursor": "bm9wZQ"}, headers=owner.headers),
        400,
        "invalid_cursor",
    )

    response = await client.get(f"/api/v1/payments/invoices/{ids[0]}", headers=owner.headers)
    assert response.status_code == 200, response.text
    invoice = response.json()
    assert invoice["lines"][0]["description"] == "Standard (monthly)"
    assert invoice["tax_lines"] == [
        {"description": "VAT", "rate_percent": "20.0", "amount_minor": 240, "inclusive": False}
    ]
    assert (invoice["subtotal_minor"], invoice["tax_minor"], invoice["total_minor"]) == (1199, 240, 1439)
    assert "provider_ref" not in invoice and "user_id" not in invoice

    response = await client.get(f"/api/v1/payments/invoices/{ids[0]}/html", headers=owner.headers)
    assert_page_headers(response)
    page = response.text
    assert invoice["number"] in page and owner.email in page and "Cinema Online" in page
    assert "VAT (20%)" in page and "€14.39" in page and "€11.99" in page
    assert "21 Nov 2026 \N{EN DASH} 21 Dec 2026" in page
    assert not re.search(r"(src|href)\s*=", page)  # nothing loaded from anywhere


async def test_others_and_nobody_get_nothing(
    client: httpx.AsyncClient, db: psycopg.AsyncConnection[Any], database_url: str
) -> None:
    owner = await signed_in_user(database_url)
    stranger = await signed_in_user(database_url)
    invoice_id = await record_for(db, owner)
    for suffix in ("", "/html"):
        path = f"/api/v1/payments/invoices/{invoice_id}{suffix}"
        problem(await client.get(path, headers=stranger.headers), 404, "invoice_not_found")
        problem(await client.get(path), 401, "unauthenticated")
        problem(
            await client.get(f"/api/v1/payments/invoices/{uuid.uuid4()}{suffix}", headers=owner.headers),
            404,
            "invoice_not_found",
        )
        problem(
            await client.get(f"/api/v1/payments/invoices/not-an-id{suffix}", headers=owner.headers),
            422,
            "validation_failed",
        )
    response = await client.get("/api/v1/payments/invoices", headers=stranger.headers)
    assert response.json()["items"] == []
    problem(await client.get("/api/v1/payments/invoices"), 401, "unauthenticated")


async def test_signed_view_link(
    client: httpx.AsyncClient, db: psycopg.AsyncConnection[Any], database_url: str, clock: Clock
) -> None:
    owner = await signed_in_user(database_url)
    invoice_id = await record_for(db, owner)
    mails = await receipts(db, owner.user_id)
    assert len(mails) == 1
    links = [link for link in re.findall(r"https?://\S+", mails[0]["text_body"]) if "/view?" in link]
    assert len(links) == 1
    path = view_path(links[0])
    assert path.startswith(f"/api/v1/payments/invoices/{invoice_id}/view?expires=")

    response = await client.get(path)  # no bearer: the link is the permission
    assert_page_headers(response)
    assert owner.email in response.text

    expires = httpx.URL(links[0]).params["expires"]
    sig = httpx.URL(links[0]).params["sig"]
    base = f"/api/v1/payments/invoices/{invoice_id}/view"
    tampered_sig = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    for params in (
        {"expires": expires, "sig": tampered_sig},
        {"expires": str(int(expires) + 86400), "sig": sig},  # a longer life is not ours to grant
        {"expires": expires},
        {"sig": sig},
        {},
        {"expires": "soon", "sig": sig},
        {"expires": expires, "sig": "é" * 64},
    ):
        problem(await client.get(base, params=params), 403, "link_invalid")
    # The link of one invoice does not open another.
    other = await record_for(db, owner)
    problem(
        await client.get(f"/api/v1/payments/invoices/{other}/view", params={"expires": expires, "sig": sig}),
        403,
        "link_invalid",
    )
    problem(
        await client.get("/api/v1/payments/invoices/nope/view", params={"expires": expires}),
        422,
        "validation_failed",
    )

    clock.advance(29 * 86400)
    assert_page_headers(await client.get(path))
    clock.advance(2 * 86400)
    problem(await client.get(path), 410, "link_expired")


async def test_page_escapes_hostile_text(
    client: httpx.AsyncClient, db: psycopg.AsyncConnection[Any], database_url: str
) -> None:
    owner = await signed_in_user(database_url)
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quoted"'
    invoice_id = await record_for(
        db, owner, lines=(InvoiceLine(description=hostile, amount_minor=1199),), number='<b id="n">'
    )
    response = await client.get(f"/api/v1/payments/invoices/{invoice_id}/html", headers=owner.headers)
    assert_page_headers(response)
    page = response.text
    assert "<script" not in page and "<img" not in page and '<b id="n">' not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&amp; &quot;quoted&quot;" in page
    mail = (await receipts(db, owner.user_id))[0]
    assert "<script" not in mail["html_body"] and "&lt;script&gt;" in mail["html_body"]
