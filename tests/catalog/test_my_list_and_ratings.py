"""My List and ratings per profile, with aggregates kept exact under concurrent ratings."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import httpx

from tests.catalog.conftest import CATALOG, Viewers, ids, select_profile
from tests.support import catalog_factory as make
from tests.support.identity import signed_in_user, users_client


async def test_my_list(db: Any, catalog: httpx.AsyncClient, viewers: Viewers) -> None:
    titles = [await make.title(db, f"Listable {n}") for n in range(3)]
    draft = await make.title(db, "Not yet listable", status="draft")
    anonymous = await catalog.get(f"{CATALOG}/my-list")
    assert anonymous.status_code == 401
    no_profile = await catalog.put(f"{CATALOG}/my-list/{titles[0]}", headers=viewers.no_profile)
    assert no_profile.status_code == 400 and no_profile.json()["code"] == "profile_required"
    assert (await catalog.get(f"{CATALOG}/my-list", headers=viewers.no_profile)).status_code == 400

    adult = viewers.adult
    added = await catalog.put(f"{CATALOG}/my-list/{titles[0]}", headers=adult)
    assert added.status_code == 200 and added.json()["title"]["id"] == str(titles[0])
    assert added.headers["cache-control"] == "private, no-store"
    again = await catalog.put(f"{CATALOG}/my-list/{titles[0]}", headers=adult)
    assert again.json()["added_at"] == added.json()["added_at"]  # idempotent
    for title_id in titles[1:]:
        assert (await catalog.put(f"{CATALOG}/my-list/{title_id}", headers=adult)).status_code == 200
    refused = await catalog.put(f"{CATALOG}/my-list/{draft}", headers=adult)
    assert refused.status_code == 404 and refused.json()["code"] == "title_not_found"
    assert (await catalog.put(f"{CATALOG}/my-list/{uuid.uuid4()}", headers=adult)).status_code == 404

    # Newest first, page by page; the kids profile has its own (empty of these) list.
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await catalog.get(f"{CATALOG}/my-list", params=params, headers=adult)
        assert page.status_code == 200 and page.headers["cache-control"] == "private, no-store"
        seen += ids(page.json())
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    mine = [str(title_id) for title_id in titles]
    assert [title_id for title_id in seen if title_id in mine] == mine[::-1]
    kids_list = await catalog.get(f"{CATALOG}/my-list", params={"limit": 100}, headers=viewers.kids)
    assert not set(mine) & set(ids(kids_list.json()))

    for _ in range(2):  # idempotent
        removed = await catalog.delete(f"{CATALOG}/my-list/{titles[1]}", headers=adult)
        assert removed.status_code == 204
    after = await catalog.get(f"{CATALOG}/my-list", params={"limit": 100}, headers=adult)
    assert str(titles[1]) not in ids(after.json())
    for title_id in (titles[0], titles[2]):
        await catalog.delete(f"{CATALOG}/my-list/{title_id}", headers=adult)


async def test_rating_a_title(db: Any, catalog: httpx.AsyncClient, viewers: Viewers) -> None:
    title_id = await make.title(db, "Rateable", maturity_level="all")
    url = f"{CATALOG}/titles/{title_id}/rating"
    adult, kids = viewers.adult, viewers.kids
    none = await catalog.get(url, headers=adult)
    assert none.status_code == 200
    assert (none.json()["thumbs"], none.json()["stars"], none.json()["rated_at"]) == (None, None, None)
    assert none.headers["cache-control"] == "private, no-store"

    first = (await catalog.put(url, json={"thumbs": 1, "stars": 4}, headers=adult)).json()
    assert (first["thumbs"], first["stars"]) == (1, 4)
    assert first["user_ratings"] == {"thumbs_up": 1, "thumbs_down": 0, "stars_average": 4.0, "stars_count": 1}
    second = (await catalog.put(url, json={"thumbs": -1, "stars": 1}, headers=kids)).json()
    assert second["user_ratings"] == {
        "thumbs_up": 1,
        "thumbs_down": 1,
        "stars_average": 2.5,
        "stars_count": 2,
    }
    # A new rating replaces the profile's previous one (a part left out is cleared).
    changed = (await catalog.put(url, json={"thumbs": -1}, headers=adult)).json()
    assert (changed["thumbs"], changed["stars"]) == (-1, None)
    assert changed["user_ratings"] == {
        "thumbs_up": 0,
        "thumbs_down": 2,
        "stars_average": 1.0,
        "stars_count": 1,
    }
    mine = (await catalog.get(url, headers=adult)).json()
    assert (mine["thumbs"], mine["stars"]) == (-1, None) and mine["rated_at"]
    detail = (await catalog.get(f"{CATALOG}/titles/{title_id}")).json()
    assert detail["user_ratings"] == changed["user_ratings"]

    for _ in range(2):
        assert (await catalog.delete(url, headers=kids)).status_code == 204
    after = (await catalog.get(url, headers=adult)).json()
    assert after["user_ratings"] == {
        "thumbs_up": 0,
        "thumbs_down": 1,
        "stars_average": None,
        "stars_count": 0,
    }

    for bad in ({}, {"thumbs": None, "stars": None}, {"thumbs": 0}, {"stars": 6}, {"stars": 0}, {"x": 1}):
        response = await catalog.put(url, json=bad, headers=adult)
        assert response.status_code == 422, bad
    no_profile = await catalog.put(url, json={"thumbs": 1}, headers=viewers.no_profile)
    assert no_profile.status_code == 400 and no_profile.json()["code"] == "profile_required"
    assert (await catalog.put(url, json={"thumbs": 1})).status_code == 401
    missing = await catalog.put(f"{CATALOG}/titles/{uuid.uuid4()}/rating", json={"thumbs": 1}, headers=adult)
    assert missing.status_code == 404


async def test_concurrent_ratings_leave_exact_aggregates(
    db: Any, database_url: str, catalog: httpx.AsyncClient
) -> None:
    title_id = await make.title(db, "Crowded")
    user = await signed_in_user(database_url)
    # More profiles than the API allows one account, inserted directly: the limit is not under test.
    profile_ids = []
    for n in range(24):
        cursor = await db.execute(
            "insert into public.profiles (user_id, name) values (%s, %s) returning id",
            (user.user_id, f"R{n}"),
        )
        profile_ids.append((await cursor.fetchone())[0])
    async with users_client() as users:
        tokens = await asyncio.gather(*(select_profile(users, user.headers, str(p)) for p in profile_ids))

    url = f"{CATALOG}/titles/{title_id}/rating"
    rng = random.Random(7)

    def vote() -> dict[str, Any]:
        return {"thumbs": rng.choice([-1, 1, None]), "stars": rng.choice([1, 2, 3, 4, 5, None])}

    async def rate(headers: dict[str, str], body: dict[str, Any] | None) -> None:
        if body is None:
            response = await catalog.delete(url, headers=headers)
            assert response.status_code == 204, response.text
            return
        if body["thumbs"] is None and body["stars"] is None:
            body = {"thumbs": 1}
        response = await catalog.put(url, json=body, headers=headers)
        assert response.status_code == 200, response.text

    final: dict[int, dict[str, Any] | None] = {}
    for _round in range(3):  # rate, re-rate or remove, all profiles at once each round
        batch = {n: (vote() if rng.random() > 0.2 else None) for n in range(len(tokens))}
        await asyncio.gather(*(rate(tokens[n], body) for n, body in batch.items()))
        for n, body in batch.items():
            if body is not None and body["thumbs"] is None and body["stars"] is None:
                body = {"thumbs": 1, "stars": None}
            final[n] = body

    kept = [body for body in final.values() if body is not None]
    stars = [body["stars"] for body in kept if body["stars"] is not None]
    expected = {
        "thumbs_up": sum(body["thumbs"] == 1 for body in kept),
        "thumbs_down": sum(body["thumbs"] == -1 for body in kept),
        "stars_average": round(sum(stars) / len(stars), 2) if stars else None,
        "stars_count": len(stars),
    }
    detail = (await catalog.get(f"{CATALOG}/titles/{title_id}")).json()
    assert detail["user_ratings"] == expected
    cursor = await db.execute(
        """select count(*) filter (where thumbs = 1), count(*) filter (where thumbs = -1), count(stars),
                  coalesce(sum(stars), 0)
           from public.catalog_ratings where title_id = %s""",
        (title_id,),
    )
    recount = await cursor.fetchone()
    counters = await (
        await db.execute(
            "select thumbs_up, thumbs_down, stars_count, stars_sum from public.catalog_titles where id = %s",
            (title_id,),
        )
    ).fetchone()
    assert counters == recount
