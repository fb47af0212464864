"""Search results and autocomplete carry image URLs, resolved as the catalog's cards are: a poster kept in
object storage comes back as a signed URL that the dev server really serves, not as its storage key."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from PIL import Image

from shared.catalog.images import size_names
from shared.infra.loop_local import reset_all
from shared.infra.storage import LocalStorage, get_storage
from shared.local.devserver import DevServer
from tests.search.conftest import AUTOCOMPLETE, SEARCH
from tests.support import catalog_factory as factory
from tests.support.identity import client_for


def _jpeg(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 90, 160)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
async def storage_images(search_db: str, settings_env: Callable[..., None]) -> None:
    """Images from object storage (no Cloudinary), as on a machine without accounts."""
    settings_env(IMAGES_BACKEND=None, CLOUDINARY_URL=None)
    await reset_all()


async def test_stored_posters_come_back_as_urls_the_dev_server_serves(
    search_db: str, storage_images: None
) -> None:
    storage = await get_storage()
    assert isinstance(storage, LocalStorage)
    word = f"quillfeather{uuid.uuid4().hex[:6]}"
    poster_key = f"catalog/search-test/{word}/poster.jpg"
    photo_key = f"catalog/search-test/{word}/photo.jpg"
    await storage.put_bytes(poster_key, _jpeg((40, 60)), content_type="image/jpeg")
    await storage.put_bytes(photo_key, _jpeg((30, 45)), content_type="image/jpeg")
    async with await psycopg.AsyncConnection.connect(search_db, autocommit=True) as db:
        await factory.title(
            db,
            f"The {word} Stored",
            cast=[(f"Ines {word}", "Lead")],
            images={"poster": {"key": poster_key, "width": 40, "height": 60}},
        )
        await factory.title(
            db, f"The {word} Linked", images={"poster": {"url": "https://img.example/linked.jpg"}}
        )
        await db.execute(
            "update public.catalog_people set images = %s where name = %s",
            (psycopg.types.json.Jsonb({"photo": {"key": photo_key}}), f"Ines {word}"),
        )
        await factory.title(db, f"The {word} Bare")

    async with client_for(DevServer()) as dev:
        found = await dev.get(SEARCH, params={"q": word})
        assert found.status_code == 200, found.text
        hits = {item["title"]: item["images"] for item in found.json()["items"]}
        suggested = await dev.get(AUTOCOMPLETE, params={"q": f"the {word}"})
        assert suggested.status_code == 200, suggested.text
        suggestions = {item["title"]: item["images"] for item in suggested.json()["titles"]}
        people = await dev.get(AUTOCOMPLETE, params={"q": f"ines {word}"})
        assert people.status_code == 200, people.text
        person_images = {item["name"]: item["images"] for item in people.json()["people"]}

        assert set(hits) == set(suggestions) == {f"The {word} {end}" for end in ("Stored", "Linked", "Bare")}
        for images in (hits, suggestions):
            stored = images[f"The {word} Stored"]
            assert list(stored) == ["poster"] and list(stored["poster"]) == size_names("poster")
            assert "key" not in stored["poster"]
            assert images[f"The {word} Linked"]["poster"]["w342"] == "https://img.example/linked.jpg"
            assert images[f"The {word} Bare"] == {}
        # Each one a signed download of the stored original that the dev server hands out.
        await _served(dev, hits[f"The {word} Stored"]["poster"]["w342"], poster_key, (40, 60))
        await _served(dev, suggestions[f"The {word} Stored"]["poster"]["w185"], poster_key, (40, 60))
        await _served(dev, person_images[f"Ines {word}"]["photo"]["w185"], photo_key, (30, 45))


async def _served(dev: httpx.AsyncClient, url: str, key: str, size: tuple[int, int]) -> None:
    parts = urlsplit(url)
    assert parts.path == f"/_storage/{key}" and parts.query, url
    response = await dev.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 200, (url, response.text)
    assert Image.open(io.BytesIO(response.content)).size == size
    tampered = await dev.get(f"{parts.path}x?{parts.query}")
    assert tampered.status_code == 403
