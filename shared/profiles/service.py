"""Viewer profiles: up to five per account, maturity levels, the profile PIN and the active-profile switch."""

from __future__ import annotations

import uuid
from typing import Any

from shared.accounts.schemas import TokenResponse
from shared.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthenticated
from shared.http.client_meta import ClientMeta
from shared.infra import ratelimit
from shared.infra.ratelimit import Limit, Lockout, account_key
from shared.profiles import avatars, repository
from shared.profiles.schemas import (
    ADULT_DEFAULT_MATURITY,
    KIDS_MAX_MATURITY,
    MAX_PROFILES,
    ProfileCreate,
    ProfileRead,
    ProfileUpdate,
    capped_maturity,
    clean_name,
)
from shared.settings import Settings

# A 4-digit PIN has only 10,000 values and argon2 does not change that: hashing keeps the PIN out of a
# database leak in clear, but against someone guessing through the API the real defence is this budget
# per profile (atomic, charged before the PIN is checked, so parallel guesses cannot overshoot it) and
# the progressive lock behind it (1 min doubling to 1 h after 5 wrong PINs), which together hold a
# guesser to a few dozen tries a day. The account owner resets both by setting the PIN again.
_PIN_ATTEMPTS = Limit(5, 900)
PIN_LOCKOUT = Lockout("profile_pin")
# Setting a PIN checks the account password: the same kind of budget as a login.
_PIN_CHANGES = Limit(10, 900)


def _pin_rule_key(profile_id: uuid.UUID) -> str:
    return f"profile_pin:{profile_id}"


def public(row: dict[str, Any]) -> dict[str, Any]:
    """A profile row without its PIN hash (whether there is a PIN is `has_pin`)."""
    shown = {key: value for key, value in row.items() if key != "pin_hash"}
    shown["has_pin"] = row.get("pin_hash") is not None
    return shown


async def _lock_account(conn: Any, user_id: uuid.UUID) -> None:
    # Every change to an account's profiles takes the account row lock first, so counts and name checks
    # cannot race (two creations at 4 profiles: the second waits, then sees 5).
    if not await repository.lock_user(conn, user_id):
        raise Unauthenticated("This account no longer exists.", code="invalid_token")


async def _profile(
    conn: Any, user_id: uuid.UUID, profile_id: uuid.UUID, *, for_update: bool = False
) -> dict[str, Any]:
    row = await repository.profile_of(conn, user_id, profile_id, for_update=for_update)
    if row is None:
        raise NotFound("No such profile.")
    return row


async def _check_manager(conn: Any, user_id: uuid.UUID, active_profile_id: uuid.UUID | None) -> None:
    # A session on a kids profile may not manage profiles, or a child could raise its own maturity level
    # or remove a PIN. It can still switch profiles (PIN-locked ones need their PIN).
    if active_profile_id is None:
        return
    active = await repository.profile_of(conn, user_id, active_profile_id)
    if active is not None and active["is_kids"]:
        raise Forbidden("Switch to a grown-up profile to manage profiles.", code="kids_profile_restricted")


async def _check_name_free(
    conn: Any, user_id: uuid.UUID, name: str, *, except_id: uuid.UUID | None = None
) -> None:
    """Names are unique per account ignoring case; checked under the account lock, as the index compares."""
    holder = await repository.name_holder(conn, user_id, name, except_id=except_id)
    if holder is not None:
        raise Conflict(f"There is already a profile called {holder}.", code="profile_name_taken")


async def _insert(conn: Any, user_id: uuid.UUID, fields: dict[str, Any]) -> dict[str, Any]:
    await _check_name_free(conn, user_id, fields["name"])
    return await repository.insert_profile(conn, user_id, fields)


# --- the contract other domains use ------------------------------------------------------------------


async def create_default_profile(conn: Any, *, user_id: uuid.UUID, name: str) -> dict[str, Any]:
    """The account's first profile (at sign-up); returns the existing first one if there is one."""
    await _lock_account(conn, user_id)
    existing = await repository.oldest_profile(conn, user_id)
    if existing is not None:
        return public(existing)
    try:
        cleaned = clean_name(name[:50])
    except ValueError:
        cleaned = "Profile"
    row = await _insert(conn, user_id, {"name": cleaned, "maturity_level": ADULT_DEFAULT_MATURITY})
    return public(row)


