"""The demo catalog for `make dev`: 36 invented movies and a two-season series, with people and artwork.

Loaded by `cinema seed` after supabase/seed.sql (shared/infra/seeding.py). Idempotent and keyed by the
titles' fixed slugs: a title whose slug exists in any state (even soft-deleted by a content manager) is
left alone, so re-seeding on every start neither duplicates nor resurrects anything. Artwork is drawn
with Pillow (demo_art) and stored in object storage under catalog/demo/, with the WebP variants an upload
gets (shared.images.variants, so pages load small images), before the rows are written in one
transaction; objects are deterministic, so a run that fails halfway only rewrites the same bytes. A
catalog seeded before variants existed is brought up to date by the next load: each demo row's image
entry that is still the demo's own original (its key unchanged) and has no `sizes` gets its variants,
made from the stored original; an image a content manager replaced is never touched.
The audience aggregates (thumbs, stars) are invented too, so "top rated" rows have something to show.

The SQL lives here rather than in repository.py: it is demo-only and writes whole rows in bulk.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from shared.catalog import demo_art, demo_data
from shared.catalog.demo_data import MOVIES, SEASONS, SERIES_SLUG, DemoMovie, slugify
from shared.catalog.images import KINDS
from shared.catalog.ratings_map import maturity_for
from shared.images import variants
from shared.images.policy import InvalidImage
from shared.infra.storage import Storage
from shared.infra.storage.rules import ObjectNotFound

Db = psycopg.AsyncConnection[Any]
PREFIX = "catalog/demo"
_JPEG = "image/jpeg"
# pg_advisory_xact_lock key: two seeders starting together must not both insert.
_LOCK_KEY = 0x0C1E_DE30_CA7A_1061
_LONG_LINES = {
    "Action": "Relentless set pieces carry a story that never forgets the people caught in the middle.",
    "Adventure": "A journey told on a grand scale, with wonder and danger waiting around every corner.",
    "Animation": "Hand-crafted animation full of colour, wit and warmth for every age.",
    "Comedy": "Sharp, generous and often laugh-out-loud funny, with a big heart under the jokes.",
    "Crime": "A tightly wound tale of bad decisions, worse company and consequences nobody planned for.",
    "Documentary": "Patient, intimate filmmaking that lets its subjects speak for themselves.",
    "Drama": "A quietly devastating portrait of people holding on to what they love.",
    "Family": "An adventure to watch together, as funny for grown-ups as it is for children.",
    "Fantasy": "A richly imagined world of old magic, strange creatures and hard choices.",
    "Horror": "Slow-building dread gives way to scares that linger long after the lights come on.",
    "Mystery": "Clues hide in plain sight in a puzzle that rewards every careful viewer.",
    "Romance": "A love story told with humour and longing, where timing is everything.",
    "Science Fiction": "Big ideas and human stakes meet in a future that feels uncomfortably close.",
    "Thriller": "A race against the clock that tightens its grip with every scene.",
}


@dataclass(frozen=True)
class DemoResult:
    """What a load did: titles created now, titles already there, images stored, old entries upgraded.

    `upgraded` counts the image entries of an older demo catalog that were given their variants.
    """

    created: int
    existing: int
    images: int
    upgraded: int = 0


@dataclass(frozen=True)
class _Art:
    kind: str
    key: str
    render: Callable[[], bytes]


Entries = dict[str, dict[str, Any]]  # images[kind] entry by the original's storage key


def _rng(seed: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big"))  # noqa: S311


def title_slugs() -> list[str]:
    """The fixed slugs of every demo title (movies, then the series)."""
    return [movie.slug for movie in MOVIES] + [SERIES_SLUG]


def _release(slug: str, year: int) -> dt.date:
    rng = _rng(slug + ":date")
    return dt.date(year, rng.randint(1, 12), rng.randint(1, 28))


def _caption(year: int, genres: tuple[str, ...]) -> str:
    return " · ".join([str(year), *genres[:2]])


# --- artwork ---------------------------------------------------------------------------------------


def _title_art(slug: str, title: str, caption: str) -> dict[str, _Art]:
    return {
        "poster": _Art(
            "poster",
            f"{PREFIX}/{slug}/poster.jpg",
            lambda: demo_art.poster(title, caption, seed=slug),
        ),
        "backdrop": _Art(
            "backdrop",
            f"{PREFIX}/{slug}/backdrop.jpg",
            lambda: demo_art.backdrop(title, caption, seed=slug),
        ),
    }


def _series_art() -> dict[str, _Art]:
    return _title_art(SERIES_SLUG, demo_data.SERIES_TITLE, f"{SEASONS[0].year} · Drama · Mystery")


def _season_art(number: int, name: str, year: int) -> _Art:
    caption = f"Season {number} · {year}"
    seed = f"{SERIES_SLUG}:s{number}"
    return _Art(
        "poster",
        f"{PREFIX}/{SERIES_SLUG}/s{number:02d}/poster.jpg",
        lambda: demo_art.poster(demo_data.SERIES_TITLE, caption + f" · {name}", seed=seed),
    )


def _still_art(season: int, episode: int, name: str) -> _Art:
    seed = f"{SERIES_SLUG}:s{season}e{episode}"
    return _Art(
        "still",
        f"{PREFIX}/{SERIES_SLUG}/s{season:02d}e{episode:02d}/still.jpg",
        lambda: demo_art.still(name, f"{demo_data.SERIES_TITLE} · S{season} E{episode}", seed=seed),
    )


def _photo_art(slug: str, name: str) -> _Art:
    return _Art(
        "photo",
        f"{PREFIX}/people/{slug}/photo.jpg",
        lambda: demo_art.photo(name, seed=slug),
    )


async def _store(storage: Storage, art: list[_Art]) -> Entries:
    """Render on worker threads (Pillow releases the GIL); store each image and its upload variants.

    Returns each image's entry for images[kind] by its key: what was stored, as an upload's entry.
    """

    async def one(item: _Art) -> tuple[str, dict[str, Any]]:
        data = await asyncio.to_thread(item.render)
        # The drawn JPEG as it is (no metadata to strip; re-encoding would only lose quality).
        _, entry = await asyncio.gather(
            storage.put_bytes(item.key, data, content_type=_JPEG), _with_variants(storage, item, data)
        )
        return item.key, entry

    return dict(await asyncio.gather(*(one(item) for item in art)))


async def _with_variants(storage: Storage, item: _Art, data: bytes) -> dict[str, Any]:
    """Make and store the upload variants of `data` (the image at item.key); its images[kind] entry."""
    spec = KINDS[item.kind]
    rendered = await variants.make(data, aspect_ratio=spec.aspect_ratio, widths=spec.widths)
    sizes = await variants.store_variants(storage, item.key, rendered)
    return {"key": item.key, "sizes": sizes, "width": rendered.width, "height": rendered.height}


# --- credits ---------------------------------------------------------------------------------------

Credit = tuple[str, str, str | None, str | None, int]  # person, role, character, job, billing order


def _movie_credits(index: int, movie: DemoMovie) -> list[Credit]:
    """Director and writers in rotation, four cast members, invented character names."""
    rng = _rng(movie.slug + ":credits")
    actors = list(demo_data.ACTORS)
    _rng("cast-order").shuffle(actors)  # the same order every run; consecutive windows cover everyone
    credits: list[Credit] = [
        (demo_data.DIRECTORS[index % len(demo_data.DIRECTORS)], "crew", None, "director", 0)
    ]
    writers = [demo_data.WRITERS[index % len(demo_data.WRITERS)]]
    if index % 3 == 0:
        writers.append(demo_data.WRITERS[(index + 4) % len(demo_data.WRITERS)])
    credits += [(writer, "crew", None, "writer", order + 1) for order, writer in enumerate(writers)]
    firsts = rng.sample(demo_data.CHARACTER_FIRST, 4)
    lasts = rng.sample(demo_data.CHARACTER_LAST, 4)
    for order in range(4):
        actor = actors[(index * 4 + order) % len(actors)]
        credits.append((actor, "cast", f"{firsts[order]} {lasts[order]}", None, order))
    return credits


def _series_credits() -> list[Credit]:
    credits: list[Credit] = [
        (name, "crew", None, job, order) for order, (name, job) in enumerate(demo_data.SERIES_CREW)
    ]
    credits += [
        (name, "cast", character, None, order)
        for order, (name, character) in enumerate(demo_data.SERIES_CAST)
    ]
    return credits


# --- rows ------------------------------------------------------------------------------------------


def _movie_row(movie: DemoMovie, images: dict[str, Any]) -> dict[str, Any]:
    rng = _rng(movie.slug + ":numbers")
    release = _release(movie.slug, movie.year)
    votes = rng.randint(25, 900)
    stars = rng.uniform(2.6, 4.8)
    return {
        "kind": "movie",
        "slug": movie.slug,
        "title": movie.title,
        "original_title": movie.title,
        "synopsis_short": movie.synopsis,
        "synopsis_long": f"{movie.synopsis} {_LONG_LINES[movie.genres[0]]}",
        "release_date": release,
        "release_year": movie.year,
        "runtime_minutes": movie.runtime,
        "countries": [movie.country],
        "original_language": movie.language,
        "audio_languages": sorted({movie.language, "en"}),
        "subtitle_languages": sorted({movie.language, "en", "es", "fr", "de"}),
        "rating_system": "mpaa",
        "rating": movie.rating,
        "maturity_level": maturity_for("mpaa", movie.rating),
        "tags": list(movie.tags),
        "images": Jsonb(images),
        "status": "published",
        # Newer titles trend higher, as on a real service; the jitter keeps rows from looking sorted.
        "popularity": round(rng.uniform(5, 45) + max(0, movie.year - 1980) * 1.2, 2),
        "thumbs_up": round(votes * (stars - 1) / 4),
        "thumbs_down": votes - round(votes * (stars - 1) / 4),
        "stars_count": votes,
        "stars_sum": round(votes * stars),
    }


def _series_row(images: dict[str, Any]) -> dict[str, Any]:
    first = SEASONS[0]
    return {
        "kind": "series",
        "slug": SERIES_SLUG,
        "title": demo_data.SERIES_TITLE,
        "original_title": demo_data.SERIES_TITLE,
        "synopsis_short": demo_data.SERIES_SYNOPSIS,
        "synopsis_long": f"{demo_data.SERIES_SYNOPSIS} {_LONG_LINES['Mystery']}",
        "release_date": _release(SERIES_SLUG, first.year),
        "release_year": first.year,
        "runtime_minutes": 52,
        "countries": ["GB"],
        "original_language": "en",
        "audio_languages": ["en"],
        "subtitle_languages": ["de", "en", "es", "fr"],
        "rating_system": "tv",
        "rating": "TV-14",
        "maturity_level": maturity_for("tv", "TV-14"),
        "tags": ["coastal", "cold case", "lighthouse"],
        "images": Jsonb(images),
        "status": "published",
        "popularity": 88.5,
        "thumbs_up": 612,
        "thumbs_down": 41,
        "stars_count": 640,
        "stars_sum": 2790,
    }


# --- SQL -------------------------------------------------------------------------------------------


async def _existing_titles(conn: Db, slugs: list[str]) -> set[str]:
    # Any state counts, soft-deleted included: a demo title a manager deleted stays deleted.
    cursor = await conn.execute("select slug from public.catalog_titles where slug = any(%s)", (slugs,))
    return {row[0] for row in await cursor.fetchall()}


async def _existing_people(conn: Db, slugs: list[str]) -> set[str]:
    cursor = await conn.execute(
        "select slug from public.catalog_people where slug = any(%s) and deleted_at is null", (slugs,)
    )
    return {row[0] for row in await cursor.fetchall()}


async def _terms(conn: Db) -> dict[tuple[str, str], Any]:
    rows = [("genre", slugify(name), name) for name in demo_data.GENRES]
    rows += [("category", slugify(name), name) for name in demo_data.CATEGORIES]
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "insert into public.catalog_terms (kind, slug, name) values (%s, %s, %s) on conflict do nothing",
            rows,
        )
        await cursor.execute(
            """select kind, name, id from public.catalog_terms
               where (kind, slug) in (select * from unnest(%s::text[], %s::text[]))""",
            ([row[0] for row in rows], [row[1] for row in rows]),
        )
        return {(kind, name): term_id for kind, name, term_id in await cursor.fetchall()}


async def _people(
    conn: Db, names: list[str], photos: dict[str, _Art], credits: dict[str, list[str]], entries: Entries
) -> dict[str, Any]:
    """Insert the people not there yet (with photo and a short biography); return every id by name."""
    rows = []
    for name in names:
        slug = slugify(name)
        rng = _rng(slug + ":person")
        known_for = credits[name]
        biography = f"{name} is known for {known_for[0]}" + (
            f" and {len(known_for) - 1} more title{'s' if len(known_for) > 2 else ''} on Cinema Online."
            if len(known_for) > 1
            else " on Cinema Online."
        )
        images = {"photo": entries[photos[slug].key]} if slug in photos else {}
        birth = dt.date(rng.randint(1932, 1996), rng.randint(1, 12), rng.randint(1, 28))
        rows.append((name, slug, biography, birth, Jsonb(images)))
    async with conn.cursor() as cursor:
        await cursor.executemany(
            """insert into public.catalog_people (name, slug, biography, birth_date, images)
               values (%s, %s, %s, %s, %s) on conflict (slug) where deleted_at is null do nothing""",
            rows,
        )
        await cursor.execute(
            "select slug, id from public.catalog_people where slug = any(%s) and deleted_at is null",
            ([row[1] for row in rows],),
        )
        ids = dict(await cursor.fetchall())
    return {name: ids[slugify(name)] for name in names}


async def _insert_title(conn: Db, row: dict[str, Any]) -> Any:
    columns = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    cursor = await conn.execute(
        f"""insert into public.catalog_titles ({columns}) values ({marks})
            on conflict (slug) where deleted_at is null do nothing returning id""",  # noqa: S608 (fixed names)
        list(row.values()),
    )
    found = await cursor.fetchone()
    return None if found is None else found[0]


# --- the load --------------------------------------------------------------------------------------


async def load_demo_catalog(conn: Db, *, storage: Storage) -> DemoResult:
    """Create the missing demo titles, then give old demo images their variants; `conn` in autocommit."""
    slugs = title_slugs()
    missing = set(slugs) - await _existing_titles(conn, slugs)
    created, images = await _create(conn, storage, missing) if missing else (0, 0)
    upgraded = await _upgrade(conn, storage)
    return DemoResult(created=created, existing=len(slugs) - created, images=images, upgraded=upgraded)


async def _create(conn: Db, storage: Storage, missing: set[str]) -> tuple[int, int]:
    """Draw, store and insert the missing titles (and the people they need); (titles created, images)."""
    movies = [(index, movie) for index, movie in enumerate(MOVIES) if movie.slug in missing]
    with_series = SERIES_SLUG in missing
    credits: dict[str, list[Credit]] = {movie.slug: _movie_credits(index, movie) for index, movie in movies}
    if with_series:
        credits[SERIES_SLUG] = _series_credits()
    names_of = {movie.slug: movie.title for movie in MOVIES} | {SERIES_SLUG: demo_data.SERIES_TITLE}
    known_for: dict[str, list[str]] = {}
    for slug, title_credits in credits.items():
        for person, *_ in title_credits:
            titles = known_for.setdefault(person, [])
            if names_of[slug] not in titles:  # a creator who also directs is known for it once
                titles.append(names_of[slug])
    people = sorted(known_for)

    art: dict[str, dict[str, _Art]] = {
        movie.slug: _title_art(movie.slug, movie.title, _caption(movie.year, movie.genres))
        for _, movie in movies
    }
    seasons_art = {}
    stills = {}
    if with_series:
        art[SERIES_SLUG] = _series_art()
        seasons_art = {
            season.number: _season_art(season.number, season.name, season.year) for season in SEASONS
        }
        stills = {
            (season.number, number): _still_art(season.number, number, episode.name)
            for season in SEASONS
            for number, episode in enumerate(season.episodes, start=1)
        }
    new_people = set(map(slugify, people)) - await _existing_people(conn, [slugify(name) for name in people])
    photos = {
        slugify(name): _photo_art(slugify(name), name) for name in people if slugify(name) in new_people
    }
    every = [item for kinds in art.values() for item in kinds.values()]
    every += [*seasons_art.values(), *stills.values(), *photos.values()]
    entries = await _store(storage, every)

    async with conn.transaction():
        await conn.execute("select pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        # Another seeder may have finished while the images were drawn: check again under the lock.
        missing = missing - await _existing_titles(conn, sorted(missing))
        if not missing:
            return 0, len(every)
        terms = await _terms(conn)
        person_ids = await _people(conn, people, photos, known_for, entries)
        created = 0
        title_terms: list[tuple[Any, Any]] = []
        credit_rows: list[tuple[Any, ...]] = []
        for _, movie in movies:
            if movie.slug not in missing:
                continue
            images = {kind: entries[item.key] for kind, item in art[movie.slug].items()}
            title_id = await _insert_title(conn, _movie_row(movie, images))
            created += 1
            title_terms += [(title_id, terms[("genre", genre)]) for genre in movie.genres]
            title_terms += [(title_id, terms[("category", category)]) for category in movie.categories]
            credit_rows += [(title_id, person_ids[person], *rest) for person, *rest in credits[movie.slug]]
        if with_series and SERIES_SLUG in missing:
            images = {kind: entries[item.key] for kind, item in art[SERIES_SLUG].items()}
            series_id = await _insert_title(conn, _series_row(images))
            created += 1
            title_terms += [(series_id, terms[("genre", genre)]) for genre in ("Drama", "Mystery")]
            title_terms.append((series_id, terms[("category", "Critics' Picks")]))
            credit_rows += [(series_id, person_ids[person], *rest) for person, *rest in credits[SERIES_SLUG]]
            await _insert_seasons(conn, series_id, seasons_art, stills, entries)
        async with conn.cursor() as cursor:
            await cursor.executemany(
                """insert into public.catalog_title_terms (title_id, term_id) values (%s, %s)
                   on conflict do nothing""",
                title_terms,
            )
            await cursor.executemany(
                """insert into public.catalog_credits
                     (title_id, person_id, role, character, job, billing_order)
                   values (%s, %s, %s, %s, %s, %s)""",
                credit_rows,
            )
    return created, len(every)


async def _insert_seasons(
    conn: Db,
    series_id: Any,
    posters: dict[int, _Art],
    stills: dict[tuple[int, int], _Art],
    entries: Entries,
) -> None:
    for season in SEASONS:
        start = _release(f"{SERIES_SLUG}:s{season.number}", season.year)
        cursor = await conn.execute(
            """insert into public.catalog_seasons (title_id, number, name, synopsis, release_date, images)
               values (%s, %s, %s, %s, %s, %s) returning id""",
            (series_id, season.number, season.name, season.synopsis, start,
             Jsonb({"poster": entries[posters[season.number].key]})),
        )  # fmt: skip
        found = await cursor.fetchone()
        assert found is not None
        async with conn.cursor() as episodes:
            await episodes.executemany(
                """insert into public.catalog_episodes
                     (season_id, title_id, number, name, synopsis, runtime_minutes, release_date, images)
                   values (%s, %s, %s, %s, %s, %s, %s, %s)""",
                [
                    (found[0], series_id, number, episode.name, episode.synopsis, episode.runtime,
                     start + dt.timedelta(weeks=number - 1),
                     Jsonb({"still": entries[stills[(season.number, number)].key]}))
                    for number, episode in enumerate(season.episodes, start=1)
                ],
            )  # fmt: skip


# --- upgrading an older demo catalog ---------------------------------------------------------------

# Image entries of demo rows under catalog/demo/ without variants (a catalog seeded before they existed).
# One query, so a catalog that is up to date costs one round trip; _demo_art then keeps only the entries
# whose key is still exactly the demo's own for that row and kind.
_STALE_SQL = """
with demo_rows (tbl, id, slug, season, episode, images) as (
  select 'catalog_titles', t.id, t.slug, null::int, null::int, t.images
    from public.catalog_titles t where t.slug = any(%(titles)s)
  union all
  select 'catalog_seasons', s.id, t.slug, s.number, null, s.images
    from public.catalog_seasons s join public.catalog_titles t on t.id = s.title_id
   where t.slug = %(series)s
  union all
  select 'catalog_episodes', e.id, t.slug, s.number, e.number, e.images
    from public.catalog_episodes e join public.catalog_seasons s on s.id = e.season_id
    join public.catalog_titles t on t.id = s.title_id
   where t.slug = %(series)s
  union all
  select 'catalog_people', p.id, p.slug, null, null, p.images
    from public.catalog_people p where p.slug = any(%(people)s)
)
select r.tbl, r.id, r.slug, r.season, r.episode, entry.key, entry.value ->> 'key'
  from demo_rows r
  cross join lateral jsonb_each(case when jsonb_typeof(r.images) = 'object' then r.images else '{}' end) entry
 where jsonb_typeof(entry.value) = 'object'
   and starts_with(entry.value ->> 'key', %(prefix)s)
   and jsonb_typeof(entry.value -> 'sizes') is distinct from 'object'
