"""The ClearKey licence endpoint: the W3C EME JWK set for the session's asset, and malformed requests."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import httpx
import psycopg
import pytest

from shared.licences.schemas import b64url
from tests.licences.conftest import CLEARKEY, SESSIONS, Playback, new_playback, sign_token, streaming_client

Db = psycopg.AsyncConnection[Any]


def request_for(*kids: bytes) -> dict[str, Any]:
    return {"kids": [b64url(kid) for kid in kids], "type": "temporary"}


async def test_licence_for_the_assets_kid(playback: Playback, keys_client: httpx.AsyncClient) -> None:
    keys = playback.asset.keys
    response = await keys_client.post(playback.clearkey_url, json=request_for(keys.key_id))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {
        "keys": [{"kty": "oct", "kid": b64url(keys.key_id), "k": b64url(keys.cenc_key)}],
        "type": "temporary",
    }
    # As EME requires: base64url, no padding, decoding to the 16-byte KID and key.
    jwk = response.json()["keys"][0]
    assert "=" not in jwk["kid"] + jwk["k"]


async def test_only_the_assets_kid_is_answered(
    database_url: str, db: Db, playback: Playback, keys_client: httpx.AsyncClient
) -> None:
    keys = playback.asset.keys
    other = await new_playback(database_url, db)
    # Another asset's KID (even one that exists) and random KIDs get nothing; the own KID once.
    body = request_for(os.urandom(16), other.asset.keys.key_id, keys.key_id, keys.key_id)
    response = await keys_client.post(playback.clearkey_url, json=body)
    assert response.status_code == 200, response.text
    assert [jwk["kid"] for jwk in response.json()["keys"]] == [b64url(keys.key_id)]

    response = await keys_client.post(playback.clearkey_url, json=request_for(other.asset.keys.key_id))
    assert response.status_code == 200
    assert response.json() == {"keys": [], "type": "temporary"}


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        json.dumps({"kids": []}).encode(),
        json.dumps({"kids": [b64url(os.urandom(15))]}).encode(),
        json.dumps({"kids": ["AAAA+/AAAAAAAAAAAAAAAA"]}).encode(),
        json.dumps({"kids": [b64url(os.urandom(16))], "type": "persistent-license"}).encode(),
        b"[" * 5000,  # json.loads raises RecursionError on this (a 500 before)
        b'{"kids": ' + b"[" * 5000,
        b'{"kids": ["' + b64url(os.urandom(16)).encode() + b'"], "x": ' + b"{" * 3000 + b"}" * 3000 + b"}",
    ],
)
async def test_malformed_requests_are_400(
    content: bytes, playback: Playback, keys_client: httpx.AsyncClient
) -> None:
    response = await keys_client.post(
        playback.clearkey_url, content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_licence_request"


async def test_token_in_the_header(playback: Playback, keys_client: httpx.AsyncClient) -> None:
    body = request_for(playback.asset.keys.key_id)
    response = await keys_client.post(CLEARKEY, json=body, headers={"x-delivery-token": playback.token})
    assert response.status_code == 200, response.text
    assert len(response.json()["keys"]) == 1
    # The header wins over the query string (the edge worker forwards it; a query may be stale).
    response = await keys_client.post(
        f"{CLEARKEY}?token=garbage", json=body, headers={"x-delivery-token": playback.token}
    )
    assert response.status_code == 200, response.text
    response = await keys_client.post(CLEARKEY, json=body, headers={"x-delivery-token": "garbage"})
    assert response.status_code == 403 and response.json()["code"] == "invalid_token"


async def test_oversized_request_is_413(playback: Playback, keys_client: httpx.AsyncClient) -> None:
    response = await keys_client.post(playback.clearkey_url, content=b"{" + b" " * 9000 + b"}")
    assert response.status_code == 413
    assert response.json()["code"] == "licence_request_too_large"


async def test_refused_for_bad_tokens_and_ended_sessions(
    playback: Playback, keys_client: httpx.AsyncClient
) -> None:
    body = request_for(playback.asset.keys.key_id)
    for token in ("", "garbage", playback.token[:-2] + "AA"):
        response = await keys_client.post(f"{CLEARKEY}?token={token}", json=body)
        assert response.status_code == 403
        assert response.json()["code"] == "invalid_token"
    expired = sign_token(
        session_id=playback.session_id, asset_id=playback.asset.asset_id, expires_at=int(time.time()) - 1
    )
    response = await keys_client.post(f"{CLEARKEY}?token={expired}", json=body)
    assert response.json()["code"] == "token_expired"

    async with streaming_client(playback.client_ip) as client:
        stopped = await client.delete(f"{SESSIONS}/{playback.session_id}", headers=playback.headers)
    assert stopped.status_code in (200, 204), stopped.text
    response = await keys_client.post(playback.clearkey_url, json=body)
    assert response.status_code == 403
    assert response.json()["code"] == "session_ended"
    assert response.headers["cache-control"] == "no-store"


async def test_token_of_a_session_on_another_asset(
    database_url: str, db: Db, playback: Playback, keys_client: httpx.AsyncClient
) -> None:
    other = await new_playback(database_url, db)
    # Signed for this session but naming the other asset: the session does not play it.
    forged = sign_token(
        session_id=playback.session_id, asset_id=other.asset.asset_id, expires_at=int(time.time()) + 60
    )
    response = await keys_client.post(f"{CLEARKEY}?token={forged}", json=request_for(other.asset.keys.key_id))
    assert response.status_code == 403
    assert response.json()["code"] == "wrong_asset"
