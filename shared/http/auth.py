"""Authentication hooks: endpoints depend on these; the identity domain registers the verifier."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request

from shared.errors import Forbidden, Unauthenticated


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account, its roles, and the login session the token belongs to."""

    user_id: UUID
    roles: frozenset[str] = field(default_factory=frozenset)
    session_id: str | None = None
    profile_id: UUID | None = None
    aal: str = "aal1"  # "aal2" once the session passed a second factor
    email: str | None = None


Authenticator = Callable[[str, Request], Awaitable[Principal]]
_authenticator: Authenticator | None = None


def register_authenticator(verify: Authenticator) -> None:
    """Install the bearer-token verifier (the identity domain does this)."""
    global _authenticator
    _authenticator = verify


def bearer_token(request: Request) -> str | None:
    """The `Authorization: Bearer` token, or None when there is none."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def optional_principal(request: Request) -> Principal | None:
    """The caller when a bearer token is presented, else None; a bad token is still a 401."""
    token = bearer_token(request)
    if token is None:
        return None
    if _authenticator is None:
        # The accounts domain is the verifier; resolved by name so this module stays below the domains.
        import importlib

        importlib.import_module("shared.accounts.authn")
    if _authenticator is None:
        raise Unauthenticated("This deployment cannot verify tokens yet.")
    return await _authenticator(token, request)


async def current_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    """The caller, or a 401 asking for credentials."""
    if principal is None:
        raise Unauthenticated("Sign in and send the access token as 'Authorization: Bearer <token>'.")
    return principal


def require_roles(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """Dependency factory: the caller must hold at least one of the roles."""
    wanted = frozenset(roles)

    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.roles & wanted:
            raise Forbidden(f"This needs one of the roles: {', '.join(sorted(wanted))}.")
        return principal

    return check
