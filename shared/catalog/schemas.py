"""Read models of the viewer-facing catalog (also the read side of the content manager's API)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.entitlements.schemas import Access
from shared.profiles.schemas import MaturityLevel

TitleKind = Literal["movie", "series"]
TitleStatus = Literal["draft", "scheduled", "published", "archived"]
TermKind = Literal["genre", "category"]
RatingSystem = Literal["mpaa", "tv"]
BrowseSort = Literal["popularity", "newest", "rating", "title"]

# Images: {"poster": {...}, "backdrop": {...}, "logo": {...}} (titles), {"still": {...}} (episodes),
# {"photo": {...}} (people). Each role maps to what shared.catalog.images resolves it to (URLs by size);
# until that is wired in, the stored entry ({"key": ..., "width": ..., ...}).
Images = dict[str, Any]


class TermRead(BaseModel):
    """A genre or a category."""

    id: uuid.UUID
    kind: TermKind
    slug: str
    name: str


class TermCount(TermRead):
    """A genre or category with the number of titles the caller can see in it."""

    title_count: int


class RatingAggregates(BaseModel):
    """What viewers think of a title, kept up to date by a trigger on every rating change."""

    thumbs_up: int = 0
    thumbs_down: int = 0
    stars_average: float | None = Field(default=None, description="1-5, null until someone gave stars")
    stars_count: int = 0


class TitleSummary(BaseModel):
    """A title as a card in a row, a browse page or a search result."""

    id: uuid.UUID
    kind: TitleKind
    slug: str
    title: str
    release_year: int | None = None
    runtime_minutes: int | None = None
    maturity_level: MaturityLevel
    rating_system: RatingSystem | None = None
    rating: str | None = Field(default=None, description="The MPAA or TV rating, e.g. 'PG-13', 'TV-MA'")
    genres: list[TermRead] = Field(default_factory=list)
    images: Images = Field(default_factory=dict)
    user_ratings: RatingAggregates = Field(default_factory=RatingAggregates)


class Trailer(BaseModel):
    """A trailer or clip: a URL, or a storage key resolved by the media domain."""

    model_config = ConfigDict(extra="allow")
    name: str | None = None
    url: str | None = None
    key: str | None = None
    language: str | None = None


class ExternalIds(BaseModel):
    """Identifiers of the title or person in other databases."""

    imdb: str | None = None
    tmdb: str | None = None


class CastCredit(BaseModel):
    """An actor and the character they play, in billing order."""

    person_id: uuid.UUID
    name: str
    slug: str
    character: str | None = None
    order: int
    images: Images = Field(default_factory=dict)


class CrewCredit(BaseModel):
    """A crew member and their job (director, writer, producer, composer...)."""

    person_id: uuid.UUID
    name: str
    slug: str
    job: str
    order: int
    images: Images = Field(default_factory=dict)


class EpisodeRead(BaseModel):
    """An episode: one playable item of a series."""

    id: uuid.UUID
    season_number: int
    number: int
    name: str
    synopsis: str | None = None
    runtime_minutes: int | None = None
    release_date: date | None = None
    images: Images = Field(default_factory=dict)


class SeasonRead(BaseModel):
    """A season of a series with its episodes in order."""

    id: uuid.UUID
    title_id: uuid.UUID
    number: int
    name: str | None = None
    synopsis: str | None = None
    release_date: date | None = None
    images: Images = Field(default_factory=dict)
    episode_count: int
    episodes: list[EpisodeRead] = Field(default_factory=list)


class Publishing(BaseModel):
    """Status and availability of a title: shown to content managers only."""

    status: TitleStatus
    publish_at: datetime | None = None
    available_from: datetime | None = None
    available_until: datetime | None = None
    country_allow: list[str] = Field(default_factory=list)
    country_deny: list[str] = Field(default_factory=list)
    popularity: float = 0
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


class TitleDetail(TitleSummary):
    """Everything about a title; `seasons` (with episodes) is filled for series only."""

    original_title: str | None = None
    synopsis_short: str | None = None
    synopsis_long: str | None = None
    release_date: date | None = None
    countries: list[str] = Field(default_factory=list, description="production countries (ISO 3166-1)")
    original_language: str | None = None
    audio_languages: list[str] = Field(default_factory=list)
    subtitle_languages: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    access: Access = Field(
        default="subscription",
        description="how the title is offered: free, free_with_ads (free with adverts), subscription (a plan "
        "of at least min_tier, or a rental or purchase of it), transactional (a rental or purchase only)",
    )
    min_tier: int = Field(
        default=1, ge=0, le=10, description="the lowest plan tier that includes it (for access=subscription)"
    )
    categories: list[TermRead] = Field(default_factory=list)
    trailers: list[Trailer] = Field(default_factory=list)
    external_ids: ExternalIds = Field(default_factory=ExternalIds)
    cast: list[CastCredit] = Field(default_factory=list)
    crew: list[CrewCredit] = Field(default_factory=list)
    seasons: list[SeasonRead] = Field(default_factory=list)
    publishing: Publishing | None = Field(default=None, description="content managers only")


class PersonCredit(BaseModel):
    """One of a person's credits on a title the caller can see."""

    title: TitleSummary
    role: Literal["cast", "crew"]
    character: str | None = None
    job: str | None = None
    order: int


class PersonDetail(BaseModel):
    """A person page: who they are and their visible titles (cast and crew), newest first."""

    id: uuid.UUID
    name: str
    slug: str
    biography: str | None = None
    birth_date: date | None = None
    images: Images = Field(default_factory=dict)
    external_ids: ExternalIds = Field(default_factory=ExternalIds)
    credits: list[PersonCredit] = Field(default_factory=list)


class HomeRow(BaseModel):
    """A row of the home page."""

    id: str = Field(description="stable row id: new_arrivals, trending, top_rated, my_list, genre:<slug>...")
    title: str
    items: list[TitleSummary]


class HomePage(BaseModel):
    """The home page rows, in display order (empty rows are kept only for continue_watching)."""

    rows: list[HomeRow]


class MyListItem(BaseModel):
    """A title on the active profile's My List."""

    title: TitleSummary
    added_at: datetime


class RatingInput(BaseModel):
    """A profile's rating of a title: a thumb, stars or both (null clears that part)."""

    model_config = ConfigDict(extra="forbid")
    thumbs: Literal[-1, 1] | None = None
    stars: int | None = Field(default=None, ge=1, le=5)

    @model_validator(mode="after")
    def _something(self) -> RatingInput:
        if self.thumbs is None and self.stars is None:
            raise ValueError("give thumbs (-1 or 1), stars (1-5) or both")
        return self


class MyRating(BaseModel):
    """The active profile's rating of a title and the title's aggregates after it."""

    title_id: uuid.UUID
    thumbs: Literal[-1, 1] | None = None
    stars: int | None = None
    rated_at: datetime | None = None
    user_ratings: RatingAggregates
