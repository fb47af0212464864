"""Catalog search: query parsing, the brief Redis result cache, and the answers' shapes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from shared.catalog.service import resolve_images
from shared.catalog.visibility import Viewer
from shared.errors import ValidationFailed
from shared.http.pagination import InvalidCursor, decode_cursor, encode_cursor
from shared.search import repository
from shared.search.schemas import (
    Facets,
    PersonSuggestion,
    SearchHit,
    SearchResults,
    Suggestions,
    TitleSuggestion,
)
from shared.settings import get_settings

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    Conn = AsyncConnection[Any]
else:
    Conn = Any

logger = logging.getLogger("cinema.search")
Model = TypeVar("Model", bound=BaseModel)

# Search-as-you-type repeats the same queries within seconds; longer would show stale availability.
RESULT_CACHE_SECONDS = 30
MAX_PREFIX_WORDS = 8
MAX_FUZZY_WORDS = 8
_SPACES = re.compile(r"\s+")
# websearch syntax the typo matcher must not see: excluded words (-word, -"a phrase"), quotes, "or".
_EXCLUDED = re.compile(r'(?:^|\s)-(?:"[^"]*"?|\S+)')
_OR = re.compile(r"(?:^|\s)or(?=\s|$)", re.IGNORECASE)
_PHRASE = re.compile(r'"[^"]*"?')
_WORD = re.compile(r"\w+")


def clean_query(q: str) -> str:
    """The query with runs of white space collapsed; 422 when nothing is left."""
    text = _SPACES.sub(" ", q).strip()
    if not text:
        raise ValidationFailed("Type something to search for.", code="query_empty")
    return text


def fuzzy_text(text: str) -> str:
    """The words a viewer may have misspelt: not excluded, not in an exact "phrase", not `or` (at most 8)."""
    kept = _OR.sub(" ", _PHRASE.sub(" ", _EXCLUDED.sub(" ", text))).replace('"', " ")
    return " ".join(kept.split()[:MAX_FUZZY_WORDS])


def phrases_text(text: str) -> str:
    """The exact "phrases" (not excluded ones), which typo-tolerant matches must contain as well."""
    return " ".join(match for match in _PHRASE.findall(_EXCLUDED.sub(" ", text)) if match.strip('" '))


def excluded_text(text: str) -> str:
    """The excluded words and phrases as one websearch query matching any of them ("" when none)."""
    return " or ".join(match.strip().removeprefix("-") for match in _EXCLUDED.findall(text))


def prefix_words(text: str) -> list[str]:
    """The typed words (letters and digits), at most 8."""
    return _WORD.findall(text.casefold())[:MAX_PREFIX_WORDS]


def prefix_query(words: list[str]) -> str:
    """A to_tsquery text of the typed words, the last one a prefix: "the godf" -> 'the' & 'godf':*."""
    # \w+ words hold no tsquery syntax (quotes, &, |, !, :), so they need no escaping. The words before the
    # last are finished (a space followed them): matched whole, which also keeps "the a" from reading
    # every word that starts with an "a".
    return (
        " & ".join(f"'{word}'" for word in words[:-1])
        + (" & " if len(words) > 1 else "")
        + f"'{words[-1]}':*"
    )


def like_prefix(text: str) -> str:
    """`text` escaped for LIKE (backslash is the default escape character)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _cursor(cursor: str | None) -> tuple[float, uuid.UUID] | None:
    if cursor is None:
        return None
    key = decode_cursor(cursor)
    try:
        score, title_id = key
        return float(score), uuid.UUID(str(title_id))
    except (TypeError, ValueError) as error:
        raise InvalidCursor("The cursor is malformed; start again without one.") from error


def _check_decades(decades: list[int]) -> None:
    for decade in decades:
        if decade % 10:
            raise ValidationFailed(
                f"decade {decade} is not a decade; use 1990 for the 1990s.", code="invalid_decade"
            )


