"""Wire formats of the licence endpoints: the W3C EME ClearKey licence request and answer."""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# A ClearKey request names the key ids the CDM needs; an asset has one, a few leave room for players
# that ask for several at once. More is a malformed (or hostile) request.
MAX_KIDS = 16


def b64url(data: bytes) -> str:
    """base64url without padding, as EME's ClearKey JSON Web Keys carry key ids and keys."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding; ValueError when it is not base64url."""
    if not text or len(text) > 64 or any(c in text for c in "+/ \n\r\t"):
        raise ValueError("not base64url")
    stripped = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError("not base64url") from error


class ClearKeyRequest(BaseModel):
    """EME ClearKey licence request: the key ids (base64url of 16 bytes) and the session type."""

    model_config = ConfigDict(extra="ignore")

    kids: list[str] = Field(min_length=1, max_length=MAX_KIDS)
    type: Literal["temporary"] = "temporary"  # persistent licences are not offered

    @field_validator("kids")
    @classmethod
    def _sixteen_bytes(cls, kids: list[str]) -> list[str]:
        for kid in kids:
            try:
                raw = b64url_decode(kid)
            except ValueError as error:
                raise ValueError(f"kid {kid[:64]!r} is not base64url") from error
            if len(raw) != 16:
                raise ValueError(f"kid {kid[:64]!r} is not 16 bytes")
        return kids

    def key_ids(self) -> list[bytes]:
        """The requested key ids as bytes, in request order."""
        return [b64url_decode(kid) for kid in self.kids]


class ClearKeyJwk(BaseModel):
    """One symmetric key as a JSON Web Key (RFC 7517), the EME ClearKey licence entry."""

    kty: Literal["oct"] = "oct"
    kid: str = Field(description="key id, base64url without padding")
    k: str = Field(description="content key, base64url without padding")


class ClearKeyLicence(BaseModel):
    """EME ClearKey licence: a JWK set with the keys granted (only the asset's own)."""

    keys: list[ClearKeyJwk]
    type: Literal["temporary"] = "temporary"
