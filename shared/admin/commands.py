"""User administration from the command line (`cinema users ...`): the operator is trusted, no HTTP.

Each command runs in its own transaction and raises an AppError (with `detail`) on a refusal.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from shared.admin import repository, service
from shared.errors import Conflict, NotFound, ValidationFailed


@asynccontextmanager
async def _transaction() -> AsyncIterator[Any]:
    from shared.infra.db import get_pool

    pool = await get_pool()
    async with pool.connection() as conn, conn.transaction():
        yield conn


async def _user_id(conn: Any, email: str) -> uuid.UUID:
    user_id = await repository.user_id_by_email(conn, email)
    if user_id is None:
        raise NotFound(f"No account has the address {email}.", code="user_not_found")
    return user_id


async def create_user(*, email: str, password: str, roles: list[str]) -> uuid.UUID:
    """Create a verified account with these roles (and its default profile); returns its id."""
    from shared.accounts import passwords
    from shared.audit import service as audit

    email = email.strip()
    if "@" not in email or not 3 <= len(email) <= 254:
        raise ValidationFailed(f"{email!r} is not an email address.", code="invalid_email")
    granted = service.canonical_roles(roles)
    passwords.check_password(password, email=email)
    password_hash = await passwords.hash_password_async(password)
    async with _transaction() as conn:
        user_id = await repository.insert_verified_user(
            conn, email=email, password_hash=password_hash, roles=granted
        )
        if user_id is None:
            raise Conflict(f"An account with the address {email} already exists.", code="email_taken")
        await audit.record(conn, event="signup", subject_id=user_id, source="cli", roles=granted)
        await _create_default_profile(conn, user_id=user_id, email=email)
    return user_id


async def _create_default_profile(conn: Any, *, user_id: uuid.UUID, email: str) -> None:
    """Every account starts with one profile, named like sign-up names it."""
    try:
        from shared.profiles.service import create_default_profile
    except ImportError:  # the profiles domain is optional for this command
        return
    await create_default_profile(conn, user_id=user_id, name=email.split("@")[0][:50])


async def grant_roles(*, email: str, roles: list[str]) -> list[str]:
    """Add roles to the account (keeping the ones it has); returns its roles afterwards."""
    from shared.settings import get_settings

    async with _transaction() as conn:
        user_id = await _user_id(conn, email)
        current = (await service.get_user(conn, user_id=user_id)).roles
        _, after = await service.change_roles(
            conn, settings=get_settings(), actor=None, user_id=user_id, roles=[*current, *roles]
        )
    return after


async def set_status(*, email: str, status: str, reason: str | None = None) -> bool:
    """Disable (with a reason; every session ends) or re-enable the account; False when already so."""
    from shared.settings import get_settings

    if status not in ("active", "disabled"):
        raise ValidationFailed(
            f"Unknown status {status!r}: use 'active' or 'disabled'.", code="invalid_status"
        )
    if status == "disabled" and not reason:
        raise ValidationFailed("Say why the account is disabled (--reason).", code="reason_required")
    async with _transaction() as conn:
        user_id = await _user_id(conn, email)
        if status == "active":
            return await service.enable_account(conn, actor=None, user_id=user_id)
        assert reason is not None
        return await service.disable_account(
            conn, settings=get_settings(), actor=None, user_id=user_id, reason=reason
        )
