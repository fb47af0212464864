"""Catalog management of people (cast and crew): create, change, soft delete and restore."""

from __future__ import annotations

import uuid
from typing import Any

from shared.catalog_admin import codes, repository
from shared.catalog_admin.schemas import PersonCreate, PersonUpdate
from shared.catalog_admin.service import Actor, diff, free_slug, invalidate, merge_images, record
from shared.errors import Conflict, NotFound

Row = dict[str, Any]


class PersonNotFound(NotFound):
    """No live person has this id."""

    def __init__(self) -> None:
        super().__init__("No person has this id.", code="person_not_found")


async def write_person(conn: Any, *, current: Row | None, changes: dict[str, Any]) -> tuple[Row, list[str]]:
    """Create (current None) or change a person; returns the row and the changed fields."""
    changes = dict(changes)
    person_id = current["id"] if current else None
    if "images" in changes:
        changes["images"] = merge_images(current["images"] if current else None, changes["images"])
    if "slug" in changes:
        if await repository.person_taken(conn, column="slug", value=changes["slug"], exclude=person_id):
            raise Conflict("Another person uses this slug.", code="slug_taken", field="slug")
    elif current is None:
        # Namesakes are common (two John Smiths): the second one gets a numbered slug.
        changes["slug"] = await free_slug(conn, "catalog_people", codes.slugify(changes["name"]) or "person")
    imdb_id = changes.get("imdb_id")
    if imdb_id and await repository.person_taken(conn, column="imdb_id", value=imdb_id, exclude=person_id):
        raise Conflict("Another person has this IMDb id.", code="imdb_id_taken", field="imdb_id")
    if current is None:
        return await repository.insert(conn, "person", changes), sorted(changes)
    changed = diff(current, changes)
    if not changed:
        return current, []
    return await repository.update(conn, "person", current["id"], changed), sorted(changed)


async def _live(conn: Any, person_id: uuid.UUID) -> Row:
    row = await repository.get_person(conn, person_id)
    if row is None:
        raise PersonNotFound()
    return row


async def create_person(conn: Any, *, data: PersonCreate, actor: Actor) -> Row:
    """A new person; the slug is made from the name when left out (numbered for namesakes)."""
    row, changed = await write_person(conn, current=None, changes=data.changes())
    await record(conn, actor, "catalog_created", entity="person", entity_id=row["id"], changed=changed)
    await invalidate([])  # lists only: a new person is credited nowhere yet
    return row


async def update_person(conn: Any, *, person_id: uuid.UUID, data: PersonUpdate, actor: Actor) -> Row:
    """Change some fields; the titles crediting the person (and the lists, person pages) are invalidated."""
    current = await _live(conn, person_id)
    row, changed = await write_person(conn, current=current, changes=data.changes())
    if changed:
        await record(conn, actor, "catalog_updated", entity="person", entity_id=person_id, changed=changed)
        await invalidate(await repository.person_title_ids(conn, person_id))
    return row


async def delete_person(conn: Any, *, person_id: uuid.UUID, actor: Actor) -> None:
    """Soft delete: the person leaves the credits shown to viewers until restored."""
    await _live(conn, person_id)
    await repository.set_person_deleted(conn, person_id, deleted=True)
    await record(conn, actor, "catalog_deleted", entity="person", entity_id=person_id)
    await invalidate(await repository.person_title_ids(conn, person_id))


async def restore_person(conn: Any, *, person_id: uuid.UUID, actor: Actor) -> None:
    """Undo a soft delete; 409 slug_taken / imdb_id_taken when another person took them meanwhile."""
    row = await repository.get_person(conn, person_id, deleted=True)
    if row is None:
        if await repository.get_person(conn, person_id) is not None:
            raise Conflict("This person is not deleted.", code="not_deleted")
        raise PersonNotFound()
    if await repository.person_taken(conn, column="slug", value=row["slug"]):
        raise Conflict(f"Another person now uses the slug {row['slug']!r}.", code="slug_taken", field="slug")
    if row["imdb_id"] and await repository.person_taken(conn, column="imdb_id", value=row["imdb_id"]):
        raise Conflict("Another person now has this IMDb id.", code="imdb_id_taken", field="imdb_id")
    await repository.set_person_deleted(conn, person_id, deleted=False)
    await record(conn, actor, "catalog_restored", entity="person", entity_id=person_id)
    await invalidate(await repository.person_title_ids(conn, person_id))
