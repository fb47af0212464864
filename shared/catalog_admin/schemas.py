"""Request shapes of the content manager's catalog API; responses reuse shared.catalog.schemas.

Every field error carries a stable `type` (the problem's errors[].type): pydantic's own codes (missing,
extra_forbidden, string_too_long, less_than_equal, literal_error, ...) or the custom ones raised here
(invalid_slug, invalid_country, invalid_language, invalid_imdb_id, invalid_tmdb_id, invalid_tag,
invalid_image, invalid_public_id, image_source_required, trailer_source_required, null_not_allowed, ...).
Cross-field rules that depend on what is stored (rating, release year, window, scheduling) are checked
by shared.catalog_admin.checks on the merged state, with the same error shape.
"""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shared.catalog.images import KINDS, ORIGINAL, size_names
from shared.catalog.schemas import RatingSystem, TitleKind, TitleStatus
from shared.catalog_admin import codes
from shared.entitlements.schemas import Access
from shared.images import direct_upload, variants
from shared.images.schemas import UploadConfirm, UploadRequest
from shared.profiles.schemas import MaturityLevel

_FORBID = ConfigDict(extra="forbid")


def _slug(value: str) -> str:
    problem = codes.slug_problem(value)
    if problem is not None:
        raise PydanticCustomError("invalid_slug", "slug " + problem)
    return value


def _country(value: str) -> str:
    code = codes.country(value)
    if code is None:
        raise PydanticCustomError("invalid_country", "must be an ISO 3166-1 alpha-2 country code, e.g. 'US'")
    return code


def _language(value: str) -> str:
    tag = codes.language(value)
    if tag is None:
        raise PydanticCustomError(
            "invalid_language", "must be a language code (ISO 639, optional region), e.g. 'en' or 'pt-BR'"
        )
    return tag


def _pattern(pattern: re.Pattern[str], code: str, message: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise PydanticCustomError(code, message)
        return value

    return AfterValidator(check)


def _https(code: str) -> AfterValidator:
    return _pattern(re.compile(r"https://[^\s/]+\S*"), code, "url: must be an https:// URL")


def _unique(values: list[Any]) -> list[Any]:
    """Duplicates dropped, first occurrence kept (order matters for languages)."""
    return list(dict.fromkeys(values))


def _tag(value: str) -> str:
    tag = " ".join(value.split()).lower()
    if not 1 <= len(tag) <= 50:
        raise PydanticCustomError("invalid_tag", "a tag must be 1 to 50 characters")
    return tag


def _as_text(value: Any) -> Any:
    # TMDB ids are numbers in TMDB's own API; accept 603 as well as "603".
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _storage_key(value: str) -> str:
    from shared.infra.storage.rules import InvalidObjectKey, validate_key

    try:
        key = validate_key(value)
    except InvalidObjectKey as error:
        raise PydanticCustomError("invalid_image", "key: " + error.detail) from None
    # Only catalog artwork: the public catalog hands out signed URLs for these keys, so a key elsewhere in
    # the bucket (an avatar, a media source) must not be publishable through a title.
    if not key.startswith("catalog/"):
        raise PydanticCustomError("invalid_image", "key: catalog images live under catalog/")
    return key


# Formats a Cloudinary delivery path may name after a public_id (as its extension: the format delivered).
_DELIVERY_EXTENSION = r"\.(?:jpe?g|png|webp|gif|avif)"


def _catalog_public_id(value: str) -> str:
    """Under catalog/images/ only the names upload tickets hand out, stripped of a delivery extension.

    The daily Cloudinary sweep deletes dated images there that no entry names exactly as the Admin API
    lists them (without an extension): catalog/images/<name>.jpg kept as given would look unused.
    """
    from shared.catalog_admin.images import FOLDER  # not at the top: that module imports this one

    if not value.startswith(FOLDER):
        return value  # elsewhere in the cloud: never swept, kept as given
    issued = re.fullmatch(re.escape(FOLDER) + f"({direct_upload.NAME})(?:{_DELIVERY_EXTENSION})?", value)
    if issued is None:
        raise PydanticCustomError(
            "invalid_public_id",
            "public_id: under {folder} only the names upload tickets hand out ({folder}<seconds>-<32 hex>)",
            {"folder": FOLDER},
        )
    return FOLDER + issued[1]


Slug = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True), AfterValidator(_slug)]
Country = Annotated[str, AfterValidator(_country)]
Countries = Annotated[list[Country], Field(max_length=260), AfterValidator(_unique)]
Language = Annotated[str, Field(max_length=35), AfterValidator(_language)]
Languages = Annotated[list[Language], Field(max_length=100), AfterValidator(_unique)]
Tags = Annotated[list[Annotated[str, Field(max_length=200), AfterValidator(_tag)]], Field(max_length=50)]
TitleImdbId = Annotated[
    str,
    StringConstraints(strip_whitespace=True),
    _pattern(codes.TITLE_IMDB, "invalid_imdb_id", "must be an IMDb title id: 'tt' and 7 to 10 digits"),
]
PersonImdbId = Annotated[
    str,
    StringConstraints(strip_whitespace=True),
    _pattern(codes.PERSON_IMDB, "invalid_imdb_id", "must be an IMDb name id: 'nm' and 7 to 10 digits"),
]
TmdbId = Annotated[
    str,
    BeforeValidator(_as_text),
    StringConstraints(strip_whitespace=True),
    _pattern(codes.TMDB, "invalid_tmdb_id", "must be a TMDB id: 1 to 10 digits"),
]
Runtime = Annotated[int, Field(ge=1, le=2000, description="minutes")]
Year = Annotated[int, Field(ge=1870, le=2100)]
Order = Annotated[int, Field(ge=0, le=100_000, description="billing order, lowest first")]
_PUBLIC_ID = re.compile(r"[A-Za-z0-9_/.~-]{1,255}")
IMAGE_MAX_SIDE = 20_000
SizeName = Annotated[
    str, _pattern(re.compile(variants.SIZE_NAME), "invalid_image", "sizes: names are w<width>, e.g. w342")
]
StorageKey = Annotated[str, AfterValidator(_storage_key)]


