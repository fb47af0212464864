"""All SQL of the viewer-facing catalog: titles, seasons, people, taxonomy, rows, My List and ratings.

Every query that returns titles to a viewer filters them with `visible_sql` and `Viewer.params()`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.catalog.visibility import Viewer, visible_sql
from shared.infra.db import fetch_all, fetch_one

if TYPE_CHECKING:  # psycopg loads on first query, not at import (cold start)
    from psycopg import AsyncConnection

    Conn = AsyncConnection[Any]
else:
    Conn = Any
Row = dict[str, Any]

VISIBLE = visible_sql("t")

# The card of a title (TitleSummary) with its genres as JSON, for any query over `catalog_titles t`.
SUMMARY = """t.id, t.kind, t.slug, t.title, t.release_year, t.runtime_minutes, t.maturity_level,
    t.rating_system, t.rating, t.images, t.thumbs_up, t.thumbs_down, t.stars_sum, t.stars_count,
    coalesce((select json_agg(json_build_object('id', g.id, 'kind', g.kind, 'slug', g.slug, 'name', g.name)
                              order by g.name)
              from public.catalog_title_terms tt join public.catalog_terms g on g.id = tt.term_id
              where tt.title_id = t.id and g.kind = 'genre'), '[]'::json) as genres"""

# Thumbs count as 5 (up) or 1 (down) stars. The prior (5 votes at 3 stars) keeps a title with two perfect
# votes below one with hundreds of good ones: a Bayesian average, so few votes say little.
RATING_SCORE = """((t.stars_sum + 5 * t.thumbs_up + t.thumbs_down + 15)::float8
    / (t.stars_count + t.thumbs_up + t.thumbs_down + 5))"""
VOTES = "(t.stars_count + t.thumbs_up + t.thumbs_down)"
# Undated titles sort last among the newest (a real date, not -infinity, so the cursor can carry it).
RELEASED = "coalesce(t.release_date, make_date(t.release_year::int, 1, 1), '0001-01-01'::date)"
# When a visible title became available to viewers: added, published or its window opened.
ARRIVED = """greatest(t.created_at, coalesce(t.publish_at, t.created_at), coalesce(t.available_from,
    t.created_at))"""

# sort -> (key expression, SQL type of the key, descending?)
SORTS: dict[str, tuple[str, str, bool]] = {
    "popularity": ("t.popularity", "float8", True),
    "newest": (RELEASED, "date", True),
    "rating": (RATING_SCORE, "float8", True),
    "title": ("lower(cinema_private.unaccent_text(t.title))", "text", False),
}


def _ref(alias: str, ref: uuid.UUID | str) -> tuple[str, Any]:
    """Match a row by id or (among rows not deleted) by slug."""
    if isinstance(ref, uuid.UUID):
        return f"{alias}.id = %(ref)s", ref
    return f"{alias}.slug = %(ref)s and {alias}.deleted_at is null", ref


# --- browse -------------------------------------------------------------------------------------------


@dataclass
class BrowseQuery:
    """Filters and the keyset position of a browse page."""

    sort: str = "popularity"
    genres: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    year_from: int | None = None
    year_to: int | None = None
    max_rank: int | None = None
    language: str | None = None
    country: str | None = None
    kind: str | None = None
    after: tuple[Any, uuid.UUID] | None = None  # (key, id) of the last row; key None: look it up
    limit: int = 21


async def browse(conn: Conn, viewer: Viewer, query: BrowseQuery) -> list[Row]:
    """Visible titles matching the filters in the sort's order, after the cursor; each row has `sort_key`."""
    key, key_type, descending = SORTS[query.sort]
    where = [VISIBLE]
    params: dict[str, Any] = {**viewer.params(), "limit": query.limit}
    for kind, slugs in (("genre", query.genres), ("category", query.categories)):
        if slugs:
            where.append(
                f"""exists (select 1 from public.catalog_title_terms tt
                    join public.catalog_terms g on g.id = tt.term_id
                    where tt.title_id = t.id and g.kind = '{kind}' and g.slug = any(%({kind}s)s))"""  # noqa: S608 - built from constants only
            )
            params[f"{kind}s"] = slugs
    if query.year_from is not None:
        where.append("t.release_year >= %(year_from)s")
        params["year_from"] = query.year_from
    if query.year_to is not None:
        where.append("t.release_year <= %(year_to)s")
        params["year_to"] = query.year_to
    if query.max_rank is not None:
        where.append("t.maturity_rank <= %(max_rank)s")
        params["max_rank"] = query.max_rank
    if query.language is not None:
        where.append("(t.original_language = %(language)s or %(language)s = any(t.audio_languages))")
        params["language"] = query.language
    if query.country is not None:
        where.append("%(country)s = any(t.countries)")
        params["country"] = query.country
    if query.kind is not None:
        where.append("t.kind = %(kind)s")
        params["kind"] = query.kind
    direction = "desc" if descending else "asc"
    if query.after is not None:
        params["after_key"], params["after_id"] = query.after
        bound = f"%(after_key)s::{key_type}"
        if query.after[0] is None:
            # The key is read from the last title seen: a long title would make too long a cursor.
            bound = f"(select {key} from public.catalog_titles t where t.id = %(after_id)s)"  # noqa: S608 - built from constants only
        where.append(f"({key}, t.id) {'<' if descending else '>'} ({bound}, %(after_id)s)")
    sql = f"""select {SUMMARY}, {key} as sort_key from public.catalog_titles t
        where {" and ".join(where)}
        order by {key} {direction}, t.id {direction} limit %(limit)s"""  # noqa: S608 - built from constants only
    return await fetch_all(conn, sql, params)


