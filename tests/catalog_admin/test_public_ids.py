"""Cloudinary public_ids under catalog/images/ in images entries: only the names upload tickets hand out,
a delivery extension (.jpg, ...) stripped, so every stored entry names an image exactly as the Admin API
lists it and the daily sweep never takes a used image for an unused one. Through the admin API (422) and
the importer (per-row errors), over HTTP; the sweep with the real SDK against the local stand-in."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest

from shared.catalog_admin import image_sweep
from shared.images.direct_upload import new_name
from shared.settings import get_settings
from tests.catalog_admin.conftest import API, create_title, encoded, field_codes, unique
from tests.support.catalog_factory import Db
from tests.support.cloudinary_server import CloudinaryServer
from tests.support.identity import SignedIn

IMPORT = f"{API}/import"
DAY = 86400


async def stored_images(database_url: str, table: str, row_id: str) -> dict[str, Any]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(f"select images from public.{table} where id = %s", (row_id,))
        row = await cursor.fetchone()
        assert row is not None
        images: dict[str, Any] = row[0]
        return images


def issued() -> str:
    return f"catalog/images/{new_name()}"


@pytest.mark.parametrize(
    "public_id",
    [
        "catalog/images/legacy-poster",  # not a name we hand out
        "catalog/images/1700000000-abc",  # too short to be one
        f"catalog/images/{new_name()}.tiff",  # not a delivery extension we strip
        f"catalog/images/{new_name()}.jpg.jpg",
        f"catalog/images/{new_name()}/x",
        f"catalog/images/sub/{new_name()}",
    ],
)
async def test_the_admin_api_refuses_other_names_under_the_folder(
    client: httpx.AsyncClient, manager: SignedIn, public_id: str
) -> None:
    response = await client.post(
        f"{API}/titles",
        json={"kind": "movie", "title": unique("Odd Id"), "images": {"poster": {"public_id": public_id}}},
        headers=manager.headers,
    )
    assert field_codes(response) == [("images.poster.public_id", "invalid_public_id")]
    assert "catalog/images/" in response.json()["errors"][0]["msg"]


async def test_the_admin_api_strips_a_delivery_extension_and_keeps_other_folders(
    client: httpx.AsyncClient, manager: SignedIn, database_url: str
) -> None:
    poster, backdrop = issued(), issued()
    title = await create_title(
        client,
        manager,
        images={
            "poster": {"public_id": f"{poster}.jpg", "version": 3},
            "backdrop": {"public_id": f"{backdrop}.webp"},
            "logo": {"public_id": "brand/logo.png"},  # outside catalog/images/: never swept, kept as given
        },
    )
    images = await stored_images(database_url, "catalog_titles", title["id"])
    assert images["poster"] == {"public_id": poster, "version": 3}
    assert images["backdrop"] == {"public_id": backdrop}
    assert images["logo"] == {"public_id": "brand/logo.png"}

    # PATCH too, and a person's photo (the same ImageRef).
    still_poster = issued()
    response = await client.patch(
        f"{API}/titles/{title['id']}",
        json={"images": {"poster": {"public_id": f"{still_poster}.png"}}},
        headers=manager.headers,
    )
    assert response.status_code == 200, response.text
    assert (await stored_images(database_url, "catalog_titles", title["id"]))["poster"] == {
        "public_id": still_poster
    }
    refused = await client.patch(
        f"{API}/titles/{title['id']}",
        json={"images": {"poster": {"public_id": "catalog/images/poster"}}},
        headers=manager.headers,
    )
    assert field_codes(refused) == [("images.poster.public_id", "invalid_public_id")]
    photo = issued()
    person = await client.post(
        f"{API}/people",
        json={"name": unique("Id Person"), "images": {"photo": {"public_id": f"{photo}.jpeg"}}},
        headers=manager.headers,
    )
    assert person.status_code == 201, person.text
    assert (await stored_images(database_url, "catalog_people", person.json()["id"]))["photo"] == {
        "public_id": photo
    }


def rows_of(report: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    return [(r["status"], [(e["field"], e["code"]) for e in r["errors"]]) for r in report["rows"]]


async def test_csv_import_strips_extensions_and_rejects_other_names(
    client: httpx.AsyncClient, manager: SignedIn, database_url: str
) -> None:
    good, bad = unique("Csv Id"), unique("Csv Bad Id")
    poster = issued()
    text = "\n".join(
        [
            "title,poster,backdrop",
            f"{good},cloudinary:{poster}.jpg,cloudinary:elsewhere/backdrop",
            f"{bad},cloudinary:catalog/images/{uuid.uuid4().hex}.jpg,",
            "",
        ]
    )
    response = await client.post(
        IMPORT, content=text.encode(), headers={**manager.headers, "content-type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert rows_of(report) == [
        ("imported", []),
        ("rejected", [("images.poster.public_id", "invalid_public_id")]),
    ]
    images = await stored_images(database_url, "catalog_titles", report["rows"][0]["id"])
    assert images == {"poster": {"public_id": poster}, "backdrop": {"public_id": "elsewhere/backdrop"}}


async def test_json_import_checks_nested_images(
    client: httpx.AsyncClient, manager: SignedIn, database_url: str
) -> None:
    still = issued()
    rows = [
        {
            "kind": "series",
            "title": unique("Json Id Series"),
            "seasons": [
                {
                    "number": 1,
                    "episodes": [{"number": 1, "name": "One", "images": {"still": {"public_id": still}}}],
                }
            ],
        },
        {
            "kind": "series",
            "title": unique("Json Bad Id Series"),
            "seasons": [
                {
                    "number": 1,
                    "images": {"poster": {"public_id": "catalog/images/season-1.jpg"}},
                    "episodes": [],
                }
            ],
        },
    ]
    response = await client.post(IMPORT, json={"titles": rows}, headers=manager.headers)
    assert response.status_code == 200, response.text
    assert rows_of(response.json()) == [
        ("imported", []),
        ("rejected", [("seasons.0.images.poster.public_id", "invalid_public_id")]),
    ]


async def test_an_image_imported_with_its_extension_survives_the_sweep(
    db: Db,
    client: httpx.AsyncClient,
    manager: SignedIn,
    settings_env: Callable[..., None],
    cloudinary_env: CloudinaryServer,
) -> None:
    """Cloudinary lists catalog/images/<name> for an image delivered as .../<name>.jpg."""
    server = cloudinary_env
    settings_env(CLOUDINARY_SWEEP_UNUSED="true")
    used = f"catalog/images/{new_name(at=time.time() - 30 * DAY)}"
    unused = f"catalog/images/{new_name(at=time.time() - 30 * DAY)}"
    for public_id in (used, unused):
        server.add(public_id, encoded((60, 90)))
    response = await client.post(
        IMPORT,
        content=f"title,poster\n{unique('Swept Id')},cloudinary:{used}.jpg\n".encode(),
        headers={**manager.headers, "content-type": "text/csv"},
    )
    assert rows_of(response.json()) == [("imported", [])]

    candidates = await image_sweep.cloudinary_candidates(settings=get_settings())
    assert {used, unused} <= set(candidates)
    assert await image_sweep.sweep_cloudinary(db, settings=get_settings(), candidates=candidates) >= 1
    assert used in server.resources and unused not in server.resources
