"""Bulk import through HTTP: JSON and CSV, per-row report, all-or-nothing rows, upserts, dry runs."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg

from tests.catalog_admin.conftest import API, field_codes, imdb
from tests.support.identity import SignedIn

IMPORT = f"{API}/import"


async def scalar(database_url: str, query: str, *params: Any) -> Any:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(query, params)
        row = await cursor.fetchone()
        return row[0] if row else None


async def last_import_event(database_url: str, actor: uuid.UUID) -> dict[str, Any]:
    details: dict[str, Any] = await scalar(
        database_url,
        """select details from public.audit_log where event = 'catalog_imported' and actor_id = %s
           order by id desc limit 1""",
        actor,
    )
    return details


def rows_of(report: dict[str, Any]) -> list[tuple[int, str, list[tuple[str, str]]]]:
    return [(r["row"], r["status"], [(e["field"], e["code"]) for e in r["errors"]]) for r in report["rows"]]


async def test_json_import_mixed_rows_then_reimport(
    client: httpx.AsyncClient, manager: SignedIn, database_url: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    movie_imdb, series_imdb = imdb("tt"), imdb("tt")
    actor, director = f"Import Actor {tag}", f"Import Director {tag}"
    doomed_genre, doomed_person = f"Doomed Genre {tag}", f"Doomed Person {tag}"
    movie = {
        "kind": "movie",
        "title": f"Imported Movie {tag}",
        "imdb_id": movie_imdb,
        "release_date": "1999-03-31",
        "rating_system": "mpaa",
        "rating": "R",
        "status": "published",
        "genres": [f"Import Genre {tag}", "Drama"],
        "categories": [f"Import Category {tag}"],
        "cast": [{"name": actor, "character": "Neo"}],
        "crew": [{"name": director, "job": "director"}],
    }
    series = {
        "kind": "series",
        "title": f"Imported Series {tag}",
        "imdb_id": series_imdb,
        "cast": [{"name": actor, "character": "Captain"}],
        "seasons": [
            {"number": 1, "episodes": [{"number": 1, "name": "Pilot"}, {"number": 2, "name": "Two"}]},
            {"number": 2, "episodes": [{"number": 1, "name": "Return"}]},
        ],
    }
    # Valid shape, but a movie cannot have seasons: found only after its genre and person were created.
    late_failure = {
        "kind": "movie",
        "title": f"Half Imported {tag}",
        "genres": [doomed_genre],
        "cast": [{"name": doomed_person}],
        "seasons": [{"number": 1}],
    }
    invalid = {"kind": "movie", "countries": ["ZZ"], "runtime_minutes": "long"}
    body = {"titles": [movie, late_failure, series, invalid, "not a row"]}

    response = await client.post(IMPORT, json=body, headers=manager.headers)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["imported"], report["updated"], report["rejected"], report["dry_run"]) == (2, 0, 3, False)
    assert rows_of(report) == [
        (1, "imported", []),
        (2, "rejected", [("seasons", "not_a_series")]),
        (3, "imported", []),
        (
            4,
            "rejected",
            [("title", "missing"), ("runtime_minutes", "int_parsing"), ("countries.0", "invalid_country")],
        ),
        (5, "rejected", [("", "model_type")]),
    ]
    movie_id, series_id = report["rows"][0]["id"], report["rows"][2]["id"]
    assert report["rows"][1].get("id") is None

    # The good rows are there in full, through the viewer API.
    page = (await client.get(f"{API}/titles/{movie_id}")).json()
    assert page["maturity_level"] == "16+" and page["release_year"] == 1999
    assert sorted(g["name"] for g in page["genres"]) == sorted(["Drama", f"Import Genre {tag}"])
    assert [c["name"] for c in page["categories"]] == [f"Import Category {tag}"]
    assert [(c["name"], c["character"]) for c in page["cast"]] == [(actor, "Neo")]
    assert [(c["name"], c["job"]) for c in page["crew"]] == [(director, "director")]
    # Nothing of the rejected row stays: not its title, nor the genre and person it created.
    assert (
        await scalar(
            database_url, "select count(*) from catalog_titles where title like %s", f"Half Imported {tag}"
        )
        == 0
    )
    assert await scalar(database_url, "select count(*) from catalog_terms where name = %s", doomed_genre) == 0
    assert (
        await scalar(database_url, "select count(*) from catalog_people where name = %s", doomed_person) == 0
    )
    # The actor in two rows is one person.
    assert await scalar(database_url, "select count(*) from catalog_people where name = %s", actor) == 1
    assert (
        await scalar(database_url, "select count(*) from catalog_episodes where title_id = %s", series_id)
        == 3
    )
    event = await last_import_event(database_url, manager.user_id)
    assert (event["imported"], event["updated"], event["rejected"], event["format"]) == (2, 0, 3, "json")

    # Re-import: the same titles are updated (by IMDb id), nothing is duplicated.
    movie["synopsis_short"] = "Updated by a re-import."
    movie["genres"] = ["Drama"]
    series["seasons"][0]["episodes"][1]["name"] = "Two (renamed)"  # type: ignore[index]
    again = await client.post(IMPORT, json={"titles": [movie, series]}, headers=manager.headers)
    assert again.status_code == 200, again.text
    assert rows_of(again.json()) == [(1, "updated", []), (2, "updated", [])]
    assert [r["id"] for r in again.json()["rows"]] == [movie_id, series_id]
    assert (
        await scalar(database_url, "select count(*) from catalog_titles where imdb_id = %s", movie_imdb) == 1
    )
    assert await scalar(database_url, "select count(*) from catalog_people where name = %s", actor) == 1
    assert (
        await scalar(database_url, "select count(*) from catalog_episodes where title_id = %s", series_id)
        == 3
    )
    page = (await client.get(f"{API}/titles/{movie_id}")).json()
    assert page["synopsis_short"] == "Updated by a re-import."
    assert [g["name"] for g in page["genres"]] == ["Drama"]
    names = await scalar(
        database_url,
        "select array_agg(name order by name) from catalog_episodes where title_id = %s",
        series_id,
    )
    assert names == ["Pilot", "Return", "Two (renamed)"]


CSV = "\n".join(
    [
        "title,kind,release_year,runtime_minutes,rating_system,rating,genres,cast,crew,countries,poster,status",
        "{a},,1994,142,mpaa,R,Drama|{genre},Tim Robbins {tag}:Andy|Morgan Freeman {tag}:Red,"
        "Frank {tag}:director,US,cloudinary:demo/shawshank,published",
        "{b},movie,2001,90,mpaa,XXX,Comedy,,,,,",
        ",movie,2001,90,,,,,,,,",
        "",
        '{c},movie,abc,,,,,,"Solo {tag}",US|FR,https://img.test/c.jpg,',
        "",
    ]
)


async def test_csv_import(client: httpx.AsyncClient, manager: SignedIn, database_url: str) -> None:
    tag = uuid.uuid4().hex[:8]
    a, b, c, genre = f"Shawshank {tag}", f"Bad Rating {tag}", f"Bad Year {tag}", f"Prison {tag}"
    text = CSV.format(a=a, b=b, c=c, genre=genre, tag=tag)
    response = await client.post(
        IMPORT, content=text.encode(), headers={**manager.headers, "content-type": "text/csv; charset=utf-8"}
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert rows_of(report) == [
        (1, "imported", []),
        (2, "rejected", [("rating", "unknown_rating")]),
        (3, "rejected", [("title", "missing")]),
        (4, "rejected", [("release_year", "int_parsing"), ("crew.0.job", "missing")]),
    ]
    assert "PG-13" in report["rows"][1]["errors"][0]["message"]
    page = (await client.get(f"{API}/titles/{report['rows'][0]['id']}")).json()
    assert page["runtime_minutes"] == 142 and page["maturity_level"] == "16+"
    assert sorted(g["name"] for g in page["genres"]) == sorted(["Drama", genre])
    assert [(p["name"], p["character"]) for p in page["cast"]] == [
        (f"Tim Robbins {tag}", "Andy"),
        (f"Morgan Freeman {tag}", "Red"),
    ]
    assert [p["job"] for p in page["crew"]] == ["director"]
    assert await scalar(database_url, "select count(*) from catalog_titles where title = %s", b) == 0
    event = await last_import_event(database_url, manager.user_id)
    assert (event["imported"], event["rejected"], event["format"]) == (1, 3, "csv")

    # Without an IMDb id a re-import matches by the slug made from the title: an update, not a copy.
    again = await client.post(
        IMPORT,
        content=f"title,synopsis_short\n{a},Hope\n".encode(),
        headers={**manager.headers, "content-type": "text/csv"},
    )
    assert rows_of(again.json()) == [(1, "updated", [])]
    assert (
        await scalar(
            database_url, "select count(*) from catalog_titles where title = %s and deleted_at is null", a
        )
        == 1
    )


async def test_dry_run_writes_nothing(
    client: httpx.AsyncClient, manager: SignedIn, database_url: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    title = f"Dry {tag}"
    before = await scalar(database_url, "select count(*) from audit_log where event = 'catalog_imported'")
    rows = [
        {"kind": "series", "title": title, "genres": [f"Dry Genre {tag}"], "seasons": [{"number": 1}]},
        {"kind": "movie", "title": title},  # same slug: the dry run sees the first row, so an update
        {"kind": "movie", "title": "x", "rating_system": "tv", "rating": "R"},
    ]
    response = await client.post(f"{IMPORT}?dry_run=true", json={"titles": rows}, headers=manager.headers)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["dry_run"] is True
    assert rows_of(report) == [
        (1, "imported", []),
        (2, "rejected", [("kind", "has_seasons")]),
        (3, "rejected", [("rating", "unknown_rating")]),
    ]
    assert await scalar(database_url, "select count(*) from catalog_titles where title = %s", title) == 0
    assert (
        await scalar(database_url, "select count(*) from catalog_terms where name = %s", f"Dry Genre {tag}")
        == 0
    )
    assert (
        await scalar(database_url, "select count(*) from audit_log where event = 'catalog_imported'")
        == before
    )


async def test_bodies_that_are_not_imports(client: httpx.AsyncClient, manager: SignedIn) -> None:
    headers = manager.headers
    assert field_codes(await client.post(IMPORT, json={"rows": []}, headers=headers)) == [
        ("titles", "titles_required")
    ]
    bad_json = await client.post(
        IMPORT, content=b"{", headers={**headers, "content-type": "application/json"}
    )
    assert bad_json.status_code == 400 and bad_json.json()["code"] == "invalid_json"
    plain = await client.post(
        IMPORT, content=b"title\nx\n", headers={**headers, "content-type": "text/plain"}
    )
    assert plain.status_code == 415 and plain.json()["code"] == "unsupported_media_type"
    csv_headers = {**headers, "content-type": "text/csv"}
    columns = await client.post(IMPORT, content=b"title,colour,title\nx,red,y\n", headers=csv_headers)
    assert field_codes(columns) == [
        ("columns.colour", "unknown_column"),
        ("columns.title", "duplicate_column"),
    ]
    no_title = await client.post(IMPORT, content=b"kind\nmovie\n", headers=csv_headers)
    assert field_codes(no_title) == [("columns.title", "missing_column")]
    latin1 = await client.post(IMPORT, content="title\nAmélie\n".encode("latin-1"), headers=csv_headers)
    assert latin1.status_code == 400 and latin1.json()["code"] == "invalid_encoding"
    empty = await client.post(IMPORT, json={"titles": []}, headers=headers)
    assert empty.json() == {"dry_run": False, "imported": 0, "updated": 0, "rejected": 0, "rows": []}


async def _access_of(database_url: str, title_id: str) -> tuple[str, int]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute("select access, min_tier from catalog_titles where id = %s", (title_id,))
        row = await cursor.fetchone()
    assert row is not None
    return row[0], row[1]


async def test_csv_access_and_min_tier(
    client: httpx.AsyncClient, manager: SignedIn, database_url: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    name = {key: f"Offer {key} {tag}" for key in "ABCDEFGH"}
    csv_headers = {**manager.headers, "content-type": "text/csv"}
    text = "\n".join(
        [
            "title,access,min_tier",
            f"{name['A']},free,",
            f"{name['B']},subscription,3",
            f"{name['C']},,",
            f"{name['D']},premium,",
            f"{name['E']},subscription,eleven",
            f"{name['F']},subscription,11",
            f"{name['G']},transactional,2",
            f"{name['H']},Free,-1",
        ]
    )
    response = await client.post(IMPORT, content=text.encode(), headers=csv_headers)
    assert response.status_code == 200, response.text
    report = response.json()
    assert rows_of(report) == [
        (1, "imported", []),
        (2, "imported", []),
        (3, "imported", []),
        (4, "rejected", [("access", "literal_error")]),
        (5, "rejected", [("min_tier", "int_parsing")]),
        (6, "rejected", [("min_tier", "less_than_equal")]),
        (7, "imported", []),
        (8, "rejected", [("access", "literal_error"), ("min_tier", "greater_than_equal")]),
    ]
    assert "transactional" in report["rows"][3]["errors"][0]["message"]
    ids = {key: report["rows"][i]["id"] for i, key in enumerate("ABCDEFGH") if report["rows"][i]["id"]}
    # Blank cells on creation: the admin API's defaults (a tier-1 subscription title).
    assert await _access_of(database_url, ids["A"]) == ("free", 1)
    assert await _access_of(database_url, ids["B"]) == ("subscription", 3)
    assert await _access_of(database_url, ids["C"]) == ("subscription", 1)
    assert await _access_of(database_url, ids["G"]) == ("transactional", 2)
    rejected = [name[key] for key in "DEFH"]
    count = "select count(*) from catalog_titles where title = any(%s)"
    assert await scalar(database_url, count, rejected) == 0
    page = (await client.get(f"{API}/titles/{ids['A']}", headers=manager.headers)).json()
    assert (page["access"], page["min_tier"]) == ("free", 1)

    # Re-import by slug: blank cells keep the stored values, given ones change them; bad ones reject the row.
    update = "\n".join(
        [
            "title,access,min_tier,synopsis_short",
            f"{name['B']},,,Kept offer",
            f"{name['A']},subscription,2,",
            f"{name['C']},,0,",
            f"{name['G']},free_with_ads,,",
            f"{name['B']},transactional,x,",
        ]
    )
    again = await client.post(IMPORT, content=update.encode(), headers=csv_headers)
    assert again.status_code == 200, again.text
    assert rows_of(again.json()) == [
        (1, "updated", []),
        (2, "updated", []),
        (3, "updated", []),
        (4, "updated", []),
        (5, "rejected", [("min_tier", "int_parsing")]),
    ]
    assert [r["id"] for r in again.json()["rows"][:4]] == [ids["B"], ids["A"], ids["C"], ids["G"]]
    assert await _access_of(database_url, ids["B"]) == ("subscription", 3)
    assert await _access_of(database_url, ids["A"]) == ("subscription", 2)
    assert await _access_of(database_url, ids["C"]) == ("subscription", 0)
    assert await _access_of(database_url, ids["G"]) == ("free_with_ads", 2)  # min_tier kept for a switch back


async def test_json_access_and_min_tier(
    client: httpx.AsyncClient, manager: SignedIn, database_url: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    rows = [
        {"kind": "movie", "title": f"Json Offer {tag}", "access": "transactional", "min_tier": 4},
        {"kind": "movie", "title": f"Json Bad Offer {tag}", "access": "rent"},
        {"kind": "movie", "title": f"Json Null Offer {tag}", "access": None, "min_tier": None},
        {"kind": "movie", "title": f"Json Tier {tag}", "min_tier": 2.5},
    ]
    response = await client.post(IMPORT, json={"titles": rows}, headers=manager.headers)
    assert response.status_code == 200, response.text
    report = response.json()
    assert rows_of(report) == [
        (1, "imported", []),
        (2, "rejected", [("access", "literal_error")]),
        (3, "rejected", [("access", "null_not_allowed"), ("min_tier", "null_not_allowed")]),
        (4, "rejected", [("min_tier", "int_from_float")]),
    ]
    assert await _access_of(database_url, report["rows"][0]["id"]) == ("transactional", 4)
    # Left out on an update: kept.
    again = await client.post(
        IMPORT, json={"titles": [{"kind": "movie", "title": f"Json Offer {tag}"}]}, headers=manager.headers
    )
    assert rows_of(again.json()) == [(1, "updated", [])]
    assert await _access_of(database_url, report["rows"][0]["id"]) == ("transactional", 4)
