"""A local stand-in for Cloudflare's cache purge API (POST /client/v4/zones/{zone}/purge_cache).

It answers the way Cloudflare documents it:
- `Authorization: Bearer <api token>` must match, else 403 with error code 10000 (Authentication error).
- The zone must be the configured one, else 404 with error code 7003 (could not route).
- The JSON body must name exactly one of `files`, `tags`, `hosts`, `prefixes`, `purge_everything`;
  `tags` must be 1 to 30 non-empty strings of at most 1024 characters, else 400 with code 1012.
- A good request gets 200 `{"success": true, "errors": [], "messages": [], "result": {"id": ...}}`.
- `fail_next(status, times)` makes the next requests answer that status instead.
Every request is recorded (path, headers, parsed body, the status answered) so tests check what was sent.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.threaded_server import ThreadedServer

MAX_TAGS = 30
_KINDS = ("files", "tags", "hosts", "prefixes", "purge_everything")


@dataclass(frozen=True)
class Received:
    """One request as the server got it, with the status it answered."""

    method: str
    path: str
    zone: str
    headers: dict[str, str]
    body: Any
    status: int


def _failure(status: int, code: int, message: str) -> JSONResponse:
    body = {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None}
    return JSONResponse(body, status_code=status)


def body_error(body: Any) -> str | None:
    """Why Cloudflare would refuse this purge body (None when it would accept it)."""
    if not isinstance(body, dict):
        return "Invalid JSON body"
    kinds = [kind for kind in _KINDS if kind in body]
    if len(kinds) != 1 or set(body) - set(_KINDS):
        return "Exactly one purge type is required"
    if kinds == ["tags"]:
        tags = body["tags"]
        if not isinstance(tags, list) or not 1 <= len(tags) <= MAX_TAGS:
            return f"tags must be a list of 1 to {MAX_TAGS} tags"
        if not all(isinstance(tag, str) and 0 < len(tag) <= 1024 for tag in tags):
            return "each tag must be a non-empty string of at most 1024 characters"
    return None


class CloudflareServer(ThreadedServer):
    """The fake API served by uvicorn on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, *, zone_id: str | None = None, api_token: str | None = None) -> None:
        self.zone_id = zone_id or secrets.token_hex(16)
        self.api_token = api_token or secrets.token_urlsafe(30)
        self.received: list[Received] = []
        self._failures: list[int] = []
        self._lock = threading.Lock()
        app = Starlette(routes=[Route("/client/v4/zones/{zone}/purge_cache", self._purge, methods=["POST"])])
        super().__init__(
            app, label="the Cloudflare test server", thread_name="cloudflare-server", path="/client/v4"
        )

    def fail_next(self, status: int, *, times: int = 1) -> None:
        """Answer the next `times` purges with this status (Cloudflare's error body) instead of 200."""
        with self._lock:
            self._failures.extend([status] * times)

    def reset(self) -> None:
        """Forget recorded requests and pending failures."""
        with self._lock:
            self.received.clear()
            self._failures.clear()

    def purged_tags(self) -> list[str]:
        """Every tag of the purges answered 200, in order."""
        return [
            tag for request in list(self.received) if request.status == 200 for tag in request.body["tags"]
        ]

    async def _purge(self, request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = {key.lower(): value for key, value in request.headers.items()}
        zone = request.path_params["zone"]
        response = self._answer(zone, headers, body)
        with self._lock:
            self.received.append(
                Received(request.method, request.url.path, zone, headers, body, response.status_code)
            )
        return response

    def _answer(self, zone: str, headers: dict[str, str], body: Any) -> JSONResponse:
        if headers.get("authorization") != f"Bearer {self.api_token}":
            return _failure(403, 10000, "Authentication error")
        if zone != self.zone_id:
            return _failure(
                404, 7003, "Could not route to /zones/purge_cache, perhaps your object identifier is invalid?"
            )
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            return _failure(failure, 1000 + failure, f"simulated {failure}")
        if not headers.get("content-type", "").startswith("application/json"):
            return _failure(400, 1012, "Request must be JSON")
        error = body_error(body)
        if error is not None:
            return _failure(400, 1012, error)
        result = {"id": secrets.token_hex(16)}
        return JSONResponse({"success": True, "errors": [], "messages": [], "result": result})


__all__ = ["MAX_TAGS", "CloudflareServer", "Received", "body_error"]
