"""Stored catalog images with resized variants (`sizes`): each size resolves to its variant's signed URL, the
rest to the original; the demo seed writes the variants its entries name."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from shared.catalog import demo
from shared.catalog.images import image_urls
from shared.infra.loop_local import reset_all
from shared.infra.storage import LocalStorage, PresignedRequest, S3Storage, get_storage
from shared.settings import get_settings
from tests.support.aws import create_bucket


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


class CountingS3Storage(S3Storage):
    """The real S3 storage, counting what it is asked to sign (the test's instrumentation)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.batches: list[list[str]] = []
        self.singles: list[str] = []

    async def presign_downloads(
        self, keys: Sequence[str], *, expires_in: int | None = None
    ) -> list[PresignedRequest]:
        self.batches.append(list(keys))
        return await super().presign_downloads(keys, expires_in=expires_in)

    async def presign_download(
        self, key: str, *, expires_in: int | None = None, filename: str | None = None
    ) -> PresignedRequest:
        self.singles.append(key)
        return await super().presign_download(key, expires_in=expires_in, filename=filename)


async def test_s3_signs_each_key_once_in_one_batch(
    storage_settings: None, aws_env: None, moto_endpoint: str
) -> None:
    storage = CountingS3Storage(bucket=create_bucket(moto_endpoint), endpoint_url=moto_endpoint)
    still, variant, poster = "catalog/images/c.png", "catalog/images/c-w300.webp", "catalog/images/p.jpg"
    for key in (still, variant, poster):
        await storage.put_bytes(key, key.encode(), content_type="application/octet-stream")
    urls = await image_urls(
        {"still": {"key": still, "sizes": {"w300": variant}}, "poster": {"key": poster}},
        settings=get_settings(),
        storage=storage,
    )
    # Nine sizes across two kinds, three distinct keys: each signed once, all in one worker-thread batch.
    assert [sorted(batch) for batch in storage.batches] == [sorted([still, variant, poster])]
    assert storage.singles == []
    assert urls["still"]["w780"] == urls["still"]["w1280"] == urls["still"]["original"]
    assert len(set(urls["poster"].values())) == 1
    async with httpx.AsyncClient(trust_env=False) as http:
        for url, key in [
            (urls["still"]["w300"], variant),
            (urls["still"]["w780"], still),
            (urls["poster"]["w185"], poster),
        ]:
            fetched = await http.get(url)
            assert fetched.status_code == 200 and fetched.content == key.encode(), url


async def test_demo_art_is_stored_with_the_variants_its_entries_name(storage_settings: None) -> None:
    storage = await get_storage()
    assert isinstance(storage, LocalStorage)
    art = [
        *demo._title_art("variants-check", "Variants Check", "2001 · Drama").values(),
        demo._still_art(1, 1, "Pilot"),
        demo._photo_art("variants-person", "Vera Check"),
    ]
    entries = await demo._store(storage, art)
    assert set(entries) == {item.key for item in art}
    expected = {
        "poster": {"w185": (185, 278), "w342": (342, 513), "w500": (500, 750)},  # 600 x 900
        "backdrop": {"w780": (780, 439)},  # 1280 x 720
        "still": {"w300": (300, 169), "w780": (780, 439)},  # 960 x 540
        "photo": {"w185": (185, 278), "w342": (342, 513)},  # 400 x 600
    }
    for item in art:
        entry = entries[item.key]
        assert set(entry["sizes"]) == set(expected[item.kind]), item.key
        for name, size in expected[item.kind].items():
            assert entry["sizes"][name] == item.key.removesuffix(".jpg") + f"-{name}.webp"
            image = Image.open(io.BytesIO(await storage.get_bytes(entry["sizes"][name])))
            assert (image.format, image.size) == ("WEBP", size), (item.key, name)
        assert Image.open(io.BytesIO(await storage.get_bytes(item.key))).size == (
            entry["width"],
            entry["height"],
        )
