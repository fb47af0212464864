"""Supabase Auth tokens (ACCEPT_SUPABASE_TOKENS): mapped to local accounts by linked identity only, never
by a matching address; no way around local 2FA; ended by sign-out everywhere, password changes and
resets, and by an administrator disabling the account."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import jwt
import pytest

from shared.infra.loop_local import reset_all
from shared.settings import get_settings
from tests.accounts.conftest import ME, enable_mfa, sql
from tests.support.identity import (
    auth_client,
    latest_link,
    log_in,
    sign_up_verified,
    signed_in_user,
    token_of,
    unique_email,
    users_client,
)

URL = "https://abcdefgh.supabase.co"
NEW_PASSWORD = "a brand new passphrase 42"


@pytest.fixture
async def supabase(settings_env: Callable[..., None]) -> AsyncIterator[str]:
    """Supabase tokens accepted for this test; yields the project's JWT secret."""
    secret = "s" * 40 + uuid.uuid4().hex
    settings_env(SUPABASE_JWT_SECRET=secret, SUPABASE_URL=URL, ACCEPT_SUPABASE_TOKENS="true")
    await reset_all()
    yield secret
    get_settings.cache_clear()
    await reset_all()


def supabase_token(secret: str, *, sub: str, email: str, later: int = 0, **changes: Any) -> str:
    """A token as Supabase Auth signs it; `later` seconds in the future (for one issued after a mark)."""
    now = int(time.time()) + later
    claims = {
        "iss": f"{URL}/auth/v1",
        "sub": sub,
        "aud": "authenticated",
        "exp": now + 3600,
        "iat": now,
        "email": email,
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        # Written by the user themselves (supabase.auth.updateUser({data: ...})): proves nothing.
        "user_metadata": {"email": email, "email_verified": True, "phone_verified": False, "sub": sub},
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now}],
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
        **changes,
    }
    return jwt.encode(claims, secret, algorithm="HS256", headers={"typ": "JWT"})


async def me(token: str, ip: str) -> tuple[int, dict[str, Any]]:
    async with users_client(client_ip=ip) as client:
        response = await client.get(ME, headers={"authorization": f"Bearer {token}"})
    return response.status_code, response.json()


async def refused(token: str, ip: str) -> str:
    """Assert a 401 and return its problem code."""
    status, body = await me(token, ip)
    assert status == 401, body
    return str(body["code"])


async def identities(database_url: str, subject: str) -> list[uuid.UUID]:
    rows = await sql(
        database_url,
        "select user_id from public.auth_identities where provider = 'supabase' and subject = %s",
        (subject,),
    )
    return [row[0] for row in rows]


async def legacy_link(database_url: str, user_id: uuid.UUID, email: str) -> str:
    """A Supabase identity attached to an existing account (as an earlier version did); its subject."""
    subject = str(uuid.uuid4())
    await sql(
        database_url,
        """insert into public.auth_identities (provider, subject, user_id, email)
           values ('supabase', %s, %s, %s)""",
        (subject, user_id, email),
    )
    return subject


