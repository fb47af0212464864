"""CDN cache headers of the public catalog, and invalidation: Redis version and Cloudflare purge by tag."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
import pytest

from shared.catalog import cache
from tests.catalog.conftest import CATALOG, Viewers
from tests.support import catalog_factory as make
from tests.support.cloudflare_server import CloudflareServer


async def test_anonymous_answers_are_cacheable_signed_in_ones_are_not(
    db: Any, catalog: httpx.AsyncClient, viewers: Viewers, settings_env: Any
) -> None:
    settings_env(CATALOG_CACHE_SECONDS="120")
    series = await make.title(db, "Cached", kind="series")
    await make.season(db, series, 1, episodes=1)
    public = "public, s-maxage=120, stale-while-revalidate=300, max-age=0"
    lists = ["/titles", "/home", "/genres", "/categories"]
    pages = [f"/titles/{series}", f"/titles/{series}/seasons/1"]
    for path in lists + pages:
        response = await catalog.get(CATALOG + path)
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == public, path
        vary = {value.strip().lower() for value in response.headers["vary"].split(",")}
        assert {"x-vercel-ip-country", "authorization"} <= vary, path
        tags = response.headers["cache-tag"].split(",")
        assert tags[0] == "catalog"
        assert (f"title:{series}" in tags) == (path in pages), path
        assert ("catalog:lists" in tags) == (path in lists), path
        for headers in (viewers.adult, viewers.no_profile, viewers.manager):
            signed_in = await catalog.get(CATALOG + path, headers=headers)
            assert signed_in.status_code == 200
            assert signed_in.headers["cache-control"] == "private, no-store"
            assert "cache-tag" not in signed_in.headers
    # Errors are never stored by the CDN (a hidden title may become visible any moment).
    missing = await catalog.get(f"{CATALOG}/titles/{uuid.uuid4()}")
    assert missing.status_code == 404 and "s-maxage" not in missing.headers.get("cache-control", "")


async def test_invalidate_bumps_version_and_purges_by_tag(cloudflare: CloudflareServer) -> None:
    before = int(await cache.catalog_version())
    first, second = uuid.uuid4(), uuid.uuid4()
    await cache.invalidate(title_ids=[first, second, first])
    bumped = int(await cache.catalog_version())
    assert bumped > before  # other runs sharing the test Redis may bump it too: only "it moved" is certain
    (request,) = cloudflare.received
    assert request.status == 200 and request.method == "POST"
    assert request.path == f"/client/v4/zones/{cloudflare.zone_id}/purge_cache"
    assert request.headers["authorization"] == f"Bearer {cloudflare.api_token}"
    assert request.body == {"tags": ["catalog:lists", f"title:{first}", f"title:{second}"]}

    await cache.invalidate()  # everything
    assert cloudflare.received[-1].body == {"tags": ["catalog"]}
    assert int(await cache.catalog_version()) > bumped

    many = [uuid.uuid4() for _ in range(70)]  # more tags than one call takes: several calls
    cloudflare.reset()
    await cache.invalidate(title_ids=many)
    assert [len(request.body["tags"]) for request in cloudflare.received] == [30, 30, 11]
    assert all(request.status == 200 for request in cloudflare.received)
    assert set(cloudflare.purged_tags()) == {"catalog:lists", *(f"title:{title_id}" for title_id in many)}


async def test_failed_purges_are_logged_not_raised(
    cloudflare: CloudflareServer, settings_env: Any, caplog: pytest.LogCaptureFixture
) -> None:
    before = int(await cache.catalog_version())
    cloudflare.fail_next(500)
    with caplog.at_level(logging.ERROR, logger="cinema.catalog.cache"):
        await cache.invalidate(title_ids=[uuid.uuid4()])
    assert cloudflare.received[-1].status == 500
    assert "Cloudflare refused to purge" in caplog.text
    assert int(await cache.catalog_version()) > before

    settings_env(CLOUDFLARE_API_TOKEN="wrong")
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="cinema.catalog.cache"):
        await cache.invalidate()
    assert cloudflare.received[-1].status == 403 and "Authentication error" in caplog.text

    settings_env(CLOUDFLARE_API_URL="http://127.0.0.1:9/client/v4", CLOUDFLARE_API_TOKEN=cloudflare.api_token)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="cinema.catalog.cache"):
        await cache.invalidate()  # nothing listens there
    assert "could not reach Cloudflare" in caplog.text

    # Without a zone and token nothing is sent, but the version still moves.
    settings_env(CLOUDFLARE_ZONE_ID=None, CLOUDFLARE_API_TOKEN=None)
    cloudflare.reset()
    before = int(await cache.catalog_version())
    await cache.invalidate_after_commit(title_ids=[uuid.uuid4()])  # outside a request: at once
    assert cloudflare.received == []
    assert int(await cache.catalog_version()) > before
