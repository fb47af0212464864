"""Catalog management: titles, publishing, availability, taxonomy and credits.

Every change is audited and invalidates the cached catalog responses of the titles it touches.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.audit import service as audit
from shared.catalog_admin import codes, repository
from shared.catalog_admin.checks import FieldError, InvalidFields, check_title
from shared.catalog_admin.schemas import (
    AvailabilityChange,
    CreditsReplace,
    StatusChange,
    TermCreate,
    TitleCreate,
    TitleUpdate,
)
from shared.errors import Conflict, NotFound

Row = dict[str, Any]


@dataclass(frozen=True)
class Actor:
    """Who makes a change, for the audit log."""

    user_id: uuid.UUID | None
    ip: str | None = None
    user_agent: str | None = None


class TitleNotFound(NotFound):
    """No live title has this id."""

    def __init__(self) -> None:
        super().__init__("No title has this id.", code="title_not_found")


async def record(
    conn: Any, actor: Actor, event: str, *, entity: str, entity_id: Any = None, **details: Any
) -> None:
    """Audit one catalog change: the entity, its id and the details (changed fields, counts)."""
    if entity_id is not None:
        details["id"] = str(entity_id)
    await audit.record(
        conn,
        event=event,
        subject_id=None,  # subjects are accounts; the catalog entity is in the details
        actor_id=actor.user_id,
        ip=actor.ip,
        user_agent=actor.user_agent,
        entity=entity,
        **details,
    )


async def invalidate(title_ids: Iterable[uuid.UUID]) -> None:
    """Drop the cached catalog responses of these titles (and every list) once the change is committed."""
    from shared.catalog.cache import invalidate_after_commit

    # After the commit: purged earlier, a reader could cache the old state again before the commit.
    # An empty list still purges the lists (a new genre shows in the taxonomy).
    await invalidate_after_commit(title_ids=list(dict.fromkeys(title_ids)))


def merge_images(stored: dict[str, Any] | None, changes: dict[str, Any]) -> dict[str, Any]:
    """Stored images with the changed kinds replaced and the kinds set to None removed."""
    merged = dict(stored or {})
    for kind, entry in changes.items():
        if entry is None:
            merged.pop(kind, None)
        else:
            merged[kind] = entry
    return merged


async def free_slug(conn: Any, table: str, base: str, *, year: int | None = None) -> str:
    """`base`, else `base-<year>`, else `base-2`, `base-3`...: the first one no live row uses."""
    taken = await repository.slugs_like(conn, table, base)
    candidates = [base, *([f"{base}-{year}"] if year else [])]
    candidates += [f"{base}-{n}" for n in range(2, len(taken) + 3)]
    return next(slug for slug in candidates if slug not in taken)


def diff(current: Row, values: dict[str, Any]) -> dict[str, Any]:
    """The values that differ from the stored row."""
    return {key: value for key, value in values.items() if current.get(key) != value}


# Titles.


async def write_title(
    conn: Any, *, current: Row | None, changes: dict[str, Any], now: datetime | None = None
) -> tuple[Row, list[str]]:
    """Create (current None) or change a title after every rule; returns the row and the changed fields."""
    changes = dict(changes)
    now = now or datetime.now(UTC)
    if "images" in changes:
        changes["images"] = merge_images(current["images"] if current else None, changes["images"])
    if "status" in changes and changes["status"] != "scheduled" and "publish_at" not in changes:
        changes["publish_at"] = None  # leaving the schedule drops its time
    state = {**(current or {"status": "draft"}), **changes}
    changes.update(check_title(state, changed=set(changes), now=now))

    title_id = current["id"] if current else None
    to_movie = current is not None and current["kind"] == "series" and changes.get("kind") == "movie"
    if to_movie and current is not None and await repository.season_count(conn, current["id"]):
        raise Conflict(
            "Delete the seasons before making this series a movie.", code="has_seasons", field="kind"
        )
    if "slug" in changes:
        if await repository.title_taken(conn, column="slug", value=changes["slug"], exclude=title_id):
            raise Conflict("Another title uses this slug.", code="slug_taken", field="slug")
    elif current is None:
        base = codes.slugify(state["title"]) or "title"
        changes["slug"] = await free_slug(conn, "catalog_titles", base, year=state.get("release_year"))
    imdb_id = changes.get("imdb_id")
    if imdb_id and await repository.title_taken(conn, column="imdb_id", value=imdb_id, exclude=title_id):
        raise Conflict("Another title has this IMDb id.", code="imdb_id_taken", field="imdb_id")

    if current is None:
        row = await repository.insert(conn, "title", changes)
        return row, sorted(changes)
    changed = diff(current, changes)
    if not changed:
        return current, []
    return await repository.update(conn, "title", current["id"], changed), sorted(changed)


async def live_title(conn: Any, title_id: uuid.UUID) -> Row:
    """The live title, locked for the change; 404 title_not_found."""
    row = await repository.get_title(conn, title_id)
    if row is None:
        raise TitleNotFound()
    return row


async def create_title(conn: Any, *, data: TitleCreate, actor: Actor) -> Row:
    """A new title (a draft unless the body says otherwise)."""
    row, changed = await write_title(conn, current=None, changes=data.changes())
    await record(conn, actor, "catalog_created", entity="title", entity_id=row["id"], changed=changed)
    await invalidate([row["id"]])
    return row


async def update_title(conn: Any, *, title_id: uuid.UUID, changes: dict[str, Any], actor: Actor) -> Row:
    """Change some fields of a title (PATCH, status, availability)."""
    current = await live_title(conn, title_id)
    row, changed = await write_title(conn, current=current, changes=changes)
    if changed:
        await record(conn, actor, "catalog_updated", entity="title", entity_id=title_id, changed=changed)
        # The purge covers `access`/`min_tier` too (the title page shows them). No entitlement cache needs
        # dropping: it holds a user's entitlement rows only, weighed against the title's access model read
        # from the database at each session start and licence request (heartbeats of an open session keep
        # the model it started with).
        await invalidate([title_id])
    return row


async def patch_title(conn: Any, *, title_id: uuid.UUID, data: TitleUpdate, actor: Actor) -> Row:
    """PATCH: the fields sent."""
    return await update_title(conn, title_id=title_id, changes=data.changes(), actor=actor)


async def set_status(conn: Any, *, title_id: uuid.UUID, data: StatusChange, actor: Actor) -> Row:
    """Draft, scheduled (with a future publish_at), published or archived."""
    changes = {"status": data.status, "publish_at": data.publish_at}
    return await update_title(conn, title_id=title_id, changes=changes, actor=actor)


async def set_availability(conn: Any, *, title_id: uuid.UUID, data: AvailabilityChange, actor: Actor) -> Row:
    """Replace the window and the country lists."""
    return await update_title(conn, title_id=title_id, changes=data.model_dump(), actor=actor)


async def delete_title(conn: Any, *, title_id: uuid.UUID, actor: Actor) -> None:
    """Soft delete: hidden everywhere, restorable."""
    await live_title(conn, title_id)
    await repository.set_title_deleted(conn, title_id, deleted=True)
    await record(conn, actor, "catalog_deleted", entity="title", entity_id=title_id)
    await invalidate([title_id])


async def restore_title(conn: Any, *, title_id: uuid.UUID, actor: Actor) -> Row:
    """Undo a soft delete; 409 when its slug or IMDb id was taken meanwhile."""
    row = await repository.get_title(conn, title_id, deleted=True)
    if row is None:
        if await repository.get_title(conn, title_id) is not None:
            raise Conflict("This title is not deleted.", code="not_deleted")
        raise TitleNotFound()
    if await repository.title_taken(conn, column="slug", value=row["slug"]):
        raise Conflict(
            f"Another title now uses the slug {row['slug']!r}; change that one's slug first.",
            code="slug_taken",
            field="slug",
        )
    if row["imdb_id"] and await repository.title_taken(conn, column="imdb_id", value=row["imdb_id"]):
        raise Conflict("Another title now has this IMDb id.", code="imdb_id_taken", field="imdb_id")
    row = await repository.set_title_deleted(conn, title_id, deleted=False)
    await record(conn, actor, "catalog_restored", entity="title", entity_id=title_id)
    await invalidate([title_id])
    return row


# Taxonomy.


async def replace_terms(conn: Any, *, title_id: uuid.UUID, kind: str, slugs: list[str], actor: Actor) -> None:
    """Make a title's genres (or categories) exactly these, by slug; 422 unknown_<kind> for a missing one."""
    await live_title(conn, title_id)
    found = {row["slug"]: row["id"] for row in await repository.terms_by_slug(conn, kind, slugs)}
    missing = [
        FieldError(f"slugs.{i}", f"unknown_{kind}", f"no {kind} has the slug {slug!r}")
        for i, slug in enumerate(slugs)
        if slug not in found
    ]
    if missing:
        raise InvalidFields(missing)
    await repository.replace_title_terms(conn, title_id, kind=kind, term_ids=[found[slug] for slug in slugs])
    await record(
        conn, actor, "catalog_updated", entity="title", entity_id=title_id, changed=[f"{kind}s"], slugs=slugs
    )
    await invalidate([title_id])


