"""Social login end to end through HTTP: our API <-> authlib <-> a local Google/GitHub stand-in.

Each flow is followed by hand like a browser would: the authorize 302 goes to the test server (a real
HTTP hop), whose 302 comes back to our callback with the cookie the authorize step set; the callback's
302 carries a one-time login code in the fragment, exchanged for tokens by the web client.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import jwt
import psycopg
import pyotp
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.identity import (
    PASSWORD,
    auth_client,
    log_in,
    sign_up_verified,
    signed_in_user,
    unique_email,
    users_client,
)
from tests.support.oauth_server import GitHubUser, GoogleUser, OAuthServer, s256

Db = psycopg.AsyncConnection[Any]
API = "/api/v1/auth/oauth"
WEB_CALLBACK = "http://testserver/auth/callback#"


def fresh_ip() -> str:
    """A client address of this test alone: rate limits live in Redis and outlast a test."""
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


def browser() -> httpx.AsyncClient:
    """A browser of its own (cookie jar, address) on the auth app."""
    return auth_client(client_ip=fresh_ip())


async def start(client: httpx.AsyncClient, provider: str, redirect_to: str = "/") -> str:
    """GET authorize: the provider URL the browser is sent to."""
    response = await client.get(f"{API}/{provider}/authorize", params={"redirect_to": redirect_to})
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def consent(authorize_url: str) -> str:
    """The hop to the (fake) provider, which approves and redirects back: our callback URL."""
    async with httpx.AsyncClient(trust_env=False) as real:
        response = await real.get(authorize_url)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith("http://testserver/api/v1/auth/oauth/"), location
    return location


async def land(client: httpx.AsyncClient, callback_url: str) -> dict[str, str]:
    """Open the callback in the browser; the fragment of its redirect to the web client."""
    response = await client.get(callback_url)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(WEB_CALLBACK), location
    assert "access_token" not in location and "refresh_token" not in location
    return dict(parse_qsl(location.removeprefix(WEB_CALLBACK)))


async def exchange(client: httpx.AsyncClient, login_code: str) -> httpx.Response:
    return await client.post(f"{API}/exchange", json={"login_code": login_code})


async def sign_in(client: httpx.AsyncClient, provider: str, redirect_to: str = "/") -> dict[str, Any]:
    """A whole sign-in; returns the exchange's JSON (tokens or a 2FA challenge)."""
    fragment = await land(client, await consent(await start(client, provider, redirect_to)))
    assert "login_code" in fragment, fragment
    response = await exchange(client, fragment["login_code"])
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def failed_sign_in(client: httpx.AsyncClient, provider: str) -> str:
    """A sign-in expected to fail at the callback; the error code from the fragment."""
    fragment = await land(client, await consent(await start(client, provider)))
    assert "login_code" not in fragment, fragment
    return fragment["error"]


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def user_row(db: Db, email: str) -> dict[str, Any] | None:
    cursor = await db.execute(
        "select id, email, password_hash, email_verified_at, display_name from public.users"
        " where lower(email) = lower(%s)",
        (email,),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    keys = ("id", "email", "password_hash", "email_verified_at", "display_name")
    return dict(zip(keys, row, strict=True))


async def identities(db: Db, user_id: uuid.UUID | str) -> list[tuple[str, str]]:
    cursor = await db.execute(
        "select provider, subject from public.auth_identities where user_id = %s order by provider",
        (user_id,),
    )
    return [(row[0], row[1]) for row in await cursor.fetchall()]


async def owner_of(db: Db, provider: str, subject: str) -> uuid.UUID | None:
    cursor = await db.execute(
        "select user_id from public.auth_identities where provider = %s and subject = %s", (provider, subject)
    )
    row = await cursor.fetchone()
    return row[0] if row else None


async def audit_details(db: Db, user_id: uuid.UUID | str, event: str) -> list[dict[str, Any]]:
    cursor = await db.execute(
        "select details from public.audit_log where subject_id = %s and event = %s order by id",
        (user_id, event),
    )
    return [row[0] for row in await cursor.fetchall()]


# Sign-up through a provider.


async def test_google_sign_in_creates_a_verified_account(providers: OAuthServer, db: Db) -> None:
    email = unique_email("google")
    providers.google_user = GoogleUser(email=email, name="Grace Hopper")
    async with browser() as client:
        response = await client.get(f"{API}/google/authorize", params={"redirect_to": "/browse?genre=noir"})
        assert response.status_code == 302, response.text
        assert response.headers["cache-control"] == "no-store"
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("cinema_oauth=")
        for attribute in ("HttpOnly", "Max-Age=600", "Path=/api/v1/auth/oauth", "SameSite=lax"):
            assert attribute in cookie, cookie
        assert "Secure" not in cookie  # the site is http here

        authorize_url = response.headers["location"]
        assert authorize_url.startswith(f"{providers.url}/o/oauth2/v2/auth?")
        params = query_of(authorize_url)
        assert params["response_type"] == "code"
        assert params["client_id"] == providers.google_client_id
        assert params["redirect_uri"] == "http://testserver/api/v1/auth/oauth/google/callback"
        assert params["scope"] == "openid email profile"
        assert params["code_challenge_method"] == "S256"
        assert len(params["state"]) >= 32 and len(params["nonce"]) >= 32
        assert "code_verifier" not in params

        fragment = await land(client, await consent(authorize_url))
        assert fragment["redirect_to"] == "/browse?genre=noir"
        response = await exchange(client, fragment["login_code"])
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        assert 'cinema_oauth=""' in response.headers["set-cookie"]  # cleared
        body = response.json()
        assert body["user"]["email"] == email
        assert body["user"]["email_verified"] is True
        assert body["user"]["display_name"] == "Grace Hopper"
        assert body["refresh_token"]

        # The login code works once.
        again = await exchange(client, fragment["login_code"])
        assert again.status_code == 400 and again.json()["code"] == "invalid_login_code"

    # What authlib sent to the token endpoint: the verifier behind the challenge, our secret, same URI.
    (token_request,) = providers.requests_to("/token")
    form = token_request.form
    assert form["grant_type"] == "authorization_code"
    assert s256(form["code_verifier"]) == params["code_challenge"]
    assert form["client_id"] == providers.google_client_id
    assert form["client_secret"] == providers.google_client_secret
    assert form["redirect_uri"] == params["redirect_uri"]
    assert providers.requests_to("/oauth2/v3/certs")  # the id_token was checked against the JWKS

    async with users_client() as users:
        me = await users.get("/api/v1/users/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["email"] == email

    row = await user_row(db, email)
    assert row is not None and row["password_hash"] is None and row["email_verified_at"] is not None
    assert await identities(db, row["id"]) == [("google", providers.google_user.sub)]
    assert [d["via"] for d in await audit_details(db, row["id"], "identity_linked")] == ["signup"]
    cursor = await db.execute("select amr from public.auth_sessions where id = %s", (body["session_id"],))
    assert (await cursor.fetchone())[0] == ["oauth:google"]  # type: ignore[index]
    cursor = await db.execute("select name from public.profiles where user_id = %s", (row["id"],))
    assert [name for (name,) in await cursor.fetchall()] == ["Grace Hopper"]  # the account's first profile

    # Signing in again finds the same account through the identity.
    async with browser() as client:
        second = await sign_in(client, "google")
    assert second["user"]["id"] == str(row["id"])


async def test_github_sign_in_uses_the_verified_primary_email(providers: OAuthServer, db: Db) -> None:
    primary, other = unique_email("octo"), unique_email("octo-old")
    providers.github_user = GitHubUser(
        login="octocat-test",
        name=None,
        emails=[
            {"email": other, "primary": False, "verified": True, "visibility": None},
            {"email": primary, "primary": True, "verified": True, "visibility": "private"},
        ],
    )
    async with browser() as client:
        authorize_url = await start(client, "github")
        assert authorize_url.startswith(f"{providers.url}/login/oauth/authorize?")
        params = query_of(authorize_url)
        assert params["scope"] == "read:user user:email"
        assert params["code_challenge_method"] == "S256"
        assert "nonce" not in params
        fragment = await land(client, await consent(authorize_url))
        response = await exchange(client, fragment["login_code"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["email"] == primary
    assert body["user"]["display_name"] == "octocat-test"  # no name at GitHub: the login

    (token_request,) = providers.requests_to("/login/oauth/access_token")
    assert "application/json" in token_request.headers["accept"]
    assert s256(token_request.form["code_verifier"]) == params["code_challenge"]
    (api_request,) = providers.requests_to("/api/user/emails")
    assert api_request.headers["authorization"].startswith("Bearer gho_")
    assert api_request.headers["user-agent"]

    row = await user_row(db, primary)
    assert row is not None and row["email_verified_at"] is not None
    assert await identities(db, row["id"]) == [("github", str(providers.github_user.id))]
    assert await user_row(db, other) is None


async def test_google_userinfo_fills_in_an_id_token_without_email(providers: OAuthServer) -> None:
    email = unique_email("userinfo")
    providers.google_user = GoogleUser(email=email)
    providers.id_token_overrides = {"email": None, "email_verified": None, "name": None}
    async with browser() as client:
        body = await sign_in(client, "google")
    assert body["user"]["email"] == email
    (userinfo,) = providers.requests_to("/v1/userinfo")
    assert userinfo.headers["authorization"].startswith("Bearer ")


@pytest.mark.parametrize("provider", ["google", "github"])
async def test_an_unverified_email_is_refused(providers: OAuthServer, db: Db, provider: str) -> None:
    email = unique_email("unverified")
    providers.google_user = GoogleUser(email=email, email_verified=False)
    providers.github_user = GitHubUser(
        emails=[
            {"email": email, "primary": True, "verified": False},
            {"email": unique_email("verified-secondary"), "primary": False, "verified": True},
        ]
    )
    async with browser() as client:
        assert await failed_sign_in(client, provider) == "oauth_email_unverified"
    assert await user_row(db, email) is None


# Existing accounts.


async def test_an_existing_account_is_linked_through_a_verified_email(
    providers: OAuthServer, database_url: str, db: Db
) -> None:
    email, password = await sign_up_verified(database_url)
    providers.google_user = GoogleUser(email=email.upper())
    async with browser() as client:
        body = await sign_in(client, "google")
    row = await user_row(db, email)
    assert row is not None
    assert body["user"]["id"] == str(row["id"])
    assert row["password_hash"] is not None  # a verified owner keeps the password
    assert await identities(db, row["id"]) == [("google", providers.google_user.sub)]
    details = await audit_details(db, row["id"], "identity_linked")
    assert details[-1]["via"] == "verified_email" and details[-1]["password_cleared"] is False
    signed_in = await log_in(email, password, client_ip=fresh_ip())
    assert signed_in.user_id == row["id"]


async def test_a_pre_registered_unverified_account_loses_its_password(providers: OAuthServer, db: Db) -> None:
    victim = unique_email("victim")
    # Someone registers the victim's address first, with a password of their own, and never verifies it.
    async with browser() as attacker:
        response = await attacker.post("/api/v1/auth/signup", json={"email": victim, "password": PASSWORD})
        assert response.status_code == 202, response.text
    before = await user_row(db, victim)
    assert before is not None and before["email_verified_at"] is None and before["password_hash"]

    providers.google_user = GoogleUser(email=victim)
    async with browser() as client:
        body = await sign_in(client, "google")
    after = await user_row(db, victim)
    assert after is not None and body["user"]["id"] == str(after["id"]) == str(before["id"])
    assert after["password_hash"] is None and after["email_verified_at"] is not None
    assert (await audit_details(db, after["id"], "identity_linked"))[-1]["password_cleared"] is True

    # The pre-registered password no longer opens the account.
    async with browser() as attacker:
        response = await attacker.post("/api/v1/auth/login", json={"email": victim, "password": PASSWORD})
    assert response.status_code == 401 and response.json()["code"] == "invalid_credentials"


async def test_linking_while_signed_in(providers: OAuthServer, database_url: str, db: Db) -> None:
    user = await signed_in_user(database_url)
    providers.google_user = GoogleUser(email=unique_email("another-address"))  # need not match
    async with browser() as client:
        response = await client.post(f"{API}/google/link", json={"redirect_to": "/account/security"})
        assert response.status_code == 401
        response = await client.post(
            f"{API}/google/link", json={"redirect_to": "/account/security"}, headers=user.headers
        )
        assert response.status_code == 200, response.text
        assert "HttpOnly" in response.headers["set-cookie"]
        fragment = await land(client, await consent(response.json()["authorize_url"]))
        assert fragment["redirect_to"] == "/account/security"
        response = await exchange(client, fragment["login_code"])
    assert response.status_code == 200, response.text
    assert response.json()["user"]["id"] == str(user.user_id)
    assert await identities(db, user.user_id) == [("google", providers.google_user.sub)]
    assert (await audit_details(db, user.user_id, "identity_linked"))[-1]["via"] == "signed_in"
    cursor = await db.execute(
        "select subject from public.mail_outbox where user_id = %s and template = 'identity_linked'",
        (user.user_id,),
    )
    assert [subject for (subject,) in await cursor.fetchall()] == ["Google sign-in was added to your account"]

    async with browser() as client:
        body = await sign_in(client, "google")
    assert body["user"]["id"] == str(user.user_id)


async def test_linking_needs_a_recent_sign_in(providers: OAuthServer, database_url: str, db: Db) -> None:
    user = await signed_in_user(database_url)
    # A stolen access token of an old session must not be enough to attach the thief's Google account.
    await db.execute(
        "update public.auth_sessions set created_at = now() - interval '1 hour' where id = %s",
        (user.session_id,),
    )
    async with browser() as client:
        response = await client.post(f"{API}/google/link", json={"redirect_to": "/"}, headers=user.headers)
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "recent_sign_in_required"
    async with browser() as client:
        response = await client.delete(f"{API}/google", headers=user.headers)
    assert response.status_code == 403 and response.json()["code"] == "recent_sign_in_required"


async def test_an_identity_linked_to_another_account_is_refused(
    providers: OAuthServer, database_url: str, db: Db
) -> None:
    providers.google_user = GoogleUser(email=unique_email("first-owner"))
    async with browser() as client:
        first = await sign_in(client, "google")
    other = await signed_in_user(database_url)
    async with browser() as client:
        response = await client.post(f"{API}/google/link", headers=other.headers)
        assert response.status_code == 200, response.text
        fragment = await land(client, await consent(response.json()["authorize_url"]))
    assert fragment["error"] == "identity_in_use"
    assert str(await owner_of(db, "google", providers.google_user.sub)) == first["user"]["id"]
    assert await identities(db, other.user_id) == []


async def test_a_disabled_account_cannot_sign_in(providers: OAuthServer, db: Db) -> None:
    email = unique_email("disabled")
    providers.google_user = GoogleUser(email=email)
    async with browser() as client:
        await sign_in(client, "google")
    await db.execute("update public.users set status = 'disabled' where lower(email) = lower(%s)", (email,))
    async with browser() as client:
        assert await failed_sign_in(client, "google") == "account_disabled"


async def test_an_account_with_two_factor_gets_a_challenge(providers: OAuthServer) -> None:
    providers.google_user = GoogleUser(email=unique_email("mfa"))
    async with browser() as client:
        tokens = await sign_in(client, "google")
        headers = bearer(tokens["access_token"])
        response = await client.post("/api/v1/auth/mfa/totp", headers=headers)
        if response.status_code == 404:
            pytest.skip("the two-factor endpoints are not there yet")
        assert response.status_code == 200, response.text
        secret = response.json()["secret"]
        response = await client.post(
            "/api/v1/auth/mfa/totp/confirm", headers=headers, json={"code": pyotp.TOTP(secret).now()}
        )
        assert response.status_code == 200, response.text

    async with browser() as client:
        challenge = await sign_in(client, "google")
        assert challenge["mfa_required"] is True and "access_token" not in challenge
        response = await client.post(
            "/api/v1/auth/login/mfa",
            json={"mfa_token": challenge["mfa_token"], "code": pyotp.TOTP(secret).at(time.time() + 30)},
        )
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["aal"] == "aal2"


# Attacks on the flow.


async def test_a_state_works_once(providers: OAuthServer) -> None:
    providers.google_user = GoogleUser(email=unique_email("replay"))
    async with browser() as client:
        callback_url = await consent(await start(client, "google"))
        assert "login_code" in await land(client, callback_url)
        replay = await client.get(callback_url)
        assert replay.status_code == 400
        assert replay.headers["content-type"].startswith("application/problem+json")
        assert replay.json()["code"] == "invalid_state"
        for query in ({}, {"code": "x"}, {"code": "x", "state": "made-up-state"}):
            response = await client.get(f"{API}/google/callback", params=query)
            assert response.status_code == 400 and response.json()["code"] == "invalid_state"


async def test_a_callback_in_another_browser_is_refused(providers: OAuthServer, db: Db) -> None:
    email = unique_email("csrf")
    providers.google_user = GoogleUser(email=email)
    async with browser() as attacker, browser() as victim, browser() as other:
        # Login CSRF: the attacker's own callback URL (code + state) opened in the victim's browser,
        # which has no cookie for it...
        callback_url = await consent(await start(attacker, "google"))
        assert (await land(victim, callback_url))["error"] == "oauth_browser_mismatch"
        # ...and the state is spent: not even the attacker's browser can finish it now.
        assert (await attacker.get(callback_url)).status_code == 400
        # A browser with a cookie of its own (another sign-in in progress) does not match either.
        await start(other, "google")
        callback_url = await consent(await start(attacker, "google"))
        assert (await land(other, callback_url))["error"] == "oauth_browser_mismatch"
    assert await user_row(db, email) is None


async def test_a_login_code_works_only_in_the_browser_that_signed_in(providers: OAuthServer) -> None:
    providers.google_user = GoogleUser(email=unique_email("code-theft"))
    async with browser() as owner, browser() as thief:
        fragment = await land(owner, await consent(await start(owner, "google")))
        stolen = await exchange(thief, fragment["login_code"])
        assert stolen.status_code == 400 and stolen.json()["code"] == "invalid_login_code"
        # The code is burnt once presented: no second try, even for its owner.
        response = await exchange(owner, fragment["login_code"])
        assert response.status_code == 400


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param({"nonce_override": "not-the-nonce-of-this-attempt"}, id="nonce"),
        pytest.param({"id_token_overrides": {"nonce": None}}, id="no-nonce"),
        pytest.param({"id_token_overrides": {"aud": "another-client"}}, id="audience"),
        pytest.param({"id_token_overrides": {"iss": "https://issuer.example"}}, id="issuer"),
        pytest.param(
            {"id_token_overrides": {"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}},
            id="expired",
        ),
        pytest.param({"sign_with": "other-key"}, id="signature"),
    ],
)
async def test_a_bad_id_token_is_refused(providers: OAuthServer, db: Db, tamper: dict[str, Any]) -> None:
    email = unique_email("id-token")
    providers.google_user = GoogleUser(email=email)
    for knob, value in tamper.items():
        if value == "other-key":
            value = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        setattr(providers, knob, value)
    async with browser() as client:
        assert await failed_sign_in(client, "google") == "oauth_invalid_id_token"
    assert await user_row(db, email) is None


@pytest.mark.parametrize("provider", ["google", "github"])
async def test_an_injected_code_fails_pkce_at_the_provider(
    providers: OAuthServer, db: Db, provider: str
) -> None:
    email = unique_email("injected")
    providers.google_user = GoogleUser(email=email)
    providers.github_user = GitHubUser(emails=[{"email": email, "primary": True, "verified": True}])
    async with browser() as attacker, browser() as victim:
        # The attacker's code (issued for the attacker's challenge) slipped into the victim's own
        # sign-in: state and cookie match, but the victim's verifier does not match that challenge.
        attacker_code = query_of(await consent(await start(attacker, provider)))["code"]
        victim_state = query_of(await start(victim, provider))["state"]
        injected = f"{API}/{provider}/callback?{urlencode({'code': attacker_code, 'state': victim_state})}"
        fragment = await land(victim, injected)
    assert fragment["error"] == "oauth_exchange_failed"
    token_path = "/token" if provider == "google" else "/login/oauth/access_token"
    assert len(providers.requests_to(token_path)) == 1  # the provider was asked, and refused
    assert await user_row(db, email) is None


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/ok\r\nSet-Cookie: x=1",
        "",
    ],
)
async def test_open_redirects_are_refused(providers: OAuthServer, database_url: str, target: str) -> None:
    async with browser() as client:
        response = await client.get(f"{API}/google/authorize", params={"redirect_to": target})
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "invalid_redirect"
        assert "set-cookie" not in response.headers
    assert not providers.requests_to("/o/oauth2/v2/auth")


async def test_link_refuses_open_redirects_too(providers: OAuthServer, database_url: str) -> None:
    user = await signed_in_user(database_url)
    async with browser() as client:
        response = await client.post(
            f"{API}/github/link", json={"redirect_to": "https://evil.example"}, headers=user.headers
        )
    assert response.status_code == 400 and response.json()["code"] == "invalid_redirect"


async def test_a_refusal_at_the_provider_comes_back_as_an_error(providers: OAuthServer) -> None:
    providers.deny_next = "access_denied"
    async with browser() as client:
        callback_url = await consent(await start(client, "github"))
        response = await client.get(callback_url)
    assert response.status_code == 302
    assert response.headers["location"].startswith(f"{WEB_CALLBACK}error=oauth_access_denied")
    assert 'cinema_oauth=""' in response.headers["set-cookie"]


# Unlinking.


async def test_unlink_keeps_a_way_to_sign_in(providers: OAuthServer, database_url: str, db: Db) -> None:
    providers.google_user = GoogleUser(email=unique_email("social-only"))
    async with browser() as client:
        tokens = await sign_in(client, "google")
        headers = bearer(tokens["access_token"])
        user_id = tokens["user"]["id"]

        response = await client.delete(f"{API}/google")
        assert response.status_code == 401
        response = await client.delete(f"{API}/google", headers=headers)
        assert response.status_code == 409 and response.json()["code"] == "last_sign_in_method"

        providers.github_user = GitHubUser(
            emails=[{"email": unique_email("gh"), "primary": True, "verified": True}]
        )
        response = await client.post(f"{API}/github/link", headers=headers)
        assert response.status_code == 200, response.text
        assert "login_code" in await land(client, await consent(response.json()["authorize_url"]))

        response = await client.delete(f"{API}/google", headers=headers)
        assert response.status_code == 204, response.text
        assert await identities(db, user_id) == [("github", str(providers.github_user.id))]
        assert [d["provider"] for d in await audit_details(db, user_id, "identity_unlinked")] == ["google"]

        response = await client.delete(f"{API}/google", headers=headers)
        assert response.status_code == 404 and response.json()["code"] == "identity_not_found"
        response = await client.delete(f"{API}/github", headers=headers)
        assert response.status_code == 409 and response.json()["code"] == "last_sign_in_method"
        response = await client.delete(f"{API}/facebook", headers=headers)
        assert response.status_code == 404 and response.json()["code"] == "provider_not_configured"

    # An account with a password can drop its only provider.
    user = await signed_in_user(database_url)
    async with browser() as client:
        response = await client.post(f"{API}/google/link", headers=user.headers)
        assert "login_code" in await land(client, await consent(response.json()["authorize_url"]))
        response = await client.delete(f"{API}/google", headers=user.headers)
    assert response.status_code == 204, response.text
    assert await identities(db, user.user_id) == []


# Configuration and documentation.


async def test_an_unconfigured_provider_is_not_found(
    providers: OAuthServer, settings_env: Any, database_url: str
) -> None:
    settings_env(GITHUB_CLIENT_ID=None, GITHUB_CLIENT_SECRET=None)
    user = await signed_in_user(database_url)
    async with browser() as client:
        for path in (f"{API}/github/authorize", f"{API}/facebook/authorize"):
            response = await client.get(path)
            assert response.status_code == 404, response.text
            assert response.json()["code"] == "provider_not_configured"
        response = await client.post(f"{API}/github/link", headers=user.headers)
        assert response.status_code == 404 and response.json()["code"] == "provider_not_configured"
        assert (await client.get(f"{API}/google/authorize")).status_code == 302  # the other still works


async def test_an_unreachable_provider_is_a_503(providers: OAuthServer, settings_env: Any) -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings_env(GOOGLE_DISCOVERY_URL=f"http://127.0.0.1:{port}/.well-known/openid-configuration")
    async with browser() as client:
        response = await client.get(f"{API}/google/authorize")
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "oauth_provider_unavailable"
    assert "set-cookie" not in response.headers


async def test_the_cookie_is_secure_on_an_https_site(providers: OAuthServer, settings_env: Any) -> None:
    settings_env(PUBLIC_BASE_URL="https://cinema.example")
    async with browser() as client:
        response = await client.get(f"{API}/google/authorize")
    assert response.status_code == 302
    assert "Secure" in response.headers["set-cookie"]
    redirect_uri = query_of(response.headers["location"])["redirect_uri"]
    assert redirect_uri == "https://cinema.example/api/v1/auth/oauth/google/callback"


def test_the_openapi_document_lists_the_endpoints_and_their_errors() -> None:
    from api.auth import app

    paths = app.openapi()["paths"]
    authorize = paths[f"{API}/{{provider}}/authorize"]["get"]
    assert authorize["tags"] == ["auth"] and authorize["summary"]
    assert {"302", "400", "404", "429"} <= set(authorize["responses"])
    assert "invalid_redirect" in authorize["responses"]["400"]["description"]
    callback = paths[f"{API}/{{provider}}/callback"]["get"]
    assert "invalid_state" in callback["responses"]["400"]["description"]
    assert "oauth_browser_mismatch" in callback["description"]
    assert "invalid_login_code" in paths[f"{API}/exchange"]["post"]["responses"]["400"]["description"]
    assert "last_sign_in_method" in paths[f"{API}/{{provider}}"]["delete"]["responses"]["409"]["description"]
    assert (
        "provider_not_configured"
        in paths[f"{API}/{{provider}}/link"]["post"]["responses"]["404"]["description"]
    )
