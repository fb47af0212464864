"""The DRM licence proxy against a local licence server: forwarding, credentials, failures, refusals."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from typing import Any

import httpx
import pytest

from shared.licences import drm as drm_module
from shared.licences.service import SESSION_LIMITS, USER_LIMITS
from tests.licences import playready_support as playready
from tests.licences.conftest import Db, Playback, another_session, playable_asset
from tests.support.drm_server import DrmServer

LICENCE = "/api/v1/streaming/licence/{system}"


def url(system: str, token: str | None) -> str:
    return LICENCE.format(system=system) + (f"?token={token}" if token is not None else "")


async def test_unconfigured_system_is_501_before_anything_else(
    drm: DrmServer, keys_client: httpx.AsyncClient
) -> None:
    response = await keys_client.post(url("fairplay", "whatever"), content=b"spc")
    assert response.status_code == 501, response.text
    assert response.json()["code"] == "drm_not_configured"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert drm.received == []


async def test_unknown_system_is_404(drm: DrmServer, keys_client: httpx.AsyncClient) -> None:
    response = await keys_client.post(url("primetime", "x"), content=b"challenge")
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_drm_system"


async def test_bad_token_is_refused_and_nothing_forwarded(
    drm: DrmServer, keys_client: httpx.AsyncClient
) -> None:
    for token in (None, "", "x" * 92, "garbage"):
        response = await keys_client.post(url("widevine", token), content=b"challenge")
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "invalid_token"
        assert response.headers["cache-control"] == "no-store"
    assert drm.received == []


async def test_empty_and_oversized_challenges(drm: DrmServer, keys_client: httpx.AsyncClient) -> None:
    response = await keys_client.post(url("widevine", "x"), content=b"")
    assert response.status_code == 400
    assert response.json()["code"] == "empty_challenge"
    response = await keys_client.post(
        url("widevine", "x"), content=os.urandom(drm_module.MAX_CHALLENGE_BYTES + 1)
    )
    assert response.status_code == 413
    assert response.json()["code"] == "challenge_too_large"
    assert drm.received == []


async def test_forwards_challenge_with_provider_credentials(
    drm: DrmServer, playback: Playback, keys_client: httpx.AsyncClient
) -> None:
    challenge = os.urandom(3000)
    response = await keys_client.post(
        url("widevine", playback.token),
        content=challenge,
        headers={
            "content-type": "application/octet-stream",
            "authorization": "Bearer the-viewers-own-token",
            "cookie": "sid=secret",
        },
    )
    assert response.status_code == 200, response.text
    assert response.content == drm.licence
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"
    (received,) = drm.received
    assert received.system == "widevine"
    assert received.body == challenge
    assert received.headers["content-type"] == "application/octet-stream"
    assert received.headers[drm.auth_header.lower()] == drm.auth_value
    # Nothing of the viewer's credentials (nor the delivery token) goes to the provider.
    assert "authorization" not in received.headers and "cookie" not in received.headers
    assert received.query == ""


async def test_playready_content_type_is_kept(
    drm: DrmServer, playback: Playback, keys_client: httpx.AsyncClient
) -> None:
    soap = playready.challenge(playback.asset.keys.key_id)
    response = await keys_client.post(
        url("playready", playback.token), content=soap, headers={"content-type": "text/xml; charset=utf-8"}
    )
    assert response.status_code == 200, response.text
    (received,) = drm.received
    assert received.system == "playready"
    assert received.headers["content-type"] == "text/xml; charset=utf-8"
    assert received.body == soap


@pytest.mark.parametrize("status", [500, 503, 400, 403])
async def test_upstream_errors_are_502(
    status: int, drm: DrmServer, playback: Playback, keys_client: httpx.AsyncClient
) -> None:
    drm.fail_next(status)
    response = await keys_client.post(url("widevine", playback.token), content=b"challenge")
    assert response.status_code == 502, response.text
    assert response.json()["code"] == "licence_server_error"
    assert "simulated" not in response.text  # the provider's error body is not passed on


async def test_wrong_credentials_unreachable_and_slow_servers_are_502(
    drm: DrmServer,
    playback: Playback,
    keys_client: httpx.AsyncClient,
    settings_env: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings_env(DRM_AUTH_VALUE="not-the-key")
    response = await keys_client.post(url("widevine", playback.token), content=b"challenge")
    assert response.status_code == 502
    assert drm.received[-1].status == 401

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings_env(DRM_AUTH_VALUE=drm.auth_value, DRM_WIDEVINE_URL=f"http://127.0.0.1:{port}/widevine")
    response = await keys_client.post(url("widevine", playback.token), content=b"challenge")
    assert response.status_code == 502
    assert response.json()["code"] == "licence_server_error"

    settings_env(DRM_WIDEVINE_URL=drm.url_for("widevine"))
    monkeypatch.setattr(drm_module, "TOTAL_SECONDS", 0.3)
    drm.delay_next(1.0)
    count = len(drm.received)
    response = await keys_client.post(url("widevine", playback.token), content=b"challenge")
    assert response.status_code == 502
    assert response.json()["code"] == "licence_server_error"
    # The stand-in records the abandoned request once its delay is over: wait, so it does not land in the
    # next test's records.
    for _ in range(40):
        if len(drm.received) > count:
            break
        await asyncio.sleep(0.05)


async def test_ended_session_is_refused_before_forwarding(
    drm: DrmServer, playback: Playback, keys_client: httpx.AsyncClient
) -> None:
    from tests.licences.conftest import SESSIONS, streaming_client

    async with streaming_client(playback.client_ip) as client:
        stopped = await client.delete(f"{SESSIONS}/{playback.session_id}", headers=playback.headers)
    assert stopped.status_code in (200, 204), stopped.text
    response = await keys_client.post(url("widevine", playback.token), content=b"challenge")
    assert response.status_code == 403
    assert response.json()["code"] == "session_ended"
    assert drm.received == []


async def test_entitlement_token_binds_the_licence_to_the_assets_kid(
    drm: DrmServer, playback: Playback, keys_client: httpx.AsyncClient
) -> None:
    before = int(time.time())
    response = await keys_client.post(url("widevine", playback.token), content=os.urandom(500))
    assert response.status_code == 200, response.text
    (received,) = drm.received
    # The stand-in verified the HS256 JWT with the derived secret (else it answers 403, and we 502).
    claims = received.entitlement
    assert claims is not None
    assert claims["sub"] == str(playback.viewer.user_id)
    assert claims["sid"] == playback.session_id
    assert claims["aid"] == str(playback.asset.asset_id)
    assert claims["kid"] == playback.asset.keys.key_id.hex()
    assert claims["exp"] - claims["iat"] == 60 and before - 1 <= claims["iat"] <= time.time() + 1
    assert playback.token not in received.headers["x-cinema-entitlement"]


async def test_a_provider_with_another_secret_refuses_the_entitlement(
    drm: DrmServer, playback: Playback, keys_client: httpx.AsyncClient
) -> None:
    drm.entitlement_secret = os.urandom(32)  # the provider was given some other secret
    response = await keys_client.post(url("widevine", playback.token), content=b"challenge")
    assert response.status_code == 502, response.text
    assert drm.received[-1].status == 403 and drm.received[-1].entitlement is None


@pytest.mark.parametrize("version", ["4.0", "4.1", "4.3"])
async def test_playready_challenge_for_the_assets_kid_is_forwarded(
    version: str, drm: DrmServer, playback: Playback, keys_client: httpx.AsyncClient
) -> None:
    soap = playready.challenge(playback.asset.keys.key_id, version=version)
    response = await keys_client.post(
        url("playready", playback.token), content=soap, headers={"content-type": "text/xml; charset=utf-8"}
    )
    assert response.status_code == 200, response.text
    (received,) = drm.received
    assert received.body == soap and received.status == 200


async def test_playready_challenge_for_another_kid_is_refused(
    db: Db, drm: DrmServer, playback: Playback, keys_client: httpx.AsyncClient
) -> None:
    own = playback.asset.keys.key_id
    other = (
        await playable_asset(db)
    ).keys.key_id  # a KID that exists, of an asset this session does not play
    bodies = [
        playready.challenge(other),
        playready.challenge(os.urandom(16), version="4.1"),
        playready.challenge(own, other, version="4.3"),  # smuggled next to the own one
        playready.challenge(other, encoding="utf-16"),
        playready.eme_message(other),  # the browser's raw EME message, challenge base64 inside
    ]
    for body in bodies:
        response = await keys_client.post(
            url("playready", playback.token), content=body, headers={"content-type": "text/xml"}
        )
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "wrong_key"
        assert response.headers["cache-control"] == "no-store"
    assert drm.received == []
    # The same encodings with the own KID pass.
    for body in (playready.challenge(own, encoding="utf-16"), playready.eme_message(own)):
        response = await keys_client.post(url("playready", playback.token), content=body)
        assert response.status_code == 200, response.text


async def test_unreadable_playready_challenges_are_400(
    drm: DrmServer, playback: Playback, keys_client: httpx.AsyncClient
) -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b"<KID>&lol2;</KID>"
    )
    external = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><KID>&e;</KID>'
    for body in (laughs, external, b"\x08\x01\x12 not xml", b"<a>" * 200):
        response = await keys_client.post(url("playready", playback.token), content=body)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "invalid_challenge"
    assert drm.received == []


async def test_playready_challenge_naming_no_kid_is_left_to_the_provider(
    drm: DrmServer, playback: Playback, keys_client: httpx.AsyncClient
) -> None:
    body = b'<?xml version="1.0"?><soap:Envelope><soap:Body>no header</soap:Body></soap:Envelope>'
    response = await keys_client.post(url("playready", playback.token), content=body)
    assert response.status_code == 200, response.text
    (received,) = drm.received
    assert (
        received.entitlement is not None and received.entitlement["kid"] == playback.asset.keys.key_id.hex()
    )


async def test_per_user_limit_across_sessions(
    drm: DrmServer, playback: Playback, keys_client: httpx.AsyncClient
) -> None:
    per_session = SESSION_LIMITS["drm"].limit
    per_user = min(limit.limit for limit in USER_LIMITS["drm"])
    assert per_user > per_session  # else the session limit alone would answer
    session, used, sent = playback, 0, 0
    while sent < per_user:
        if used == per_session:
            session, used = await another_session(playback), 0
        response = await keys_client.post(url("widevine", session.token), content=b"challenge")
        assert response.status_code == 200, (sent, response.text)
        used, sent = used + 1, sent + 1
    # A fresh session of the same user has its own budget left, the user has none.
    fresh = await another_session(playback)
    response = await keys_client.post(url("widevine", fresh.token), content=b"challenge")
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "rate_limited"
    assert int(response.headers["retry-after"]) >= 1
    assert len(drm.received) == per_user


async def test_content_types_are_allowlisted_both_ways(
    drm: DrmServer, playback: Playback, keys_client: httpx.AsyncClient
) -> None:
    sent = [
        ("text/html; charset=utf-8", "application/octet-stream"),
        ("application/json", "application/octet-stream"),
        (None, "application/octet-stream"),
        ("application/xml; charset=UTF-8", "application/xml; charset=UTF-8"),
        ("Application/Octet-Stream", "application/octet-stream"),
        ('text/xml; charset="utf-8"; boundary=x', "text/xml; charset=utf-8"),
    ]
    for given, forwarded in sent:
        headers = {} if given is None else {"content-type": given}
        response = await keys_client.post(
            url("widevine", playback.token), content=b"challenge", headers=headers
        )
        assert response.status_code == 200, response.text
        assert drm.received[-1].headers["content-type"] == forwarded, given
    answered = [
        ("text/html; charset=utf-8", "application/octet-stream"),
        ("image/svg+xml", "application/octet-stream"),
        ("text/xml; charset=utf-8", "text/xml; charset=utf-8"),
        ("application/xml", "application/xml"),
    ]
    for upstream, returned in answered:
        drm.answer_type(upstream)
        response = await keys_client.post(url("widevine", playback.token), content=b"challenge")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == returned, upstream
        assert response.headers["x-content-type-options"] == "nosniff"


async def test_token_in_the_header(
    drm: DrmServer, playback: Playback, keys_client: httpx.AsyncClient
) -> None:
    response = await keys_client.post(
        url("widevine", None), content=b"challenge", headers={"x-delivery-token": playback.token}
    )
    assert response.status_code == 200, response.text
    assert drm.received[-1].query == "" and playback.token not in str(drm.received[-1].headers)
