"""The viewer-facing catalog: browse, title and person pages, taxonomy, home rows, My List and ratings.

Everything here sees titles through the viewer's visibility (status, window, country, maturity); a title
the viewer may not see answers exactly like one that does not exist.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from shared.catalog import repository
from shared.catalog.repository import BrowseQuery, Row
from shared.catalog.schemas import (
    BrowseSort,
    CastCredit,
    CrewCredit,
    EpisodeRead,
    ExternalIds,
    HomePage,
    HomeRow,
    MyListItem,
    MyRating,
    PersonCredit,
    PersonDetail,
    Publishing,
    RatingAggregates,
    RatingInput,
    SeasonRead,
    TermCount,
    TermRead,
    TitleDetail,
    TitleSummary,
    Trailer,
)
from shared.catalog.visibility import Viewer
from shared.errors import BadRequest, NotFound
from shared.http.pagination import InvalidCursor, Page, PageParams, encode_cursor
from shared.profiles.schemas import maturity_rank
from shared.settings import get_settings

ROW_SIZE = 20
GENRE_ROWS = 6
TOP_RATED_MIN_VOTES = 10
TRENDING_DAYS = 7
TRENDING_WEIGHT = 10.0  # popularity points per positive rating or My List add in the last week


class TitleNotFound(NotFound):
    """No title the caller may see has this id or slug."""

    code = "title_not_found"


class ProfileRequired(BadRequest):
    """My List and ratings belong to a viewer profile; the token carries none."""

    code = "profile_required"
    title = "Profile required"

    def __init__(self) -> None:
        super().__init__("Select a profile first (POST /api/v1/users/me/profiles/{id}/select).")


def title_ref(value: str) -> uuid.UUID | str:
    """A path's titleId/personId: a UUID, else a slug."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return value


# --- rows to models -------------------------------------------------------------------------------------


async def resolve_images(images: dict[str, Any] | None) -> dict[str, Any]:
    """Responsive image URLs of a stored `images` object: the one place they are resolved (search too)."""
    from shared.catalog.images import image_urls

    return await image_urls(images, settings=get_settings())


def aggregates_of(row: Row) -> RatingAggregates:
    """The rating aggregates of a title row."""
    stars_count = int(row["stars_count"])
    return RatingAggregates(
        thumbs_up=row["thumbs_up"],
        thumbs_down=row["thumbs_down"],
        stars_average=round(row["stars_sum"] / stars_count, 2) if stars_count else None,
        stars_count=stars_count,
    )


def _summary_fields(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "kind": row["kind"],
        "slug": row["slug"],
        "title": row["title"],
        "release_year": row["release_year"],
        "runtime_minutes": row["runtime_minutes"],
        "maturity_level": row["maturity_level"],
        "rating_system": row["rating_system"],
        "rating": row["rating"],
        "genres": [TermRead.model_validate(genre) for genre in row["genres"]],
        "user_ratings": aggregates_of(row),
    }


async def to_summary(row: Row) -> TitleSummary:
    """A TitleSummary from a row selected with repository.SUMMARY."""
    return TitleSummary(**_summary_fields(row), images=await resolve_images(row["images"]))


async def to_summaries(rows: list[Row]) -> list[TitleSummary]:
    """TitleSummary of each row, in order."""
    return list(await asyncio.gather(*(to_summary(row) for row in rows)))


async def summaries_by_ids(conn: Any, *, viewer: Viewer, title_ids: list[uuid.UUID]) -> list[TitleSummary]:
    """The cards of these titles in the given order, leaving out those the viewer may not see (search)."""
    rows = {row["id"]: row for row in await repository.summaries(conn, viewer, title_ids)}
    return await to_summaries([rows[title_id] for title_id in title_ids if title_id in rows])


# --- browse ---------------------------------------------------------------------------------------------


def _after(sort: BrowseSort, page: PageParams) -> tuple[Any, uuid.UUID] | None:
    """The keyset position of a cursor, checked against the sort (a cursor of another sort is refused)."""
    if page.after is None:
        return None
    try:
        cursor_sort, key, last_id = page.after
        if cursor_sort != sort:
            raise ValueError("cursor of another sort")
        value: Any
        if sort in ("popularity", "rating"):
            value = float(key)
        elif sort == "newest":
            value = date.fromisoformat(key)
        else:
            if key is not None:
                raise ValueError("title cursors carry no key")
            value = None
        return value, uuid.UUID(str(last_id))
    except (TypeError, ValueError) as error:
        raise InvalidCursor("The cursor is malformed or belongs to another sort; start again.") from error