async def _with_image_urls(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with their stored `images` replaced by URLs, resolved as the catalog's cards are."""
    # Before the result cache, so a cached answer carries URLs too: they outlive the cache by the URL TTL.
    resolved = await asyncio.gather(*(resolve_images(item.get("images")) for item in items))
    return [{**item, "images": images} for item, images in zip(items, resolved, strict=True)]


async def _cached(
    viewer: Viewer, kind: str, parts: list[Any], model: type[Model], compute: Callable[[], Awaitable[Model]]
) -> Model:
    """Serve from Redis when the same viewer kind asked the same thing lately; managers never share one."""
    seconds = min(RESULT_CACHE_SECONDS, get_settings().catalog_cache_seconds)
    if viewer.manager or seconds <= 0:
        return await compute()
    from shared.catalog.cache import catalog_version
    from shared.infra.redis import RedisUnavailable, get_redis

    digest = hashlib.sha256(json.dumps(parts, default=str, separators=(",", ":")).encode()).hexdigest()[:32]
    try:
        redis = await get_redis()
        # The version moves on every catalog change, so an edit is searchable at once.
        key = f"search:{kind}:{await catalog_version()}:{viewer.cache_key}:{digest}"
        cached = await redis.get(key)
    except RedisUnavailable:
        logger.warning("Redis is unavailable: searching without the result cache")
        return await compute()
    if cached is not None:
        return model.model_validate_json(cached)
    result = await compute()
    try:
        await redis.set(key, result.model_dump_json(), ex=seconds)
    except RedisUnavailable:
        logger.warning("Redis is unavailable: a search result was not cached")
    return result


async def search(
    conn: Conn,
    *,
    viewer: Viewer,
    q: str,
    genres: list[str],
    decades: list[int],
    maturities: list[str],
    languages: list[str],
    cursor: str | None,
    limit: int,
) -> SearchResults:
    """Visible titles matching a websearch query (typos tolerated), best first, with facet counts."""
    text = clean_query(q)
    _check_decades(decades)
    query = repository.SearchQuery(
        text=text,
        fuzzy=fuzzy_text(text),
        excluded=excluded_text(text),
        phrases=phrases_text(text),
        genres=sorted(set(genres)),
        decades=sorted(set(decades)),
        maturities=sorted(set(maturities)),
        languages=sorted(set(languages)),
        after=_cursor(cursor),
        limit=limit + 1,
    )

    async def compute() -> SearchResults:
        row = await repository.search(conn, viewer, query)
        items: list[dict[str, Any]] = row["items"]
        page_items, more = items[:limit], len(items) > limit
        page = [SearchHit.model_validate(item) for item in await _with_image_urls(page_items)]
        return SearchResults(
            query=text,
            items=page,
            total=row["total"],
            capped=row["capped"],
            facets=Facets(
                genre=row["genre"], decade=row["decade"], maturity=row["maturity"], language=row["language"]
            ),
            next_cursor=encode_cursor([page[-1].score, str(page[-1].id)]) if more and page else None,
        )

    parts = [
        text,
        query.genres,
        query.decades,
        query.maturities,
        query.languages,
        cursor,
        limit,
    ]
    return await _cached(viewer, "q", parts, SearchResults, compute)


async def suggest(conn: Conn, *, viewer: Viewer, q: str, limit: int) -> Suggestions:
    """Titles (up to `limit`) with a word starting with each typed word; people (up to half as many)."""
    text = clean_query(q)
    words = prefix_words(text)
    if not words:  # punctuation only: nothing can start with it
        return Suggestions(query=text, titles=[], people=[])
    prefix = prefix_query(words)

    async def compute() -> Suggestions:
        row = await repository.suggestions(
            conn, viewer, typed=text, words=words, prefix=prefix, like=like_prefix(text), limit=limit
        )
        return Suggestions(
            query=text,
            titles=[TitleSuggestion.model_validate(item) for item in await _with_image_urls(row["titles"])],
            people=[PersonSuggestion.model_validate(item) for item in await _with_image_urls(row["people"])],
        )

    return await _cached(viewer, "ac", [text, limit], Suggestions, compute)
