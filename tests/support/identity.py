"""Sign-up, verification and login through the real HTTP endpoints, for tests that need a signed-in user."""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

from api.auth import app as auth_app
from api.users import app as users_app

PASSWORD = "correct horse battery staple 42"


def random_ip() -> str:
    """A fresh client address (100.64.0.0/10, shared address space) so rate limits never bleed between tests.

    Rate-limit counters live in the test Redis, which outlives a run: a fixed address would exhaust the
    sign-up budget (5 an hour) after a few tests, and stay exhausted for the next run too.
    """
    return f"100.{random.randint(64, 127)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def client_for(app: Any, *, client_ip: str | None = None) -> httpx.AsyncClient:
    """An HTTP client on the ASGI app, as a browser at `client_ip` (a fresh random address by default)."""
    transport = httpx.ASGITransport(app=app, client=(client_ip or random_ip(), 51000))
    return httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers={"user-agent": "pytest"}
    )


def auth_client(**kwargs: Any) -> httpx.AsyncClient:
    """Client for the auth group."""
    return client_for(auth_app, **kwargs)


def users_client(**kwargs: Any) -> httpx.AsyncClient:
    """Client for the users group."""
    return client_for(users_app, **kwargs)


@dataclass
class SignedIn:
    """A verified, signed-in account."""

    user_id: uuid.UUID
    email: str
    password: str
    access_token: str
    refresh_token: str
    session_id: str
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        """Authorization header for the access token."""
        return {"authorization": f"Bearer {self.access_token}"}


def unique_email(prefix: str = "viewer") -> str:
    """A fresh address per test."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


async def latest_link(database_url: str, to: str, template: str) -> str:
    """The link in the newest outbox message of this template to this address."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            """select text_body from public.mail_outbox where lower(to_address) = lower(%s) and template = %s
               order by created_at desc limit 1""",
            (to, template),
        )
        row = await cursor.fetchone()
    assert row is not None, f"no {template} mail to {to}"
    match = re.search(r"https?://\S+", row[0])
    assert match, row[0]
    return match.group(0)


def token_of(link: str) -> str:
    """The token query parameter of an emailed link."""
    return str(httpx.URL(link).params["token"])


async def sign_up_verified(
    database_url: str, *, email: str | None = None, password: str = PASSWORD, roles: list[str] | None = None
) -> tuple[str, str]:
    """Create and verify an account through HTTP; roles are granted directly in the database."""
    email = email or unique_email()
    async with auth_client() as client:
        response = await client.post("/api/v1/auth/signup", json={"email": email, "password": password})
        assert response.status_code == 202, response.text
        token = token_of(await latest_link(database_url, email, "verify_email"))
        response = await client.post("/api/v1/auth/verify-email", json={"token": token})
        assert response.status_code == 200, response.text
    if roles:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            await conn.execute(
                "update public.users set roles = %s where lower(email) = lower(%s)", (roles, email)
            )
    return email, password


async def log_in(email: str, password: str = PASSWORD, **client_kwargs: Any) -> SignedIn:
    """Sign in through HTTP (no 2FA)."""
    async with auth_client(**client_kwargs) as client:
        response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    return SignedIn(
        user_id=uuid.UUID(body["user"]["id"]),
        email=email,
        password=password,
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
        session_id=body["session_id"],
        body=body,
    )


async def signed_in_user(
    database_url: str, *, roles: list[str] | None = None, email: str | None = None
) -> SignedIn:
    """A new verified account, signed in."""
    email, password = await sign_up_verified(database_url, email=email, roles=roles)
    return await log_in(email, password)
