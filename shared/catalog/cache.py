"""CDN caching of the public catalog: response headers, a Redis catalog version, Cloudflare purge by tag.

Anonymous answers are the same for everyone in a country, so the CDN may keep them (s-maxage) and serve
them stale while it refetches; signed-in answers depend on the profile and are never stored. A change in
the catalog bumps the version (a part of every Redis key of cached catalog data) and purges by Cache-Tag:
`title:<id>` for the pages of the changed titles, `catalog:lists` for every page that lists titles.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from fastapi import Response

from shared.catalog.visibility import Viewer
from shared.settings import get_settings

logger = logging.getLogger("cinema.catalog.cache")

ALL_TAG = "catalog"
LISTS_TAG = "catalog:lists"  # browse, home rows, taxonomy, person pages: any change may reorder them
VERSION_KEY = "catalog:version"
PRIVATE = "private, no-store"
# Cloudflare accepts a bounded number of tags per purge call; 30 fits every plan's limit.
_PURGE_BATCH = 30


def title_tag(title_id: uuid.UUID) -> str:
    """The Cache-Tag of the pages of one title (detail, seasons)."""
    return f"title:{title_id}"


def person_tag(person_id: uuid.UUID) -> str:
    """The Cache-Tag of a person page."""
    return f"person:{person_id}"


def public_cache_control(seconds: int) -> str:
    """Cache-Control of an anonymous catalog answer: shared caches keep it, browsers revalidate."""
    return f"public, s-maxage={seconds}, stale-while-revalidate=300, max-age=0"


def apply(response: Response, viewer: Viewer, *, tags: Iterable[str] = ()) -> None:
    """Set the caching headers of a catalog GET for this viewer (public when anonymous, else private)."""
    if viewer.user_id is not None:
        response.headers["cache-control"] = PRIVATE
        return
    settings = get_settings()
    response.headers["cache-control"] = public_cache_control(settings.catalog_cache_seconds)
    # Visibility depends on the country; Authorization too, so a CDN never hands this to a signed-in caller.
    vary = [value.strip() for value in response.headers.get("vary", "").split(",") if value.strip()]
    for name in (settings.country_header, "Authorization"):
        if name.lower() not in {value.lower() for value in vary}:
            vary.append(name)
    response.headers["vary"] = ", ".join(vary)
    response.headers["cache-tag"] = ",".join(dict.fromkeys([ALL_TAG, *tags]))


def private(response: Response) -> None:
    """Mark an answer that depends on the caller (My List, ratings) as never stored."""
    response.headers["cache-control"] = PRIVATE


async def catalog_version() -> str:
    """The current catalog version, for Redis keys of cached catalog data (bumped by every change)."""
    from shared.infra.redis import get_redis

    value = await (await get_redis()).get(VERSION_KEY)
    return value or "0"


def purge_tags(title_ids: list[uuid.UUID] | None) -> list[str]:
    """The tags to purge after a change: everything, or the titles' pages and every list."""
    if title_ids is None:
        return [ALL_TAG]
    return [LISTS_TAG, *dict.fromkeys(title_tag(title_id) for title_id in title_ids)]


async def invalidate(*, title_ids: list[uuid.UUID] | None = None) -> None:
    """After a catalog change: bump the version and purge the CDN; failures are logged, never raised."""
    from shared.infra.redis import get_redis

    try:
        await (await get_redis()).incr(VERSION_KEY)
    except Exception:
        logger.exception("could not bump the catalog version; cached catalog data ages out by its TTL")
    await _purge(purge_tags(title_ids))


async def invalidate_after_commit(*, title_ids: list[uuid.UUID] | None = None) -> None:
    """invalidate() once the request's transaction commits (at once outside a request)."""
    from shared.infra.db import after_commit

    async def run() -> None:
        await invalidate(title_ids=title_ids)

    await after_commit(run)


async def _purge(tags: list[str]) -> None:
    settings = get_settings()
    if not (settings.cloudflare_zone_id and settings.cloudflare_api_token):
        return
    import httpx

    url = f"{str(settings.cloudflare_api_url).rstrip('/')}/zones/{settings.cloudflare_zone_id}/purge_cache"
    headers = {"authorization": f"Bearer {settings.cloudflare_api_token}"}
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            for start in range(0, len(tags), _PURGE_BATCH):
                batch = tags[start : start + _PURGE_BATCH]
                response = await client.post(url, json={"tags": batch}, headers=headers)
                body = (
                    response.json()
                    if response.headers.get("content-type", "").startswith("application/json")
                    else {}
                )
                if response.status_code >= 400 or not body.get("success", False):
                    logger.error(
                        "Cloudflare refused to purge %s: HTTP %s %s",
                        batch,
                        response.status_code,
                        body.get("errors") or response.text[:300],
                    )
    except (httpx.HTTPError, ValueError):
        # The change is saved; the CDN serves the old page until s-maxage runs out.
        logger.exception("could not reach Cloudflare to purge %s", tags)
