"""Catalog artwork uploads end to end: ticket -> the browser's direct upload (local storage or the Cloudinary
stand-in) -> confirm (decoded, resized to WebP variants) -> the entry set on a title -> viewers get variant
URLs the dev server's storage really serves."""

from __future__ import annotations

import io
import re
import struct
import uuid
import zlib
from typing import Any

import httpx
from PIL import Image

from shared.images.direct_upload import new_name
from shared.infra.storage import get_storage
from tests.catalog_admin.conftest import (
    API,
    CONFIRM,
    UPLOAD,
    confirm,
    create_title,
    encoded,
    field_codes,
    storage_call,
    ticket,
    uploaded,
)
from tests.support.cloudinary_server import CloudinaryServer, response_signature
from tests.support.identity import SignedIn, signed_in_user

SIGNED = ("public_id", "version", "signature")  # what a Cloudinary confirm sends from the upload's answer


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height over a few bytes of data (never decoded if refused)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


async def stored_size(key: str) -> tuple[str, tuple[int, int], str]:
    """(format, size, mode) of a stored image."""
    image = Image.open(io.BytesIO(await (await get_storage()).get_bytes(key)))
    return str(image.format), image.size, image.mode


def key_of(url: str) -> str:
    return httpx.URL(url).path.removeprefix("/_storage/")


# --- object storage (the default) ----------------------------------------------------------------------


async def test_poster_upload_to_a_title_and_back_as_variants(
    client: httpx.AsyncClient, manager: SignedIn, viewer: SignedIn
) -> None:
    # 600 x 1000 is taller than 2:3: the variants are cut from the centred 600 x 900.
    original = encoded((600, 1000))
    key = await uploaded(client, manager, original)
    response = await confirm(client, manager, kind="poster", key=key)
    assert response.status_code == 201, response.text
    body = response.json()
    entry = body["entry"]
    assert body["kind"] == "poster"
    # A dated name: the daily sweep may drop it once a week old if no row refers to it.
    assert re.fullmatch(r"catalog/images/[0-9]+-[0-9a-f]{32}\.png", entry["key"])
    stem = entry["key"].removesuffix(".png")
    assert entry["sizes"] == {name: f"{stem}-{name}.webp" for name in ("w185", "w342", "w500")}
    assert (entry["width"], entry["height"]) == (600, 1000)
    # The original is re-encoded (no metadata carried over): the same pixels, as a PNG is lossless.
    stored = Image.open(io.BytesIO(await (await get_storage()).get_bytes(entry["key"])))
    assert stored.tobytes() == Image.open(io.BytesIO(original)).tobytes()
    for name, expected in {"w185": (185, 278), "w342": (342, 513), "w500": (500, 750)}.items():
        assert await stored_size(entry["sizes"][name]) == ("WEBP", expected, "RGB")
    # The staging object is gone: the upload URL cannot reach what is published.
    assert await (await get_storage()).head(key) is None
    assert list(body["urls"]) == ["w185", "w342", "w500", "w780", "original"]
    assert key_of(body["urls"]["w342"]) == entry["sizes"]["w342"]
    assert key_of(body["urls"]["w780"]) == key_of(body["urls"]["original"]) == entry["key"]

    title = await create_title(client, manager, status="published", rating_system="mpaa", rating="PG")
    patched = await client.patch(
        f"{API}/titles/{title['id']}", json={"images": {"poster": entry}}, headers=manager.headers
    )
    assert patched.status_code == 200, patched.text

    seen = await client.get(f"{API}/titles/{title['id']}", headers=viewer.headers)
    assert seen.status_code == 200, seen.text
    urls = seen.json()["images"]["poster"]
    assert key_of(urls["w185"]) == entry["sizes"]["w185"]
    for name, expected in {"w185": (185, 278), "w500": (500, 750), "w780": (600, 1000)}.items():
        fetched = await storage_call("GET", urls[name])
        assert fetched.status_code == 200, (name, fetched.text)
        assert Image.open(io.BytesIO(fetched.content)).size == expected, name
    assert (await storage_call("GET", urls["w185"])).headers["content-type"].startswith("image/webp")


