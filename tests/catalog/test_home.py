"""Home page rows: trending, new arrivals, top rated, genre rows, My List and continue watching."""

from __future__ import annotations

import itertools
import time
from typing import Any

import httpx

from tests.catalog.conftest import CATALOG, Viewers, genre_slug, ids, unique
from tests.support import catalog_factory as make

# The run shares one database: titles of these tests are made more popular than anything else, each test
# more than the one before, so that they lead the rows they are checked in.
_bump = itertools.count()


def top_popularity() -> float:
    return 1e14 + time.time() * 1000 + next(_bump) * 100


def row(home: dict[str, Any], row_id: str) -> list[str]:
    found = [r for r in home["rows"] if r["id"] == row_id]
    assert len(found) == 1, [r["id"] for r in home["rows"]]
    return ids(found[0])


async def get_home(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await client.get(f"{CATALOG}/home", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    for shown in body["rows"]:
        assert len(shown["items"]) <= 20 and shown["title"]
    return body


async def test_anonymous_rows(db: Any, catalog: httpx.AsyncClient) -> None:
    genre = unique("Homegenre")
    popular = top_popularity()
    leader = await make.title(db, "Leader", popularity=popular + 10, genres=[genre])
    second = await make.title(db, "Second", popularity=popular, genres=[genre])
    hidden = await make.title(db, "Hidden", status="draft", popularity=popular + 20, genres=[genre])
    best = await make.title(db, "Loved", thumbs_up=10**6, stars_sum=5 * 10**6, stars_count=10**6)
    few_votes = await make.title(db, "Few votes", stars_sum=45, stars_count=9)
    newest = await make.title(db, "Just arrived")

    home = await get_home(catalog)
    order = [r["id"] for r in home["rows"]]
    assert order[:3] == ["trending", "new_arrivals", "top_rated"]
    assert "my_list" not in order and "continue_watching" not in order
    assert row(home, "trending")[:2] == [str(leader), str(second)]
    assert row(home, "new_arrivals")[0] == str(newest)
    top = row(home, "top_rated")
    assert top[0] == str(best) and str(few_votes) not in top  # under the 10-vote threshold
    genre_row = row(home, f"genre:{genre_slug(genre)}")
    assert genre_row == [str(leader), str(second)]
    assert order.index(f"genre:{genre_slug(genre)}") == 3  # the most popular genre comes first
    assert all(str(hidden) not in ids(r) for r in home["rows"])
    await db.execute(
        "update public.catalog_titles set popularity = 0 where id = any(%s)", ([leader, second, hidden],)
    )


async def test_trending_counts_recent_engagement(
    db: Any, catalog: httpx.AsyncClient, viewers: Viewers
) -> None:
    popular = top_popularity()
    quiet = await make.title(db, "Quiet", popularity=popular + 5)
    buzzing = await make.title(db, "Buzzing", popularity=popular)
    assert row(await get_home(catalog), "trending")[:2] == [str(quiet), str(buzzing)]
    # A My List add and a positive rating in the last week lift it past the slightly more popular one.
    assert (await catalog.put(f"{CATALOG}/my-list/{buzzing}", headers=viewers.adult)).status_code == 200
    assert row(await get_home(catalog), "trending")[:2] == [str(buzzing), str(quiet)]
    # Older engagement does not count.
    await db.execute(
        "update public.catalog_my_list set added_at = now() - interval '8 days' where title_id = %s",
        (buzzing,),
    )
    assert row(await get_home(catalog), "trending")[:2] == [str(quiet), str(buzzing)]
    rated = await catalog.put(f"{CATALOG}/titles/{buzzing}/rating", json={"stars": 5}, headers=viewers.adult)
    assert rated.status_code == 200
    assert row(await get_home(catalog), "trending")[:2] == [str(buzzing), str(quiet)]
    await catalog.delete(f"{CATALOG}/my-list/{buzzing}", headers=viewers.adult)
    await db.execute(
        "update public.catalog_titles set popularity = 0 where id = any(%s)", ([quiet, buzzing],)
    )


async def test_profile_rows(db: Any, catalog: httpx.AsyncClient, viewers: Viewers) -> None:
    first = await make.title(db, "Listed first")
    then = await make.title(db, "Listed then")
    for title_id in (first, then):
        assert (await catalog.put(f"{CATALOG}/my-list/{title_id}", headers=viewers.adult)).status_code == 200
    home = await get_home(catalog, viewers.adult)
    assert [r["id"] for r in home["rows"]][:2] == ["continue_watching", "my_list"]
    assert home["rows"][0]["items"] == []  # filled by playback later
    assert row(home, "my_list")[:2] == [str(then), str(first)]
    # Signed in without a profile: no profile rows.
    plain = await get_home(catalog, viewers.no_profile)
    assert not {"continue_watching", "my_list"} & {r["id"] for r in plain["rows"]}
    for title_id in (first, then):
        await catalog.delete(f"{CATALOG}/my-list/{title_id}", headers=viewers.adult)