async def summaries(conn: Conn, viewer: Viewer, title_ids: list[uuid.UUID]) -> list[Row]:
    """The visible ones of these titles, in no particular order."""
    return await fetch_all(
        conn,
        f"select {SUMMARY} from public.catalog_titles t where t.id = any(%(ids)s) and {VISIBLE}",  # noqa: S608 - built from constants only
        {**viewer.params(), "ids": title_ids},
    )


# --- one title ----------------------------------------------------------------------------------------


async def visible_title_id(conn: Conn, viewer: Viewer, ref: uuid.UUID | str) -> uuid.UUID | None:
    """The id of the title (by id or slug) when the viewer may see it."""
    match, value = _ref("t", ref)
    row = await fetch_one(
        conn,
        f"select t.id from public.catalog_titles t where {match} and {VISIBLE}",  # noqa: S608 - built from constants only
        {**viewer.params(), "ref": value},
    )
    return row["id"] if row else None


async def title_id_of(conn: Conn, ref: uuid.UUID | str) -> uuid.UUID | None:
    """The id of a title by id or slug, whoever may see it (for removals, which reveal nothing)."""
    if isinstance(ref, uuid.UUID):
        return ref
    row = await fetch_one(
        conn,
        "select id from public.catalog_titles where slug = %(ref)s and deleted_at is null",
        {"ref": ref},
    )
    return row["id"] if row else None


# The detail page's columns: everything but the search index columns (a tsvector per title is ~1 KB).
DETAIL = """t.original_title, t.synopsis_short, t.synopsis_long, t.release_date, t.countries,
    t.original_language, t.audio_languages, t.subtitle_languages, t.tags, t.trailers, t.imdb_id, t.tmdb_id,
    t.status, t.publish_at, t.available_from, t.available_until, t.country_allow, t.country_deny,
    t.popularity, t.created_at, t.updated_at, t.deleted_at, t.maturity_rank, t.access, t.min_tier"""


async def title(conn: Conn, viewer: Viewer, ref: uuid.UUID | str) -> Row | None:
    """Every column of a visible title plus its genres (by id or slug)."""
    match, value = _ref("t", ref)
    return await fetch_one(
        conn,
        f"select {DETAIL}, {SUMMARY} from public.catalog_titles t where {match} and {VISIBLE}",  # noqa: S608 - constants
        {**viewer.params(), "ref": value},
    )


async def categories(conn: Conn, title_id: uuid.UUID) -> list[Row]:
    """The categories of a title, by name."""
    return await fetch_all(
        conn,
        """select g.id, g.kind, g.slug, g.name from public.catalog_title_terms tt
           join public.catalog_terms g on g.id = tt.term_id
           where tt.title_id = %(id)s and g.kind = 'category' order by g.name""",
        {"id": title_id},
    )


async def credits(conn: Conn, title_id: uuid.UUID) -> list[Row]:
    """Cast and crew of a title in billing order (people not deleted)."""
    return await fetch_all(
        conn,
        """select c.role, c.character, c.job, c.billing_order, p.id as person_id, p.name, p.slug, p.images
           from public.catalog_credits c
           join public.catalog_people p on p.id = c.person_id and p.deleted_at is null
           where c.title_id = %(id)s order by c.role, c.billing_order, p.name""",
        {"id": title_id},
    )


async def seasons(conn: Conn, title_id: uuid.UUID, number: int | None = None) -> list[Row]:
    """Seasons of a series (or the one numbered `number`) in order."""
    only = "and s.number = %(number)s" if number is not None else ""
    return await fetch_all(
        conn,
        f"""select s.id, s.title_id, s.number, s.name, s.synopsis, s.release_date, s.images
            from public.catalog_seasons s where s.title_id = %(id)s {only} order by s.number""",  # noqa: S608 - built from constants only
        {"id": title_id, "number": number},
    )