async def test_rotated_jpeg_still_transparent_logo_small_webp(
    client: httpx.AsyncClient, manager: SignedIn
) -> None:
    # A phone photo: stored 1000 x 800 with EXIF "rotate 90" (orientation 6), so it is 800 x 1000 upright.
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = encoded((1000, 800), "JPEG", exif=exif.tobytes())
    key = await uploaded(client, manager, photo, kind="still", content_type="image/jpeg")
    entry = (await confirm(client, manager, kind="still", key=key)).json()["entry"]
    assert entry["key"].endswith(".jpg") and (entry["width"], entry["height"]) == (800, 1000)
    # 16:9 from 800 wide: w300 and w780 (w1280 would be an enlargement).
    assert sorted(entry["sizes"]) == ["w300", "w780"]
    assert await stored_size(entry["sizes"]["w780"]) == ("WEBP", (780, 439), "RGB")

    logo = encoded((900, 300), mode="RGBA")
    key = await uploaded(client, manager, logo, kind="logo")
    entry = (await confirm(client, manager, kind="logo", key=key)).json()["entry"]
    assert await stored_size(entry["sizes"]["w300"]) == ("WEBP", (300, 100), "RGBA")  # ratio and alpha kept

    webp = encoded((150, 225), "WEBP")
    key = await uploaded(client, manager, webp, kind="photo", content_type="image/webp")
    small = (await confirm(client, manager, kind="photo", key=key)).json()
    assert small["entry"]["sizes"] == {} and small["entry"]["key"].endswith(".webp")
    assert len(set(small["urls"].values())) == 1  # too small for any variant: the original everywhere


async def test_a_phone_photo_is_stored_upright_without_its_exif(
    client: httpx.AsyncClient, manager: SignedIn
) -> None:
    # Stored 1000 x 800, red in its top-left corner, with EXIF "rotate 90 clockwise" and where it was taken.
    sideways = Image.linear_gradient("L").resize((1000, 800)).convert("RGB")
    sideways.paste((255, 0, 0), (0, 0, 100, 100))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation
    exif[0x010F] = "PhoneMaker"  # camera make
    exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})  # GPS
    buffer = io.BytesIO()
    sideways.save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    photo = buffer.getvalue()
    assert Image.open(io.BytesIO(photo)).getexif().get_ifd(0x8825)  # the test image does carry GPS

    key = await uploaded(client, manager, photo, kind="still", content_type="image/jpeg")
    response = await confirm(client, manager, kind="still", key=key)
    assert response.status_code == 201, response.text
    entry = response.json()["entry"]

    stored = Image.open(io.BytesIO(await (await get_storage()).get_bytes(entry["key"])))
    assert stored.format == "JPEG" and stored.size == (800, 1000) == (entry["width"], entry["height"])
    assert not stored.getexif() and "exif" not in stored.info and "xmp" not in stored.info
    # Turned as the EXIF said: the red corner is now top-right, and nothing tells to turn it again.
    upright = stored.convert("RGB")
    red, green, blue = upright.getpixel((750, 50))
    assert red > 200 and green < 60 and blue < 60
    assert upright.getpixel((50, 50)) != upright.getpixel((750, 50))


