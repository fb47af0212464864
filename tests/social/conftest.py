"""Fixtures of the social login tests: the fake Google/GitHub server and settings pointing at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from shared.infra.loop_local import reset_all
from tests.support.oauth_server import OAuthServer


@pytest.fixture(scope="module")
def oauth_server() -> Iterator[OAuthServer]:
    """The fake providers, one per test module."""
    with OAuthServer(redirect_base="http://testserver") as server:
        yield server


@pytest.fixture
async def providers(
    oauth_server: OAuthServer, settings_env: Callable[..., None]
) -> AsyncIterator[OAuthServer]:
    """Both providers configured against the fake server; the public site is http://testserver."""
    oauth_server.reset()
    settings_env(PUBLIC_BASE_URL="http://testserver", **oauth_server.env())
    await reset_all()
    yield oauth_server
    oauth_server.reset()
