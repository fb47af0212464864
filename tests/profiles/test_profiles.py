"""Viewer profiles end to end through the users app: limits, names, maturity, the active profile, PINs."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from shared.errors import BadRequest, NotFound
from tests.profiles.conftest import PROFILES, auth, claims, create, made, profiles_of
from tests.support.identity import SignedIn, signed_in_user

ME = "/api/v1/users/me"


async def fill_to(client: httpx.AsyncClient, user: SignedIn, count: int) -> list[dict[str, Any]]:
    """Create profiles until the account has `count` (whatever sign-up made); return them all."""
    existing = await profiles_of(client, user.headers)
    for _ in range(count - len(existing)):
        await made(client, user.headers)
    listed = await profiles_of(client, user.headers)
    assert len(listed) == count
    return listed


async def select(
    client: httpx.AsyncClient, headers: dict[str, str], profile_id: str, pin: str | None = None
) -> httpx.Response:
    return await client.post(
        f"{PROFILES}/{profile_id}/select", json={"pin": pin} if pin else None, headers=headers
    )


# --- the maturity scale ------------------------------------------------------------------------------


def test_maturity_scale_is_ordered() -> None:
    from shared.profiles.schemas import MATURITY_LEVELS, allows, capped_maturity, maturity_rank

    assert MATURITY_LEVELS == ("all", "7+", "13+", "16+", "18+")
    assert [maturity_rank(level) for level in MATURITY_LEVELS] == [0, 1, 2, 3, 4]
    assert allows("13+", "7+") and allows("13+", "13+") and not allows("13+", "16+")
    assert capped_maturity("18+", is_kids=True) == "7+"
    assert capped_maturity("all", is_kids=True) == "all"
    assert capped_maturity("16+", is_kids=False) == "16+"
    with pytest.raises(ValueError, match="unknown maturity"):
        maturity_rank("PG-13")


# --- creating ----------------------------------------------------------------------------------------


async def test_create_up_to_five_then_limit(user: SignedIn, client: httpx.AsyncClient) -> None:
    first = await made(
        client,
        user.headers,
        name="  Sam  ",
        language="pt-BR",
        maturity_level="13+",
        autoplay_next=False,
        autoplay_previews=False,
    )
    assert first["name"] == "Sam" and first["language"] == "pt-BR" and first["maturity_level"] == "13+"
    assert (first["autoplay_next"], first["autoplay_previews"], first["is_kids"]) == (False, False, False)
    assert first["has_pin"] is False and first["avatar_url"] is None and first["active"] is False
    await fill_to(client, user, 5)

    refused = await create(client, user.headers)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "profile_limit"
    assert len(await profiles_of(client, user.headers)) == 5


async def test_concurrent_creation_at_four_lets_exactly_one_in(
    user: SignedIn, client: httpx.AsyncClient
) -> None:
    await fill_to(client, user, 4)
    # A few rounds: one lost race is enough to show the limit is not enforced under concurrency.
    for _ in range(4):
        answers = await asyncio.gather(*(create(client, user.headers) for _ in range(3)))
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [201, 409, 409], [answer.text for answer in answers]
        assert {answer.json()["code"] for answer in answers if answer.status_code == 409} == {"profile_limit"}
        assert len(await profiles_of(client, user.headers)) == 5
        winner = next(answer.json()["id"] for answer in answers if answer.status_code == 201)
        assert (await client.delete(f"{PROFILES}/{winner}", headers=user.headers)).status_code == 204


async def test_names_are_unique_per_account_ignoring_case(
    user: SignedIn, client: httpx.AsyncClient, database_url: str
) -> None:
    alex = await made(client, user.headers, name="Alex")
    clash = await create(client, user.headers, name=" ALEX ")
    assert clash.status_code == 409 and clash.json()["code"] == "profile_name_taken"

    other = await made(client, user.headers, name="Robin")
    renamed = await client.patch(f"{PROFILES}/{other['id']}", json={"name": "alex"}, headers=user.headers)
    assert renamed.status_code == 409 and renamed.json()["code"] == "profile_name_taken"
    # Renaming a profile to its own name in another case is fine.
    recased = await client.patch(f"{PROFILES}/{alex['id']}", json={"name": "ALEX"}, headers=user.headers)
    assert recased.status_code == 200 and recased.json()["name"] == "ALEX"

    # Another account may use the same name.
    stranger = await signed_in_user(database_url)
    await made(client, stranger.headers, name="Alex")


async def test_kids_profiles_are_capped_at_seven_plus(user: SignedIn, client: httpx.AsyncClient) -> None:
    kid = await made(client, user.headers, is_kids=True, maturity_level="18+")
    assert kid["is_kids"] is True and kid["maturity_level"] == "7+"
    assert (await made(client, user.headers, is_kids=True))["maturity_level"] == "7+"
    little = await made(client, user.headers, is_kids=True, maturity_level="all")
    assert little["maturity_level"] == "all"

    raised = await client.patch(
        f"{PROFILES}/{kid['id']}", json={"maturity_level": "16+"}, headers=user.headers
    )
    assert raised.status_code == 200 and raised.json()["maturity_level"] == "7+"

    teen = await made(client, user.headers, maturity_level="16+")
    assert teen["maturity_level"] == "16+"
    to_kids = await client.patch(f"{PROFILES}/{teen['id']}", json={"is_kids": True}, headers=user.headers)
    assert to_kids.json()["maturity_level"] == "7+"
    grown = await client.patch(
        f"{PROFILES}/{teen['id']}", json={"is_kids": False, "maturity_level": "18+"}, headers=user.headers
    )
    assert grown.json()["is_kids"] is False and grown.json()["maturity_level"] == "18+"


@pytest.mark.parametrize(
    "fields",
    [
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 51},
        {"name": "tab\there"},
        {"name": "ok", "language": "english please"},
        {"name": "ok", "maturity_level": "PG-13"},
        {"name": "ok", "unknown": 1},
    ],
)
async def test_invalid_fields_are_422(
    fields: dict[str, Any], user: SignedIn, client: httpx.AsyncClient
) -> None:
    response = await client.post(PROFILES, json=fields, headers=user.headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed"


async def test_patch_refuses_nulls_and_changes_only_what_was_sent(
    user: SignedIn, client: httpx.AsyncClient
) -> None:
    profile = await made(client, user.headers, language="fr", autoplay_next=False)
    nulled = await client.patch(f"{PROFILES}/{profile['id']}", json={"name": None}, headers=user.headers)
    assert nulled.status_code == 422
    changed = await client.patch(
        f"{PROFILES}/{profile['id']}", json={"autoplay_previews": False}, headers=user.headers
    )
    assert changed.status_code == 200
    body = changed.json()
    assert (body["language"], body["autoplay_next"], body["autoplay_previews"]) == ("fr", False, False)
    assert body["name"] == profile["name"]


async def test_profiles_of_other_accounts_are_invisible(
    user: SignedIn, client: httpx.AsyncClient, database_url: str
) -> None:
    mine = await made(client, user.headers)
    stranger = await signed_in_user(database_url)
    for method, path, body in [
        ("GET", "", None),
        ("PATCH", "", {"name": "taken over"}),
        ("DELETE", "", None),
        ("POST", "/select", None),
        ("PUT", "/pin", {"pin": "1234", "password": stranger.password}),
        ("POST", "/avatar/upload", {"content_type": "image/png", "size": 10}),
    ]:
        response = await client.request(
            method, f"{PROFILES}/{mine['id']}{path}", json=body, headers=stranger.headers
        )
        assert response.status_code == 404, (method, path, response.text)
    missing = await client.get(f"{PROFILES}/{uuid.uuid4()}", headers=user.headers)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert (await client.get(PROFILES)).status_code == 401


# --- the active profile ------------------------------------------------------------------------------


async def test_select_issues_a_token_carrying_the_profile(user: SignedIn, client: httpx.AsyncClient) -> None:
    profile = await made(client, user.headers)
    assert claims(user.access_token).get("profile_id") is None

    response = await select(client, user.headers, profile["id"])
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["profile_id"] == profile["id"]
    assert claims(tokens["access_token"])["profile_id"] == profile["id"]
    assert claims(tokens["access_token"])["session_id"] == user.session_id

    headers = auth(tokens["access_token"])
    me = await client.get(ME, headers=headers)
    assert me.status_code == 200 and me.json()["id"] == str(user.user_id)
    active = [item["id"] for item in await profiles_of(client, headers) if item["active"]]
    assert active == [profile["id"]]
    # The old token still names no profile.
    assert not any(item["active"] for item in await profiles_of(client, user.headers))


async def test_profile_pin(user: SignedIn, client: httpx.AsyncClient, database_url: str) -> None:
    profile = await made(client, user.headers)
    path = f"{PROFILES}/{profile['id']}"

    wrong_password = await client.put(
        f"{path}/pin", json={"pin": "4821", "password": "nope"}, headers=user.headers
    )
    assert wrong_password.status_code == 403 and wrong_password.json()["code"] == "reauthentication_failed"
    bad_pin = await client.put(
        f"{path}/pin", json={"pin": "12a4", "password": user.password}, headers=user.headers
    )
    assert bad_pin.status_code == 422
    set_pin = await client.put(
        f"{path}/pin", json={"pin": "4821", "password": user.password}, headers=user.headers
    )
    assert set_pin.status_code == 200 and set_pin.json()["has_pin"] is True
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute("select pin_hash from public.profiles where id = %s", (profile["id"],))
        row = await cursor.fetchone()
    assert row is not None and row[0].startswith("$argon2id$") and "4821" not in row[0]

    no_pin = await select(client, user.headers, profile["id"])
    assert no_pin.status_code == 403 and no_pin.json()["code"] == "pin_required"
    right = await select(client, user.headers, profile["id"], "4821")
    assert right.status_code == 200 and claims(right.json()["access_token"])["profile_id"] == profile["id"]
    assert (await client.get(ME, headers=auth(right.json()["access_token"]))).status_code == 200

    statuses = []
    for _ in range(6):
        statuses.append((await select(client, user.headers, profile["id"], "0000")).status_code)
    # One right PIN spent a try: four wrong ones are refused as wrong, then the budget is gone.
    assert statuses == [403, 403, 403, 403, 429, 429]
    limited = await select(client, user.headers, profile["id"], "4821")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "select details from public.audit_log where subject_id = %s and event = 'profile_pin_failed'",
            (user.user_id,),
        )
        failures = await cursor.fetchall()
    assert len(failures) == 4 and all(row[0]["profile_id"] == profile["id"] for row in failures)

    # The owner resets the PIN with the password, which lifts the limit.
    reset = await client.put(
        f"{path}/pin", json={"pin": "5555", "password": user.password}, headers=user.headers
    )
    assert reset.status_code == 200
    assert (await select(client, user.headers, profile["id"], "4821")).json()["code"] == "invalid_pin"
    assert (await select(client, user.headers, profile["id"], "5555")).status_code == 200

    cleared = await client.put(
        f"{path}/pin", json={"pin": None, "password": user.password}, headers=user.headers
    )
    assert cleared.status_code == 200 and cleared.json()["has_pin"] is False
    assert (await select(client, user.headers, profile["id"])).status_code == 200


async def test_wrong_pins_lock_the_profile_progressively(user: SignedIn, client: httpx.AsyncClient) -> None:
    from shared.infra.ratelimit import account_key
    from shared.infra.redis import get_redis
    from shared.profiles.service import PIN_LOCKOUT

    profile = await made(client, user.headers)
    path = f"{PROFILES}/{profile['id']}"
    await client.put(f"{path}/pin", json={"pin": "1111", "password": user.password}, headers=user.headers)
    for _ in range(5):
        assert (await select(client, user.headers, profile["id"], "2222")).status_code == 403
    store = await get_redis()
    assert await PIN_LOCKOUT.check(store, account_key(profile["id"])) is not None
    # Even with the rate-limit window gone, the lock holds.
    await store.delete(f"rl:profile_pin:{profile['id']}")
    locked = await select(client, user.headers, profile["id"], "1111")
    assert locked.status_code == 429 and locked.json()["code"] == "pin_locked"


async def test_kids_profile_session_cannot_manage_profiles(user: SignedIn, client: httpx.AsyncClient) -> None:
    kid = await made(client, user.headers, is_kids=True)
    grown = await made(client, user.headers)
    await client.put(
        f"{PROFILES}/{grown['id']}/pin", json={"pin": "9876", "password": user.password}, headers=user.headers
    )
    as_kid = auth((await select(client, user.headers, kid["id"])).json()["access_token"])

    assert len(await profiles_of(client, as_kid)) >= 2
    for method, path, body in [
        ("POST", "", {"name": "Sneaky"}),
        ("PATCH", f"/{kid['id']}", {"maturity_level": "18+", "is_kids": False}),
        ("DELETE", f"/{grown['id']}", None),
        ("PUT", f"/{grown['id']}/pin", {"pin": None, "password": user.password}),
        ("POST", f"/{kid['id']}/avatar/upload", {"content_type": "image/png", "size": 10}),
    ]:
        response = await client.request(method, f"{PROFILES}{path}", json=body, headers=as_kid)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["code"] == "kids_profile_restricted"
    # Switching to the grown-up profile needs its PIN.
    assert (await select(client, as_kid, grown["id"])).json()["code"] == "pin_required"
    assert (await select(client, as_kid, grown["id"], "9876")).status_code == 200


# --- deleting ----------------------------------------------------------------------------------------


async def test_delete_keeps_the_last_profile(user: SignedIn, client: httpx.AsyncClient) -> None:
    listed = await fill_to(client, user, 2)
    first = await client.delete(f"{PROFILES}/{listed[0]['id']}", headers=user.headers)
    assert first.status_code == 204
    last = await client.delete(f"{PROFILES}/{listed[1]['id']}", headers=user.headers)
    assert last.status_code == 409 and last.json()["code"] == "last_profile"
    assert [item["id"] for item in await profiles_of(client, user.headers)] == [listed[1]["id"]]


async def test_deleting_the_active_profile_clears_it_from_the_session(
    user: SignedIn, client: httpx.AsyncClient, database_url: str
) -> None:
    await fill_to(client, user, 1)
    doomed = await made(client, user.headers)
    tokens = (await select(client, user.headers, doomed["id"])).json()
    headers = auth(tokens["access_token"])
    assert (await client.delete(f"{PROFILES}/{doomed['id']}", headers=headers)).status_code == 204
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "select profile_id from public.auth_sessions where id = %s", (uuid.UUID(user.session_id),)
        )
        row = await cursor.fetchone()
    assert row == (None,)
    assert (await client.get(ME, headers=headers)).status_code == 200
    assert not any(item["active"] for item in await profiles_of(client, headers))


# --- the service contract ----------------------------------------------------------------------------


async def test_service_contract(user: SignedIn, client: httpx.AsyncClient, database_url: str) -> None:
    from shared.http.client_meta import ClientMeta
    from shared.profiles import service
    from shared.settings import get_settings

    locked = await made(client, user.headers)
    await client.put(
        f"{PROFILES}/{locked['id']}/pin",
        json={"pin": "1357", "password": user.password},
        headers=user.headers,
    )
    stranger = await signed_in_user(database_url)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        listed = await service.list_profiles(conn, user_id=user.user_id)
        assert listed and all("pin_hash" not in item for item in listed)
        assert {str(item["id"]): item["has_pin"] for item in listed}[locked["id"]] is True

        one = await service.get_profile(conn, user_id=user.user_id, profile_id=uuid.UUID(locked["id"]))
        assert one["name"] == locked["name"] and one["has_pin"] is True and "pin_hash" not in one
        with pytest.raises(NotFound):
            await service.get_profile(conn, user_id=stranger.user_id, profile_id=uuid.UUID(locked["id"]))

        # Idempotent: an account that has profiles gets its first one back, nothing new.
        before = len(listed)
        again = await service.create_default_profile(conn, user_id=user.user_id, name="Whoever")
        assert again["id"] == listed[0]["id"]
        assert len(await service.list_profiles(conn, user_id=user.user_id)) == before

        with pytest.raises(BadRequest) as refused:
            await service.select_profile(
                conn,
                settings=get_settings(),
                user_id=user.user_id,
                session_id=None,
                profile_id=uuid.UUID(locked["id"]),
                pin=None,
                meta=ClientMeta(ip=None, user_agent=None),
            )
        assert refused.value.code == "session_required"


async def test_default_profile_for_a_new_account(database_url: str) -> None:
    from shared.profiles import service

    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "insert into public.users (email) values (%s) returning id",
            (f"bare-{uuid.uuid4().hex}@example.com",),
        )
        row = await cursor.fetchone()
        assert row is not None
        profile = await service.create_default_profile(conn, user_id=row[0], name="\t\n")
        assert (
            profile["name"] == "Profile"
            and profile["maturity_level"] == "18+"
            and profile["has_pin"] is False
        )
        named = await service.create_default_profile(conn, user_id=row[0], name="Someone else")
        assert named["id"] == profile["id"]
        await conn.rollback()


def test_openapi_documents_the_profile_endpoints() -> None:
    from api.users import app

    paths = app.openapi()["paths"]
    base = "/api/v1/users/me/profiles"
    expected = {
        base: {"get", "post"},
        base + "/{profile_id}": {"get", "patch", "delete"},
        base + "/{profile_id}/select": {"post"},
        base + "/{profile_id}/pin": {"put"},
        base + "/{profile_id}/avatar/upload": {"post"},
        base + "/{profile_id}/avatar": {"put", "delete"},
    }
    for path, methods in expected.items():
        assert set(paths[path]) >= methods, path
        for method in methods:
            operation = paths[path][method]
            assert operation["summary"] and operation["tags"] == ["users"]
            assert "401" in operation["responses"], (path, method)
    create_errors = paths[base]["post"]["responses"]["409"]["description"]
    assert "profile_limit" in create_errors and "profile_name_taken" in create_errors
    select_errors = paths[base + "/{profile_id}/select"]["post"]["responses"]
    assert "invalid_pin" in select_errors["403"]["description"] and "429" in select_errors
