"""The dev server routes exactly as vercel.json does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from shared.local.routing import compile_source, load_rewrites, resolve
from shared.settings import REPO_ROOT


@pytest.mark.parametrize(
    ("source", "path", "matches"),
    [
        ("/api/v1/health/:path*", "/api/v1/health", True),
        ("/api/v1/health/:path*", "/api/v1/health/openapi.json", True),
        ("/api/v1/health/:path*", "/api/v1/healthz", False),
        ("/api/v1/catalog/:id", "/api/v1/catalog/42", True),
        ("/api/v1/catalog/:id", "/api/v1/catalog/42/x", False),
        ("/api/v1/(auth|users)/(.*)", "/api/v1/users/me", True),
        ("/api/v1/(auth|users)/(.*)", "/api/v1/media/x", False),
        # Nested groups and lookaheads (path-to-regexp 6 allows them), escaped characters.
        ("/((?!api/|assets/).*)", "/", True),
        ("/((?!api/|assets/).*)", "/title/", True),
        ("/((?!api/|assets/).*)", "/assets/app.js", False),
        ("/((?!api/|assets/).*)", "/api/v1/health", False),
        ("/(.*)\\.html", "/dev/player.html", True),
        ("/(.*)\\.html", "/dev/playerxhtml", False),
    ],
)
def test_path_to_regexp_subset(source: str, path: str, matches: bool) -> None:
    assert bool(compile_source(source).match(path)) is matches


@pytest.mark.parametrize("source", ["/(a", "/(a)?", "/{a}"])
def test_unsupported_sources_fail_fast(source: str) -> None:
    with pytest.raises(ValueError):
        compile_source(source)


def test_every_rewrite_of_vercel_json_is_resolved_to_its_module() -> None:
    config = json.loads((REPO_ROOT / "vercel.json").read_text())
    rewrites = load_rewrites(REPO_ROOT / "vercel.json")
    assert len(rewrites) == len(config["rewrites"])
    assert resolve(rewrites, "/api/v1/health").module == "api.health"  # type: ignore[union-attr]
    assert resolve(rewrites, "/api/v1/openapi.json").module == "api.openapi"  # type: ignore[union-attr]
    assert resolve(rewrites, "/somewhere/else") is None


@pytest.fixture
async def dev_client() -> AsyncIterator[httpx.AsyncClient]:
    from shared.local.devserver import DevServer

    server = DevServer()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=server), base_url="http://localhost:3000"
    ) as c:
        yield c


async def test_dev_server_dispatches_functions_static_and_unknown(dev_client: httpx.AsyncClient) -> None:
    health = await dev_client.get("/api/v1/health")
    assert health.status_code == 200 and health.json()["status"] == "pass"
    merged = (await dev_client.get("/api/v1/openapi.json")).json()
    assert "/api/v1/health" in merged["paths"] and "/api/v1/maintenance/daily" in merged["paths"]
    page = await dev_client.get("/")
    assert page.status_code == 200 and "Cinema Online" in page.text
    # No fallback to index.html: vercel.json has none either, so local and production answer alike.
    assert (await dev_client.get("/browse/comedies")).status_code == 404
    missing_asset = await dev_client.get("/assets/missing.js")
    assert missing_asset.status_code == 404
    missing = await dev_client.get("/api/v1/nothing")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def test_merged_openapi_lists_every_group() -> None:
    import api.openapi

    modules = {p.stem for p in (REPO_ROOT / "api").glob("*.py") if not p.stem.startswith("_")}
    assert set(api.openapi.GROUPS) == modules - {"openapi"}
