"""The dev server's stand-in for the Cloudflare Worker: `/t/<token>/<storage key>` checked, then served.

The same rules as edge/cloudflare/worker.js: the token must be authentic, unexpired and open the path
(shared.delivery.tokens.verify: the asset's prefix, no stored master, no rendition above the token's
quality cap); the object then streams from storage with the Content-Type a player expects and
CDN-friendly caching (segments, init segments, WebVTT, images immutable for a year; playlists and MPDs
briefly, as the pipeline rewrites them when rungs or subtitles are added).
`<...>/hls/keys/hls.key` (the key URI of every media playlist, resolved under the token) is answered by the
API's key endpoint (`GET /api/v1/streaming/keys/<asset>/hls.key`, the token in the X-Delivery-Token
header and, until every key endpoint reads the header, in `?token=`), which checks the live session.

One difference with the Worker: here the raw request path is checked, and any '%' or backslash in it is
refused; the Worker sees the URL after WHATWG parsing (dot segments resolved, a backslash read as '/', '%2e'
as '.') and checks what is left the same way (refusing any remaining '%' or backslash), so a trick there
can at most name another file the token already opens.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.utils import formatdate
from typing import TYPE_CHECKING

from starlette.responses import Response

from shared.delivery.tokens import TokenError, delivery_secret, split_token_path, verify
from shared.http.problems import problem_response

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

SEGMENT_CACHE = "public, max-age=31536000, immutable"  # never rewritten under the same name
PLAYLIST_CACHE = "public, max-age=60"  # rewritten when phase 2 adds rungs or subtitles change
KEY_PATH = re.compile(r"media/assets/(?P<asset>[0-9a-f-]{36})/hls/keys/hls\.key")
TOKEN_HEADER = "x-delivery-token"  # noqa: S105 - a header name; how the key request carries the token to the API
# The token in the path is the capability (no cookies): any origin may read, as from the CDN.
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges, ETag",
}
PREFLIGHT = {
    **CORS,
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Range, If-None-Match",
    "Access-Control-Max-Age": "86400",
}

ApiResolver = Callable[[str], "ASGIApp | None"]


def cache_control_for(key: str) -> str:
    """Playlists and MPDs briefly, everything else (segments, init, WebVTT, images) for a year."""
    return PLAYLIST_CACHE if key.endswith((".m3u8", ".mpd")) else SEGMENT_CACHE


def key_endpoint(asset_id: str) -> str:
    """The API path answering an asset's HLS key."""
    return f"/api/v1/streaming/keys/{asset_id}/hls.key"


class DeliveryEdge:
    """ASGI app for `/t/<token>/<key>`; `api` maps an API path to the app that serves it (key requests)."""

    def __init__(self, api: ApiResolver, *, clock: Callable[[], float] | None = None) -> None:
        self.api = api
        self.clock = clock  # None: playback's one clock, shared.streaming.sessions.clock

    def now(self) -> int:
        """Unix seconds, from the given clock or playback's (looked up per call: tests move it)."""
        if self.clock is not None:
            return int(self.clock())
        from shared.streaming.sessions import clock

        return int(clock())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Verify, then serve from storage or hand the key request to the API."""
        method = scope.get("method", "GET")
        path: str = scope.get("path", "")
        parts = split_token_path(path)
        raw = scope.get("raw_path") or path.encode()
        response: Response | None
        if method == "OPTIONS":
            response = Response(status_code=204, headers=PREFLIGHT)
        elif method not in ("GET", "HEAD"):
            response = _problem(405, "method_not_allowed", "Only GET and HEAD are served here.")
            response.headers["Allow"] = "GET, HEAD, OPTIONS"
        elif parts is None:
            response = _problem(404, "not_found", "Nothing is served at this path.")
        elif b"%" in raw or b"\\" in raw:
            # Percent-escapes were decoded before we see the path: refuse them rather than guess what a
            # second decoding (a proxy, the storage) would make of '%2F' or '%2e%2e'.
            response = _problem(403, "wrong_asset", "The delivery token does not open this path.")
        else:
            response = await self._serve(scope, receive, send, *parts)
        if response is not None:  # None: the key endpoint answered
            await response(scope, receive, send)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, token: str, key: str
    ) -> Response | None:
        from shared.settings import get_settings

        try:
            verify(token, key, secret=delivery_secret(get_settings()), now=self.now())
        except TokenError as error:
            return _problem(403, error.code, error.detail)
        match = KEY_PATH.fullmatch(key)
        if match:
            await self._forward_key(scope, receive, send, token, match["asset"])
            return None
        return await _object_response(scope, key)

    async def _forward_key(self, scope: Scope, receive: Receive, send: Send, token: str, asset: str) -> None:
        """Run the API's key endpoint for this request, as the Worker forwards it to API_ORIGIN."""
        path = key_endpoint(asset)
        app = self.api(path)
        if app is None:
            await _problem(404, "not_found", "No function serves the key endpoint.")(scope, receive, send)
            return
        forwarded = dict(scope)
        header = TOKEN_HEADER.encode()
        headers = [(name, value) for name, value in scope.get("headers", []) if name.lower() != header]
        forwarded.update(
            path=path,
            raw_path=path.encode(),
            query_string=f"token={token}".encode(),
            headers=[*headers, (header, token.encode())],
        )
        await app(forwarded, receive, send)


async def _object_response(scope: Scope, key: str) -> Response:
    """The stored object with delivery headers (Range and If-None-Match honoured on local storage)."""
    from shared.errors import AppError, NotFound
    from shared.infra.storage import LocalStorage, get_storage
    from shared.infra.storage.local_http import parse_range, ranged_response
    from shared.transcoding.publish import content_type_of

    headers = {
        "Cache-Control": cache_control_for(key),
        "X-Content-Type-Options": "nosniff",
        "Accept-Ranges": "bytes",
        **CORS,
    }
    media_type = content_type_of(key)
    request_headers = {name.decode().lower(): value.decode() for name, value in scope.get("headers", [])}
    storage = await get_storage()
    try:
        if not isinstance(storage, LocalStorage):
            # The dev server on S3 storage (rare): whole objects, small ones (playlists, segments).
            data = await storage.get_bytes(key)
            return Response(data, media_type=media_type, headers=headers)
        opened = await storage.open_object(key)
    except NotFound:
        return _problem(404, "not_found", "No such media file.", cache=True)
    info = opened.info
    headers |= {"ETag": info.etag, "Last-Modified": formatdate(opened.modified, usegmt=True)}
    if_none_match = request_headers.get("if-none-match")
    if if_none_match and info.etag in [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]:
        opened.file.close()
        return Response(status_code=304, headers=headers)
    try:
        byte_range = parse_range(request_headers.get("range"), info.size)
    except AppError as error:
        opened.file.close()
        return _problem(error.status, error.code, error.detail, extra_headers=error.headers)
    method = scope.get("method", "GET")
    return ranged_response(opened, byte_range, method=method, headers=headers, media_type=media_type)


def _problem(
    status: int,
    code: str,
    detail: str,
    *,
    cache: bool = False,
    extra_headers: dict[str, str] | None = None,
) -> Response:
    # Refusals are per token: never cached. A missing file may be briefly (it appears once published).
    headers = {"Cache-Control": "public, max-age=5" if cache else "no-store", **CORS, **(extra_headers or {})}
    title = code.replace("_", " ").capitalize()
    # No `instance`: the request path carries the token, which has no business in a response or a log.
    return problem_response(status=status, code=code, title=title, detail=detail, headers=headers)
