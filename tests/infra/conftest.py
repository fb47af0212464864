"""Fixtures for infrastructure tests: the Upstash REST bridge in front of the run's Redis server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.upstash_bridge import UpstashBridge


@pytest.fixture(scope="session")
def upstash_bridge_server(redis_url: str) -> Iterator[UpstashBridge]:
    """The bridge itself (for what the SDK sent: `received`, `commands()`), serving the whole session."""
    with UpstashBridge(redis_url) as bridge:
        yield bridge


@pytest.fixture(scope="session")
def upstash_bridge(upstash_bridge_server: UpstashBridge) -> tuple[str, str]:
    """(UPSTASH_REDIS_REST_URL, UPSTASH_REDIS_REST_TOKEN) of a REST endpoint backed by the real Redis."""
    return upstash_bridge_server.url, upstash_bridge_server.token
