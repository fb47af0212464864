"""What the HTTP benches share: a scratch database on a PostgreSQL server, a child server's port and
readiness, the environment it runs with, percentiles. Imported by the bench scripts (run from bench/)."""

import asyncio
import os
import secrets
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent


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


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (fraction 0..1) of the values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]
