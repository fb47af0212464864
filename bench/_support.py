"""What the HTTP benches share: the command line, scratch services (a database on a PostgreSQL server, a
directory, a Redis), the child server (its environment, port, readiness, uvicorn, round-trip counters),
timed requests interleaved in rounds, percentiles. Imported by the bench scripts (run from bench/)."""

import argparse
import asyncio
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from fastapi import APIRouter

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the bench scripts import the platform (shared, api, tests.support)


def bench_server_url(explicit: str | None) -> str:
    """Where to make the bench database: --server-url, else BENCH_DATABASE_URL, else the embedded server."""
    from shared.local.services import embedded_postgres_url

    return (
        explicit
        or os.environ.get("BENCH_DATABASE_URL")
        or embedded_postgres_url(REPO / ".data" / "test-services")
    )


def create_database(server_url: str) -> str:
    """A new empty database on the server; its URL."""
    import psycopg

    name = f"cinema_bench_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def drop_database(server_url: str, url: str) -> None:
    """Drop the bench database, whoever is still connected."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{urlsplit(url).path.lstrip("/")}" with (force)')


def server_env(*, database_url: str, redis_url: str, scratch: Path) -> dict[str, str]:
    """The bench server's environment: this one without pytest's variables, on the bench's own services."""
    return {
        **{key: value for key, value in os.environ.items() if not key.startswith("PYTEST")},
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DATA_DIR": str(scratch),
        "SIGNING_SECRET": secrets.token_urlsafe(48),
        "LOG_LEVEL": "WARNING",
    }


def free_port() -> int:
    """A local TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(base: str, process: subprocess.Popen[bytes], path: str) -> None:
    """Poll `path` until the child server answers; exit if it dies or never starts."""
    import httpx

    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(300):
            if process.poll() is not None:
                raise SystemExit("the bench server exited")
            try:
                await client.get(path)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise SystemExit("the bench server did not start")


# --- the command line -----------------------------------------------------------------------------------


def bench_parser(doc: str | None) -> argparse.ArgumentParser:
    """The bench's parser, the module docstring as its help."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_timing_options(parser: argparse.ArgumentParser, *, requests: int, counted: bool = False) -> None:
    """--requests (measured per kind) and --rounds, and (counted) --counted, the requests per kind whose
    round trips are counted."""
    parser.add_argument("--requests", type=int, default=requests, help="measured requests per kind")
    parser.add_argument("--rounds", type=int, default=10)
    if counted:
        parser.add_argument(
            "--counted", type=int, default=20, help="requests per kind whose round trips are counted"
        )


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """--server-url (where the bench database goes) and the hidden --serve PORT of the child server."""
    parser.add_argument("--server-url", help="PostgreSQL server to create the bench database on")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)


# --- the scratch services and the child server ----------------------------------------------------------


@dataclass(frozen=True)
class Scratch:
    """The bench's own services: a database on the PostgreSQL server, a directory, a Redis."""

    server_url: str
    url: str
    directory: Path
    redis_url: str

    def env(self, **extra: str) -> dict[str, str]:
        """The bench server's environment on these services, with `extra` on top."""
        return {
            **server_env(database_url=self.url, redis_url=self.redis_url, scratch=self.directory),
            **extra,
        }


@contextmanager
def scratch_services(
    explicit_server_url: str | None, *, keep_database: bool = False, remove_directory: bool = True
) -> Iterator[Scratch]:
    """A new database (see bench_server_url), a temporary directory and an embedded Redis in it (unless
    BENCH_REDIS_URL); afterwards the Redis is stopped, the database dropped (or kept: its URL is printed)
    and the directory removed."""
    from shared.local.services import embedded_redis_url, stop_embedded_redis

    server_url = bench_server_url(explicit_server_url)
    url = create_database(server_url)
    directory = Path(tempfile.mkdtemp(prefix="cinema-bench-"))
    redis_url = os.environ.get("BENCH_REDIS_URL") or embedded_redis_url(directory)
    try:
        yield Scratch(server_url=server_url, url=url, directory=directory, redis_url=redis_url)
    finally:
        if not os.environ.get("BENCH_REDIS_URL"):
            stop_embedded_redis(directory)
        if keep_database:
            print(f"kept: {url}")
        else:
            drop_database(server_url, url)
        if remove_directory:
            shutil.rmtree(directory, ignore_errors=True)


