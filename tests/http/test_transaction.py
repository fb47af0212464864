"""The entry point owns the transaction: committed before the response, rolled back on error."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import APIRouter

from shared.errors import Conflict
from shared.http.app import create_app
from shared.infra.db import Tx, after_commit, write_despite_rollback
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


# Writes kept despite the rollback, and actions run after the commit.


def keep(name: str) -> Any:
    """A kept write that stores `name`."""

    async def write(conn: Any) -> None:
        await conn.execute("insert into tx_scratch.notes (name) values (%s)", (name,))

    return write


async def broken_write(conn: Any) -> None:
    await conn.execute("select 1 / 0")


@router.post("/kept/fail/{name}")
async def keep_then_fail(name: str, conn: Tx) -> None:
    await conn.execute("insert into tx_scratch.notes (name) values (%s)", (name,))
    await write_despite_rollback(broken_write)  # fails on its own: neither the error nor the others change
    # From a task the endpoint starts: it runs in a copy of the context and must join the same request.
    await asyncio.create_task(write_despite_rollback(keep(f"{name}-kept")))
    raise Conflict("Refused after writing: only the kept write remains.")


@router.post("/kept/ok/{name}")
async def keep_and_succeed(name: str, conn: Tx) -> dict[str, str]:
    await conn.execute("insert into tx_scratch.notes (name) values (%s)", (name,))

    async def copy(tx: Any) -> None:
        # Sees the request's uncommitted row only when it runs in the request's own transaction.
        await tx.execute(
            "insert into tx_scratch.notes (name)"
            " select name || '-kept' from tx_scratch.notes where name = %s",
            (name,),
        )

    await write_despite_rollback(copy)
    return {"name": name}


ran: set[str] = set()


def mark(name: str) -> Any:
    """An after-commit action that notes it ran."""

    async def action() -> None:
        ran.add(name)

    return action


async def failing_action() -> None:
    raise RuntimeError("storage is down")


@router.post("/after/ok/{name}")
async def act_after_commit(name: str, conn: Tx) -> dict[str, str]:
    await conn.execute("insert into tx_scratch.notes (name) values (%s)", (name,))
    await after_commit(failing_action)  # logged, not raised: the change is saved
    await after_commit(mark(name))
    assert name not in ran  # not before the commit
    return {"name": name}


@router.post("/after/fail/{name}")
async def act_then_fail(name: str, conn: Tx) -> None:
    await conn.execute("insert into tx_scratch.notes (name) values (%s)", (name,))
    await after_commit(mark(name))
    raise Conflict("Refused after writing.")


@router.post("/after/deferred/{name}")
async def act_then_fail_at_commit(name: str, conn: Tx) -> None:
    await conn.execute("insert into tx_scratch.deferred (name) values (%s), (%s)", (name, name))
    await after_commit(mark(name))


async def test_a_kept_write_survives_the_rollback(client: httpx.AsyncClient, database_url: str) -> None:
    name = uuid.uuid4().hex
    response = await client.post(f"/api/v1/txprobe/kept/fail/{name}")
    assert response.status_code == 409, response.text  # the failing kept write did not mask the error
    assert not stored(database_url, name)
    assert stored(database_url, f"{name}-kept")


async def test_a_kept_write_commits_with_a_successful_request(
    client: httpx.AsyncClient, database_url: str
) -> None:
    name = uuid.uuid4().hex
    assert (await client.post(f"/api/v1/txprobe/kept/ok/{name}")).status_code == 200
    assert stored(database_url, name)
    assert stored(database_url, f"{name}-kept")  # written in the request's transaction


async def test_after_commit_runs_only_when_the_transaction_commits(
    client: httpx.AsyncClient, database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "create table if not exists tx_scratch.deferred"
            " (name text, constraint one_name unique (name) deferrable initially deferred)"
        )
    committed, refused, failed_commit = (uuid.uuid4().hex for _ in range(3))
    assert (await client.post(f"/api/v1/txprobe/after/ok/{committed}")).status_code == 200
    assert committed in ran and stored(database_url, committed)
    assert (await client.post(f"/api/v1/txprobe/after/fail/{refused}")).status_code == 409
    assert refused not in ran
    assert (await client.post(f"/api/v1/txprobe/after/deferred/{failed_commit}")).status_code == 409
    assert failed_commit not in ran


async def test_outside_a_request_both_run_at_once(client: httpx.AsyncClient, database_url: str) -> None:
    # After a request in this same task, nothing of its transaction is left to join.
    assert (await client.post(f"/api/v1/txprobe/ok/{uuid.uuid4().hex}")).status_code == 200
    name = uuid.uuid4().hex
    await write_despite_rollback(keep(name))
    assert stored(database_url, name)
    await after_commit(mark(name))
    assert name in ran


async def test_failed_logins_never_need_a_second_connection(database_url: str, settings_env: Any) -> None:
    from shared.accounts.service import email_key
    from tests.support.identity import auth_client, random_ip, sign_up_verified

    emails = [(await sign_up_verified(database_url))[0] for _ in range(2)]
    settings_env(DB_POOL_MAX="2")
    await reset_all()
    try:

        async def wrong_password(email: str) -> int:
            async with auth_client(client_ip=random_ip()) as client:
                response = await client.post(
                    "/api/v1/auth/login", json={"email": email, "password": "not the password 1"}
                )
            return response.status_code

        # Six at once on two connections: each holds its request's connection to record its failure.
        statuses = await asyncio.gather(*(wrong_password(email) for email in emails * 3))
    finally:
        settings_env()
        await reset_all()
    assert statuses == [401] * 6
    with psycopg.connect(database_url) as conn:
        (count,) = conn.execute(
            "select count(*) from public.audit_log"
            " where event = 'login_failed' and details->>'email_key' = any(%s)",
            ([email_key(email) for email in emails],),
        ).fetchone() or (0,)
    assert count == 6
