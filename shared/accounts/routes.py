"""HTTP routes of the auth group (/api/v1/auth): sign-up, login, tokens, verification, reset."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from shared.accounts import limits, service, sessions
from shared.accounts.schemas import (
    Accepted,
    EmailRequest,
    LoginRequest,
    LogoutRequest,
    MfaChallenge,
    MfaLoginRequest,
    RefreshRequest,
    ResetConfirmRequest,
    SignupRequest,
    TokenRequest,
    TokenResponse,
    UserRead,
)
from shared.http.auth import Principal, current_principal
from shared.http.client_meta import Meta
from shared.http.openapi import BEARER_ERRORS, errors
from shared.http.timing import at_least
from shared.infra.db import Tx
from shared.settings import get_settings

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

# Sign-up, reset and resend do more work for a known address than for an unknown one (a few ms of
# writes); answering at a fixed floor hides that. Sign-up's floor sits above argon2's cost under load.
SIGNUP_FLOOR_SECONDS = 0.4
MAIL_REQUEST_FLOOR_SECONDS = 0.25

_LIMITED = {429: ["rate_limited"], 503: ["service_unavailable"]}


@router.post(
    "/signup",
    status_code=202,
    response_model=Accepted,
    summary="Create an account (a verification link is emailed)",
    responses=errors(
        {
            422: [
                "validation_failed",
                "password_too_short",
                "password_too_long",
                "password_too_common",
                "password_contains_context",
            ],
            **_LIMITED,
        }
    ),
)
async def signup(body: SignupRequest, tx: Tx, meta: Meta) -> Accepted:
    """Sign up; the answer is the same whether or not the address already has an account."""
    await limits.signup(ip=meta.ip)
    async with at_least(SIGNUP_FLOOR_SECONDS):
        await service.signup(
            tx,
            settings=get_settings(),
            email=str(body.email),
            password=body.password,
            display_name=body.display_name,
            meta=meta,
        )
    return Accepted(detail="Check your inbox: we sent a link to confirm your email address.")


@router.post(
    "/verify-email",
    response_model=UserRead,
    summary="Confirm the email address with the emailed token",
    responses=errors({400: ["invalid_token"], **_LIMITED}),
)
async def verify_email(body: TokenRequest, tx: Tx, meta: Meta) -> UserRead:
    """Use the single-use, expiring verification token."""
    await limits.token_use(ip=meta.ip)
    return await service.verify_email(tx, token=body.token, meta=meta)


@router.post(
    "/verify-email/resend",
    status_code=202,
    response_model=Accepted,
    summary="Send a new verification link",
    responses=errors(_LIMITED),
)
async def resend_verification(body: EmailRequest, tx: Tx, meta: Meta) -> Accepted:
    """Resend the link; answers the same for unknown or already verified addresses."""
    await limits.resend(ip=meta.ip, email=str(body.email))
    async with at_least(MAIL_REQUEST_FLOOR_SECONDS):
        await service.resend_verification(tx, settings=get_settings(), email=str(body.email))
    return Accepted(detail="If that address has an unconfirmed account, a new link is on its way.")


@router.post(
    "/login",
    response_model=TokenResponse | MfaChallenge,
    summary="Sign in with email and password",
    responses=errors(
        {
            401: ["invalid_credentials"],
            403: ["email_not_verified", "account_disabled"],
            429: ["rate_limited", "account_locked"],
            503: ["service_unavailable"],
        }
    ),
)
async def login(body: LoginRequest, tx: Tx, meta: Meta) -> TokenResponse | MfaChallenge:
    """Returns tokens, or an MFA challenge to finish at /login/mfa when the account has 2FA."""
    await limits.login(ip=meta.ip, email=str(body.email))
    return await service.login(
        tx, settings=get_settings(), email=str(body.email), password=body.password, meta=meta
    )


@router.post(
    "/login/mfa",
    response_model=TokenResponse,
    summary="Finish signing in with a TOTP or backup code",
    responses=errors(
        {
            401: ["mfa_expired", "invalid_mfa_code"],
            403: ["email_not_verified", "account_disabled"],
            **_LIMITED,
        }
    ),
)
async def login_mfa(body: MfaLoginRequest, tx: Tx, meta: Meta) -> TokenResponse:
    """Second step of a login for accounts with two-factor authentication."""
    return await service.login_second_factor(
        tx, settings=get_settings(), mfa_token=body.mfa_token, code=body.code, meta=meta
    )


@router.post(
    "/refresh",
    response_model=TokenResponse,
    summary="Rotate the refresh token for a new token pair",
    responses=errors(
        {
            401: [
                "invalid_refresh_token",
                "refresh_token_reused",
                "refresh_token_already_used",
                "account_disabled",
            ],
            **_LIMITED,
        }
    ),
)
async def refresh(body: RefreshRequest, tx: Tx, meta: Meta) -> TokenResponse:
    """Each refresh token works once; presenting a spent one again signs the session out."""
    await limits.refresh(ip=meta.ip)
    return await sessions.refresh(tx, settings=get_settings(), refresh_token=body.refresh_token, meta=meta)


@router.post(
    "/logout",
    status_code=204,
    summary="Sign out this session, or every session (scope=global)",
    responses=errors({401: BEARER_ERRORS, 503: ["service_unavailable"]}),
)
async def logout(
    tx: Tx,
    meta: Meta,
    principal: Annotated[Principal, Depends(current_principal)],
    body: LogoutRequest | None = None,
) -> Response:
    """The access token and refresh token stop working at once."""
    import uuid

    from shared.audit import service as audit

    settings = get_settings()
    scope = body.scope if body else "local"
    if scope == "global":
        await sessions.end_all_sessions(
            tx, settings=settings, user_id=principal.user_id, reason="logout_global"
        )
        await audit.record(
            tx,
            event="logout_everywhere",
            subject_id=principal.user_id,
            ip=meta.ip,
            user_agent=meta.user_agent,
        )
    elif principal.session_id:
        await sessions.end_session(
            tx, settings=settings, session_id=uuid.UUID(principal.session_id), reason="logout"
        )
        await audit.record(
            tx, event="logout", subject_id=principal.user_id, ip=meta.ip, user_agent=meta.user_agent
        )
    return Response(status_code=204)


@router.post(
    "/password/reset",
    status_code=202,
    response_model=Accepted,
    summary="Email a password reset link",
    responses=errors(_LIMITED),
)
async def request_reset(body: EmailRequest, tx: Tx, meta: Meta) -> Accepted:
    """Same answer whether or not the address has an account."""
    await limits.reset(ip=meta.ip, email=str(body.email))
    async with at_least(MAIL_REQUEST_FLOOR_SECONDS):
        await service.request_password_reset(tx, settings=get_settings(), email=str(body.email), meta=meta)
    return Accepted(detail="If that address has an account, a reset link is on its way.")


@router.post(
    "/password/reset/confirm",
    status_code=204,
    summary="Set a new password with the reset token",
    responses=errors(
        {
            400: ["invalid_token"],
            422: [
                "password_too_short",
                "password_too_long",
                "password_too_common",
                "password_contains_context",
            ],
            **_LIMITED,
        }
    ),
)
async def confirm_reset(body: ResetConfirmRequest, tx: Tx, meta: Meta) -> Response:
    """Every session ends; sign in again afterwards (with 2FA if it is on)."""
    await limits.token_use(ip=meta.ip)
    await service.reset_password(
        tx, settings=get_settings(), token=body.token, password=body.password, meta=meta
    )
    return Response(status_code=204)


@router.post(
    "/email/confirm",
    response_model=UserRead,
    summary="Confirm a change of email address with the token sent to the new address",
    responses=errors({400: ["invalid_token"], 409: ["email_taken"], **_LIMITED}),
)
async def confirm_email_change(body: TokenRequest, tx: Tx, meta: Meta) -> UserRead:
    """Switch the account to the new, now verified, address."""
    await limits.token_use(ip=meta.ip)
    return await service.confirm_email_change(tx, settings=get_settings(), token=body.token, meta=meta)


@router.get("/.well-known/jwks.json", summary="Public keys of ES256 access tokens (JWKS)")
async def jwks() -> JSONResponse:
    """Empty with HS256 (the shared secret is never published)."""
    from shared.accounts.tokens import jwks as key_set

    body: dict[str, Any] = key_set(get_settings())
    return JSONResponse(body, headers={"cache-control": "public, max-age=300"})
