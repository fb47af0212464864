"""HTTP routes of the viewer catalog (/api/v1/catalog): titles, people, taxonomy, home, My List, ratings.

Public GETs answer anonymous callers with CDN cache headers (see shared.catalog.cache) and signed-in
ones with `private, no-store`, because what they see depends on their profile.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import Field

from shared.catalog import cache, service
from shared.catalog.schemas import (
    BrowseSort,
    HomePage,
    MyListItem,
    MyRating,
    PersonDetail,
    RatingInput,
    SeasonRead,
    TermCount,
    TitleDetail,
    TitleKind,
    TitleSummary,
)
from shared.catalog.viewer import CurrentViewer
from shared.errors import ValidationFailed
from shared.http.auth import Principal, current_principal
from shared.http.openapi import BEARER_ERRORS, errors
from shared.http.pagination import Page, PageParams, page_params
from shared.infra.db import Tx
from shared.profiles.schemas import MaturityLevel

router = APIRouter(prefix="/api/v1/catalog", tags=["catalog"])

Paging = Annotated[PageParams, Depends(page_params)]
Caller = Annotated[Principal, Depends(current_principal)]
TitleId = Annotated[str, Path(alias="titleId", min_length=1, max_length=200, description="Title id or slug")]
Slug = Annotated[str, Field(min_length=1, max_length=100)]

# A public GET may still answer 401 for a bad token, and 503 when the database is unreachable.
_PUBLIC = {401: BEARER_ERRORS, 503: ["service_unavailable", "database_timeout"]}
_PROFILE = {**_PUBLIC, 400: ["profile_required"]}
_TITLE = {404: ["title_not_found"], 422: ["validation_failed"]}


@router.get(
    "/titles",
    response_model=Page[TitleSummary],
    summary="Browse titles with filters and sorting",
    responses=errors({**_PUBLIC, 400: ["invalid_cursor"], 422: ["validation_failed"]}),
)
async def browse(
    tx: Tx,
    viewer: CurrentViewer,
    page: Paging,
    response: Response,
    genre: Annotated[
        list[Slug], Query(max_length=20, description="Genre slug; repeat for any of several")
    ] = [],  # noqa: B006
    category: Annotated[list[Slug], Query(max_length=20, description="Category slug; repeatable")] = [],  # noqa: B006
    year_from: Annotated[int | None, Query(ge=1870, le=2200, description="Released in or after")] = None,
    year_to: Annotated[int | None, Query(ge=1870, le=2200, description="Released in or before")] = None,
    maturity: Annotated[MaturityLevel | None, Query(description="Highest maturity level")] = None,
    language: Annotated[
        str | None,
        Query(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$", description="Original or audio language"),
    ] = None,
    country: Annotated[
        str | None, Query(pattern=r"^[A-Za-z]{2}$", description="Production country (ISO 3166-1)")
    ] = None,
    kind: Annotated[TitleKind | None, Query(description="movie or series")] = None,
    sort: Annotated[
        BrowseSort,
        Query(description="popularity, newest (release date), rating (Bayesian average), title (A-Z)"),
    ] = "popularity",
) -> Page[TitleSummary]:
    """Only titles the viewer may see; pass next_cursor back as `cursor` with the same filters.

    Visible means published (or scheduled and due), inside its availability window, allowed in the
    viewer's country and within the active profile's maturity.
    """
    if year_from is not None and year_to is not None and year_from > year_to:
        raise ValidationFailed("year_from must not be after year_to.")
    result = await service.browse(
        tx,
        viewer=viewer,
        page=page,
        sort=sort,
        genres=genre,
        categories=category,
        year_from=year_from,
        year_to=year_to,
        maturity=maturity,
        language=language,
        country=country.upper() if country else None,
        kind=kind,
    )
    cache.apply(response, viewer, tags=[cache.LISTS_TAG])
    return result


@router.get(
    "/titles/{titleId}",
    response_model=TitleDetail,
    summary="A title in full (series with seasons and episodes)",
    responses=errors({**_PUBLIC, **_TITLE}),
)
async def title_detail(title_id: TitleId, tx: Tx, viewer: CurrentViewer, response: Response) -> TitleDetail:
    """By id or slug; a title the viewer may not see is a 404 like a missing one."""
    detail = await service.title_detail(tx, viewer=viewer, ref=service.title_ref(title_id))
    cache.apply(response, viewer, tags=[cache.title_tag(detail.id)])
    return detail


@router.get(
    "/titles/{titleId}/seasons/{number}",
    response_model=SeasonRead,
    summary="A season of a series with its episodes",
    responses=errors({**_PUBLIC, 404: ["title_not_found", "season_not_found"], 422: ["validation_failed"]}),
)
async def season(
    title_id: TitleId,
    number: Annotated[int, Path(ge=0, le=1000)],
    tx: Tx,
    viewer: CurrentViewer,
    response: Response,
) -> SeasonRead:
    """Episodes in order."""
    found = await service.season(tx, viewer=viewer, ref=service.title_ref(title_id), number=number)
    cache.apply(response, viewer, tags=[cache.title_tag(found.title_id)])
    return found


@router.get(
    "/people/{personId}",
    response_model=PersonDetail,
    summary="A person page with their titles",
    responses=errors({**_PUBLIC, 404: ["person_not_found"], 422: ["validation_failed"]}),
)
async def person(
    person_id: Annotated[str, Path(alias="personId", min_length=1, max_length=200, description="Id or slug")],
    tx: Tx,
    viewer: CurrentViewer,
    response: Response,
) -> PersonDetail:
    """Cast and crew credits on titles the viewer may see, newest first."""
    found = await service.person(tx, viewer=viewer, ref=service.title_ref(person_id))
    cache.apply(response, viewer, tags=[cache.LISTS_TAG, cache.person_tag(found.id)])
    return found


@router.get(
    "/genres",
    response_model=list[TermCount],
    summary="Genres with the number of titles the viewer can see",
    responses=errors(_PUBLIC),
)
async def genres(tx: Tx, viewer: CurrentViewer, response: Response) -> list[TermCount]:
    """By name; genres without a visible title are left out (content managers see them all)."""
    found = await service.terms(tx, viewer=viewer, kind="genre")
    cache.apply(response, viewer, tags=[cache.LISTS_TAG])
    return found


@router.get(
    "/categories",
    response_model=list[TermCount],
    summary="Categories with the number of titles the viewer can see",
    responses=errors(_PUBLIC),
)
async def categories(tx: Tx, viewer: CurrentViewer, response: Response) -> list[TermCount]:
    """By name; categories without a visible title are left out (content managers see them all)."""
    found = await service.terms(tx, viewer=viewer, kind="category")
    cache.apply(response, viewer, tags=[cache.LISTS_TAG])
    return found


@router.get("/home", response_model=HomePage, summary="Home page rows", responses=errors(_PUBLIC))
async def home(tx: Tx, viewer: CurrentViewer, response: Response) -> HomePage:
    """Rows in display order, each with up to 20 titles; rows without titles are left out.

    With an active profile: `continue_watching` (the titles of /api/v1/streaming/continue-watching, in its
    order; kept even when empty so clients lay the page out once) and `my_list`. Then `trending`
    (popularity plus the last week's positive ratings and My List adds), `new_arrivals`, `top_rated`
    (titles with at least 10 ratings) and one `genre:<slug>` row per top genre.
    """
    page = await service.home(tx, viewer=viewer)
    cache.apply(response, viewer, tags=[cache.LISTS_TAG])
    return page


# --- My List --------------------------------------------------------------------------------------------


@router.get(
    "/my-list",
    response_model=Page[MyListItem],
    summary="The active profile's My List",
    responses=errors({**_PROFILE, 400: ["profile_required", "invalid_cursor"], 422: ["validation_failed"]}),
)
async def my_list(
    tx: Tx, caller: Caller, viewer: CurrentViewer, page: Paging, response: Response
) -> Page[MyListItem]:
    """Most recently added first; titles the profile can no longer see are hidden (and kept)."""
    cache.private(response)
    return await service.my_list(tx, viewer=viewer, page=page)


@router.put(
    "/my-list/{titleId}",
    response_model=MyListItem,
    summary="Add a title to My List",
    responses=errors({**_PROFILE, **_TITLE}),
)
async def add_to_my_list(
    title_id: TitleId, tx: Tx, caller: Caller, viewer: CurrentViewer, response: Response
) -> MyListItem:
    """Idempotent: adding a listed title again keeps its original date."""
    cache.private(response)
    return await service.add_to_my_list(tx, viewer=viewer, ref=service.title_ref(title_id))


@router.delete(
    "/my-list/{titleId}",
    status_code=204,
    summary="Remove a title from My List",
    responses=errors({**_PROFILE, 422: ["validation_failed"]}),
)
async def remove_from_my_list(title_id: TitleId, tx: Tx, caller: Caller, viewer: CurrentViewer) -> Response:
    """Idempotent: removing a title that is not listed is not an error."""
    await service.remove_from_my_list(tx, viewer=viewer, ref=service.title_ref(title_id))
    return Response(status_code=204)


# --- ratings --------------------------------------------------------------------------------------------


@router.get(
    "/titles/{titleId}/rating",
    response_model=MyRating,
    summary="The active profile's rating of a title",
    responses=errors({**_PROFILE, **_TITLE}),
)
async def my_rating(
    title_id: TitleId, tx: Tx, caller: Caller, viewer: CurrentViewer, response: Response
) -> MyRating:
    """Thumbs and stars are null when the profile has not rated the title."""
    cache.private(response)
    return await service.my_rating(tx, viewer=viewer, ref=service.title_ref(title_id))


@router.put(
    "/titles/{titleId}/rating",
    response_model=MyRating,
    summary="Rate a title (thumbs up/down and/or 1-5 stars)",
    responses=errors({**_PROFILE, **_TITLE}),
)
async def rate(
    title_id: TitleId, body: RatingInput, tx: Tx, caller: Caller, viewer: CurrentViewer, response: Response
) -> MyRating:
    """One rating per profile and title: this replaces the previous one; answers the new aggregates."""
    cache.private(response)
    return await service.rate(tx, viewer=viewer, ref=service.title_ref(title_id), data=body)


@router.delete(
    "/titles/{titleId}/rating",
    status_code=204,
    summary="Remove the active profile's rating of a title",
    responses=errors({**_PROFILE, 422: ["validation_failed"]}),
)
async def unrate(title_id: TitleId, tx: Tx, caller: Caller, viewer: CurrentViewer) -> Response:
    """Idempotent: no error when the profile had not rated it."""
    await service.unrate(tx, viewer=viewer, ref=service.title_ref(title_id))
    return Response(status_code=204)