"""
# The upgrade of one entry per table, from fixed names only (the row's table comes back from _STALE_SQL).
# Only `sizes` (and the size) of an entry that is still the demo's original without variants when the
# update runs: a manager's replacement or another seeder's upgrade is left as it is, so a conditional
# update is all two seeders racing need.
_UPGRADE_SQL = {
    table: f"""update public.{table}
                  set images = jsonb_set(images, array[%(kind)s], images -> %(kind)s || %(made)s)
                where id = %(id)s and images -> %(kind)s ->> 'key' = %(key)s
                  and jsonb_typeof(images -> %(kind)s -> 'sizes') is distinct from 'object'"""  # noqa: S608
    for table in ("catalog_titles", "catalog_seasons", "catalog_episodes", "catalog_people")
}


@dataclass(frozen=True)
class _Stale:
    table: str
    row_id: Any
    kind: str
    art: _Art


def _demo_art(table: str, slug: str, season: int | None, episode: int | None, kind: str) -> _Art | None:
    """The artwork the loader writes for this row and kind, or None when the demo has none there."""
    if table == "catalog_titles":
        movie = next((movie for movie in MOVIES if movie.slug == slug), None)
        if movie is not None:
            return _title_art(slug, movie.title, _caption(movie.year, movie.genres)).get(kind)
        return _series_art().get(kind) if slug == SERIES_SLUG else None
    if table == "catalog_people":
        name = next((name for name in demo_data.PEOPLE if slugify(name) == slug), None)
        return None if name is None or kind != "photo" else _photo_art(slug, name)
    found = next((item for item in SEASONS if item.number == season), None)
    if found is None:
        return None
    if table == "catalog_seasons":
        return _season_art(found.number, found.name, found.year) if kind == "poster" else None
    if episode is None or not 1 <= episode <= len(found.episodes) or kind != "still":
        return None
    return _still_art(found.number, episode, found.episodes[episode - 1].name)


async def _stale_entries(conn: Db) -> list[_Stale]:
    cursor = await conn.execute(
        _STALE_SQL,
        {
            "titles": title_slugs(),
            "series": SERIES_SLUG,
            "people": [slugify(name) for name in demo_data.PEOPLE],
            "prefix": f"{PREFIX}/",
        },
    )
    stale = []
    for table, row_id, slug, season, episode, kind, key in await cursor.fetchall():
        art = _demo_art(table, slug, season, episode, kind)
        # A key under catalog/demo/ that is not this row's own (moved there by hand) is not ours to change.
        if art is not None and art.key == key:
            stale.append(_Stale(table, row_id, kind, art))
    return stale


async def _made_from_original(storage: Storage, item: _Art) -> dict[str, Any]:
    """Store the variants of a demo image made from its stored original; its entry (key, sizes, size).

    From the stored original rather than a new drawing, so they match its pixels even if demo_art has
    changed since; an original that is gone or unreadable is drawn and stored again.
    """
    try:
        data = await storage.get_bytes(item.key)
        return await _with_variants(storage, item, data)
    except (ObjectNotFound, InvalidImage):
        return (await _store(storage, [item]))[item.key]


async def _upgrade(conn: Db, storage: Storage) -> int:
    """Give the demo's own image entries without variants their variants; how many entries changed."""
    stale = await _stale_entries(conn)
    if not stale:
        return 0
    arts = {item.art.key: item.art for item in stale}  # a key can be on two rows (a re-created person)
    made = dict(
        zip(
            arts,
            await asyncio.gather(*(_made_from_original(storage, art) for art in arts.values())),
            strict=True,
        )
    )
    upgraded = 0
    async with conn.transaction():  # all entries or none
        for item in stale:
            cursor = await conn.execute(
                _UPGRADE_SQL[item.table],
                {
                    "kind": item.kind,
                    "made": Jsonb(made[item.art.key]),
                    "id": item.row_id,
                    "key": item.art.key,
                },
            )
            upgraded += cursor.rowcount
    return upgraded
