"""All SQL of catalog management: titles, seasons, episodes, people, credits and taxonomy.

Writes, and the reads a write needs. Unique-key races surface as the same 409s the service's checks give.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from shared.errors import Conflict
from shared.infra.db import fetch_all, fetch_one

if TYPE_CHECKING:  # psycopg loads at the first query, not at import (cold start)
    from psycopg import AsyncConnection

    Conn = AsyncConnection[Any]
else:
    Conn = Any
Row = dict[str, Any]

TITLE_COLUMNS = (
    "kind",
    "slug",
    "title",
    "original_title",
    "synopsis_short",
    "synopsis_long",
    "release_date",
    "release_year",
    "runtime_minutes",
    "countries",
    "original_language",
    "audio_languages",
    "subtitle_languages",
    "rating_system",
    "rating",
    "maturity_level",
    "tags",
    "images",
    "trailers",
    "imdb_id",
    "tmdb_id",
    "status",
    "publish_at",
    "available_from",
    "available_until",
    "country_allow",
    "country_deny",
    "access",
    "min_tier",
)
SEASON_COLUMNS = ("number", "name", "synopsis", "release_date", "images")
EPISODE_COLUMNS = ("number", "name", "synopsis", "runtime_minutes", "release_date", "images")
PERSON_COLUMNS = ("name", "slug", "biography", "birth_date", "images", "imdb_id", "tmdb_id")
_JSON_COLUMNS = frozenset({"images", "trailers"})
_TABLES = {
    "title": ("catalog_titles", TITLE_COLUMNS),
    "season": ("catalog_seasons", SEASON_COLUMNS),
    "episode": ("catalog_episodes", EPISODE_COLUMNS),
    "person": ("catalog_people", PERSON_COLUMNS),
}

# Unique indexes and constraints -> (problem code, field) for the 409 when a concurrent write wins the race.
_UNIQUE = {
    "catalog_titles_slug_key": ("slug_taken", "slug"),
    "catalog_titles_imdb_key": ("imdb_id_taken", "imdb_id"),
    "catalog_people_slug_key": ("slug_taken", "slug"),
    "catalog_seasons_title_id_number_key": ("season_number_taken", "number"),
    "catalog_episodes_season_id_number_key": ("episode_number_taken", "number"),
    "catalog_terms_kind_slug_key": ("slug_taken", "slug"),
}


@asynccontextmanager
async def _unique_as_conflict() -> AsyncIterator[None]:
    from psycopg.errors import UniqueViolation

    try:
        yield
    except UniqueViolation as error:
        name = error.diag.constraint_name or ""
        code, field = _UNIQUE.get(name, ("conflict", ""))
        raise Conflict(
            f"Another entry already uses this {field or 'value'}.", code=code, field=field
        ) from error


def _value(column: str, value: Any) -> Any:
    from psycopg.types.json import Jsonb

    return Jsonb(value) if column in _JSON_COLUMNS and value is not None else value


async def insert(conn: Conn, entity: str, values: dict[str, Any]) -> Row:
    """Insert a title, season, episode or person (columns checked against the entity's list)."""
    from psycopg import sql

    table, allowed = _TABLES[entity]
    columns = [
        column for column in values if column in allowed or column == "title_id" or column == "season_id"
    ]
    query = sql.SQL("insert into public.{} ({}) values ({}) returning *").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
    )
    async with _unique_as_conflict():
        row = await fetch_one(conn, query, [_value(column, values[column]) for column in columns])
    assert row is not None
    return row


async def update(conn: Conn, entity: str, entity_id: uuid.UUID, values: dict[str, Any]) -> Row:
    """Update some columns of a row (the caller checked it exists); returns the row after."""
    from psycopg import sql

    table, allowed = _TABLES[entity]
    columns = [column for column in values if column in allowed]
    if not columns:
        row = await fetch_one(
            conn, sql.SQL("select * from public.{} where id = %s").format(sql.Identifier(table)), (entity_id,)
        )
    else:
        query = sql.SQL("update public.{} set {} where id = {} returning *").format(
            sql.Identifier(table),
            sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder()) for column in columns
            ),
            sql.Placeholder(),
        )
        async with _unique_as_conflict():
            row = await fetch_one(conn, query, [*(_value(c, values[c]) for c in columns), entity_id])
    assert row is not None
    return row


