"""The shapes every direct image upload shares: the ticket the browser follows and the confirm body."""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field


class UploadTicket(BaseModel):
    """How the browser uploads the image directly (never through the API), then confirms it.

    storage: send `method` to `upload_url` with `headers` and the file as the body, then confirm with
    {"key": key}. cloudinary: POST `upload_url` as multipart/form-data with every entry of `fields` plus
    `file`, then confirm with the public_id, version and signature of Cloudinary's answer.
    """

    backend: Literal["storage", "cloudinary"]
    upload_url: str
    method: Literal["PUT", "POST"]
    headers: dict[str, str] = Field(default_factory=dict)
    fields: dict[str, str] = Field(default_factory=dict)
    key: str | None = None
    max_bytes: int
    expires_in: int


class UploadConfirm(BaseModel):
    """The finished upload: `key` (storage) or Cloudinary's `public_id`, `version` and `signature`."""

    model_config = ConfigDict(extra="forbid")
    key: str | None = Field(default=None, max_length=300)
    public_id: str | None = Field(default=None, max_length=300)
    version: int | None = Field(default=None, ge=1)
    signature: str | None = Field(default=None, max_length=128)


class Confirmation(Protocol):
    """What a confirm body carries (UploadConfirm and the avatar's own body alike)."""

    key: str | None
    public_id: str | None
    version: int | None
    signature: str | None
