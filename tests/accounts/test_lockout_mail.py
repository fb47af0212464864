"""The lockout's unlock mail: at most one an hour, and it never cancels a reset link the owner asked for."""

from __future__ import annotations

from shared.accounts.service import email_key
from shared.infra.redis import get_redis
from tests.accounts.conftest import audit_events, mails, sql
from tests.support.identity import auth_client, latest_link, random_ip, sign_up_verified, token_of


async def wrong_login(email: str, ip: str) -> int:
    async with auth_client(client_ip=ip) as client:
        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": "wrong guess 77"}
        )
    return response.status_code


async def test_two_lockouts_in_an_hour_mail_once_and_keep_the_owners_reset_link(database_url: str) -> None:
    email, _ = await sign_up_verified(database_url)
    owner_ip = random_ip()
    async with auth_client(client_ip=owner_ip) as client:
        assert (await client.post("/api/v1/auth/password/reset", json={"email": email})).status_code == 202
    owners_link = await latest_link(database_url, email, "reset_password")

    attacker = random_ip()
    assert [await wrong_login(email, attacker) for _ in range(5)] == [401] * 5  # the 5th locks
    # The lock runs out (as if its minute had passed); the next wrong password locks again.
    store = await get_redis()
    await store.delete(f"lock:login:{email_key(email)}:until")
    assert await wrong_login(email, attacker) == 401

    (user_id,) = (await sql(database_url, "select id from public.users where email = %s", (email,)))[0]
    events = [row["event"] for row in await audit_events(database_url, user_id)]
    assert events.count("login_locked") == 2
    assert len(await mails(database_url, email, "account_locked")) == 1

    # The link the owner asked for before the lockouts still works, and lifts the lock.
    new_password = "owner took it back 2024"
    async with auth_client(client_ip=owner_ip) as client:
        response = await client.post(
            "/api/v1/auth/password/reset/confirm",
            json={"token": token_of(owners_link), "password": new_password},
        )
        assert response.status_code == 204, response.text
        response = await client.post("/api/v1/auth/login", json={"email": email, "password": new_password})
    assert response.status_code == 200, response.text
