"""The demo catalog of `make dev`: `cinema seed` loads it once into a fresh database, with people,
taxonomy, a two-season series and generated artwork that really is in storage."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from PIL import Image

from shared.catalog.demo_data import MOVIES, PEOPLE, SERIES_SLUG
from shared.cli import main
from shared.infra.migrations import migrate
from shared.infra.storage import get_storage
from shared.settings import get_settings
from tests.conftest import create_database, drop_database

TITLES = len(MOVIES) + 1


@pytest.fixture(scope="module")
def demo_db(server_url: str) -> Iterator[str]:
    """A fresh migrated database on which `cinema seed` has run once (DATABASE_URL points at it)."""
    url = create_database(server_url, prefix="cinema_demo")
    asyncio.run(migrate(url))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", url)
        get_settings.cache_clear()
        started = time.perf_counter()
        assert main(["seed"]) == 0
        print(f"demo catalog seeded in {time.perf_counter() - started:.1f}s")
        yield url
    get_settings.cache_clear()
    drop_database(server_url, url)


@pytest.fixture
def on_demo_db(demo_db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", demo_db)
    get_settings.cache_clear()
    return demo_db


def rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def count(url: str, table: str) -> int:
    return int(rows(url, f"select count(*) from public.{table}")[0][0])


def snapshot(url: str) -> dict[str, int]:
    tables = ("catalog_titles", "catalog_people", "catalog_credits", "catalog_terms", "catalog_title_terms",
              "catalog_seasons", "catalog_episodes")  # fmt: skip
    return {table: count(url, table) for table in tables}


def test_seeding_twice_creates_the_catalog_once(on_demo_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(on_demo_db)
    assert before["catalog_titles"] == TITLES == 37
    assert before["catalog_people"] == len(PEOPLE) == 60
    assert before["catalog_seasons"] == 2 and before["catalog_episodes"] == 12
    capsys.readouterr()
    assert main(["seed"]) == 0
    assert "demo catalog already present" in capsys.readouterr().out
    assert snapshot(on_demo_db) == before


def test_the_catalog_is_varied_enough_to_browse(on_demo_db: str) -> None:
    (genres,) = rows(on_demo_db, "select count(*) from public.catalog_terms where kind = 'genre'")[0]
    (categories,) = rows(on_demo_db, "select count(*) from public.catalog_terms where kind = 'category'")[0]
    assert genres >= 10 and categories >= 5
    titles = rows(
        on_demo_db,
        """select kind, rating, maturity_level, release_year, original_language, countries, popularity,
                  status, synopsis_short, synopsis_long
           from public.catalog_titles""",
    )
    assert {row[1] for row in titles if row[0] == "movie"} == {"G", "PG", "PG-13", "R", "NC-17"}
    assert {"all", "7+", "13+", "16+", "18+"} <= {row[2] for row in titles}
    assert sum(row[2] == "all" for row in titles) >= 4  # something for a kids profile
    assert len({row[3] // 10 for row in titles}) >= 6  # release years spread over decades
    assert len({row[4] for row in titles}) >= 6 and len({row[5][0] for row in titles}) >= 8
    assert len({row[6] for row in titles}) == TITLES and all(row[6] > 0 for row in titles)
    assert all(row[7] == "published" and row[8] and len(row[9]) > len(row[8]) for row in titles)
    # Every title has genres; every movie a director, a writer and cast with characters; everyone works.
    untagged = rows(
        on_demo_db,
        """select t.slug from public.catalog_titles t where not exists
             (select 1 from public.catalog_title_terms tt join public.catalog_terms g on g.id = tt.term_id
              where tt.title_id = t.id and g.kind = 'genre')""",
    )
    assert untagged == []
    shapes = rows(
        on_demo_db,
        """select t.slug,
                  count(*) filter (where c.job = 'director'), count(*) filter (where c.job = 'writer'),
                  count(*) filter (where c.role = 'cast' and c.character is not null)
           from public.catalog_titles t join public.catalog_credits c on c.title_id = t.id group by t.slug""",
    )
    assert len(shapes) == TITLES
    assert all(directors == 1 and writers >= 1 and cast >= 4 for _, directors, writers, cast in shapes)
    idle = rows(
        on_demo_db,
        """select p.name from public.catalog_people p
           where not exists (select 1 from public.catalog_credits c where c.person_id = p.id)""",
    )
    assert idle == []


def test_the_series_has_two_seasons_of_six_episodes(on_demo_db: str) -> None:
    ((kind, rating, maturity),) = rows(
        on_demo_db,
        "select kind, rating, maturity_level from public.catalog_titles where slug = %s",
        SERIES_SLUG,
    )
    assert (kind, rating, maturity) == ("series", "TV-14", "13+")
    seasons = rows(
        on_demo_db,
        """select s.number, array_agg(e.number order by e.number), bool_and(e.title_id = s.title_id)
           from public.catalog_seasons s join public.catalog_titles t on t.id = s.title_id
           join public.catalog_episodes e on e.season_id = s.id
           where t.slug = %s group by s.number order by s.number""",
        SERIES_SLUG,
    )
    assert seasons == [(1, [1, 2, 3, 4, 5, 6], True), (2, [1, 2, 3, 4, 5, 6], True)]


def _check_image(entry: dict[str, Any], ratio: tuple[int, int]) -> None:
    async def read() -> bytes:
        return await (await get_storage()).get_bytes(entry["key"])

    image = Image.open(io.BytesIO(asyncio.run(read())))
    assert image.format == "JPEG"
    assert image.size == (entry["width"], entry["height"])
    assert image.size[0] * ratio[1] == image.size[1] * ratio[0], (entry, image.size)


def test_images_are_in_storage_with_the_right_aspect(on_demo_db: str) -> None:
    titles = rows(on_demo_db, "select slug, images from public.catalog_titles")
    for slug, images in titles:
        assert images["poster"]["key"] == f"catalog/demo/{slug}/poster.jpg"
        _check_image(images["poster"], (2, 3))
        _check_image(images["backdrop"], (16, 9))
    stills = rows(on_demo_db, "select images from public.catalog_episodes")
    assert len(stills) == 12
    for (images,) in stills:
        _check_image(images["still"], (16, 9))
    for (images,) in rows(on_demo_db, "select images from public.catalog_seasons"):
        _check_image(images["poster"], (2, 3))
    photos = rows(on_demo_db, "select images from public.catalog_people")
    assert all("photo" in images for (images,) in photos)
    _check_image(photos[0][0]["photo"], (2, 3))


def test_artwork_is_deterministic_per_title() -> None:
    from shared.catalog import demo_art

    first = demo_art.poster("Some Title", "2001 · Drama", seed="some-title")
    assert demo_art.poster("Some Title", "2001 · Drama", seed="some-title") == first
    assert demo_art.poster("Some Title", "2001 · Drama", seed="other-title") != first


def test_a_removed_title_comes_back_but_a_soft_deleted_one_does_not(
    on_demo_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    hard, soft = MOVIES[3].slug, MOVIES[4].slug
    with psycopg.connect(on_demo_db) as conn:
        conn.execute("delete from public.catalog_titles where slug = %s", (hard,))
        conn.execute("update public.catalog_titles set deleted_at = now() where slug = %s", (soft,))
    capsys.readouterr()
    assert main(["seed"]) == 0
    assert "1 title(s) created" in capsys.readouterr().out
    restored = rows(on_demo_db, "select deleted_at is null from public.catalog_titles where slug in (%s, %s)",
                    hard, soft)  # fmt: skip
    assert sorted(restored) == [(False,), (True,)]
    credits = rows(
        on_demo_db,
        """select count(*) from public.catalog_credits c join public.catalog_titles t on t.id = c.title_id
           where t.slug = %s""",
        hard,
    )
    assert credits[0][0] >= 6
    assert count(on_demo_db, "catalog_people") == len(PEOPLE)  # people were reused, not duplicated


def test_seed_without_the_demo_catalog(empty_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    asyncio.run(migrate(empty_database))
    monkeypatch.setenv("DATABASE_URL", empty_database)
    get_settings.cache_clear()
    assert main(["seed", "--no-demo-catalog"]) == 0
    assert count(empty_database, "catalog_titles") == 0