async def browse(
    conn: Any,
    *,
    viewer: Viewer,
    page: PageParams,
    sort: BrowseSort = "popularity",
    genres: list[str] | None = None,
    categories: list[str] | None = None,
    year_from: int | None = None,
    year_to: int | None = None,
    maturity: str | None = None,
    language: str | None = None,
    country: str | None = None,
    kind: str | None = None,
) -> Page[TitleSummary]:
    """Visible titles matching the filters, one page in the sort's order."""
    query = BrowseQuery(
        sort=sort,
        genres=genres or [],
        categories=categories or [],
        year_from=year_from,
        year_to=year_to,
        max_rank=maturity_rank(maturity) if maturity is not None else None,
        language=language,
        country=country,
        kind=kind,
        after=_after(sort, page),
        limit=page.limit + 1,
    )
    rows = await repository.browse(conn, viewer, query)
    items = await to_summaries(rows[: page.limit])
    next_cursor = None
    if len(rows) > page.limit:
        last = rows[page.limit - 1]
        key = None if sort == "title" else last["sort_key"]  # a title can be long: looked up by id instead
        next_cursor = encode_cursor([sort, key, str(last["id"])])
    return Page[TitleSummary](items=items, next_cursor=next_cursor)


# --- title, season, person ------------------------------------------------------------------------------


def _season(row: Row, episodes: list[EpisodeRead]) -> SeasonRead:
    return SeasonRead(
        id=row["id"],
        title_id=row["title_id"],
        number=row["number"],
        name=row["name"],
        synopsis=row["synopsis"],
        release_date=row["release_date"],
        images=row["images"],
        episode_count=len(episodes),
        episodes=episodes,
    )


async def _seasons(conn: Any, title_id: uuid.UUID, number: int | None = None) -> list[SeasonRead]:
    seasons = await repository.seasons(conn, title_id, number)
    episode_rows = await repository.episodes(conn, title_id, number) if seasons else []
    images = await asyncio.gather(
        *(resolve_images(row["images"]) for row in seasons),
        *(resolve_images(row["images"]) for row in episode_rows),
    )
    by_season: dict[uuid.UUID, list[EpisodeRead]] = {row["id"]: [] for row in seasons}
    for row, resolved in zip(episode_rows, images[len(seasons) :], strict=True):
        by_season[row["season_id"]].append(
            EpisodeRead(
                id=row["id"],
                season_number=row["season_number"],
                number=row["number"],
                name=row["name"],
                synopsis=row["synopsis"],
                runtime_minutes=row["runtime_minutes"],
                release_date=row["release_date"],
                images=resolved,
            )
        )
    return [
        _season({**row, "images": resolved}, by_season[row["id"]])
        for row, resolved in zip(seasons, images[: len(seasons)], strict=True)
    ]


async def _credits(conn: Any, title_id: uuid.UUID) -> tuple[list[CastCredit], list[CrewCredit]]:
    rows = await repository.credits(conn, title_id)
    photos = await asyncio.gather(*(resolve_images(row["images"]) for row in rows))
    cast: list[CastCredit] = []
    crew: list[CrewCredit] = []
    for row, images in zip(rows, photos, strict=True):
        common = {
            "person_id": row["person_id"],
            "name": row["name"],
            "slug": row["slug"],
            "order": row["billing_order"],
            "images": images,
        }
        if row["role"] == "cast":
            cast.append(CastCredit(**common, character=row["character"]))
        else:
            crew.append(CrewCredit(**common, job=row["job"]))
    return cast, crew


async def title_detail(conn: Any, *, viewer: Viewer, ref: uuid.UUID | str) -> TitleDetail:
    """A visible title in full (seasons and episodes for a series); `publishing` only for managers."""
    row = await repository.title(conn, viewer, ref)
    if row is None:
        raise TitleNotFound("No such title.")
    title_id: uuid.UUID = row["id"]
    categories = await repository.categories(conn, title_id)
    cast, crew = await _credits(conn, title_id)
    seasons = await _seasons(conn, title_id) if row["kind"] == "series" else []
    publishing = Publishing.model_validate(row) if viewer.manager else None
    return TitleDetail(
        **_summary_fields(row),
        images=await resolve_images(row["images"]),
        original_title=row["original_title"],
        synopsis_short=row["synopsis_short"],
        synopsis_long=row["synopsis_long"],
        release_date=row["release_date"],
        countries=row["countries"],
        original_language=row["original_language"],
        audio_languages=row["audio_languages"],
        subtitle_languages=row["subtitle_languages"],
        tags=row["tags"],
        access=row["access"],
        min_tier=row["min_tier"],
        categories=[TermRead.model_validate(term) for term in categories],
        trailers=[Trailer.model_validate(item) for item in row["trailers"] if isinstance(item, dict)],
        external_ids=ExternalIds(imdb=row["imdb_id"], tmdb=row["tmdb_id"]),
        cast=cast,
        crew=crew,
        seasons=seasons,
        publishing=publishing,
    )


