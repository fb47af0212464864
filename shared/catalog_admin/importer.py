"""Bulk import of a catalog from JSON or CSV, row by row, each row in its own savepoint.

JSON (application/json): {"titles": [row, ...]}, each row shaped as for POST /titles plus
  genres, categories: names (created when missing);
  cast: [{name, imdb_id?, slug?, character?, order?}], crew: [{name, imdb_id?, slug?, job, order?}]
    (people matched by imdb_id, else slug, else name; created when missing);
  seasons: [{number, name?, ..., episodes: [{number, name, ...}]}] (matched by number and upserted).
CSV (text/csv, UTF-8, header row first, one movie per row): the columns in CSV_COLUMNS; an empty cell
  leaves the field out (a new title gets the default, an updated one keeps its value); list cells separate
  items with "|". Cells are validated as the same fields of the JSON row (e.g. access, min_tier).

A row matching a live title by imdb_id (else by slug, given or made from the title) updates it: the
fields it sends change, the lists it sends (genres, categories, cast, crew) replace the stored ones,
seasons and episodes are upserted by number. A row whose data is invalid is rolled back entirely
(nothing of it stays, not even the people or genres it created) and reported with its errors; the valid
rows are kept. Rows are numbered from 1 (CSV: data rows, header and blank lines not counted).
`dry_run` runs every row the same way inside a savepoint that is rolled back: the report is exact and
nothing is written.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from shared.catalog_admin import codes, people, repository, seasons, service
from shared.catalog_admin.checks import FieldError, InvalidFields, field_errors, pydantic_errors
from shared.catalog_admin.schemas import (
    ImportCast,
    ImportCrew,
    ImportReport,
    ImportRow,
    ImportRowError,
    ImportTitle,
)
from shared.catalog_admin.service import Actor
from shared.errors import AppError, BadRequest

MAX_ROWS = 5000

_LIST = "a list: items separated by '|'"
CSV_COLUMNS: dict[str, str] = {
    "kind": "movie (default) or series",
    "title": "required",
    "slug": "made from the title when empty",
    "original_title": "",
    "synopsis_short": "",
    "synopsis_long": "",
    "release_date": "YYYY-MM-DD (sets release_year)",
    "release_year": "",
    "runtime_minutes": "",
    "countries": "production countries (ISO 3166-1 alpha-2), " + _LIST,
    "original_language": "e.g. en, pt-BR",
    "audio_languages": _LIST,
    "subtitle_languages": _LIST,
    "rating_system": "mpaa or tv",
    "rating": "e.g. PG-13, TV-MA",
    "maturity_level": "only for unrated titles: all, 7+, 13+, 16+, 18+",
    "tags": _LIST,
    "genres": "names, created when missing; " + _LIST,
    "categories": "names, created when missing; " + _LIST,
    "cast": "'Name' or 'Name:Character' items; " + _LIST,
    "crew": "'Name:job' items (job: director, writer, ...); " + _LIST,
    "imdb_id": "tt + 7-10 digits; re-importing the same id updates the title",
    "tmdb_id": "digits",
    "status": "draft (default), scheduled, published, archived",
    "publish_at": "ISO 8601 with offset, for scheduled",
    "available_from": "ISO 8601 with offset",
    "available_until": "ISO 8601 with offset",
    "country_allow": _LIST,
    "country_deny": _LIST,
    "access": "free, free_with_ads, subscription (default on creation), transactional",
    "min_tier": "lowest plan tier for access=subscription, 0-10 (1 on creation)",
    "poster": "storage key, cloudinary:<public_id> (under catalog/images/ an upload's name), or https URL",
    "backdrop": "as poster",
    "logo": "as poster",
    "trailer_url": "https URL",
}
_LIST_COLUMNS = frozenset(
    {
        "countries",
        "audio_languages",
        "subtitle_languages",
        "tags",
        "genres",
        "categories",
        "country_allow",
        "country_deny",
    }
)
_IMAGE_COLUMNS = ("poster", "backdrop", "logo")
_CSV_TYPES = frozenset({"text/csv", "application/csv"})


class UnsupportedMediaType(AppError):
    """The import body is neither JSON nor CSV."""

    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class RowRejected(Exception):
    """A row cannot be imported; its savepoint is rolled back."""

    def __init__(self, problems: list[FieldError]) -> None:
        super().__init__("row rejected")
        self.problems = problems


Parsed = tuple[list[Any], dict[int, list[FieldError]], str]
Done = Literal["imported", "updated"]


def parse_body(content_type: str | None, body: bytes) -> Parsed:
    """The rows of a JSON or CSV body, problems found while parsing by row number, and the format."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return rows_from_json(body), {}, "json"
    if media in _CSV_TYPES:
        rows, problems = rows_from_csv(body)
        return rows, problems, "csv"
    raise UnsupportedMediaType('Send application/json ({"titles": [...]}) or text/csv.')


