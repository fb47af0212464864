"""Refresh rotation, reuse detection, parallel refreshes, logout and the devices list, through HTTP."""

from __future__ import annotations

import asyncio

from tests.accounts.conftest import ME, audit_events, sql
from tests.support.identity import SignedIn, auth_client, log_in, sign_up_verified, users_client

REFRESH = "/api/v1/auth/refresh"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def me_status(token: str, ip: str) -> tuple[int, str | None]:
    async with users_client(client_ip=ip) as client:
        response = await client.get(ME, headers=bearer(token))
    return response.status_code, response.json().get("code")


async def test_refresh_rotates_and_logout_kills_both_tokens(database_url: str, ip: str) -> None:
    email, password = await sign_up_verified(database_url)
    user = await log_in(email, password, client_ip=ip)
    async with auth_client(client_ip=ip) as client:
        response = await client.post(REFRESH, json={"refresh_token": user.refresh_token})
        assert response.status_code == 200, response.text
        rotated = response.json()
        assert rotated["refresh_token"] != user.refresh_token
        assert rotated["access_token"] != user.access_token
        assert rotated["session_id"] == user.session_id
        assert await me_status(rotated["access_token"], ip) == (200, None)

        response = await client.post(REFRESH, json={"refresh_token": "not-a-real-refresh-token"})
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_refresh_token"

        response = await client.post("/api/v1/auth/logout", headers=bearer(rotated["access_token"]))
        assert response.status_code == 204, response.text
    # Dead at once, long before its expiry: both access tokens of the session, and the refresh token.
    assert await me_status(rotated["access_token"], ip) == (401, "invalid_token")
    assert await me_status(user.access_token, ip) == (401, "invalid_token")
    async with auth_client(client_ip=ip) as client:
        response = await client.post(REFRESH, json={"refresh_token": rotated["refresh_token"]})
        assert response.status_code == 401
        response = await client.post("/api/v1/auth/logout")
        assert response.status_code == 401
    assert "logout" in [row["event"] for row in await audit_events(database_url, user.user_id)]


async def test_logout_global_ends_every_session(database_url: str, ip: str) -> None:
    email, password = await sign_up_verified(database_url)
    first = await log_in(email, password, client_ip=ip)
    second = await log_in(email, password, client_ip=ip)
    async with auth_client(client_ip=ip) as client:
        response = await client.post("/api/v1/auth/logout", headers=first.headers, json={"scope": "global"})
        assert response.status_code == 204, response.text
        for session in (first, second):
            assert await me_status(session.access_token, ip) == (401, "invalid_token")
            response = await client.post(REFRESH, json={"refresh_token": session.refresh_token})
            assert response.status_code == 401
        response = await client.post(
            "/api/v1/auth/logout", headers=second.headers, json={"scope": "everything"}
        )
        assert response.status_code in (401, 422)
    (live,) = (
        await sql(
            database_url,
            "select count(*) from public.auth_sessions where user_id = %s and revoked_at is null",
            (first.user_id,),
        )
    )[0]
    assert live == 0


async def test_sessions_list_and_revoke_another(database_url: str, ip: str) -> None:
    email, password = await sign_up_verified(database_url)
    laptop = await log_in(email, password, client_ip=ip)
    phone = await log_in(email, password, client_ip=ip)
    async with users_client(client_ip=ip) as client:
        response = await client.get(f"{ME}/sessions", headers=laptop.headers)
        assert response.status_code == 200, response.text
        listed = {row["id"]: row for row in response.json()}
        assert set(listed) == {laptop.session_id, phone.session_id}
        assert listed[laptop.session_id]["current"] is True
        assert listed[phone.session_id]["current"] is False
        assert listed[phone.session_id]["ip"] == ip  # a plain address, not "a.b.c.d/32"
        assert listed[phone.session_id]["user_agent"] == "pytest"

        response = await client.delete(f"{ME}/sessions/{phone.session_id}", headers=laptop.headers)
        assert response.status_code == 204, response.text
        assert await me_status(phone.access_token, ip) == (401, "invalid_token")
        assert await me_status(laptop.access_token, ip) == (200, None)
        response = await client.get(f"{ME}/sessions", headers=laptop.headers)
        assert [row["id"] for row in response.json()] == [laptop.session_id]

        # Twice, or someone else's session: not found.
        response = await client.delete(f"{ME}/sessions/{phone.session_id}", headers=laptop.headers)
        assert response.status_code == 404
        stranger = await log_in(*(await sign_up_verified(database_url)), client_ip=ip)
        response = await client.delete(f"{ME}/sessions/{stranger.session_id}", headers=laptop.headers)
        assert response.status_code == 404
        assert await me_status(stranger.access_token, ip) == (200, None)
    async with auth_client(client_ip=ip) as client:
        response = await client.post(REFRESH, json={"refresh_token": phone.refresh_token})
        assert response.status_code == 401