class ImageRef(BaseModel):
    """Where an image lives: a storage `key`, a Cloudinary `public_id` (+ `version`), or an https `url`."""

    model_config = _FORBID
    key: StorageKey | None = None
    sizes: Annotated[dict[SizeName, StorageKey], Field(max_length=10)] | None = Field(
        default=None,
        description="storage only: {size name: key} of resized variants (e.g. w342); other sizes use `key`",
    )
    public_id: (
        Annotated[
            str,
            _pattern(_PUBLIC_ID, "invalid_image", "public_id: letters, digits and _/.~- (255 at most)"),
            AfterValidator(_catalog_public_id),
        ]
        | None
    ) = None
    version: int | None = Field(default=None, ge=1, description="Cloudinary version of the upload")
    url: Annotated[str, Field(max_length=2000), _https("invalid_image")] | None = None
    width: int | None = Field(default=None, ge=1, le=IMAGE_MAX_SIDE)
    height: int | None = Field(default=None, ge=1, le=IMAGE_MAX_SIDE)

    @model_validator(mode="after")
    def _one_source(self) -> ImageRef:
        sources = [name for name in ("key", "public_id", "url") if getattr(self, name) is not None]
        if len(sources) != 1:
            raise PydanticCustomError(
                "image_source_required", "give exactly one of key (storage), public_id (Cloudinary) or url"
            )
        if self.sizes is not None and self.key is None:
            raise PydanticCustomError("invalid_image", "sizes: only with key (Cloudinary resizes by URL)")
        return self

    def stored(self) -> dict[str, Any]:
        """The jsonb entry (unset parts left out)."""
        return self.model_dump(exclude_none=True)


class _Images(BaseModel):
    """Images by kind; in an update a kind set to null is removed and kinds left out stay as they are."""

    model_config = _FORBID

    @field_validator("*")
    @classmethod
    def _sizes_of_the_kind(cls, value: Any, info: ValidationInfo) -> Any:
        """Variant names must be widths of this kind (a poster has no w1280)."""
        if isinstance(value, ImageRef) and value.sizes and info.field_name in KINDS:
            allowed = [name for name in size_names(info.field_name) if name != ORIGINAL]
            unknown = sorted(set(value.sizes) - set(allowed))
            if unknown:
                raise PydanticCustomError(
                    "invalid_image",
                    "sizes: {unknown} is not a size of {kind} ({allowed})",
                    {"unknown": ", ".join(unknown), "kind": info.field_name, "allowed": ", ".join(allowed)},
                )
        return value

    def changes(self) -> dict[str, dict[str, Any] | None]:
        """{kind: entry or None (remove)} for the kinds the client sent."""
        result: dict[str, dict[str, Any] | None] = {}
        for name in sorted(self.model_fields_set):
            ref = getattr(self, name)
            result[name] = ref.stored() if isinstance(ref, ImageRef) else None
        return result


