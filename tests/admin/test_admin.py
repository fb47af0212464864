"""User administration end to end through HTTP: permissions, search, roles, disable/enable, audit log, CLI."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import jwt
import psycopg
import pytest

from shared.accounts.schemas import Role
from shared.http.permissions import PERMISSIONS, ROLE_PERMISSIONS, ROLES, require_permission
from tests.support.identity import (
    PASSWORD,
    SignedIn,
    auth_client,
    latest_link,
    log_in,
    token_of,
    unique_email,
    users_client,
)

USERS = "/api/v1/users"


def fresh_ip() -> str:
    """A client address of its own (an IPv6 /64 is one rate-limit bucket), so limits never carry over."""
    return f"2001:db8:{secrets.randbelow(0xFFFF):x}:{secrets.randbelow(0xFFFF):x}::1"


async def new_user(database_url: str, *, roles: list[str] | None = None, prefix: str = "viewer") -> SignedIn:
    """Sign up, verify and sign in through HTTP from a fresh address; roles are set in the database."""
    email, ip = unique_email(prefix), fresh_ip()
    async with auth_client(client_ip=ip) as client:
        response = await client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
        assert response.status_code == 202, response.text
        token = token_of(await latest_link(database_url, email, "verify_email"))
        response = await client.post("/api/v1/auth/verify-email", json={"token": token})
        assert response.status_code == 200, response.text
    if roles:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            await conn.execute(
                "update public.users set roles = %s where lower(email) = lower(%s)", (roles, email)
            )
    return await log_in(email, PASSWORD, client_ip=ip)


async def login(email: str, password: str = PASSWORD) -> Any:
    async with auth_client(client_ip=fresh_ip()) as client:
        return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def get_me(user: SignedIn | str) -> Any:
    token = user if isinstance(user, str) else user.access_token
    async with users_client() as client:
        return await client.get(f"{USERS}/me", headers={"authorization": f"Bearer {token}"})


async def refresh(refresh_token: str) -> Any:
    async with auth_client(client_ip=fresh_ip()) as client:
        return await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


async def audit_rows(database_url: str, subject: uuid.UUID, event: str) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    async with (
        await psycopg.AsyncConnection.connect(database_url) as conn,
        conn.cursor(row_factory=dict_row) as cursor,
    ):
        await cursor.execute(
            "select * from public.audit_log where subject_id = %s and event = %s order by id",
            (subject, event),
        )
        return await cursor.fetchall()


# Permissions.


def test_permission_table_is_consistent() -> None:
    assert get_args(Role) == ROLES
    assert ROLE_PERMISSIONS["admin"] == frozenset(PERMISSIONS)
    assert ROLE_PERMISSIONS["viewer"] == frozenset()
    assert "users:roles" not in ROLE_PERMISSIONS["support"]
    assert "audit:read" not in ROLE_PERMISSIONS["support"]
    assert require_permission("users:read") is require_permission("users:read")  # one dependency each
    with pytest.raises(ValueError, match="unknown permission"):
        require_permission("users:reed")


async def test_viewer_is_refused_on_every_admin_route(database_url: str) -> None:
    viewer = await new_user(database_url)
    target = str(viewer.user_id)
    calls = [
        ("GET", USERS, None, "users:read"),
        ("GET", f"{USERS}/audit-log", None, "audit:read"),
        ("GET", f"{USERS}/{target}", None, "users:read"),
        ("PUT", f"{USERS}/{target}/roles", {"roles": ["admin"]}, "users:roles"),
        ("POST", f"{USERS}/{target}/disable", {"reason": "x"}, "users:disable"),
        ("POST", f"{USERS}/{target}/enable", None, "users:disable"),
    ]
    async with users_client() as client:
        for method, path, body, permission in calls:
            response = await client.request(method, path, json=body, headers=viewer.headers)
            assert problem(response, 403, "permission_denied")["permission"] == permission
            response = await client.request(method, path, json=body)
            problem(response, 401, "unauthenticated")
    # The viewer's own account is still served by /users/me, not taken for a user id.
    assert (await get_me(viewer)).json()["id"] == target


async def test_support_can_search_and_disable_but_not_change_roles(database_url: str) -> None:
    support = await new_user(database_url, roles=["viewer", "support"], prefix="support")
    target = await new_user(database_url)
    admin = await new_user(database_url, roles=["viewer", "admin"], prefix="admin")
    async with users_client() as client:
        response = await client.get(USERS, params={"q": target.email.upper()}, headers=support.headers)
        assert response.status_code == 200, response.text
        assert [item["id"] for item in response.json()["items"]] == [str(target.user_id)]
        response = await client.get(f"{USERS}/{target.user_id}", headers=support.headers)
        assert response.status_code == 200, response.text
        response = await client.put(
            f"{USERS}/{target.user_id}/roles", json={"roles": ["support"]}, headers=support.headers
        )
        assert problem(response, 403, "permission_denied")["permission"] == "users:roles"
        response = await client.get(f"{USERS}/audit-log", headers=support.headers)
        problem(response, 403, "permission_denied")
        # Support cannot lock out staff: disabling an admin needs an admin.
        response = await client.post(
            f"{USERS}/{admin.user_id}/disable", json={"reason": "coup"}, headers=support.headers
        )
        problem(response, 403, "cannot_manage_staff")
        response = await client.post(
            f"{USERS}/{target.user_id}/disable", json={"reason": "chargeback fraud"}, headers=support.headers
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "disabled"
        response = await client.post(f"{USERS}/{target.user_id}/enable", headers=support.headers)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "active"
    [row] = await audit_rows(database_url, target.user_id, "account_disabled")
    assert row["actor_id"] == support.user_id
    assert row["details"]["reason"] == "chargeback fraud"


# Roles.


async def test_role_change_is_audited_and_forces_a_refresh(database_url: str) -> None:
    admin = await new_user(database_url, roles=["viewer", "admin"], prefix="admin")
    target = await new_user(database_url)
    assert (await get_me(target)).status_code == 200
    async with users_client(client_ip=fresh_ip()) as client:
        response = await client.put(
            f"{USERS}/{target.user_id}/roles",
            json={"roles": ["content_manager", "ads_manager"]},
            headers=admin.headers,
        )
    assert response.status_code == 200, response.text
    assert response.json()["roles"] == ["viewer", "content_manager", "ads_manager"]

    [row] = await audit_rows(database_url, target.user_id, "roles_changed")
    assert row["actor_id"] == admin.user_id
    assert row["details"] == {"before": ["viewer"], "after": ["viewer", "content_manager", "ads_manager"]}

    # The token with the old roles is refused; a refresh re-reads the roles.
    problem(await get_me(target), 401, "invalid_token")
    response = await refresh(target.refresh_token)
    assert response.status_code == 200, response.text
    renewed = response.json()
    assert renewed["user"]["roles"] == ["viewer", "content_manager", "ads_manager"]
    claims = jwt.decode(renewed["access_token"], options={"verify_signature": False})
    assert sorted(claims["app_roles"]) == ["ads_manager", "content_manager", "viewer"]
    assert (await get_me(renewed["access_token"])).status_code == 200

    # Setting the same roles again changes nothing and logs nothing.
    async with users_client() as client:
        response = await client.put(
            f"{USERS}/{target.user_id}/roles",
            json={"roles": ["ads_manager", "content_manager", "ads_manager"]},
            headers=admin.headers,
        )
    assert response.status_code == 200, response.text
    assert len(await audit_rows(database_url, target.user_id, "roles_changed")) == 1
    assert (await get_me(renewed["access_token"])).status_code == 200


async def test_admin_cannot_demote_or_disable_self(database_url: str) -> None:
    admin = await new_user(database_url, roles=["viewer", "admin"], prefix="admin")
    path = f"{USERS}/{admin.user_id}"
    async with users_client() as client:
        response = await client.put(f"{path}/roles", json={"roles": ["support"]}, headers=admin.headers)
        problem(response, 409, "cannot_demote_self")
        response = await client.post(f"{path}/disable", json={"reason": "oops"}, headers=admin.headers)
        problem(response, 409, "cannot_disable_self")
        # Adding a role to oneself is fine ("viewer" is kept even when not sent).
        response = await client.put(
            f"{path}/roles", json={"roles": ["admin", "support"]}, headers=admin.headers
        )
        assert response.status_code == 200, response.text
        assert response.json()["roles"] == ["viewer", "support", "admin"]
        # The admin's own token carried the old roles: it is refused until refreshed.
        problem(await client.get(f"{USERS}/me", headers=admin.headers), 401, "invalid_token")
        renewed = await refresh(admin.refresh_token)
        assert renewed.status_code == 200, renewed.text
        headers = {"authorization": f"Bearer {renewed.json()['access_token']}"}
        response = await client.put(f"{path}/roles", json={"roles": ["root"]}, headers=headers)
        problem(response, 422, "validation_failed")
        response = await client.put(f"{USERS}/{uuid.uuid4()}/roles", json={"roles": []}, headers=headers)
        problem(response, 404, "user_not_found")


# Disable and enable.


async def test_disable_ends_everything_and_enable_lets_the_owner_back(database_url: str) -> None:
    admin = await new_user(database_url, roles=["viewer", "admin"], prefix="admin")
    target = await new_user(database_url)
    second = await log_in(target.email, PASSWORD, client_ip=fresh_ip())  # a second device
    async with users_client() as client:
        response = await client.get(f"{USERS}/{target.user_id}", headers=admin.headers)
        assert response.json()["live_sessions"] == 2
        response = await client.post(
            f"{USERS}/{target.user_id}/disable", json={"reason": "abuse report 42"}, headers=admin.headers
        )
    assert response.status_code == 200, response.text
    detail = response.json()
    assert (detail["status"], detail["disabled_reason"], detail["live_sessions"]) == (
        "disabled",
        "abuse report 42",
        0,
    )
    for device in (target, second):
        problem(await get_me(device), 401, "invalid_token")
        response = await refresh(device.refresh_token)
        assert response.status_code == 401, response.text
    problem(await login(target.email), 403, "account_disabled")
    [row] = await audit_rows(database_url, target.user_id, "account_disabled")
    assert (row["actor_id"], row["details"]["sessions_ended"]) == (admin.user_id, 2)

    async with users_client() as client:
        # Disabling again is a no-op (no second audit row).
        response = await client.post(
            f"{USERS}/{target.user_id}/disable", json={"reason": "again"}, headers=admin.headers
        )
        assert response.json()["disabled_reason"] == "abuse report 42"
        response = await client.post(f"{USERS}/{target.user_id}/disable", json={}, headers=admin.headers)
        problem(response, 422, "validation_failed")
        response = await client.post(f"{USERS}/{target.user_id}/enable", headers=admin.headers)
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["disabled_reason"]) == ("active", None)
    assert len(await audit_rows(database_url, target.user_id, "account_disabled")) == 1
    [row] = await audit_rows(database_url, target.user_id, "account_enabled")
    assert row["details"]["previous_reason"] == "abuse report 42"
    response = await login(target.email)
    assert response.status_code == 200, response.text
    assert (await get_me(response.json()["access_token"])).status_code == 200


# Search and detail.


async def insert_user(
    db: psycopg.AsyncConnection, email: str, *, created_at: datetime | None = None, **columns: Any
) -> uuid.UUID:
    names = ["email", "created_at", *columns]
    values = [email, created_at or datetime.now(UTC), *columns.values()]
    cursor = await db.execute(
        f"insert into public.users ({', '.join(names)}) values ({', '.join(['%s'] * len(names))})"
        " returning id",
        values,
    )
    row = await cursor.fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


async def search(caller: SignedIn, **params: Any) -> dict[str, Any]:
    async with users_client() as client:
        response = await client.get(USERS, params=params, headers=caller.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_search_escapes_like_wildcards(database_url: str, db: psycopg.AsyncConnection) -> None:
    support = await new_user(database_url, roles=["viewer", "support"], prefix="support")
    tag = secrets.token_hex(4)
    percent = await insert_user(db, f"{tag}-100%off@example.com")
    await insert_user(db, f"{tag}-100xoff@example.com")
    underscore = await insert_user(db, f"{tag}-a_b@example.com")
    await insert_user(db, f"{tag}-axb@example.com")
    backslash = await insert_user(db, f"{tag}-c\\d@example.com")
    await insert_user(db, f"{tag}-cd@example.com")

    def ids(body: dict[str, Any]) -> list[str]:
        return [item["id"] for item in body["items"]]

    assert ids(await search(support, q=f"{tag}-100%")) == [str(percent)]
    assert ids(await search(support, q=f"{tag.upper()}-A_B")) == [str(underscore)]
    assert ids(await search(support, q=f"{tag}-c\\d")) == [str(backslash)]
    assert len(ids(await search(support, q=tag))) == 6
    assert ids(await search(support, q="%")) != []  # a literal % still matches only addresses holding one
    assert all("%" in item["email"] for item in (await search(support, q="%", limit=100))["items"])
    assert ids(await search(support, q=str(underscore))) == [str(underscore)]  # an exact id
    assert ids(await search(support, q=f"{tag}-nobody")) == []


async def test_search_filters_and_cursor(database_url: str, db: psycopg.AsyncConnection) -> None:
    support = await new_user(database_url, roles=["viewer", "support"], prefix="support")
    tag = secrets.token_hex(4)
    base = datetime.now(UTC) - timedelta(days=1)
    # Two accounts share a creation time: the id breaks the tie, so none is skipped or repeated.
    created = [base, base + timedelta(seconds=1), base + timedelta(seconds=1), base + timedelta(seconds=2)]
    ids = [await insert_user(db, f"{tag}-{n}@example.com", created_at=at) for n, at in enumerate(created)]
    editor = await insert_user(
        db,
        f"{tag}-editor@example.com",
        created_at=base - timedelta(seconds=1),
        roles=["viewer", "content_manager"],
        status="disabled",
        disabled_reason="left",
    )
    ids.append(editor)
    expected = sorted(
        zip([*created, base - timedelta(seconds=1)], ids, strict=True),
        key=lambda pair: (pair[0], str(pair[1])),
        reverse=True,
    )
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        body = await search(support, q=tag, limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [str(user_id) for _, user_id in expected]

    body = await search(support, q=tag, role="content_manager")
    assert [item["id"] for item in body["items"]] == [str(editor)]
    [item] = (await search(support, q=tag, status="disabled"))["items"]
    assert (item["status"], item["disabled_reason"], item["roles"]) == (
        "disabled",
        "left",
        ["viewer", "content_manager"],
    )
    assert item["email_verified"] is False and item["mfa_enabled"] is False
    assert len((await search(support, q=tag, status="active"))["items"]) == 4

    async with users_client() as client:
        for params, status, code in [
            ({"cursor": "not-a-cursor!"}, 400, "invalid_cursor"),
            ({"cursor": "WzFd"}, 400, "invalid_cursor"),  # [1]: valid JSON, wrong shape
            ({"role": "emperor"}, 422, "validation_failed"),
            ({"limit": 0}, 422, "validation_failed"),
        ]:
            response = await client.get(USERS, params=params, headers=support.headers)
            problem(response, status, code)


async def test_user_detail(database_url: str, db: psycopg.AsyncConnection) -> None:
    support = await new_user(database_url, roles=["viewer", "support"], prefix="support")
    target = await new_user(database_url)
    await db.execute(
        """insert into public.auth_identities (provider, subject, user_id, email)
           values ('github', %s, %s, %s)""",
        (secrets.token_hex(6), target.user_id, target.email),
    )
    async with users_client() as client:
        response = await client.get(f"{USERS}/{target.user_id}", headers=support.headers)
        assert response.status_code == 200, response.text
        detail = response.json()
        assert detail["email"] == target.email
        assert (detail["live_sessions"], detail["has_password"], detail["mfa_enabled"]) == (1, True, False)
        assert detail["email_verified"] is True and detail["last_login_at"] is not None
        assert [identity["provider"] for identity in detail["identities"]] == ["github"]
        assert "subject" not in detail["identities"][0]
        problem(await client.get(f"{USERS}/{uuid.uuid4()}", headers=support.headers), 404, "user_not_found")
        problem(await client.get(f"{USERS}/not-a-uuid", headers=support.headers), 422, "validation_failed")


# Audit log.


async def test_audit_log_filters_by_user_and_event(database_url: str) -> None:
    admin = await new_user(database_url, roles=["viewer", "admin"], prefix="admin")
    target = await new_user(database_url)  # one real login
    assert (await login(target.email, "not the password at all")).status_code == 401
    assert (await login(target.email)).status_code == 200

    async def log(**params: Any) -> dict[str, Any]:
        async with users_client() as client:
            response = await client.get(f"{USERS}/audit-log", params=params, headers=admin.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    body = await log(user_id=str(target.user_id))
    events = [item["event"] for item in body["items"]]
    assert events[:3] == ["login_succeeded", "login_failed", "login_succeeded"]  # newest first
    assert {"signup", "email_verified"} <= set(events)
    assert all(item["subject_id"] == str(target.user_id) for item in body["items"])
    ids = [item["id"] for item in body["items"]]
    assert ids == sorted(ids, reverse=True)

    body = await log(user_id=str(target.user_id), event="login_succeeded")
    assert len(body["items"]) == 2
    first = body["items"][1]
    assert first["ip"] and "/" not in first["ip"] and first["user_agent"] == "pytest"
    assert first["details"]["methods"] == ["password"]
    assert len((await log(user_id=str(target.user_id), event="login_failed"))["items"]) == 1

    # Page through one event at a time.
    seen: list[int] = []
    cursor: str | None = None
    while True:
        page = await log(user_id=str(target.user_id), limit=1, **({"cursor": cursor} if cursor else {}))
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids

    # Across accounts, filtered by event only.
    body = await log(event="login_succeeded", limit=100)
    assert str(target.user_id) in {item["subject_id"] for item in body["items"]}
    assert {item["event"] for item in body["items"]} == {"login_succeeded"}

    async with users_client() as client:
        response = await client.get(f"{USERS}/audit-log", params={"event": "tea_time"}, headers=admin.headers)
        problem(response, 422, "unknown_event")
        response = await client.get(f"{USERS}/audit-log", params={"cursor": "WyJ4Il0"}, headers=admin.headers)
        problem(response, 400, "invalid_cursor")  # ["x"]


async def test_openapi_documents_the_admin_errors() -> None:
    from api.users import app

    paths = app.openapi()["paths"]
    operations = [
        (paths[f"{USERS}"]["get"], []),
        (paths[f"{USERS}/audit-log"]["get"], ["unknown_event"]),
        (paths[f"{USERS}/{{user_id}}"]["get"], ["user_not_found"]),
        (paths[f"{USERS}/{{user_id}}/roles"]["put"], ["cannot_demote_self"]),
        (paths[f"{USERS}/{{user_id}}/disable"]["post"], ["cannot_disable_self", "cannot_manage_staff"]),
        (paths[f"{USERS}/{{user_id}}/enable"]["post"], ["cannot_manage_staff"]),
    ]
    for operation, codes in operations:
        assert operation["tags"] == ["admin"] and operation["summary"]
        described = " ".join(response["description"] for response in operation["responses"].values())
        for code in ["permission_denied", "invalid_token", *codes]:
            assert f"`{code}`" in described, (operation["summary"], code)


# Command line.


async def test_commands_create_grant_and_set_status(database_url: str) -> None:
    from shared.admin import commands
    from shared.errors import Conflict, NotFound, ValidationFailed

    email = unique_email("operator")
    user_id = await commands.create_user(email=email, password=PASSWORD, roles=["support"])
    response = await login(email)
    assert response.status_code == 200, response.text
    assert response.json()["user"]["roles"] == ["viewer", "support"]
    assert response.json()["user"]["id"] == str(user_id)
    [row] = await audit_rows(database_url, user_id, "signup")
    assert row["details"]["source"] == "cli"

    with pytest.raises(Conflict):
        await commands.create_user(email=email.upper(), password=PASSWORD, roles=[])
    with pytest.raises(ValidationFailed) as weak:
        await commands.create_user(email=unique_email(), password="password", roles=[])
    assert weak.value.code == "password_too_common"
    with pytest.raises(ValidationFailed):
        await commands.create_user(email=unique_email(), password=PASSWORD, roles=["emperor"])

    assert await commands.grant_roles(email=email, roles=["admin"]) == ["viewer", "support", "admin"]
    [row] = await audit_rows(database_url, user_id, "roles_changed")
    assert row["details"] == {
        "before": ["viewer", "support"],
        "after": ["viewer", "support", "admin"],
        "source": "cli",
    }
    with pytest.raises(NotFound):
        await commands.grant_roles(email=unique_email(), roles=["admin"])

    assert await commands.set_status(email=email, status="disabled", reason="offboarded") is True
    problem(await login(email), 403, "account_disabled")
    assert await commands.set_status(email=email, status="active", reason=None) is True
    assert (await login(email)).status_code == 200
    with pytest.raises(ValidationFailed):
        await commands.set_status(email=email, status="disabled", reason=None)
