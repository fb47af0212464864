"""Delivery test helpers: a subscriber playing a copy of the session's real transcoded asset, started
through the real streaming API, and clients of the streaming app and of the dev server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from tests.support.catalog_factory import title
from tests.support.identity import SignedIn, client_for, random_ip, signed_in_user, users_client
from tests.support.playback import PlaybackAsset, asset_for

Db = psycopg.AsyncConnection[Any]
SESSIONS = "/api/v1/streaming/sessions"
CAP = 240  # the plan's maximum height in these tests: the 240p rung (416x234) only, not 360p


def streaming_app() -> Any:
    """api/streaming.py's app."""
    from api.streaming import app

    return app


def dev_server() -> Any:
    """The local dev server (vercel.json routing, /t/<token>/ delivery, storage)."""
    from shared.local.devserver import DevServer

    return DevServer()


@dataclass
class Playing:
    """A subscriber with a started session on their own copy of the real asset."""

    viewer: SignedIn
    headers: dict[str, str]  # the profile-scoped bearer the session was started with
    asset: PlaybackAsset
    start: dict[str, Any]  # the 201 body of POST /sessions
    client_ip: str

    @property
    def session_id(self) -> str:
        """The stream session's id."""
        return str(self.start["session_id"])

    @property
    def token(self) -> str:
        """The delivery token handed out at start."""
        return str(self.start["delivery_token"])

    def manifest_path(self, kind: str = "hls") -> str:
        """The session's manifest endpoint."""
        return f"/api/v1/streaming/{self.asset.content_id}/manifest?session={self.session_id}&format={kind}"

    def signed(self, relative: str, token: str | None = None) -> str:
        """A dev-server path for a file of the asset (relative to its prefix) under a token."""
        return f"/t/{token or self.token}/{self.asset.prefix}{relative}"


async def profile_headers(viewer: SignedIn) -> dict[str, str]:
    """Bearer of a token bound to the viewer's default profile (the same login session)."""
    async with users_client() as client:
        listed = await client.get("/api/v1/users/me/profiles", headers=viewer.headers)
        assert listed.status_code == 200, listed.text
        profile_id = listed.json()[0]["id"]
        selected = await client.post(f"/api/v1/users/me/profiles/{profile_id}/select", headers=viewer.headers)
        assert selected.status_code == 200, selected.text
    return {"authorization": f"Bearer {selected.json()['access_token']}"}


async def start(headers: dict[str, str], content_id: str, *, client_ip: str) -> dict[str, Any]:
    """POST /api/v1/streaming/sessions from a new web device; the 201 body."""
    async with client_for(streaming_app(), client_ip=client_ip) as client:
        response = await client.post(
            SESSIONS, json={"content_id": content_id, "device_id": uuid.uuid4().hex}, headers=headers
        )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def new_playing(database_url: str, *, max_height: int = CAP) -> Playing:
    """A new subscriber (plan capped at max_height), a title playing a copy of the real asset, a session."""
    async with await psycopg.AsyncConnection.connect(
        database_url, autocommit=True, prepare_threshold=None
    ) as db:
        title_id = await title(db, f"Delivery {uuid.uuid4().hex[:8]}")
        viewer = await signed_in_user(database_url)
        await db.execute(
            """insert into public.entitlements (user_id, kind, plan_code, tier, max_streams, max_height)
               values (%s, 'subscription', 'standard', 2, 4, %s)""",
            (viewer.user_id, max_height),
        )
    asset = await asset_for(database_url, title_id=title_id)
    headers = await profile_headers(viewer)
    client_ip = random_ip()
    body = await start_capped(headers, asset.content_id, client_ip=client_ip, max_height=max_height)
    return Playing(viewer=viewer, headers=headers, asset=asset, start=body, client_ip=client_ip)


async def start_capped(
    headers: dict[str, str], content_id: str, *, client_ip: str, max_height: int
) -> dict[str, Any]:
    """start() with the session capped at max_height: the plan's, and no free tier above it.

    (The entitlement decision never gives a subscriber less than FREE_MAX_HEIGHT: lowered for the start.)
    """
    from shared.settings import get_settings

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FREE_MAX_HEIGHT", str(max(144, min(max_height, get_settings().free_max_height))))
        get_settings.cache_clear()
        try:
            body = await start(headers, content_id, client_ip=client_ip)
        finally:
            get_settings.cache_clear()
    get_settings.cache_clear()
    assert body["max_height"] == max_height, body
    return body


@pytest.fixture(scope="module")
async def playing(database_url: str) -> Playing:
    """One live session for the module's read-only checks (the heartbeat TTL outlasts the module)."""
    return await new_playing(database_url)


@pytest.fixture
async def api(playing: Playing) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the streaming app from the playing viewer's address."""
    async with client_for(streaming_app(), client_ip=playing.client_ip) as client:
        yield client


@pytest.fixture(scope="module")
def devserver_app() -> Any:
    """One dev server per module (it imports every api module)."""
    return dev_server()


@pytest.fixture
async def edge(devserver_app: Any, playing: Playing) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the dev server, as the player's browser."""
    async with client_for(devserver_app, client_ip=playing.client_ip) as client:
        yield client