class TitleImages(_Images):
    """A title's artwork: poster (2:3), backdrop (16:9) and logo (transparent)."""

    poster: ImageRef | None = None
    backdrop: ImageRef | None = None
    logo: ImageRef | None = None


class SeasonImages(_Images):
    """A season's poster."""

    poster: ImageRef | None = None


class EpisodeImages(_Images):
    """An episode's still (16:9)."""

    still: ImageRef | None = None


class PersonImages(_Images):
    """A person's photo (2:3)."""

    photo: ImageRef | None = None


# Direct uploads of artwork (POST /images/upload, then POST /images).

ImageKindName = Literal["poster", "backdrop", "still", "logo", "photo"]
if set(get_args(ImageKindName)) != set(KINDS):  # one list of kinds: shared.catalog.images.KINDS
    raise RuntimeError("ImageKindName must name exactly the kinds of shared.catalog.images.KINDS")
IMAGE_MAX_BYTES = 10 * 1024 * 1024


class ImageUploadRequest(UploadRequest):
    """What the browser is about to upload (PNG, JPEG or WebP, at most 10 MB) and for which kind of image."""

    kind: ImageKindName


class ImageConfirm(UploadConfirm):
    """The finished upload and its kind: {kind, key} (storage) or {kind, public_id, version, signature}."""

    kind: ImageKindName


class ImageUploaded(BaseModel):
    """A checked image: `entry` goes as is into images[kind] of a title, season, episode or person."""

    kind: ImageKindName
    entry: dict[str, Any] = Field(
        description="storage: {key, sizes: {w185: key, ...}, width, height}; "
        "Cloudinary: {public_id, version, width, height}"
    )
    urls: dict[str, str] = Field(description="{size name: URL} for a preview, as viewers will get them")


class TrailerInput(BaseModel):
    """A trailer or clip: an https `url`, or a storage `key` of a video the media domain serves."""

    model_config = _FORBID
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = None
    url: Annotated[str, Field(max_length=2000), _https("invalid_trailer")] | None = None
    key: Annotated[str, AfterValidator(_storage_key)] | None = None
    language: Language | None = None
    duration_seconds: int | None = Field(default=None, ge=1, le=86_400)

    @model_validator(mode="after")
    def _one_source(self) -> TrailerInput:
        if (self.url is None) == (self.key is None):
            raise PydanticCustomError("trailer_source_required", "give exactly one of url or key")
        return self


def _reject_null(cls: Any, value: Any) -> Any:
    """Before-validator of fields that have no "empty" state (an update may leave them out, not null them)."""
    if value is None:
        raise PydanticCustomError("null_not_allowed", "cannot be null; leave the field out to keep it")
    return value


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=20_000)]
Rating = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=1, max_length=20)]
# The plan tiers of entitlements.tier (catalog_titles_min_tier_check): 0 = any subscription.
Tier = Annotated[int, Field(ge=0, le=10)]


