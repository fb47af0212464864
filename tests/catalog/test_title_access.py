"""The title page says how a title is offered (access model and minimum plan tier), cacheable as before."""

from __future__ import annotations

from typing import Any

import httpx

from tests.catalog.conftest import CATALOG, Viewers, unique
from tests.support import catalog_factory as make

PUBLIC = "public, s-maxage=120, stale-while-revalidate=300, max-age=0"


async def test_title_detail_says_how_the_title_is_offered(
    db: Any, catalog: httpx.AsyncClient, viewers: Viewers, settings_env: Any
) -> None:
    settings_env(CATALOG_CACHE_SECONDS="120")
    offered = {
        "free": (await make.title(db, unique("Free"), access="free", min_tier=0), 0),
        "free_with_ads": (await make.title(db, unique("Ads"), access="free_with_ads", min_tier=0), 0),
        "subscription": (await make.title(db, unique("Premium"), access="subscription", min_tier=3), 3),
        "transactional": (await make.title(db, unique("Rental"), access="transactional", min_tier=1), 1),
    }
    for access, (title_id, min_tier) in offered.items():
        anonymous = await catalog.get(f"{CATALOG}/titles/{title_id}")
        assert anonymous.status_code == 200, anonymous.text
        body = anonymous.json()
        assert (body["access"], body["min_tier"]) == (access, min_tier)
        # Still the same public, tagged CDN answer for anonymous callers...
        assert anonymous.headers["cache-control"] == PUBLIC
        assert anonymous.headers["cache-tag"].split(",") == ["catalog", f"title:{title_id}"]
        # ...and a private one, with the same access model, for a signed-in profile.
        signed_in = await catalog.get(f"{CATALOG}/titles/{title_id}", headers=viewers.adult)
        assert signed_in.status_code == 200
        assert (signed_in.json()["access"], signed_in.json()["min_tier"]) == (access, min_tier)
        assert signed_in.headers["cache-control"] == "private, no-store"
        assert "cache-tag" not in signed_in.headers


async def test_titles_default_to_the_basic_subscription(db: Any, catalog: httpx.AsyncClient) -> None:
    # The migration's defaults: every title made before access models existed is a tier-1 subscription title.
    title_id = await make.title(db, unique("Plain"))
    body = (await catalog.get(f"{CATALOG}/titles/{title_id}")).json()
    assert (body["access"], body["min_tier"]) == ("subscription", 1)


async def test_the_openapi_document_describes_access(catalog: httpx.AsyncClient) -> None:
    from api.catalog import app

    detail = app.openapi()["components"]["schemas"]["TitleDetail"]["properties"]
    assert detail["access"]["enum"] == ["free", "free_with_ads", "subscription", "transactional"]
    assert detail["min_tier"]["type"] == "integer"
