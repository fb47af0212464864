"""`cinema seed`: the seed file applies atomically and can be re-run."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from shared.infra.migrations import migrate
from shared.infra.seeding import SEED_FILE, SeedError, seed


def test_project_seed_file_applies_twice(empty_database: str) -> None:
    asyncio.run(migrate(empty_database))
    asyncio.run(seed(empty_database, SEED_FILE))
    asyncio.run(seed(empty_database, SEED_FILE))


def test_seed_is_idempotent_and_atomic(empty_database: str, tmp_path: Path) -> None:
    good = tmp_path / "seed.sql"
    good.write_text(
        "create schema if not exists demo;\n"
        "create table if not exists demo.genres (slug text primary key);\n"
        "insert into demo.genres values ('drama'), ('comedy') on conflict do nothing;\n"
    )
    asyncio.run(seed(empty_database, good))
    asyncio.run(seed(empty_database, good))
    bad = tmp_path / "bad.sql"
    bad.write_text("insert into demo.genres values ('horror');\nselect * from no_such_table;\n")
    with pytest.raises(SeedError, match=r"bad\.sql"):
        asyncio.run(seed(empty_database, bad))
    with psycopg.connect(empty_database) as conn:
        rows = conn.execute("select slug from demo.genres order by slug").fetchall()
    assert rows == [("comedy",), ("drama",)]
