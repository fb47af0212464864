"""HTTP routes of user administration (/api/v1/users...): search, detail, roles, disable/enable, audit log.

api/users.py includes this router last, so /api/v1/users/me... is matched before /api/v1/users/{user_id}.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Query

from shared.accounts.schemas import Role
from shared.accounts.sessions import claims_changed
from shared.admin import service
from shared.admin.schemas import (
    AdminUserDetail,
    AdminUserRead,
    AuditEventRead,
    DisableRequest,
    RolesUpdate,
    Status,
)
from shared.http.client_meta import Meta
from shared.http.pagination import Page, PageParams, page_params
from shared.http.permissions import (
    CanChangeRoles,
    CanDisableUsers,
    CanReadAudit,
    CanReadUsers,
    permission_responses,
)
from shared.infra.db import Tx
from shared.settings import get_settings

router = APIRouter(prefix="/api/v1/users", tags=["admin"])

Paging = Annotated[PageParams, Depends(page_params)]


_ONE_USER = {404: ["user_not_found"], 422: ["validation_failed"]}


@router.get(
    "",
    response_model=Page[AdminUserRead],
    summary="Search accounts (staff)",
    responses=permission_responses({400: ["invalid_cursor"], 422: ["validation_failed"]}),
)
async def search_users(
    caller: CanReadUsers,
    tx: Tx,
    page: Paging,
    q: Annotated[
        str | None,
        Query(max_length=254, description="Part of the email (case-insensitive), or an exact account id"),
    ] = None,
    role: Annotated[Role | None, Query(description="Only accounts holding this role")] = None,
    status: Annotated[Status | None, Query(description="Only accounts in this state")] = None,
) -> Page[AdminUserRead]:
    """Newest accounts first; pass next_cursor back as `cursor` for the next page."""
    return await service.search_users(tx, q=q, role=role, status=status, page=page)


@router.get(
    "/audit-log",
    response_model=Page[AuditEventRead],
    summary="Security audit log (admins)",
    responses=permission_responses({400: ["invalid_cursor"], 422: ["validation_failed", "unknown_event"]}),
)
async def audit_log(
    caller: CanReadAudit,
    tx: Tx,
    page: Paging,
    user_id: Annotated[uuid.UUID | None, Query(description="Only events about this account")] = None,
    event: Annotated[str | None, Query(max_length=64, description="Only this event type")] = None,
) -> Page[AuditEventRead]:
    """Newest events first: sign-ins, failures, 2FA and password changes, role and status changes."""
    return await service.list_audit_events(tx, user_id=user_id, event=event, page=page)


@router.get(
    "/{user_id}",
    response_model=AdminUserDetail,
    summary="One account in full (staff)",
    responses=permission_responses(_ONE_USER),
)
async def get_user(user_id: uuid.UUID, caller: CanReadUsers, tx: Tx) -> AdminUserDetail:
    """Roles, status, 2FA, linked providers and the number of signed-in sessions."""
    return await service.get_user(tx, user_id=user_id)


@router.put(
    "/{user_id}/roles",
    response_model=AdminUserDetail,
    summary="Replace an account's roles (admins)",
    responses=permission_responses({**_ONE_USER, 409: ["cannot_demote_self"]}),
)
async def change_roles(
    user_id: uuid.UUID,
    body: RolesUpdate,
    caller: CanChangeRoles,
    tx: Tx,
    meta: Meta,
    background: BackgroundTasks,
) -> AdminUserDetail:
    """The viewer role is always kept; the account's access tokens must be refreshed to carry the change."""
    settings = get_settings()
    before, after = await service.change_roles(
        tx, settings=settings, actor=caller, user_id=user_id, roles=list(body.roles), meta=meta
    )
    if before != after:
        # Again after the commit (background tasks run after it): a refresh racing this transaction
        # read the old roles and may hold a token minted after the first mark.
        background.add_task(claims_changed, settings=settings, user_id=user_id)
    return await service.get_user(tx, user_id=user_id)


@router.post(
    "/{user_id}/disable",
    response_model=AdminUserDetail,
    summary="Disable an account and sign it out everywhere (staff)",
    responses=permission_responses({**_ONE_USER, 403: ["cannot_manage_staff"], 409: ["cannot_disable_self"]}),
)
async def disable_user(
    user_id: uuid.UUID, body: DisableRequest, caller: CanDisableUsers, tx: Tx, meta: Meta
) -> AdminUserDetail:
    """The account can no longer sign in or refresh; its tokens stop working now. Idempotent."""
    await service.disable_account(
        tx, settings=get_settings(), actor=caller, user_id=user_id, reason=body.reason, meta=meta
    )
    return await service.get_user(tx, user_id=user_id)


@router.post(
    "/{user_id}/enable",
    response_model=AdminUserDetail,
    summary="Re-enable a disabled account (staff)",
    responses=permission_responses({**_ONE_USER, 403: ["cannot_manage_staff"]}),
)
async def enable_user(user_id: uuid.UUID, caller: CanDisableUsers, tx: Tx, meta: Meta) -> AdminUserDetail:
    """The owner can sign in again (their old sessions stay ended). Idempotent."""
    await service.enable_account(tx, actor=caller, user_id=user_id, meta=meta)
    return await service.get_user(tx, user_id=user_id)