class TitleUpdate(BaseModel):
    """Changes to a title; omitted fields stay as they are, null clears an optional field.

    `images` merges by kind (a kind set to null is removed). `maturity_level` is derived from
    `rating_system` + `rating`; set it directly only for unrated titles. A `release_date` sets the
    `release_year`. Status and availability can also be changed here (same rules as their own endpoints).
    `access` says how the title is offered; `min_tier` only matters for `subscription` (kept otherwise, so
    switching back restores it).
    """

    model_config = _FORBID
    kind: TitleKind | None = None
    title: Name | None = None
    slug: Slug | None = Field(default=None, description="Made from the title when left out on creation.")
    original_title: Name | None = None
    synopsis_short: ShortText | None = None
    synopsis_long: LongText | None = None
    release_date: date | None = None
    release_year: Year | None = None
    runtime_minutes: Runtime | None = None
    countries: Countries | None = Field(default=None, description="production countries, ISO 3166-1 alpha-2")
    original_language: Language | None = None
    audio_languages: Languages | None = None
    subtitle_languages: Languages | None = None
    rating_system: RatingSystem | None = None
    rating: Rating | None = Field(default=None, description="e.g. 'PG-13' (mpaa) or 'TV-MA' (tv)")
    maturity_level: MaturityLevel | None = None
    tags: Tags | None = None
    images: TitleImages | None = None
    trailers: Annotated[list[TrailerInput], Field(max_length=20)] | None = None
    imdb_id: TitleImdbId | None = None
    tmdb_id: TmdbId | None = None
    status: TitleStatus | None = None
    publish_at: AwareDatetime | None = Field(default=None, description="when a scheduled title goes live")
    available_from: AwareDatetime | None = None
    available_until: AwareDatetime | None = None
    country_allow: Countries | None = Field(default=None, description="empty: everywhere")
    country_deny: Countries | None = None
    access: Access | None = Field(
        default=None,
        description="how the title is offered: free, free_with_ads (free with adverts), subscription (a plan "
        "of at least min_tier, or a rental or purchase of it), transactional (a rental or purchase only); "
        "subscription on creation when left out",
    )
    min_tier: Tier | None = Field(
        default=None,
        description="the lowest plan tier that includes it (access=subscription); 1 when left out",
    )

    _nulls = field_validator(
        "kind",
        "title",
        "slug",
        "countries",
        "audio_languages",
        "subtitle_languages",
        "maturity_level",
        "tags",
        "images",
        "trailers",
        "status",
        "country_allow",
        "country_deny",
        "access",
        "min_tier",
        mode="before",
    )(_reject_null)

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, as plain values (images as {kind: entry or None})."""
        values: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if isinstance(value, _Images):
                values[name] = value.changes()
            elif name == "trailers" and value is not None:
                values[name] = [trailer.model_dump(exclude_none=True) for trailer in value]
            else:
                values[name] = value
        return values


class TitleCreate(TitleUpdate):
    """A new movie or series (a draft unless `status` says otherwise)."""

    kind: TitleKind
    title: Name


class StatusChange(BaseModel):
    """Publishing state; `scheduled` needs a future `publish_at` (only meaningful for scheduled)."""

    model_config = _FORBID
    status: TitleStatus
    publish_at: AwareDatetime | None = None


class AvailabilityChange(BaseModel):
    """The availability window and country lists, replaced as a whole (omitted = open / empty)."""

    model_config = _FORBID
    available_from: AwareDatetime | None = None
    available_until: AwareDatetime | None = None
    country_allow: Countries = Field(default_factory=list, description="empty: every country")
    country_deny: Countries = Field(default_factory=list)


class TermSlugs(BaseModel):
    """The complete list of a title's genres (or categories), by slug, in display order."""

    model_config = _FORBID
    slugs: Annotated[list[Slug], Field(max_length=50), AfterValidator(_unique)]


Character = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Job = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=100)]


class CastInput(BaseModel):
    """An actor's credit; `order` defaults to the position in the list."""

    model_config = _FORBID
    person_id: uuid.UUID
    character: Character | None = None
    order: Order | None = None


class CrewInput(BaseModel):
    """A crew credit: director, writer, producer, composer, ..."""

    model_config = _FORBID
    person_id: uuid.UUID
    job: Job
    order: Order | None = None


class CreditsReplace(BaseModel):
    """The complete cast and crew of a title (replaces what is stored)."""

    model_config = _FORBID
    cast: Annotated[list[CastInput], Field(max_length=1000)] = Field(default_factory=list)
    crew: Annotated[list[CrewInput], Field(max_length=1000)] = Field(default_factory=list)


SeasonNumber = Annotated[int, Field(ge=0, le=1000, description="0 for specials")]
EpisodeNumber = Annotated[int, Field(ge=0, le=10_000)]


class EpisodeUpdate(BaseModel):
    """Changes to an episode; omitted fields stay, null clears an optional one."""

    model_config = _FORBID
    number: EpisodeNumber | None = None
    name: Name | None = None
    synopsis: LongText | None = None
    runtime_minutes: Runtime | None = None
    release_date: date | None = None
    images: EpisodeImages | None = None

    _nulls = field_validator("number", "name", "images", mode="before")(_reject_null)

    def changes(self) -> dict[str, Any]:
        """The fields the client sent (images as {kind: entry or None})."""
        return _changes(self)