async def season(conn: Any, *, viewer: Viewer, ref: uuid.UUID | str, number: int) -> SeasonRead:
    """One season of a visible series with its episodes."""
    title_id = await repository.visible_title_id(conn, viewer, ref)
    if title_id is None:
        raise TitleNotFound("No such title.")
    seasons = await _seasons(conn, title_id, number)
    if not seasons:
        raise NotFound("This title has no season with that number.", code="season_not_found")
    return seasons[0]


async def person(conn: Any, *, viewer: Viewer, ref: uuid.UUID | str) -> PersonDetail:
    """A person page with their credits on titles the viewer may see."""
    row = await repository.person(conn, ref)
    if row is None:
        raise NotFound("No such person.", code="person_not_found")
    credit_rows = await repository.person_credits(conn, viewer, row["id"])
    if not credit_rows and not viewer.manager:
        # Someone credited only on titles this viewer may not see (drafts, 18+ for a kids profile) has
        # no public page yet: the page would name people of unreleased or unsuitable titles.
        raise NotFound("No such person.", code="person_not_found")
    cards = await to_summaries(credit_rows)
    return PersonDetail(
        id=row["id"],
        name=row["name"],
        slug=row["slug"],
        biography=row["biography"],
        birth_date=row["birth_date"],
        images=await resolve_images(row["images"]),
        external_ids=ExternalIds(imdb=row["imdb_id"], tmdb=row["tmdb_id"]),
        credits=[
            PersonCredit(
                title=card,
                role=credit["role"],
                character=credit["character"],
                job=credit["job"],
                order=credit["billing_order"],
            )
            for credit, card in zip(credit_rows, cards, strict=True)
        ],
    )


async def terms(conn: Any, *, viewer: Viewer, kind: str) -> list[TermCount]:
    """Genres or categories with the number of titles the viewer can see in each."""
    return [TermCount.model_validate(row) for row in await repository.terms(conn, viewer, kind)]


# --- home -----------------------------------------------------------------------------------------------


async def home(conn: Any, *, viewer: Viewer) -> HomePage:
    """The home page rows for this viewer (profile rows first when a profile is active)."""
    rows: list[HomeRow] = []
    if viewer.profile_id is not None:
        from shared.watch import service as watch

        # Kept even when empty so clients lay the page out once; progress is in the streaming group's
        # GET /api/v1/streaming/continue-watching (the same service function, the same order).
        resume = await watch.continue_watching_titles(conn, viewer=viewer, limit=ROW_SIZE)
        rows.append(HomeRow(id="continue_watching", title="Continue watching", items=resume))
        listed = await repository.my_list(conn, viewer, viewer.profile_id, after=None, limit=ROW_SIZE)
        if listed:
            rows.append(HomeRow(id="my_list", title="My List", items=await to_summaries(listed)))
    since = viewer.at - timedelta(days=TRENDING_DAYS)
    trending = await repository.trending(conn, viewer, since=since, weight=TRENDING_WEIGHT, limit=ROW_SIZE)
    newest = await repository.new_arrivals(conn, viewer, ROW_SIZE)
    best = await repository.top_rated(conn, viewer, min_votes=TOP_RATED_MIN_VOTES, limit=ROW_SIZE)
    for row_id, name, found in (
        ("trending", "Trending now", trending),
        ("new_arrivals", "New arrivals", newest),
        ("top_rated", "Top rated", best),
    ):
        if found:
            rows.append(HomeRow(id=row_id, title=name, items=await to_summaries(found)))
    by_genre: dict[str, tuple[str, list[Row]]] = {}
    for row in await repository.genre_rows(conn, viewer, genres=GENRE_ROWS, limit=ROW_SIZE):
        by_genre.setdefault(row["row_slug"], (row["row_name"], []))[1].append(row)
    for slug, (name, found) in by_genre.items():
        rows.append(HomeRow(id=f"genre:{slug}", title=name, items=await to_summaries(found)))
    return HomePage(rows=rows)