def rows_from_json(body: bytes) -> list[Any]:
    """The rows of {"titles": [...]}."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest("The body is not valid JSON.", code="invalid_json") from error
    if not isinstance(data, dict) or not isinstance(data.get("titles"), list):
        raise InvalidFields([FieldError("titles", "titles_required", 'send {"titles": [...]}')])
    extra = sorted(set(data) - {"titles"})
    if extra:
        raise InvalidFields(
            [FieldError(name, "extra_forbidden", "Extra inputs are not permitted") for name in extra]
        )
    rows: list[Any] = data["titles"]
    _check_count(len(rows))
    return rows


def rows_from_csv(body: bytes) -> tuple[list[dict[str, Any]], dict[int, list[FieldError]]]:
    """One row dict per data line of a CSV with a header (UTF-8, an Excel BOM is fine)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise BadRequest("The CSV must be UTF-8 encoded.", code="invalid_encoding") from error
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise InvalidFields([FieldError("", "missing_header", "the CSV has no header row")])
        names = [name.strip().lower() for name in header]
        _check_header(names)
        rows: list[dict[str, Any]] = []
        problems: dict[int, list[FieldError]] = {}
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # blank lines: spreadsheets leave them at the end
            rows.append(_row_from_cells(names, cells))
            if len(cells) > len(names):
                problems[len(rows)] = [
                    FieldError("", "too_many_cells", f"{len(cells)} cells for {len(names)} columns")
                ]
            _check_count(len(rows))
    except csv.Error as error:
        raise BadRequest(f"The CSV is malformed: {error}.", code="invalid_csv") from error
    return rows, problems


def _check_count(count: int) -> None:
    if count > MAX_ROWS:
        raise InvalidFields([FieldError("titles", "too_many_rows", f"at most {MAX_ROWS} rows per import")])


def _check_header(names: list[str]) -> None:
    problems = [
        FieldError(f"columns.{name}", "unknown_column", f"unknown column; accepted: {', '.join(CSV_COLUMNS)}")
        for name in names
        if name not in CSV_COLUMNS
    ]
    problems += [
        FieldError(f"columns.{name}", "duplicate_column", "the column appears twice")
        for i, name in enumerate(names)
        if name in names[:i]
    ]
    if "title" not in names:
        problems.append(FieldError("columns.title", "missing_column", "the title column is required"))
    if problems:
        raise InvalidFields(problems)


