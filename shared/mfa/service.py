"""Two-factor authentication: TOTP enrolment, second-factor checks (each code once), backup codes."""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from typing import Any, Literal

from shared.accounts import service as accounts
from shared.audit import service as audit
from shared.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from shared.http.client_meta import ClientMeta
from shared.infra.redis import get_redis
from shared.mail.service import queue_mail
from shared.mfa import crypto, repository
from shared.mfa.schemas import TotpConfirmed, TotpEnrolment
from shared.settings import Settings, get_settings

logger = logging.getLogger("cinema.mfa")

ISSUER = "Cinema Online"
BACKUP_CODE_COUNT = 10
STEP_SECONDS = 30  # RFC 6238 default, and what every authenticator app uses
# Codes of the previous and the next step are accepted too: phone clocks drift, and people type slowly.
VALID_WINDOW = 1

Method = Literal["totp", "backup_code"]


async def is_enabled(conn: Any, *, user_id: uuid.UUID) -> bool:
    """Whether the account has a confirmed TOTP factor (so sign-in needs a second factor)."""
    return await repository.has_confirmed_factor(conn, user_id)


async def status(conn: Any, *, user_id: uuid.UUID) -> dict[str, Any]:
    """{"enabled", "confirmed_at" (ISO 8601 or None), "backup_codes_remaining"} for the account."""
    row = await repository.status(conn, user_id)
    confirmed_at = row["confirmed_at"]
    return {
        "enabled": confirmed_at is not None,
        "confirmed_at": confirmed_at.isoformat() if confirmed_at is not None else None,
        "backup_codes_remaining": int(row["backup_codes_remaining"]) if confirmed_at is not None else 0,
    }


def _secret(settings: Settings, *, user_id: uuid.UUID, stored: str) -> str:
    from cryptography.exceptions import InvalidTag

    try:
        return crypto.decrypt_secret(settings, user_id=user_id, stored=stored)
    except InvalidTag as error:
        # The key derives from SIGNING_SECRET: a changed secret makes every stored seed unreadable.
        logger.error("mfa: TOTP secret of %s does not decrypt (was SIGNING_SECRET changed?)", user_id)
        raise ServiceUnavailable(
            "Two-step verification is unavailable right now; try again later."
        ) from error


