"""Migrations: ordered, recorded, each in a transaction, idempotent, race-safe; RLS everywhere."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from shared.infra.migrations import MigrationError, discover, migrate


def ledger(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("select version from supabase_migrations.schema_migrations order by version")
        return [version for (version,) in rows]


async def test_applies_every_file_once_then_nothing(empty_database: str) -> None:
    expected = [m.version for m in discover()]
    assert await migrate(empty_database) == expected
    assert await migrate(empty_database) == []
    assert ledger(empty_database) == expected


async def test_concurrent_cold_starts_apply_each_migration_exactly_once(empty_database: str) -> None:
    results = await asyncio.gather(*(migrate(empty_database) for _ in range(4)))
    applied = sorted(version for result in results for version in result)
    assert applied == [m.version for m in discover()]
    assert ledger(empty_database) == applied


async def test_failed_file_rolls_back_and_is_not_recorded(empty_database: str, tmp_path: Path) -> None:
    (tmp_path / "20990101000000_good.sql").write_text("create table public.good (id int);")
    (tmp_path / "20990101000001_bad.sql").write_text(
        "create table public.half_done (id int);\nselect * from missing_table;"
    )
    with pytest.raises(MigrationError, match=r"20990101000001_bad\.sql"):
        await migrate(empty_database, tmp_path)
    assert ledger(empty_database) == ["20990101000000"]
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("select to_regclass('public.half_done')").fetchone() == (None,)


def test_misnamed_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "create_things.sql").write_text("select 1;")
    with pytest.raises(MigrationError, match=r"create_things\.sql"):
        discover(tmp_path)


def test_every_public_table_has_row_level_security(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        tables = conn.execute(
            "select c.relname, c.relrowsecurity from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = 'public' and c.relkind in ('r', 'p')"
        ).fetchall()
    assert tables, "the migrations create no public table at all"
    missing = [name for name, secured in tables if not secured]
    assert missing == [], f"tables without row level security: {missing}"


def test_rls_check_would_catch_an_unsecured_table(empty_database: str, tmp_path: Path) -> None:
    (tmp_path / "20990101000000_open.sql").write_text("create table public.open_table (id int);")
    asyncio.run(migrate(empty_database, tmp_path))
    with pytest.raises(AssertionError, match="open_table"):
        test_every_public_table_has_row_level_security(empty_database)


def test_anon_role_sees_no_rows_of_internal_tables(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = 'public' and c.relkind = 'r'"
            )
        ]
        for table in tables:
            with conn.transaction(force_rollback=True):
                conn.execute("set local role anon")
                try:
                    count = conn.execute(f'select count(*) from public."{table}"').fetchone()
                except psycopg.errors.InsufficientPrivilege:
                    continue
                assert count == (0,), table


async def test_applies_on_a_supabase_shaped_database_without_touching_its_auth(empty_database: str) -> None:
    # Supabase already has the auth schema, auth.uid() and the extensions schema: the bootstrap keeps them.
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("create schema auth; create schema extensions")
        conn.execute(
            "create function auth.uid() returns uuid language sql stable as"
            " $$ select '00000000-0000-0000-0000-00000000beef'::uuid $$"
        )
    await migrate(empty_database)
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("select auth.uid()::text").fetchone() == ("00000000-0000-0000-0000-00000000beef",)


def test_auth_shim_reads_postgrest_claims(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            ('{"sub": "4f9c3d8e-1111-4222-8333-944455556666", "role": "authenticated"}',),
        )
        assert conn.execute("select auth.uid()::text, auth.role()").fetchone() == (
            "4f9c3d8e-1111-4222-8333-944455556666",
            "authenticated",
        )
