"""Watch test helpers: a viewer with a selected profile, live stream sessions, the streaming app's client."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.identity import SignedIn, client_for, signed_in_user, users_client

STREAMING = "/api/v1/streaming"
PROFILES = "/api/v1/users/me/profiles"


def auth(token: str) -> dict[str, str]:
    """Authorization header for an access token."""
    return {"authorization": f"Bearer {token}"}


@dataclass
class Watcher:
    """A signed-in account with its default profile selected."""

    user: SignedIn
    profile_id: str
    headers: dict[str, str]  # profile-bound token

    @property
    def user_id(self) -> str:
        """The account id as a string (as sessions carry it)."""
        return str(self.user.user_id)


async def new_watcher(database_url: str) -> Watcher:
    """Sign up an account and select its default profile."""
    user = await signed_in_user(database_url)
    async with users_client() as client:
        listed = await client.get(PROFILES, headers=user.headers)
        assert listed.status_code == 200, listed.text
        profile_id = listed.json()[0]["id"]
        selected = await client.post(f"{PROFILES}/{profile_id}/select", headers=user.headers)
        assert selected.status_code == 200, selected.text
    return Watcher(user, profile_id, auth(selected.json()["access_token"]))


async def other_profile(watcher: Watcher, name: str = "Second") -> dict[str, str]:
    """Headers of a token bound to a new, second profile of the watcher's account (same login)."""
    async with users_client() as client:
        created = await client.post(PROFILES, json={"name": name}, headers=watcher.user.headers)
        assert created.status_code == 201, created.text
        selected = await client.post(
            f"{PROFILES}/{created.json()['id']}/select", headers=watcher.user.headers
        )
        assert selected.status_code == 200, selected.text
    return auth(selected.json()["access_token"])


@pytest.fixture
async def watcher(database_url: str) -> Watcher:
    """A fresh viewer per test (continue watching and history are per profile)."""
    return await new_watcher(database_url)


@pytest.fixture(scope="session")
async def stranger(database_url: str) -> Watcher:
    """Another account, for refusals."""
    return await new_watcher(database_url)


def streaming_app() -> Any:
    """The deployed streaming group (api/streaming.py): no stand-in app, so a wiring regression fails."""
    from api.streaming import app

    return app


@pytest.fixture
async def streaming() -> AsyncIterator[httpx.AsyncClient]:
    """A client of the streaming group (its own random address)."""
    async with client_for(streaming_app()) as opened:
        yield opened


async def live_session(
    watcher: Watcher,
    *,
    title_id: uuid.UUID,
    episode_id: uuid.UUID | None = None,
    started_at: float | None = None,
    ttl: int = 300,
) -> Any:
    """A live stream session in Redis, stored the way shared.streaming.sessions reads it."""
    from shared.infra.redis import get_redis
    from shared.streaming.sessions import SESSION_KEY, StreamSession, clock

    now = clock()
    session = StreamSession(
        id=str(uuid.uuid4()),
        user_id=watcher.user_id,
        profile_id=watcher.profile_id,
        device_id=f"device-{uuid.uuid4().hex[:8]}",
        device_class="web",
        title_id=str(title_id),
        episode_id=str(episode_id) if episode_id else None,
        content_id=str(episode_id or title_id),
        asset_id=str(uuid.uuid4()),
        max_height=1080,
        ads=False,
        country=None,
        entitlement_id=None,
        started_at=now if started_at is None else started_at,
        expires_at=now + ttl,
    )
    await (await get_redis()).set(SESSION_KEY.format(session.id), session.to_json(), ex=ttl)
    return session


async def episodes_of(db: Any, title_id: uuid.UUID) -> list[uuid.UUID]:
    """A series' episode ids in viewing order."""
    cursor = await db.execute(
        """select e.id from public.catalog_episodes e join public.catalog_seasons s on s.id = e.season_id
           where e.title_id = %s order by s.number, e.number""",
        (title_id,),
    )
    return [row[0] for row in await cursor.fetchall()]


async def stored(db: Any, profile_id: str, content_id: Any) -> dict[str, Any] | None:
    """The Postgres row of a position."""
    from psycopg.rows import dict_row

    async with db.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            "select * from public.watch_positions where profile_id = %s and content_id = %s",
            (profile_id, content_id),
        )
        row: dict[str, Any] | None = await cursor.fetchone()
        return row
