"""The HLS key endpoint: the key for a live entitled session, refused after stop, logout, loss of
entitlement, and for tampered, expired or cross-asset tokens."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from shared.licences.schemas import b64url
from tests.licences.conftest import (
    KEY_PATH,
    SESSIONS,
    Playback,
    new_playback,
    playable_asset,
    sign_token,
    streaming_client,
)
from tests.support.identity import auth_client

Db = psycopg.AsyncConnection[Any]


def refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    assert response.headers["cache-control"] == "no-store"


async def test_key_for_a_live_entitled_session(playback: Playback, keys_client: httpx.AsyncClient) -> None:
    response = await keys_client.get(playback.key_url)
    assert response.status_code == 200, response.text
    assert response.content == playback.asset.keys.hls_key
    assert len(response.content) == 16
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


async def test_token_in_the_header(playback: Playback, keys_client: httpx.AsyncClient) -> None:
    url = KEY_PATH.format(asset=playback.asset.asset_id)
    response = await keys_client.get(url, headers={"x-delivery-token": playback.token})
    assert response.status_code == 200, response.text
    assert response.content == playback.asset.keys.hls_key
    refused(await keys_client.get(url), "invalid_token")


async def test_refused_after_the_session_is_stopped(
    playback: Playback, keys_client: httpx.AsyncClient
) -> None:
    assert (await keys_client.get(playback.key_url)).status_code == 200
    async with streaming_client(playback.client_ip) as client:
        stopped = await client.delete(f"{SESSIONS}/{playback.session_id}", headers=playback.headers)
    assert stopped.status_code in (200, 204), stopped.text
    refused(await keys_client.get(playback.key_url), "session_ended")


async def test_refused_after_logout(playback: Playback, keys_client: httpx.AsyncClient) -> None:
    assert (await keys_client.get(playback.key_url)).status_code == 200
    async with auth_client() as client:
        response = await client.post("/api/v1/auth/logout", headers=playback.headers)
    assert response.status_code == 204, response.text
    refused(await keys_client.get(playback.key_url), "session_ended")


async def test_refused_after_signing_out_everywhere(
    database_url: str, db: Db, keys_client: httpx.AsyncClient
) -> None:
    playback = await new_playback(database_url, db)
    assert (await keys_client.get(playback.key_url)).status_code == 200
    # Global logout from ANOTHER login of the same account ends the stream's login session too.
    from tests.support.identity import log_in

    other = await log_in(playback.viewer.email, playback.viewer.password)
    async with auth_client() as client:
        response = await client.post("/api/v1/auth/logout", json={"scope": "global"}, headers=other.headers)
    assert response.status_code == 204, response.text
    refused(await keys_client.get(playback.key_url), "session_ended")


async def test_refused_once_the_entitlement_is_revoked(
    playback: Playback, db: Db, keys_client: httpx.AsyncClient
) -> None:
    from shared.entitlements.service import invalidate

    assert (await keys_client.get(playback.key_url)).status_code == 200  # the decision is now cached
    await db.execute(
        "update public.entitlements set revoked_at = now() where id = %s", (playback.entitlement_id,)
    )
    await invalidate(playback.viewer.user_id)  # what commerce does after its commit
    refused(await keys_client.get(playback.key_url), "not_entitled")


async def test_revocation_without_invalidate_bites_within_the_cache_time(
    database_url: str, db: Db, keys_client: httpx.AsyncClient, settings_env: Any
) -> None:
    settings_env(ENTITLEMENT_CACHE_SECONDS="1")
    playback = await new_playback(database_url, db)
    assert (await keys_client.get(playback.key_url)).status_code == 200
    await db.execute(
        "update public.entitlements set revoked_at = now() where id = %s", (playback.entitlement_id,)
    )
    await asyncio.sleep(1.2)  # no invalidate(): the cached answer expires by itself
    refused(await keys_client.get(playback.key_url), "not_entitled")


async def test_token_tampering_expiry_and_other_assets(
    database_url: str, db: Db, keys_client: httpx.AsyncClient
) -> None:
    playback = await new_playback(database_url, db)
    other = await new_playback(database_url, db)  # another viewer, another asset
    asset, token = playback.asset.asset_id, playback.token

    for bad in (None, "", "not-a-token", token[:-1], token + "A"):
        url = KEY_PATH.format(asset=asset) + ("" if bad is None else f"?token={bad}")
        refused(await keys_client.get(url), "invalid_token")
    flipped = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    refused(await keys_client.get(KEY_PATH.format(asset=asset) + f"?token={flipped}"), "invalid_token")

    expired = sign_token(session_id=playback.session_id, asset_id=asset, expires_at=int(time.time()) - 1)
    refused(await keys_client.get(KEY_PATH.format(asset=asset) + f"?token={expired}"), "token_expired")

    # A valid token of one asset does not open another asset's key...
    refused(
        await keys_client.get(KEY_PATH.format(asset=other.asset.asset_id) + f"?token={token}"), "wrong_asset"
    )
    # ...nor does a token claiming the other asset for a session that plays this one.
    forged = sign_token(
        session_id=playback.session_id, asset_id=other.asset.asset_id, expires_at=int(time.time()) + 60
    )
    refused(
        await keys_client.get(KEY_PATH.format(asset=other.asset.asset_id) + f"?token={forged}"), "wrong_asset"
    )
    # A token for a session that never existed.
    ghost = sign_token(session_id=str(uuid.uuid4()), asset_id=asset, expires_at=int(time.time()) + 60)
    refused(await keys_client.get(KEY_PATH.format(asset=asset) + f"?token={ghost}"), "session_ended")

    # Both sessions still get their own keys.
    assert (await keys_client.get(playback.key_url)).content == playback.asset.keys.hls_key
    assert (await keys_client.get(other.key_url)).content == other.asset.keys.hls_key


async def test_unknown_asset(playback: Playback, db: Db, keys_client: httpx.AsyncClient) -> None:
    response = await keys_client.get(KEY_PATH.format(asset="not-a-uuid") + f"?token={playback.token}")
    assert response.status_code == 404
    assert response.json()["code"] == "asset_not_found"
    # A live session whose asset lost its keys (deleted meanwhile) is a 404, not a 500.
    await db.execute("delete from public.media_keys where asset_id = %s", (playback.asset.asset_id,))
    response = await keys_client.get(playback.key_url)
    assert response.status_code == 404
    assert response.json()["code"] == "asset_not_found"


async def test_rate_limited_per_session(
    playback: Playback, keys_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.infra.ratelimit import Limit
    from shared.licences import service

    monkeypatch.setitem(service.SESSION_LIMITS, "hls_key", Limit(3, 60))
    for _ in range(3):
        assert (await keys_client.get(playback.key_url)).status_code == 200
    response = await keys_client.get(playback.key_url)
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    # Per session and per kind: the licence endpoint of the same session still answers.
    body = {"kids": [b64url(playback.asset.keys.key_id)]}
    assert (await keys_client.post(playback.clearkey_url, json=body)).status_code == 200


async def test_refusals_are_logged(
    playback: Playback, keys_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    other_asset = uuid.uuid4()
    with caplog.at_level("WARNING", logger="cinema.licences"):
        await keys_client.get(KEY_PATH.format(asset=other_asset) + f"?token={playback.token}")
    (record,) = [r for r in caplog.records if r.name == "cinema.licences"]
    assert getattr(record, "code", None) == "wrong_asset"
    assert playback.token not in record.getMessage()


async def test_free_title_needs_no_entitlement(
    database_url: str, db: Db, keys_client: httpx.AsyncClient
) -> None:
    from tests.licences.conftest import profile_headers, start_session
    from tests.support.identity import random_ip, signed_in_user

    asset = await playable_asset(db, access="free")
    viewer = await signed_in_user(database_url)
    body = await start_session(await profile_headers(viewer), asset.title_id, client_ip=random_ip())
    url = KEY_PATH.format(asset=asset.asset_id) + f"?token={body['delivery_token']}"
    response = await keys_client.get(url)
    assert response.status_code == 200, response.text
    assert response.content == asset.keys.hls_key
