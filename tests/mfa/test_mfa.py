"""Two-factor authentication end to end through HTTP: TOTP enrolment with QR code, confirmation (aal2),
the login challenge, each code usable once (replays rejected and audited), single-use backup codes (also
under concurrency), regeneration, disabling with re-authentication, reset never bypassing 2FA, the secret
encrypted at rest, and rate limits / lockout on code guessing."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import jwt
import psycopg
import pyotp
import pytest

from api.auth import app as auth_app
from shared.errors import RateLimited
from shared.infra import ratelimit
from shared.infra.db import get_pool
from shared.infra.redis import get_redis
from shared.mfa import service as mfa
from tests.support.identity import (
    PASSWORD,
    SignedIn,
    auth_client,
    latest_link,
    log_in,
    token_of,
    unique_email,
)

Db = psycopg.AsyncConnection[Any]
MFA = "/api/v1/auth/mfa"
BACKUP_CODE = re.compile(r"[2-9a-hjkmnp-z]{4}-[2-9a-hjkmnp-z]{4}-[2-9a-hjkmnp-z]{2}")


def fresh_ip() -> str:
    """A client address of this test alone: rate limits live in Redis and outlast a test run."""
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


async def new_account(database_url: str, ip: str) -> SignedIn:
    """Sign up, verify and sign in through HTTP from `ip` (the shared helper signs up from one address)."""
    email = unique_email("mfa")
    async with auth_client(client_ip=ip) as client:
        response = await client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
        assert response.status_code == 202, response.text
        token = token_of(await latest_link(database_url, email, "verify_email"))
        response = await client.post("/api/v1/auth/verify-email", json={"token": token})
        assert response.status_code == 200, response.text
    return await log_in(email, PASSWORD, client_ip=ip)


def bearer(access_token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {access_token}"}


def claims(access_token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(access_token, options={"verify_signature": False})
    return decoded


class Enabled:
    """An account with 2FA on: its secret, the code that confirmed it, backup codes and aal2 tokens."""

    def __init__(self, user: SignedIn, secret: str, confirm_code: str, body: dict[str, Any]) -> None:
        self.user = user
        self.secret = secret
        self.confirm_code = confirm_code
        self.backup_codes: list[str] = body["backup_codes"]
        self.tokens: dict[str, Any] = body["tokens"]

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.tokens["access_token"])

    def next_code(self) -> str:
        """The code of the next time step: accepted (window of 1) and newer than the confirming step."""
        return pyotp.TOTP(self.secret).at(time.time() + 30)


async def enable(client: httpx.AsyncClient, user: SignedIn) -> Enabled:
    response = await client.post(f"{MFA}/totp", headers=user.headers)
    assert response.status_code == 200, response.text
    secret = response.json()["secret"]
    code = pyotp.TOTP(secret).now()
    response = await client.post(f"{MFA}/totp/confirm", headers=user.headers, json={"code": code})
    assert response.status_code == 200, response.text
    return Enabled(user, secret, code, response.json())


async def challenge(client: httpx.AsyncClient, user: SignedIn, password: str | None = None) -> str:
    response = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": password or user.password}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mfa_required"] is True, body
    assert set(body["methods"]) == {"totp", "backup_code"}
    assert "access_token" not in body
    return str(body["mfa_token"])


async def second_step(client: httpx.AsyncClient, mfa_token: str, code: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login/mfa", json={"mfa_token": mfa_token, "code": code})


async def audit_events(db: Db, user_id: uuid.UUID, event: str) -> list[dict[str, Any]]:
    cursor = await db.execute(
        "select event, host(ip), details from public.audit_log where subject_id = %s and event = %s",
        (user_id, event),
    )
    return [{"event": row[0], "ip": row[1], "details": row[2]} for row in await cursor.fetchall()]


async def outbox_templates(db: Db, email: str) -> list[str]:
    cursor = await db.execute(
        "select template from public.mail_outbox where lower(to_address) = lower(%s) order by created_at",
        (email,),
    )
    return [row[0] for row in await cursor.fetchall()]


def wrong_code(secret: str) -> str:
    """A six-digit code that matches no step the server could accept now."""
    totp = pyotp.TOTP(secret)
    taken = {totp.at(time.time() + offset) for offset in (-60, -30, 0, 30, 60)}
    return next(code for code in ("123456", "654321", "111111", "999999") if code not in taken)


async def test_enrolment_shows_a_qr_code_and_confirmation_turns_2fa_on(database_url: str, db: Db) -> None:
    ip = fresh_ip()
    user = await new_account(database_url, ip)
    async with auth_client(client_ip=ip) as client:
        assert (await client.get(MFA)).status_code == 401
        response = await client.get(MFA, headers=user.headers)
        assert response.json() == {"enabled": False, "confirmed_at": None, "backup_codes_remaining": 0}

        response = await client.post(f"{MFA}/totp/confirm", headers=user.headers, json={"code": "123456"})
        assert response.status_code == 404 and response.json()["code"] == "mfa_enrolment_not_found"

        first = await client.post(f"{MFA}/totp", headers=user.headers)
        assert first.status_code == 200, first.text
        assert first.headers["cache-control"] == "no-store"
        body = first.json()
        assert body["qr_svg"].startswith("data:image/svg+xml")
        assert "<svg" in unquote(body["qr_svg"].split(",", 1)[1])
        assert body["qr_png"].startswith("data:image/png;base64,")
        assert base64.b64decode(body["qr_png"].split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
        uri = urlsplit(body["otpauth_uri"])
        assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
        query = parse_qs(uri.query)
        assert query["issuer"] == ["Cinema Online"] and query["secret"] == [body["secret"]]
        assert unquote(uri.path) == f"/Cinema Online:{user.email}"
        parsed = pyotp.parse_uri(body["otpauth_uri"])
        assert parsed.issuer == "Cinema Online" and parsed.name == user.email
        # Not on yet: login still answers with tokens.
        assert (await client.get(MFA, headers=user.headers)).json()["enabled"] is False

        # Starting again replaces the unconfirmed secret: codes of the first one no longer confirm.
        second = (await client.post(f"{MFA}/totp", headers=user.headers)).json()
        assert second["secret"] != body["secret"]
        stale = pyotp.TOTP(body["secret"]).now()
        response = await client.post(f"{MFA}/totp/confirm", headers=user.headers, json={"code": stale})
        assert response.status_code == 400 and response.json()["code"] == "invalid_mfa_code"

        code = pyotp.TOTP(second["secret"]).now()
        response = await client.post(f"{MFA}/totp/confirm", headers=user.headers, json={"code": code})
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        confirmed = response.json()
        codes = confirmed["backup_codes"]
        assert len(codes) == 10 and len(set(codes)) == 10
        assert all(BACKUP_CODE.fullmatch(c) for c in codes), codes
        token = confirmed["tokens"]["access_token"]
        token_claims = claims(token)
        assert token_claims["aal"] == "aal2"
        assert token_claims["session_id"] == user.session_id
        assert {entry["method"] for entry in token_claims["amr"]} == {"password", "totp"}
        assert claims(user.access_token)["aal"] == "aal1"

        response = await client.get(MFA, headers=bearer(token))
        assert response.status_code == 200
        status = response.json()
        assert status["enabled"] is True and status["backup_codes_remaining"] == 10
        assert status["confirmed_at"] is not None

        response = await client.post(f"{MFA}/totp", headers=bearer(token))
        assert response.status_code == 409 and response.json()["code"] == "mfa_already_enabled"
        response = await client.post(f"{MFA}/totp/confirm", headers=bearer(token), json={"code": code})
        assert response.status_code == 409 and response.json()["code"] == "mfa_already_enabled"

    assert await audit_events(db, user.user_id, "mfa_enabled")
    assert "mfa_enabled" in await outbox_templates(db, user.email)


async def test_secret_is_encrypted_and_backup_codes_hashed_at_rest(database_url: str, db: Db) -> None:
    ip = fresh_ip()
    user = await new_account(database_url, ip)
    async with auth_client(client_ip=ip) as client:
        enabled = await enable(client, user)
    cursor = await db.execute(
        "select secret_encrypted from public.mfa_totp where user_id = %s", (user.user_id,)
    )
    row = await cursor.fetchone()
    assert row is not None
    stored: str = row[0]
    assert enabled.secret not in stored and enabled.secret.lower() not in stored.lower()
    raw = base64.b64decode(stored)
    assert len(raw) == 12 + len(enabled.secret) + 16  # nonce | ciphertext | GCM tag
    assert enabled.secret.encode() not in raw
    cursor = await db.execute(
        "select code_hash from public.mfa_backup_codes where user_id = %s", (user.user_id,)
    )
    hashes = [r[0] for r in await cursor.fetchall()]
    assert len(hashes) == 10
    for code in enabled.backup_codes:
        assert all(code not in h and code.replace("-", "") not in h for h in hashes)


async def test_login_challenge_accepts_a_fresh_code_once_and_rejects_replays(
    database_url: str, db: Db
) -> None:
    ip = fresh_ip()
    user = await new_account(database_url, ip)
    async with auth_client(client_ip=ip) as client:
        enabled = await enable(client, user)

        # The code that confirmed the setup was spent by it: it cannot also sign in.
        response = await second_step(client, await challenge(client, user), enabled.confirm_code)
        assert response.status_code == 401 and response.json()["code"] == "invalid_mfa_code"

        fresh = enabled.next_code()
        response = await second_step(client, await challenge(client, user), fresh)
        assert response.status_code == 200, response.text
        signed_in = response.json()
        assert claims(signed_in["access_token"])["aal"] == "aal2"
        assert [e["method"] for e in claims(signed_in["access_token"])["amr"]] == ["password", "totp"]
        assert (await client.get(MFA, headers=bearer(signed_in["access_token"]))).status_code == 200

        # The same code again, within its window, on a new challenge: a replay.
        response = await second_step(client, await challenge(client, user), fresh)
        assert response.status_code == 401 and response.json()["code"] == "invalid_mfa_code"

    replays = await audit_events(db, user.user_id, "mfa_replay_rejected")
    assert len(replays) == 2  # the confirming code and the reused login code
    assert all(event["ip"] == ip for event in replays)


async def test_concurrent_uses_of_one_totp_code_let_exactly_one_in(database_url: str, db: Db) -> None:
    ip = fresh_ip()
    user = await new_account(database_url, ip)
    async with auth_client(client_ip=ip) as client:
        enabled = await enable(client, user)
        tokens = [await challenge(client, user), await challenge(client, user)]
        code = enabled.next_code()
        responses = await asyncio.gather(*(second_step(client, token, code) for token in tokens))
    assert sorted(r.status_code for r in responses) == [200, 401]
    assert len(await audit_events(db, user.user_id, "mfa_replay_rejected")) == 1


async def test_a_backup_code_signs_in_once(database_url: str, db: Db) -> None:
    ip = fresh_ip()
    user = await new_account(database_url, ip)
    async with auth_client(client_ip=ip) as client:
        enabled = await enable(client, user)
        code = enabled.backup_codes[3]
        typed = " " + code.upper().replace("-", " ") + " "  # spaces, capitals: normalised like the stored one
        response = await second_step(client, await challenge(client, user), typed)
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        assert claims(token)["aal"] == "aal2"
        assert [e["method"] for e in claims(token)["amr"]] == ["password", "backup_code"]

        response = await second_step(client, await challenge(client, user), code)
        assert response.status_code == 401 and response.json()["code"] == "invalid_mfa_code"

        status = (await client.get(MFA, headers=bearer(token))).json()
        assert status["backup_codes_remaining"] == 9
    assert len(await audit_events(db, user.user_id, "backup_code_used")) == 1
    assert len(await audit_events(db, user.user_id, "mfa_challenge_failed")) == 1


async def test_two_concurrent_uses_of_one_backup_code_let_exactly_one_in(database_url: str, db: Db) -> None:
    ip = fresh_ip()
    user = await new_account(database_url, ip)
    async with auth_client(client_ip=ip) as client:
        enabled = await enable(client, user)
        tokens = [await challenge(client, user), await challenge(client, user)]
        code = enabled.backup_codes[0]
        responses = await asyncio.gather(*(second_step(client, token, code) for token in tokens))
    assert sorted(r.status_code for r in responses) == [200, 401], [r.text for r in responses]
    loser = next(r for r in responses if r.status_code == 401)
    assert loser.json()["code"] == "invalid_mfa_code"
    cursor = await db.execute(
        "select count(*) from public.mfa_backup_codes where user_id = %s and used_at is not null",
        (user.user_id,),
    )
    assert await cursor.fetchone() == (1,)
    assert len(await audit_events(db, user.user_id, "backup_code_used")) == 1


async def test_regenerating_backup_codes_kills_the_old_ones(database_url: str, db: Db) -> None:
    ip = fresh_ip()
    user = await new_account(database_url, ip)
    async with auth_client(client_ip=ip) as client:
        enabled = await enable(client, user)
        response = await client.post(
            f"{MFA}/backup-codes",
            headers=enabled.headers,
            json={"password": user.password, "code": enabled.next_code()},
        )
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        fresh = response.json()["backup_codes"]
        assert len(set(fresh)) == 10 and not set(fresh) & set(enabled.backup_codes)

        response = await second_step(client, await challenge(client, user), enabled.backup_codes[0])
        assert response.status_code == 401 and response.json()["code"] == "invalid_mfa_code"
        response = await second_step(client, await challenge(client, user), fresh[0])
        assert response.status_code == 200, response.text
    assert await audit_events(db, user.user_id, "backup_codes_regenerated")
    assert "backup_codes_regenerated" in await outbox_templates(db, user.email)


async def test_disabling_needs_the_password_and_a_code(database_url: str, db: Db) -> None:
    ip = fresh_ip()
    user = await new_account(database_url, ip)
    async with auth_client(client_ip=ip) as client:
        enabled = await enable(client, user)  # each attempt below counts against 5 per 5 minutes
        url, headers = f"{MFA}/totp", enabled.headers
        response = await client.request("DELETE", url, headers=headers, json={"password": user.password})
        assert response.status_code == 403 and response.json()["code"] == "mfa_required"
        response = await client.request(
            "DELETE", url, headers=headers, json={"password": "not the password", "code": enabled.next_code()}
        )
        assert response.status_code == 403 and response.json()["code"] == "reauthentication_failed"
        assert (await client.get(MFA, headers=headers)).json()["enabled"] is True

        response = await client.request(
            "DELETE", url, headers=headers, json={"password": user.password, "code": enabled.next_code()}
        )
        assert response.status_code == 204, response.text
        assert (await client.get(MFA, headers=headers)).json() == {
            "enabled": False,
            "confirmed_at": None,
            "backup_codes_remaining": 0,
        }
        response = await client.request("DELETE", url, headers=headers, json={"password": user.password})
        assert response.status_code == 404 and response.json()["code"] == "mfa_not_enabled"

        # Sign-in is back to the password alone.
        response = await client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
        assert response.status_code == 200 and "access_token" in response.json()
    cursor = await db.execute(
        "select count(*) from public.mfa_backup_codes where user_id = %s", (user.user_id,)
    )
    assert await cursor.fetchone() == (0,)
    assert await audit_events(db, user.user_id, "mfa_disabled")
    assert "mfa_disabled" in await outbox_templates(db, user.email)


async def test_a_password_reset_never_bypasses_2fa(database_url: str) -> None:
    ip = fresh_ip()
    user = await new_account(database_url, ip)
    new_password = "a completely different passphrase 9"
    async with auth_client(client_ip=ip) as client:
        enabled = await enable(client, user)
        response = await client.post("/api/v1/auth/password/reset", json={"email": user.email})
        assert response.status_code == 202
        token = token_of(await latest_link(database_url, user.email, "reset_password"))
        response = await client.post(
            "/api/v1/auth/password/reset/confirm", json={"token": token, "password": new_password}
        )
        assert response.status_code == 204, response.text
        # The reset signed every session out, aal2 included.
        assert (await client.get(MFA, headers=enabled.headers)).status_code == 401

        mfa_token = await challenge(client, user, password=new_password)
        response = await second_step(client, mfa_token, enabled.backup_codes[1])
        assert response.status_code == 200, response.text
        assert claims(response.json()["access_token"])["aal"] == "aal2"


async def test_wrong_codes_hit_the_per_account_limit(database_url: str) -> None:
    ip = fresh_ip()
    user = await new_account(database_url, ip)
    async with auth_client(client_ip=ip) as client:
        enabled = await enable(client, user)  # one attempt of the 5 per 5 minutes
        bad = wrong_code(enabled.secret)
        for _ in range(4):
            response = await second_step(client, await challenge(client, user), bad)
            assert response.status_code == 401 and response.json()["code"] == "invalid_mfa_code"
        response = await second_step(client, await challenge(client, user), enabled.next_code())
        assert response.status_code == 429, response.text
        assert response.json()["code"] == "rate_limited"
        assert int(response.headers["retry-after"]) >= 1
    # The per-account budget holds from any other address too.
    async with auth_client(client_ip=fresh_ip()) as client:
        response = await second_step(client, await challenge(client, user), enabled.next_code())
        assert response.status_code == 429


async def test_consecutive_failures_lock_the_second_factor(database_url: str) -> None:
    # Rate limits stop a guesser within minutes; the lockout (called by every code check, whichever
    # endpoint) makes the following windows progressively longer. Driven through the service, because the
    # per-account rate limit refuses the HTTP attempts before the lock's threshold is reached.
    ip = fresh_ip()
    user = await new_account(database_url, ip)
    async with auth_client(client_ip=ip) as client:
        enabled = await enable(client, user)
    bad = wrong_code(enabled.secret)
    pool = await get_pool()
    async with pool.connection() as conn:
        for _ in range(5):
            assert (
                await mfa.verify_second_factor(conn, user_id=user.user_id, code=bad, ip=ip, user_agent=None)
                is None
            )
        with pytest.raises(RateLimited) as refused:
            await mfa.verify_second_factor(
                conn, user_id=user.user_id, code=enabled.next_code(), ip=ip, user_agent=None
            )
        assert int(refused.value.headers["Retry-After"]) >= 1
        store = await get_redis()
        await ratelimit.TOTP_LOCKOUT.clear(store, ratelimit.account_key(str(user.user_id)))
        method = await mfa.verify_second_factor(
            conn, user_id=user.user_id, code=enabled.next_code(), ip=ip, user_agent=None
        )
        assert method == "totp"
        await conn.rollback()


def test_openapi_documents_the_mfa_endpoints() -> None:
    paths = auth_app.openapi()["paths"]
    expected = {
        (f"{MFA}", "get"): ["unauthenticated"],
        (f"{MFA}/totp", "post"): ["mfa_already_enabled"],
        (f"{MFA}/totp/confirm", "post"): ["invalid_mfa_code", "mfa_enrolment_not_found", "rate_limited"],
        (f"{MFA}/totp", "delete"): ["mfa_required", "invalid_mfa_code", "reauthentication_failed"],
        (f"{MFA}/backup-codes", "post"): ["mfa_required", "mfa_not_enabled", "rate_limited"],
    }
    for (path, method), codes in expected.items():
        operation = paths[path][method]
        assert operation["summary"] and "auth" in operation["tags"]
        described = " ".join(r["description"] for r in operation["responses"].values())
        for code in codes:
            assert f"`{code}`" in described, (path, method, code)
