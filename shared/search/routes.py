"""HTTP routes of catalog search (/api/v1/search): full-text search with facets, and autocomplete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import StringConstraints

from shared.catalog import cache
from shared.catalog.viewer import CurrentViewer
from shared.http.openapi import BEARER_ERRORS, errors
from shared.infra.db import Tx
from shared.profiles.schemas import MaturityLevel
from shared.search import service
from shared.search.schemas import MAX_QUERY_LENGTH, SearchResults, Suggestions

router = APIRouter(prefix="/api/v1/search", tags=["search"])

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,79}$")]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")]
_QUERY = Query(
    min_length=1,
    max_length=MAX_QUERY_LENGTH,
    description='Web search syntax: words (all must match), "an exact phrase", -excluded, a or b. '
    "Accents and case do not matter; misspelt titles and names are found by similarity.",
)
_COMMON = {401: BEARER_ERRORS, 503: ["service_unavailable", "database_timeout"]}


@router.get(
    "",
    response_model=SearchResults,
    summary="Search titles by name, people and synopsis, with facets",
    responses=errors(
        {
            **_COMMON,
            400: ["invalid_cursor"],
            422: ["validation_failed", "query_empty", "invalid_decade"],
        }
    ),
)
async def search(
    response: Response,
    tx: Tx,
    viewer: CurrentViewer,
    q: Annotated[str, _QUERY],
    genre: Annotated[list[Slug] | None, Query(max_length=20, description="genre slugs (any of)")] = None,
    decade: Annotated[
        list[Annotated[int, Query(ge=1870, le=2100)]] | None,
        Query(max_length=20, description="decades (any of), e.g. 1990 for the 1990s"),
    ] = None,
    maturity: Annotated[
        list[MaturityLevel] | None, Query(max_length=5, description="levels (any of)")
    ] = None,
    language: Annotated[
        list[Language] | None, Query(max_length=20, description="original languages (any of)")
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=512, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=50, description="page size")] = 20,
) -> SearchResults:
    """Titles the caller may see, best match first; facets count every visible match, not only the page."""
    cache.apply(response, viewer, tags=[cache.LISTS_TAG])
    return await service.search(
        tx,
        viewer=viewer,
        q=q,
        genres=list(genre or []),
        decades=list(decade or []),
        maturities=list(maturity or []),
        languages=list(language or []),
        cursor=cursor,
        limit=limit,
    )


@router.get(
    "/autocomplete",
    response_model=Suggestions,
    summary="Suggestions for the search box as the viewer types",
    responses=errors({**_COMMON, 422: ["validation_failed", "query_empty"]}),
)
async def autocomplete(
    response: Response,
    tx: Tx,
    viewer: CurrentViewer,
    q: Annotated[str, Query(min_length=1, max_length=100, description="what was typed so far")],
    limit: Annotated[int, Query(ge=1, le=20, description="most titles; people up to half as many")] = 8,
) -> Suggestions:
    """Titles and people with a word starting with each typed word (accents ignored); visible titles only."""
    cache.apply(response, viewer, tags=[cache.LISTS_TAG])
    return await service.suggest(tx, viewer=viewer, q=q, limit=limit)
