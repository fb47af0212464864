"""Search and autocomplete show exactly what browse shows: maturity, status, window and country rules."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.search.conftest import AUTOCOMPLETE, SEARCH, search_client
from tests.support import catalog_factory as factory
from tests.support.identity import random_ip, signed_in_user, users_client

NOW = datetime.now(UTC)
# name -> columns; every title is credited to "Zebulon Quixote" and tagged nightcrawler.
TITLES: dict[str, dict[str, Any]] = {
    "Nightcrawler Deluxe": {"maturity_level": "16+", "rating_system": "mpaa", "rating": "R"},
    "Nightcrawler Family": {"maturity_level": "all", "rating_system": "mpaa", "rating": "G"},
    "Nightcrawler Draft": {"status": "draft", "maturity_level": "all"},
    "Nightcrawler Scheduled": {"status": "scheduled", "publish_at": NOW + timedelta(days=3)},
    "Nightcrawler Expired": {"available_until": NOW - timedelta(days=1), "maturity_level": "all"},
    "Nightcrawler Upcoming": {"available_from": NOW + timedelta(days=1), "maturity_level": "all"},
    "Nightcrawler Blocked": {"country_deny": ["FR"], "maturity_level": "all"},
    "Nightcrawler Elsewhere": {"country_allow": ["US"], "maturity_level": "all"},
    "Nightcrawler Deleted": {"deleted_at": NOW - timedelta(hours=1), "maturity_level": "all"},
}
SEEN_IN_FRANCE = {"Nightcrawler Deluxe", "Nightcrawler Family"}


@pytest.fixture(scope="module")
async def catalog(search_db: str) -> dict[str, uuid.UUID]:
    """The titles above, plus a person credited only on the R-rated one."""
    async with await psycopg.AsyncConnection.connect(search_db, autocommit=True) as db:
        ids = {}
        for name, columns in TITLES.items():
            ids[name] = await factory.title(
                db, name, genres=["Mystery"], release_year=2020, original_language="en", **columns
            )
        zeb = await factory.person(db, "Zebulon Quixote")
        await db.execute(
            """insert into public.catalog_credits (title_id, person_id, role, character)
               values (%s, %s, 'cast', 'X')""",
            (ids["Nightcrawler Deluxe"], zeb),
        )
    return ids


@pytest.fixture
def in_france(settings_env: Callable[..., None]) -> None:
    """Viewers without a trusted CDN country header are in France."""
    settings_env(DEFAULT_COUNTRY="FR")


async def _get(path: str, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    async with search_client() as client:
        response = await client.get(path, params=params, headers=headers or {})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _titles(body: dict[str, Any], key: str = "items") -> set[str]:
    return {item["title"] for item in body[key]}


async def _kid_headers(search_db: str) -> dict[str, str]:
    user = await signed_in_user(search_db)
    async with users_client() as client:
        response = await client.post(
            "/api/v1/users/me/profiles", json={"name": "Kiddo", "is_kids": True}, headers=user.headers
        )
        assert response.status_code == 201, response.text
        profile = response.json()
        response = await client.post(
            f"/api/v1/users/me/profiles/{profile['id']}/select", headers=user.headers
        )
        assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['access_token']}"}


async def test_only_live_titles_in_window_and_country_are_found(
    catalog: dict[str, uuid.UUID], in_france: None
) -> None:
    body = await _get(SEARCH, q="nightcrawler")
    assert _titles(body) == SEEN_IN_FRANCE
    assert body["total"] == 2
    # Facets count the visible matches only.
    assert body["facets"]["genre"] == [{"value": "mystery", "label": "Mystery", "count": 2}]
    assert sum(facet["count"] for facet in body["facets"]["maturity"]) == 2
    assert body["facets"]["decade"] == [{"value": "2020", "label": "2020s", "count": 2}]
    # The typo path and autocomplete apply the same rules.
    assert _titles(await _get(SEARCH, q="nightcrawlr")) == SEEN_IN_FRANCE
    assert _titles(await _get(AUTOCOMPLETE, q="nightc", limit=20), "titles") == SEEN_IN_FRANCE


async def test_a_kids_profile_never_sees_an_r_title(
    catalog: dict[str, uuid.UUID], in_france: None, search_db: str
) -> None:
    kid = await _kid_headers(search_db)
    body = await _get(SEARCH, kid, q="nightcrawler")
    assert _titles(body) == {"Nightcrawler Family"}
    assert body["facets"]["maturity"] == [{"value": "all", "label": "all", "count": 1}]
    assert _titles(await _get(SEARCH, kid, q="nightcrawler deluxe")) <= {"Nightcrawler Family"}
    assert _titles(await _get(SEARCH, kid, q="nightcrawlr delux")) <= {"Nightcrawler Family"}
    assert _titles(await _get(AUTOCOMPLETE, kid, q="nightcrawler d"), "titles") == set()
    # The R title's only actor is not suggested to the kid, and not found by name either.
    assert (await _get(AUTOCOMPLETE, kid, q="zebu"))["people"] == []
    assert (await _get(SEARCH, kid, q="zebulon quixote"))["items"] == []
    assert (await _get(SEARCH, kid, q="zebulon quixot"))["items"] == []
    # An adult does get both.
    people = (await _get(AUTOCOMPLETE, q="zebu"))["people"]
    assert [person["name"] for person in people] == ["Zebulon Quixote"]
    assert _titles(await _get(SEARCH, q="zebulon quixot")) == {"Nightcrawler Deluxe"}


async def test_the_country_comes_from_the_trusted_cdn_header(
    catalog: dict[str, uuid.UUID], settings_env: Callable[..., None]
) -> None:
    proxy = random_ip()
    settings_env(DEFAULT_COUNTRY="FR", TRUSTED_PROXIES=proxy)
    async with search_client(client_ip=proxy) as client:
        response = await client.get(
            SEARCH, params={"q": "nightcrawler"}, headers={"x-vercel-ip-country": "US"}
        )
        assert response.status_code == 200, response.text
        assert _titles(response.json()) == SEEN_IN_FRANCE | {"Nightcrawler Blocked", "Nightcrawler Elsewhere"}
    # The same header from an untrusted address is ignored.
    async with search_client() as client:
        response = await client.get(
            SEARCH, params={"q": "nightcrawler"}, headers={"x-vercel-ip-country": "US"}
        )
        assert _titles(response.json()) == SEEN_IN_FRANCE


async def test_content_managers_find_every_title_not_deleted(
    catalog: dict[str, uuid.UUID], in_france: None, search_db: str
) -> None:
    manager = await signed_in_user(search_db, roles=["content_manager"])
    body = await _get(SEARCH, manager.headers, q="nightcrawler", limit=50)
    assert _titles(body) == set(TITLES) - {"Nightcrawler Deleted"}
    suggestions = await _get(AUTOCOMPLETE, manager.headers, q="nightcrawler", limit=20)
    assert _titles(suggestions, "titles") == set(TITLES) - {"Nightcrawler Deleted"}
