"""Access-token attacks and key handling: forged, confused, expired, foreign and misused tokens, rotation
by kid, ES256 with a published JWKS (Supabase Auth tokens: test_supabase_tokens.py)."""

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
    fresh_claims,
    hs_sign,
    mfa_token_for,
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


async def test_es256_refuses_tokens_forged_with_the_supabase_secret(
    database_url: str, settings_env: Callable[..., None], settings_reset: None, ip: str
) -> None:
    """In ES256 mode the project's HMAC secret (known to Supabase and whoever holds it) mints nothing."""
    secret = "p" * 40 + uuid.uuid4().hex
    settings_env(
        JWT_ALGORITHM="ES256",
        JWT_PRIVATE_KEY=ec_private_pem(),
        SUPABASE_JWT_SECRET=secret,
        SUPABASE_URL="https://abcdefgh.supabase.co",
    )
    await reset_all()
    user = await signed_in(database_url, ip)
    _, claims = unverified_parts(user.access_token)
    hs_kid = "hs-" + hashlib.sha256(b"kid:" + secret.encode()).hexdigest()[:16]
    admin_claims = fresh_claims(claims, app_roles=["admin", "viewer"])
    forged = hs_sign({"alg": "HS256", "typ": "at+jwt", "kid": hs_kid}, admin_claims, secret.encode())
    for accept in ("false", "true"):  # with Supabase tokens accepted, too: it is not one of theirs
        settings_env(ACCEPT_SUPABASE_TOKENS=accept)
        await assert_refused(forged, ip)
        await assert_refused(hs_sign({"alg": "HS256", "typ": "JWT"}, admin_claims, secret.encode()), ip)
        assert (await me(user.access_token, ip))[0] == 200

    # Rotation from HS256 to ES256: a secret listed as previous still verifies until it is retired.
    settings_env(ACCEPT_SUPABASE_TOKENS="false", JWT_PREVIOUS_SECRETS=secret)
    status, body = await me(forged, ip)
    assert status == 200 and body["id"] == str(user.user_id)
    settings_env(JWT_PREVIOUS_SECRETS=None)
    await assert_refused(forged, ip)
