"""Browse filters, sorts and cursors; title, season and person pages; taxonomy counts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import httpx

from tests.catalog.conftest import CATALOG, Viewers, genre_slug, ids, unique
from tests.support import catalog_factory as make


async def all_pages(client: httpx.AsyncClient, limit: int = 2, **params: Any) -> list[str]:
    """Every title id of a browse, following next_cursor with a small page size."""
    seen: list[str] = []
    cursor = None
    for _ in range(50):
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"{CATALOG}/titles", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        seen += ids(body)
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("no end of pages")


def rating_score(stars_sum: int, stars_count: int, up: int, down: int) -> float:
    return (stars_sum + 5 * up + down + 15) / (stars_count + up + down + 5)


async def test_filters_and_sorts_with_pagination(db: Any, catalog: httpx.AsyncClient) -> None:
    genre, other, category = unique("Browse"), unique("Other"), unique("Cat")
    rows = [
        # title, year, popularity, (stars_sum, stars_count, up, down), language, audio, countries, kind, level
        ("apple", 1999, 5.0, (0, 0, 0, 0), "en", [], ["US"], "movie", "all"),
        ("Éclair", 2010, 50.0, (45, 10, 0, 0), "fr", ["en"], ["FR"], "movie", "13+"),
        ("eagle", 2010, 50.0, (10, 10, 0, 0), "en", ["de"], ["GB", "US"], "series", "16+"),
        ("Zebra", 2021, 20.0, (0, 0, 30, 1), "de", [], ["DE"], "movie", "18+"),
        ("banana", None, 1.0, (0, 0, 0, 5), "es", [], [], "series", "7+"),
        ("Dune", 1984, 99.0, (3, 1, 0, 0), "en", [], ["US"], "movie", "13+"),
    ]
    made: dict[str, str] = {}
    for name, year, popularity, (s_sum, s_count, up, down), language, audio, countries, kind, level in rows:
        title_id = await make.title(
            db,
            name,
            kind=kind,
            genres=[genre] if name != "Dune" else [genre, other],
            release_year=year,
            release_date=date(year, 6, 1) if year else None,
            popularity=popularity,
            stars_sum=s_sum,
            stars_count=s_count,
            thumbs_up=up,
            thumbs_down=down,
            original_language=language,
            audio_languages=audio,
            countries=countries,
            maturity_level=level,
        )
        made[name] = str(title_id)
    await db.execute(
        "insert into public.catalog_title_terms (title_id, term_id) values (%s, %s)",
        (made["Zebra"], await make.term(db, category, "category")),
    )
    key: dict[str, Any] = {"genre": genre_slug(genre)}

    def order(*names: str) -> list[str]:
        return [made[name] for name in names]

    # popularity (ties broken by id, descending), newest (undated last), rating, A-Z accent-insensitive.
    tie = sorted([made["Éclair"], made["eagle"]], reverse=True)
    assert await all_pages(catalog, **key) == [made["Dune"], *tie, *order("Zebra", "apple", "banana")]
    newest = await all_pages(catalog, **key, sort="newest")
    assert (
        newest[0] == made["Zebra"] and newest[1:3] == tie and newest[3:] == order("apple", "Dune", "banana")
    )
    scores = {name: rating_score(*stats) for name, _, _, stats, *_ in rows}
    by_rating = sorted(made, key=lambda name: (scores[name], made[name]), reverse=True)
    assert await all_pages(catalog, limit=4, **key, sort="rating") == order(*by_rating)
    assert await all_pages(catalog, limit=3, **key, sort="title") == order(
        "apple", "banana", "Dune", "eagle", "Éclair", "Zebra"
    )

    async def matching(**params: Any) -> set[str]:
        return set(await all_pages(catalog, limit=10, **key, **params))

    assert await matching(year_from=2000, year_to=2010) == set(order("Éclair", "eagle"))
    assert await matching(maturity="7+") == set(order("apple", "banana"))
    assert await matching(language="en") == set(order("apple", "Éclair", "eagle", "Dune"))
    assert await matching(country="us") == set(order("apple", "eagle", "Dune"))
    assert await matching(kind="series") == set(order("eagle", "banana"))
    assert await matching(category=genre_slug(category)) == set(order("Zebra"))
    assert set(await all_pages(catalog, genre=[genre_slug(other)])) == set(order("Dune"))
    both = await all_pages(catalog, limit=10, genre=[genre_slug(genre), genre_slug(other)])
    assert sorted(both) == sorted(made.values())  # repeated genres: any of them, each title once

    first = (await catalog.get(f"{CATALOG}/titles", params={**key, "limit": 2})).json()
    wrong_sort = await catalog.get(
        f"{CATALOG}/titles", params={**key, "sort": "title", "cursor": first["next_cursor"]}
    )
    assert wrong_sort.status_code == 400 and wrong_sort.json()["code"] == "invalid_cursor"
    garbage = await catalog.get(f"{CATALOG}/titles", params={"cursor": "bm90LWEtY3Vyc29y"})
    assert garbage.status_code == 400 and garbage.json()["code"] == "invalid_cursor"
    for bad in (
        {"year_from": 2010, "year_to": 2000},
        {"sort": "random"},
        {"maturity": "R"},
        {"country": "USA"},
    ):
        response = await catalog.get(f"{CATALOG}/titles", params=bad)
        assert response.status_code == 422, bad
        assert response.headers["content-type"] == "application/problem+json"


async def test_title_detail_and_seasons(db: Any, catalog: httpx.AsyncClient) -> None:
    category = unique("Based on a book")
    series = await make.title(
        db,
        "Long Story",
        kind="series",
        genres=[unique("Drama")],
        cast=[("Ann Lead", "Queen"), ("Bob Second", "King")],
        crew=[("Cy Director", "director"), ("Di Writer", "writer")],
        original_title="Lange Geschichte",
        synopsis_short="Short.",
        synopsis_long="Much longer.",
        release_date=date(2020, 3, 1),
        release_year=2020,
        countries=["DE"],
        original_language="de",
        audio_languages=["de", "en"],
        subtitle_languages=["en", "fr"],
        tags=["slow burn"],
        rating_system="tv",
        rating="TV-14",
        maturity_level="13+",
        images={"poster": {"url": "https://img.example/poster.jpg"}},
        trailers=[{"name": "Teaser", "url": "https://video.example/t.mp4", "language": "en"}],
        imdb_id=f"tt{datetime.now(UTC).microsecond:07d}",
        tmdb_id="tv/123",
    )
    await db.execute(
        "insert into public.catalog_title_terms (title_id, term_id) values (%s, %s)",
        (series, await make.term(db, category, "category")),
    )
    await make.season(db, series, 2, episodes=2)
    await make.season(db, series, 1, episodes=3)
    slug = (
        await (await db.execute("select slug from public.catalog_titles where id = %s", (series,))).fetchone()
    )[0]

    by_id = (await catalog.get(f"{CATALOG}/titles/{series}")).json()
    by_slug = await catalog.get(f"{CATALOG}/titles/{slug}")
    assert by_slug.status_code == 200 and by_slug.json() == by_id
    assert by_id["kind"] == "series" and by_id["original_title"] == "Lange Geschichte"
    assert (by_id["synopsis_short"], by_id["synopsis_long"]) == ("Short.", "Much longer.")
    assert by_id["audio_languages"] == ["de", "en"] and by_id["subtitle_languages"] == ["en", "fr"]
    assert by_id["tags"] == ["slow burn"] and by_id["countries"] == ["DE"]
    assert [term["name"] for term in by_id["categories"]] == [category]
    assert by_id["external_ids"]["tmdb"] == "tv/123" and by_id["external_ids"]["imdb"].startswith("tt")
    assert by_id["trailers"][0]["name"] == "Teaser"
    assert by_id["images"]["poster"]["w342"] == "https://img.example/poster.jpg"
    assert [(c["name"], c["character"], c["order"]) for c in by_id["cast"]] == [
        ("Ann Lead", "Queen", 0),
        ("Bob Second", "King", 1),
    ]
    assert [(c["name"], c["job"]) for c in by_id["crew"]] == [
        ("Cy Director", "director"),
        ("Di Writer", "writer"),
    ]
    assert [s["number"] for s in by_id["seasons"]] == [1, 2]
    assert [s["episode_count"] for s in by_id["seasons"]] == [3, 2]
    assert [e["number"] for e in by_id["seasons"][0]["episodes"]] == [1, 2, 3]
    assert by_id["user_ratings"] == {
        "thumbs_up": 0,
        "thumbs_down": 0,
        "stars_average": None,
        "stars_count": 0,
    }

    second = await catalog.get(f"{CATALOG}/titles/{slug}/seasons/2")
    assert second.status_code == 200
    assert [(e["season_number"], e["name"]) for e in second.json()["episodes"]] == [
        (2, "Episode 1"),
        (2, "Episode 2"),
    ]
    missing = await catalog.get(f"{CATALOG}/titles/{series}/seasons/9")
    assert missing.status_code == 404 and missing.json()["code"] == "season_not_found"

    movie = await make.title(db, "Short Film")
    assert (await catalog.get(f"{CATALOG}/titles/{movie}")).json()["seasons"] == []


async def test_person_page_lists_only_visible_titles(db: Any, catalog: httpx.AsyncClient) -> None:
    name = unique("Star")
    star = await make.person(
        db, name, biography="Born somewhere.", images={"photo": {"url": "https://x.example/p"}}
    )
    shown = await make.title(db, "Old Hit", release_year=1990)
    newer = await make.title(db, "New Hit", release_year=2020)
    draft = await make.title(db, "Secret", status="draft", release_year=2025)
    for title_id, role, extra in (
        (shown, "cast", {"character": "Hero"}),
        (newer, "crew", {"job": "director"}),
        (newer, "cast", {"character": "Cameo"}),
        (draft, "cast", {"character": "Villain"}),
    ):
        column = next(iter(extra))
        await db.execute(
            f"""insert into public.catalog_credits (title_id, person_id, role, {column})
                values (%s, %s, %s, %s)""",
            (title_id, star, role, extra[column]),
        )
    page = await catalog.get(f"{CATALOG}/people/{star}")
    assert page.status_code == 200
    body = page.json()
    assert body["name"] == name and body["biography"] == "Born somewhere."
    assert body["images"]["photo"]["original"] == "https://x.example/p"
    credits = [(c["title"]["id"], c["role"], c["character"], c["job"]) for c in body["credits"]]
    assert sorted(credits[:2], key=str) == sorted(
        [(str(newer), "crew", None, "director"), (str(newer), "cast", "Cameo", None)], key=str
    )
    assert credits[2:] == [(str(shown), "cast", "Hero", None)]
    assert "cache-tag" in page.headers and f"person:{star}" in page.headers["cache-tag"]
    by_slug = await catalog.get(f"{CATALOG}/people/{body['slug']}")
    assert by_slug.json()["id"] == str(star)
    missing = await catalog.get(f"{CATALOG}/people/nobody-at-all")
    assert missing.status_code == 404 and missing.json()["code"] == "person_not_found"


async def test_taxonomy_counts_visible_titles(db: Any, catalog: httpx.AsyncClient, viewers: Viewers) -> None:
    genre, empty, category = unique("Tax"), unique("Empty"), unique("Award")
    await make.title(db, "One", genres=[genre])
    await make.title(db, "Two", genres=[genre])
    await make.title(db, "Hidden", status="draft", genres=[genre, empty])
    award = await make.title(db, "Winner")
    await db.execute(
        "insert into public.catalog_title_terms (title_id, term_id) values (%s, %s)",
        (award, await make.term(db, category, "category")),
    )

    def counts(body: list[dict[str, Any]]) -> dict[str, int]:
        return {term["name"]: term["title_count"] for term in body}

    genres = await catalog.get(f"{CATALOG}/genres")
    assert genres.status_code == 200
    seen = counts(genres.json())
    assert seen[genre] == 2 and empty not in seen
    assert all(term["kind"] == "genre" for term in genres.json())
    managed = counts((await catalog.get(f"{CATALOG}/genres", headers=viewers.manager)).json())
    assert managed[genre] == 3 and managed[empty] == 1
    categories = counts((await catalog.get(f"{CATALOG}/categories")).json())
    assert categories[category] == 1 and genre not in categories


async def test_nul_characters_are_refused_not_crashed_on() -> None:
    import httpx

    from api.catalog import app as catalog_app
    from api.search import app as search_app

    for app, path in (
        (catalog_app, "/api/v1/catalog/titles/a%00b"),
        (catalog_app, "/api/v1/catalog/people/a%00b"),
        (catalog_app, "/api/v1/catalog/titles?genre=a%00"),
        (search_app, "/api/v1/search?q=%00"),
        (search_app, "/api/v1/search/autocomplete?q=ab%00"),
    ):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get(path)
        assert response.status_code in (404, 422), (path, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/problem+json"), path
