"""The deployed streaming group serves every key and licence route (the tests use it, no stand-in app)."""

from __future__ import annotations

from api.streaming import app

ROUTES = {
    ("GET", "/api/v1/streaming/keys/{assetId}/hls.key"),
    ("POST", "/api/v1/streaming/licence/clearkey"),
    ("POST", "/api/v1/streaming/licence/{system}"),
}


def test_licence_routes_are_mounted_on_the_streaming_app() -> None:
    served = {
        (method.upper(), path) for path, operations in app.openapi()["paths"].items() for method in operations
    }
    assert not ROUTES - served, ROUTES - served


def test_openapi_documents_the_token_header_and_refusals() -> None:
    spec = app.openapi()
    operation = spec["paths"]["/api/v1/streaming/licence/{system}"]["post"]
    parameters = {(p["in"], p["name"]) for p in operation["parameters"]}
    assert {("query", "token"), ("header", "X-Delivery-Token")} <= parameters
    assert {"403", "429", "400", "502"} <= set(operation["responses"])


async def test_each_route_answers_through_the_app() -> None:
    import uuid

    from tests.support.identity import client_for

    async with client_for(app) as client:
        key = await client.get(f"/api/v1/streaming/keys/{uuid.uuid4()}/hls.key")
        clearkey = await client.post(
            "/api/v1/streaming/licence/clearkey", json={"kids": ["AAAAAAAAAAAAAAAAAAAAAA"]}
        )
    # Refused by the licence code itself (no token), not a 404/405 of a missing route.
    for response in (key, clearkey):
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "invalid_token"