async def episodes(conn: Conn, title_id: uuid.UUID, number: int | None = None) -> list[Row]:
    """Episodes of a series (or of its season `number`) in season then episode order."""
    only = "and s.number = %(number)s" if number is not None else ""
    return await fetch_all(
        conn,
        f"""select e.id, e.season_id, s.number as season_number, e.number, e.name, e.synopsis,
                   e.runtime_minutes, e.release_date, e.images
            from public.catalog_episodes e join public.catalog_seasons s on s.id = e.season_id
            where e.title_id = %(id)s {only} order by s.number, e.number""",  # noqa: S608 - built from constants only
        {"id": title_id, "number": number},
    )


# --- people -------------------------------------------------------------------------------------------


async def person(conn: Conn, ref: uuid.UUID | str) -> Row | None:
    """A person who is not deleted, by id or slug."""
    match, value = _ref("p", ref)
    return await fetch_one(
        conn,
        f"""select p.id, p.name, p.slug, p.biography, p.birth_date, p.images, p.imdb_id, p.tmdb_id
            from public.catalog_people p where {match} and p.deleted_at is null""",  # noqa: S608 - built from constants only
        {"ref": value},
    )


async def person_credits(conn: Conn, viewer: Viewer, person_id: uuid.UUID, limit: int = 500) -> list[Row]:
    """A person's credits on titles the viewer may see, newest first."""
    return await fetch_all(
        conn,
        f"""select c.role, c.character, c.job, c.billing_order, {SUMMARY}
            from public.catalog_credits c join public.catalog_titles t on t.id = c.title_id
            where c.person_id = %(person)s and {VISIBLE}
            order by {RELEASED} desc, t.title, t.id, c.role, c.billing_order limit %(limit)s""",  # noqa: S608 - built from constants only
        {**viewer.params(), "person": person_id, "limit": limit},
    )


# --- taxonomy -----------------------------------------------------------------------------------------


async def terms(conn: Conn, viewer: Viewer, kind: str) -> list[Row]:
    """Genres or categories with their visible title counts; empty ones only for managers."""
    return await fetch_all(
        conn,
        f"""select g.id, g.kind, g.slug, g.name, count(t.id) as title_count
            from public.catalog_terms g
            left join public.catalog_title_terms tt on tt.term_id = g.id
            left join public.catalog_titles t on t.id = tt.title_id and {VISIBLE}
            where g.kind = %(kind)s
            group by g.id having %(v_manager)s or count(t.id) > 0
            order by g.name, g.slug""",  # noqa: S608 - built from constants only
        {**viewer.params(), "kind": kind},
    )


# --- home rows ----------------------------------------------------------------------------------------


async def new_arrivals(conn: Conn, viewer: Viewer, limit: int) -> list[Row]:
    """The titles that most recently became available."""
    return await fetch_all(
        conn,
        f"""select {SUMMARY} from public.catalog_titles t where {VISIBLE}
            order by {ARRIVED} desc, t.id desc limit %(limit)s""",  # noqa: S608 - built from constants only
        {**viewer.params(), "limit": limit},
    )


async def trending(conn: Conn, viewer: Viewer, *, since: datetime, weight: float, limit: int) -> list[Row]:
    """Popularity lifted by positive ratings and My List adds since `since`, `weight` points each."""
    return await fetch_all(
        conn,
        f"""with recent as (
              select title_id, count(*)::float8 as n from (
                select title_id from public.catalog_ratings
                  where rated_at > %(since)s and (thumbs = 1 or stars >= 4)
                union all
                select title_id from public.catalog_my_list where added_at > %(since)s) as engaged
              group by title_id)
            select {SUMMARY} from public.catalog_titles t left join recent r on r.title_id = t.id
            where {VISIBLE}
            order by t.popularity + %(weight)s * coalesce(r.n, 0) desc, t.id desc limit %(limit)s""",  # noqa: S608 - built from constants only
        {**viewer.params(), "since": since, "weight": weight, "limit": limit},
    )


async def top_rated(conn: Conn, viewer: Viewer, *, min_votes: int, limit: int) -> list[Row]:
    """The best rated titles among those with at least `min_votes` ratings."""
    return await fetch_all(
        conn,
        f"""select {SUMMARY} from public.catalog_titles t where {VISIBLE} and {VOTES} >= %(min_votes)s
            order by {RATING_SCORE} desc, t.id desc limit %(limit)s""",  # noqa: S608 - built from constants only
        {**viewer.params(), "min_votes": min_votes, "limit": limit},
    )


