"""Responsive catalog image URLs: Cloudinary transformations (built offline by the real SDK) or originals
from object storage behind signed URLs that the local storage server really serves."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from shared.catalog.images import KINDS, image_urls, size_names, stable_expires_in
from shared.infra.loop_local import reset_all
from shared.infra.storage import LocalStorage, get_storage
from shared.infra.storage.local_http import create_storage_app
from shared.settings import get_settings

CLOUDINARY = "cloudinary://k:s@demo"


def _jpeg(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
async def storage_settings(settings_env: Callable[..., None]) -> None:
    settings_env(IMAGES_BACKEND=None, CLOUDINARY_URL=None)
    await reset_all()


@pytest.fixture
async def cloudinary_settings(settings_env: Callable[..., None]) -> None:
    settings_env(IMAGES_BACKEND="cloudinary", CLOUDINARY_URL=CLOUDINARY)
    await reset_all()


def _transformation(url: str) -> dict[str, str]:
    """The transformation step of a Cloudinary delivery URL as {"w": "342", "ar": "2:3", ...}."""
    parts = urlsplit(url).path.split("/")
    step = parts[parts.index("upload") + 1]
    return dict(item.split("_", 1) for item in step.split(","))


async def test_storage_backend_serves_the_original_for_every_size(storage_settings: None) -> None:
    storage = await get_storage()
    assert isinstance(storage, LocalStorage)
    await storage.put_bytes("catalog/test-images/poster.jpg", _jpeg((60, 90)), content_type="image/jpeg")
    images = {
        "poster": {"key": "catalog/test-images/poster.jpg", "width": 60, "height": 90},
        "backdrop": {"key": "catalog/test-images/backdrop.jpg", "width": 1280, "height": 720},
    }
    urls = await image_urls(images, settings=get_settings())
    assert list(urls) == ["poster", "backdrop"]
    assert list(urls["poster"]) == ["w185", "w342", "w500", "w780", "original"]
    assert list(urls["backdrop"]) == ["w780", "w1280", "w1920", "original"]
    assert len(set(urls["poster"].values())) == 1  # no resizer locally: the original for every size
    assert urls["poster"]["w185"] != urls["backdrop"]["w780"]
    url = urls["poster"]["w342"]
    assert url.startswith("http://localhost:3000/_storage/catalog/test-images/poster.jpg?")
    # The URL is a real signed download: the dev server's storage app serves the stored image.
    transport = httpx.ASGITransport(app=create_storage_app(lambda: get_storage()))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:3000") as client:
        response = await client.get(url)
        assert response.status_code == 200
        assert Image.open(io.BytesIO(response.content)).size == (60, 90)
        tampered = url.replace("poster.jpg", "backdrop.jpg")
        assert (await client.get(tampered)).status_code == 403


async def test_storage_urls_are_stable_for_a_while_and_outlive_the_ttl(storage_settings: None) -> None:
    settings = get_settings()
    images = {"still": {"key": "catalog/test-images/still.jpg"}}
    first = await image_urls(images, settings=settings, now=1_800_000_010)
    again = await image_urls(images, settings=settings, now=1_800_000_070)
    assert first == again  # identical responses, cached images stay cached in the browser
    ttl = settings.storage_url_ttl_seconds
    for now in (1_800_000_000, 1_800_000_599, 1_800_003_333):
        lifetime = stable_expires_in(ttl, now=now)
        assert ttl <= lifetime <= ttl + max(60, ttl // 4)
        assert (now + lifetime) % max(60, ttl // 4) == 0


async def test_cloudinary_backend_builds_smart_cropped_responsive_urls(cloudinary_settings: None) -> None:
    images: dict[str, dict[str, Any]] = {
        "poster": {"public_id": "catalog/t1/poster", "version": 1712345678, "width": 2000, "height": 3000},
        "backdrop": {"public_id": "catalog/t1/backdrop"},
        "still": {"public_id": "catalog/t1/still"},
        "photo": {"public_id": "people/p1/photo"},
        "logo": {"public_id": "catalog/t1/logo"},
    }
    urls = await image_urls(images, settings=get_settings())
    assert set(urls) == set(images)
    expected_ratio = {"poster": "2:3", "backdrop": "16:9", "still": "16:9", "photo": "2:3"}
    for kind, sizes in urls.items():
        assert list(sizes) == size_names(kind)
        for name, url in sizes.items():
            parts = urlsplit(url)
            assert parts.scheme == "https" and parts.netloc == "res.cloudinary.com"
            assert parts.path.startswith("/demo/image/upload/")
            assert parts.path.endswith("/" + images[kind]["public_id"])
            step = _transformation(url)
            assert step["f"] == "auto" and step["q"] == "auto"
            if name == "original":
                assert set(step) == {"f", "q"}
                continue
            assert step["w"] == name.removeprefix("w")
            if kind == "logo":
                assert step["c"] == "limit" and "ar" not in step  # logos keep their shape
            else:
                assert step["c"] == "fill" and step["g"] == "auto" and step["ar"] == expected_ratio[kind]
    assert "/v1712345678/" in urls["poster"]["w500"]
    assert {int(name[1:]) for name in urls["backdrop"] if name != "original"} == {780, 1280, 1920}
    assert KINDS["poster"].widths == (185, 342, 500, 780)


async def test_cloudinary_private_cdn_from_the_url(settings_env: Callable[..., None]) -> None:
    settings_env(IMAGES_BACKEND="cloudinary", CLOUDINARY_URL="cloudinary://k:s@demo/img.example.com")
    urls = await image_urls({"poster": {"public_id": "p"}}, settings=get_settings())
    assert urlsplit(urls["poster"]["w185"]).netloc == "img.example.com"


async def test_entries_decide_where_an_image_lives(cloudinary_settings: None) -> None:
    # With Cloudinary configured, an image stored in object storage (the demo catalog) still works.
    urls = await image_urls(
        {"poster": {"key": "catalog/demo/x/poster.jpg"}, "backdrop": {"url": "https://images.example/b.jpg"}},
        settings=get_settings(),
    )
    assert "/_storage/catalog/demo/x/poster.jpg?" in urls["poster"]["w780"]
    assert set(urls["backdrop"].values()) == {"https://images.example/b.jpg"}


async def test_missing_unknown_and_malformed_kinds_are_left_out(storage_settings: None) -> None:
    settings = get_settings()
    assert await image_urls({}, settings=settings) == {}
    assert await image_urls(None, settings=settings) == {}
    urls = await image_urls(
        {
            "poster": {"key": "catalog/a/poster.jpg"},
            "banner": {"key": "catalog/a/banner.jpg"},  # not a kind we deliver
            "backdrop": "catalog/a/backdrop.jpg",  # not an entry
            "still": {},  # nothing to point at
            "logo": {"url": "javascript:alert(1)"},  # only http(s) passes through
            # A Cloudinary image while Cloudinary is not configured cannot be built.
            "photo": {"public_id": "people/p/photo"},
        },
        settings=settings,
    )
    assert list(urls) == ["poster"]


async def test_s3_storage_presigns_one_url_per_kind(storage_settings: None, aws_env: None) -> None:
    from shared.infra.storage import S3Storage

    storage = S3Storage(bucket="cinema-images", region="us-east-1")
    urls = await image_urls(
        {"poster": {"key": "catalog/a/poster.jpg"}, "photo": {"key": "people/b/photo.jpg"}},
        settings=get_settings(),
        storage=storage,
    )
    poster = urlsplit(urls["poster"]["w500"])
    assert poster.path.endswith("/catalog/a/poster.jpg") and "X-Amz-Signature=" in poster.query
    assert len(set(urls["photo"].values())) == 1 and "people/b/photo.jpg" in urls["photo"]["w185"]
