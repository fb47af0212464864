"""The entry point owns the transaction: committed before the response, rolled back on error."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest
from fastapi import APIRouter

from shared.errors import Conflict
from shared.http.app import create_app
from shared.infra.db import Tx
from shared.infra.loop_local import reset_all

router = APIRouter(prefix="/api/v1/txprobe")


@router.post("/ok/{name}")
async def insert_ok(name: str, conn: Tx) -> dict[str, str]:
    await conn.execute("insert into tx_scratch.notes (name) values (%s)", (name,))
    return {"name": name}


@router.post("/fail/{name}")
async def insert_then_fail(name: str, conn: Tx) -> None:
    await conn.execute("insert into tx_scratch.notes (name) values (%s)", (name,))
    raise Conflict("Refused after writing: nothing must remain.")


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    # A schema outside public: scratch tables for tests are not part of the exposed API.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("create schema if not exists tx_scratch")
        conn.execute("create table if not exists tx_scratch.notes (name text primary key)")
    app = create_app(router, group="txprobe")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


def stored(database_url: str, name: str) -> bool:
    with psycopg.connect(database_url) as conn:
        return conn.execute("select 1 from tx_scratch.notes where name = %s", (name,)).fetchone() is not None


async def test_commit_happens_before_the_response(client: httpx.AsyncClient, database_url: str) -> None:
    name = uuid.uuid4().hex
    assert (await client.post(f"/api/v1/txprobe/ok/{name}")).status_code == 200
    assert stored(database_url, name)


async def test_error_rolls_back(client: httpx.AsyncClient, database_url: str) -> None:
    name = uuid.uuid4().hex
    response = await client.post(f"/api/v1/txprobe/fail/{name}")
    assert response.status_code == 409
    assert not stored(database_url, name)


async def test_database_down_is_a_503_problem(client: httpx.AsyncClient, settings_env, tmp_path) -> None:
    settings_env(DATABASE_URL=f"postgresql://postgres@/postgres?host={tmp_path}", DB_CONNECT_TIMEOUT="1")
    await reset_all()
    try:
        response = await client.post(f"/api/v1/txprobe/ok/{uuid.uuid4().hex}")
        assert response.status_code == 503
        assert response.json()["code"] == "service_unavailable"
    finally:
        settings_env()
        await reset_all()


@router.post("/deferred/{name}")
async def insert_deferred_duplicate(name: str, conn: Tx) -> dict[str, str]:
    # Both rows pass until COMMIT, where the deferred unique constraint fails.
    await conn.execute("insert into tx_scratch.deferred (name) values (%s), (%s)", (name, name))
    return {"name": name}


@router.get("/slow")
async def slow_query(conn: Tx) -> None:
    await conn.execute("select pg_sleep(5)")


async def test_a_failed_commit_is_never_reported_as_success(
    client: httpx.AsyncClient, database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "create table if not exists tx_scratch.deferred"
            " (name text, constraint one_name unique (name) deferrable initially deferred)"
        )
    name = uuid.uuid4().hex
    response = await client.post(f"/api/v1/txprobe/deferred/{name}")
    assert response.status_code == 409, response.text  # a commit after the response would have said 200
    assert response.json()["code"] == "conflict"
    with psycopg.connect(database_url) as conn:
        assert conn.execute(
            "select count(*) from tx_scratch.deferred where name = %s", (name,)
        ).fetchone() == (0,)


async def test_statement_timeout_is_applied_per_transaction(client: httpx.AsyncClient, settings_env) -> None:
    settings_env(DB_STATEMENT_TIMEOUT_MS="300")
    try:
        response = await client.get("/api/v1/txprobe/slow")
        assert response.status_code == 503  # cancelled by the server's limit, not a hung request
        assert response.json()["code"] == "database_timeout"
    finally:
        settings_env()
