"""Catalog rows for tests, inserted straight into the migrated schema (the admin API has its own tests)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

Db = psycopg.AsyncConnection[Any]


def _marks(columns: dict[str, Any]) -> str:
    return ", ".join(["%s"] * len(columns))


def slug(text: str) -> str:
    """A unique slug for a test title or person."""
    return "-".join(text.lower().split())[:60] + "-" + uuid.uuid4().hex[:8]


async def term(db: Db, name: str, kind: str = "genre") -> uuid.UUID:
    """The id of a genre or category, created when missing."""
    cursor = await db.execute(
        """insert into public.catalog_terms (kind, slug, name) values (%s, %s, %s)
           on conflict (kind, slug) do update set name = excluded.name returning id""",
        (kind, "-".join(name.lower().split()), name),
    )
    row = await cursor.fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


async def person(db: Db, name: str, **fields: Any) -> uuid.UUID:
    """Insert a person."""
    columns = {"name": name, "slug": slug(name), **fields}
    cursor = await db.execute(
        f"insert into public.catalog_people ({', '.join(columns)}) values ({_marks(columns)}) returning id",
        [Jsonb(v) if isinstance(v, dict | list) and k == "images" else v for k, v in columns.items()],
    )
    row = await cursor.fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


async def title(
    db: Db,
    name: str,
    *,
    kind: str = "movie",
    status: str = "published",
    genres: list[str] | None = None,
    cast: list[tuple[str, str]] | None = None,
    crew: list[tuple[str, str]] | None = None,
    **fields: Any,
) -> uuid.UUID:
    """Insert a title (published by default) with genres and credits given as (person name, character|job)."""
    columns: dict[str, Any] = {"kind": kind, "slug": slug(name), "title": name, "status": status, **fields}
    values = [Jsonb(v) if k in ("images", "trailers") else v for k, v in columns.items()]
    cursor = await db.execute(
        f"insert into public.catalog_titles ({', '.join(columns)}) values ({_marks(columns)}) returning id",
        values,
    )
    row = await cursor.fetchone()
    assert row is not None
    title_id = uuid.UUID(str(row[0]))
    for genre in genres or []:
        await db.execute(
            "insert into public.catalog_title_terms (title_id, term_id) values (%s, %s)",
            (title_id, await term(db, genre)),
        )
    for order, (who, character) in enumerate(cast or []):
        await db.execute(
            """insert into public.catalog_credits (title_id, person_id, role, character, billing_order)
               values (%s, %s, 'cast', %s, %s)""",
            (title_id, await person(db, who), character, order),
        )
    for order, (who, job) in enumerate(crew or []):
        await db.execute(
            """insert into public.catalog_credits (title_id, person_id, role, job, billing_order)
               values (%s, %s, 'crew', %s, %s)""",
            (title_id, await person(db, who), job, order),
        )
    return title_id


async def season(db: Db, title_id: uuid.UUID, number: int, episodes: int = 0) -> uuid.UUID:
    """Insert a season of a series with `episodes` numbered episodes."""
    cursor = await db.execute(
        "insert into public.catalog_seasons (title_id, number, name) values (%s, %s, %s) returning id",
        (title_id, number, f"Season {number}"),
    )
    row = await cursor.fetchone()
    assert row is not None
    season_id = uuid.UUID(str(row[0]))
    for episode in range(1, episodes + 1):
        await db.execute(
            """insert into public.catalog_episodes (season_id, title_id, number, name, runtime_minutes)
               values (%s, %s, %s, %s, 45)""",
            (season_id, title_id, episode, f"Episode {episode}"),
        )
    return season_id
