"""An older demo catalog (image entries without `sizes`) is brought up to date by the next `cinema seed`:
the demo's own entries get their WebP variants; an image a content manager replaced is never touched."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
from PIL import Image
from psycopg.types.json import Jsonb

from shared.catalog import demo
from shared.catalog.demo_data import MOVIES, PEOPLE, SERIES_SLUG, slugify
from shared.images.variants import variant_key
from shared.infra.loop_local import reset_all
from shared.infra.migrations import migrate
from shared.infra.seeding import seed_demo_catalog
from shared.infra.storage import Storage, get_storage
from shared.settings import REPO_ROOT, get_settings
from tests.conftest import create_database, drop_database

# What each kind's demo artwork gets (the drawn sizes are fixed by demo_art): {size name: (width, height)}.
EXPECTED = {
    "poster": {"w185": (185, 278), "w342": (342, 513), "w500": (500, 750)},  # 600 x 900
    "backdrop": {"w780": (780, 439)},  # 1280 x 720
    "still": {"w300": (300, 169), "w780": (780, 439)},  # 960 x 540
    "photo": {"w185": (185, 278), "w342": (342, 513)},  # 400 x 600
}
ORIGINAL_SIZE = {"poster": (600, 900), "backdrop": (1280, 720), "still": (960, 540), "photo": (400, 600)}

# (table, where clause, parameter, kind) of the entries made old, and of the ones a manager replaced.
STRIPPED = [
    ("catalog_titles", "slug = %s", MOVIES[0].slug, "poster"),
    ("catalog_titles", "slug = %s", MOVIES[0].slug, "backdrop"),
    ("catalog_titles", "slug = %s", SERIES_SLUG, "backdrop"),
    ("catalog_seasons", "number = 2 and title_id = (select id from public.catalog_titles where slug = %s)",
     SERIES_SLUG, "poster"),
    ("catalog_episodes", """number = 3 and season_id = (select s.id from public.catalog_seasons s
       join public.catalog_titles t on t.id = s.title_id where t.slug = %s and s.number = 1)""",
     SERIES_SLUG, "still"),
    ("catalog_people", "slug = %s", slugify(PEOPLE[0]), "photo"),
]  # fmt: skip
MANAGER_KEY = "catalog/images/" + "a" * 32 + ".jpg"
REPLACED = [
    # A manager's upload (not under catalog/demo/), without variants of its own.
    ("catalog_titles", "slug = %s", MOVIES[1].slug, "poster",
     {"key": MANAGER_KEY, "width": 500, "height": 750}),
    # Another demo image picked by hand: under catalog/demo/, but not this title's own key.
    ("catalog_titles", "slug = %s", MOVIES[2].slug, "poster",
     {"key": f"catalog/demo/{MOVIES[3].slug}/poster.jpg"}),
    # An external image.
    ("catalog_people", "slug = %s", slugify(PEOPLE[1]), "photo", {"url": "https://images.example/p.jpg"}),
]  # fmt: skip


@pytest.fixture(scope="module")
def seeded(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database with the demo catalog, and storage of its own (objects here get deleted)."""
    url = create_database(server_url, prefix="cinema_demo_upgrade")
    asyncio.run(migrate(url))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", url)
        patch.setenv("DATA_DIR", str(tmp_path_factory.mktemp("demo-upgrade-data")))
        get_settings.cache_clear()
        assert asyncio.run(seed_demo_catalog(url)).startswith("demo catalog: 37 title(s) created")
        yield url
    get_settings.cache_clear()
    drop_database(server_url, url)


@pytest.fixture
async def storage(seeded: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Storage]:
    monkeypatch.setenv("DATABASE_URL", seeded)
    get_settings.cache_clear()
    await reset_all()
    yield await get_storage()
    await reset_all()


