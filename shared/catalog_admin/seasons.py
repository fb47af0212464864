"""Catalog management of a series' seasons and their episodes.

Their deletes are hard: the series is the unit of soft deletion and restore.
"""

from __future__ import annotations

import uuid
from typing import Any

from shared.catalog_admin import repository
from shared.catalog_admin.checks import FieldError, InvalidFields
from shared.catalog_admin.schemas import EpisodeCreate, EpisodeUpdate, SeasonCreate, SeasonUpdate
from shared.catalog_admin.service import Actor, diff, invalidate, live_title, merge_images, record
from shared.errors import Conflict, NotFound

Row = dict[str, Any]


class SeasonNotFound(NotFound):
    """No season of a live title has this id."""

    def __init__(self) -> None:
        super().__init__("No season has this id.", code="season_not_found")


class EpisodeNotFound(NotFound):
    """No episode of a live title has this id."""

    def __init__(self) -> None:
        super().__init__("No episode has this id.", code="episode_not_found")


def require_series(title: Row, *, field: str = "") -> None:
    """Seasons belong to series only: 409 not_a_series."""
    if title["kind"] != "series":
        raise Conflict("Only a series has seasons; this title is a movie.", code="not_a_series", field=field)


async def write_season(
    conn: Any, *, title: Row, current: Row | None, changes: dict[str, Any]
) -> tuple[Row, list[str]]:
    """Create (current None) or change a season; 409 season_number_taken."""
    changes = dict(changes)
    if "images" in changes:
        changes["images"] = merge_images(current["images"] if current else None, changes["images"])
    number: int | None = changes.get("number")
    renumbered = number is not None and (current is None or number != current["number"])
    if renumbered and number is not None and await repository.find_season(conn, title["id"], number):
        raise Conflict(f"Season {number} exists.", code="season_number_taken", field="number")
    if current is None:
        return await repository.insert(conn, "season", {**changes, "title_id": title["id"]}), sorted(changes)
    changed = diff(current, changes)
    if not changed:
        return current, []
    return await repository.update(conn, "season", current["id"], changed), sorted(changed)


async def write_episode(
    conn: Any, *, season: Row, current: Row | None, changes: dict[str, Any]
) -> tuple[Row, list[str]]:
    """Create (current None) or change an episode; 409 episode_number_taken."""
    changes = dict(changes)
    if "images" in changes:
        changes["images"] = merge_images(current["images"] if current else None, changes["images"])
    number: int | None = changes.get("number")
    renumbered = number is not None and (current is None or number != current["number"])
    if renumbered and number is not None and await repository.find_episode(conn, season["id"], number):
        raise Conflict(
            f"Episode {number} of this season exists.", code="episode_number_taken", field="number"
        )
    if current is None:
        values = {**changes, "season_id": season["id"], "title_id": season["title_id"]}
        return await repository.insert(conn, "episode", values), sorted(changes)
    changed = diff(current, changes)
    if not changed:
        return current, []
    return await repository.update(conn, "episode", current["id"], changed), sorted(changed)


def duplicate_numbers(items: list[Any], *, path: str) -> list[FieldError]:
    """The entries of a list that repeat an earlier entry's number."""
    seen: set[int] = set()
    problems = []
    for i, item in enumerate(items):
        if item.number in seen:
            problems.append(
                FieldError(f"{path}.{i}.number", "duplicate_number", f"number {item.number} is repeated")
            )
        seen.add(item.number)
    return problems


async def create_season(conn: Any, *, title_id: uuid.UUID, data: SeasonCreate, actor: Actor) -> Row:
    """A season of a series, with the episodes given."""
    title = await live_title(conn, title_id)
    require_series(title)
    problems = duplicate_numbers(data.episodes, path="episodes")
    if problems:
        raise InvalidFields(problems)
    season, changed = await write_season(conn, title=title, current=None, changes=data.changes())
    for episode in data.episodes:
        await write_episode(conn, season=season, current=None, changes=episode.changes())
    await record(
        conn,
        actor,
        "catalog_created",
        entity="season",
        entity_id=season["id"],
        title_id=str(title_id),
        changed=changed,
        episodes=len(data.episodes),
    )
    await invalidate([title_id])
    return season


async def _season(conn: Any, season_id: uuid.UUID) -> Row:
    row = await repository.get_season(conn, season_id)
    if row is None:
        raise SeasonNotFound()
    return row


async def _episode(conn: Any, episode_id: uuid.UUID) -> Row:
    row = await repository.get_episode(conn, episode_id)
    if row is None:
        raise EpisodeNotFound()
    return row


async def update_season(conn: Any, *, season_id: uuid.UUID, data: SeasonUpdate, actor: Actor) -> Row:
    """Change a season's number, name, synopsis, date or poster."""
    current = await _season(conn, season_id)
    title = await live_title(conn, current["title_id"])
    row, changed = await write_season(conn, title=title, current=current, changes=data.changes())
    if changed:
        await record(
            conn,
            actor,
            "catalog_updated",
            entity="season",
            entity_id=season_id,
            title_id=str(title["id"]),
            changed=changed,
        )
        await invalidate([title["id"]])
    return row


async def delete_season(conn: Any, *, season_id: uuid.UUID, actor: Actor) -> None:
    """Delete a season and its episodes."""
    season = await _season(conn, season_id)
    await repository.delete_row(conn, "season", season_id)
    await record(
        conn, actor, "catalog_deleted", entity="season", entity_id=season_id, title_id=str(season["title_id"])
    )
    await invalidate([season["title_id"]])


async def create_episode(
    conn: Any, *, season_id: uuid.UUID, data: EpisodeCreate, actor: Actor
) -> tuple[Row, int]:
    """An episode of a season; returns it with its season's number."""
    season = await _season(conn, season_id)
    row, changed = await write_episode(conn, season=season, current=None, changes=data.changes())
    await record(
        conn,
        actor,
        "catalog_created",
        entity="episode",
        entity_id=row["id"],
        title_id=str(season["title_id"]),
        changed=changed,
    )
    await invalidate([season["title_id"]])
    return row, int(season["number"])


async def update_episode(
    conn: Any, *, episode_id: uuid.UUID, data: EpisodeUpdate, actor: Actor
) -> tuple[Row, int]:
    """Change an episode; returns it with its season's number."""
    current = await _episode(conn, episode_id)
    season = await _season(conn, current["season_id"])
    row, changed = await write_episode(conn, season=season, current=current, changes=data.changes())
    if changed:
        await record(
            conn,
            actor,
            "catalog_updated",
            entity="episode",
            entity_id=episode_id,
            title_id=str(season["title_id"]),
            changed=changed,
        )
        await invalidate([season["title_id"]])
    return row, int(season["number"])


async def delete_episode(conn: Any, *, episode_id: uuid.UUID, actor: Actor) -> None:
    """Delete an episode."""
    episode = await _episode(conn, episode_id)
    await repository.delete_row(conn, "episode", episode_id)
    await record(
        conn,
        actor,
        "catalog_deleted",
        entity="episode",
        entity_id=episode_id,
        title_id=str(episode["title_id"]),
    )
    await invalidate([episode["title_id"]])