# --- My List --------------------------------------------------------------------------------------------


def profile_of(viewer: Viewer) -> uuid.UUID:
    """The viewer's active profile, or 400 profile_required."""
    if viewer.profile_id is None:
        raise ProfileRequired()
    return viewer.profile_id


async def my_list(conn: Any, *, viewer: Viewer, page: PageParams) -> Page[MyListItem]:
    """The active profile's list, most recently added first (titles it can no longer see are hidden)."""
    profile_id = profile_of(viewer)
    after: tuple[datetime, uuid.UUID] | None = None
    if page.after is not None:
        try:
            added_at, title_id = page.after
            after = (datetime.fromisoformat(added_at), uuid.UUID(str(title_id)))
        except (TypeError, ValueError, AttributeError) as error:
            raise InvalidCursor("The cursor is malformed; start again without one.") from error
    rows = await repository.my_list(conn, viewer, profile_id, after=after, limit=page.limit + 1)
    cards = await to_summaries(rows[: page.limit])
    items = [MyListItem(title=card, added_at=row["added_at"]) for row, card in zip(rows, cards, strict=False)]
    next_cursor = None
    if len(rows) > page.limit:
        last = items[-1]
        next_cursor = encode_cursor([last.added_at.isoformat(), str(last.title.id)])
    return Page[MyListItem](items=items, next_cursor=next_cursor)


async def add_to_my_list(conn: Any, *, viewer: Viewer, ref: uuid.UUID | str) -> MyListItem:
    """Put a visible title on the active profile's list (idempotent)."""
    profile_id = profile_of(viewer)
    title_id = await repository.visible_title_id(conn, viewer, ref)
    if title_id is None:
        raise TitleNotFound("No such title.")
    added_at = await repository.add_to_my_list(conn, profile_id, title_id)
    (card,) = await summaries_by_ids(conn, viewer=viewer, title_ids=[title_id])
    return MyListItem(title=card, added_at=added_at)


async def remove_from_my_list(conn: Any, *, viewer: Viewer, ref: uuid.UUID | str) -> None:
    """Take a title off the active profile's list (no error when it was not there)."""
    profile_id = profile_of(viewer)
    title_id = await repository.title_id_of(conn, ref)
    if title_id is not None:
        await repository.remove_from_my_list(conn, profile_id, title_id)


# --- ratings --------------------------------------------------------------------------------------------


async def _rating_of(conn: Any, profile_id: uuid.UUID, title_id: uuid.UUID) -> MyRating:
    mine = await repository.rating(conn, profile_id, title_id)
    counters = await repository.aggregates(conn, title_id)
    if counters is None:
        raise TitleNotFound("No such title.")
    return MyRating(
        title_id=title_id,
        thumbs=mine["thumbs"] if mine else None,
        stars=mine["stars"] if mine else None,
        rated_at=mine["rated_at"] if mine else None,
        user_ratings=aggregates_of(counters),
    )


async def my_rating(conn: Any, *, viewer: Viewer, ref: uuid.UUID | str) -> MyRating:
    """The active profile's rating of a visible title (nulls when it has not rated it)."""
    profile_id = profile_of(viewer)
    title_id = await repository.visible_title_id(conn, viewer, ref)
    if title_id is None:
        raise TitleNotFound("No such title.")
    return await _rating_of(conn, profile_id, title_id)


async def rate(conn: Any, *, viewer: Viewer, ref: uuid.UUID | str, data: RatingInput) -> MyRating:
    """Set the active profile's rating of a visible title (replacing any earlier one)."""
    profile_id = profile_of(viewer)
    title_id = await repository.visible_title_id(conn, viewer, ref)
    if title_id is None:
        raise TitleNotFound("No such title.")
    await repository.set_rating(conn, profile_id, title_id, thumbs=data.thumbs, stars=data.stars)
    return await _rating_of(conn, profile_id, title_id)


async def unrate(conn: Any, *, viewer: Viewer, ref: uuid.UUID | str) -> None:
    """Remove the active profile's rating of a title (no error when there was none)."""
    profile_id = profile_of(viewer)
    title_id = await repository.title_id_of(conn, ref)
    if title_id is not None:
        await repository.delete_rating(conn, profile_id, title_id)
