"""Changes by the owner: password, email, reset, deletion and export, through HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Callable

import psycopg

from shared.settings import get_settings
from tests.accounts.conftest import ME, audit_events, enable_mfa, mails, sql
from tests.support.identity import (
    auth_client,
    latest_link,
    log_in,
    sign_up_verified,
    token_of,
    unique_email,
    users_client,
)

NEW_PASSWORD = "a brand new passphrase 77"


def public_base() -> str:
    return str(get_settings().public_base_url).rstrip("/")


async def me_status(headers: dict[str, str], ip: str) -> int:
    async with users_client(client_ip=ip) as client:
        return (await client.get(ME, headers=headers)).status_code


async def refresh_status(refresh_token: str, ip: str) -> int:
    async with auth_client(client_ip=ip) as client:
        response = await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})
        return response.status_code


async def login_status(email: str, password: str, ip: str) -> int:
    async with auth_client(client_ip=ip) as client:
        response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
        return response.status_code


async def test_change_password_keeps_this_session_only(database_url: str, ip: str) -> None:
    email, password = await sign_up_verified(database_url)
    here = await log_in(email, password, client_ip=ip)
    elsewhere = await log_in(email, password, client_ip=ip)
    async with users_client(client_ip=ip) as client:
        response = await client.put(
            f"{ME}/password",
            headers=here.headers,
            json={"current_password": "not it at all", "new_password": NEW_PASSWORD},
        )
        assert response.status_code == 403
        assert response.json()["code"] == "reauthentication_failed"
        response = await client.put(
            f"{ME}/password",
            headers=here.headers,
            json={"current_password": password, "new_password": "12345678"},
        )
        assert response.status_code == 422
        response = await client.put(
            f"{ME}/password",
            headers=here.headers,
            json={"current_password": password, "new_password": NEW_PASSWORD},
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"sessions_ended": 1}
    assert await me_status(here.headers, ip) == 200
    assert await me_status(elsewhere.headers, ip) == 401
    assert await refresh_status(elsewhere.refresh_token, ip) == 401
    assert await refresh_status(here.refresh_token, ip) == 200
    assert len(await mails(database_url, email, "password_changed")) == 1
    assert await login_status(email, password, ip) == 401
    assert await login_status(email, NEW_PASSWORD, ip) == 200
    assert "password_changed" in [row["event"] for row in await audit_events(database_url, here.user_id)]


async def test_change_email(database_url: str, ip: str) -> None:
    email, password = await sign_up_verified(database_url)
    user = await log_in(email, password, client_ip=ip)
    new_email = unique_email("moved")
    async with users_client(client_ip=ip) as client:
        response = await client.post(
            f"{ME}/email", headers=user.headers, json={"new_email": new_email, "password": "wrong one here"}
        )
        assert response.status_code == 403
        response = await client.post(
            f"{ME}/email", headers=user.headers, json={"new_email": email, "password": password}
        )
        assert response.status_code == 400
        assert response.json()["code"] == "email_unchanged"
        response = await client.post(
            f"{ME}/email", headers=user.headers, json={"new_email": new_email, "password": password}
        )
        assert response.status_code == 202, response.text
        # Nothing switches before the new address confirms.
        assert (await client.get(ME, headers=user.headers)).json()["email"] == email

    link = await latest_link(database_url, new_email, "email_change_verify")
    assert link.startswith(public_base() + "/confirm-email?token=")
    (notice,) = await mails(database_url, email, "email_change_notice")
    assert new_email in notice["text_body"]
    assert await mails(database_url, email, "email_change_verify") == []

    async with auth_client(client_ip=ip) as client:
        response = await client.post("/api/v1/auth/email/confirm", json={"token": token_of(link)})
        assert response.status_code == 200, response.text
        assert response.json()["email"] == new_email and response.json()["email_verified"] is True
        response = await client.post("/api/v1/auth/email/confirm", json={"token": token_of(link)})
        assert response.status_code == 400
    async with users_client(client_ip=ip) as client:
        assert (await client.get(ME, headers=user.headers)).json()["email"] == new_email
    assert await login_status(email, password, ip) == 401
    assert await login_status(new_email, password, ip) == 200


async def test_email_change_to_a_taken_address_conflicts_at_confirmation(database_url: str, ip: str) -> None:
    email, password = await sign_up_verified(database_url)
    other, _ = await sign_up_verified(database_url)
    user = await log_in(email, password, client_ip=ip)
    async with users_client(client_ip=ip) as client:
        response = await client.post(
            f"{ME}/email", headers=user.headers, json={"new_email": other, "password": password}
        )
        assert response.status_code == 202  # the same answer as for a free address
    link = await latest_link(database_url, other, "email_change_verify")
    async with auth_client(client_ip=ip) as client:
        response = await client.post("/api/v1/auth/email/confirm", json={"token": token_of(link)})
    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"


async def test_email_change_racing_a_signup_for_the_same_address_conflicts(
    database_url: str, ip: str
) -> None:
    email, password = await sign_up_verified(database_url)
    user = await log_in(email, password, client_ip=ip)
    wanted = unique_email("contested")
    async with users_client(client_ip=ip) as client:
        response = await client.post(
            f"{ME}/email", headers=user.headers, json={"new_email": wanted, "password": password}
        )
        assert response.status_code == 202
    token = token_of(await latest_link(database_url, wanted, "email_change_verify"))
    # Another account claims the address in a transaction still open when the confirmation checks it.
    async with await psycopg.AsyncConnection.connect(database_url) as rival:
        await rival.execute("insert into public.users (email) values (%s)", (wanted,))
        async with auth_client(client_ip=ip) as client:
            confirm = asyncio.create_task(client.post("/api/v1/auth/email/confirm", json={"token": token}))
            await asyncio.sleep(0.3)
            assert not confirm.done()  # waiting on the rival's uncommitted row in the unique index
            await rival.commit()
            response = await confirm
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "email_taken"
    async with users_client(client_ip=ip) as client:
        assert (await client.get(ME, headers=user.headers)).json()["email"] == email


async def test_password_reset(database_url: str, ip: str) -> None:
    email, password = await sign_up_verified(database_url)
    first = await log_in(email, password, client_ip=ip)
    second = await log_in(email, password, client_ip=ip)
    async with auth_client(client_ip=ip) as client:
        response = await client.post("/api/v1/auth/password/reset", json={"email": email})
        assert response.status_code == 202, response.text
        link = await latest_link(database_url, email, "reset_password")
        assert link.startswith(public_base() + "/reset-password?token=")
        token = token_of(link)

        response = await client.post(
            "/api/v1/auth/password/reset/confirm", json={"token": token, "password": "qwerty123"}
        )
        assert response.status_code == 422  # a weak password does not spend the token
        response = await client.post(
            "/api/v1/auth/password/reset/confirm", json={"token": token, "password": NEW_PASSWORD}
        )
        assert response.status_code == 204, response.text
        response = await client.post(
            "/api/v1/auth/password/reset/confirm", json={"token": token, "password": NEW_PASSWORD + "x"}
        )
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_token"
    for session in (first, second):
        assert await me_status(session.headers, ip) == 401
        assert await refresh_status(session.refresh_token, ip) == 401
    assert await login_status(email, password, ip) == 401
    assert await login_status(email, NEW_PASSWORD, ip) == 200
    assert len(await mails(database_url, email, "password_changed")) == 1


async def test_reset_link_expires(database_url: str, ip: str) -> None:
    email, _ = await sign_up_verified(database_url)
    async with auth_client(client_ip=ip) as client:
        await client.post("/api/v1/auth/password/reset", json={"email": email})
        token = token_of(await latest_link(database_url, email, "reset_password"))
        await sql(
            database_url,
            """update public.auth_email_tokens set expires_at = now() - interval '1 second'
               where purpose = 'reset_password' and lower(email) = lower(%s)""",
            (email,),
        )
        response = await client.post(
            "/api/v1/auth/password/reset/confirm", json={"token": token, "password": NEW_PASSWORD}
        )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_token"


async def test_reset_link_ignores_the_host_header(
    database_url: str, settings_env: Callable[..., None], ip: str
) -> None:
    email, _ = await sign_up_verified(database_url)
    settings_env(PUBLIC_BASE_URL="https://watch.cinema.example")
    async with auth_client(client_ip=ip) as client:
        response = await client.post(
            "/api/v1/auth/password/reset",
            json={"email": email},
            headers={
                "host": "evil.example",
                "x-forwarded-host": "evil.example",
                "x-forwarded-proto": "https",
                "forwarded": "host=evil.example;proto=https",
                "origin": "https://evil.example",
            },
        )
    assert response.status_code == 202, response.text
    (mail,) = await mails(database_url, email, "reset_password")
    assert "evil.example" not in mail["text_body"]
    link = await latest_link(database_url, email, "reset_password")
    assert link.startswith("https://watch.cinema.example/reset-password?token=")


async def test_delete_account_erases_personal_data(database_url: str, ip: str) -> None:
    email, password = await sign_up_verified(database_url)
    user = await log_in(email, password, client_ip=ip)
    from shared.infra.storage import get_storage

    avatar_key = f"avatars/{user.user_id}/kids.png"
    await (await get_storage()).put_bytes(
        avatar_key, b"\x89PNG\r\n\x1a\n" + b"0" * 64, content_type="image/png"
    )
    await sql(
        database_url,
        "insert into public.profiles (user_id, name, avatar_key) values (%s, 'Kids', %s)",
        (user.user_id, avatar_key),
    )
    async with users_client(client_ip=ip) as client:
        response = await client.request(
            "DELETE", ME, headers=user.headers, json={"password": "not my password"}
        )
        assert response.status_code == 403
        assert response.json()["code"] == "reauthentication_failed"
        response = await client.request("DELETE", ME, headers=user.headers, json={})
        assert response.status_code == 403
        response = await client.request("DELETE", ME, headers=user.headers, json={"password": password})
        assert response.status_code == 204, response.text
        response = await client.get(ME, headers=user.headers)
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_token"
    assert await refresh_status(user.refresh_token, ip) == 401
    assert await login_status(email, password, ip) == 401

    for table, column in (
        ("users", "id"),
        ("auth_sessions", "user_id"),
        ("auth_email_tokens", "user_id"),
        ("auth_identities", "user_id"),
        ("profiles", "user_id"),
        ("mail_outbox", "user_id"),
        ("mfa_totp", "user_id"),
        ("mfa_backup_codes", "user_id"),
    ):
        rows = await sql(database_url, f"select 1 from public.{table} where {column} = %s", (user.user_id,))
        assert rows == [], table
    (refresh_rows,) = (
        await sql(
            database_url,
            "select count(*) from public.auth_refresh_tokens where session_id = %s",
            (user.session_id,),
        )
    )[0]
    assert refresh_rows == 0
    assert await (await get_storage()).head(avatar_key) is None  # the avatar image is gone too
    # The audit trail stays, stripped of addresses and browsers.
    events = await audit_events(database_url, user.user_id)
    assert {"signup", "login_succeeded", "account_deleted"} <= {row["event"] for row in events}
    assert all(row["ip"] is None and row["user_agent"] is None for row in events)
    assert all(email not in json.dumps(row["details"]) for row in events)
    # What remains in the outbox is the confirmation, not tied to any account.
    remaining = await mails(database_url, email)
    assert [row["template"] for row in remaining] == ["account_deleted"]
    assert remaining[0]["user_id"] is None
    # The address is free again.
    email_again, _ = await sign_up_verified(database_url, email=email)
    assert await login_status(email_again, password, ip) == 200


async def test_delete_account_with_2fa_needs_a_code(database_url: str, ip: str) -> None:
    user, _, backup_codes = await enable_mfa(database_url, ip)
    async with users_client(client_ip=ip) as client:
        response = await client.request("DELETE", ME, headers=user.headers, json={"password": user.password})
        assert response.status_code == 403
        assert response.json()["code"] == "mfa_required"
        response = await client.request(
            "DELETE", ME, headers=user.headers, json={"password": user.password, "code": "000000"}
        )
        assert response.status_code == 403
        assert response.json()["code"] == "invalid_mfa_code"
        response = await client.request(
            "DELETE", ME, headers=user.headers, json={"password": user.password, "code": backup_codes[0]}
        )
        assert response.status_code == 204, response.text
    assert await sql(database_url, "select 1 from public.mfa_totp where user_id = %s", (user.user_id,)) == []
    assert (
        await sql(database_url, "select 1 from public.mfa_backup_codes where user_id = %s", (user.user_id,))
        == []
    )


async def test_export_contains_the_account_and_no_secrets(database_url: str, ip: str) -> None:
    user, totp_secret, backup_codes = await enable_mfa(database_url, ip)
    email, password = user.email, user.password
    async with auth_client(client_ip=ip) as client:
        response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
        challenge = response.json()["mfa_token"]
        response = await client.post(
            "/api/v1/auth/login/mfa", json={"mfa_token": challenge, "code": backup_codes[1]}
        )
        assert response.status_code == 200, response.text
        other_session_id = response.json()["session_id"]
    async with users_client(client_ip=ip) as client:
        response = await client.get(f"{ME}/export", headers=user.headers)
        assert response.status_code == 200, response.text
        assert "attachment" in response.headers["content-disposition"]
        assert response.headers["cache-control"] == "no-store"
        document = response.json()
        text = response.text
        response = await client.get(f"{ME}/export")
        assert response.status_code == 401

    assert document["account"]["email"] == email
    assert document["account"]["id"] == str(user.user_id)
    assert {session["id"] for session in document["sessions"]} >= {user.session_id, other_session_id}
    assert document["two_factor"]["enabled"] is True
    assert isinstance(document["identities"], list)
    events = [event["event"] for event in document["security_events"]]
    assert "signup" in events and "login_succeeded" in events
    assert "profiles" in document and "two_factor" in document

    # No secret, in any form: password hash, token hashes, tokens.
    (password_hash,) = (
        await sql(database_url, "select password_hash from public.users where id = %s", (user.user_id,))
    )[0]
    hashes = [
        row[0]
        for row in await sql(
            database_url,
            """select token_hash from public.auth_refresh_tokens t
               join public.auth_sessions s on s.id = t.session_id where s.user_id = %s
               union all select token_hash from public.auth_email_tokens where user_id = %s""",
            (user.user_id, user.user_id),
        )
    ]
    assert hashes
    (encrypted_secret,) = (
        await sql(
            database_url, "select secret_encrypted from public.mfa_totp where user_id = %s", (user.user_id,)
        )
    )[0]
    code_hashes = [
        row[0]
        for row in await sql(
            database_url, "select code_hash from public.mfa_backup_codes where user_id = %s", (user.user_id,)
        )
    ]
    forbidden = [password_hash, "$argon2", "password_hash", "token_hash", user.refresh_token, password]
    forbidden += [totp_secret, encrypted_secret, *backup_codes, *code_hashes, "secret_encrypted", "code_hash"]
    for digest in hashes:
        forbidden += [
            bytes(digest).hex(),
            base64.b64encode(bytes(digest)).decode(),
            "\\x" + bytes(digest).hex(),
        ]
    forbidden.append(hashlib.sha256(user.refresh_token.encode()).hexdigest())
    for secret in forbidden:
        assert secret not in text, secret
    assert "data_exported" in [row["event"] for row in await audit_events(database_url, user.user_id)]


async def test_reauthentication_is_not_an_unlimited_password_oracle(database_url: str, ip: str) -> None:
    """A stolen access token must not allow endless guesses at the password behind it."""
    email, password = await sign_up_verified(database_url)
    user = await log_in(email, password, client_ip=ip)
    async with users_client(client_ip=ip) as client:
        for attempt in range(10):
            response = await client.put(
                f"{ME}/password",
                headers=user.headers,
                json={"current_password": f"guess {attempt} xyz", "new_password": NEW_PASSWORD},
            )
            assert response.status_code == 403
        for request in (
            client.put(
                f"{ME}/password",
                headers=user.headers,
                json={"current_password": password, "new_password": NEW_PASSWORD},
            ),
            client.post(
                f"{ME}/email", headers=user.headers, json={"new_email": unique_email(), "password": password}
            ),
            client.request("DELETE", ME, headers=user.headers, json={"password": password}),
        ):
            response = await request
            assert response.status_code == 429, response.text
            assert int(response.headers["retry-after"]) > 0
