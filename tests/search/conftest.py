"""Search tests run on a database of their own: other tests' titles must not move the rankings here."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import create_database, drop_database
from tests.support.identity import client_for

SEARCH = "/api/v1/search"
AUTOCOMPLETE = "/api/v1/search/autocomplete"


@pytest.fixture(scope="module")
async def search_db(server_url: str) -> AsyncIterator[str]:
    """A fresh migrated database the app uses for this module (result cache off), dropped afterwards."""
    from shared.infra.loop_local import reset_all
    from shared.infra.migrations import migrate
    from shared.settings import get_settings

    url = create_database(server_url, prefix="cinema_search")
    await migrate(url)
    saved = {name: os.environ.get(name) for name in ("DATABASE_URL", "CATALOG_CACHE_SECONDS")}
    # The Redis result cache would answer a query from an earlier test; the cache test turns it back on.
    os.environ.update(DATABASE_URL=url, CATALOG_CACHE_SECONDS="0")
    get_settings.cache_clear()
    await reset_all()
    try:
        yield url
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()
        await reset_all()
        drop_database(server_url, url)


@pytest.fixture
async def sdb(search_db: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A direct autocommit connection to the module's search database, for arranging rows."""
    async with await psycopg.AsyncConnection.connect(
        search_db, autocommit=True, prepare_threshold=None
    ) as conn:
        yield conn


def search_client(**kwargs: Any) -> httpx.AsyncClient:
    """A client of the search group (api/search.py)."""
    from api.search import app

    return client_for(app, **kwargs)
