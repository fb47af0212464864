"""A local stand-in for Cloudinary's Upload and Admin APIs, for driving the real `cloudinary` SDK in tests.

It answers what the avatar flow uses, the way Cloudinary does (paths as the SDK builds them with
upload_prefix: {prefix}/v1_1/{cloud}/...):
- POST /v1_1/{cloud}/image/upload: the browser's signed direct upload (multipart/form-data). The signature
  must be sha1 of the sorted "k=v" pairs of every non-empty parameter except file, api_key,
  resource_type, cloud_name and signature, joined by "&" ("&" inside a value sent as "%26"), followed
  by the API secret; the timestamp must be under an hour old; the file must be an image whose format is
  in allowed_formats. The answer carries public_id, version, format, bytes, width, height and the
  response signature sha1("public_id=...&version=..." + secret). With overwrite=false an existing
  public_id is not replaced: the existing asset comes back with "existing": true.
- POST /v1_1/{cloud}/image/destroy: the SDK's signed delete.
- GET /v1_1/{cloud}/resources/image/upload/{public_id}: the Admin API (HTTP basic auth key:secret).
- GET /v1_1/{cloud}/resources/image/upload?prefix=&max_results=&next_cursor=: the Admin API listing. With a
  prefix Cloudinary sorts by public_id; max_results defaults to 10 and may not pass 500; next_cursor is
  in the answer only while more pages follow.
- DELETE /v1_1/{cloud}/resources/image/upload: the Admin API's delete by public_ids (the SDK sends them as a
  JSON body; public_ids[] in the query or a form works too), at most 100 per call; the answer maps each id
  to "deleted" or "not_found". Delete by prefix or "all" is refused here: nothing of ours sends it.
`failing(...)` makes chosen requests answer an error, as an outage would. Errors are
{"error": {"message": ...}} with Cloudinary's statuses. Every request is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.threaded_server import ThreadedServer

UNSIGNED_PARAMS = frozenset({"file", "api_key", "resource_type", "cloud_name", "signature"})
MAX_TIMESTAMP_AGE = 3600
DEFAULT_MAX_RESULTS = 10
MAX_RESULTS = 500
MAX_DELETE_IDS = 100


@dataclass(frozen=True)
class Received:
    """One request as the server got it, with the status it answered."""

    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, str]
    status: int


def string_to_sign(params: dict[str, str]) -> str:
    """Cloudinary's canonical string of the signed parameters (signature version 2)."""
    pairs = [
        f"{key}={value}".replace("&", "%26")
        for key, value in params.items()
        if key not in UNSIGNED_PARAMS and value != ""
    ]
    return "&".join(sorted(pairs))


def sign(params: dict[str, str], secret: str) -> str:
    """The request signature Cloudinary expects."""
    return hashlib.sha1((string_to_sign(params) + secret).encode()).hexdigest()


def response_signature(public_id: str, version: int, secret: str) -> str:
    """The signature Cloudinary puts on an upload answer (checked by verify_api_response_signature)."""
    return hashlib.sha1(f"public_id={public_id}&version={version}{secret}".encode()).hexdigest()


def image_info(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) of a PNG, JPEG, WebP or GIF, as Cloudinary detects it, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height
    if data.startswith(b"GIF8") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return "gif", width, height
    if len(data) >= 30 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        chunk = data[12:16]
        if chunk == b"VP8X":
            width = int.from_bytes(data[24:27], "little") + 1
            height = int.from_bytes(data[27:30], "little") + 1
            return "webp", width, height
        if chunk == b"VP8 ":
            width, height = struct.unpack("<HH", data[26:30])
            return "webp", width & 0x3FFF, height & 0x3FFF
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return "webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        return None
    if data.startswith(b"\xff\xd8\xff"):
        index = 2
        while index + 9 < len(data):
            if data[index] != 0xFF:
                return None
            marker = data[index + 1]
            length = int.from_bytes(data[index + 2 : index + 4], "big")
            if marker in (0xC0, 0xC1, 0xC2):
                height, width = struct.unpack(">HH", data[index + 5 : index + 9])
                return "jpg", width, height
            index += 2 + length
        return "jpg", 0, 0
    return None


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status_code=status)