class EpisodeCreate(EpisodeUpdate):
    """A new episode of a season."""

    number: EpisodeNumber
    name: Name


class SeasonUpdate(BaseModel):
    """Changes to a season; omitted fields stay, null clears an optional one."""

    model_config = _FORBID
    number: SeasonNumber | None = None
    name: Name | None = None
    synopsis: LongText | None = None
    release_date: date | None = None
    images: SeasonImages | None = None

    _nulls = field_validator("number", "images", mode="before")(_reject_null)

    def changes(self) -> dict[str, Any]:
        """The fields the client sent (images as {kind: entry or None})."""
        return _changes(self, exclude={"episodes"})


class SeasonCreate(SeasonUpdate):
    """A new season of a series, optionally with its episodes."""

    number: SeasonNumber
    episodes: Annotated[list[EpisodeCreate], Field(max_length=500)] = Field(default_factory=list)


class PersonUpdate(BaseModel):
    """Changes to a person; omitted fields stay, null clears an optional one."""

    model_config = _FORBID
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = None
    slug: Slug | None = Field(default=None, description="Made from the name when left out on creation.")
    biography: LongText | None = None
    birth_date: date | None = None
    images: PersonImages | None = None
    imdb_id: PersonImdbId | None = None
    tmdb_id: TmdbId | None = None

    _nulls = field_validator("name", "slug", "images", mode="before")(_reject_null)

    @field_validator("birth_date")
    @classmethod
    def _born(cls, value: date | None) -> date | None:
        if value is not None and value > date.today():
            raise PydanticCustomError("birth_date_in_future", "birth_date cannot be in the future")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields the client sent (images as {kind: entry or None})."""
        return _changes(self)


class PersonCreate(PersonUpdate):
    """A new person (actor, director, ...)."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class TermCreate(BaseModel):
    """A new genre or category; the slug is made from the name when left out."""

    model_config = _FORBID
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    slug: Slug | None = None


def _changes(model: BaseModel, *, exclude: set[str] | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in model.model_fields_set - (exclude or set()):
        value = getattr(model, name)
        values[name] = value.changes() if isinstance(value, _Images) else value
    return values


# Bulk import.


class ImportPersonRef(BaseModel):
    """A person by name, matched by `imdb_id`, then `slug`, then name; created when not found."""

    model_config = _FORBID
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    slug: Slug | None = None
    imdb_id: PersonImdbId | None = None


class ImportCast(ImportPersonRef):
    """A cast credit in an import row."""

    character: Character | None = None
    order: Order | None = None


class ImportCrew(ImportPersonRef):
    """A crew credit in an import row."""

    job: Job
    order: Order | None = None


TermName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class ImportTitle(TitleCreate):
    """One import row: a title as for POST /titles, plus its taxonomy, credits and seasons.

    Genres and categories are names (created when missing); lists given replace the stored ones on an
    update, lists left out are kept. Seasons and episodes are matched by number and upserted.
    """

    genres: Annotated[list[TermName], Field(max_length=50)] | None = None
    categories: Annotated[list[TermName], Field(max_length=50)] | None = None
    cast: Annotated[list[ImportCast], Field(max_length=1000)] | None = None
    crew: Annotated[list[ImportCrew], Field(max_length=1000)] | None = None
    seasons: Annotated[list[SeasonCreate], Field(max_length=200)] | None = None

    def changes(self) -> dict[str, Any]:
        """The title's own fields the row sent."""
        values = super().changes()
        for nested in ("genres", "categories", "cast", "crew", "seasons"):
            values.pop(nested, None)
        return values


class ImportRowError(BaseModel):
    """Why a row was rejected: the field (dotted path in the row, "" for the row itself) and a stable code."""

    field: str
    code: str
    message: str


class ImportRow(BaseModel):
    """What happened to one row (numbered from 1, CSV header excluded)."""

    row: int
    status: Literal["imported", "updated", "rejected"]
    id: uuid.UUID | None = None
    slug: str | None = None
    errors: list[ImportRowError] = Field(default_factory=list)


class ImportReport(BaseModel):
    """The outcome of an import: counts and one entry per row, in order."""

    dry_run: bool
    imported: int
    updated: int
    rejected: int
    rows: list[ImportRow]
