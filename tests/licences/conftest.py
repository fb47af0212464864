"""Licence test helpers: titles with a playable asset and its keys, viewers entitled to them, sessions
started through the real streaming API, and clients of the app serving the key and licence endpoints."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from shared.transcoding.pipeline.model import ContentKeys
from tests.support.catalog_factory import title
from tests.support.drm_server import DrmServer
from tests.support.identity import SignedIn, client_for, random_ip, signed_in_user, users_client

Db = psycopg.AsyncConnection[Any]
SESSIONS = "/api/v1/streaming/sessions"
KEY_PATH = "/api/v1/streaming/keys/{asset}/hls.key"
CLEARKEY = "/api/v1/streaming/licence/clearkey"


def licence_app() -> Any:
    """The deployed streaming group (api/streaming.py): no stand-in app, so a wiring regression fails."""
    from api.streaming import app

    return app


@pytest.fixture
async def keys_client() -> AsyncIterator[httpx.AsyncClient]:
    """A client of the licence endpoints, from its own random address (no bearer: the token is the proof)."""
    async with client_for(licence_app()) as client:
        yield client


@dataclass
class Asset:
    """A current, ready asset of a title, with its content keys."""

    title_id: uuid.UUID
    asset_id: uuid.UUID
    keys: ContentKeys


async def playable_asset(db: Db, *, access: str = "subscription", min_tier: int = 1) -> Asset:
    """A published movie with a current ready asset (rows only: no media files) and stored keys."""
    from shared.settings import get_settings
    from shared.transcoding.keys import new_content_keys, store_keys

    title_id = await title(db, f"Licensed {uuid.uuid4().hex[:8]}", access=access, min_tier=min_tier)
    source_id, asset_id = uuid.uuid4(), uuid.uuid4()
    prefix = f"media/assets/{asset_id}/"
    await db.execute(
        """insert into public.media_sources (id, title_id, storage_key, filename, content_type, size_bytes,
                                             state, uploaded_at)
           values (%s, %s, %s, 'clip.mp4', 'video/mp4', 1000, 'uploaded', now())""",
        (source_id, title_id, f"media/sources/{source_id}/clip.mp4"),
    )
    await db.execute(
        """insert into public.media_assets (id, source_id, title_id, state, storage_prefix, hls_master,
             dash_manifest, duration_seconds, is_current, playable_at, ready_at)
           values (%s, %s, %s, 'ready', %s, %s, %s, 4, true, now(), now())""",
        (asset_id, source_id, title_id, prefix, prefix + "hls/master.m3u8", prefix + "dash/manifest.mpd"),
    )
    await db.execute(
        """insert into public.media_renditions (asset_id, name, kind, codec, codecs, width, height,
             frame_rate, bandwidth, average_bandwidth, language, label, is_default)
           values (%s, 'h264_360p', 'video', 'h264', 'avc1.64001e', 640, 360, 25, 800000, 700000,
                   null, null, false),
                  (%s, 'audio_eng', 'audio', 'aac', 'mp4a.40.2', null, null, null, 128000, 128000,
                   'eng', 'English', true)""",
        (asset_id, asset_id),
    )
    keys = new_content_keys()
    async with db.transaction():
        await store_keys(db, asset_id=asset_id, keys=keys, settings=get_settings())
    return Asset(title_id=title_id, asset_id=asset_id, keys=keys)


async def subscribe(db: Db, user_id: uuid.UUID, *, tier: int = 2, max_streams: int = 4) -> uuid.UUID:
    """An open subscription entitlement, as commerce writes it."""
    cursor = await db.execute(
        """insert into public.entitlements (user_id, kind, plan_code, tier, max_streams, max_height)
           values (%s, 'subscription', 'premium', %s, %s, 2160) returning id""",
        (user_id, tier, max_streams),
    )
    row = await cursor.fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


@dataclass
class Playback:
    """A signed-in, entitled viewer playing an asset: the session and its delivery token."""

    viewer: SignedIn
    headers: dict[str, str]  # bearer of the profile-scoped token the session was started with
    asset: Asset
    session_id: str
    token: str
    entitlement_id: uuid.UUID
    client_ip: str

    @property
    def key_url(self) -> str:
        """The HLS key endpoint of the session's asset with its token."""
        return KEY_PATH.format(asset=self.asset.asset_id) + f"?token={self.token}"

    @property
    def clearkey_url(self) -> str:
        """The ClearKey licence endpoint with the session's token."""
        return f"{CLEARKEY}?token={self.token}"


