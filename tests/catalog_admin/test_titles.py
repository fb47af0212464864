"""Content manager writes through HTTP: permissions, titles, series, credits, taxonomy, publishing, delete."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from tests.catalog_admin.conftest import API, audit_events, create_title, field_codes, imdb, unique
from tests.support.identity import SignedIn

ANY = str(uuid.uuid4())
WRITES = [
    ("POST", "/titles"),
    ("PATCH", f"/titles/{ANY}"),
    ("DELETE", f"/titles/{ANY}"),
    ("POST", f"/titles/{ANY}/restore"),
    ("PUT", f"/titles/{ANY}/status"),
    ("PUT", f"/titles/{ANY}/availability"),
    ("PUT", f"/titles/{ANY}/genres"),
    ("PUT", f"/titles/{ANY}/categories"),
    ("PUT", f"/titles/{ANY}/credits"),
    ("POST", f"/titles/{ANY}/seasons"),
    ("PATCH", f"/seasons/{ANY}"),
    ("DELETE", f"/seasons/{ANY}"),
    ("POST", f"/seasons/{ANY}/episodes"),
    ("PATCH", f"/episodes/{ANY}"),
    ("DELETE", f"/episodes/{ANY}"),
    ("POST", "/people"),
    ("PATCH", f"/people/{ANY}"),
    ("DELETE", f"/people/{ANY}"),
    ("POST", f"/people/{ANY}/restore"),
    ("POST", "/genres"),
    ("POST", "/categories"),
    ("POST", "/import"),
]


async def test_every_write_needs_catalog_write(client: httpx.AsyncClient, viewer: SignedIn) -> None:
    for method, path in WRITES:
        body: dict[str, Any] | None = {} if method != "DELETE" else None
        response = await client.request(method, API + path, json=body, headers=viewer.headers)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["code"] == "permission_denied"
        anonymous = await client.request(method, API + path, json=body)
        assert anonymous.status_code == 401, (method, path, anonymous.text)


async def test_create_movie_with_everything(
    client: httpx.AsyncClient, manager: SignedIn, database_url: str
) -> None:
    name = unique("Amélie: The Return")
    imdb_id = imdb("tt")
    title = await create_title(
        client,
        manager,
        title=name,
        original_title="Le Retour d'Amélie",
        synopsis_short="A waitress returns.",
        release_date="2001-04-25",
        runtime_minutes=122,
        countries=["fr", "DE", "FR"],
        original_language="fr",
        audio_languages=["fr", "en-us"],
        subtitle_languages=["en", "pt-br", "zh-hant-tw"],
        rating_system="mpaa",
        rating="r",
        tags=["Quirky ", "paris"],
        images={"poster": {"key": "catalog/amelie/poster.jpg", "width": 1000, "height": 1500}},
        trailers=[{"name": "Teaser", "url": "https://example.com/t.mp4", "language": "fr"}],
        imdb_id=imdb_id,
        tmdb_id=194,
    )
    assert title["slug"].startswith("amelie-the-return-")
    assert title["release_year"] == 2001
    assert title["maturity_level"] == "16+" and title["rating"] == "R"
    assert title["countries"] == ["FR", "DE"]
    assert title["audio_languages"] == ["fr", "en-US"]
    assert title["subtitle_languages"] == ["en", "pt-BR", "zh-Hant-TW"]
    assert title["tags"] == ["quirky", "paris"]
    assert title["external_ids"] == {"imdb": imdb_id, "tmdb": "194"}
    assert set(title["images"]["poster"]) >= {"w185", "original"}
    assert title["trailers"][0]["url"] == "https://example.com/t.mp4"
    assert title["publishing"]["status"] == "draft"
    events = await audit_events(database_url, title["id"])
    assert events[0][0] == "catalog_created"
    assert events[0][1]["entity"] == "title" and "rating" in events[0][1]["changed"]

    # A second title with the same name gets its own slug (the year first).
    again = await create_title(client, manager, title=name, release_year=2001)
    assert again["slug"] == title["slug"] + "-2001"
    # The same IMDb id twice is refused.
    response = await client.post(
        f"{API}/titles", json={"kind": "movie", "title": name, "imdb_id": imdb_id}, headers=manager.headers
    )
    assert response.status_code == 409 and response.json()["code"] == "imdb_id_taken"


async def test_series_with_seasons_episodes_credits_and_taxonomy(
    client: httpx.AsyncClient, manager: SignedIn, database_url: str
) -> None:
    headers = manager.headers
    series = await create_title(client, manager, kind="series", rating_system="tv", rating="TV-14")
    sid = series["id"]
    genre = (await client.post(f"{API}/genres", json={"name": unique("Space Opera")}, headers=headers)).json()
    category = await client.post(f"{API}/categories", json={"name": unique("Award Winners")}, headers=headers)
    assert category.status_code == 201
    duplicate = await client.post(f"{API}/genres", json={"name": genre["name"]}, headers=headers)
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "slug_taken"

    season = await client.post(
        f"{API}/titles/{sid}/seasons",
        json={
            "number": 1,
            "name": "Season One",
            "images": {"poster": {"public_id": "shows/s1"}},
            "episodes": [
                {"number": 1, "name": "Pilot", "runtime_minutes": 52},
                {"number": 2, "name": "Second", "images": {"still": {"key": "catalog/s/e2.jpg"}}},
            ],
        },
        headers=headers,
    )
    assert season.status_code == 201, season.text
    assert [e["name"] for e in season.json()["episodes"]] == ["Pilot", "Second"]
    season_id = season.json()["id"]
    taken = await client.post(f"{API}/titles/{sid}/seasons", json={"number": 1}, headers=headers)
    assert taken.status_code == 409 and taken.json()["code"] == "season_number_taken"
    episode = await client.post(
        f"{API}/seasons/{season_id}/episodes", json={"number": 3, "name": "Third"}, headers=headers
    )
    assert episode.status_code == 201 and episode.json()["season_number"] == 1
    episode_id = episode.json()["id"]
    renamed = await client.patch(
        f"{API}/episodes/{episode_id}", json={"name": "Third (cut)", "runtime_minutes": 40}, headers=headers
    )
    assert renamed.json()["name"] == "Third (cut)" and renamed.json()["runtime_minutes"] == 40
    clash = await client.patch(f"{API}/episodes/{episode_id}", json={"number": 1}, headers=headers)
    assert clash.status_code == 409 and clash.json()["code"] == "episode_number_taken"
    assert (await client.patch(f"{API}/seasons/{season_id}", json={"name": "S1"}, headers=headers)).json()[
        "name"
    ] == "S1"
    second = await client.post(f"{API}/titles/{sid}/seasons", json={"number": 2}, headers=headers)
    assert (await client.delete(f"{API}/seasons/{second.json()['id']}", headers=headers)).status_code == 204
    assert (await client.delete(f"{API}/episodes/{episode_id}", headers=headers)).status_code == 204
    assert (await client.delete(f"{API}/episodes/{episode_id}", headers=headers)).status_code == 404

    lead = await client.post(f"{API}/people", json={"name": unique("Ada Star")}, headers=headers)
    director = await client.post(
        f"{API}/people", json={"name": unique("Dee Rector"), "imdb_id": imdb("nm")}, headers=headers
    )
    assert lead.status_code == 201 and director.status_code == 201, director.text
    credits = await client.put(
        f"{API}/titles/{sid}/credits",
        json={
            "cast": [{"person_id": lead.json()["id"], "character": "Captain", "order": 0}],
            "crew": [{"person_id": director.json()["id"], "job": "Director"}],
        },
        headers=headers,
    )
    assert credits.status_code == 200, credits.text
    detail = credits.json()
    assert [(c["name"], c["character"]) for c in detail["cast"]] == [(lead.json()["name"], "Captain")]
    assert [(c["name"], c["job"]) for c in detail["crew"]] == [(director.json()["name"], "director")]

    genres = await client.put(f"{API}/titles/{sid}/genres", json={"slugs": [genre["slug"]]}, headers=headers)
    assert [g["slug"] for g in genres.json()["genres"]] == [genre["slug"]]
    categories = await client.put(
        f"{API}/titles/{sid}/categories", json={"slugs": [category.json()["slug"]]}, headers=headers
    )
    assert [c["name"] for c in categories.json()["categories"]] == [category.json()["name"]]
    unknown = await client.put(
        f"{API}/titles/{sid}/genres", json={"slugs": ["no-such-genre-x"]}, headers=headers
    )
    assert field_codes(unknown) == [("slugs.0", "unknown_genre")]

    full = categories.json()
    assert [s["number"] for s in full["seasons"]] == [1]
    assert [e["number"] for e in full["seasons"][0]["episodes"]] == [1, 2]
    # A series with seasons cannot turn into a movie; a movie cannot get seasons.
    to_movie = await client.patch(f"{API}/titles/{sid}", json={"kind": "movie"}, headers=headers)
    assert to_movie.status_code == 409 and to_movie.json()["code"] == "has_seasons"
    movie = await create_title(client, manager)
    refused = await client.post(f"{API}/titles/{movie['id']}/seasons", json={"number": 1}, headers=headers)
    assert refused.status_code == 409 and refused.json()["code"] == "not_a_series"

    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            """select details->>'entity', count(*) from public.audit_log
               where event like 'catalog_%%' and (details->>'id' = %s or details->>'title_id' = %s)
               group by 1 order by 1""",
            (sid, sid),
        )
        counts: dict[str, int] = dict(await cursor.fetchall())
    assert counts == {"episode": 3, "season": 4, "title": 4}


async def test_patch_publish_availability_and_soft_delete(
    client: httpx.AsyncClient, manager: SignedIn, database_url: str
) -> None:
    headers = manager.headers
    title = await create_title(client, manager, rating_system="mpaa", rating="PG")
    tid, slug = title["id"], title["slug"]
    public = f"{API}/titles/{tid}"
    assert (await client.get(public)).status_code == 404  # a draft: invisible to viewers

    patched = await client.patch(
        public,
        json={
            "synopsis_short": "Now with words.",
            "rating": "G",
            "images": {"logo": {"url": "https://x.test/l.png"}},
        },
        headers=headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["maturity_level"] == "all" and set(patched.json()["images"]) == {"logo"}
    cleared = await client.patch(
        public, json={"synopsis_short": None, "images": {"logo": None}}, headers=headers
    )
    assert cleared.json()["synopsis_short"] is None and cleared.json()["images"] == {}

    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    scheduled = await client.put(
        f"{public}/status", json={"status": "scheduled", "publish_at": later}, headers=headers
    )
    assert scheduled.status_code == 200 and scheduled.json()["publishing"]["status"] == "scheduled"
    assert (await client.get(public)).status_code == 404
    published = await client.put(f"{public}/status", json={"status": "published"}, headers=headers)
    assert published.json()["publishing"]["status"] == "published"
    assert published.json()["publishing"]["publish_at"] is None
    assert (await client.get(public)).status_code == 200

    window = await client.put(
        f"{public}/availability",
        json={"available_from": later, "country_allow": ["us", "CA"], "country_deny": []},
        headers=headers,
    )
    assert window.status_code == 200, window.text
    assert window.json()["publishing"]["country_allow"] == ["US", "CA"]
    assert (await client.get(public)).status_code == 404  # outside its window
    reopened = await client.put(f"{public}/availability", json={}, headers=headers)
    assert reopened.json()["publishing"]["available_from"] is None
    assert (await client.get(public)).status_code == 200

    assert (await client.delete(public, headers=headers)).status_code == 204
    assert (await client.get(public)).status_code == 404
    assert (await client.patch(public, json={"title": "x"}, headers=headers)).status_code == 404
    assert (await client.delete(public, headers=headers)).status_code == 404
    restored = await client.post(f"{public}/restore", headers=headers)
    assert restored.status_code == 200 and restored.json()["publishing"]["deleted_at"] is None
    assert (await client.get(public)).status_code == 200
    again = await client.post(f"{public}/restore", headers=headers)
    assert again.status_code == 409 and again.json()["code"] == "not_deleted"

    # Deleted, then its slug reused: restoring would clash.
    assert (await client.delete(public, headers=headers)).status_code == 204
    await create_title(client, manager, slug=slug)
    clash = await client.post(f"{public}/restore", headers=headers)
    assert clash.status_code == 409 and clash.json()["code"] == "slug_taken"

    events = [event for event, _ in await audit_events(database_url, tid)]
    assert events == [
        "catalog_created",
        "catalog_updated",
        "catalog_updated",
        "catalog_updated",
        "catalog_updated",
        "catalog_updated",
        "catalog_updated",
        "catalog_deleted",
        "catalog_restored",
        "catalog_deleted",
    ]
    details = [d for _, d in await audit_events(database_url, tid)]
    assert details[1]["changed"] == ["images", "maturity_level", "rating", "synopsis_short"]
    assert details[3]["changed"] == ["publish_at", "status"]


@pytest.mark.parametrize("bad_id", ["not-a-uuid"])
async def test_ids_in_paths_are_uuids(client: httpx.AsyncClient, manager: SignedIn, bad_id: str) -> None:
    response = await client.patch(f"{API}/titles/{bad_id}", json={}, headers=manager.headers)
    assert response.status_code == 422