async def list_profiles(conn: Any, *, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The account's profiles, oldest first, without PIN hashes (`has_pin` instead)."""
    return [public(row) for row in await repository.list_profiles(conn, user_id)]


async def get_profile(conn: Any, *, user_id: uuid.UUID, profile_id: uuid.UUID) -> dict[str, Any]:
    """One profile of the account; NotFound when it does not exist or is another account's."""
    return public(await _profile(conn, user_id, profile_id))


# --- reading, for the endpoints ----------------------------------------------------------------------


async def to_read(row: dict[str, Any], *, active_profile_id: uuid.UUID | None) -> ProfileRead:
    """The API view of a profile row, with a loadable avatar URL."""
    return ProfileRead(
        id=row["id"],
        name=row["name"],
        avatar_url=await avatars.avatar_url(row),
        language=row["language"],
        maturity_level=row["maturity_level"],
        is_kids=row["is_kids"],
        autoplay_next=row["autoplay_next"],
        autoplay_previews=row["autoplay_previews"],
        has_pin=row.get("pin_hash") is not None or bool(row.get("has_pin")),
        active=row["id"] == active_profile_id,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def read_profiles(
    conn: Any, *, user_id: uuid.UUID, active_profile_id: uuid.UUID | None
) -> list[ProfileRead]:
    """Every profile of the account as the API shows it."""
    rows = await repository.list_profiles(conn, user_id)
    return [await to_read(row, active_profile_id=active_profile_id) for row in rows]


# --- changes by the account owner --------------------------------------------------------------------


async def create_profile(
    conn: Any, *, user_id: uuid.UUID, data: ProfileCreate, active_profile_id: uuid.UUID | None
) -> dict[str, Any]:
    """Add a profile (at most MAX_PROFILES per account, names unique ignoring case)."""
    await _lock_account(conn, user_id)
    await _check_manager(conn, user_id, active_profile_id)
    if await repository.count_profiles(conn, user_id) >= MAX_PROFILES:
        raise Conflict(f"An account can have at most {MAX_PROFILES} profiles.", code="profile_limit")
    default = KIDS_MAX_MATURITY if data.is_kids else ADULT_DEFAULT_MATURITY
    fields = data.model_dump()
    fields["maturity_level"] = capped_maturity(data.maturity_level or default, is_kids=data.is_kids)
    return await _insert(conn, user_id, fields)


async def update_profile(
    conn: Any,
    *,
    user_id: uuid.UUID,
    profile_id: uuid.UUID,
    changes: ProfileUpdate,
    active_profile_id: uuid.UUID | None,
) -> dict[str, Any]:
    """Change a profile's settings; a kids profile stays capped at KIDS_MAX_MATURITY."""
    await _lock_account(conn, user_id)
    await _check_manager(conn, user_id, active_profile_id)
    current = await _profile(conn, user_id, profile_id, for_update=True)
    fields = changes.changes()
    is_kids = fields.get("is_kids", current["is_kids"])
    maturity = capped_maturity(fields.get("maturity_level", current["maturity_level"]), is_kids=is_kids)
    if "maturity_level" in fields or maturity != current["maturity_level"]:
        fields["maturity_level"] = maturity
    if "name" in fields and fields["name"] != current["name"]:
        await _check_name_free(conn, user_id, fields["name"], except_id=profile_id)
    row = await repository.update_profile(conn, profile_id, fields)
    assert row is not None  # locked above
    return row


async def delete_profile(
    conn: Any,
    *,
    settings: Settings,
    user_id: uuid.UUID,
    profile_id: uuid.UUID,
    active_profile_id: uuid.UUID | None,
) -> None:
    """Delete a profile (never the last one); sessions on it keep going with no active profile."""
    await _lock_account(conn, user_id)
    await _check_manager(conn, user_id, active_profile_id)
    await _profile(conn, user_id, profile_id, for_update=True)
    if await repository.count_profiles(conn, user_id) <= 1:
        raise Conflict("An account needs at least one profile.", code="last_profile")
    row = await repository.delete_profile(conn, user_id, profile_id)
    if row is not None:
        from functools import partial

        from shared.infra.db import after_commit

        # After the commit, so a failed one does not leave the profile without its image.
        await after_commit(partial(avatars.discard, settings, key=row["avatar_key"], url=row["avatar_url"]))


async def delete_user_avatars(conn: Any, *, settings: Settings, user_id: uuid.UUID) -> None:
    """Delete the avatar images of every profile once the deletion commits (the rows go with the account)."""
    from functools import partial

    from shared.infra.db import after_commit

    # After the commit: a failed one must not leave a live account without its avatars.
    for row in await repository.list_profiles(conn, user_id):
        await after_commit(partial(avatars.discard, settings, key=row["avatar_key"], url=row["avatar_url"]))


async def profile_for_avatar_change(
    conn: Any, *, user_id: uuid.UUID, profile_id: uuid.UUID, active_profile_id: uuid.UUID | None
) -> dict[str, Any]:
    """The profile row, locked, after checking that this session may change it."""
    await _lock_account(conn, user_id)
    await _check_manager(conn, user_id, active_profile_id)
    return await _profile(conn, user_id, profile_id, for_update=True)


# --- the active profile and its PIN ------------------------------------------------------------------


async def _check_pin(
    profile: dict[str, Any], pin: str | None, *, user_id: uuid.UUID, meta: ClientMeta
) -> None:
    from shared.accounts.passwords import verify_password_async
    from shared.audit import service as audit
    from shared.infra.redis import get_redis

    if pin is None:
        raise Forbidden("This profile is locked: enter its PIN.", code="pin_required")
    store = await get_redis()
    lock_key = account_key(str(profile["id"]))
    await ratelimit.enforce(rules=[_PIN_ATTEMPTS.rule(_pin_rule_key(profile["id"]))], store=store)
    locked = await PIN_LOCKOUT.check(store, lock_key)
    if locked:
        raise ratelimit.too_many_requests(
            locked, detail=f"Too many wrong PINs; try again in {locked} seconds.", code="pin_locked"
        )
    if await verify_password_async(profile["pin_hash"], pin):
        await PIN_LOCKOUT.clear(store, lock_key)
        return
    await PIN_LOCKOUT.record_failure(store, lock_key)
    # Standalone: this request fails and its transaction rolls back, the record must stay.
    await audit.record_standalone(
        event="profile_pin_failed",
        subject_id=user_id,
        ip=meta.ip,
        user_agent=meta.user_agent,
        profile_id=str(profile["id"]),
    )
    raise Forbidden("That PIN is not right.", code="invalid_pin")


async def select_profile(
    conn: Any,
    *,
    settings: Settings,
    user_id: uuid.UUID,
    session_id: str | None,
    profile_id: uuid.UUID,
    pin: str | None,
    meta: ClientMeta,
) -> TokenResponse:
    """Make the profile the session's active one (PIN checked); new tokens carry it as `profile_id`."""
    from shared.accounts.sessions import reissue

    if session_id is None:
        raise BadRequest("Switching profiles needs a session token from this API.", code="session_required")
    profile = await _profile(conn, user_id, profile_id)
    if profile["pin_hash"] is not None:
        await _check_pin(profile, pin, user_id=user_id, meta=meta)
    return await reissue(conn, settings=settings, session_id=uuid.UUID(session_id), profile_id=profile_id)


async def set_pin(
    conn: Any,
    *,
    user_id: uuid.UUID,
    profile_id: uuid.UUID,
    pin: str | None,
    password: str | None,
    code: str | None,
    meta: ClientMeta,
    active_profile_id: uuid.UUID | None,
) -> dict[str, Any]:
    """Set or clear (pin=None) a profile's PIN after re-checking the account password (and 2FA)."""
    from shared.accounts import service as accounts
    from shared.accounts.passwords import hash_password_async
    from shared.infra.redis import get_redis

    await ratelimit.enforce(rules=[_PIN_CHANGES.rule(f"profile_pin_change:{user_id}")])
    await _lock_account(conn, user_id)
    await _check_manager(conn, user_id, active_profile_id)
    await _profile(conn, user_id, profile_id, for_update=True)
    user = await accounts.get_user(conn, user_id=user_id)
    await accounts.reauthenticate(conn, user=user, password=password, code=code, meta=meta)
    pin_hash = await hash_password_async(pin) if pin is not None else None
    row = await repository.update_profile(conn, profile_id, {"pin_hash": pin_hash})
    assert row is not None
    # The owner proved who they are: a profile locked by a child's guessing opens again.
    store = await get_redis()
    await PIN_LOCKOUT.clear(store, account_key(str(profile_id)))
    await store.delete(ratelimit.PREFIX + _pin_rule_key(profile_id))
    return row
