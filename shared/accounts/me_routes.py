"""HTTP routes of the signed-in owner's account (/api/v1/users/me): details, password, email, sessions."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from shared.accounts import limits, repository, service, sessions
from shared.accounts.schemas import (
    Accepted,
    ChangeEmailRequest,
    ChangePasswordRequest,
    IdentityRead,
    ReauthRequest,
    SessionRead,
    UpdateMeRequest,
    UserRead,
)
from shared.errors import NotFound
from shared.http.auth import Principal, current_principal
from shared.http.client_meta import Meta
from shared.http.openapi import BEARER_ERRORS, errors
from shared.infra.db import Tx
from shared.settings import get_settings

router = APIRouter(prefix="/api/v1/users/me", tags=["users"])

Caller = Annotated[Principal, Depends(current_principal)]
_AUTH = {401: BEARER_ERRORS, 503: ["service_unavailable"]}
_LIMITED = {429: ["rate_limited"]}
_PASSWORD_RULES = [
    "password_too_short",
    "password_too_long",
    "password_too_common",
    "password_contains_context",
]


@router.get("", response_model=UserRead, summary="The signed-in account", responses=errors(_AUTH))
async def me(tx: Tx, caller: Caller) -> UserRead:
    """Account details of the caller."""
    return UserRead.from_row(await service.get_user(tx, user_id=caller.user_id))


@router.patch("", response_model=UserRead, summary="Edit account details", responses=errors(_AUTH))
async def update_me(body: UpdateMeRequest, tx: Tx, caller: Caller) -> UserRead:
    """Change the display name (fields left out of the body stay as they are)."""
    return await service.update_account(
        tx, user_id=caller.user_id, changes=body.model_dump(include=body.model_fields_set)
    )


@router.put(
    "/password",
    summary="Change the password (other sessions are signed out)",
    responses=errors(
        {**_AUTH, 403: ["reauthentication_failed", "password_not_set"], 422: _PASSWORD_RULES, **_LIMITED}
    ),
)
async def change_password(body: ChangePasswordRequest, tx: Tx, meta: Meta, caller: Caller) -> dict[str, int]:
    """Needs the current password; returns how many other sessions were ended."""
    await limits.reauthentication(user_id=caller.user_id)
    ended = await service.change_password(
        tx,
        settings=get_settings(),
        user_id=caller.user_id,
        session_id=uuid.UUID(caller.session_id) if caller.session_id else None,
        current_password=body.current_password,
        new_password=body.new_password,
        meta=meta,
    )
    return {"sessions_ended": ended}


@router.post(
    "/email",
    status_code=202,
    response_model=Accepted,
    summary="Change the email address (confirmed from the new address)",
    responses=errors(
        {**_AUTH, 400: ["email_unchanged"], 403: ["reauthentication_failed", "password_not_set"], **_LIMITED}
    ),
)
async def change_email(body: ChangeEmailRequest, tx: Tx, meta: Meta, caller: Caller) -> Accepted:
    """Sends a confirmation link to the new address and a notice to the current one."""
    await limits.reauthentication(user_id=caller.user_id)
    await service.request_email_change(
        tx,
        settings=get_settings(),
        user_id=caller.user_id,
        new_email=str(body.new_email),
        password=body.password,
        meta=meta,
    )
    return Accepted(detail="Open the link we sent to the new address to finish the change.")


@router.delete(
    "",
    status_code=204,
    summary="Delete the account and its personal data (irreversible)",
    responses=errors(
        {
            **_AUTH,
            403: [
                "reauthentication_failed",
                "mfa_required",
                "invalid_mfa_code",
                "reauthentication_unavailable",
            ],
            409: ["subscription_active"],
            **_LIMITED,
        }
    ),
)
async def delete_me(body: ReauthRequest, tx: Tx, meta: Meta, caller: Caller) -> Response:
    """Needs the password, and a 2FA code when it is on; a renewing subscription must be canceled first."""
    await limits.reauthentication(user_id=caller.user_id)
    await service.delete_account(
        tx, settings=get_settings(), user_id=caller.user_id, password=body.password, code=body.code, meta=meta
    )
    return Response(status_code=204)


@router.get("/export", summary="Download everything stored about the account (JSON)", responses=errors(_AUTH))
async def export(tx: Tx, meta: Meta, caller: Caller) -> JSONResponse:
    """A JSON document with the account, profiles, sessions, identities and security events."""
    body: dict[str, Any] = await service.export_data(tx, user_id=caller.user_id, meta=meta)
    return JSONResponse(
        body,
        headers={
            "content-disposition": 'attachment; filename="cinema-online-data.json"',
            "cache-control": "no-store",
        },
    )


@router.get(
    "/sessions", response_model=list[SessionRead], summary="Signed-in devices", responses=errors(_AUTH)
)
async def list_sessions(tx: Tx, caller: Caller) -> list[SessionRead]:
    """Live sessions with their device, address and last activity."""
    rows = await repository.list_sessions(tx, caller.user_id)
    return [
        SessionRead(
            **{key: row[key] for key in SessionRead.model_fields if key != "current"},
            current=str(row["id"]) == caller.session_id,
        )
        for row in rows
    ]


@router.delete(
    "/sessions/{session_id}",
    status_code=204,
    summary="Sign out a device",
    responses=errors({**_AUTH, 404: ["not_found"]}),
)
async def revoke_session(session_id: uuid.UUID, tx: Tx, meta: Meta, caller: Caller) -> Response:
    """Ends that session's tokens at once."""
    from shared.audit import service as audit

    row = await repository.session_by_id(tx, session_id)
    if row is None or row["user_id"] != caller.user_id or row["revoked_at"] is not None:
        raise NotFound("No such session.")
    await sessions.end_session(tx, settings=get_settings(), session_id=session_id, reason="revoked_by_user")
    await audit.record(
        tx,
        event="session_revoked",
        subject_id=caller.user_id,
        ip=meta.ip,
        user_agent=meta.user_agent,
        session_id=str(session_id),
    )
    return Response(status_code=204)


@router.get(
    "/identities", response_model=list[IdentityRead], summary="Linked social logins", responses=errors(_AUTH)
)
async def identities(tx: Tx, caller: Caller) -> list[IdentityRead]:
    """Google, GitHub or Supabase identities attached to the account."""
    rows = await repository.identities_of(tx, caller.user_id)
    return [IdentityRead(**{key: row[key] for key in IdentityRead.model_fields}) for row in rows]