async def connect(url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


async def entry(conn: psycopg.AsyncConnection[Any], table: str, where: str, param: str, kind: str) -> Any:
    cursor = await conn.execute(f"select images -> %s from public.{table} where {where}", (kind, param))
    rows = await cursor.fetchall()
    assert len(rows) == 1, (table, param)
    return rows[0][0]


async def set_entry(conn: psycopg.AsyncConnection[Any], table: str, where: str, param: str, kind: str,
                    value: dict[str, Any]) -> None:  # fmt: skip
    await conn.execute(
        f"update public.{table} set images = jsonb_set(images, array[%s], %s) where {where}",
        (kind, Jsonb(value), param),
    )


async def all_images(conn: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
    snapshot = {}
    for table in ("catalog_titles", "catalog_seasons", "catalog_episodes", "catalog_people"):
        cursor = await conn.execute(f"select id::text, images from public.{table}")
        snapshot |= {f"{table}:{row_id}": images for row_id, images in await cursor.fetchall()}
    return snapshot


async def make_old(conn: psycopg.AsyncConnection[Any], storage: Storage) -> None:
    """As seeded before variants existed: no `sizes` on the entries, no variant objects in storage."""
    for table, where, param, kind in STRIPPED:
        old = await entry(conn, table, where, param, kind)
        for key in old["sizes"].values():
            await storage.delete(key)
        await set_entry(conn, table, where, param, kind, {k: v for k, v in old.items() if k != "sizes"})


def without_size(entry: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in entry.items() if name not in ("sizes", "width", "height")}


async def check_upgraded(conn: psycopg.AsyncConnection[Any], storage: Storage) -> None:
    for table, where, param, kind in STRIPPED:
        found = await entry(conn, table, where, param, kind)
        assert found["key"].startswith("catalog/demo/") and found["key"].endswith(".jpg"), found
        assert (found["width"], found["height"]) == ORIGINAL_SIZE[kind]
        assert found["sizes"] == {name: variant_key(found["key"], name) for name in EXPECTED[kind]}
        for name, size in EXPECTED[kind].items():
            image = Image.open(io.BytesIO(await storage.get_bytes(found["sizes"][name])))
            assert (image.format, image.size) == ("WEBP", size), (found["key"], name)


async def test_an_old_demo_catalog_is_upgraded_once_and_replaced_images_are_left_alone(
    seeded: str, storage: Storage
) -> None:
    async with await connect(seeded) as conn:
        await make_old(conn, storage)
        # An old entry without its width and height gets them; a field of its own stays.
        table, where, param, kind = STRIPPED[0]
        await set_entry(conn, table, where, param, kind,
                        {"key": f"catalog/demo/{MOVIES[0].slug}/poster.jpg", "alt": "kept"})  # fmt: skip
        for table, where, param, kind, value in REPLACED:
            await set_entry(conn, table, where, param, kind, value)
        before = await all_images(conn)

        summary = await seed_demo_catalog(seeded)
        assert (
            summary == f"demo catalog already present; {len(STRIPPED)} older image(s) given resized variants"
        )

        storage = await get_storage()  # seed_demo_catalog reset this loop's storage
        await check_upgraded(conn, storage)
        assert (await entry(conn, *STRIPPED[0]))["alt"] == "kept"
        for table, where, param, kind, value in REPLACED:
            assert await entry(conn, table, where, param, kind) == value
        assert not await storage.head(variant_key(MANAGER_KEY, "w185"))
        # Nothing else changed: as many entries as were stripped differ, each only in its sizes and size.
        after = await all_images(conn)
        assert after.keys() == before.keys()
        changed = [
            (before[row][kind], after[row][kind])
            for row in after
            for kind in after[row]
            if after[row][kind] != before[row].get(kind)
        ]
        assert len(changed) == len(STRIPPED)
        for old, new in changed:
            assert "sizes" not in old and without_size(new) == without_size(old)

        # A third run finds nothing to do and makes no images: a variant deleted now stays deleted.
        gone = (await entry(conn, *STRIPPED[1]))["sizes"]["w780"]
        await storage.delete(gone)
        again = await demo.load_demo_catalog(conn, storage=storage)
        assert again == demo.DemoResult(created=0, existing=37, images=0, upgraded=0)
        assert await storage.head(gone) is None
        assert await all_images(conn) == after


async def test_two_seeders_upgrading_together_upgrade_each_entry_once(seeded: str, storage: Storage) -> None:
    async with await connect(seeded) as first, await connect(seeded) as second:
        await make_old(first, storage)
        results = await asyncio.gather(
            demo.load_demo_catalog(first, storage=storage), demo.load_demo_catalog(second, storage=storage)
        )
        assert sum(result.upgraded for result in results) == len(STRIPPED)
        assert all(result.created == 0 for result in results)
        await check_upgraded(first, storage)


def test_an_up_to_date_catalog_costs_two_queries_and_no_pillow(seeded: str) -> None:
    # In a fresh interpreter: this test process has imported Pillow already. Queries are counted at
    # psycopg's cursor (conn.execute goes through one): one for the titles there, one for entries to upgrade.
    script = """
import asyncio, json, sys
import psycopg
from shared.catalog.demo import load_demo_catalog
from shared.infra.storage import get_storage

queries = []
def counting(method):
    async def counted(self, query, *args, **kwargs):
        queries.append(query)
        return await method(self, query, *args, **kwargs)
    return counted
psycopg.AsyncCursor.execute = counting(psycopg.AsyncCursor.execute)
psycopg.AsyncCursor.executemany = counting(psycopg.AsyncCursor.executemany)

async def main():
    async with await psycopg.AsyncConnection.connect(sys.argv[1], autocommit=True) as conn:
        result = await load_demo_catalog(conn, storage=await get_storage())
    print(json.dumps({"upgraded": result.upgraded, "created": result.created, "queries": len(queries),
                      "pil": "PIL" in sys.modules}))

asyncio.run(main())
"""
    env = {**os.environ, "DATABASE_URL": seeded, "DATA_DIR": get_settings().data_dir.as_posix()}
    done = subprocess.run(
        [sys.executable, "-c", script, seeded],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "upgraded": 0,
        "created": 0,
        "queries": 2,
        "pil": False,
    }


async def test_an_original_gone_from_storage_is_drawn_again(seeded: str, storage: Storage) -> None:
    async with await connect(seeded) as conn:
        await make_old(conn, storage)
        lost = (await entry(conn, *STRIPPED[4]))["key"]  # an episode still
        await storage.delete(lost)
        result = await demo.load_demo_catalog(conn, storage=storage)
        assert result.upgraded == len(STRIPPED)
        await check_upgraded(conn, storage)
        image = Image.open(io.BytesIO(await storage.get_bytes(lost)))
        assert (image.format, image.size) == ("JPEG", ORIGINAL_SIZE["still"])
