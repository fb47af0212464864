"""Shared helpers of the accounts tests: fresh client addresses, outbox and audit readers, token forging."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from tests.support.identity import SignedIn, auth_client, log_in, random_ip, sign_up_verified

ME = "/api/v1/users/me"


@pytest.fixture
def ip() -> str:
    """A client address of this test's own (rate limits are real and live in a shared Redis)."""
    return random_ip()


@pytest.fixture
async def fresh_clients() -> AsyncIterator[None]:
    """Close the loop's pool and Redis client after a test that changed settings they depend on."""
    yield
    from shared.infra.loop_local import reset_all

    await reset_all()


async def mails(database_url: str, to: str, template: str | None = None) -> list[dict[str, Any]]:
    """Outbox rows to an address (optionally of one template), oldest first."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            """select template, subject, text_body, user_id, created_at from public.mail_outbox
               where lower(to_address) = lower(%s) and (%s::text is null or template = %s::text)
               order by created_at, id""",
            (to, template, template),
        )
        names = [column.name for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in await cursor.fetchall()]


async def audit_events(database_url: str, subject_id: uuid.UUID) -> list[dict[str, Any]]:
    """Audit rows about an account, oldest first."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            """select event, host(ip) as ip, user_agent, details from public.audit_log
               where subject_id = %s order by id""",
            (subject_id,),
        )
        names = [column.name for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in await cursor.fetchall()]


async def sql(database_url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Run one statement (autocommit) and return its rows, to arrange or check state."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cursor = await conn.execute(query, params)
        return await cursor.fetchall() if cursor.description else []


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    """A problem or JSON body minus the per-request id."""
    return {key: value for key, value in body.items() if key != "request_id"}


def b64url(data: bytes) -> str:
    """Unpadded base64url, as in a JWT."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a JWT, unchecked."""
    header, payload, _ = token.split(".")
    pad = lambda part: part + "=" * (-len(part) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(header))), json.loads(
        base64.urlsafe_b64decode(pad(payload))
    )


def hs_sign(
    header: dict[str, Any], claims: dict[str, Any], secret: bytes, digest: Any = hashlib.sha256
) -> str:
    """An HMAC-signed JWT built by hand (pyjwt refuses some of the keys the attacks need)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(signature)}"


def fresh_claims(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Claims of a real token with new times (valid now) and the given changes."""
    now = int(time.time())
    return {**base, "iat": now, "nbf": now, "exp": now + 600, **changes}


async def enable_mfa(database_url: str, ip: str) -> tuple[SignedIn, str, list[str]]:
    """A new signed-in account with 2FA on (through HTTP): its aal2 session, TOTP secret and backup codes."""
    import pyotp

    email, password = await sign_up_verified(database_url)
    user = await log_in(email, password, client_ip=ip)
    async with auth_client(client_ip=ip) as client:
        response = await client.post("/api/v1/auth/mfa/totp", headers=user.headers)
        assert response.status_code == 200, response.text
        secret = str(response.json()["secret"])
        code = pyotp.TOTP(secret).now()
        response = await client.post(
            "/api/v1/auth/mfa/totp/confirm", headers=user.headers, json={"code": code}
        )
        assert response.status_code == 200, response.text
        confirmed = response.json()
    tokens = confirmed["tokens"]
    user.access_token, user.refresh_token = tokens["access_token"], tokens["refresh_token"]
    return user, secret, list(confirmed["backup_codes"])


async def mfa_token_for(database_url: str, ip: str) -> str:
    """The mfa_token the password step of a 2FA account yields (instead of tokens)."""
    user, _, _ = await enable_mfa(database_url, ip)
    async with auth_client(client_ip=ip) as client:
        response = await client.post(
            "/api/v1/auth/login", json={"email": user.email, "password": user.password}
        )
        assert response.status_code == 200, response.text
        body = response.json()
    assert body["mfa_required"] is True and "access_token" not in body
    return str(body["mfa_token"])
