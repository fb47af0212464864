"""Read models of catalog search and autocomplete."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.profiles.schemas import MaturityLevel

# The longest query accepted (characters, after trimming): longer text is not a search, and every extra
# word costs the trigram and full-text matchers work.
MAX_QUERY_LENGTH = 200
Matched = Literal["title", "person", "synopsis", "tags"]
IMAGES = "image URLs by kind and size, as on catalog cards: {poster: {w185: url, ..., original: url}, ...}"


class SearchHit(BaseModel):
    """A title found by a search, with its relevance and what matched."""

    id: uuid.UUID
    kind: Literal["movie", "series"]
    title: str
    slug: str
    year: int | None = None
    maturity_level: MaturityLevel
    images: dict[str, Any] = Field(default_factory=dict, description=IMAGES)
    score: float = Field(description="relevance; higher first (comparable within one query only)")
    matched: Matched = Field(description="the strongest field that matched: title > person > synopsis > tags")


class FacetValue(BaseModel):
    """One value of a facet and how many visible matches have it (with the other facets' filters)."""

    value: str = Field(description="what to pass back as the filter: a genre slug, 1990, '13+', 'fr'")
    label: str
    count: int


class Facets(BaseModel):
    """Counts over every visible match, not only the page; each ignores its own filter (multi-select)."""

    genre: list[FacetValue] = Field(default_factory=list)
    decade: list[FacetValue] = Field(default_factory=list)
    maturity: list[FacetValue] = Field(default_factory=list)
    language: list[FacetValue] = Field(default_factory=list)


class SearchResults(BaseModel):
    """A page of search results with the facets of the whole match set."""

    query: str
    items: list[SearchHit]
    total: int = Field(description="visible matches with every filter applied (of those counted, see capped)")
    capped: bool = Field(
        description="more titles matched than are ranked and counted: the 200 most popular were (100 for a "
        "query corrected for typos); a more specific query ranks the rest"
    )
    facets: Facets
    next_cursor: str | None = None


class TitleSuggestion(BaseModel):
    """A title whose name starts a word with what was typed."""

    id: uuid.UUID
    kind: Literal["movie", "series"]
    title: str
    slug: str
    year: int | None = None
    maturity_level: MaturityLevel
    images: dict[str, Any] = Field(default_factory=dict, description=IMAGES)


class PersonSuggestion(BaseModel):
    """A person credited on at least one title the caller can see."""

    id: uuid.UUID
    name: str
    slug: str
    images: dict[str, Any] = Field(default_factory=dict, description=IMAGES)


class Suggestions(BaseModel):
    """Autocomplete for the search box: titles first, then people."""

    query: str
    titles: list[TitleSuggestion]
    people: list[PersonSuggestion]