class CloudinaryServer(ThreadedServer):
    """The fake API served by uvicorn on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, cloud_name: str = "cinema-test", api_key: str | None = None) -> None:
        self.cloud_name = cloud_name
        self.api_key = api_key or str(secrets.randbelow(10**15)).zfill(15)
        self.api_secret = secrets.token_urlsafe(20)
        self.resources: dict[str, dict[str, Any]] = {}
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._last_version = 0
        self._failures: list[tuple[str, str | None, int]] = []  # (path fragment, method, status)
        app = Starlette(
            routes=[
                Route("/v1_1/{cloud}/image/upload", self._upload, methods=["POST"]),
                Route("/v1_1/{cloud}/image/destroy", self._destroy, methods=["POST"]),
                Route("/v1_1/{cloud}/resources/image/upload", self._list, methods=["GET"]),
                Route("/v1_1/{cloud}/resources/image/upload", self._delete, methods=["DELETE"]),
                Route(
                    "/v1_1/{cloud}/resources/image/upload/{public_id:path}", self._resource, methods=["GET"]
                ),
            ]
        )
        super().__init__(app, label="the Cloudinary test server", thread_name="cloudinary-server")

    @property
    def cloudinary_url(self) -> str:
        """CLOUDINARY_URL for this server's account."""
        return f"cloudinary://{self.api_key}:{self.api_secret}@{self.cloud_name}"

    def requests_to(self, fragment: str, method: str | None = None) -> list[Received]:
        """Recorded requests whose path contains `fragment`."""
        with self._lock:
            return [
                request
                for request in self.received
                if fragment in request.path and (method is None or request.method == method)
            ]

    def add(self, public_id: str, data: bytes) -> dict[str, Any]:
        """Store an image as an upload would (for a test's setup); its resource."""
        info = image_info(data)
        if info is None:
            raise ValueError("not an image")
        image_format, width, height = info
        resource = {
            "asset_id": secrets.token_hex(16),
            "public_id": public_id,
            "version": self._next_version(),
            "version_id": secrets.token_hex(16),
            "format": image_format,
            "resource_type": "image",
            "type": "upload",
            "bytes": len(data),
            "width": width,
            "height": height,
            "etag": hashlib.md5(data, usedforsecurity=False).hexdigest(),
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "data": data,
        }
        with self._lock:
            self.resources[public_id] = resource
        return resource

    @contextmanager
    def failing(self, fragment: str, method: str | None = None, status: int = 500) -> Iterator[None]:
        """Inside the block, requests whose path contains `fragment` (and of `method`) answer `status`."""
        rule = (fragment, method, status)
        with self._lock:
            self._failures.append(rule)
        try:
            yield
        finally:
            with self._lock:
                self._failures.remove(rule)

    # --- plumbing -----------------------------------------------------------------------------------

    async def _params(self, request: Request) -> tuple[dict[str, str], bytes | None]:
        body = await request.body()
        content_type = request.headers.get("content-type", "")
        params: dict[str, str] = {}
        file: bytes | None = None
        if content_type.startswith("multipart/form-data"):
            message = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
            )
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if not isinstance(name, str) or not isinstance(payload, bytes):
                    continue
                if name == "file":
                    file = payload
                else:
                    params[name] = payload.decode()
        else:
            params = dict(parse_qsl(body.decode(), keep_blank_values=True))
            if "file" in params:
                file = params.pop("file").encode()
        return params, file

    def _record(self, request: Request, params: dict[str, str], response: Response) -> Response:
        headers = {key.lower(): value for key, value in request.headers.items()}
        with self._lock:
            self.received.append(
                Received(request.method, request.url.path, headers, params, response.status_code)
            )
        return response

    def _failure(self, request: Request) -> JSONResponse | None:
        with self._lock:
            for fragment, method, status in self._failures:
                if fragment in request.url.path and method in (None, request.method):
                    return _error("General Error", status)
        return None

    def _check_admin(self, request: Request) -> JSONResponse | None:
        """The Admin API's checks: the account's cloud and HTTP basic auth with key:secret."""
        if request.path_params["cloud"] != self.cloud_name:
            return _error("Invalid cloud_name", 401)
        expected = base64.b64encode(f"{self.api_key}:{self.api_secret}".encode()).decode()
        if not secrets.compare_digest(request.headers.get("authorization", ""), f"Basic {expected}"):
            return _error("Invalid credentials", 401)
        return None

    def _check_signed(self, request: Request, params: dict[str, str]) -> JSONResponse | None:
        if request.path_params["cloud"] != self.cloud_name:
            return _error("Invalid cloud_name " + request.path_params["cloud"], 401)
        if params.get("api_key") != self.api_key:
            return _error(f"Unknown API key {params.get('api_key', '')}", 401)
        if "signature" not in params:
            return _error("Missing required parameter - signature", 400)
        if not params.get("timestamp", "").isdigit():
            return _error("Missing required parameter - timestamp", 400)
        expected = sign(params, self.api_secret)
        if not secrets.compare_digest(params["signature"], expected):
            return _error(
                f"Invalid Signature {params['signature']}. String to sign - '{string_to_sign(params)}'.", 401
            )
        age = time.time() - int(params["timestamp"])
        if age > MAX_TIMESTAMP_AGE:
            return _error(
                f"Stale request - reported time is {params['timestamp']} which is more than 1 hour ago", 400
            )
        return None

    def _next_version(self) -> int:
        with self._lock:
            self._last_version = max(self._last_version + 1, int(time.time()))
            return self._last_version

    # --- endpoints ----------------------------------------------------------------------------------

    async def _upload(self, request: Request) -> Response:
        params, file = await self._params(request)
        return self._record(request, params, self._answer_upload(request, params, file))

    def _answer_upload(self, request: Request, params: dict[str, str], file: bytes | None) -> Response:
        refused = self._failure(request) or self._check_signed(request, params)
        if refused is not None:
            return refused
        if not file:
            return _error("Missing required parameter - file", 400)
        info = image_info(file)
        if info is None:
            return _error("Invalid image file", 400)
        image_format = info[0]
        allowed = [item.strip() for item in params.get("allowed_formats", "").split(",") if item.strip()]
        if allowed and image_format not in allowed:
            return _error(f"Image file format {image_format} not allowed", 400)
        public_id = params.get("public_id") or secrets.token_hex(10)
        if params.get("folder"):
            public_id = f"{params['folder'].strip('/')}/{public_id}"
        existing = self.resources.get(public_id)
        if existing is not None and params.get("overwrite", "true").lower() in ("false", "0"):
            return JSONResponse({**self._describe(existing), "existing": True})
        resource = self.add(public_id, file)
        version = resource["version"]
        return JSONResponse(
            {
                **self._describe(resource),
                "signature": response_signature(public_id, version, self.api_secret),
                "tags": [],
                "placeholder": False,
                "original_filename": "file",
                "api_key": self.api_key,
            }
        )

    async def _destroy(self, request: Request) -> Response:
        params, _ = await self._params(request)
        refused = self._failure(request) or self._check_signed(request, params)
        if refused is not None:
            return self._record(request, params, refused)
        with self._lock:
            removed = self.resources.pop(params.get("public_id", ""), None)
        result = "ok" if removed is not None else "not found"
        return self._record(request, params, JSONResponse({"result": result}))

    async def _resource(self, request: Request) -> Response:
        params = dict(request.query_params)
        return self._record(request, params, self._answer_resource(request))

    def _answer_resource(self, request: Request) -> Response:
        refused = self._failure(request) or self._check_admin(request)
        if refused is not None:
            return refused
        public_id = request.path_params["public_id"]
        resource = self.resources.get(public_id)
        if resource is None:
            return _error(f"Resource not found - {public_id}", 404)
        return JSONResponse({**self._describe(resource), "derived": []})

    async def _list(self, request: Request) -> Response:
        params = dict(request.query_params)
        return self._record(request, params, self._answer_list(request, params))

    def _answer_list(self, request: Request, params: dict[str, str]) -> Response:
        refused = self._failure(request) or self._check_admin(request)
        if refused is not None:
            return refused
        raw_max = params.get("max_results", str(DEFAULT_MAX_RESULTS))
        if not raw_max.isdigit() or not 1 <= int(raw_max) <= MAX_RESULTS:
            return _error(f"Value of max_results must be between 1 and {MAX_RESULTS}", 400)
        prefix = params.get("prefix", "")
        after = ""
        if params.get("next_cursor"):
            try:
                after = base64.urlsafe_b64decode(params["next_cursor"].encode()).decode()
            except ValueError:
                return _error("Invalid next_cursor", 400)
        with self._lock:
            # Sorted by public_id (as Cloudinary does with a prefix); the cursor is the last id handed out,
            # so deletions between pages neither skip nor repeat anything.
            matching = sorted(
                public_id
                for public_id, resource in self.resources.items()
                if public_id.startswith(prefix) and public_id > after and resource["type"] == "upload"
            )
            page = matching[: int(raw_max)]
            shown = [self._describe(self.resources[public_id]) for public_id in page]
        answer: dict[str, Any] = {"resources": shown}
        if len(matching) > len(page):
            answer["next_cursor"] = base64.urlsafe_b64encode(page[-1].encode()).decode()
        return JSONResponse(answer)

    async def _delete(self, request: Request) -> Response:
        body = await request.body()
        ids: Any = request.query_params.getlist("public_ids[]")
        options: dict[str, Any] = dict(request.query_params)
        if body and request.headers.get("content-type", "").startswith("application/json"):
            options = json.loads(body)
            ids = options.get("public_ids", [])
        elif body:
            form = parse_qsl(body.decode(), keep_blank_values=True)
            ids = [value for key, value in form if key == "public_ids[]"]
            options = dict(form)
        recorded = {key: json.dumps(value) for key, value in options.items()}
        return self._record(request, recorded, self._answer_delete(request, options, ids))

    def _answer_delete(self, request: Request, options: dict[str, Any], ids: Any) -> Response:
        refused = self._failure(request) or self._check_admin(request)
        if refused is not None:
            return refused
        if options.get("prefix") or options.get("all"):
            return _error("The stand-in deletes by public_ids only", 400)
        if not isinstance(ids, list) or not ids or not all(isinstance(item, str) for item in ids):
            return _error("Missing required parameter - public_ids", 400)
        if len(ids) > MAX_DELETE_IDS:
            return _error(f"Too many public_ids: at most {MAX_DELETE_IDS} per request", 400)
        deleted: dict[str, str] = {}
        counts: dict[str, dict[str, int]] = {}
        with self._lock:
            for public_id in ids:
                gone = self.resources.pop(public_id, None)
                deleted[public_id] = "deleted" if gone is not None else "not_found"
                counts[public_id] = {"original": int(gone is not None), "derived": 0}
        return JSONResponse({"deleted": deleted, "deleted_counts": counts, "partial": False})

    def _describe(self, resource: dict[str, Any]) -> dict[str, Any]:
        shown = {key: value for key, value in resource.items() if key != "data"}
        name = f"v{resource['version']}/{resource['public_id']}.{resource['format']}"
        path = f"{self.cloud_name}/image/upload/{name}"
        shown["url"] = f"http://res.cloudinary.com/{path}"
        shown["secure_url"] = f"https://res.cloudinary.com/{path}"
        return shown


__all__ = ["CloudinaryServer", "Received", "image_info", "response_signature", "sign", "string_to_sign"]