async def test_new_supabase_user_gets_an_unverified_account_with_roles_from_ours(
    database_url: str, supabase: str, settings_env: Callable[..., None], ip: str
) -> None:
    subject, email = str(uuid.uuid4()), unique_email("supa")
    # app_roles in a Supabase token are ignored: whoever holds the project secret could write them.
    token = supabase_token(supabase, sub=subject, email=email, app_roles=["admin"])
    status, body = await me(token, ip)
    assert status == 200, body
    # Supabase's user_metadata.email_verified is the user's own claim: the address stays unproven.
    assert body["email"] == email and body["email_verified"] is False and body["id"] != subject
    assert body["roles"] == ["viewer"]
    async with users_client(client_ip=ip) as client:
        response = await client.get("/api/v1/users", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 403
    status, again = await me(supabase_token(supabase, sub=subject, email=email, later=1), ip)
    assert status == 200 and again["id"] == body["id"]  # created once, then reused
    assert [str(user_id) for user_id in await identities(database_url, subject)] == [body["id"]]
    (count,) = (
        await sql(database_url, "select count(*) from public.users where lower(email) = lower(%s)", (email,))
    )[0]
    (profiles,) = (
        await sql(database_url, "select count(*) from public.profiles where user_id = %s", (body["id"],))
    )[0]
    assert count == 1 and profiles == 1

    # No password to prove: one is set through the emailed reset link, never with just a bearer token.
    async with users_client(client_ip=ip) as client:
        response = await client.put(
            f"{ME}/password",
            headers={"authorization": f"Bearer {token}"},
            json={"current_password": "anything", "new_password": "planted by a token thief 9"},
        )
    assert response.status_code == 403 and response.json()["code"] == "password_not_set"

    # Wrong issuer, wrong secret, a service-role key, expired, another audience, our token type, or a
    # lifetime beyond what revocation records cover: all refused.
    now = int(time.time())
    for bad in (
        supabase_token(supabase, sub=subject, email=email, iss="https://other.supabase.co/auth/v1"),
        supabase_token("w" * 48, sub=subject, email=email),
        supabase_token(supabase, sub=subject, email=email, role="service_role"),
        supabase_token(supabase, sub=subject, email=email, exp=now - 300, iat=now - 4000),
        supabase_token(supabase, sub=subject, email=email, aud="other"),
        supabase_token(supabase, sub=subject, email=email, exp=now + 7200),
        jwt.encode(
            jwt.decode(token, options={"verify_signature": False}),
            supabase,
            algorithm="HS256",
            headers={"typ": "at+jwt"},
        ),
    ):
        assert await refused(bad, ip) == "invalid_token"

    settings_env(ACCEPT_SUPABASE_TOKENS="false")
    assert await refused(token, ip) == "invalid_token"


async def test_unlinked_subject_never_claims_an_account_with_its_address(
    database_url: str, supabase: str, ip: str
) -> None:
    """Supabase may sign in someone who never proved the address: a matching email links nothing."""
    verified, _ = await sign_up_verified(database_url)
    squatted = unique_email("prereg")
    async with auth_client(client_ip=ip) as client:
        response = await client.post(
            "/api/v1/auth/signup", json={"email": squatted, "password": "attacker knows this 1"}
        )
    assert response.status_code == 202
    for email in (verified, squatted, verified.upper()):
        subject = str(uuid.uuid4())
        token = supabase_token(supabase, sub=subject, email=email, aal="aal2")
        status, body = await me(token, ip)
        assert status == 401 and body["code"] == "supabase_account_conflict", body
        assert "password" in body["detail"]
        assert await identities(database_url, subject) == []
    (count,) = (
        await sql(
            database_url,
            "select count(*) from public.users where lower(email) in (lower(%s), lower(%s))",
            (verified, squatted),
        )
    )[0]
    assert count == 2


async def test_a_two_step_account_refuses_supabase_tokens_whatever_their_aal(
    database_url: str, supabase: str, ip: str
) -> None:
    user, _, _ = await enable_mfa(database_url, ip)
    # Even an identity linked earlier: anyone can reach aal2 at Supabase with their own authenticator.
    subject = await legacy_link(database_url, user.user_id, user.email)
    for aal in ("aal1", "aal2"):
        token = supabase_token(supabase, sub=subject, email=user.email, aal=aal)
        assert await refused(token, ip) == "mfa_required_locally"
    unlinked = supabase_token(supabase, sub=str(uuid.uuid4()), email=user.email, aal="aal2")
    assert await refused(unlinked, ip) == "supabase_account_conflict"
    assert (await me(user.access_token, ip))[0] == 200  # our own aal2 session is unaffected


async def test_signing_out_everywhere_and_disabling_end_supabase_tokens(
    database_url: str, supabase: str, ip: str
) -> None:
    subject, email = str(uuid.uuid4()), unique_email("supa")
    token = supabase_token(supabase, sub=subject, email=email)
    status, body = await me(token, ip)
    assert status == 200
    async with auth_client(client_ip=ip) as client:
        response = await client.post(
            "/api/v1/auth/logout", json={"scope": "global"}, headers={"authorization": f"Bearer {token}"}
        )
    assert response.status_code == 204, response.text
    assert await refused(token, ip) == "invalid_token"
    # A token Supabase issues after that (a new sign-in there) works.
    fresh = supabase_token(supabase, sub=subject, email=email, later=2)
    assert (await me(fresh, ip))[0] == 200

    admin = await signed_in_user(database_url, roles=["admin"])
    async with users_client(client_ip=ip) as client:
        response = await client.post(
            f"/api/v1/users/{body['id']}/disable", json={"reason": "abuse"}, headers=admin.headers
        )
    assert response.status_code == 200, response.text
    assert await refused(fresh, ip) == "invalid_token"
    assert await refused(supabase_token(supabase, sub=subject, email=email, later=3), ip) == "invalid_token"


async def test_password_change_ends_supabase_tokens_but_keeps_the_callers_session(
    database_url: str, supabase: str, ip: str
) -> None:
    email, password = await sign_up_verified(database_url)
    user = await log_in(email, password, client_ip=ip)
    other = await log_in(email, password, client_ip=ip)
    subject = await legacy_link(database_url, user.user_id, email)
    token = supabase_token(supabase, sub=subject, email=email)
    status, body = await me(token, ip)
    assert status == 200 and body["id"] == str(user.user_id)
    async with users_client(client_ip=ip) as client:
        response = await client.put(
            f"{ME}/password",
            headers=user.headers,
            json={"current_password": password, "new_password": NEW_PASSWORD},
        )
    assert response.status_code == 200, response.text
    assert (await me(user.access_token, ip))[0] == 200  # the caller's own token keeps working
    assert await refused(other.access_token, ip) == "invalid_token"
    assert await refused(token, ip) == "invalid_token"


async def test_reset_of_an_unproven_address_drops_identities_attached_before(
    database_url: str, supabase: str, ip: str
) -> None:
    """Someone signs up at Supabase with the victim's address; the victim later resets the password here."""
    subject, email = str(uuid.uuid4()), unique_email("victim")
    squatter = supabase_token(supabase, sub=subject, email=email)
    status, body = await me(squatter, ip)
    assert status == 200 and body["email_verified"] is False
    async with auth_client(client_ip=ip) as client:
        response = await client.post("/api/v1/auth/password/reset", json={"email": email})
        assert response.status_code == 202, response.text
        token = token_of(await latest_link(database_url, email, "reset_password"))
        response = await client.post(
            "/api/v1/auth/password/reset/confirm", json={"token": token, "password": NEW_PASSWORD}
        )
    assert response.status_code == 204, response.text
    assert await identities(database_url, subject) == []
    assert await refused(squatter, ip) in {"invalid_token", "supabase_account_conflict"}
    later = supabase_token(supabase, sub=subject, email=email, later=2)
    assert await refused(later, ip) == "supabase_account_conflict"
    owner = await log_in(email, NEW_PASSWORD, client_ip=ip)
    assert owner.user_id == uuid.UUID(body["id"]) and owner.body["user"]["email_verified"] is True
    events = await sql(
        database_url,
        """select details->>'provider' from public.audit_log
           where subject_id = %s and event = 'identity_unlinked'""",
        (owner.user_id,),
    )
    assert events == [("supabase",)]

    # An address that was already proven keeps its identities through a reset.
    verified_email, _ = await sign_up_verified(database_url)
    verified = await log_in(verified_email, client_ip=ip)
    kept = await legacy_link(database_url, verified.user_id, verified_email)
    async with auth_client(client_ip=ip) as client:
        response = await client.post("/api/v1/auth/password/reset", json={"email": verified_email})
        assert response.status_code == 202
        token = token_of(await latest_link(database_url, verified_email, "reset_password"))
        response = await client.post(
            "/api/v1/auth/password/reset/confirm", json={"token": token, "password": NEW_PASSWORD}
        )
    assert response.status_code == 204
    assert await identities(database_url, kept) == [verified.user_id]
