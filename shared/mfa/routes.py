"""HTTP routes of two-factor authentication (/api/v1/auth/mfa): status, TOTP setup, backup codes."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from shared.accounts import limits
from shared.accounts import service as accounts_service
from shared.accounts.schemas import ReauthRequest
from shared.http.auth import Principal, current_principal
from shared.http.client_meta import Meta
from shared.http.openapi import BEARER_ERRORS, errors
from shared.infra.db import Tx
from shared.mfa import service
from shared.mfa.schemas import BackupCodes, MfaStatus, TotpConfirmed, TotpConfirmRequest, TotpEnrolment
from shared.settings import get_settings

router = APIRouter(prefix="/api/v1/auth/mfa", tags=["auth"])

Caller = Annotated[Principal, Depends(current_principal)]
_AUTH: dict[int, list[str]] = {401: BEARER_ERRORS, 503: ["service_unavailable"]}
_REAUTH_FAILED = [
    "reauthentication_failed",
    "mfa_required",
    "invalid_mfa_code",
    "reauthentication_unavailable",
]
_LIMITED = ["rate_limited"]


def _no_store(response: Response) -> None:
    # Secrets and backup codes: never kept by a browser or proxy cache.
    response.headers["cache-control"] = "no-store"


@router.get(
    "",
    response_model=MfaStatus,
    summary="Two-step verification status",
    responses=errors(_AUTH),
)
async def mfa_status(tx: Tx, caller: Caller) -> dict[str, Any]:
    """Whether 2FA is on, since when, and how many unused backup codes are left."""
    return await service.status(tx, user_id=caller.user_id)


@router.post(
    "/totp",
    response_model=TotpEnrolment,
    summary="Start setting up an authenticator app (secret, otpauth URI and QR code)",
    responses=errors({**_AUTH, 403: ["recent_sign_in_required"], 409: ["mfa_already_enabled"]}),
)
async def start_totp(tx: Tx, caller: Caller, response: Response) -> TotpEnrolment:
    """A new secret, pending until confirmed; starting again replaces an unconfirmed one."""
    _no_store(response)
    await accounts_service.require_recent_sign_in(tx, session_id=caller.session_id)
    return await service.start_enrolment(tx, settings=get_settings(), user_id=caller.user_id)


@router.post(
    "/totp/confirm",
    response_model=TotpConfirmed,
    summary="Turn on two-step verification with a first code from the app",
    responses=errors(
        {
            **_AUTH,
            400: ["invalid_mfa_code"],
            404: ["mfa_enrolment_not_found"],
            409: ["mfa_already_enabled", "mfa_enrolment_changed"],
            429: _LIMITED,
        }
    ),
)
async def confirm_totp(
    body: TotpConfirmRequest, tx: Tx, meta: Meta, caller: Caller, response: Response
) -> TotpConfirmed:
    """Returns the 10 backup codes (shown only now) and new aal2 tokens for this session."""
    _no_store(response)
    await limits.totp(ip=meta.ip, user_id=caller.user_id)
    return await service.confirm_enrolment(
        tx,
        settings=get_settings(),
        user_id=caller.user_id,
        session_id=uuid.UUID(caller.session_id) if caller.session_id else None,
        code=body.code,
        meta=meta,
    )


@router.delete(
    "/totp",
    status_code=204,
    summary="Turn off two-step verification (password and a code required)",
    responses=errors({**_AUTH, 403: _REAUTH_FAILED, 404: ["mfa_not_enabled"], 429: _LIMITED}),
)
async def disable_totp(body: ReauthRequest, tx: Tx, meta: Meta, caller: Caller) -> Response:
    """Removes the authenticator and every backup code; a pending setup is simply cancelled."""
    await limits.totp(ip=meta.ip, user_id=caller.user_id)
    await service.disable(tx, user_id=caller.user_id, password=body.password, code=body.code, meta=meta)
    return Response(status_code=204)


@router.post(
    "/backup-codes",
    response_model=BackupCodes,
    summary="Replace the backup codes with a new set (password and a code required)",
    responses=errors({**_AUTH, 403: _REAUTH_FAILED, 409: ["mfa_not_enabled"], 429: _LIMITED}),
)
async def regenerate_backup_codes(
    body: ReauthRequest, tx: Tx, meta: Meta, caller: Caller, response: Response
) -> BackupCodes:
    """The previous codes stop working; the new ones are shown only now."""
    _no_store(response)
    await limits.totp(ip=meta.ip, user_id=caller.user_id)
    codes = await service.regenerate_backup_codes(
        tx, settings=get_settings(), user_id=caller.user_id, password=body.password, code=body.code, meta=meta
    )
    return BackupCodes(backup_codes=codes)
