"""A local stand-in for a DRM licence server (Widevine / PlayReady / FairPlay key server behind a provider).

Providers (EZDRM, BuyDRM, Axinom, PallyCon, ...) take the CDM's opaque challenge as the raw POST body and
answer the licence as opaque bytes; they authenticate the caller (our proxy) by a header carrying an API
key. This server does the same:
- POST /{system} (any system name): the configured auth header must carry the configured value, else 401
  with a small JSON body (what a misconfigured proxy would get).
- The body must not be empty, else 400.
- When `entitlement_secret` is set, the request must carry `X-Cinema-Entitlement`: an HS256 JWT with that
  secret, unexpired, with sub/sid/aid/kid/iat/exp (kid 32 hex digits) — our proxy's binding of the
  licence to the asset — else 403. Like a provider's licence policy, a PlayReady challenge naming any
  KID (WRMHEADER, read with a regex here: independent of the proxy's parser) other than the token's
  `kid` is refused with 403 too. The decoded claims are recorded.
- A good request gets 200 with `licence` (fixed bytes, `application/octet-stream`, or the type set with
  `answer_type`) so tests compare it.
- `fail_next(status, times)` answers the next requests with that status instead; `delay_next(seconds)`
  waits before answering (for timeouts).
Every request is recorded (system, path, query, headers, raw body, the status answered).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.threaded_server import ThreadedServer


@dataclass(frozen=True)
class Received:
    """One licence request as the server got it, with the status it answered."""

    system: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int
    entitlement: dict[str, Any] | None = None  # the verified claims of X-Cinema-Entitlement


ENTITLEMENT_CLAIMS = ("sub", "sid", "aid", "kid", "iat", "exp")
_PLAYREADY_KID = re.compile(
    rb"<(?:\w+:)?KID(?:\s[^>]*?VALUE=\"([^\"]*)\"[^>]*)?/?>(?:([^<]*)</(?:\w+:)?KID>)?"
)


def playready_kids(body: bytes) -> list[str]:
    """The KIDs (hex, big-endian) a UTF-8 PlayReady challenge names; 'invalid' for a value that is none."""
    kids = []
    for value, text in _PLAYREADY_KID.findall(body):
        for found in (value, text.strip()):
            if found:
                try:
                    kids.append(uuid.UUID(bytes_le=base64.b64decode(found, validate=True)).hex)
                except (binascii.Error, ValueError):
                    kids.append("invalid")
    return kids


class DrmServer(ThreadedServer):
    """The fake licence server on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, *, auth_header: str = "Authorization", auth_value: str | None = None) -> None:
        self.auth_header = auth_header
        self.auth_value = auth_value or f"Bearer {secrets.token_urlsafe(24)}"
        self.licence = b"LICENCE:" + secrets.token_bytes(48)
        self.entitlement_secret: bytes | None = None
        self.received: list[Received] = []
        self._answer_types: list[str] = []
        self._failures: list[int] = []
        self._delays: list[float] = []
        self._lock = threading.Lock()
        app = Starlette(routes=[Route("/{system}", self._licence, methods=["POST"])])
        super().__init__(app, label="the DRM licence test server", thread_name="drm-server")

    def url_for(self, system: str) -> str:
        """The licence URL of one system on this server."""
        return f"{self.url}/{system}"

    def fail_next(self, status: int, *, times: int = 1) -> None:
        """Answer the next `times` requests with this status instead of the licence."""
        with self._lock:
            self._failures.extend([status] * times)

    def delay_next(self, seconds: float) -> None:
        """Wait this long before answering the next request."""
        with self._lock:
            self._delays.append(seconds)

    def answer_type(self, content_type: str) -> None:
        """Answer the next licence with this Content-Type."""
        with self._lock:
            self._answer_types.append(content_type)

    def reset(self) -> None:
        """Forget recorded requests, pending failures, delays and answer types."""
        with self._lock:
            self.received.clear()
            self._failures.clear()
            self._delays.clear()
            self._answer_types.clear()

    async def _licence(self, request: Request) -> Response:
        body = await request.body()
        headers = {key.lower(): value for key, value in request.headers.items()}
        with self._lock:
            delay = self._delays.pop(0) if self._delays else 0.0
        if delay:
            await asyncio.sleep(delay)
        system = request.path_params["system"]
        claims = self._entitlement(headers)
        response = self._answer(system, headers, body, claims)
        with self._lock:
            self.received.append(
                Received(
                    system=system,
                    path=request.url.path,
                    query=request.url.query,
                    headers=headers,
                    body=body,
                    status=response.status_code,
                    entitlement=claims,
                )
            )
        return response

    def _entitlement(self, headers: dict[str, str]) -> dict[str, Any] | None:
        """The verified claims of the entitlement token (None when absent or not valid)."""
        import jwt

        token = headers.get("x-cinema-entitlement")
        if self.entitlement_secret is None or not token:
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.entitlement_secret,
                algorithms=["HS256"],
                options={"require": list(ENTITLEMENT_CLAIMS)},
            )
        except jwt.InvalidTokenError:
            return None
        if not re.fullmatch(r"[0-9a-f]{32}", str(claims["kid"])) or claims["iat"] > time.time() + 5:
            return None
        return claims

    def _answer(
        self, system: str, headers: dict[str, str], body: bytes, claims: dict[str, Any] | None
    ) -> Response:
        if headers.get(self.auth_header.lower()) != self.auth_value:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        if self.entitlement_secret is not None:
            if claims is None:
                return JSONResponse({"error": "missing or invalid entitlement"}, status_code=403)
            if system == "playready" and any(kid != claims["kid"] for kid in playready_kids(body)):
                return JSONResponse({"error": "key id not in the entitlement"}, status_code=403)
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            return JSONResponse({"error": f"simulated {failure}"}, status_code=failure)
        if not body:
            return JSONResponse({"error": "empty challenge"}, status_code=400)
        with self._lock:
            content_type = self._answer_types.pop(0) if self._answer_types else "application/octet-stream"
        return Response(self.licence, headers={"content-type": content_type})


__all__ = ["DrmServer", "Received", "playready_kids"]
