"""The shapes every direct image upload shares: the announced file, the ticket, and the confirm body."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class UploadRequest(BaseModel):
    """What the browser is about to upload (each flow adds what it needs, e.g. the kind of image)."""

    model_config = ConfigDict(extra="forbid")
    content_type: str = Field(max_length=100, description="image/png, image/jpeg or image/webp")
    size: int = Field(ge=1, description="bytes of the file: the upload must be exactly this long")


class ImageUploadTicket(BaseModel):
    """How the browser uploads the image directly (never through the API), then confirms it.

    storage: send `method` to `upload_url` with `headers` and the file (exactly the announced size) as the
    body, then confirm with {"key": key} (plus what the flow's confirm asks for, e.g. the kind).
    cloudinary: POST `upload_url` as multipart/form-data with every entry of `fields` plus `file`, then
    confirm with the public_id, version and signature of Cloudinary's answer.
    """

    backend: Literal["storage", "cloudinary"]
    upload_url: str
    method: Literal["PUT", "POST"]
    headers: dict[str, str] = Field(default_factory=dict)
    fields: dict[str, str] = Field(default_factory=dict)
    key: str | None = None
    max_bytes: int = Field(description="the largest file the confirm accepts")
    expires_in: int = Field(description="seconds the upload URL (or Cloudinary signature) stays valid")


class UploadConfirm(BaseModel):
    """The finished upload: `key` (storage) or Cloudinary's `public_id`, `version` and `signature`."""

    model_config = ConfigDict(extra="forbid")
    key: str | None = Field(default=None, max_length=300)
    public_id: str | None = Field(default=None, max_length=300)
    version: int | None = Field(default=None, ge=1)
    signature: str | None = Field(default=None, max_length=128)