async def genre_rows(conn: Conn, viewer: Viewer, *, genres: int, limit: int) -> list[Row]:
    """The most popular titles of the `genres` genres whose visible titles are most popular overall."""
    return await fetch_all(
        conn,
        f"""with visible as (select t.id, t.popularity from public.catalog_titles t where {VISIBLE}),
            top as (
              select g.id, g.slug, g.name, sum(v.popularity) as weight
              from public.catalog_terms g
              join public.catalog_title_terms tt on tt.term_id = g.id join visible v on v.id = tt.title_id
              where g.kind = 'genre' group by g.id order by weight desc, g.name limit %(genres)s),
            ranked as (
              select top.slug as row_slug, top.name as row_name, top.weight as row_weight, v.id as title_id,
                     row_number() over (partition by top.id order by v.popularity desc, v.id desc) as rank
              from top join public.catalog_title_terms tt on tt.term_id = top.id
              join visible v on v.id = tt.title_id)
            select r.row_slug, r.row_name, r.rank, {SUMMARY}
            from ranked r join public.catalog_titles t on t.id = r.title_id
            where r.rank <= %(limit)s order by r.row_weight desc, r.row_name, r.rank""",  # noqa: S608 - built from constants only
        {**viewer.params(), "genres": genres, "limit": limit},
    )


# --- My List ------------------------------------------------------------------------------------------


async def my_list(
    conn: Conn,
    viewer: Viewer,
    profile_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Row]:
    """The profile's listed titles that it may still see, most recently added first."""
    keyset = "and (m.added_at, m.title_id) < (%(after_at)s, %(after_id)s)" if after else ""
    after_at, after_id = after if after else (None, None)
    return await fetch_all(
        conn,
        f"""select m.added_at, {SUMMARY} from public.catalog_my_list m
            join public.catalog_titles t on t.id = m.title_id
            where m.profile_id = %(profile)s and {VISIBLE} {keyset}
            order by m.added_at desc, m.title_id desc limit %(limit)s""",  # noqa: S608 - built from constants only
        {
            **viewer.params(),
            "profile": profile_id,
            "after_at": after_at,
            "after_id": after_id,
            "limit": limit,
        },
    )


async def add_to_my_list(conn: Conn, profile_id: uuid.UUID, title_id: uuid.UUID) -> datetime:
    """Add a title (no change when it is already there); return when it was added."""
    await conn.execute(
        """insert into public.catalog_my_list (profile_id, title_id) values (%s, %s)
           on conflict (profile_id, title_id) do nothing""",
        (profile_id, title_id),
    )
    row = await fetch_one(
        conn,
        "select added_at from public.catalog_my_list where profile_id = %(p)s and title_id = %(t)s",
        {"p": profile_id, "t": title_id},
    )
    assert row is not None  # just inserted or already there, in this transaction
    added_at: datetime = row["added_at"]
    return added_at


async def remove_from_my_list(conn: Conn, profile_id: uuid.UUID, title_id: uuid.UUID) -> bool:
    """Remove a title; False when it was not listed."""
    cursor = await conn.execute(
        "delete from public.catalog_my_list where profile_id = %s and title_id = %s", (profile_id, title_id)
    )
    return cursor.rowcount > 0


# --- ratings ------------------------------------------------------------------------------------------


async def rating(conn: Conn, profile_id: uuid.UUID, title_id: uuid.UUID) -> Row | None:
    """The profile's rating of a title."""
    return await fetch_one(
        conn,
        """select thumbs, stars, rated_at from public.catalog_ratings
           where profile_id = %(p)s and title_id = %(t)s""",
        {"p": profile_id, "t": title_id},
    )


async def set_rating(
    conn: Conn, profile_id: uuid.UUID, title_id: uuid.UUID, *, thumbs: int | None, stars: int | None
) -> None:
    """Insert or replace the profile's rating (the trigger moves the title's aggregates by the delta)."""
    await conn.execute(
        """insert into public.catalog_ratings (profile_id, title_id, thumbs, stars) values (%s, %s, %s, %s)
           on conflict (profile_id, title_id)
           do update set thumbs = excluded.thumbs, stars = excluded.stars, rated_at = now()""",
        (profile_id, title_id, thumbs, stars),
    )


async def delete_rating(conn: Conn, profile_id: uuid.UUID, title_id: uuid.UUID) -> bool:
    """Remove the profile's rating; False when there was none."""
    cursor = await conn.execute(
        "delete from public.catalog_ratings where profile_id = %s and title_id = %s", (profile_id, title_id)
    )
    return cursor.rowcount > 0


async def aggregates(conn: Conn, title_id: uuid.UUID) -> Row | None:
    """The title's rating counters."""
    return await fetch_one(
        conn,
        """select thumbs_up, thumbs_down, stars_sum, stars_count from public.catalog_titles
           where id = %(id)s""",
        {"id": title_id},
    )
