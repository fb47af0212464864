"""GET /api/v1/health: 200 with every dependency up, 503 naming what is down."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from shared.infra.loop_local import reset_all


@pytest.fixture
async def health_client(settings_env) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    from api.health import app

    await reset_all()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client, settings_env
    await reset_all()


async def test_all_dependencies_up(health_client) -> None:
    client, _ = health_client
    response = await client.get("/api/v1/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "pass" and body["down"] == []
    assert set(body["checks"]) == {"database", "redis", "storage", "queue"}
    assert all(check["status"] == "pass" for check in body["checks"].values())
    assert body["checks"]["database"]["info"]["schema_version"]
    assert body["version"]
    assert response.headers["cache-control"] == "no-store"


async def test_redis_down_is_named(health_client, tmp_path) -> None:
    client, settings_env = health_client
    settings_env(REDIS_URL=f"unix://{tmp_path}/no-redis.sock")
    await reset_all()
    response = await client.get("/api/v1/health")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["redis"]
    assert body["checks"]["redis"]["status"] == "fail" and body["checks"]["redis"]["detail"]
    assert str(tmp_path) not in response.text  # no addresses or server replies on a public endpoint


async def test_database_down_is_named(health_client, tmp_path) -> None:
    client, settings_env = health_client
    settings_env(DATABASE_URL=f"postgresql://postgres@/postgres?host={tmp_path}", DB_CONNECT_TIMEOUT="1")
    await reset_all()
    response = await client.get("/api/v1/health")
    assert response.status_code == 503
    assert "database" in response.json()["down"]


def test_lambda_adapter_serves_the_same_app() -> None:
    from api.health import lambda_handler

    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/api/v1/health/openapi.json",
        "rawQueryString": "",
        "headers": {"host": "example.lambda-url.us-east-1.on.aws"},
        "requestContext": {
            "http": {"method": "GET", "path": "/api/v1/health/openapi.json", "sourceIp": "127.0.0.1"},
            "requestId": "r",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }

    def invoke() -> dict[str, object]:
        # As in a Lambda runtime: a thread whose current loop is fresh, whatever other tests did to theirs.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            answer: dict[str, object] = lambda_handler(event, None)
            return answer
        finally:
            loop.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        result = pool.submit(invoke).result()
    assert result["statusCode"] == 200
    assert "/api/v1/health" in json.loads(result["body"])["paths"]
