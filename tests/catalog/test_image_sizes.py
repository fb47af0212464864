"""Stored catalog images with resized variants (`sizes`): each size resolves to its variant's signed URL, the
rest to the original; the demo seed writes the variants its entries name."""

from __future__ import annotations

import io
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from PIL import Image

from shared.catalog import demo
from shared.catalog.images import image_urls
from shared.infra.loop_local import reset_all
from shared.infra.storage import LocalStorage, get_storage
from shared.settings import get_settings


@pytest.fixture
async def storage_settings(settings_env: Callable[..., None]) -> None:
    settings_env(IMAGES_BACKEND=None, CLOUDINARY_URL=None)
    await reset_all()


def path_of(url: str) -> str:
    return urlsplit(url).path


async def test_sizes_pick_variants_and_fall_back_to_the_original(storage_settings: None) -> None:
    poster = "catalog/images/" + "b" * 32 + ".jpg"
    images = {
        "poster": {
            "key": poster,
            "sizes": {
                "w185": poster.replace(".jpg", "-w185.webp"),
                "w342": poster.replace(".jpg", "-w342.webp"),
            },
        },
        # Stored before variants existed (an old demo catalog): every size is the original.
        "backdrop": {"key": "catalog/demo/old/backdrop.jpg", "width": 1280, "height": 720},
        # Junk in `sizes` (not a size of the kind, not a key) is ignored rather than served.
        "logo": {
            "key": "catalog/images/logo.png",
            "sizes": {"w9999": "catalog/x.webp", "w185": 5, "original": "x"},
        },
    }
    urls = await image_urls(images, settings=get_settings(), now=1_800_000_000)
    assert path_of(urls["poster"]["w185"]).endswith("-w185.webp")
    assert path_of(urls["poster"]["w342"]).endswith("-w342.webp")
    assert (
        path_of(urls["poster"]["w500"])
        == path_of(urls["poster"]["w780"])
        == path_of(urls["poster"]["original"])
    )
    assert path_of(urls["poster"]["original"]).endswith(poster)
    assert len(set(urls["backdrop"].values())) == 1
    assert {path_of(url) for url in urls["logo"].values()} == {"/_storage/catalog/images/logo.png"}


async def test_s3_signs_each_key_once(storage_settings: None, aws_env: None) -> None:
    from shared.infra.storage import S3Storage

    storage = S3Storage(bucket="cinema-images", region="us-east-1")
    key = "catalog/images/c.png"
    urls = await image_urls(
        {"still": {"key": key, "sizes": {"w300": "catalog/images/c-w300.webp"}}},
        settings=get_settings(),
        storage=storage,
    )
    assert path_of(urls["still"]["w300"]).endswith("/catalog/images/c-w300.webp")
    assert "X-Amz-Signature=" in urlsplit(urls["still"]["w780"]).query
    assert urls["still"]["w780"] == urls["still"]["w1280"] == urls["still"]["original"]


async def test_demo_art_is_stored_with_the_variants_its_entries_name(storage_settings: None) -> None:
    storage = await get_storage()
    assert isinstance(storage, LocalStorage)
    art = [
        *demo._title_art("variants-check", "Variants Check", "2001 · Drama").values(),
        demo._still_art(1, 1, "Pilot"),
        demo._photo_art("variants-person", "Vera Check"),
    ]
    await demo._store(storage, art)
    expected = {
        "poster": {"w185": (185, 278), "w342": (342, 513), "w500": (500, 750)},  # 600 x 900
        "backdrop": {"w780": (780, 439)},  # 1280 x 720
        "still": {"w300": (300, 169), "w780": (780, 439)},  # 960 x 540
        "photo": {"w185": (185, 278), "w342": (342, 513)},  # 400 x 600
    }
    for item in art:
        entry = item.entry()
        assert set(entry["sizes"]) == set(expected[item.kind]), item.key
        for name, size in expected[item.kind].items():
            assert entry["sizes"][name] == item.key.removesuffix(".jpg") + f"-{name}.webp"
            image = Image.open(io.BytesIO(await storage.get_bytes(entry["sizes"][name])))
            assert (image.format, image.size) == ("WEBP", size), (item.key, name)
        assert Image.open(io.BytesIO(await storage.get_bytes(item.key))).size == (
            entry["width"],
            entry["height"],
        )
