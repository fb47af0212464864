"""People through HTTP: create (slugs for namesakes), change, soft delete hides their credits, restore."""

from __future__ import annotations

import httpx

from tests.catalog_admin.conftest import API, audit_events, create_title, field_codes, imdb, unique
from tests.support.identity import SignedIn


async def test_person_lifecycle(client: httpx.AsyncClient, manager: SignedIn, database_url: str) -> None:
    headers = manager.headers
    name = unique("Zoë Saldaña")
    created = await client.post(
        f"{API}/people",
        json={
            "name": name,
            "biography": "Actor.",
            "birth_date": "1978-06-19",
            "imdb_id": imdb("nm"),
            "tmdb_id": 8691,
            "images": {"photo": {"key": "catalog/people/zoe.jpg"}},
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    person = created.json()
    assert person["slug"] == "-".join(name.lower().replace("ë", "e").replace("ñ", "n").split())
    assert person["external_ids"]["tmdb"] == "8691" and "photo" in person["images"]
    namesake = await client.post(f"{API}/people", json={"name": name}, headers=headers)
    assert namesake.json()["slug"] == person["slug"] + "-2"
    same_imdb = await client.post(
        f"{API}/people", json={"name": "Else", "imdb_id": person["external_ids"]["imdb"]}, headers=headers
    )
    assert same_imdb.status_code == 409 and same_imdb.json()["code"] == "imdb_id_taken"
    assert field_codes(
        await client.post(f"{API}/people", json={"name": "X", "imdb_id": "tt1234567"}, headers=headers)
    ) == [("imdb_id", "invalid_imdb_id")]
    assert field_codes(
        await client.post(f"{API}/people", json={"name": "X", "birth_date": "2999-01-01"}, headers=headers)
    ) == [("birth_date", "birth_date_in_future")]

    title = await create_title(client, manager, status="published")
    credited = await client.put(
        f"{API}/titles/{title['id']}/credits",
        json={"cast": [{"person_id": person["id"], "character": "Neytiri"}]},
        headers=headers,
    )
    assert [c["character"] for c in credited.json()["cast"]] == ["Neytiri"]
    changed = await client.patch(
        f"{API}/people/{person['id']}", json={"biography": None, "images": {"photo": None}}, headers=headers
    )
    assert (
        changed.status_code == 200 and changed.json()["biography"] is None and changed.json()["images"] == {}
    )
    assert [c["title"]["id"] for c in changed.json()["credits"]] == [title["id"]]
    clash = await client.patch(
        f"{API}/people/{person['id']}", json={"slug": namesake.json()["slug"]}, headers=headers
    )
    assert clash.status_code == 409 and clash.json()["code"] == "slug_taken"

    assert (await client.delete(f"{API}/people/{person['id']}", headers=headers)).status_code == 204
    page = await client.get(f"{API}/titles/{title['id']}")
    assert page.status_code == 200 and page.json()["cast"] == []
    assert (await client.get(f"{API}/people/{person['id']}")).status_code == 404
    restored = await client.post(f"{API}/people/{person['id']}/restore", headers=headers)
    assert restored.status_code == 200 and restored.json()["name"] == name
    assert [c["name"] for c in (await client.get(f"{API}/titles/{title['id']}")).json()["cast"]] == [name]
    again = await client.post(f"{API}/people/{person['id']}/restore", headers=headers)
    assert again.status_code == 409 and again.json()["code"] == "not_deleted"

    events = await audit_events(database_url, person["id"])
    assert [event for event, _ in events] == [
        "catalog_created",
        "catalog_updated",
        "catalog_deleted",
        "catalog_restored",
    ]
    assert events[1][1]["changed"] == ["biography", "images"] and events[1][1]["entity"] == "person"
