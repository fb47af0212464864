"""Sign-up, email verification, resend, login and the owner's account details, through HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from shared.settings import get_settings
from tests.accounts.conftest import ME, audit_events, mails, sql
from tests.support.identity import (
    PASSWORD,
    auth_client,
    latest_link,
    log_in,
    sign_up_verified,
    token_of,
    unique_email,
    users_client,
)


def public_base() -> str:
    return str(get_settings().public_base_url).rstrip("/")


async def test_signup_verify_login_and_me(database_url: str, ip: str) -> None:
    email = unique_email("signup")
    async with auth_client(client_ip=ip) as client:
        response = await client.post(
            "/api/v1/auth/signup", json={"email": email, "password": PASSWORD, "display_name": "Ada"}
        )
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "accepted"

        (mail,) = await mails(database_url, email, "verify_email")
        link = await latest_link(database_url, email, "verify_email")
        assert link.startswith(public_base() + "/verify-email?token=")
        assert mail["user_id"] is not None

        # Not verified yet: the right password gets a clear 403, not tokens.
        response = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "email_not_verified"
        assert response.headers["content-type"].startswith("application/problem+json")

        token = token_of(link)
        response = await client.post("/api/v1/auth/verify-email", json={"token": token})
        assert response.status_code == 200, response.text
        assert response.json()["email_verified"] is True
        assert response.json()["email"] == email

        # Single use.
        response = await client.post("/api/v1/auth/verify-email", json={"token": token})
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_token"

        response = await client.post(
            "/api/v1/auth/login", json={"email": email.upper(), "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] > 60
    assert body["refresh_token"] and body["access_token"].count(".") == 2
    assert body["user"]["display_name"] == "Ada"
    user_id = uuid.UUID(body["user"]["id"])
    headers = {"authorization": f"Bearer {body['access_token']}"}

    async with users_client(client_ip=ip) as client:
        response = await client.get(ME, headers=headers)
        assert response.status_code == 200, response.text
        me = response.json()
        assert me["id"] == str(user_id) and me["email"] == email and me["roles"] == ["viewer"]
        assert me["email_verified"] is True and me["last_login_at"] is not None
        assert "password_hash" not in me

        response = await client.patch(ME, headers=headers, json={"display_name": "Ada L."})
        assert response.status_code == 200, response.text
        assert response.json()["display_name"] == "Ada L."
        # A PATCH without the field leaves it alone.
        response = await client.patch(ME, headers=headers, json={})
        assert response.status_code == 200, response.text
        assert response.json()["display_name"] == "Ada L."
        response = await client.patch(ME, headers=headers, json={"display_name": None})
        assert response.json()["display_name"] is None
        response = await client.patch(ME, headers=headers, json={"email": "x@example.com"})
        assert response.status_code == 422

        response = await client.get(ME)
        assert response.status_code == 401
        assert response.json()["code"] == "unauthenticated"

    events = [row["event"] for row in await audit_events(database_url, user_id)]
    assert events[:3] == ["signup", "email_verified", "login_succeeded"]


async def test_verification_link_expires(database_url: str, ip: str) -> None:
    email = unique_email("expired")
    async with auth_client(client_ip=ip) as client:
        await client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
        token = token_of(await latest_link(database_url, email, "verify_email"))
        await sql(
            database_url,
            """update public.auth_email_tokens set expires_at = now() - interval '1 minute'
               where user_id = (select id from public.users where email = %s)""",
            (email,),
        )
        response = await client.post("/api/v1/auth/verify-email", json={"token": token})
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_token"
        response = await client.post("/api/v1/auth/verify-email", json={"token": "x" * 43})
        assert response.json()["code"] == "invalid_token"


async def test_resend_verification(database_url: str, ip: str) -> None:
    email = unique_email("resend")
    async with auth_client(client_ip=ip) as client:
        await client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
        first = token_of(await latest_link(database_url, email, "verify_email"))
        response = await client.post("/api/v1/auth/verify-email/resend", json={"email": email})
        assert response.status_code == 202, response.text
        assert len(await mails(database_url, email, "verify_email")) == 2
        second = token_of(await latest_link(database_url, email, "verify_email"))
        assert second != first

        # A new link replaces the old one.
        response = await client.post("/api/v1/auth/verify-email", json={"token": first})
        assert response.status_code == 400
        response = await client.post("/api/v1/auth/verify-email", json={"token": second})
        assert response.status_code == 200, response.text

        # Verified now: a resend answers the same and sends nothing.
        response = await client.post("/api/v1/auth/verify-email/resend", json={"email": email})
        assert response.status_code == 202
        assert len(await mails(database_url, email, "verify_email")) == 2


async def test_signup_rejects_weak_and_invalid_input(ip: str) -> None:
    async with auth_client(client_ip=ip) as client:
        email = unique_email("weak")
        response = await client.post("/api/v1/auth/signup", json={"email": email, "password": "password1"})
        assert response.status_code == 422
        assert response.json()["code"] == "password_too_common"
        response = await client.post(
            "/api/v1/auth/signup", json={"email": "not-an-email", "password": PASSWORD}
        )
        assert response.status_code == 422
        assert response.json()["code"] == "validation_failed"
        response = await client.post("/api/v1/auth/login", json={"email": email})
        assert response.status_code == 422


async def test_wrong_password_is_refused_and_audited(database_url: str, ip: str) -> None:
    email, _ = await sign_up_verified(database_url)
    async with auth_client(client_ip=ip) as client:
        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": "wrong " + PASSWORD}
        )
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    (user_id,) = (await sql(database_url, "select id from public.users where email = %s", (email,)))[0]
    failures = [row for row in await audit_events(database_url, user_id) if row["event"] == "login_failed"]
    assert len(failures) == 1 and failures[0]["ip"] == ip


async def test_password_rehashed_when_cost_changes(
    database_url: str, settings_env: Callable[..., None], ip: str
) -> None:
    email, password = await sign_up_verified(database_url)
    (before,) = (
        await sql(database_url, "select password_hash from public.users where email = %s", (email,))
    )[0]
    assert before.startswith("$argon2id$") and ",t=2," in before
    settings_env(ARGON2_TIME_COST="3")
    signed_in = await log_in(email, password, client_ip=ip)
    (after,) = (await sql(database_url, "select password_hash from public.users where email = %s", (email,)))[
        0
    ]
    assert after != before and ",t=3," in after
    # The upgrade is transparent: the same password still works, and it is not a password change.
    settings_env(ARGON2_TIME_COST=None)
    assert (await log_in(email, password, client_ip=ip)).user_id == signed_in.user_id
    (changed,) = (
        await sql(
            database_url,
            """select password_changed_at <= created_at + interval '5 seconds' from public.users
               where email = %s""",
            (email,),
        )
    )[0]
    assert changed
