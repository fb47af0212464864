"""Test harness: real PostgreSQL and Redis (embedded, or DATABASE_URL / REDIS_URL), a fresh database
per run built by the real migrations, and settings pointed at them before any app is imported."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.support.cloudinary_server import CloudinaryServer

REPO = Path(__file__).resolve().parent.parent
# Embedded servers for tests live apart from `make dev` data and are reused between runs (fast start).
SERVICES_DIR = REPO / ".data" / "test-services"
_state: dict[str, str] = {}


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def create_database(server_url: str, prefix: str = "cinema_test") -> str:
    """Create an empty database on the server; return its URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    return with_database(server_url, name)


def drop_database(server_url: str, url: str) -> None:
    """Drop a database made by create_database, whoever is still connected."""
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def pytest_configure(config: pytest.Config) -> None:
    """Start or find the services and point the settings at a fresh, migrated database."""
    from shared.infra.migrations import migrate
    from shared.local.services import embedded_postgres_url, embedded_redis_url

    server_url = os.environ.get("DATABASE_URL") or embedded_postgres_url(SERVICES_DIR)
    redis_url = os.environ.get("REDIS_URL") or embedded_redis_url(SERVICES_DIR)
    database_url = create_database(server_url)
    asyncio.run(migrate(database_url))
    data_dir = Path(tempfile.mkdtemp(prefix="cinema-test-data-"))
    _state.update(
        server_url=server_url, database_url=database_url, redis_url=redis_url, data_dir=str(data_dir)
    )
    os.environ.update(
        APP_ENV="test",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DATA_DIR=str(data_dir),
        SIGNING_SECRET=secrets.token_urlsafe(48),
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("UPSTASH_REDIS_REST_URL", None)
    os.environ.pop("UPSTASH_REDIS_REST_TOKEN", None)
    from shared.settings import get_settings

    get_settings.cache_clear()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Drop the run's database and scratch data."""
    if _state:
        drop_database(_state["server_url"], _state["database_url"])
        shutil.rmtree(_state["data_dir"], ignore_errors=True)


@pytest.fixture(scope="session")
def server_url() -> str:
    """URL of the PostgreSQL server (its maintenance database) the tests run on."""
    return _state["server_url"]


@pytest.fixture(scope="session")
def database_url() -> str:
    """URL of this run's migrated database."""
    return _state["database_url"]


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the Redis server the tests run on."""
    return _state["redis_url"]


@pytest.fixture
def empty_database(server_url: str) -> Iterator[str]:
    """A brand-new database with nothing applied, dropped afterwards."""
    url = create_database(server_url, prefix="cinema_scratch")
    yield url
    drop_database(server_url, url)


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Change settings for one test: set variables, clear the cached settings, restore afterwards."""
    from shared.settings import get_settings

    def apply(**variables: str | None) -> None:
        for key, value in variables.items():
            if value is None:
                monkeypatch.delenv(key, raising=False)
            else:
                monkeypatch.setenv(key, value)
        get_settings.cache_clear()

    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """boto3 pointed at nothing real: moto answers, nothing leaves 127.0.0.1."""
    from tests.support.aws import use_fake_aws

    use_fake_aws(monkeypatch, tmp_path)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """An S3 endpoint on 127.0.0.1 (moto's server), for the whole run; tests make buckets of their own."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    """A pool on this run's database with the platform's connection options, one per test module."""
    from tests.support.postgres import open_test_pool

    opened = await open_test_pool(database_url)
    yield opened
    await opened.close()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[psycopg.AsyncConnection]:
    """A direct connection to this run's database (autocommit) for arranging and checking state."""
    async with await psycopg.AsyncConnection.connect(
        database_url, autocommit=True, prepare_threshold=None
    ) as conn:
        yield conn


@pytest.fixture(scope="session")
def cloudinary_server() -> Iterator[CloudinaryServer]:
    """The local Cloudinary stand-in, for the whole run."""
    with CloudinaryServer() as server:
        yield server


@pytest.fixture
def cloudinary_env(
    settings_env: Callable[..., None], cloudinary_server: CloudinaryServer
) -> CloudinaryServer:
    """IMAGES_BACKEND=cloudinary against the stand-in (no loop-local client depends on these settings)."""
    settings_env(
        IMAGES_BACKEND="cloudinary",
        CLOUDINARY_URL=cloudinary_server.cloudinary_url,
        CLOUDINARY_UPLOAD_PREFIX=cloudinary_server.url,
    )
    return cloudinary_server