async def create_term(conn: Any, *, kind: str, data: TermCreate, actor: Actor) -> Row:
    """A new genre or category; 409 slug_taken when the slug exists."""
    slug = data.slug or codes.slugify(data.name)
    if not slug:
        raise InvalidFields(
            [FieldError("slug", "slug_required", "the name has no Latin letters; give a slug")]
        )
    if await repository.terms_by_slug(conn, kind, [slug]):
        raise Conflict(f"A {kind} with the slug {slug!r} exists.", code="slug_taken", field="slug")
    row = await repository.insert_term(conn, kind=kind, slug=slug, name=data.name)
    await record(conn, actor, "catalog_created", entity=kind, entity_id=row["id"], slug=slug)
    await invalidate([])
    return row


# Credits.


async def replace_credits(conn: Any, *, title_id: uuid.UUID, data: CreditsReplace, actor: Actor) -> None:
    """Replace the cast and crew; 422 unknown_person for an id that is not a live person."""
    await live_title(conn, title_id)
    ids = {"cast": [c.person_id for c in data.cast], "crew": [c.person_id for c in data.crew]}
    live = await repository.live_people(conn, [*ids["cast"], *ids["crew"]])
    missing = [
        FieldError(f"{role}.{i}.person_id", "unknown_person", "no person has this id (or it is deleted)")
        for role, person_ids in ids.items()
        for i, person_id in enumerate(person_ids)
        if person_id not in live
    ]
    if missing:
        raise InvalidFields(missing)
    rows = [
        {
            "person_id": c.person_id,
            "role": "cast",
            "character": c.character,
            "billing_order": _order(c.order, i),
        }
        for i, c in enumerate(data.cast)
    ] + [
        {"person_id": c.person_id, "role": "crew", "job": c.job, "billing_order": _order(c.order, i)}
        for i, c in enumerate(data.crew)
    ]
    await repository.replace_credits(conn, title_id, rows)
    await record(
        conn,
        actor,
        "catalog_updated",
        entity="title",
        entity_id=title_id,
        changed=["credits"],
        cast=len(data.cast),
        crew=len(data.crew),
    )
    await invalidate([title_id])


def _order(order: int | None, position: int) -> int:
    return position if order is None else order