# Titles.


async def get_title(conn: Conn, title_id: uuid.UUID, *, deleted: bool = False) -> Row | None:
    """A title, locked for the change (`deleted`: only a soft-deleted one, else only a live one)."""
    return await fetch_one(
        conn,
        """select * from public.catalog_titles
           where id = %s and (deleted_at is not null) = %s for update""",
        (title_id, deleted),
    )


async def find_title(conn: Conn, *, imdb_id: str | None = None, slug: str | None = None) -> Row | None:
    """The live title with this IMDb id or slug, locked."""
    column = "imdb_id" if imdb_id is not None else "slug"
    return await fetch_one(
        conn,
        f"select * from public.catalog_titles where {column} = %s and deleted_at is null for update",  # noqa: S608 - fixed column
        (imdb_id if imdb_id is not None else slug,),
    )


async def title_taken(conn: Conn, *, column: str, value: str, exclude: uuid.UUID | None = None) -> bool:
    """Whether a live title other than `exclude` has this slug or imdb_id."""
    if column not in ("slug", "imdb_id"):
        raise ValueError(column)
    row = await fetch_one(
        conn,
        f"""select 1 as taken from public.catalog_titles
            where {column} = %s and deleted_at is null and id is distinct from %s""",  # noqa: S608 - fixed column
        (value, exclude),
    )
    return row is not None


async def slugs_like(conn: Conn, table: str, base: str) -> set[str]:
    """Live slugs equal to `base` or starting with `base-` (to pick a free suffix)."""
    if table not in ("catalog_titles", "catalog_people"):
        raise ValueError(table)
    rows = await fetch_all(
        conn,
        f"""select slug from public.{table}
            where deleted_at is null and (slug = %s or starts_with(slug, %s))""",  # noqa: S608 - fixed table
        (base, base + "-"),
    )
    return {str(row["slug"]) for row in rows}


async def set_title_deleted(conn: Conn, title_id: uuid.UUID, *, deleted: bool) -> Row:
    """Soft-delete or restore."""
    row = await fetch_one(
        conn,
        """update public.catalog_titles set deleted_at = case when %s then now() end
           where id = %s returning *""",
        (deleted, title_id),
    )
    assert row is not None
    return row


async def season_count(conn: Conn, title_id: uuid.UUID) -> int:
    """How many seasons a title has."""
    row = await fetch_one(
        conn, "select count(*) as n from public.catalog_seasons where title_id = %s", (title_id,)
    )
    return int(row["n"]) if row else 0


# Taxonomy.


async def terms_by_slug(conn: Conn, kind: str, slugs: Iterable[str]) -> list[Row]:
    """The genres or categories with these slugs."""
    return await fetch_all(
        conn,
        "select id, kind, slug, name from public.catalog_terms where kind = %s and slug = any(%s)",
        (kind, list(slugs)),
    )


async def insert_term(conn: Conn, *, kind: str, slug: str, name: str) -> Row:
    """A new genre or category."""
    async with _unique_as_conflict():
        row = await fetch_one(
            conn,
            """insert into public.catalog_terms (kind, slug, name) values (%s, %s, %s)
               returning id, kind, slug, name""",
            (kind, slug, name),
        )
    assert row is not None
    return row


async def replace_title_terms(
    conn: Conn, title_id: uuid.UUID, *, kind: str, term_ids: list[uuid.UUID]
) -> None:
    """Make the title's terms of one kind exactly `term_ids`."""
    await conn.execute(
        """delete from public.catalog_title_terms tt using public.catalog_terms t
           where tt.title_id = %s and tt.term_id = t.id and t.kind = %s and not (t.id = any(%s))""",
        (title_id, kind, term_ids),
    )
    await conn.execute(
        """insert into public.catalog_title_terms (title_id, term_id)
           select %s, unnest(%s::uuid[]) on conflict do nothing""",
        (title_id, term_ids),
    )