def _matching_step(secret: str, code: str, *, now: float | None = None) -> int | None:
    """The time step (within the window) whose code this is, newest first; None when none matches."""
    import pyotp

    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = int((time.time() if now is None else now) // STEP_SECONDS)
    # Newest first: on a (one in a million) collision the later step is recorded, the safer choice.
    for step in range(current + VALID_WINDOW, current - VALID_WINDOW - 1, -1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _looks_like_backup_code(normalised: str) -> bool:
    return len(normalised) == crypto.BACKUP_CODE_LENGTH and all(
        c in crypto.BACKUP_ALPHABET for c in normalised
    )


async def verify_second_factor(
    conn: Any, *, user_id: uuid.UUID, code: str, ip: str | None, user_agent: str | None
) -> Method | None:
    """Accept a current TOTP code (once) or an unused backup code (consumed); None when it is not valid.

    Consecutive failures lock the second factor progressively (a 429), on top of the callers' rate
    limits: a guesser gets a handful of tries an hour instead of a thousand a day.
    """
    from shared.infra import ratelimit

    settings = get_settings()
    store = await get_redis()
    lock_key = ratelimit.account_key(str(user_id))
    locked = await ratelimit.TOTP_LOCKOUT.check(store, lock_key)
    if locked:
        raise ratelimit.too_many_requests(
            locked, detail=f"Too many wrong codes. Try again in {locked} seconds."
        )
    factor = await repository.factor(conn, user_id)
    if factor is None or factor["confirmed_at"] is None:
        return None
    normalised = crypto.normalise_code(code)
    if crypto.is_totp_code(normalised):
        secret = _secret(settings, user_id=user_id, stored=factor["secret_encrypted"])
        step = _matching_step(secret, normalised)
        if step is not None:
            if await repository.spend_step(conn, user_id, step):
                await ratelimit.TOTP_LOCKOUT.clear(store, lock_key)
                return "totp"
            # A correct code whose step (or a later one) was already used: someone saw or intercepted it.
            logger.warning("mfa: replayed TOTP code rejected for %s (step %s, ip %s)", user_id, step, ip)
            # Standalone: the caller turns None into an error, so its transaction rolls back.
            await audit.record_standalone(
                event="mfa_replay_rejected", subject_id=user_id, ip=ip, user_agent=user_agent, step=step
            )
            await ratelimit.TOTP_LOCKOUT.record_failure(store, lock_key)
            return None
    elif _looks_like_backup_code(normalised):
        code_hash = crypto.backup_code_hash(settings, normalised)
        used = await repository.spend_backup_code(conn, user_id, code_hash)
        if used is not None:
            await ratelimit.TOTP_LOCKOUT.clear(store, lock_key)
            await audit.record(
                conn,
                event="backup_code_used",
                subject_id=user_id,
                ip=ip,
                user_agent=user_agent,
                backup_code_id=str(used),
            )
            return "backup_code"
    await ratelimit.TOTP_LOCKOUT.record_failure(store, lock_key)
    await audit.record_standalone(
        event="mfa_challenge_failed", subject_id=user_id, ip=ip, user_agent=user_agent
    )
    return None


def _qr_images(uri: str) -> tuple[str, str]:
    """The otpauth URI as SVG and PNG data URIs (segno writes both itself, no imaging library)."""
    import segno

    qr = segno.make(uri, error="m")
    return qr.svg_data_uri(scale=4, border=4), qr.png_data_uri(scale=6, border=4)


async def start_enrolment(conn: Any, *, settings: Settings, user_id: uuid.UUID) -> TotpEnrolment:
    """A new secret for the authenticator app, stored encrypted and pending until confirmed with a code."""
    import pyotp

    user = await accounts.get_user(conn, user_id=user_id)
    secret = pyotp.random_base32()  # 32 base32 symbols: 160 bits, the RFC 4226 recommended length
    stored = crypto.encrypt_secret(settings, user_id=user_id, secret=secret)
    if not await repository.save_pending(conn, user_id, stored):
        raise Conflict(
            "Two-step verification is already on. Turn it off first to set up a new authenticator.",
            code="mfa_already_enabled",
        )
    uri = pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(name=user["email"], issuer_name=ISSUER)
    svg, png = _qr_images(uri)
    return TotpEnrolment(secret=secret, otpauth_uri=uri, qr_svg=svg, qr_png=png)


def _new_backup_codes(settings: Settings) -> tuple[list[str], list[str]]:
    """A fresh set of distinct codes and their hashes."""
    codes: list[str] = []
    while len(codes) < BACKUP_CODE_COUNT:
        code = crypto.new_backup_code()
        if code not in codes:
            codes.append(code)
    return codes, [crypto.backup_code_hash(settings, code) for code in codes]


async def confirm_enrolment(
    conn: Any,
    *,
    settings: Settings,
    user_id: uuid.UUID,
    session_id: uuid.UUID | None,
    code: str,
    meta: ClientMeta,
) -> TotpConfirmed:
    """Turn 2FA on with a first code from the app; returns the backup codes and aal2 session tokens."""
    from shared.accounts import sessions

    user = await accounts.get_user(conn, user_id=user_id, for_update=True)
    factor = await repository.factor(conn, user_id)
    if factor is None:
        raise NotFound("Start setting up two-step verification first.", code="mfa_enrolment_not_found")
    if factor["confirmed_at"] is not None:
        raise Conflict("Two-step verification is already on.", code="mfa_already_enabled")
    secret = _secret(settings, user_id=user_id, stored=factor["secret_encrypted"])
    normalised = crypto.normalise_code(code)
    step = _matching_step(secret, normalised) if crypto.is_totp_code(normalised) else None
    if step is None:
        raise BadRequest(
            "That code does not match. Check the app's clock and enter the current code.",
            code="invalid_mfa_code",
        )
    # The confirming code's step is spent too, so the same code cannot then be used to sign in.
    confirmed_at = await repository.confirm(
        conn, user_id, secret_encrypted=factor["secret_encrypted"], step=step
    )
    if confirmed_at is None:  # unreachable while the user row is locked; kept for safety
        raise Conflict("The setup changed meanwhile; start again.", code="mfa_enrolment_changed")
    codes, hashes = _new_backup_codes(settings)
    await repository.replace_backup_codes(conn, user_id, hashes)
    await audit.record(conn, event="mfa_enabled", subject_id=user_id, ip=meta.ip, user_agent=meta.user_agent)
    # Supabase sessions of an account with local 2FA are refused; end the ones already admitted (cached).
    from shared.accounts.authn import end_supabase_tokens
    from shared.infra.redis import get_redis

    await end_supabase_tokens(await get_redis(), user_id, settings=settings)
    await queue_mail(conn, to=user["email"], template="mfa_enabled", user_id=user_id, data={})
    tokens = None
    if session_id is not None:
        # This session just proved possession of the second factor.
        tokens = await sessions.reissue(
            conn, settings=settings, session_id=session_id, aal="aal2", add_method="totp"
        )
    return TotpConfirmed(backup_codes=codes, tokens=tokens)


async def disable(
    conn: Any, *, user_id: uuid.UUID, password: str | None, code: str | None, meta: ClientMeta
) -> None:
    """Turn 2FA off (or cancel a pending setup) after re-authentication with the password and a code."""
    user = await accounts.get_user(conn, user_id=user_id, for_update=True)
    if await repository.factor(conn, user_id) is None:
        raise NotFound("Two-step verification is not on.", code="mfa_not_enabled")
    await accounts.reauthenticate(conn, user=user, password=password, code=code, meta=meta)
    removed = await repository.delete_factor(conn, user_id)
    if removed is None or removed["confirmed_at"] is None:
        return  # only a setup that was never finished: nothing changed for sign-in
    await audit.record(conn, event="mfa_disabled", subject_id=user_id, ip=meta.ip, user_agent=meta.user_agent)
    await queue_mail(conn, to=user["email"], template="mfa_disabled", user_id=user_id, data={})


async def regenerate_backup_codes(
    conn: Any,
    *,
    settings: Settings,
    user_id: uuid.UUID,
    password: str | None,
    code: str | None,
    meta: ClientMeta,
) -> list[str]:
    """Replace every backup code with a new set (after re-authentication); the old ones stop working."""
    user = await accounts.get_user(conn, user_id=user_id, for_update=True)
    if not await is_enabled(conn, user_id=user_id):
        raise Conflict("Turn on two-step verification first.", code="mfa_not_enabled")
    await accounts.reauthenticate(conn, user=user, password=password, code=code, meta=meta)
    codes, hashes = _new_backup_codes(settings)
    await repository.replace_backup_codes(conn, user_id, hashes)
    await audit.record(
        conn, event="backup_codes_regenerated", subject_id=user_id, ip=meta.ip, user_agent=meta.user_agent
    )
    await queue_mail(conn, to=user["email"], template="backup_codes_regenerated", user_id=user_id, data={})
    return codes
