"""Adding a way into the account (an authenticator app, a linked provider) needs a recent sign-in."""

from __future__ import annotations

import psycopg

from tests.support.identity import auth_client, signed_in_user


async def _age_session(database_url: str, session_id: str, minutes: int) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.execute(
            "update public.auth_sessions set created_at = now() - make_interval(mins => %s) where id = %s",
            (minutes, session_id),
        )


async def test_totp_enrolment_needs_a_sign_in_from_the_last_ten_minutes(database_url: str) -> None:
    user = await signed_in_user(database_url)
    async with auth_client() as client:
        fresh = await client.post("/api/v1/auth/mfa/totp", headers=user.headers)
        assert fresh.status_code == 200, fresh.text
        await _age_session(database_url, user.session_id, 11)
        stale = await client.post("/api/v1/auth/mfa/totp", headers=user.headers)
    assert stale.status_code == 403, stale.text
    assert stale.json()["code"] == "recent_sign_in_required"


async def test_refreshing_does_not_make_an_old_sign_in_recent(database_url: str) -> None:
    user = await signed_in_user(database_url)
    await _age_session(database_url, user.session_id, 60)
    async with auth_client() as client:
        renewed = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
        assert renewed.status_code == 200, renewed.text
        headers = {"authorization": f"Bearer {renewed.json()['access_token']}"}
        stale = await client.post("/api/v1/auth/mfa/totp", headers=headers)
    assert stale.status_code == 403 and stale.json()["code"] == "recent_sign_in_required"
