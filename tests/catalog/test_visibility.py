"""Visibility end to end: publishing states, windows, countries and maturity, everywhere titles are served."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.catalog.conftest import CATALOG, Viewers, genre_slug, ids, unique
from tests.support import catalog_factory as make
from tests.support.identity import random_ip


async def browse_ids(
    client: httpx.AsyncClient, genre: str, headers: dict[str, str] | None = None, **params: Any
) -> set[str]:
    response = await client.get(
        f"{CATALOG}/titles", params={"genre": genre_slug(genre), "limit": 100, **params}, headers=headers
    )
    assert response.status_code == 200, response.text
    return set(ids(response.json()))


async def status_of(client: httpx.AsyncClient, title_id: Any, headers: dict[str, str] | None = None) -> int:
    return (await client.get(f"{CATALOG}/titles/{title_id}", headers=headers)).status_code


async def test_publishing_states_and_windows(db: Any, catalog: httpx.AsyncClient, viewers: Viewers) -> None:
    now = datetime.now(UTC)
    genre = unique("Vis")
    made = {
        "published": await make.title(db, "Shown", genres=[genre]),
        "draft": await make.title(db, "Draft", status="draft", genres=[genre]),
        "archived": await make.title(db, "Archived", status="archived", genres=[genre]),
        "deleted": await make.title(db, "Deleted", genres=[genre], deleted_at=now),
        "due": await make.title(
            db, "Due", status="scheduled", publish_at=now - timedelta(minutes=1), genres=[genre]
        ),
        "later": await make.title(
            db, "Later", status="scheduled", publish_at=now + timedelta(hours=1), genres=[genre]
        ),
        "ended": await make.title(db, "Ended", available_until=now - timedelta(seconds=1), genres=[genre]),
        "not_yet": await make.title(db, "Not yet", available_from=now + timedelta(days=1), genres=[genre]),
        "in_window": await make.title(
            db,
            "In window",
            available_from=now - timedelta(days=1),
            available_until=now + timedelta(days=1),
            genres=[genre],
        ),
    }
    visible = {str(made[name]) for name in ("published", "due", "in_window")}
    assert await browse_ids(catalog, genre) == visible
    for name, title_id in made.items():
        expected = 200 if str(title_id) in visible else 404
        assert await status_of(catalog, title_id) == expected, name
    missing = await catalog.get(f"{CATALOG}/titles/no-such-title")
    assert missing.status_code == 404 and missing.json()["code"] == "title_not_found"
    hidden = await catalog.get(f"{CATALOG}/titles/{made['draft']}")
    assert hidden.json()["code"] == missing.json()["code"]  # a hidden title answers like a missing one

    # A scheduled title goes live when its publish time has come.
    await db.execute(
        "update public.catalog_titles set publish_at = %s where id = %s",
        (now - timedelta(seconds=1), made["later"]),
    )
    assert await status_of(catalog, made["later"]) == 200
    assert str(made["later"]) in await browse_ids(catalog, genre)

    # Content managers see every title that is not deleted, with its publishing fields.
    manager = viewers.manager
    assert await browse_ids(catalog, genre, manager) == {str(v) for k, v in made.items() if k != "deleted"}
    draft = await catalog.get(f"{CATALOG}/titles/{made['draft']}", headers=manager)
    assert draft.status_code == 200
    assert draft.json()["publishing"]["status"] == "draft"
    assert draft.headers["cache-control"] == "private, no-store"
    assert await status_of(catalog, made["deleted"], manager) == 404
    viewer_detail = await catalog.get(f"{CATALOG}/titles/{made['published']}", headers=viewers.adult)
    assert viewer_detail.json()["publishing"] is None


async def test_country_allow_and_deny_lists(db: Any, settings_env: Any, viewers: Viewers) -> None:
    genre = unique("Geo")
    everywhere = str(await make.title(db, "Everywhere", genres=[genre]))
    only_fr = str(await make.title(db, "Only FR", country_allow=["FR", "BE"], genres=[genre]))
    not_de = str(await make.title(db, "Not DE", country_deny=["DE"], genres=[genre]))
    proxy = random_ip()
    settings_env(TRUSTED_PROXIES=proxy, DEFAULT_COUNTRY=None)
    from api.catalog import app
    from tests.support.identity import client_for

    async with client_for(app, client_ip=proxy) as edge:
        seen = {
            country: await browse_ids(edge, genre, {"x-vercel-ip-country": country})
            for country in ("FR", "DE", "US")
        }
        assert seen["FR"] == {everywhere, only_fr, not_de}
        assert seen["DE"] == {everywhere}
        assert seen["US"] == {everywhere, not_de}
        # An unknown country sees only titles without an allow list.
        assert await browse_ids(edge, genre) == {everywhere, not_de}
        assert await status_of(edge, only_fr, {"x-vercel-ip-country": "be"}) == 200
        assert await status_of(edge, only_fr, {"x-vercel-ip-country": "US"}) == 404
        assert await status_of(edge, not_de, {"x-vercel-ip-country": "DE", **viewers.adult}) == 404
    # The header counts only from a trusted proxy: a client cannot claim a country.
    async with client_for(app) as direct:
        assert await browse_ids(direct, genre, {"x-vercel-ip-country": "FR"}) == {everywhere, not_de}
        settings_env(DEFAULT_COUNTRY="DE")
        assert await browse_ids(direct, genre, {"x-vercel-ip-country": "FR"}) == {everywhere}


async def test_kids_profile_never_sees_an_r_title(
    db: Any, catalog: httpx.AsyncClient, viewers: Viewers
) -> None:
    genre, actor = unique("Kids"), unique("Actor")
    person_id = await make.person(db, actor)
    popular = 1e14 + datetime.now(UTC).timestamp()  # above anything other tests make: in every row
    r_title = await make.title(
        db, "Grim", rating_system="mpaa", rating="R", maturity_level="16+", popularity=popular, genres=[genre]
    )
    g_title = await make.title(
        db,
        "Sunny",
        rating_system="mpaa",
        rating="G",
        maturity_level="all",
        popularity=popular,
        genres=[genre],
    )
    for title_id in (r_title, g_title):
        await db.execute(
            """insert into public.catalog_credits (title_id, person_id, role, character)
               values (%s, %s, 'cast', 'Lead')""",
            (title_id, person_id),
        )
    r_id, g_id = str(r_title), str(g_title)

    # The adult profile sees both everywhere.
    assert await browse_ids(catalog, genre, viewers.adult) == {r_id, g_id}
    home = (await catalog.get(f"{CATALOG}/home", headers=viewers.adult)).json()
    assert all(
        r_id in ids(row) for row in home["rows"] if row["id"] in ("trending", f"genre:{genre_slug(genre)}")
    )

    kids = viewers.kids
    assert await browse_ids(catalog, genre, kids) == {g_id}
    assert await status_of(catalog, r_id, kids) == 404
    page = (await catalog.get(f"{CATALOG}/people/{person_id}", headers=kids)).json()
    assert [credit["title"]["id"] for credit in page["credits"]] == [g_id]
    home = (await catalog.get(f"{CATALOG}/home", headers=kids)).json()
    assert all(r_id not in ids(row) for row in home["rows"])
    assert g_id in ids(next(row for row in home["rows"] if row["id"] == "trending"))
    assert (await catalog.put(f"{CATALOG}/my-list/{r_id}", headers=kids)).status_code == 404
    rating = await catalog.put(f"{CATALOG}/titles/{r_id}/rating", json={"thumbs": 1}, headers=kids)
    assert rating.status_code == 404
    assert (await catalog.get(f"{CATALOG}/titles/{r_id}/rating", headers=kids)).status_code == 404

    # A listed title rerated above the profile's level disappears from its list (and comes back).
    assert (await catalog.put(f"{CATALOG}/my-list/{g_id}", headers=kids)).status_code == 200
    listed = await catalog.get(f"{CATALOG}/my-list", params={"limit": 100}, headers=kids)
    assert g_id in ids(listed.json())
    await db.execute("update public.catalog_titles set maturity_level = '18+' where id = %s", (g_title,))
    listed = await catalog.get(f"{CATALOG}/my-list", params={"limit": 100}, headers=kids)
    assert g_id not in ids(listed.json())
    home = (await catalog.get(f"{CATALOG}/home", headers=kids)).json()
    assert all(g_id not in ids(row) for row in home["rows"])
    await db.execute("update public.catalog_titles set maturity_level = 'all' where id = %s", (g_title,))
    listed = await catalog.get(f"{CATALOG}/my-list", params={"limit": 100}, headers=kids)
    assert g_id in ids(listed.json())
    await catalog.delete(f"{CATALOG}/my-list/{g_id}", headers=kids)
    # Both are pushed down again so they do not crowd other tests' rows.
    await db.execute(
        "update public.catalog_titles set popularity = 0 where id = any(%s)", ([r_title, g_title],)
    )
