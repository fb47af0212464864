"""Request and response shapes of the two-factor endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.accounts.schemas import TokenResponse


class MfaStatus(BaseModel):
    """Whether two-step verification is on, since when, and how many backup codes are left."""

    enabled: bool
    confirmed_at: datetime | None
    backup_codes_remaining: int


class TotpEnrolment(BaseModel):
    """A new authenticator secret to scan (QR code) or type in; confirm it with a code to turn 2FA on."""

    secret: str = Field(description="Base32 secret, for typing into an authenticator app by hand.")
    otpauth_uri: str = Field(description="otpauth://totp/... URI (what the QR code encodes).")
    qr_svg: str = Field(description="The QR code as a data:image/svg+xml URI.")
    qr_png: str = Field(description="The QR code as a data:image/png URI.")


class TotpConfirmRequest(BaseModel):
    """A code from the authenticator app, proving the secret was stored."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=6, max_length=32)


class BackupCodes(BaseModel):
    """Single-use backup codes, shown this once only."""

    backup_codes: list[str]


class TotpConfirmed(BackupCodes):
    """2FA is on: the backup codes (shown once) and tokens for this session, now at aal2."""

    tokens: TokenResponse | None = Field(
        description="New tokens for the calling session (null when the token has no local session)."
    )
