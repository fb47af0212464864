"""Account flows: sign-up, verification, login (with the 2FA step), reset, and changes by the owner."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from typing import Any

from shared.accounts import passwords, repository
from shared.accounts.schemas import MfaChallenge, TokenResponse, UserRead
from shared.accounts.sessions import end_all_sessions, start_session
from shared.accounts.tokens import new_opaque_token, token_hash
from shared.audit import service as audit
from shared.errors import AppError, BadRequest, Conflict, Forbidden, Unauthenticated
from shared.http.client_meta import ClientMeta
from shared.infra.redis import get_redis
from shared.mail.service import queue_mail
from shared.settings import Settings

_MFA_CHALLENGE = "auth:mfa-challenge:{}"
_MFA_CHALLENGE_SECONDS = 300
_MFA_MAX_ATTEMPTS = 5


class InvalidCredentials(Unauthenticated):
    """Wrong email or password: one answer for both, so the response never tells which."""

    def __init__(self) -> None:
        super().__init__("The email or password is incorrect.", code="invalid_credentials")


class EmailNotVerified(AppError):
    """Right password, but the address is not confirmed yet."""

    status = 403
    code = "email_not_verified"
    title = "Email not verified"


class AccountDisabled(AppError):
    """An administrator disabled the account."""

    status = 403
    code = "account_disabled"
    title = "Account disabled"


class AccountLocked(AppError):
    """Too many failed sign-ins; the lock lifts by itself or by resetting the password."""

    status = 429
    code = "account_locked"
    title = "Too many failed sign-ins"


def link(settings: Settings, path: str, token: str) -> str:
    """An emailed link, always on the configured public origin (never the request's Host header)."""
    return f"{str(settings.public_base_url).rstrip('/')}{path}?token={token}"


def email_key(email: str) -> str:
    """A stable, non-reversible key for per-address locks, identical for known and unknown addresses."""
    from shared.infra.ratelimit import account_key

    return account_key(email)


# Sign-up and verification.


async def signup(
    conn: Any, *, settings: Settings, email: str, password: str, display_name: str | None, meta: ClientMeta
) -> None:
    """Create an account and send the verification link; an existing address gets a notice instead."""
    passwords.check_password(password, email=email, name=display_name)
    # Hash first in every case so both answers cost the same.
    password_hash = await passwords.hash_password_async(password)
    user = await repository.insert_user(
        conn, email=email, password_hash=password_hash, display_name=display_name, verified=False
    )
    if user is None:
        existing = await repository.user_by_email(conn, email)
        if existing is not None:
            await queue_mail(
                conn,
                to=existing["email"],
                template="already_registered",
                user_id=existing["id"],
                data={
                    "login_link": f"{str(settings.public_base_url).rstrip('/')}/login",
                    "reset_link": f"{str(settings.public_base_url).rstrip('/')}/forgot-password",
                },
            )
        return
    await audit.record(conn, event="signup", subject_id=user["id"], ip=meta.ip, user_agent=meta.user_agent)
    from shared.profiles import service as profiles

    # Every account starts with one profile, named after the person (they can add up to four more).
    await profiles.create_default_profile(
        conn, user_id=user["id"], name=(display_name or email.split("@")[0])[:50]
    )
    await _send_verification(conn, settings=settings, user=user)


async def _send_verification(conn: Any, *, settings: Settings, user: dict[str, Any]) -> None:
    token, digest = new_opaque_token()
    await repository.insert_email_token(
        conn,
        user_id=user["id"],
        purpose="verify_email",
        email=user["email"],
        token_hash=digest,
        ttl_minutes=settings.email_token_ttl_minutes,
    )
    await queue_mail(
        conn,
        to=user["email"],
        template="verify_email",
        user_id=user["id"],
        data={"link": link(settings, "/verify-email", token)},
    )


async def resend_verification(conn: Any, *, settings: Settings, email: str) -> None:
    """Send a fresh verification link if the address has an unverified account (silently otherwise)."""
    user = await repository.user_by_email(conn, email)
    if user is not None and user["email_verified_at"] is None and user["status"] == "active":
        await _send_verification(conn, settings=settings, user=user)


class InvalidLinkToken(BadRequest):
    """A link token that is unknown, used or expired."""

    def __init__(self) -> None:
        super().__init__(
            "This link is invalid, was already used or has expired; ask for a new one.", code="invalid_token"
        )


async def verify_email(conn: Any, *, token: str, meta: ClientMeta) -> UserRead:
    """Confirm the address from the emailed link (single use, expiring)."""
    row = await repository.spend_email_token(conn, token_hash=token_hash(token), purpose="verify_email")
    if row is None:
        raise InvalidLinkToken()
    user = await repository.user_by_id(conn, row["user_id"], for_update=True)
    if user is None or user["email"].lower() != row["email"].lower():
        raise InvalidLinkToken()  # the address changed since the link was sent
    await repository.mark_verified(conn, user["id"])
    await audit.record(
        conn, event="email_verified", subject_id=user["id"], ip=meta.ip, user_agent=meta.user_agent
    )
    fresh = await repository.user_by_id(conn, user["id"])
    assert fresh is not None
    return UserRead.from_row(fresh)


# Login.


async def login(
    conn: Any, *, settings: Settings, email: str, password: str, meta: ClientMeta
) -> TokenResponse | MfaChallenge:
    """Check the password (same cost for unknown addresses), then open a session or ask for the 2FA code."""
    from shared.infra import ratelimit

    store = await get_redis()
    key = email_key(email)
    locked = await ratelimit.LOGIN_LOCKOUT.check(store, key)
    if locked:
        raise AccountLocked(
            f"Too many failed sign-ins. Try again in {_minutes(locked)}, "
            "or reset your password to unlock now.",
            headers={"Retry-After": str(locked)},
        )
    user = await repository.user_by_email(conn, email)
    if user is None or user["password_hash"] is None:
        await passwords.burn_verify_async(password)
        await _failed_login(settings=settings, store=store, key=key, user=user, email=email, meta=meta)
        raise InvalidCredentials()
    if not await passwords.verify_password_async(user["password_hash"], password):
        await _failed_login(settings=settings, store=store, key=key, user=user, email=email, meta=meta)
        raise InvalidCredentials()
    await ratelimit.LOGIN_LOCKOUT.clear(store, key)
    if passwords.needs_rehash(user["password_hash"]):
        new_hash = await passwords.hash_password_async(password)
        await repository.set_password(conn, user["id"], new_hash, changed=False)
    _check_can_sign_in(user)
    return await complete_first_factor(conn, settings=settings, user=user, methods=["password"], meta=meta)


def _check_can_sign_in(user: dict[str, Any]) -> None:
    if user["status"] != "active":
        raise AccountDisabled("This account has been disabled. Contact support.")
    if user["email_verified_at"] is None:
        raise EmailNotVerified(
            "Confirm your email address first: we sent you a link (you can ask for a new one)."
        )


def _minutes(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


# Anyone can lock any account, so the unlock mail goes out at most once an hour per account: otherwise
# each lockout would mail the owner again (a mail bomb that also escapes the reset-request limit).
_UNLOCK_MAIL = "auth:unlock-mail:{}"
_UNLOCK_MAIL_SECONDS = 3600


async def _failed_login(
    *,
    settings: Settings,
    store: Any,
    key: str,
    user: dict[str, Any] | None,
    email: str,
    meta: ClientMeta,
) -> None:
    from shared.infra import ratelimit
    from shared.infra.db import write_despite_rollback

    lock_seconds = await ratelimit.LOGIN_LOCKOUT.record_failure(store, key)
    user_id = user["id"] if user else None
    # Kept despite the rollback: this request ends in a 401 and its transaction rolls back.
    await audit.record_standalone(
        event="login_failed",
        subject_id=user_id,
        ip=meta.ip,
        user_agent=meta.user_agent,
        email_key=key,
    )
    if lock_seconds and user is not None:
        locked = user
        send_mail = await store.set(_UNLOCK_MAIL.format(key), "1", ex=_UNLOCK_MAIL_SECONDS, nx=True)

        async def write(conn: Any) -> None:
            await audit.record(
                conn, event="login_locked", subject_id=locked["id"], ip=meta.ip, seconds=lock_seconds
            )
            if send_mail:
                # The owner can lift the lock at once: the reset link in this email unlocks on use. A reset
                # link the owner asked for earlier keeps working: a lockout must not cancel it.
                await _send_reset(
                    conn, settings=settings, user=locked, template="account_locked", keep_earlier=True
                )

        await write_despite_rollback(write)


async def complete_first_factor(
    conn: Any, *, settings: Settings, user: dict[str, Any], methods: list[str], meta: ClientMeta
) -> TokenResponse | MfaChallenge:
    """After a password or social login: a session, or a 2FA challenge when the account has a factor."""
    from shared.mfa import service as mfa

    if await mfa.is_enabled(conn, user_id=user["id"]):
        token = secrets.token_urlsafe(32)
        record = json.dumps({"user_id": str(user["id"]), "methods": methods, "attempts": 0})
        store = await get_redis()
        await store.set(_MFA_CHALLENGE.format(_digest(token)), record, ex=_MFA_CHALLENGE_SECONDS)
        return MfaChallenge(
            mfa_token=token, methods=["totp", "backup_code"], expires_in=_MFA_CHALLENGE_SECONDS
        )
    return await start_session(conn, settings=settings, user=user, methods=methods, aal="aal1", meta=meta)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class InvalidMfaChallenge(Unauthenticated):
    """The 2FA step's token is unknown or expired."""

    def __init__(self) -> None:
        super().__init__(
            "The sign-in attempt expired; enter your email and password again.", code="mfa_expired"
        )


async def login_second_factor(
    conn: Any, *, settings: Settings, mfa_token: str, code: str, meta: ClientMeta
) -> TokenResponse:
    """Finish a login with a TOTP or backup code; a code works once, and attempts are limited."""
    from shared.mfa import service as mfa

    store = await get_redis()
    key = _MFA_CHALLENGE.format(_digest(mfa_token))
    raw = await store.get(key)
    if raw is None:
        raise InvalidMfaChallenge()
    record = json.loads(raw)
    user_id = uuid.UUID(record["user_id"])
    attempts = await store.incr(key + ":attempts")
    if attempts == 1:
        await store.expire(key + ":attempts", _MFA_CHALLENGE_SECONDS)
    if attempts > _MFA_MAX_ATTEMPTS:
        await store.delete(key)
        raise InvalidMfaChallenge()
    from shared.accounts import limits

    await limits.totp(ip=meta.ip, user_id=user_id)
    method = await mfa.verify_second_factor(
        conn, user_id=user_id, code=code, ip=meta.ip, user_agent=meta.user_agent
    )
    if method is None:
        raise Unauthenticated(
            "That code is not valid. Check your authenticator app and try again.", code="invalid_mfa_code"
        )
    # Claim the challenge atomically: of two requests racing on one mfa_token (say a TOTP code and a
    # backup code) only the one whose DEL removed it signs in; the other's transaction rolls back.
    if await store.delete(key) == 0:
        raise InvalidMfaChallenge()
    await store.delete(key + ":attempts")
    user = await repository.user_by_id(conn, user_id)
    if user is None:
        raise InvalidMfaChallenge()
    _check_can_sign_in(user)
    return await start_session(
        conn, settings=settings, user=user, methods=[*record["methods"], method], aal="aal2", meta=meta
    )


# Password reset.


async def _send_reset(
    conn: Any, *, settings: Settings, user: dict[str, Any], template: str, keep_earlier: bool = False
) -> None:
    token, digest = new_opaque_token()
    await repository.insert_email_token(
        conn,
        user_id=user["id"],
        purpose="reset_password",
        email=user["email"],
        token_hash=digest,
        ttl_minutes=settings.reset_token_ttl_minutes,
        keep_earlier=keep_earlier,
    )
    await queue_mail(
        conn,
        to=user["email"],
        template=template,
        user_id=user["id"],
        data={
            "link": link(settings, "/reset-password", token),
            "reset_link": link(settings, "/reset-password", token),
        },
    )


async def request_password_reset(conn: Any, *, settings: Settings, email: str, meta: ClientMeta) -> None:
    """Email a reset link when the address has an account; the answer is the same when it has none."""
    user = await repository.user_by_email(conn, email)
    if user is None or user["status"] != "active":
        return
    await _send_reset(conn, settings=settings, user=user, template="reset_password")
    await audit.record(
        conn, event="password_reset_requested", subject_id=user["id"], ip=meta.ip, user_agent=meta.user_agent
    )


async def reset_password(
    conn: Any, *, settings: Settings, token: str, password: str, meta: ClientMeta
) -> None:
    """Set a new password from the link; every session ends. It never signs in: 2FA still applies at login."""
    from shared.infra import ratelimit

    row = await repository.spend_email_token(conn, token_hash=token_hash(token), purpose="reset_password")
    if row is None:
        raise InvalidLinkToken()
    user = await repository.user_by_id(conn, row["user_id"], for_update=True)
    if user is None or user["email"].lower() != row["email"].lower():
        raise InvalidLinkToken()
    passwords.check_password(password, email=user["email"], name=user["display_name"])
    # Any other reset link still out there (e.g. from a lockout mail) has served its purpose.
    await repository.spend_email_tokens(conn, user_id=user["id"], purpose="reset_password")
    await repository.set_password(
        conn, user["id"], await passwords.hash_password_async(password), changed=True
    )
    if user["email_verified_at"] is None:
        # Identities attached while nobody had proved the address (a Supabase user's account is created
        # from an email claim Supabase never confirmed) may belong to whoever squatted it: the owner,
        # proven by this link, starts without them and can link their own again.
        for provider in await repository.unlink_all_identities(conn, user["id"]):
            await audit.record(
                conn,
                event="identity_unlinked",
                subject_id=user["id"],
                ip=meta.ip,
                user_agent=meta.user_agent,
                provider=provider,
            )
    # The link proved the address too.
    await repository.mark_verified(conn, user["id"])
    # Also ends Supabase Auth tokens (and the mapping cached for them) issued before now.
    await end_all_sessions(conn, settings=settings, user_id=user["id"], reason="password_reset")
    await ratelimit.LOGIN_LOCKOUT.clear(await get_redis(), email_key(user["email"]))
    await audit.record(
        conn, event="password_reset", subject_id=user["id"], ip=meta.ip, user_agent=meta.user_agent
    )
    await queue_mail(conn, to=user["email"], template="password_changed", user_id=user["id"], data={})


# Changes by the signed-in owner.


async def get_user(conn: Any, *, user_id: uuid.UUID, for_update: bool = False) -> dict[str, Any]:
    """The caller's account row (401 if it no longer exists)."""
    user = await repository.user_by_id(conn, user_id, for_update=for_update)
    if user is None:
        raise Unauthenticated("This account no longer exists.", code="invalid_token")
    return user


async def update_account(conn: Any, *, user_id: uuid.UUID, changes: dict[str, Any]) -> UserRead:
    """Apply the owner's edits to plain account fields (only those present in `changes`)."""
    await get_user(conn, user_id=user_id, for_update=True)
    if "display_name" in changes:
        await repository.set_display_name(conn, user_id, changes["display_name"])
    return UserRead.from_row(await get_user(conn, user_id=user_id))


async def reauthenticate(
    conn: Any, *, user: dict[str, Any], password: str | None, code: str | None, meta: ClientMeta
) -> None:
    """A dangerous action needs the password (when the account has one) and a 2FA code (when enabled)."""
    from shared.mfa import service as mfa

    if user["password_hash"] is not None and not (
        password and await passwords.verify_password_async(user["password_hash"], password)
    ):
        raise Forbidden("The current password is incorrect.", code="reauthentication_failed")
    if await mfa.is_enabled(conn, user_id=user["id"]):
        if not code:
            raise Forbidden(
                "Enter a code from your authenticator app (or a backup code).", code="mfa_required"
            )
        method = await mfa.verify_second_factor(
            conn, user_id=user["id"], code=code, ip=meta.ip, user_agent=meta.user_agent
        )
        if method is None:
            raise Forbidden("That code is not valid.", code="invalid_mfa_code")
    elif user["password_hash"] is None:
        raise Forbidden(
            "This account signs in through a social provider only: set a password or enable 2FA first.",
            code="reauthentication_unavailable",
        )


async def change_password(
    conn: Any,
    *,
    settings: Settings,
    user_id: uuid.UUID,
    session_id: uuid.UUID | None,
    current_password: str | None,
    new_password: str,
    meta: ClientMeta,
) -> int:
    """Replace the password (proving the current one); every other session is signed out."""
    user = await get_user(conn, user_id=user_id, for_update=True)
    if user["password_hash"] is None:
        # Nothing to prove here, so a stolen access token could plant a password that outlives the
        # session; the emailed reset link proves the owner instead.
        raise Forbidden(
            'This account has no password yet: use "Forgot password" to set one by email.',
            code="password_not_set",
        )
    if not (
        current_password and await passwords.verify_password_async(user["password_hash"], current_password)
    ):
        raise Forbidden("The current password is incorrect.", code="reauthentication_failed")
    passwords.check_password(new_password, email=user["email"], name=user["display_name"])
    await repository.set_password(
        conn, user_id, await passwords.hash_password_async(new_password), changed=True
    )
    ended = await end_all_sessions(
        conn, settings=settings, user_id=user_id, reason="password_changed", keep=session_id
    )
    await audit.record(
        conn, event="password_changed", subject_id=user_id, ip=meta.ip, user_agent=meta.user_agent
    )
    await queue_mail(conn, to=user["email"], template="password_changed", user_id=user_id, data={})
    return ended


async def request_email_change(
    conn: Any, *, settings: Settings, user_id: uuid.UUID, new_email: str, password: str, meta: ClientMeta
) -> None:
    """Send a confirmation link to the new address and a notice to the current one."""
    user = await get_user(conn, user_id=user_id)
    if user["password_hash"] is None:
        raise Forbidden(
            'This account has no password yet: use "Forgot password" to set one by email first.',
            code="password_not_set",
        )
    if not await passwords.verify_password_async(user["password_hash"], password):
        raise Forbidden("The current password is incorrect.", code="reauthentication_failed")
    if new_email.lower() == user["email"].lower():
        raise BadRequest("That is already your email address.", code="email_unchanged")
    token, digest = new_opaque_token()
    await repository.insert_email_token(
        conn,
        user_id=user_id,
        purpose="change_email",
        email=new_email,
        token_hash=digest,
        ttl_minutes=settings.email_token_ttl_minutes,
    )
    # The new address learns nothing about whether it is taken: that is checked when the link is used.
    await queue_mail(
        conn,
        to=new_email,
        template="email_change_verify",
        user_id=user_id,
        data={"link": link(settings, "/confirm-email", token), "new_email": new_email},
    )
    await queue_mail(
        conn, to=user["email"], template="email_change_notice", user_id=user_id, data={"new_email": new_email}
    )
    await audit.record(
        conn, event="email_change_requested", subject_id=user_id, ip=meta.ip, user_agent=meta.user_agent
    )


async def confirm_email_change(conn: Any, *, settings: Settings, token: str, meta: ClientMeta) -> UserRead:
    """Switch the account to the new address from its confirmation link."""
    row = await repository.spend_email_token(conn, token_hash=token_hash(token), purpose="change_email")
    if row is None:
        raise InvalidLinkToken()
    user = await get_user(conn, user_id=row["user_id"], for_update=True)
    old_email = user["email"]
    if not await repository.set_email(conn, user["id"], row["email"]):
        raise Conflict("Another account uses that address now.", code="email_taken")
    await audit.record(
        conn,
        event="email_changed",
        subject_id=user["id"],
        ip=meta.ip,
        user_agent=meta.user_agent,
        old_email_key=email_key(old_email),
    )
    fresh = await get_user(conn, user_id=user["id"])
    return UserRead.from_row(fresh)


async def delete_account(
    conn: Any,
    *,
    settings: Settings,
    user_id: uuid.UUID,
    password: str | None,
    code: str | None,
    meta: ClientMeta,
) -> None:
    """Erase the account: sessions revoked, personal data deleted, audit entries kept without it."""
    user = await get_user(conn, user_id=user_id, for_update=True)
    await reauthenticate(conn, user=user, password=password, code=code, meta=meta)
    from shared.subscriptions import service as subscriptions

    await subscriptions.refuse_while_billing(conn, user_id=user_id)
    await end_all_sessions(conn, settings=settings, user_id=user_id, reason="account_deleted")
    email = user["email"]
    await audit.record(conn, event="account_deleted", subject_id=user_id, ip=None)
    await audit.forget(conn, user_id=user_id)
    from shared.profiles import service as profiles

    # Avatar images live outside the database (storage or Cloudinary): the cascade would orphan them.
    # They are deleted once this transaction commits, never before (a failed commit keeps the account).
    await profiles.delete_user_avatars(conn, settings=settings, user_id=user_id)
    await repository.delete_user(conn, user_id)
    # Sent after the row is gone, so the message is not tied to (and deleted with) the account.
    await queue_mail(conn, to=email, template="account_deleted", data={})


async def export_data(conn: Any, *, user_id: uuid.UUID, meta: ClientMeta) -> dict[str, Any]:
    """Everything we hold about the account, as JSON (GDPR art. 15/20)."""
    from shared.accounts import export

    user = await get_user(conn, user_id=user_id)
    await audit.record(
        conn, event="data_exported", subject_id=user_id, ip=meta.ip, user_agent=meta.user_agent
    )
    return await export.collect(conn, user=user)


# A stolen access token must not be enough to add a way into the account (a linked provider, an
# authenticator the thief controls): those need a sign-in from the last few minutes.
RECENT_SIGN_IN_SECONDS = 600


async def require_recent_sign_in(conn: Any, *, session_id: str | None) -> None:
    """Refuse unless the caller's session signed in within RECENT_SIGN_IN_SECONDS."""
    session = await repository.session_by_id(conn, uuid.UUID(session_id)) if session_id else None
    if session is None or time.time() - session["created_at"].timestamp() > RECENT_SIGN_IN_SECONDS:
        raise Forbidden(
            "For your security, sign in again (within the last 10 minutes) before making this change.",
            code="recent_sign_in_required",
        )
