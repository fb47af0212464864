"""Access-token attacks and key handling: forged, confused, expired, foreign and misused tokens, rotation
by kid, ES256 with a published JWKS, and Supabase Auth tokens mapped to local users."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shared.accounts.tokens import key_ring
from shared.infra.loop_local import reset_all
from shared.settings import get_settings
from tests.accounts.conftest import (
    ME,
    b64url,
    enable_mfa,
    fresh_claims,
    hs_sign,
    mfa_token_for,
    sql,
    unverified_parts,
)
from tests.support.identity import SignedIn, auth_client, log_in, sign_up_verified, users_client


async def me(token: str, ip: str) -> tuple[int, dict[str, Any]]:
    async with users_client(client_ip=ip) as client:
        response = await client.get(ME, headers={"authorization": f"Bearer {token}"})
    return response.status_code, response.json()


async def assert_refused(token: str, ip: str) -> None:
    status, body = await me(token, ip)
    assert status == 401, body
    assert body["code"] == "invalid_token"


async def signed_in(database_url: str, ip: str) -> SignedIn:
    email, password = await sign_up_verified(database_url)
    return await log_in(email, password, client_ip=ip)


def without_alg(header: dict[str, Any]) -> dict[str, Any]:
    """A header for jwt.encode, which takes the algorithm from its argument (a header "alg" would win)."""
    return {key: value for key, value in header.items() if key != "alg"}


def ec_private_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
async def settings_reset() -> AsyncIterator[None]:
    """Rebuild clients (and the key ring) after a test that changed the token settings."""
    yield
    get_settings.cache_clear()
    await reset_all()


async def test_forged_and_misused_tokens_are_refused(database_url: str, ip: str) -> None:
    user = await signed_in(database_url, ip)
    assert (await me(user.access_token, ip))[0] == 200
    header, claims = unverified_parts(user.access_token)
    assert header["alg"] == "HS256" and header["typ"] == "at+jwt" and header["kid"]
    secret: bytes = key_ring(get_settings()).signing_material

    # alg=none, with and without our kid.
    for none_header in ({**header, "alg": "none"}, {"alg": "none", "typ": "JWT"}):
        unsigned = f"{b64url(json.dumps(none_header).encode())}.{user.access_token.split('.')[1]}."
        await assert_refused(unsigned, ip)

    # Headers that are not even well-formed: never a 500.
    for odd_header in (
        {"alg": ["HS256"]},
        {"alg": {"HS256": 1}},
        {"alg": 256},
        {**header, "kid": ["x"]},
        ["HS256"],
    ):
        await assert_refused(
            f"{b64url(json.dumps(odd_header).encode())}.{user.access_token.split('.')[1]}.c2ln", ip
        )

    # Tampered payload (an admin role added) under the original signature.
    forged_payload = b64url(json.dumps({**claims, "app_roles": ["admin", "viewer"]}).encode())
    head, _, signature = user.access_token.split(".")
    await assert_refused(f"{head}.{forged_payload}.{signature}", ip)
    # A flipped signature byte.
    await assert_refused(user.access_token[:-2] + ("A" if user.access_token[-2] != "A" else "B") + "Q", ip)

    # Our own key, but HS512 in the header, or RS256 signed by some RSA key under our kid.
    await assert_refused(
        hs_sign({**header, "alg": "HS512"}, fresh_claims(claims), secret, hashlib.sha512), ip
    )
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    await assert_refused(
        jwt.encode(fresh_claims(claims), rsa_key, algorithm="RS256", headers=without_alg(header)), ip
    )

    # Correctly signed with our key, but wrong in a claim: each must be refused.
    now = int(time.time())
    for bad in (
        fresh_claims(claims, exp=now - 120, iat=now - 1000, nbf=now - 1000),  # expired beyond the leeway
        fresh_claims(claims, aud="someone-else"),
        fresh_claims(claims, iss="https://evil.example/auth"),
        fresh_claims(claims, role="service_role"),
        fresh_claims(claims, nbf=now + 3600),  # not yet valid
        {key: value for key, value in fresh_claims(claims).items() if key != "exp"},
        fresh_claims(claims, sub="not-a-uuid"),
    ):
        await assert_refused(hs_sign(header, bad, secret), ip)
    # Positive control: the same construction with good claims is accepted, so the refusals above are real.
    assert (await me(hs_sign(header, fresh_claims(claims), secret), ip))[0] == 200

    # Signed with a key id we never issued (and its secret), or with our kid but another secret.
    await assert_refused(
        hs_sign({**header, "kid": "hs-0000000000000000"}, fresh_claims(claims), b"k" * 48), ip
    )
    await assert_refused(hs_sign(header, fresh_claims(claims), b"k" * 48), ip)
    # Without the access-token type (e.g. an ID-token-like JWT signed by us).
    await assert_refused(hs_sign({**header, "typ": "JWT"}, fresh_claims(claims), secret), ip)

    # Opaque secrets that are not access tokens: the refresh token, garbage.
    await assert_refused(user.refresh_token, ip)
    await assert_refused("a.b.c", ip)
    await assert_refused("x" * 5000, ip)


async def test_an_mfa_challenge_token_is_not_an_access_token(database_url: str, ip: str) -> None:
    """The password step of a 2FA account returns an mfa_token; it must not work as a bearer token."""
    token = await mfa_token_for(database_url, ip)
    await assert_refused(token, ip)


async def test_key_confusion_with_es256(
    database_url: str, settings_env: Callable[..., None], settings_reset: None, ip: str
) -> None:
    pem = ec_private_pem()
    settings_env(JWT_ALGORITHM="ES256", JWT_PRIVATE_KEY=pem)
    await reset_all()
    user = await signed_in(database_url, ip)
    header, claims = unverified_parts(user.access_token)
    assert header["alg"] == "ES256" and header["kid"].startswith("es-")
    assert (await me(user.access_token, ip))[0] == 200

    # The classic: HS256 "signed" with the public key (as PEM, as published) as the HMAC secret.
    public = serialization.load_pem_private_key(pem.encode(), password=None).public_key()
    for encoding, form in (
        (serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        (serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint),
    ):
        public_bytes = public.public_bytes(encoding, form)
        for kid_header in ({**header, "alg": "HS256"}, {"alg": "HS256", "typ": "at+jwt"}):
            await assert_refused(hs_sign(kid_header, fresh_claims(claims), public_bytes), ip)
    # An ES256 token by another EC key under our kid.
    other = ec.generate_private_key(ec.SECP256R1())
    await assert_refused(
        jwt.encode(fresh_claims(claims), other, algorithm="ES256", headers=without_alg(header)), ip
    )


async def test_es256_jwks_and_supabase_compatible_claims(
    database_url: str, settings_env: Callable[..., None], settings_reset: None, ip: str
) -> None:
    settings_env(JWT_ALGORITHM="ES256", JWT_PRIVATE_KEY=ec_private_pem())
    await reset_all()
    user = await signed_in(database_url, ip)
    async with auth_client(client_ip=ip) as client:
        response = await client.get("/api/v1/auth/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    header, _ = unverified_parts(user.access_token)
    (published,) = [key for key in keys if key["kid"] == header["kid"]]
    assert published["kty"] == "EC" and published["crv"] == "P-256" and published["alg"] == "ES256"
    assert "d" not in published  # never the private part
    key = jwt.PyJWK(published)
    claims = jwt.decode(
        user.access_token,
        key.key,
        algorithms=["ES256"],
        audience="authenticated",
        issuer=f"{str(get_settings().public_base_url).rstrip('/')}/api/v1/auth",
    )
    assert claims["sub"] == str(user.user_id)
    assert claims["role"] == "authenticated" and claims["aud"] == "authenticated"
    assert claims["session_id"] == user.session_id
    assert claims["app_roles"] == ["viewer"]
    assert claims["exp"] - claims["iat"] == get_settings().access_token_ttl_seconds
    assert claims["jti"] and claims["email"] == user.email and claims["aal"] == "aal1"
    # HS256 mode publishes nothing: the shared secret is never in a JWKS.
    settings_env(JWT_ALGORITHM=None, JWT_PRIVATE_KEY=None)
    async with auth_client(client_ip=ip) as client:
        assert (await client.get("/api/v1/auth/.well-known/jwks.json")).json() == {"keys": []}


async def test_previous_hs256_secret_still_verifies_by_kid(
    database_url: str, settings_env: Callable[..., None], settings_reset: None, ip: str
) -> None:
    old_secret, new_secret = "o" * 40 + uuid.uuid4().hex, "n" * 40 + uuid.uuid4().hex
    settings_env(SUPABASE_JWT_SECRET=old_secret)
    user = await signed_in(database_url, ip)
    old_kid = unverified_parts(user.access_token)[0]["kid"]

    settings_env(SUPABASE_JWT_SECRET=new_secret, JWT_PREVIOUS_SECRETS=f"unused-{'x' * 40},{old_secret}")
    assert (await me(user.access_token, ip))[0] == 200
    async with auth_client(client_ip=ip) as client:
        response = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert response.status_code == 200
    fresh = response.json()["access_token"]
    assert unverified_parts(fresh)[0]["kid"] != old_kid  # new tokens use the new key
    assert (await me(fresh, ip))[0] == 200

    # Retired completely: the old tokens stop working.
    settings_env(JWT_PREVIOUS_SECRETS=None)
    await assert_refused(user.access_token, ip)
    assert (await me(fresh, ip))[0] == 200


def supabase_token(secret: str, *, url: str, sub: str, email: str, **changes: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": f"{url}/auth/v1",
        "sub": sub,
        "aud": "authenticated",
        "exp": now + 3600,
        "iat": now,
        "email": email,
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {"email": email, "email_verified": True, "phone_verified": False, "sub": sub},
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now}],
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
        **changes,
    }
    return jwt.encode(claims, secret, algorithm="HS256", headers={"typ": "JWT"})


async def test_supabase_auth_tokens_map_to_local_users(
    database_url: str, settings_env: Callable[..., None], settings_reset: None, ip: str
) -> None:
    secret, url = "s" * 40 + uuid.uuid4().hex, "https://abcdefgh.supabase.co"
    subject, email = str(uuid.uuid4()), f"supa-{uuid.uuid4().hex[:8]}@example.com"
    token = supabase_token(secret, url=url, sub=subject, email=email)

    settings_env(SUPABASE_JWT_SECRET=secret, SUPABASE_URL=url, ACCEPT_SUPABASE_TOKENS="false")
    await assert_refused(token, ip)

    settings_env(ACCEPT_SUPABASE_TOKENS="true")
    status, body = await me(token, ip)
    assert status == 200, body
    assert body["email"] == email and body["email_verified"] is True and body["id"] != subject
    status, again = await me(token, ip)
    assert status == 200 and again["id"] == body["id"]  # created once, then reused
    rows = await sql(
        database_url,
        "select user_id from public.auth_identities where provider = 'supabase' and subject = %s",
        (subject,),
    )
    assert [str(row[0]) for row in rows] == [body["id"]]
    (count,) = (
        await sql(database_url, "select count(*) from public.users where lower(email) = lower(%s)", (email,))
    )[0]
    assert count == 1
    (profiles,) = (
        await sql(database_url, "select count(*) from public.profiles where user_id = %s", (body["id"],))
    )[0]
    assert profiles == 1

    # No password to prove: one is set through the emailed reset link, never with just a bearer token.
    async with users_client(client_ip=ip) as client:
        response = await client.put(
            f"{ME}/password",
            headers={"authorization": f"Bearer {token}"},
            json={"current_password": "anything", "new_password": "planted by a token thief 9"},
        )
    assert response.status_code == 403
    assert response.json()["code"] == "password_not_set"

    # An administrator disables the account: the cached mapping does not outlive the change.
    from shared.accounts.sessions import claims_changed

    await sql(database_url, "update public.users set status = 'disabled' where id = %s", (body["id"],))
    await claims_changed(settings=get_settings(), user_id=uuid.UUID(body["id"]))
    await assert_refused(token, ip)
    await sql(database_url, "update public.users set status = 'active' where id = %s", (body["id"],))
    await claims_changed(settings=get_settings(), user_id=uuid.UUID(body["id"]))
    assert (await me(token, ip))[0] == 200

    # An address Supabase has not confirmed (confirmations off) never claims or creates an account.
    victim, _ = await sign_up_verified(database_url)
    for unconfirmed_email in (victim, f"new-{uuid.uuid4().hex[:8]}@example.com"):
        unconfirmed = supabase_token(
            secret,
            url=url,
            sub=str(uuid.uuid4()),
            email=unconfirmed_email,
            user_metadata={"email_verified": False},
        )
        await assert_refused(unconfirmed, ip)
        rows = await sql(
            database_url, "select 1 from public.users where lower(email) = lower(%s)", (unconfirmed_email,)
        )
        assert len(rows) == (1 if unconfirmed_email == victim else 0)

    # A local account with two-step verification on is not reachable through a one-factor Supabase session.
    mfa_user, _, _ = await enable_mfa(database_url, ip)
    mfa_subject = str(uuid.uuid4())
    await assert_refused(supabase_token(secret, url=url, sub=mfa_subject, email=mfa_user.email), ip)
    status, body = await me(
        supabase_token(secret, url=url, sub=mfa_subject, email=mfa_user.email, aal="aal2"), ip
    )
    assert status == 200 and body["id"] == str(mfa_user.user_id)

    # Wrong issuer, wrong secret, a service-role key, expired: all refused even with acceptance on.
    now = int(time.time())
    for bad in (
        supabase_token(secret, url="https://other.supabase.co", sub=subject, email=email),
        supabase_token("w" * 48, url=url, sub=subject, email=email),
        supabase_token(secret, url=url, sub=subject, email=email, role="service_role"),
        supabase_token(secret, url=url, sub=subject, email=email, exp=now - 300, iat=now - 4000),
        supabase_token(secret, url=url, sub=subject, email=email, aud="other"),
    ):
        await assert_refused(bad, ip)

    settings_env(ACCEPT_SUPABASE_TOKENS="false")
    await assert_refused(token, ip)


async def test_supabase_user_claims_an_unverified_preregistration_without_its_password(
    database_url: str, settings_env: Callable[..., None], settings_reset: None, ip: str
) -> None:
    """Someone registered the victim's address (never verified); the victim arrives through Supabase."""
    secret, url = "s" * 40 + uuid.uuid4().hex, "https://abcdefgh.supabase.co"
    email = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    async with auth_client(client_ip=ip) as client:
        response = await client.post(
            "/api/v1/auth/signup", json={"email": email, "password": "attacker knows this 1"}
        )
        assert response.status_code == 202
    settings_env(SUPABASE_JWT_SECRET=secret, SUPABASE_URL=url, ACCEPT_SUPABASE_TOKENS="true")
    status, body = await me(supabase_token(secret, url=url, sub=str(uuid.uuid4()), email=email), ip)
    assert status == 200 and body["email_verified"] is True
    (password_hash,) = (
        await sql(database_url, "select password_hash from public.users where id = %s", (body["id"],))
    )[0]
    assert password_hash is None
    async with auth_client(client_ip=ip) as client:
        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": "attacker knows this 1"}
        )
    assert response.status_code == 401
