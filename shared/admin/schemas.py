"""Request and response shapes of user administration."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.accounts.schemas import Role

Status = Literal["active", "disabled"]


class AdminUserRead(BaseModel):
    """One account as staff see it in a search result."""

    id: uuid.UUID
    email: str
    display_name: str | None
    roles: list[Role]
    status: Status
    disabled_reason: str | None
    email_verified: bool
    mfa_enabled: bool
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AdminUserRead:
        """Build from a row of the admin repository's user queries."""
        return cls(**{name: row[name] for name in cls.model_fields})


class IdentitySummary(BaseModel):
    """A linked sign-in provider (the provider's subject id is not shown)."""

    provider: str
    email: str | None
    created_at: datetime
    last_login_at: datetime | None


class AdminUserDetail(AdminUserRead):
    """One account in full: what support needs to help its owner."""

    has_password: bool
    live_sessions: int
    identities: list[IdentitySummary]
    updated_at: datetime

    @classmethod
    def from_detail(cls, row: dict[str, Any], identities: list[dict[str, Any]]) -> AdminUserDetail:
        """Build from the detail row and the identity rows."""
        fields = {name: row[name] for name in cls.model_fields if name != "identities"}
        return cls(**fields, identities=[IdentitySummary(**identity) for identity in identities])


class RolesUpdate(BaseModel):
    """The complete new set of roles ("viewer" is always kept)."""

    model_config = ConfigDict(extra="forbid")
    roles: list[Role] = Field(max_length=5)


class DisableRequest(BaseModel):
    """Why the account is disabled (kept on the account and in the audit log)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500)


class AuditEventRead(BaseModel):
    """One entry of the security audit log."""

    id: int
    occurred_at: datetime
    event: str
    actor_id: uuid.UUID | None
    subject_id: uuid.UUID | None
    ip: str | None
    user_agent: str | None
    details: dict[str, Any]
