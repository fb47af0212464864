"""Auth fails closed and politely when Redis is down: 503 problem+json, never a 500 or a pass."""

from __future__ import annotations

import socket
from collections.abc import Callable

from shared.infra.loop_local import reset_all
from tests.accounts.conftest import ME
from tests.support.identity import auth_client, log_in, sign_up_verified, users_client


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_redis_down_answers_503(
    database_url: str, redis_url: str, settings_env: Callable[..., None], ip: str
) -> None:
    email, password = await sign_up_verified(database_url)
    user = await log_in(email, password, client_ip=ip)
    settings_env(REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0")
    await reset_all()
    try:
        async with auth_client(client_ip=ip) as client:
            login = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
            refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
        async with users_client(client_ip=ip) as client:
            me = await client.get(ME, headers=user.headers)
        for response in (login, refresh, me):
            assert response.status_code == 503, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["code"] in ("redis_unavailable", "service_unavailable")
    finally:
        settings_env(REDIS_URL=redis_url)
        await reset_all()
    # Back up: the same refresh token still works (nothing was spent while Redis was away).
    async with auth_client(client_ip=ip) as client:
        response = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert response.status_code == 200, response.text
