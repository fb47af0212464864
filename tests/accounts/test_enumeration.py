"""Abuse resistance: known and unknown emails look the same, and lockout ignores forged client addresses."""

from __future__ import annotations

import statistics
import time
from typing import Any

from shared.settings import get_settings
from tests.accounts.conftest import audit_events, mails, sql, without_request_id
from tests.support.identity import (
    PASSWORD,
    auth_client,
    latest_link,
    random_ip,
    sign_up_verified,
    token_of,
    unique_email,
)


async def post(path: str, body: dict[str, Any], *, ip: str | None = None) -> tuple[int, dict[str, Any]]:
    async with auth_client(client_ip=ip or random_ip()) as client:
        response = await client.post(path, json=body)
    return response.status_code, without_request_id(response.json()) if response.content else {}


async def test_known_and_unknown_emails_get_identical_answers(database_url: str) -> None:
    known, _ = await sign_up_verified(database_url)
    unverified = unique_email("unverified")
    assert (await post("/api/v1/auth/signup", {"email": unverified, "password": PASSWORD}))[0] == 202
    unknown = unique_email("nobody")

    cases: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        (
            "/api/v1/auth/signup",
            {"email": known, "password": PASSWORD},
            {"email": unknown, "password": PASSWORD},
        ),
        (
            "/api/v1/auth/login",
            {"email": known, "password": "wrong password " + PASSWORD},
            {"email": unique_email("nobody"), "password": "wrong password " + PASSWORD},
        ),
        ("/api/v1/auth/password/reset", {"email": known}, {"email": unique_email("nobody")}),
        ("/api/v1/auth/verify-email/resend", {"email": unverified}, {"email": unique_email("nobody")}),
        ("/api/v1/auth/verify-email/resend", {"email": known}, {"email": unique_email("nobody")}),
    ]
    for path, for_known, for_unknown in cases:
        known_answer = await post(path, for_known)
        unknown_answer = await post(path, for_unknown)
        assert known_answer == unknown_answer, path
        assert known_answer[0] in (202, 401), known_answer

    # The owner of the known address learns about the sign-up attempt by mail; the requester learns nothing.
    assert len(await mails(database_url, known, "already_registered")) == 1
    assert len(await mails(database_url, known, "reset_password")) == 1


async def test_login_timing_does_not_tell_known_from_unknown(database_url: str) -> None:
    # Wrong passwords on known accounts (a few attempts each, below the lockout threshold) against unknown
    # addresses, interleaved so any drift in machine load hits both sides alike. argon2 dominates both.
    known = [(await sign_up_verified(database_url))[0] for _ in range(4)]
    rounds = 16

    async def attempt(email: str) -> float:
        async with auth_client(client_ip=random_ip()) as client:
            started = time.perf_counter()
            response = await client.post(
                "/api/v1/auth/login", json={"email": email, "password": "wrong guess 1234"}
            )
            elapsed = time.perf_counter() - started
        assert response.status_code == 401, response.text
        return elapsed

    await attempt(unique_email("warmup"))  # first-use costs (dummy hash, pools) out of the measurement
    known_times, unknown_times = [], []
    for index in range(rounds):
        pair = [("known", known[index % len(known)]), ("unknown", unique_email("nobody"))]
        if index % 2:
            pair.reverse()
        for kind, email in pair:
            (known_times if kind == "known" else unknown_times).append(await attempt(email))
    known_median, unknown_median = statistics.median(known_times), statistics.median(unknown_times)
    ratio = max(known_median, unknown_median) / min(known_median, unknown_median)
    assert ratio < 1.35, (known_median, unknown_median)


async def test_lockout_ignores_spoofed_forwarded_for_and_owner_unlocks_by_email(database_url: str) -> None:
    email, password = await sign_up_verified(database_url)
    settings = get_settings()
    assert not settings.trusted_proxies  # the direct peer is not a proxy: its headers are not believed
    peer = random_ip()
    async with auth_client(client_ip=peer) as client:
        for attempt in range(5):
            response = await client.post(
                "/api/v1/auth/login",
                json={"email": email, "password": f"guess number {attempt} x"},
                headers={
                    "x-forwarded-for": f"198.18.{attempt}.{attempt + 1}",
                    "cf-connecting-ip": f"198.19.{attempt}.9",
                    "x-real-ip": f"198.19.{attempt}.10",
                },
            )
            assert response.status_code == 401, response.text
        # Locked now, for the right password too, whatever address the client claims.
        response = await client.post(
            "/api/v1/auth/login",
            json={"email": email, "password": password},
            headers={"x-forwarded-for": "198.18.200.1"},
        )
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "account_locked"
    assert int(response.headers["retry-after"]) > 0
    # From a genuinely different address as well: the lock is on the account.
    status, body = await post("/api/v1/auth/login", {"email": email, "password": password})
    assert (status, body["code"]) == (429, "account_locked")

    (user_id,) = (await sql(database_url, "select id from public.users where email = %s", (email,)))[0]
    failures = [row for row in await audit_events(database_url, user_id) if row["event"] == "login_failed"]
    assert len(failures) == 5 and {row["ip"] for row in failures} == {peer}
    assert "login_locked" in [row["event"] for row in await audit_events(database_url, user_id)]

    # The owner got a mail whose link resets the password and lifts the lock at once.
    assert len(await mails(database_url, email, "account_locked")) == 1
    link = await latest_link(database_url, email, "account_locked")
    assert link.startswith(str(settings.public_base_url).rstrip("/") + "/reset-password?token=")
    new_password = "unlocked and renewed 2024"
    status, _ = await post(
        "/api/v1/auth/password/reset/confirm", {"token": token_of(link), "password": new_password}, ip=peer
    )
    assert status == 204
    async with auth_client(client_ip=peer) as client:
        response = await client.post("/api/v1/auth/login", json={"email": email, "password": new_password})
    assert response.status_code == 200, response.text


async def test_unknown_email_locks_the_same_way(database_url: str) -> None:
    email = unique_email("ghost")
    peer = random_ip()
    answers = [
        await post("/api/v1/auth/login", {"email": email, "password": "nope nope 123"}, ip=peer)
        for _ in range(6)
    ]
    assert [status for status, _ in answers] == [401] * 5 + [429]
    assert answers[-1][1]["code"] == "account_locked"
    assert await mails(database_url, email) == []


async def _timed(path: str, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    status, _ = await post(path, body)
    assert status == 202
    return time.perf_counter() - started


async def test_signup_reset_and_resend_take_the_same_time_for_known_and_unknown(database_url: str) -> None:
    from shared.accounts.routes import MAIL_REQUEST_FLOOR_SECONDS, SIGNUP_FLOOR_SECONDS

    knowns = [(await sign_up_verified(database_url))[0] for _ in range(3)]
    for path, floor, body in (
        ("/api/v1/auth/password/reset", MAIL_REQUEST_FLOOR_SECONDS, lambda email: {"email": email}),
        ("/api/v1/auth/verify-email/resend", MAIL_REQUEST_FLOOR_SECONDS, lambda email: {"email": email}),
        ("/api/v1/auth/signup", SIGNUP_FLOOR_SECONDS, lambda email: {"email": email, "password": PASSWORD}),
    ):
        known = [await _timed(path, body(email)) for email in knowns]
        unknown = [await _timed(path, body(unique_email("nobody"))) for _ in knowns]
        # Both answer at the floor: the few milliseconds of extra writes for a known address are hidden.
        assert min(known + unknown) >= floor, (path, known, unknown)
        assert abs(statistics.median(known) - statistics.median(unknown)) < 0.15 * floor, (
            path,
            known,
            unknown,
        )
