"""Stream session test helpers: viewers with a selected profile, titles with a playable asset (rows only),
entitlements as commerce writes them, a movable playback clock, and the streaming app's client."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support import catalog_factory as factory
from tests.support.clock import (
    Clock,  # noqa: F401  (the `clock` fixture's type, for the tests)
    clock_fixture,
)
from tests.support.identity import SignedIn, client_for, random_ip, signed_in_user, users_client

Db = psycopg.AsyncConnection[Any]
SESSIONS = "/api/v1/streaming/sessions"
PROFILES = "/api/v1/users/me/profiles"


def bearer(token: str) -> dict[str, str]:
    """Authorization header for an access token."""
    return {"authorization": f"Bearer {token}"}


@dataclass
class Viewer:
    """A signed-in account; `headers` carry a token bound to one of its profiles."""

    user: SignedIn
    profile_id: str
    headers: dict[str, str]

    @property
    def user_id(self) -> uuid.UUID:
        """The account id."""
        return self.user.user_id


async def new_viewer(database_url: str, *, kids: bool = False) -> Viewer:
    """Sign up; select the default profile (or a new kids profile)."""
    user = await signed_in_user(database_url)
    async with users_client() as client:
        if kids:
            made = await client.post(PROFILES, json={"name": "Kiddo", "is_kids": True}, headers=user.headers)
            assert made.status_code == 201, made.text
            profile_id = made.json()["id"]
        else:
            listed = await client.get(PROFILES, headers=user.headers)
            assert listed.status_code == 200, listed.text
            profile_id = listed.json()[0]["id"]
        selected = await client.post(f"{PROFILES}/{profile_id}/select", headers=user.headers)
        assert selected.status_code == 200, selected.text
    return Viewer(user, profile_id, bearer(selected.json()["access_token"]))


@pytest.fixture
async def viewer(database_url: str) -> Viewer:
    """A fresh account with its default (adult) profile selected."""
    return await new_viewer(database_url)


def streaming_app() -> Any:
    """api/streaming.py's app."""
    from api.streaming import app

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client of the streaming group from its own random address."""
    async with client_for(streaming_app(), client_ip=random_ip()) as opened:
        yield opened


async def start(
    client: httpx.AsyncClient,
    viewer: Viewer,
    content_id: uuid.UUID | str,
    *,
    device_id: str | None = None,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> httpx.Response:
    """POST /api/v1/streaming/sessions."""
    body = {"content_id": str(content_id), "device_id": device_id or uuid.uuid4().hex, **fields}
    return await client.post(SESSIONS, json=body, headers={**viewer.headers, **(headers or {})})


async def movie(db: Db, *, asset: bool = True, **columns: Any) -> uuid.UUID:
    """A published movie (subscription tier 1 unless given) with a current ready asset (rows only)."""
    columns.setdefault("maturity_level", "13+")
    title_id = await factory.title(db, f"Stream {uuid.uuid4().hex[:8]}", **columns)
    if asset:
        await add_asset(db, title_id)
    return title_id


async def add_asset(db: Db, title_id: uuid.UUID, episode_id: uuid.UUID | None = None) -> uuid.UUID:
    """A current ready asset with 360p/1080p video, English and French audio, two subtitle tracks and a
    thumbnails track, as the pipeline records them."""
    source_id, asset_id = uuid.uuid4(), uuid.uuid4()
    prefix = f"media/assets/{asset_id}/"
    await db.execute(
        """insert into public.media_sources (id, title_id, episode_id, storage_key, filename, content_type,
                                             size_bytes, state, uploaded_at)
           values (%s, %s, %s, %s, 'clip.mp4', 'video/mp4', 1000, 'uploaded', now())""",
        (source_id, title_id, episode_id, f"media/sources/{source_id}/clip.mp4"),
    )
    images = {
        "posters": [prefix + "images/poster-1.jpg"],
        "storyboards": [prefix + "images/storyboard-1.jpg"],
        "thumbnails_vtt": prefix + "images/thumbnails.vtt",
        "tile_width": 160,
        "tile_height": 90,
        "interval_seconds": 2.0,
    }
    await db.execute(
        """insert into public.media_assets (id, source_id, title_id, episode_id, state, storage_prefix,
             hls_master, dash_manifest, duration_seconds, images, is_current, playable_at, ready_at)
           values (%s, %s, %s, %s, 'ready', %s, %s, %s, 6, %s, true, now(), now())""",
        (
            asset_id,
            source_id,
            title_id,
            episode_id,
            prefix,
            prefix + "hls/master.m3u8",
            prefix + "dash/manifest.mpd",
            Jsonb(images),
        ),
    )
    await db.execute(
        """insert into public.media_renditions (asset_id, name, kind, codec, codecs, width, height,
             frame_rate, bandwidth, average_bandwidth, language, label, is_default)
           values (%(a)s, 'h264_360p', 'video', 'h264', 'avc1.64001e', 640, 360, 25, 800000, 700000,
                   null, null, false),
                  (%(a)s, 'h264_1080p', 'video', 'h264', 'avc1.640028', 1920, 1080, 25, 5000000, 4500000,
                   null, null, false),
                  (%(a)s, 'audio_eng', 'audio', 'aac', 'mp4a.40.2', null, null, null, 128000, 128000,
                   'eng', 'English', true),
                  (%(a)s, 'audio_fra', 'audio', 'aac', 'mp4a.40.2', null, null, null, 128000, 128000,
                   'fra', 'Français', false)""",
        {"a": asset_id},
    )
    for language, label, forced in (("en", "English", False), ("fr", "French", True)):
        await db.execute(
            """insert into public.media_subtitles (title_id, episode_id, language, label, forced, storage_key,
                                                   cue_count)
               values (%s, %s, %s, %s, %s, %s, 2)
               on conflict do nothing""",
            (title_id, episode_id, language, label, forced, f"media/subtitles/{title_id}/{language}.vtt"),
        )
    return asset_id


async def entitle(
    db: Db,
    user_id: uuid.UUID,
    *,
    kind: str = "subscription",
    title_id: uuid.UUID | None = None,
    tier: int = 1,
    max_streams: int = 2,
    max_height: int = 1080,
    ad_free: bool = True,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    play_window_seconds: int | None = None,
    first_played_at: datetime | None = None,
    invalidate: bool = True,
) -> uuid.UUID:
    """An entitlements row, as commerce writes it (then invalidating the user's cached answers)."""
    from shared.entitlements.service import invalidate as drop_cached

    cursor = await db.execute(
        """insert into public.entitlements (user_id, kind, title_id, plan_code, tier, max_streams, max_height,
               ad_free, starts_at, ends_at, play_window_seconds, first_played_at)
           values (%s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now() - interval '1 day'), %s, %s, %s)
           returning id""",
        (
            user_id,
            kind,
            title_id,
            "standard" if kind == "subscription" else None,
            tier,
            max_streams,
            max_height,
            ad_free,
            starts_at,
            ends_at,
            play_window_seconds,
            first_played_at,
        ),
    )
    row = await cursor.fetchone()
    assert row is not None
    if invalidate:
        await drop_cached(user_id)
    return uuid.UUID(str(row[0]))


clock = clock_fixture()  # the playback clock, moved by tests instead of sleeping


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert a problem+json answer with this status and code; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


SettingsEnv = Callable[..., None]
