"""Local stand-in for Vercel and the CDN: functions routed by vercel.json, storage URLs, the web client."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.problems import problem_response
from shared.local.routing import headers_for, load_header_rules, load_rewrites, resolve
from shared.settings import REPO_ROOT

STORAGE_PREFIX = "/_storage"
DELIVERY_PREFIX = "/t/"  # signed media delivery, as the Cloudflare Worker serves it in production


class DevServer:
    """Dispatch each request to the api module vercel.json names, or to storage, or to public/.

    Functions and public/ answer with vercel.json's `headers` too (e.g. the static files' Cache-Control);
    storage and delivery stand in for other services (object storage, the CDN worker), so they do not.
    """

    def __init__(self, root: Path = REPO_ROOT, public: Path | None = None) -> None:
        """Serve root's vercel.json functions and `public` (default root/public; or a built copy of it)."""
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))  # api/ is imported from the project root, as on Vercel
        self.rewrites = load_rewrites(root / "vercel.json")
        self.header_rules = load_header_rules(root / "vercel.json")
        self.apps: dict[str, ASGIApp] = {}
        for rewrite in self.rewrites:
            if rewrite.module and rewrite.module not in self.apps:
                self.apps[rewrite.module] = importlib.import_module(rewrite.module).app
        from shared.infra.storage.local_http import app as storage_app

        self.storage_app = storage_app
        from shared.delivery.edge import DeliveryEdge

        self.delivery_app = DeliveryEdge(self.api_app)
        public = root / "public" if public is None else public
        self.static = StaticFiles(directory=public, html=True, check_dir=False) if public.exists() else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one request."""
        if scope["type"] == "lifespan":
            message = await receive()
            while message["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
                message = await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        path: str = scope.get("path", "/")
        if path.startswith(STORAGE_PREFIX + "/"):
            await self.storage_app(scope, receive, send)
            return
        if path.startswith(DELIVERY_PREFIX):
            await self.delivery_app(scope, receive, send)
            return
        extra = headers_for(self.header_rules, path)
        if extra:
            send = _with_headers(send, extra)
        rewrite = resolve(self.rewrites, path)
        if rewrite and rewrite.module:
            await self.apps[rewrite.module](scope, receive, send)
            return
        if path.startswith("/api/") or self.static is None:
            response = problem_response(
                status=404, code="not_found", title="Not found", detail=f"No function serves {path}."
            )
            await response(scope, receive, send)
            return
        try:
            await self.static(scope, receive, send)
        except HTTPException as error:
            response = problem_response(
                status=error.status_code,
                code="not_found" if error.status_code == 404 else "http_error",
                title="Not found" if error.status_code == 404 else "HTTP error",
                detail=f"Nothing is served at {path}.",
            )
            await response(scope, receive, send)

    def api_app(self, path: str) -> ASGIApp | None:
        """The api module's app that vercel.json routes `path` to, if any."""
        rewrite = resolve(self.rewrites, path)
        return self.apps.get(rewrite.module) if rewrite and rewrite.module else None


def _with_headers(send: Send, extra: dict[str, str]) -> Send:
    """`send` setting the given headers (lower-case names) on the response, replacing the app's own."""
    names = {name.encode("latin-1") for name in extra}
    added = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in extra.items()]

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            kept = [(name, value) for name, value in message.get("headers", []) if name.lower() not in names]
            message = {**message, "headers": kept + added}
        await send(message)

    return sending


def create_dev_app() -> DevServer:
    """Factory for uvicorn (--factory)."""
    return DevServer()