async def test_images_that_are_not_usable_are_refused(client: httpx.AsyncClient, manager: SignedIn) -> None:
    complete = encoded((400, 600))
    refused = {
        "text": (b"<html><script>alert(1)</script></html>", "must be PNG, JPEG or WebP images"),
        "gif": (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "must be PNG, JPEG or WebP images"),
        "too small": (encoded((99, 400)), "at least 100 pixels on each side"),
        # Refused from the header alone: its few bytes of pixel data would fail decoding as truncated.
        "over 40 megapixels": (png_header_only(8000, 6000), "at most 40 megapixels"),
        "truncated": (complete[: len(complete) // 2], "truncated or corrupt"),
    }
    for reason, (data, message) in refused.items():
        key = await uploaded(client, manager, data)
        response = await confirm(client, manager, kind="poster", key=key)
        assert response.status_code == 422, (reason, response.text)
        assert response.json()["code"] == "invalid_image", reason
        assert message in response.json()["detail"], (reason, response.json())
        assert await (await get_storage()).head(key) is None, reason


async def test_ticket_refusals(client: httpx.AsyncClient, manager: SignedIn) -> None:
    html = await ticket(client, manager, "poster", "text/html", 100)
    assert html.status_code == 422 and html.json()["code"] == "unsupported_image_type"
    huge = await ticket(client, manager, "poster", "image/png", 10 * 1024 * 1024 + 1)
    assert huge.status_code == 422 and huge.json()["code"] == "image_too_large"
    assert field_codes(await ticket(client, manager, "banner", "image/png", 100)) == [
        ("kind", "literal_error")
    ]

    # The ticket is for the announced size only: storage refuses any other body.
    grant = (await ticket(client, manager, "poster", "image/png", 1000)).json()
    bigger = await storage_call(
        "PUT", grant["upload_url"], content=b"\x89PNG" + b"x" * 2000, headers=grant["headers"]
    )
    assert bigger.status_code in (400, 403), bigger.text


async def test_keys_of_other_uploads_are_refused(
    client: httpx.AsyncClient, manager: SignedIn, database_url: str
) -> None:
    other = await signed_in_user(database_url, roles=["content_manager"])
    theirs = await uploaded(client, other, encoded((200, 300)))
    name = new_name()
    for key in [
        theirs,  # another manager's upload
        f"avatar-uploads/{manager.user_id}/{uuid.uuid4()}/{name}.png",
        f"catalog/images/{name}.png",  # a published image is not an upload
        f"catalog-uploads/{manager.user_id}/../{name}.png",
        f"catalog-uploads/{manager.user_id}/{name}.gif",
        f"catalog-uploads/{manager.user_id}/{uuid.uuid4().hex}.png",  # undated: never handed out now
        "",
    ]:
        response = await confirm(client, manager, kind="poster", key=key)
        assert response.status_code == 400 and response.json()["code"] == "invalid_image_key", key
    never = await confirm(client, manager, kind="poster", key=f"catalog-uploads/{manager.user_id}/{name}.png")
    assert never.status_code == 400 and never.json()["code"] == "image_not_uploaded"
    # The other manager's upload is still theirs to confirm.
    assert (await confirm(client, other, kind="poster", key=theirs)).status_code == 201


async def test_only_catalog_writers_upload(client: httpx.AsyncClient, viewer: SignedIn) -> None:
    for path, body in [
        (UPLOAD, {"kind": "poster", "content_type": "image/png", "size": 100}),
        (CONFIRM, {"kind": "poster", "key": "catalog-uploads/x/y.png"}),
    ]:
        forbidden = await client.post(path, json=body, headers=viewer.headers)
        assert forbidden.status_code == 403 and forbidden.json()["code"] == "permission_denied", path
        assert (await client.post(path, json=body)).status_code == 401, path


async def test_tickets_are_rate_limited_per_user(client: httpx.AsyncClient, database_url: str) -> None:
    busy = await signed_in_user(database_url, roles=["content_manager"])
    for _ in range(120):
        assert (await ticket(client, busy, "still", "image/jpeg", 5000)).status_code == 200
    limited = await ticket(client, busy, "still", "image/jpeg", 5000)
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"


async def test_entry_sizes_are_checked_when_saved(client: httpx.AsyncClient, manager: SignedIn) -> None:
    title = await create_title(client, manager)
    path = f"{API}/titles/{title['id']}"
    key = "catalog/images/" + "a" * 32 + ".png"
    bad = {
        "wrong size for the kind": {"poster": {"key": key, "sizes": {"w1280": key}}},
        "not a width": {"poster": {"key": key, "sizes": {"large": key}}},
        "outside catalog/": {"poster": {"key": key, "sizes": {"w185": "avatars/x.webp"}}},
        "sizes without key": {
            "poster": {"public_id": f"catalog/images/{new_name()}", "sizes": {"w185": key}}
        },
    }
    for reason, images in bad.items():
        response = await client.patch(path, json={"images": images}, headers=manager.headers)
        codes = field_codes(response)
        assert codes and all(code == "invalid_image" for _, code in codes), (reason, codes)
        assert codes[0][0].startswith("images.poster"), (reason, codes)
    good = {"key": key, "sizes": {"w185": key.replace(".png", "-w185.webp")}, "width": 600, "height": 900}
    saved = await client.patch(path, json={"images": {"poster": good}}, headers=manager.headers)
    assert saved.status_code == 200, saved.text
    urls = saved.json()["images"]["poster"]
    assert key_of(urls["w185"]).endswith("-w185.webp") and key_of(urls["w342"]) == key


# --- Cloudinary ----------------------------------------------------------------------------------------


async def browser_upload(grant: dict[str, Any], data: bytes) -> dict[str, Any]:
    """What a browser does with a Cloudinary ticket: a multipart POST straight to Cloudinary."""
    async with httpx.AsyncClient() as http:
        response = await http.post(grant["upload_url"], data=grant["fields"], files={"file": ("a.png", data)})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def cloudinary_upload(client: httpx.AsyncClient, who: SignedIn, data: bytes) -> dict[str, Any]:
    response = await ticket(client, who, "backdrop", "image/png", len(data))
    assert response.status_code == 200, response.text
    grant = response.json()
    assert grant["backend"] == "cloudinary" and grant["method"] == "POST"
    assert re.fullmatch(r"catalog/images/[0-9]+-[0-9a-f]{32}", grant["fields"]["public_id"])
    assert grant["fields"]["overwrite"] == "false"
    return await browser_upload(grant, data)


async def test_cloudinary_upload_gives_a_public_id_entry(
    cloudinary_env: CloudinaryServer, client: httpx.AsyncClient, manager: SignedIn, viewer: SignedIn
) -> None:
    server = cloudinary_env
    result = await cloudinary_upload(client, manager, encoded((1600, 900)))
    signed = {
        "public_id": result["public_id"],
        "version": result["version"],
        "signature": result["signature"],
    }
    response = await confirm(client, manager, kind="backdrop", **signed)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["entry"] == {
        "public_id": result["public_id"],
        "version": result["version"],
        "width": 1600,
        "height": 900,
    }
    w780 = body["urls"]["w780"]
    assert w780.startswith(f"https://res.cloudinary.com/{server.cloud_name}/image/upload/")
    assert "ar_16:9" in w780 and "w_780" in w780 and f"v{result['version']}" in w780

    title = await create_title(client, manager, status="published", rating_system="mpaa", rating="G")
    patched = await client.patch(
        f"{API}/titles/{title['id']}", json={"images": {"backdrop": body["entry"]}}, headers=manager.headers
    )
    assert patched.status_code == 200, patched.text
    seen = (await client.get(f"{API}/titles/{title['id']}", headers=viewer.headers)).json()
    assert seen["images"]["backdrop"] == body["urls"]


async def test_cloudinary_refusals(
    cloudinary_env: CloudinaryServer, client: httpx.AsyncClient, manager: SignedIn
) -> None:
    server = cloudinary_env
    result = await cloudinary_upload(client, manager, encoded((320, 180)))
    base = {"kind": "backdrop", "public_id": result["public_id"], "version": result["version"]}
    forged = response_signature(result["public_id"], result["version"], "not-the-secret")
    for signature in [forged, ""]:
        response = await confirm(client, manager, **base, signature=signature)
        assert response.status_code == 400 and response.json()["code"] == "invalid_image_signature"

    async def genuinely_signed(public_id: str) -> httpx.Response:
        signature = response_signature(public_id, 1, server.api_secret)
        return await confirm(
            client, manager, kind="backdrop", public_id=public_id, version=1, signature=signature
        )

    foreign = await genuinely_signed(f"avatars/{manager.user_id}/{uuid.uuid4()}/{uuid.uuid4().hex}")
    assert foreign.status_code == 400 and foreign.json()["code"] == "invalid_image_key"
    undated = await genuinely_signed(f"catalog/images/{uuid.uuid4().hex}")
    assert undated.status_code == 400 and undated.json()["code"] == "invalid_image_key"
    missing = await genuinely_signed(f"catalog/images/{new_name()}")
    assert missing.status_code == 400 and missing.json()["code"] == "image_not_uploaded"

    tiny = await cloudinary_upload(client, manager, encoded((120, 60)))
    refused = await confirm(client, manager, kind="backdrop", **{name: tiny[name] for name in SIGNED})
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_image"
    # The real reason, worded as for a storage upload (not "must be PNG, JPEG or WebP of at most 10 MB").
    assert refused.json()["detail"] == "Images must be at least 100 pixels on each side."
    assert tiny["public_id"] not in server.resources  # deleted at Cloudinary