async def insert_user(conn: Any) -> tuple[uuid.UUID, str]:
    """A verified user named Bench with an address of its own (on an open connection): its id and email."""
    email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
    cursor = await conn.execute(
        "insert into public.users (email, email_verified_at, display_name)"
        " values (%s, now(), 'Bench') returning id",
        (email,),
    )
    row = await cursor.fetchone()
    assert row is not None
    return uuid.UUID(str(row[0])), email


def local_base(port: int) -> str:
    """The child server's base URL."""
    return f"http://127.0.0.1:{port}"


def adopt_env(env: dict[str, str]) -> None:
    """Use the server's environment (without Upstash: the bench's own Redis) in this process too, for the
    set-up that runs here with the server's settings."""
    env.pop("UPSTASH_REDIS_REST_URL", None)
    env.pop("UPSTASH_REDIS_REST_TOKEN", None)
    os.environ.update(env)
    from shared.settings import get_settings

    get_settings.cache_clear()


@contextmanager
def child_server(script: str, port: int, env: dict[str, str], ready_path: str) -> Iterator[str]:
    """`script --serve PORT` in a child process, answering on `ready_path`; its base URL. Stopped after."""
    process = subprocess.Popen([sys.executable, script, "--serve", str(port)], env=env, cwd=REPO)
    try:
        base = local_base(port)
        asyncio.run(wait_ready(base, process, ready_path))
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def run_server(app: Any, port: int) -> None:
    """Serve the app with uvicorn (in the child process): one worker, no access log."""
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- round-trip counters (in the child server) ----------------------------------------------------------

COUNTERS = "/api/v1/bench/counters"
COUNTS = {"redis": 0, "postgres": 0}


def counting(name: str, send: Any) -> Any:
    """The async method `send`, counting each call in COUNTS[name]."""

    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        COUNTS[name] += 1
        return await send(self, *args, **kwargs)

    return counted


def count_redis() -> None:
    """Count the Redis commands of this process: each backend sends them through its own _execute."""
    from shared.infra.redis import RedisPyStore, UpstashStore

    for store in (RedisPyStore, UpstashStore):
        store._execute = counting("redis", store._execute)  # type: ignore[method-assign]


def bench_router(*, counters: bool = False) -> "APIRouter":
    """A router for the bench's own routes under /api/v1/bench; with GET /counters (COUNTS, touching neither
    Redis nor PostgreSQL) when asked."""
    from fastapi import APIRouter

    bench = APIRouter(prefix="/api/v1/bench")
    if counters:

        @bench.get("/counters")
        async def read_counts() -> dict[str, int]:
            return dict(COUNTS)

    return bench


# --- the client side ------------------------------------------------------------------------------------


def expect_status(kind: str, response: Any, status: int = 200) -> None:
    """Stop the bench on an unexpected answer."""
    if response.status_code != status:
        raise SystemExit(f"{kind}: HTTP {response.status_code} {response.text[:400]}")


async def read_counters(client: Any) -> dict[str, int]:
    """The child server's COUNTS now."""
    response = await client.get(COUNTERS)
    expect_status("counters", response)
    return dict(response.json())


async def send_timed(client: Any, request: Any) -> tuple[float, Any]:
    """Send a built request: the milliseconds it took, and the response."""
    started = time.perf_counter()
    response = await client.send(request)
    return (time.perf_counter() - started) * 1000, response


async def interleaved(
    kinds: Sequence[str], timed: Callable[[str], Awaitable[float]], requests: int, rounds: int
) -> dict[str, list[float]]:
    """Ten warm-up requests of each kind, then `requests` per kind timed, kinds interleaved in rounds so
    machine noise hits them alike."""
    for kind in kinds:
        for _ in range(10):
            await timed(kind)
    timings: dict[str, list[float]] = {kind: [] for kind in kinds}
    per_round = max(1, requests // rounds)
    for _ in range(rounds):
        for kind in kinds:
            for _ in range(per_round):
                timings[kind].append(await timed(kind))
    return timings


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (fraction 0..1) of the values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


def p50_p95(values: list[float]) -> tuple[float, float]:
    """The median and the 95th percentile."""
    return statistics.median(values), percentile(values, 0.95)
