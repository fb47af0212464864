"""Every invalid write answers 422 (or 409) naming the field and a stable code; nothing is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from tests.catalog_admin.conftest import API, create_title, field_codes, unique
from tests.support.identity import SignedIn

PAST = (datetime.now(UTC) - timedelta(days=1)).isoformat()
FUTURE = (datetime.now(UTC) + timedelta(days=30)).isoformat()

# Fields of POST /titles (merged with a valid movie) -> the (field, code) pairs of the 422.
INVALID_TITLES: list[tuple[dict[str, Any], list[tuple[str, str]]]] = [
    ({"kind": "episode"}, [("kind", "literal_error")]),
    ({"title": ""}, [("title", "string_too_short")]),
    ({"slug": "Not A Slug!"}, [("slug", "invalid_slug")]),
    ({"slug": "0b6f5a8e-2c1d-4e7f-9a3b-5c6d7e8f9a0b"}, [("slug", "invalid_slug")]),
    ({"countries": ["US", "XX"]}, [("countries.1", "invalid_country")]),
    ({"country_allow": ["usa"]}, [("country_allow.0", "invalid_country")]),
    ({"original_language": "english"}, [("original_language", "invalid_language")]),
    ({"audio_languages": ["en", "pt-XX"]}, [("audio_languages.1", "invalid_language")]),
    ({"runtime_minutes": 0}, [("runtime_minutes", "greater_than_equal")]),
    ({"runtime_minutes": 5000}, [("runtime_minutes", "less_than_equal")]),
    ({"release_year": 1700}, [("release_year", "greater_than_equal")]),
    ({"release_date": "2001-02-30"}, [("release_date", "date_from_datetime_parsing")]),
    ({"release_date": "2001-04-25", "release_year": 2002}, [("release_year", "release_year_mismatch")]),
    ({"rating_system": "bbfc", "rating": "15"}, [("rating_system", "literal_error")]),
    ({"rating_system": "mpaa", "rating": "TV-MA"}, [("rating", "unknown_rating")]),
    ({"rating": "PG"}, [("rating_system", "rating_system_required")]),
    ({"rating_system": "tv"}, [("rating", "rating_required")]),
    (
        {"rating_system": "mpaa", "rating": "G", "maturity_level": "18+"},
        [("maturity_level", "maturity_from_rating")],
    ),
    ({"maturity_level": "21+"}, [("maturity_level", "literal_error")]),
    ({"imdb_id": "tt123"}, [("imdb_id", "invalid_imdb_id")]),
    ({"imdb_id": "nm1234567"}, [("imdb_id", "invalid_imdb_id")]),
    ({"tmdb_id": "abc"}, [("tmdb_id", "invalid_tmdb_id")]),
    ({"images": {"poster": {"width": 10}}}, [("images.poster", "image_source_required")]),
    (
        {"images": {"poster": {"key": "catalog/a", "public_id": "x"}}},
        [("images.poster", "image_source_required")],
    ),
    ({"images": {"poster": {"key": "../etc/passwd"}}}, [("images.poster.key", "invalid_image")]),
    ({"images": {"poster": {"url": "http://insecure.test/p.jpg"}}}, [("images.poster.url", "invalid_image")]),
    ({"images": {"banner": {"key": "a.jpg"}}}, [("images.banner", "extra_forbidden")]),
    (
        {"images": {"poster": {"key": "catalog/p.jpg", "width": 0}}},
        [("images.poster.width", "greater_than_equal")],
    ),
    ({"trailers": [{"name": "T"}]}, [("trailers.0", "trailer_source_required")]),
    ({"trailers": [{"url": "ftp://x.test/t"}]}, [("trailers.0.url", "invalid_trailer")]),
    ({"tags": ["   "]}, [("tags.0", "invalid_tag")]),
    ({"status": "live"}, [("status", "literal_error")]),
    ({"status": "scheduled"}, [("publish_at", "publish_at_required")]),
    ({"status": "scheduled", "publish_at": PAST}, [("publish_at", "publish_at_in_past")]),
    ({"status": "published", "publish_at": FUTURE}, [("publish_at", "publish_at_not_scheduled")]),
    ({"status": "scheduled", "publish_at": "2031-01-01T00:00:00"}, [("publish_at", "timezone_aware")]),
    ({"available_from": FUTURE, "available_until": PAST}, [("available_until", "invalid_window")]),
    ({"country_allow": ["US"], "country_deny": ["us"]}, [("country_deny", "country_conflict")]),
    ({"popularity": 5}, [("popularity", "extra_forbidden")]),
    ({"title": None}, [("title", "null_not_allowed")]),
]


@pytest.mark.parametrize(("fields", "expected"), INVALID_TITLES, ids=[str(f) for f, _ in INVALID_TITLES])
async def test_invalid_title_fields(
    client: httpx.AsyncClient,
    manager: SignedIn,
    database_url: str,
    fields: dict[str, Any],
    expected: list[Any],
) -> None:
    name = unique("Invalid")
    response = await client.post(
        f"{API}/titles", json={"kind": "movie", "title": name, **fields}, headers=manager.headers
    )
    assert field_codes(response) == expected, response.text
    if expected[0][1] == "unknown_rating":
        error = response.json()["errors"][0]
        assert error["accepted"] == ["G", "PG", "PG-13", "R", "NC-17", "NR"]
        assert "PG-13" in error["msg"]
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute("select count(*) from public.catalog_titles where title = %s", (name,))
        assert await cursor.fetchone() == (0,)


async def test_required_fields_and_several_errors_at_once(
    client: httpx.AsyncClient, manager: SignedIn
) -> None:
    response = await client.post(f"{API}/titles", json={"countries": ["ZZ"]}, headers=manager.headers)
    assert sorted(field_codes(response)) == [
        ("countries.0", "invalid_country"),
        ("kind", "missing"),
        ("title", "missing"),
    ]


async def test_updates_are_checked_against_what_is_stored(
    client: httpx.AsyncClient, manager: SignedIn
) -> None:
    headers = manager.headers
    title = await create_title(client, manager, rating_system="tv", rating="TV-MA", release_date="2010-05-01")
    path = f"{API}/titles/{title['id']}"
    # The stored system is tv: an MPAA rating alone is unknown, and the error lists the TV ratings.
    wrong = await client.patch(path, json={"rating": "PG-13"}, headers=headers)
    assert field_codes(wrong) == [("rating", "unknown_rating")]
    assert "TV-14" in wrong.json()["errors"][0]["accepted"]
    assert field_codes(await client.patch(path, json={"release_year": 2011}, headers=headers)) == [
        ("release_year", "release_year_mismatch")
    ]
    moved = await client.patch(path, json={"release_date": "2012-01-01"}, headers=headers)
    assert moved.json()["release_year"] == 2012
    assert field_codes(await client.patch(path, json={"kind": None}, headers=headers)) == [
        ("kind", "null_not_allowed")
    ]
    unrated = await client.patch(
        path, json={"rating_system": None, "rating": None, "maturity_level": "7+"}, headers=headers
    )
    assert unrated.json()["maturity_level"] == "7+" and unrated.json()["rating"] is None
    window = await client.put(
        f"{path}/availability",
        json={"available_from": FUTURE, "available_until": FUTURE, "country_deny": ["GB", "QQ"]},
        headers=headers,
    )
    assert sorted(field_codes(window)) == [("country_deny.1", "invalid_country")]
    window = await client.put(
        f"{path}/availability", json={"available_from": FUTURE, "available_until": FUTURE}, headers=headers
    )
    assert field_codes(window) == [("available_until", "invalid_window")]
    status = await client.put(
        f"{path}/status", json={"status": "scheduled", "publish_at": PAST}, headers=headers
    )
    assert field_codes(status) == [("publish_at", "publish_at_in_past")]
    assert field_codes(await client.put(f"{path}/status", json={"status": "gone"}, headers=headers)) == [
        ("status", "literal_error")
    ]


async def test_slug_conflicts_and_unknown_references(client: httpx.AsyncClient, manager: SignedIn) -> None:
    headers = manager.headers
    first = await create_title(client, manager)
    taken = await client.post(
        f"{API}/titles", json={"kind": "movie", "title": "Other", "slug": first["slug"]}, headers=headers
    )
    assert taken.status_code == 409
    assert taken.json()["code"] == "slug_taken" and taken.json()["field"] == "slug"
    other = await create_title(client, manager)
    renamed = await client.patch(f"{API}/titles/{other['id']}", json={"slug": first["slug"]}, headers=headers)
    assert renamed.status_code == 409 and renamed.json()["code"] == "slug_taken"

    ghost = "00000000-0000-4000-8000-000000000000"
    credits = await client.put(
        f"{API}/titles/{first['id']}/credits",
        json={"cast": [{"person_id": ghost, "character": "Nobody"}], "crew": [{"person_id": ghost}]},
        headers=headers,
    )
    assert sorted(field_codes(credits)) == [("crew.0.job", "missing")]
    credits = await client.put(
        f"{API}/titles/{first['id']}/credits",
        json={"cast": [{"person_id": ghost}], "crew": [{"person_id": ghost, "job": "writer"}]},
        headers=headers,
    )
    assert field_codes(credits) == [
        ("cast.0.person_id", "unknown_person"),
        ("crew.0.person_id", "unknown_person"),
    ]
    missing = await client.patch(f"{API}/titles/{ghost}", json={"title": "x"}, headers=headers)
    assert missing.status_code == 404 and missing.json()["code"] == "title_not_found"
    for path in (f"/seasons/{ghost}", f"/episodes/{ghost}", f"/people/{ghost}"):
        response = await client.patch(API + path, json={}, headers=headers)
        assert response.status_code == 404, path
    series = await create_title(client, manager, kind="series")
    episodes = await client.post(
        f"{API}/titles/{series['id']}/seasons",
        json={"number": 1, "episodes": [{"number": 1, "name": "A"}, {"number": 1, "name": "B"}]},
        headers=headers,
    )
    assert field_codes(episodes) == [("episodes.1.number", "duplicate_number")]
