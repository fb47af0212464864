"""Static files answer with vercel.json's Cache-Control through the dev server, and revalidate with ETags."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from shared.local.routing import headers_for, load_header_rules
from shared.settings import REPO_ROOT

PAGE = "no-cache"
ASSET = "public, max-age=300, stale-while-revalidate=86400"
VENDOR = "public, max-age=86400, stale-while-revalidate=604800"


@pytest.mark.parametrize(
    ("path", "cache_control"),
    [
        ("/", PAGE),
        ("/title/", PAGE),
        ("/title", PAGE),
        ("/account/billing/", PAGE),
        ("/dev/player.html", PAGE),
        ("/assets/app.js", ASSET),
        ("/assets/app.css", ASSET),
        ("/vendor/hls.min.js", VENDOR),
        ("/api/v1/catalog/home", None),
        ("/api/v1/health", None),
    ],
)
def test_vercel_json_cache_control_by_path(path: str, cache_control: str | None) -> None:
    headers = headers_for(load_header_rules(REPO_ROOT / "vercel.json"), path)
    assert headers.get("cache-control") == cache_control
    if path.startswith("/api/"):  # the API keeps its own caching and its headers
        assert headers == {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}


def test_a_later_rule_wins_a_header_as_on_vercel(tmp_path: Path) -> None:
    config = tmp_path / "vercel.json"
    config.write_text(
        json.dumps(
            {
                "headers": [
                    {"source": "/(.*)", "headers": [{"key": "Cache-Control", "value": "no-store"}]},
                    {"source": "/static/:file*", "headers": [{"key": "cache-control", "value": "max-age=9"}]},
                ]
            }
        )
    )
    rules = load_header_rules(config)
    assert headers_for(rules, "/static/a/b.js") == {"cache-control": "max-age=9"}
    assert headers_for(rules, "/page/") == {"cache-control": "no-store"}


@pytest.fixture
async def dev_client() -> AsyncIterator[httpx.AsyncClient]:
    from shared.local.devserver import DevServer

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=DevServer()), base_url="http://localhost:3000"
    ) as client:
        yield client


async def _revalidates(client: httpx.AsyncClient, path: str, cache_control: str) -> None:
    first = await client.get(path)
    assert first.status_code == 200, path
    assert first.headers["cache-control"] == cache_control
    etag = first.headers["etag"]
    again = await client.get(path, headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and again.headers["cache-control"] == cache_control
    # A stale tag (the file changed since) gets the whole file again.
    changed = await client.get(path, headers={"if-none-match": '"0123456789abcdef"'})
    assert changed.status_code == 200 and changed.content == first.content


async def test_dev_server_serves_pages_assets_and_vendor_files_with_their_caching(
    dev_client: httpx.AsyncClient,
) -> None:
    await _revalidates(dev_client, "/", PAGE)
    await _revalidates(dev_client, "/title/", PAGE)
    assert (await dev_client.get("/title/")).headers["content-type"].startswith("text/html")
    await _revalidates(dev_client, "/assets/app.js", ASSET)
    vendor = sorted(p for p in (REPO_ROOT / "public" / "vendor").glob("*.js"))
    if not vendor:
        pytest.skip("public/vendor/ is empty: `make` (npm run vendor) copies hls.js and dash.js there")
    await _revalidates(dev_client, f"/vendor/{vendor[0].name}", VENDOR)


async def test_dev_server_keeps_the_api_headers(dev_client: httpx.AsyncClient) -> None:
    health = await dev_client.get("/api/v1/health")
    assert health.status_code == 200
    assert health.headers["x-content-type-options"] == "nosniff"
    assert health.headers["referrer-policy"] == "no-referrer"
    assert "public, max-age=300" not in health.headers.get("cache-control", "")
    # Unknown functions are 404 problems with the API's headers; a missing page is not cached for long.
    missing = await dev_client.get("/api/v1/nothing")
    assert missing.status_code == 404 and missing.headers["x-content-type-options"] == "nosniff"
    gone = await dev_client.get("/no-such-page/")
    assert gone.status_code == 404 and gone.headers["cache-control"] == PAGE
