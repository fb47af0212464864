"""HTTP routes of catalog management (/api/v1/catalog/...): content managers and admins (catalog:write).

Writes answer with the catalog's read models as a manager sees them (stored image entries, publishing).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from shared.catalog.schemas import EpisodeRead, PersonDetail, SeasonRead, TermRead, TitleDetail
from shared.catalog_admin import images, importer, people, reads, seasons, service
from shared.catalog_admin.schemas import (
    AvailabilityChange,
    CreditsReplace,
    EpisodeCreate,
    EpisodeUpdate,
    ImageConfirm,
    ImageUploaded,
    ImageUploadRequest,
    ImportCast,
    ImportCrew,
    ImportReport,
    PersonCreate,
    PersonUpdate,
    SeasonCreate,
    SeasonUpdate,
    StatusChange,
    TermCreate,
    TermSlugs,
    TitleCreate,
    TitleUpdate,
)
from shared.catalog_admin.service import Actor
from shared.http.auth import Principal
from shared.http.client_meta import Meta
from shared.http.permissions import CanWriteCatalog, permission_responses
from shared.images.schemas import ImageUploadTicket
from shared.infra.db import Tx
from shared.settings import get_settings

router = APIRouter(prefix="/api/v1/catalog", tags=["catalog-admin"])

# Path names as the viewer routes spell them, so each URL is one path in the OpenAPI document.
TitleId = Annotated[uuid.UUID, Path(alias="titleId")]
SeasonId = Annotated[uuid.UUID, Path(alias="seasonId")]
EpisodeId = Annotated[uuid.UUID, Path(alias="episodeId")]
PersonId = Annotated[uuid.UUID, Path(alias="personId")]

_INVALID = ["validation_failed"]
_TITLE = {404: ["title_not_found"]}
_TITLE_WRITE = {409: ["slug_taken", "imdb_id_taken", "has_seasons"], 422: _INVALID}


def _actor(caller: Principal, meta: Any) -> Actor:
    return Actor(user_id=caller.user_id, ip=meta.ip, user_agent=meta.user_agent)


async def _title(tx: Tx, title_id: uuid.UUID) -> TitleDetail:
    return await reads.title_detail(tx, title_id=title_id)


# Titles.


@router.post(
    "/titles",
    status_code=201,
    response_model=TitleDetail,
    summary="Create a movie or series",
    responses=permission_responses({409: ["slug_taken", "imdb_id_taken"], 422: _INVALID}),
)
async def create_title(body: TitleCreate, tx: Tx, caller: CanWriteCatalog, meta: Meta) -> TitleDetail:
    """A draft unless `status` says otherwise; the slug is made from the title when left out.

    Offered as a tier-1 subscription title unless `access` (and `min_tier`) say otherwise.
    """
    row = await service.create_title(tx, data=body, actor=_actor(caller, meta))
    return await _title(tx, row["id"])


@router.patch(
    "/titles/{titleId}",
    response_model=TitleDetail,
    summary="Change a title",
    responses=permission_responses({**_TITLE, **_TITLE_WRITE}),
)
async def update_title(
    title_id: TitleId, body: TitleUpdate, tx: Tx, caller: CanWriteCatalog, meta: Meta
) -> TitleDetail:
    """Omitted fields stay; null clears an optional field; `images` merges by kind.

    A change of `access` or `min_tier` applies to the next playback start and licence request.
    """
    await service.patch_title(tx, title_id=title_id, data=body, actor=_actor(caller, meta))
    return await _title(tx, title_id)


@router.delete(
    "/titles/{titleId}",
    status_code=204,
    summary="Delete a title (soft)",
    responses=permission_responses(_TITLE),
)
async def delete_title(title_id: TitleId, tx: Tx, caller: CanWriteCatalog, meta: Meta) -> Response:
    """Hidden everywhere at once; POST .../restore brings it back."""
    await service.delete_title(tx, title_id=title_id, actor=_actor(caller, meta))
    return Response(status_code=204)


@router.post(
    "/titles/{titleId}/restore",
    response_model=TitleDetail,
    summary="Restore a deleted title",
    responses=permission_responses({**_TITLE, 409: ["not_deleted", "slug_taken", "imdb_id_taken"]}),
)
async def restore_title(title_id: TitleId, tx: Tx, caller: CanWriteCatalog, meta: Meta) -> TitleDetail:
    """409 slug_taken when another title took its slug meanwhile (change that one's slug first)."""
    await service.restore_title(tx, title_id=title_id, actor=_actor(caller, meta))
    return await _title(tx, title_id)


@router.put(
    "/titles/{titleId}/status",
    response_model=TitleDetail,
    summary="Set a title's publishing status",
    responses=permission_responses({**_TITLE, 422: _INVALID}),
)
async def set_status(
    title_id: TitleId, body: StatusChange, tx: Tx, caller: CanWriteCatalog, meta: Meta
) -> TitleDetail:
    """draft, scheduled (needs a future publish_at), published or archived."""
    await service.set_status(tx, title_id=title_id, data=body, actor=_actor(caller, meta))
    return await _title(tx, title_id)


@router.put(
    "/titles/{titleId}/availability",
    response_model=TitleDetail,
    summary="Set a title's availability window and countries",
    responses=permission_responses({**_TITLE, 422: _INVALID}),
)
async def set_availability(
    title_id: TitleId, body: AvailabilityChange, tx: Tx, caller: CanWriteCatalog, meta: Meta
) -> TitleDetail:
    """Replaces all four: from/until (until after from), allow list (empty = everywhere), deny list."""
    await service.set_availability(tx, title_id=title_id, data=body, actor=_actor(caller, meta))
    return await _title(tx, title_id)


@router.put(
    "/titles/{titleId}/genres",
    response_model=TitleDetail,
    summary="Set a title's genres",
    responses=permission_responses({**_TITLE, 422: _INVALID}),
)
async def set_genres(
    title_id: TitleId, body: TermSlugs, tx: Tx, caller: CanWriteCatalog, meta: Meta
) -> TitleDetail:
    """The complete list by slug; 422 unknown_genre names a slug that is not a genre."""
    await service.replace_terms(
        tx, title_id=title_id, kind="genre", slugs=body.slugs, actor=_actor(caller, meta)
    )
    return await _title(tx, title_id)


@router.put(
    "/titles/{titleId}/categories",
    response_model=TitleDetail,
    summary="Set a title's categories",
    responses=permission_responses({**_TITLE, 422: _INVALID}),
)
async def set_categories(
    title_id: TitleId, body: TermSlugs, tx: Tx, caller: CanWriteCatalog, meta: Meta
) -> TitleDetail:
    """The complete list by slug; 422 unknown_category names a slug that is not a category."""
    await service.replace_terms(
        tx, title_id=title_id, kind="category", slugs=body.slugs, actor=_actor(caller, meta)
    )
    return await _title(tx, title_id)


@router.put(
    "/titles/{titleId}/credits",
    response_model=TitleDetail,
    summary="Replace a title's cast and crew",
    responses=permission_responses({**_TITLE, 422: _INVALID}),
)
async def set_credits(
    title_id: TitleId, body: CreditsReplace, tx: Tx, caller: CanWriteCatalog, meta: Meta
) -> TitleDetail:
    """Cast with character and billing order, crew with job; 422 unknown_person for a missing person."""
    await service.replace_credits(tx, title_id=title_id, data=body, actor=_actor(caller, meta))
    return await _title(tx, title_id)


# Seasons and episodes.


@router.post(
    "/titles/{titleId}/seasons",
    status_code=201,
    response_model=SeasonRead,
    summary="Add a season to a series",
    responses=permission_responses({**_TITLE, 409: ["not_a_series", "season_number_taken"], 422: _INVALID}),
)
async def create_season(
    title_id: TitleId, body: SeasonCreate, tx: Tx, caller: CanWriteCatalog, meta: Meta
) -> SeasonRead:
    """With its episodes, if given."""
    season = await seasons.create_season(tx, title_id=title_id, data=body, actor=_actor(caller, meta))
    return await reads.season_read(tx, title_id=title_id, number=season["number"])


_SEASON = {404: ["season_not_found"]}
_EPISODE = {404: ["episode_not_found"]}


@router.patch(
    "/seasons/{seasonId}",
    response_model=SeasonRead,
    summary="Change a season",
    responses=permission_responses({**_SEASON, 409: ["season_number_taken"], 422: _INVALID}),
)
async def update_season(
    season_id: SeasonId, body: SeasonUpdate, tx: Tx, caller: CanWriteCatalog, meta: Meta
) -> SeasonRead:
    """Omitted fields stay; null clears an optional field."""
    season = await seasons.update_season(tx, season_id=season_id, data=body, actor=_actor(caller, meta))
    return await reads.season_read(tx, title_id=season["title_id"], number=season["number"])


@router.delete(
    "/seasons/{seasonId}",
    status_code=204,
    summary="Delete a season and its episodes",
    responses=permission_responses(_SEASON),
)
async def delete_season(season_id: SeasonId, tx: Tx, caller: CanWriteCatalog, meta: Meta) -> Response:
    """Permanent (restore the series, not its seasons)."""
    await seasons.delete_season(tx, season_id=season_id, actor=_actor(caller, meta))
    return Response(status_code=204)


@router.post(
    "/seasons/{seasonId}/episodes",
    status_code=201,
    response_model=EpisodeRead,
    summary="Add an episode to a season",
    responses=permission_responses({**_SEASON, 409: ["episode_number_taken"], 422: _INVALID}),
)
async def create_episode(
    season_id: SeasonId, body: EpisodeCreate, tx: Tx, caller: CanWriteCatalog, meta: Meta
) -> EpisodeRead:
    """Numbers are unique within the season."""
    row, number = await seasons.create_episode(tx, season_id=season_id, data=body, actor=_actor(caller, meta))
    return await reads.episode_read(tx, row, season_number=number)


@router.patch(
    "/episodes/{episodeId}",
    response_model=EpisodeRead,
    summary="Change an episode",
    responses=permission_responses({**_EPISODE, 409: ["episode_number_taken"], 422: _INVALID}),
)
async def update_episode(
    episode_id: EpisodeId, body: EpisodeUpdate, tx: Tx, caller: CanWriteCatalog, meta: Meta
) -> EpisodeRead:
    """Omitted fields stay; null clears an optional field."""
    row, number = await seasons.update_episode(
        tx, episode_id=episode_id, data=body, actor=_actor(caller, meta)
    )
    return await reads.episode_read(tx, row, season_number=number)


@router.delete(
    "/episodes/{episodeId}",
    status_code=204,
    summary="Delete an episode",
    responses=permission_responses(_EPISODE),
)
async def delete_episode(episode_id: EpisodeId, tx: Tx, caller: CanWriteCatalog, meta: Meta) -> Response:
    """Permanent."""
    await seasons.delete_episode(tx, episode_id=episode_id, actor=_actor(caller, meta))
    return Response(status_code=204)


# People.

_PERSON = {404: ["person_not_found"]}


@router.post(
    "/people",
    status_code=201,
    response_model=PersonDetail,
    summary="Add a person (cast or crew)",
    responses=permission_responses({409: ["slug_taken", "imdb_id_taken"], 422: _INVALID}),
)
async def create_person(body: PersonCreate, tx: Tx, caller: CanWriteCatalog, meta: Meta) -> PersonDetail:
    """The slug is made from the name when left out (numbered for namesakes)."""
    row = await people.create_person(tx, data=body, actor=_actor(caller, meta))
    return await reads.person_detail(tx, person_id=row["id"])


@router.patch(
    "/people/{personId}",
    response_model=PersonDetail,
    summary="Change a person",
    responses=permission_responses({**_PERSON, 409: ["slug_taken", "imdb_id_taken"], 422: _INVALID}),
)
async def update_person(
    person_id: PersonId, body: PersonUpdate, tx: Tx, caller: CanWriteCatalog, meta: Meta
) -> PersonDetail:
    """Omitted fields stay; null clears an optional field; `images` merges by kind.

    A change of `access` or `min_tier` applies to the next playback start and licence request.
    """
    await people.update_person(tx, person_id=person_id, data=body, actor=_actor(caller, meta))
    return await reads.person_detail(tx, person_id=person_id)


@router.delete(
    "/people/{personId}",
    status_code=204,
    summary="Delete a person (soft)",
    responses=permission_responses(_PERSON),
)
async def delete_person(person_id: PersonId, tx: Tx, caller: CanWriteCatalog, meta: Meta) -> Response:
    """Their credits stay stored but are hidden until the person is restored."""
    await people.delete_person(tx, person_id=person_id, actor=_actor(caller, meta))
    return Response(status_code=204)


@router.post(
    "/people/{personId}/restore",
    response_model=PersonDetail,
    summary="Restore a deleted person",
    responses=permission_responses({**_PERSON, 409: ["not_deleted", "slug_taken", "imdb_id_taken"]}),
)
async def restore_person(person_id: PersonId, tx: Tx, caller: CanWriteCatalog, meta: Meta) -> PersonDetail:
    """409 slug_taken when another person took the slug meanwhile."""
    await people.restore_person(tx, person_id=person_id, actor=_actor(caller, meta))
    return await reads.person_detail(tx, person_id=person_id)


# Taxonomy.


@router.post(
    "/genres",
    status_code=201,
    response_model=TermRead,
    summary="Add a genre",
    responses=permission_responses({409: ["slug_taken"], 422: _INVALID}),
)
async def create_genre(body: TermCreate, tx: Tx, caller: CanWriteCatalog, meta: Meta) -> TermRead:
    """The slug is made from the name when left out."""
    row = await service.create_term(tx, kind="genre", data=body, actor=_actor(caller, meta))
    return TermRead.model_validate(row)


@router.post(
    "/categories",
    status_code=201,
    response_model=TermRead,
    summary="Add a category",
    responses=permission_responses({409: ["slug_taken"], 422: _INVALID}),
)
async def create_category(body: TermCreate, tx: Tx, caller: CanWriteCatalog, meta: Meta) -> TermRead:
    """Editorial groupings such as "Award winners"; the slug is made from the name when left out."""
    row = await service.create_term(tx, kind="category", data=body, actor=_actor(caller, meta))
    return TermRead.model_validate(row)


# Artwork uploads.


@router.post(
    "/images/upload",
    response_model=ImageUploadTicket,
    summary="Get a direct-upload ticket for catalog artwork",
    responses=permission_responses(
        {422: [*_INVALID, "unsupported_image_type", "image_too_large"], 429: ["rate_limited"]}
    ),
)
async def image_upload(body: ImageUploadRequest, caller: CanWriteCatalog) -> ImageUploadTicket:
    """PNG, JPEG or WebP up to 10 MB, uploaded by the browser to storage (PUT) or Cloudinary (POST)."""
    return await images.upload_ticket(settings=get_settings(), user_id=caller.user_id, data=body)


@router.post(
    "/images",
    status_code=201,
    response_model=ImageUploaded,
    summary="Check an uploaded image and get its entry for images[kind]",
    responses=permission_responses(
        {
            400: ["invalid_image_key", "invalid_image_signature", "image_not_uploaded"],
            422: [*_INVALID, "invalid_image"],
        }
    ),
)
async def confirm_image(body: ImageConfirm, caller: CanWriteCatalog) -> ImageUploaded:
    """Storage: {kind, key}; Cloudinary: {kind, public_id, version, signature} from the upload's answer.

    422 invalid_image: not a decodable PNG, JPEG or WebP, over 10 MB or 40 megapixels, or under 100 px a
    side. The `entry` is then set with PATCH (or POST) of the title, season, episode or person.
    """
    return await images.confirm(settings=get_settings(), user_id=caller.user_id, data=body)


# Bulk import.


def _import_body_schema() -> dict[str, Any]:
    """The request body in OpenAPI: JSON rows (TitleCreate's fields plus nested lists) or a CSV text."""
    person_ref = {"type": "array", "items": ImportCast.model_json_schema()}
    crew_ref = {"type": "array", "items": ImportCrew.model_json_schema()}
    names = {"type": "array", "items": {"type": "string", "maxLength": 100}, "maxItems": 50}
    row = {
        "type": "object",
        "description": "The fields of TitleCreate, plus genres/categories by name, cast/crew and seasons.",
        "required": ["kind", "title"],
        "properties": {
            **TitleCreate.model_json_schema(ref_template="#/components/schemas/{model}")["properties"],
            "genres": names,
            "categories": names,
            "cast": person_ref,
            "crew": crew_ref,
            "seasons": {"type": "array", "items": {"$ref": "#/components/schemas/SeasonCreate"}},
        },
    }
    columns = "; ".join(f"{name}{f' ({doc})' if doc else ''}" for name, doc in importer.CSV_COLUMNS.items())
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["titles"],
                    "properties": {"titles": {"type": "array", "maxItems": importer.MAX_ROWS, "items": row}},
                }
            },
            "text/csv": {
                "schema": {"type": "string", "description": f"UTF-8, header row first. Columns: {columns}."}
            },
        },
    }


@router.post(
    "/import",
    response_model=ImportReport,
    summary="Import titles from JSON or CSV (per-row report)",
    responses=permission_responses(
        {
            400: ["invalid_json", "invalid_csv", "invalid_encoding"],
            413: ["payload_too_large"],
            415: ["unsupported_media_type"],
            422: _INVALID,
        }
    ),
    openapi_extra={"requestBody": _import_body_schema()},
)
async def import_catalog(
    request: Request,
    tx: Tx,
    caller: CanWriteCatalog,
    meta: Meta,
    dry_run: Annotated[bool, Query(description="Validate and report without writing anything")] = False,
) -> ImportReport:
    """Each row in its own savepoint: an invalid row is rolled back whole and reported, valid rows are kept.

    A row matching a live title by imdb_id (else slug) updates it, so re-importing is idempotent. 422 for
    the whole body only when it is not an import at all (no `titles`, unknown CSV columns, too many rows).
    """
    rows, problems, source = importer.parse_body(request.headers.get("content-type"), await request.body())
    return await importer.run_import(
        tx, rows=rows, problems=problems, source=source, dry_run=dry_run, actor=_actor(caller, meta)
    )