async def test_refresh_reuse_after_grace_revokes_the_family(database_url: str, ip: str) -> None:
    email, password = await sign_up_verified(database_url)
    user = await log_in(email, password, client_ip=ip)
    async with auth_client(client_ip=ip) as client:
        response = await client.post(REFRESH, json={"refresh_token": user.refresh_token})
        assert response.status_code == 200
        current = response.json()
        # The spent token comes back a minute later: a stolen copy.
        await sql(
            database_url,
            """update public.auth_refresh_tokens set used_at = now() - interval '1 minute'
               where used_at is not null and session_id = %s""",
            (user.session_id,),
        )
        response = await client.post(REFRESH, json={"refresh_token": user.refresh_token})
        assert response.status_code == 401
        assert response.json()["code"] == "refresh_token_reused"
        # The whole family is dead: the legitimate holder's newest tokens too.
        response = await client.post(REFRESH, json={"refresh_token": current["refresh_token"]})
        assert response.status_code == 401
    assert await me_status(current["access_token"], ip) == (401, "invalid_token")
    (reason,) = (
        await sql(
            database_url, "select revoked_reason from public.auth_sessions where id = %s", (user.session_id,)
        )
    )[0]
    assert reason == "refresh_reuse"
    assert "token_refresh_reuse" in [row["event"] for row in await audit_events(database_url, user.user_id)]


async def test_parallel_refreshes_one_wins(database_url: str, ip: str) -> None:
    email, password = await sign_up_verified(database_url)
    user: SignedIn = await log_in(email, password, client_ip=ip)
    async with auth_client(client_ip=ip) as client:
        responses = await asyncio.gather(
            client.post(REFRESH, json={"refresh_token": user.refresh_token}),
            client.post(REFRESH, json={"refresh_token": user.refresh_token}),
        )
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [200, 401], [response.text for response in responses]
        winner = next(response.json() for response in responses if response.status_code == 200)
        loser = next(response.json() for response in responses if response.status_code == 401)
        assert loser["code"] == "refresh_token_already_used"
        # The loser did not end the session: the winner's pair keeps working.
        assert await me_status(winner["access_token"], ip) == (200, None)
        response = await client.post(REFRESH, json={"refresh_token": winner["refresh_token"]})
        assert response.status_code == 200, response.text


async def test_refresh_refused_for_expired_idle_or_disabled(database_url: str, ip: str) -> None:
    email, password = await sign_up_verified(database_url)
    expired, idle, disabled = [await log_in(email, password, client_ip=ip) for _ in range(3)]
    await sql(
        database_url,
        "update public.auth_sessions set expires_at = now() - interval '1 second' where id = %s",
        (expired.session_id,),
    )
    await sql(
        database_url,
        "update public.auth_refresh_tokens set issued_at = now() - interval '400 days' where session_id = %s",
        (idle.session_id,),
    )
    async with auth_client(client_ip=ip) as client:
        for session in (expired, idle):
            response = await client.post(REFRESH, json={"refresh_token": session.refresh_token})
            assert response.status_code == 401, response.text
            assert response.json()["code"] == "invalid_refresh_token"
        await sql(database_url, "update public.users set status = 'disabled' where email = %s", (email,))
        response = await client.post(REFRESH, json={"refresh_token": disabled.refresh_token})
        assert response.status_code == 401
        assert response.json()["code"] == "account_disabled"
        # Refused, so not spent: it works again once the account is re-enabled.
        await sql(database_url, "update public.users set status = 'active' where email = %s", (email,))
        response = await client.post(REFRESH, json={"refresh_token": disabled.refresh_token})
        assert response.status_code == 200, response.text


async def test_changed_roles_make_old_tokens_refresh(database_url: str, ip: str) -> None:
    from shared.accounts.sessions import claims_changed
    from shared.settings import get_settings
    from tests.accounts.conftest import unverified_parts

    email, password = await sign_up_verified(database_url)
    user = await log_in(email, password, client_ip=ip)
    await asyncio.sleep(0.01)  # the change comes strictly after the token (compared in milliseconds)
    await sql(
        database_url,
        "update public.users set roles = array['viewer', 'support'] where id = %s",
        (user.user_id,),
    )
    await claims_changed(settings=get_settings(), user_id=user.user_id)
    assert await me_status(user.access_token, ip) == (401, "invalid_token")
    async with auth_client(client_ip=ip) as client:
        response = await client.post(REFRESH, json={"refresh_token": user.refresh_token})
    assert response.status_code == 200, response.text
    fresh = response.json()["access_token"]
    assert unverified_parts(fresh)[1]["app_roles"] == ["support", "viewer"]
    # Minted within the same second as the change, yet after it: accepted.
    assert await me_status(fresh, ip) == (200, None)
