"""Viewer profiles: the maturity scale, and the request and response shapes of the profile endpoints."""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from shared.images.schemas import UploadConfirm, UploadRequest

# The maturity scale, least to most restricted content allowed. A profile at level L may watch titles
# rated at L or below; the catalog maps MPAA/TV ratings onto these levels (e.g. G/TV-Y -> "all",
# TV-Y7 -> "7+", PG-13/TV-14 -> "13+", R -> "16+" or "18+" by market, NC-17/TV-MA -> "18+").
MaturityLevel = Literal["all", "7+", "13+", "16+", "18+"]
MATURITY_LEVELS: tuple[MaturityLevel, ...] = get_args(MaturityLevel)
KIDS_MAX_MATURITY: MaturityLevel = "7+"
ADULT_DEFAULT_MATURITY: MaturityLevel = "18+"
MAX_PROFILES = 5


def maturity_rank(level: str) -> int:
    """Position of a level on the scale ("all" is 0, "18+" is 4); ValueError for an unknown level."""
    try:
        return MATURITY_LEVELS.index(level)
    except ValueError:
        raise ValueError(f"unknown maturity level {level!r}") from None


def allows(profile_level: str, title_level: str) -> bool:
    """Whether a profile at `profile_level` may watch a title rated `title_level`."""
    return maturity_rank(title_level) <= maturity_rank(profile_level)


def capped_maturity(level: str, *, is_kids: bool) -> MaturityLevel:
    """A kids profile never goes above KIDS_MAX_MATURITY, whatever was asked for."""
    if is_kids and maturity_rank(level) > maturity_rank(KIDS_MAX_MATURITY):
        return KIDS_MAX_MATURITY
    return MATURITY_LEVELS[maturity_rank(level)]


def clean_name(value: str) -> str:
    """A profile name trimmed and NFC-normalised; ValueError when empty, too long or invisible."""
    # NFC so that "é" typed two ways is one name for the case-insensitive uniqueness check.
    value = unicodedata.normalize("NFC", value).strip()
    if any(unicodedata.category(char) in ("Cc", "Cf") for char in value):
        raise ValueError("must not contain control or invisible formatting characters")
    if not 1 <= len(value) <= 50:
        raise ValueError("must be 1 to 50 characters")
    return value


# A BCP 47 language tag as browsers send it ("en", "pt-BR", "zh-Hant-TW").
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}")


def _clean_language(value: str) -> str:
    if not _LANGUAGE.fullmatch(value):
        raise ValueError("must be a language tag such as 'en' or 'pt-BR'")
    return value


ProfileName = Annotated[str, Field(max_length=200), AfterValidator(clean_name)]
Language = Annotated[str, Field(max_length=35), AfterValidator(_clean_language)]
Pin = Annotated[str, Field(pattern=r"^[0-9]{4}$", description="four digits")]


class ProfileCreate(BaseModel):
    """A new viewer profile (a kids profile is capped at maturity '7+')."""

    model_config = ConfigDict(extra="forbid")
    name: ProfileName
    language: Language = "en"
    maturity_level: MaturityLevel | None = Field(
        default=None, description="Defaults to '18+', or '7+' for a kids profile."
    )
    is_kids: bool = False
    autoplay_next: bool = True
    autoplay_previews: bool = True


class ProfileUpdate(BaseModel):
    """Changes to a profile; omitted fields stay as they are (null is not a value for any of them)."""

    model_config = ConfigDict(extra="forbid")
    name: ProfileName | None = None
    language: Language | None = None
    maturity_level: MaturityLevel | None = None
    is_kids: bool | None = None
    autoplay_next: bool | None = None
    autoplay_previews: bool | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> ProfileUpdate:
        nulls = sorted(name for name in self.model_fields_set if getattr(self, name) is None)
        if nulls:
            raise ValueError(f"these fields cannot be null: {', '.join(nulls)}")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the client sent."""
        return self.model_dump(exclude_unset=True)


class ProfileRead(BaseModel):
    """A profile as its account sees it."""

    id: uuid.UUID
    name: str
    avatar_url: str | None = Field(description="A time-limited or CDN URL of the avatar image, if any.")
    language: str
    maturity_level: MaturityLevel
    is_kids: bool
    autoplay_next: bool
    autoplay_previews: bool
    has_pin: bool
    active: bool = Field(description="Whether this is the active profile of the calling session.")
    created_at: datetime
    updated_at: datetime


class SelectProfileRequest(BaseModel):
    """Switch the session to a profile; the PIN is needed when the profile has one."""

    model_config = ConfigDict(extra="forbid")
    pin: Pin | None = None


class SetPinRequest(BaseModel):
    """Set (four digits) or clear (null) a profile's PIN; needs the account password (and 2FA code)."""

    model_config = ConfigDict(extra="forbid")
    pin: Pin | None
    password: str | None = Field(default=None, min_length=1, max_length=1024)
    code: str | None = Field(
        default=None, min_length=6, max_length=32, description="2FA code, when the account has 2FA."
    )


# Avatars.

AVATAR_MAX_BYTES = 2 * 1024 * 1024


class AvatarUploadRequest(UploadRequest):
    """What the browser is about to upload: a PNG, JPEG or WebP of at most 2 MB."""


class AvatarConfirm(UploadConfirm):
    """The finished avatar upload: `key` (storage) or Cloudinary's `public_id`, `version` and `signature`."""
