"""Request and response shapes of the media API: direct uploads, sources, assets and subtitles."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from shared.catalog_admin import codes
from shared.transcoding.schemas import TranscodeJobOut

_FORBID = ConfigDict(extra="forbid")

# What a source may be announced as. The type is only a hint (the worker judges the file by content),
# but the PUT must carry it, so it is limited to media types and the generic binary type.
SOURCE_CONTENT_TYPES: frozenset[str] = frozenset(
    {
        "video/mp4",
        "video/quicktime",
        "video/x-matroska",
        "video/matroska",
        "video/webm",
        "video/mp2t",
        "video/mpeg",
        "video/x-msvideo",
        "video/avi",
        "video/x-flv",
        "application/mxf",
        "application/octet-stream",
        "audio/wav",
        "audio/x-wav",
        "audio/mpeg",
        "audio/flac",
        "audio/ogg",
        "audio/mp4",
    }
)
MAX_PART_BATCH = 100  # presigned part URLs per answer
# C0 and C1 controls and the Unicode line/paragraph separators (line breaks to str.splitlines and to
# some playlist parsers).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _content_type(value: str) -> str:
    value = value.strip().lower()
    if value not in SOURCE_CONTENT_TYPES:
        raise PydanticCustomError(
            "unsupported_content_type",
            "must be a video (mp4, quicktime, matroska, webm, mpeg-ts, avi, flv), mxf, an audio type, "
            "or application/octet-stream",
        )
    return value


def _filename(value: str) -> str:
    if _CONTROL.search(value) or not value.strip():
        raise PydanticCustomError("invalid_filename", "must be a file name without control characters")
    return value.strip()


def _plain_text(value: str) -> str:
    # Labels end up in playlists and the MPD, where control characters break the whole manifest.
    if _CONTROL.search(value):
        raise PydanticCustomError("invalid_text", "must not contain control characters")
    return value


def _language(value: str) -> str:
    tag = codes.language(value)
    if tag is None:
        raise PydanticCustomError(
            "invalid_language",
            "must be a BCP 47 language tag (ISO 639, optional script/region), e.g. 'en', 'pt-BR'",
        )
    return tag


Sha256 = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, pattern=r"^[0-9a-fA-F]{64}$"),
    Field(
        description="SHA-256 of the whole file, 64 hex digits: bound into a single PUT (storage refuses "
        "other bytes); for a multipart upload verified by the transcoder before probing"
    ),
]
Language = Annotated[str, Field(max_length=35), AfterValidator(_language)]


class UploadCreate(BaseModel):
    """Ask for a direct upload of a source file for a title (or one of its episodes)."""

    model_config = _FORBID
    title_id: uuid.UUID
    episode_id: uuid.UUID | None = None
    purpose: Literal["main", "trailer"] = "main"
    filename: Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_filename)]
    content_type: Annotated[str, Field(max_length=100), AfterValidator(_content_type)]
    size_bytes: int = Field(
        gt=0, description="Exact size of the file; bound into the upload URLs and verified on completion"
    )
    sha256: Sha256


class PresignedUrl(BaseModel):
    """A request the client sends straight to storage: the URL, method and headers, valid until expires_at."""

    url: str
    method: str
    headers: dict[str, str] = Field(
        description="Send exactly these (Content-Type, x-amz-checksum-sha256); the body's size is signed too"
    )
    expires_at: datetime


class PartUrl(PresignedUrl):
    """A presigned PUT for one part of a multipart upload (answer's ETag is kept by storage)."""

    part_number: int


class UploadedPartOut(BaseModel):
    """A part storage already holds."""

    part_number: int
    size: int
    etag: str


class SourceOut(BaseModel):
    """An uploaded (or uploading) source file and what became of it."""

    id: uuid.UUID
    title_id: uuid.UUID
    episode_id: uuid.UUID | None
    purpose: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str | None
    mode: Literal["single", "multipart"]
    part_size: int | None
    part_count: int | None
    state: Literal["uploading", "uploaded", "aborted", "rejected"]
    probe: dict[str, Any] | None = Field(
        default=None, description="Container and streams as probing saw them"
    )
    rejection_reason: str | None
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    uploaded_at: datetime | None
    source_deleted: bool = Field(
        description="The stored file was removed after transcoding (MEDIA_KEEP_SOURCES off)"
    )


class UploadTicket(BaseModel):
    """Where the file goes: one presigned PUT (`single`) or presigned parts (`multipart`)."""

    source: SourceOut
    mode: Literal["single", "multipart"]
    upload: PresignedUrl | None = Field(default=None, description="single: PUT the whole file here")
    part_size: int | None = Field(
        default=None, description="multipart: every part but the last has this size"
    )
    part_count: int | None = None
    parts: list[PartUrl] = Field(
        default_factory=list, description=f"multipart: URLs of the first parts (up to {MAX_PART_BATCH})"
    )


class PartsRequest(BaseModel):
    """Part numbers to presign (to continue or resume a multipart upload)."""

    model_config = _FORBID
    part_numbers: list[Annotated[int, Field(ge=1, le=10_000)]] = Field(
        min_length=1, max_length=MAX_PART_BATCH
    )


class PartsOut(BaseModel):
    """Presigned part URLs."""

    parts: list[PartUrl]


class UploadStatus(BaseModel):
    """An upload as storage holds it now, so a client resumes after a reload."""

    source: SourceOut
    mode: Literal["single", "multipart"]
    part_size: int | None
    part_count: int | None
    uploaded_parts: list[UploadedPartOut] = Field(description="multipart: parts stored so far")
    missing_parts: list[int] = Field(description="multipart: part numbers still to upload (or re-upload)")
    uploaded_bytes: int


class CompleteRequest(BaseModel):
    """Finish an upload and queue its transcode."""

    model_config = _FORBID
    priority: int = Field(default=0, ge=-10, le=10, description="-10 (lowest) .. 10 (highest)")


class CompleteOut(BaseModel):
    """The uploaded source and its queued transcode job (the same job when completed again)."""

    source: SourceOut
    job: TranscodeJobOut


class RenditionOut(BaseModel):
    """One rendition published in an asset's manifests."""

    name: str
    kind: str
    codec: str
    codecs: str
    width: int | None
    height: int | None
    frame_rate: float | None
    bandwidth: int
    average_bandwidth: int
    language: str | None
    label: str | None
    is_default: bool


class AssetOut(BaseModel):
    """A transcoded asset: state, manifests (storage keys), renditions, images. Never key material."""

    id: uuid.UUID
    source_id: uuid.UUID
    title_id: uuid.UUID
    episode_id: uuid.UUID | None
    purpose: str
    state: str
    is_current: bool
    storage_prefix: str
    hls_master: str | None
    dash_manifest: str | None
    duration_seconds: float | None
    images: dict[str, Any]
    drm: dict[str, Any] = Field(description="Signalled DRM systems and the key id (public in the MPD anyway)")
    renditions: list[RenditionOut]
    created_at: datetime
    updated_at: datetime
    playable_at: datetime | None
    ready_at: datetime | None


class SubtitleCreate(BaseModel):
    """A subtitle file (SRT or WebVTT) for one language of a title or episode."""

    model_config = _FORBID
    title_id: uuid.UUID
    episode_id: uuid.UUID | None = None
    language: Language
    label: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=80),
        AfterValidator(_plain_text),
    ]
    forced: bool = Field(default=False, description="Only the foreign-language parts, shown without asking")
    sdh: bool = Field(default=False, description="For the deaf and hard of hearing (sounds, speakers)")
    content: str | None = Field(
        default=None, max_length=2 * 1024 * 1024, description="The file's text (SRT or WebVTT)"
    )
    content_base64: str | None = Field(
        default=None,
        max_length=2_796_204,  # base64 of 2 MiB
        description="Or the file's raw bytes in base64 (UTF-8, or UTF-16 with a byte-order mark)",
    )
    filename: Annotated[str, Field(max_length=255)] | None = None

    @model_validator(mode="after")
    def _one_content(self) -> SubtitleCreate:
        if (self.content is None) == (self.content_base64 is None):
            raise PydanticCustomError("content_required", "give exactly one of content and content_base64")
        return self


class SubtitleOut(BaseModel):
    """A subtitle track of a title or episode, normalised to WebVTT."""

    id: uuid.UUID
    title_id: uuid.UUID
    episode_id: uuid.UUID | None
    language: str
    label: str
    forced: bool
    sdh: bool
    cue_count: int
    storage_key: str
    url: str = Field(description="A short-lived download URL of the normalised WebVTT")
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
