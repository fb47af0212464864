"""A local Upstash REST endpoint in front of a real Redis server, for driving the upstash-redis SDK in tests.

It speaks what the SDK sends and expects (upstash_redis/http.py):
- POST / with a JSON array command -> {"result": ...}; a Redis error -> HTTP 400 {"error": "ERR ..."}.
- POST /pipeline and /multi-exec with a JSON array of commands -> a list of {"result"} / {"error"} (the
  second inside MULTI/EXEC, so atomic).
- `Authorization: Bearer <token>` is required: HTTP 401 {"error": "WRONGPASS invalid or missing auth token"}.
- `Upstash-Encoding: base64` base64-encodes every string result, recursively in arrays, except the literal
  "OK" status reply, which the SDK passes through undecoded.
Commands are forwarded with redis-py to the real server: bytes in, bytes out, raw replies (no redis-py
response callbacks) and error replies exactly as the server wrote them.
Every request is recorded, so tests can check what the SDK sent.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import redis.asyncio
from redis._parsers import _AsyncRESP2Parser
from redis.asyncio.connection import ConnectionPool
from redis.exceptions import ResponseError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.threaded_server import ThreadedServer

UNAUTHORIZED = "WRONGPASS invalid or missing auth token"


class _RawErrorParser(_AsyncRESP2Parser):
    """redis-py's RESP2 parser, but error replies keep their full text ("ERR ...", "NOSCRIPT ...")."""

    @classmethod
    def parse_error(cls, response: str) -> ResponseError:
        return ResponseError(response)


@dataclass(frozen=True)
class Received:
    """One request as the bridge got it."""

    path: str
    headers: dict[str, str]
    body: Any


class BridgeError(Exception):
    """A request the bridge refuses, answered as Upstash would."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _argument(value: Any) -> str | int | float:
    if isinstance(value, bool) or value is None or isinstance(value, list | dict):
        return json.dumps(value)
    if isinstance(value, str | int | float):
        return value
    raise BridgeError("ERR failed to parse command")


def _command(body: Any) -> list[str | int | float]:
    if not isinstance(body, list) or not body or not isinstance(body[0], str):
        raise BridgeError("ERR failed to parse command")
    return [_argument(value) for value in body]


def _encode(value: Any, base64_strings: bool) -> Any:
    """A RESP2 reply as JSON, strings base64-encoded when asked (the "OK" status left as is)."""
    if isinstance(value, ResponseError):  # an error nested in an array reply (EXEC, Lua pcall tables)
        value = str(value).encode()
    if isinstance(value, bytes):
        if value == b"OK":
            # Status and bulk "OK" look alike through redis-py; the SDK reads "OK" as "OK" either way.
            return "OK"
        return base64.b64encode(value).decode("ascii") if base64_strings else value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [_encode(item, base64_strings) for item in value]
    return value  # int or None: RESP2 has nothing else


def _entry(value: Any, base64_strings: bool) -> dict[str, Any]:
    if isinstance(value, ResponseError):
        return {"error": str(value)}
    return {"result": _encode(value, base64_strings)}


def create_app(redis_url: str, token: str, received: list[Received]) -> Starlette:
    """The REST app forwarding to the Redis server at redis_url."""
    clients: list[redis.asyncio.Redis] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = ConnectionPool.from_url(
            redis_url, protocol=2, parser_class=_RawErrorParser, decode_responses=False
        )
        client = redis.asyncio.Redis.from_pool(pool)
        client.response_callbacks.clear()  # raw replies: what the server sent is what Upstash relays
        clients.append(client)
        yield
        await client.aclose()

    async def read(request: Request) -> tuple[Any, bool]:
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        received.append(Received(request.url.path, dict(request.headers), body))
        supplied = request.headers.get("authorization", "")
        if not hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode()):
            raise BridgeError(UNAUTHORIZED, status=401)
        if body is None:
            raise BridgeError("ERR failed to parse command")
        return body, request.headers.get("upstash-encoding", "").lower() == "base64"

    async def single(request: Request) -> JSONResponse:
        try:
            body, base64_strings = await read(request)
            command = _command(body)
        except BridgeError as error:
            return JSONResponse({"error": error.message}, status_code=error.status)
        try:
            result = await clients[0].execute_command(*command)  # type: ignore[no-untyped-call]
        except ResponseError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse({"result": _encode(result, base64_strings)})

    async def batch(request: Request, transaction: bool) -> JSONResponse:
        try:
            body, base64_strings = await read(request)
            if not isinstance(body, list) or not body:
                raise BridgeError("ERR failed to parse pipeline request")
            commands = [_command(item) for item in body]
        except BridgeError as error:
            return JSONResponse({"error": error.message}, status_code=error.status)
        pipe = clients[0].pipeline(transaction=transaction)
        for command in commands:
            pipe.execute_command(*command)
        try:
            results = await pipe.execute(raise_on_error=False)
        except ResponseError as error:  # EXECABORT: a command was refused while queueing
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse([_entry(result, base64_strings) for result in results])

    async def pipeline(request: Request) -> JSONResponse:
        return await batch(request, transaction=False)

    async def multi_exec(request: Request) -> JSONResponse:
        return await batch(request, transaction=True)

    return Starlette(
        routes=[
            Route("/", single, methods=["POST"]),
            Route("/pipeline", pipeline, methods=["POST"]),
            Route("/multi-exec", multi_exec, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


class UpstashBridge(ThreadedServer):
    """The REST app served by uvicorn on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, redis_url: str, token: str | None = None) -> None:
        self.token = token or secrets.token_urlsafe(24)
        self.received: list[Received] = []
        super().__init__(
            create_app(redis_url, self.token, self.received),
            label="the Upstash bridge",
            thread_name="upstash-bridge",
            lifespan="on",
        )

    def commands(self) -> list[list[Any]]:
        """Every command received so far (pipelines flattened), in arrival order."""
        found: list[list[Any]] = []
        for request in list(self.received):
            if request.path == "/" and isinstance(request.body, list):
                found.append(request.body)
            elif isinstance(request.body, list):
                found.extend(item for item in request.body if isinstance(item, list))
        return found


__all__ = ["UNAUTHORIZED", "Received", "UpstashBridge", "create_app"]