def _row_from_cells(names: list[str], cells: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, cell in zip(names, cells, strict=False):
        value = cell.strip()
        if not value:
            continue
        items = [item.strip() for item in value.split("|") if item.strip()]
        if name in _LIST_COLUMNS:
            row[name] = items
        elif name == "cast":
            row["cast"] = [_person_cell(item, "character") for item in items]
        elif name == "crew":
            row["crew"] = [_person_cell(item, "job") for item in items]
        elif name in _IMAGE_COLUMNS:
            row.setdefault("images", {})[name] = _image_cell(value)
        elif name == "trailer_url":
            row["trailers"] = [{"url": value}]
        else:
            row[name] = value
    row.setdefault("kind", "movie")
    return row


def _person_cell(item: str, detail: str) -> dict[str, Any]:
    name, _, rest = item.partition(":")
    entry: dict[str, Any] = {"name": name.strip()}
    if rest.strip():
        entry[detail] = rest.strip()
    return entry


def _image_cell(value: str) -> dict[str, Any]:
    # Checked as any images entry (schemas.ImageRef): under catalog/images/ a public_id must be an upload's
    # name (a delivery extension such as .jpg stripped), or the Cloudinary sweep would take it for unused.
    if value.startswith("cloudinary:"):
        return {"public_id": value.removeprefix("cloudinary:")}
    if value.startswith(("https://", "http://")):
        return {"url": value}
    return {"key": value}


# Running an import.


async def run_import(
    conn: Any,
    *,
    rows: list[Any],
    problems: dict[int, list[FieldError]],
    source: str,
    dry_run: bool,
    actor: Actor,
) -> ImportReport:
    """Import every row in its own savepoint; the whole run in one rolled-back savepoint for a dry run."""
    now = datetime.now(UTC)
    results: list[ImportRow] = []
    async with conn.transaction(force_rollback=dry_run):
        for number, raw in enumerate(rows, start=1):
            results.append(await _one_row(conn, number, raw, problems.get(number), now=now))
    counts = {
        status: sum(r.status == status for r in results) for status in ("imported", "updated", "rejected")
    }
    if not dry_run:
        await service.record(
            conn,
            actor,
            "catalog_imported",
            entity="import",
            format=source,
            title_ids=[str(r.id) for r in results if r.id is not None],
            **counts,
        )
        await service.invalidate(r.id for r in results if r.id is not None)
    return ImportReport(dry_run=dry_run, rows=results, **counts)


async def _one_row(
    conn: Any, number: int, raw: Any, parsed: list[FieldError] | None, *, now: datetime
) -> ImportRow:
    from psycopg import DataError, IntegrityError

    problems: list[FieldError] = list(parsed or [])
    row: ImportTitle | None = None
    try:
        row = ImportTitle.model_validate(raw)
    except ValidationError as error:
        problems += pydantic_errors(error.errors())
    if problems or row is None:
        return _rejected(number, problems)
    try:
        async with conn.transaction():  # a savepoint: a failing row leaves nothing behind
            status, title = await _import(conn, row, now=now)
    except RowRejected as error:
        return _rejected(number, error.problems)
    except AppError as error:
        return _rejected(number, field_errors(error))
    except (IntegrityError, DataError) as error:  # a rule the checks above missed; the database caught it
        constraint = getattr(error.diag, "constraint_name", None) or "data"
        return _rejected(number, [FieldError("", "constraint_violation", f"the row breaks {constraint}")])
    return ImportRow(row=number, status=status, id=title["id"], slug=title["slug"])


def _rejected(number: int, problems: list[FieldError]) -> ImportRow:
    errors = [ImportRowError(field=p.field, code=p.code, message=p.message) for p in problems]
    return ImportRow(row=number, status="rejected", errors=errors)


@asynccontextmanager
async def _at(path: str = "") -> AsyncIterator[None]:
    """Turn our errors into the row's errors, fields prefixed with where in the row they happened."""
    try:
        yield
    except AppError as error:
        problems = [
            FieldError(".".join(part for part in (path, p.field) if part), p.code, p.message)
            for p in field_errors(error)
        ]
        raise RowRejected(problems) from error


async def _import(conn: Any, row: ImportTitle, *, now: datetime) -> tuple[Done, dict[str, Any]]:
    """Create or update one title and everything nested in the row."""
    if row.imdb_id is not None:
        current = await repository.find_title(conn, imdb_id=row.imdb_id)
    else:
        slug = row.slug or codes.slugify(row.title)
        current = await repository.find_title(conn, slug=slug) if slug else None
    async with _at():
        title, _ = await service.write_title(conn, current=current, changes=row.changes(), now=now)
    for kind, names in (("genre", row.genres), ("category", row.categories)):
        if names is not None:
            field = "genres" if kind == "genre" else "categories"
            term_ids = await _terms(conn, kind, names, field=field)
            await repository.replace_title_terms(conn, title["id"], kind=kind, term_ids=term_ids)
    credits: list[dict[str, Any]] = []
    roles: list[str] = []
    if row.cast is not None:
        roles.append("cast")
        credits += await _credits(conn, "cast", row.cast)
    if row.crew is not None:
        roles.append("crew")
        credits += await _credits(conn, "crew", row.crew)
    if roles:
        await repository.replace_credits(conn, title["id"], credits, roles=tuple(roles))
    if row.seasons:
        await _seasons(conn, title, row)
    return ("imported" if current is None else "updated"), title


async def _terms(conn: Any, kind: str, names: list[str], *, field: str) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for i, name in enumerate(names):
        slug = codes.slugify(name)
        if not slug:
            raise RowRejected(
                [FieldError(f"{field}.{i}", "invalid_term_name", "a name needs Latin letters or digits")]
            )
        found = await repository.terms_by_slug(conn, kind, [slug])
        async with _at(f"{field}.{i}"):
            term = found[0] if found else await repository.insert_term(conn, kind=kind, slug=slug, name=name)
        if term["id"] not in ids:
            ids.append(term["id"])
    return ids


async def _credits(conn: Any, role: str, entries: Sequence[ImportCast | ImportCrew]) -> list[dict[str, Any]]:
    credits = []
    for i, entry in enumerate(entries):
        async with _at(f"{role}.{i}"):
            person_id = await _person(conn, entry)
        credit: dict[str, Any] = {
            "person_id": person_id,
            "role": role,
            "billing_order": i if entry.order is None else entry.order,
        }
        if isinstance(entry, ImportCast):
            credit["character"] = entry.character
        else:
            credit["job"] = entry.job
        credits.append(credit)
    return credits


async def _person(conn: Any, ref: ImportCast | ImportCrew) -> uuid.UUID:
    """The person a credit names: by IMDb id, else slug, else name (no id given); created when missing."""
    found = None
    if ref.imdb_id is not None:
        found = await repository.find_person(conn, imdb_id=ref.imdb_id)
    if found is None and ref.slug is not None:
        found = await repository.find_person(conn, slug=ref.slug)
    if found is None and ref.imdb_id is None and ref.slug is None:
        found = await repository.find_person(conn, name=ref.name)
    if found is None:
        values = ref.model_dump(include={"name", "slug", "imdb_id"}, exclude_none=True)
        found, _ = await people.write_person(conn, current=None, changes=values)
    person_id: uuid.UUID = found["id"]
    return person_id


async def _seasons(conn: Any, title: dict[str, Any], row: ImportTitle) -> None:
    assert row.seasons is not None
    async with _at("seasons"):
        seasons.require_series(title)
    problems = seasons.duplicate_numbers(row.seasons, path="seasons")
    for i, data in enumerate(row.seasons):
        problems += seasons.duplicate_numbers(data.episodes, path=f"seasons.{i}.episodes")
    if problems:
        raise RowRejected(problems)
    for i, data in enumerate(row.seasons):
        async with _at(f"seasons.{i}"):
            current = await repository.find_season(conn, title["id"], data.number)
            stored, _ = await seasons.write_season(conn, title=title, current=current, changes=data.changes())
        for j, episode in enumerate(data.episodes):
            async with _at(f"seasons.{i}.episodes.{j}"):
                existing = (
                    await repository.find_episode(conn, stored["id"], episode.number) if current else None
                )
                await seasons.write_episode(conn, season=stored, current=existing, changes=episode.changes())
