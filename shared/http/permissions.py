"""Roles and permissions: what each role may do, and one FastAPI dependency per permission.

Endpoints ask for a permission, never for a role, so who may do what is decided here in one table.
Roles travel in the access token; a change of roles marks the holder's tokens stale (they refresh).

    viewer           watches; acts on its own account only, which needs no permission
    content_manager  catalog:write, media:write
    ads_manager      ads:write, analytics:read
    support          users:read, users:disable (helps viewers: finds accounts, disables/re-enables them)
    admin            everything, including users:roles and the full audit log (audit:read)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from functools import cache
from typing import Annotated, Any

from fastapi import Depends

from shared.errors import Forbidden
from shared.http.auth import Principal, current_principal
from shared.http.openapi import BEARER_ERRORS, errors

# The roles, least to most privileged (the order is the canonical order of a user's role list).
ROLES: tuple[str, ...] = ("viewer", "content_manager", "ads_manager", "support", "admin")

# Every permission, with what it allows.
PERMISSIONS: dict[str, str] = {
    "users:read": "Search accounts and see their details (not the audit log).",
    "users:disable": "Disable and re-enable accounts (ends their sessions).",
    "users:roles": "Change the roles of an account.",
    "audit:read": "Read the full security audit log.",
    "catalog:write": "Create and edit titles, seasons, episodes and artwork.",
    "media:write": "Upload source videos and manage transcodes.",
    "ads:write": "Create and edit ad campaigns and creatives.",
    "analytics:read": "Read playback and ad analytics.",
    "commerce:write": "Manage plans, prices, rental and purchase offers and pay-per-view events.",
}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset(),
    "content_manager": frozenset({"catalog:write", "media:write"}),
    "ads_manager": frozenset({"ads:write", "analytics:read"}),
    # Support answers viewers: it may find and disable accounts, but never grant power (roles) nor read
    # other staff's security trail (the audit log is for admins).
    "support": frozenset({"users:read", "users:disable"}),
    "admin": frozenset(PERMISSIONS),
}


def _check_tables() -> None:
    """The tables above must agree with each other; a typo is a bug caught at import."""
    if set(ROLE_PERMISSIONS) != set(ROLES):
        raise RuntimeError("ROLE_PERMISSIONS must name exactly the roles in ROLES")
    for role, granted in ROLE_PERMISSIONS.items():
        unknown = granted - PERMISSIONS.keys()
        if unknown:
            raise RuntimeError(f"role {role!r} grants unknown permissions {sorted(unknown)}")


_check_tables()


def permissions_for(roles: Iterable[str]) -> frozenset[str]:
    """Union of the permissions of these roles (unknown role names grant nothing)."""
    granted: set[str] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(granted)


def has_permission(principal: Principal, permission: str) -> bool:
    """Whether the caller's roles grant the permission."""
    return permission in permissions_for(principal.roles)


class PermissionDenied(Forbidden):
    """Signed in, but none of the caller's roles grants the permission."""

    def __init__(self, permission: str) -> None:
        super().__init__(
            f"This needs the permission '{permission}', which your roles do not grant.",
            code="permission_denied",
            permission=permission,
        )


@cache
def require_permission(permission: str) -> Callable[..., Awaitable[Principal]]:
    """Dependency factory: the signed-in caller must hold `permission` (403 permission_denied otherwise)."""
    if permission not in PERMISSIONS:
        # Called while modules are imported (aliases, route signatures): a typo fails at start-up.
        raise ValueError(f"unknown permission {permission!r}; add it to shared/http/permissions.py")

    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not has_permission(principal, permission):
            raise PermissionDenied(permission)
        return principal

    check.__name__ = "require_" + permission.replace(":", "_")
    return check


# One annotated dependency per permission: `caller: CanReadUsers` in an endpoint's signature.
CanReadUsers = Annotated[Principal, Depends(require_permission("users:read"))]
CanDisableUsers = Annotated[Principal, Depends(require_permission("users:disable"))]
CanChangeRoles = Annotated[Principal, Depends(require_permission("users:roles"))]
CanReadAudit = Annotated[Principal, Depends(require_permission("audit:read"))]
CanWriteCatalog = Annotated[Principal, Depends(require_permission("catalog:write"))]
CanWriteMedia = Annotated[Principal, Depends(require_permission("media:write"))]
CanWriteAds = Annotated[Principal, Depends(require_permission("ads:write"))]
CanWriteCommerce = Annotated[Principal, Depends(require_permission("commerce:write"))]
CanReadAnalytics = Annotated[Principal, Depends(require_permission("analytics:read"))]

# The problem codes a permission-guarded route may answer, for `errors({...})`.
PERMISSION_ERRORS: dict[int, list[str]] = {
    401: BEARER_ERRORS,
    403: ["permission_denied"],
}


def permission_responses(*extras: dict[int, list[str]]) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a permission-guarded route: auth, permission and database errors plus its own."""
    merged: dict[int, list[str]] = {status: list(codes) for status, codes in PERMISSION_ERRORS.items()}
    merged.setdefault(503, []).append("service_unavailable")
    for extra in extras:
        for status, codes in extra.items():
            merged.setdefault(status, []).extend(code for code in codes if code not in merged.get(status, []))
    return errors(merged)