def streaming_client(client_ip: str) -> httpx.AsyncClient:
    """A client of the streaming group (P-A's sessions API)."""
    from api.streaming import app

    return client_for(app, client_ip=client_ip)


async def start_session(headers: dict[str, str], content_id: uuid.UUID, *, client_ip: str) -> dict[str, Any]:
    """POST /api/v1/streaming/sessions as a web player; the 201 body."""
    async with streaming_client(client_ip) as client:
        response = await client.post(
            SESSIONS, json={"content_id": str(content_id), "device_id": uuid.uuid4().hex}, headers=headers
        )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def profile_headers(viewer: SignedIn) -> dict[str, str]:
    """Headers of a token bound to the viewer's default profile (same login session)."""
    async with users_client() as client:
        listed = await client.get("/api/v1/users/me/profiles", headers=viewer.headers)
        assert listed.status_code == 200, listed.text
        profile_id = listed.json()[0]["id"]
        selected = await client.post(f"/api/v1/users/me/profiles/{profile_id}/select", headers=viewer.headers)
        assert selected.status_code == 200, selected.text
    return {"authorization": f"Bearer {selected.json()['access_token']}"}


async def new_playback(database_url: str, db: Db, asset: Asset | None = None) -> Playback:
    """A new subscriber, an asset (a new one unless given), and a started session on it."""
    viewer = await signed_in_user(database_url)
    entitlement_id = await subscribe(db, viewer.user_id)
    asset = asset or await playable_asset(db)
    headers = await profile_headers(viewer)
    client_ip = random_ip()
    body = await start_session(headers, asset.title_id, client_ip=client_ip)
    return Playback(
        viewer=viewer,
        headers=headers,
        asset=asset,
        session_id=body["session_id"],
        token=body["delivery_token"],
        entitlement_id=entitlement_id,
        client_ip=client_ip,
    )


async def another_session(playback: Playback) -> Playback:
    """A second session of the same viewer on the same asset (another device)."""
    body = await start_session(playback.headers, playback.asset.title_id, client_ip=playback.client_ip)
    return Playback(
        viewer=playback.viewer,
        headers=playback.headers,
        asset=playback.asset,
        session_id=body["session_id"],
        token=body["delivery_token"],
        entitlement_id=playback.entitlement_id,
        client_ip=playback.client_ip,
    )


@pytest.fixture
async def playback(database_url: str, db: Db) -> Playback:
    """A live, entitled session on a fresh asset."""
    return await new_playback(database_url, db)


def sign_token(*, session_id: str, asset_id: uuid.UUID | str, expires_at: int) -> str:
    """A delivery token signed with this deployment's secret (for forged-claims tests)."""
    from shared.delivery.tokens import UNCAPPED, delivery_secret, sign
    from shared.settings import get_settings

    return sign(
        session_id=session_id,
        asset_id=str(asset_id),
        expires_at=expires_at,
        secret=delivery_secret(get_settings()),
        max_height=UNCAPPED,
    )


@pytest.fixture(scope="session")
def drm_server() -> Iterator[DrmServer]:
    """The local licence-server stand-in, for the whole run."""
    with DrmServer(auth_header="X-Api-Key", auth_value="drm-key-" + uuid.uuid4().hex) as server:
        yield server


@pytest.fixture
def drm(settings_env: Any, drm_server: DrmServer) -> Iterator[DrmServer]:
    """Settings pointing Widevine and PlayReady (not FairPlay) at the stand-in, records cleared.

    The stand-in checks our entitlement token with the secret this deployment derives (as a provider
    configured with it would).
    """
    from shared.settings import derived_key, get_settings

    drm_server.reset()
    settings_env(
        DRM_WIDEVINE_URL=drm_server.url_for("widevine"),
        DRM_PLAYREADY_URL=drm_server.url_for("playready"),
        DRM_FAIRPLAY_URL=None,
        DRM_AUTH_HEADER=drm_server.auth_header,
        DRM_AUTH_VALUE=drm_server.auth_value,
    )
    drm_server.entitlement_secret = derived_key(get_settings(), "drm-entitlement")
    yield drm_server
    drm_server.reset()
    drm_server.entitlement_secret = None
