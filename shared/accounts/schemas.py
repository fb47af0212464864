"""Request and response shapes of the accounts endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# Length is checked by the password policy (after normalisation) so the error names the rule; this cap
# only stops absurd bodies before hashing.
Password = Field(min_length=1, max_length=1024)


def _email(value: str) -> str:
    # email-validator (what pydantic's EmailStr uses) is imported on first use, not with the schemas:
    # it costs ~20 ms of every cold start otherwise. No DNS lookups: deliverability is proven by the link.
    from email_validator import EmailNotValidError, validate_email

    try:
        # ASCII only (internationalised domains in their xn-- form): Python's and PostgreSQL's lower() then
        # agree, so per-address limits and locks cannot be dodged with look-alikes such as "İ".
        result = validate_email(value, check_deliverability=False, allow_smtputf8=False)
        return str(result.ascii_email or result.normalized)
    except EmailNotValidError as error:
        raise ValueError(f"not a valid email address: {error}") from None


EmailStr = Annotated[
    str, AfterValidator(_email), Field(max_length=254, json_schema_extra={"format": "email"})
]
Role = Literal["viewer", "content_manager", "ads_manager", "support", "admin"]


class UserRead(BaseModel):
    """The signed-in account as its owner sees it."""

    id: uuid.UUID
    email: str
    email_verified: bool
    display_name: str | None
    roles: list[Role]
    status: Literal["active", "disabled"]
    created_at: datetime
    last_login_at: datetime | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> UserRead:
        """Build from a users row."""
        return cls(
            id=row["id"],
            email=row["email"],
            email_verified=row["email_verified_at"] is not None,
            display_name=row["display_name"],
            roles=list(row["roles"]),
            status=row["status"],
            created_at=row["created_at"],
            last_login_at=row.get("last_login_at"),
        )


class TokenResponse(BaseModel):
    """A signed-in session: a short-lived access token and the refresh token that renews it."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
    expires_at: int
    refresh_token: str
    session_id: uuid.UUID
    profile_id: uuid.UUID | None = None
    user: UserRead


class MfaChallenge(BaseModel):
    """The password was right; a second factor is needed to finish signing in."""

    mfa_required: Literal[True] = True
    mfa_token: str
    methods: list[Literal["totp", "backup_code"]]
    expires_in: int


class SignupRequest(BaseModel):
    """Create an account."""

    model_config = ConfigDict(extra="forbid")
    email: EmailStr
    password: str = Password
    display_name: str | None = Field(default=None, max_length=80)


class Accepted(BaseModel):
    """The request was taken; the next step arrives by email (same answer whoever the address belongs to)."""

    status: Literal["accepted"] = "accepted"
    detail: str


class LoginRequest(BaseModel):
    """Sign in with email and password."""

    model_config = ConfigDict(extra="forbid")
    email: EmailStr
    password: str = Password


class MfaLoginRequest(BaseModel):
    """Finish signing in with a TOTP code or a backup code."""

    model_config = ConfigDict(extra="forbid")
    mfa_token: str = Field(min_length=10, max_length=200)
    code: str = Field(min_length=6, max_length=32)


class RefreshRequest(BaseModel):
    """Rotate the refresh token."""

    model_config = ConfigDict(extra="forbid")
    refresh_token: str = Field(min_length=10, max_length=200)


class LogoutRequest(BaseModel):
    """Sign out this session, or every session of the account."""

    model_config = ConfigDict(extra="forbid")
    scope: Literal["local", "global"] = "local"


class TokenRequest(BaseModel):
    """A single-use token from an emailed link."""

    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=10, max_length=200)


class EmailRequest(BaseModel):
    """An address to send a link to."""

    model_config = ConfigDict(extra="forbid")
    email: EmailStr


class ResetConfirmRequest(BaseModel):
    """Set a new password with the token from the reset email."""

    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=10, max_length=200)
    password: str = Password


class ChangePasswordRequest(BaseModel):
    """Change the password, proving the current one."""

    model_config = ConfigDict(extra="forbid")
    current_password: str = Password
    new_password: str = Password


class ChangeEmailRequest(BaseModel):
    """Move the account to a new address (confirmed from that address)."""

    model_config = ConfigDict(extra="forbid")
    new_email: EmailStr
    password: str = Password


class ReauthRequest(BaseModel):
    """Re-authentication for a dangerous action: the password, and a code when 2FA is on."""

    model_config = ConfigDict(extra="forbid")
    password: str | None = Field(default=None, min_length=1, max_length=1024)
    code: str | None = Field(default=None, min_length=6, max_length=32)


class UpdateMeRequest(BaseModel):
    """Editable account fields."""

    model_config = ConfigDict(extra="forbid")
    display_name: str | None = Field(default=None, max_length=80)


class SessionRead(BaseModel):
    """A signed-in device."""

    id: uuid.UUID
    device_name: str | None
    user_agent: str | None
    ip: str | None
    aal: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    current: bool


class IdentityRead(BaseModel):
    """A linked social or external login."""

    provider: str
    email: str | None
    created_at: datetime
    last_login_at: datetime | None
