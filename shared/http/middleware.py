"""Pure ASGI middleware (cheaper than BaseHTTPMiddleware): request ids, access logs, body limits."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import PayloadTooLarge
from shared.http.logging import request_id_var
from shared.http.problems import internal_error_response, problem_response

access_log = logging.getLogger("cinema.access")
error_log = logging.getLogger("cinema.http")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name in (b"x-request-id", b"x-vercel-id"):
            candidate: str = value.decode("latin-1")
            if _SAFE_ID.match(candidate):
                return candidate
    return None


class RequestContextMiddleware:
    """Give every request an id (kept from X-Request-ID when sane), echo it, and log one access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap one request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        started_response = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                # API answers carry tokens and personal data: no shared or browser cache keeps them unless
                # the endpoint says otherwise (JWKS, OpenAPI, signed media set their own Cache-Control).
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Logged with its traceback for the engineer on call; the client sees only the request id.
            error_log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if started_response:
                raise
            await internal_error_response(scope["path"])(scope, receive, send_with_id)
        finally:
            access_log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)


class BodySizeLimitMiddleware:
    """Refuse bodies over the limit with 413, by Content-Length up front or by counting streamed bytes."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check one request's body size."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    await self._refuse(scope, receive, send)
                    return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Starlette's HTTPException: FastAPI's body parser turns any other error into a 400.
                    raise HTTPException(status_code=413, detail=self._detail())
            return message

        await self.app(scope, counting_receive, send)

    def _detail(self) -> str:
        return f"Request bodies are limited to {self.max_bytes} bytes; upload media through a presigned URL."

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            status=PayloadTooLarge.status,
            code=PayloadTooLarge.code,
            title=PayloadTooLarge.title,
            detail=self._detail(),
            instance=scope["path"],
            headers={"connection": "close"},
        )
        await response(scope, receive, send)
