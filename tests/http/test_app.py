"""The conventions every endpoint group inherits from create_app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from shared.errors import Conflict
from shared.http.app import create_app
from shared.http.auth import Principal, current_principal, register_authenticator, require_roles
from shared.http.pagination import Page, PageParams, page_params, paginate

router = APIRouter(prefix="/api/v1/probe")


class Item(BaseModel):
    n: int


@router.get("/conflict")
async def conflict() -> None:
    raise Conflict("That title already exists.", existing_id="t-1")


@router.get("/crash")
async def crash() -> None:
    raise RuntimeError("secret internals: password=hunter2")


@router.post("/items")
async def create_item(item: Item) -> Item:
    return item


@router.post("/echo")
async def echo(request: Request) -> dict[str, int]:
    return {"size": len(await request.body())}


@router.get("/numbers")
async def numbers(params: Annotated[PageParams, Depends(page_params)]) -> Page[int]:
    after = params.after[0] if params.after else 0
    rows = list(range(after + 1, min(after + params.limit + 1, 45) + 1))
    return paginate(rows, params, key=lambda n: [n])


@router.get("/me")
async def me(principal: Annotated[Principal, Depends(current_principal)]) -> dict[str, str]:
    return {"user_id": str(principal.user_id)}


@router.get("/admin")
async def admin(principal: Annotated[Principal, Depends(require_roles("admin"))]) -> dict[str, str]:
    return {"ok": "yes"}


@pytest.fixture
async def client(settings_env) -> AsyncIterator[httpx.AsyncClient]:
    settings_env(MAX_BODY_BYTES="2048", CORS_ORIGINS="https://app.example, http://localhost:3000")
    app = create_app(router, group="probe")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["code"] == code and body["type"] == f"/problems/{code}"
    assert body["title"] and body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_app_error_renders_problem_with_extras(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/api/v1/probe/conflict"), 409, "conflict")
    assert body["existing_id"] == "t-1" and body["instance"] == "/api/v1/probe/conflict"


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/probe/nothing-here"), 404, "not_found")
    assert_problem(await client.delete("/api/v1/probe/conflict"), 405, "method_not_allowed")


async def test_validation_errors_list_fields(client: httpx.AsyncClient) -> None:
    body = assert_problem(
        await client.post("/api/v1/probe/items", json={"n": "many"}), 422, "validation_failed"
    )
    assert body["errors"][0]["loc"] == ["body", "n"]
    assert_problem(
        await client.post(
            "/api/v1/probe/items", content=b"{not json", headers={"content-type": "application/json"}
        ),
        422,
        "validation_failed",
    )


async def test_unexpected_error_hides_internals(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/probe/crash")
    body = assert_problem(response, 500, "internal_error")
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert "request id" in str(body["detail"])
    cross_origin = await client.get("/api/v1/probe/crash", headers={"origin": "https://app.example"})
    assert cross_origin.headers["access-control-allow-origin"] == "https://app.example"


async def test_request_id_generated_or_kept(client: httpx.AsyncClient) -> None:
    generated = (await client.get("/api/v1/probe/conflict")).headers["x-request-id"]
    assert len(generated) == 32
    given = "client-" + uuid.uuid4().hex
    assert (await client.get("/api/v1/probe/conflict", headers={"x-request-id": given})).headers[
        "x-request-id"
    ] == given
    hostile = (await client.get("/api/v1/probe/conflict", headers={"x-request-id": "<script>"})).headers[
        "x-request-id"
    ]
    assert hostile != "<script>"


async def test_body_limit_by_header_and_by_stream(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/probe/echo", content=b"x" * 2048)).json() == {"size": 2048}
    assert_problem(await client.post("/api/v1/probe/echo", content=b"x" * 2049), 413, "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"y" * 1000

    assert_problem(await client.post("/api/v1/probe/echo", content=chunks()), 413, "payload_too_large")
    headers = {"content-type": "application/json"}
    assert_problem(
        await client.post("/api/v1/probe/items", content=chunks(), headers=headers), 413, "payload_too_large"
    )


async def test_cors_allowlist(client: httpx.AsyncClient) -> None:
    preflight = {"access-control-request-method": "POST"}
    allowed = await client.options(
        "/api/v1/probe/items", headers={"origin": "https://app.example", **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    denied = await client.options(
        "/api/v1/probe/items", headers={"origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in denied.headers


async def test_cursor_pagination_walks_every_row_once(client: httpx.AsyncClient) -> None:
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 10} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/probe/numbers", params=params)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(range(1, 46))
    assert_problem(await client.get("/api/v1/probe/numbers", params={"cursor": "%%%"}), 400, "invalid_cursor")
    assert_problem(await client.get("/api/v1/probe/numbers", params={"limit": 0}), 422, "validation_failed")


async def test_auth_hooks(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/probe/me")
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")

    user = uuid.uuid4()

    async def verify(token: str, request: Request) -> Principal:
        if token != "good":
            from shared.errors import Unauthenticated

            raise Unauthenticated("Token is invalid or expired.")
        return Principal(user_id=user, roles=frozenset({"viewer"}))

    register_authenticator(verify)
    try:
        ok = await client.get("/api/v1/probe/me", headers={"authorization": "Bearer good"})
        assert ok.json() == {"user_id": str(user)}
        assert_problem(
            await client.get("/api/v1/probe/me", headers={"authorization": "Bearer bad"}),
            401,
            "unauthenticated",
        )
        assert_problem(
            await client.get("/api/v1/probe/admin", headers={"authorization": "Bearer good"}),
            403,
            "forbidden",
        )
    finally:
        from shared.accounts.authn import verify_access_token

        register_authenticator(verify_access_token)  # the platform's own verifier, as before the test


async def test_group_openapi_is_served(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/v1/probe/openapi.json")).json()
    assert "/api/v1/probe/items" in spec["paths"]