async def title_terms(conn: Conn, title_ids: list[uuid.UUID]) -> list[Row]:
    """The genres and categories of these titles, by name."""
    return await fetch_all(
        conn,
        """select tt.title_id, t.id, t.kind, t.slug, t.name
           from public.catalog_title_terms tt join public.catalog_terms t on t.id = tt.term_id
           where tt.title_id = any(%s) order by t.name, t.slug""",
        (title_ids,),
    )


# Credits and people.


async def live_people(conn: Conn, person_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these ids are people that exist and are not deleted."""
    rows = await fetch_all(
        conn,
        "select id from public.catalog_people where id = any(%s) and deleted_at is null",
        (list(person_ids),),
    )
    return {row["id"] for row in rows}


async def replace_credits(
    conn: Conn,
    title_id: uuid.UUID,
    credits: list[dict[str, Any]],
    *,
    roles: tuple[str, ...] = ("cast", "crew"),
) -> None:
    """Replace a title's credits of these roles: each {person_id, role, character, job, billing_order}."""
    await conn.execute(
        "delete from public.catalog_credits where title_id = %s and role = any(%s)", (title_id, list(roles))
    )
    if not credits:
        return
    async with conn.cursor() as cursor:
        await cursor.executemany(
            """insert into public.catalog_credits (title_id, person_id, role, character, job, billing_order)
               values (%s, %s, %s, %s, %s, %s)""",
            [
                (title_id, c["person_id"], c["role"], c.get("character"), c.get("job"), c["billing_order"])
                for c in credits
            ],
        )


async def title_credits(conn: Conn, title_id: uuid.UUID) -> list[Row]:
    """A title's credits with the people's names, cast then crew, in billing order."""
    return await fetch_all(
        conn,
        """select c.person_id, c.role, c.character, c.job, c.billing_order, p.name, p.slug, p.images
           from public.catalog_credits c join public.catalog_people p on p.id = c.person_id
           where c.title_id = %s and p.deleted_at is null
           order by c.role, c.billing_order, p.name""",
        (title_id,),
    )


async def get_person(conn: Conn, person_id: uuid.UUID, *, deleted: bool = False) -> Row | None:
    """A person, locked (`deleted`: only a soft-deleted one, else only a live one)."""
    return await fetch_one(
        conn,
        """select * from public.catalog_people where id = %s and (deleted_at is not null) = %s for update""",
        (person_id, deleted),
    )


async def find_person(
    conn: Conn, *, imdb_id: str | None = None, slug: str | None = None, name: str | None = None
) -> Row | None:
    """A live person by IMDb id, slug or (case-insensitive) name; the oldest when several share a name."""
    return await fetch_one(
        conn,
        """select * from public.catalog_people
           where deleted_at is null
             and (%(imdb)s::text is null or imdb_id = %(imdb)s::text)
             and (%(slug)s::text is null or slug = %(slug)s::text)
             and (%(name)s::text is null or lower(name) = lower(%(name)s::text))
           order by created_at, id limit 1""",
        {"imdb": imdb_id, "slug": slug, "name": name},
    )


async def person_taken(conn: Conn, *, column: str, value: str, exclude: uuid.UUID | None = None) -> bool:
    """Whether a live person other than `exclude` has this slug or imdb_id."""
    if column not in ("slug", "imdb_id"):
        raise ValueError(column)
    row = await fetch_one(
        conn,
        f"""select 1 as taken from public.catalog_people
            where {column} = %s and deleted_at is null and id is distinct from %s""",  # noqa: S608 - fixed column
        (value, exclude),
    )
    return row is not None


async def set_person_deleted(conn: Conn, person_id: uuid.UUID, *, deleted: bool) -> None:
    """Soft-delete or restore a person."""
    await conn.execute(
        "update public.catalog_people set deleted_at = case when %s then now() end where id = %s",
        (deleted, person_id),
    )


async def person_title_ids(conn: Conn, person_id: uuid.UUID) -> list[uuid.UUID]:
    """The titles a person is credited on."""
    rows = await fetch_all(
        conn, "select distinct title_id from public.catalog_credits where person_id = %s", (person_id,)
    )
    return [row["title_id"] for row in rows]


# Seasons and episodes.


async def get_season(conn: Conn, season_id: uuid.UUID) -> Row | None:
    """A season of a live title, locked."""
    return await fetch_one(
        conn,
        """select s.* from public.catalog_seasons s join public.catalog_titles t on t.id = s.title_id
           where s.id = %s and t.deleted_at is null for update of s""",
        (season_id,),
    )


async def find_season(conn: Conn, title_id: uuid.UUID, number: int) -> Row | None:
    """A title's season by number."""
    return await fetch_one(
        conn,
        "select * from public.catalog_seasons where title_id = %s and number = %s for update",
        (title_id, number),
    )


async def get_episode(conn: Conn, episode_id: uuid.UUID) -> Row | None:
    """An episode of a live title, locked."""
    return await fetch_one(
        conn,
        """select e.* from public.catalog_episodes e join public.catalog_titles t on t.id = e.title_id
           where e.id = %s and t.deleted_at is null for update of e""",
        (episode_id,),
    )


async def find_episode(conn: Conn, season_id: uuid.UUID, number: int) -> Row | None:
    """A season's episode by number."""
    return await fetch_one(
        conn,
        "select * from public.catalog_episodes where season_id = %s and number = %s for update",
        (season_id, number),
    )


async def delete_row(conn: Conn, entity: str, entity_id: uuid.UUID) -> None:
    """Delete a season (its episodes go with it) or an episode."""
    table = {"season": "catalog_seasons", "episode": "catalog_episodes"}[entity]
    await conn.execute(f"delete from public.{table} where id = %s", (entity_id,))  # noqa: S608 - fixed table


# Each images entry of every title, season, episode and person, deleted or not: image(kind, entry).
_IMAGE_ENTRIES = """
from (
    select images from public.catalog_titles
    union all select images from public.catalog_seasons
    union all select images from public.catalog_episodes
    union all select images from public.catalog_people
) as owner
cross join lateral jsonb_each(
    case jsonb_typeof(owner.images) when 'object' then owner.images else '{}'::jsonb end
) as image(kind, entry)
"""

# Every storage key a catalog row's images refer to: each entry's `key` and the values of its `sizes`.
# Entries of other shapes (Cloudinary public_id, external url, anything malformed) yield nothing.
_REFERENCED_KEYS = (
    "select distinct ref.key"  # noqa: S608 - fixed text, no input
    + _IMAGE_ENTRIES
    + """
cross join lateral (
    select image.entry ->> 'key'
    union all
    select size.value
    from jsonb_each_text(
        case jsonb_typeof(image.entry -> 'sizes')
            when 'object' then image.entry -> 'sizes' else '{}'::jsonb end
    ) as size
) as ref(key)
where ref.key like %(prefix)s
"""
)

# Every Cloudinary public_id an entry refers to (->> on a non-object entry is null, so it yields nothing).
_REFERENCED_PUBLIC_IDS = (
    "select distinct image.entry ->> 'public_id'"
    + _IMAGE_ENTRIES
    + "where image.entry ->> 'public_id' like %(prefix)s"
)


async def referenced_image_keys(conn: Conn, folder: str) -> set[str]:
    """The storage keys under `folder` any title, season, episode or person (deleted or not) refers to."""
    cursor = await conn.execute(_REFERENCED_KEYS, {"prefix": folder + "%"})
    return {str(row[0]) for row in await cursor.fetchall()}


async def referenced_image_public_ids(conn: Conn, folder: str) -> set[str]:
    """The Cloudinary public_ids under `folder` any title, season, episode or person (deleted or not) uses."""
    cursor = await conn.execute(_REFERENCED_PUBLIC_IDS, {"prefix": folder + "%"})
    return {str(row[0]) for row in await cursor.fetchall()}
