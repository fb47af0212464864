"""Avatars end to end: a ticket, the browser's direct upload (local storage or the Cloudinary stand-in), the
confirm call that verifies what arrived, and the URL the profile then shows."""

from __future__ import annotations

import hashlib
import io
import re
from typing import Any

import httpx

from shared.images.direct_upload import new_name
from shared.infra.storage.local_http import app as storage_app
from tests.profiles.conftest import PROFILES, encoded, made, png, profiles_of, same_pixels
from tests.support.cloudinary_server import CloudinaryServer
from tests.support.identity import SignedIn

WEBP = encoded((16, 16), "WEBP")
JPEG = encoded((16, 16), "JPEG")


async def ticket(
    client: httpx.AsyncClient,
    user: SignedIn,
    profile_id: str,
    content_type: str = "image/png",
    size: int = 100,
) -> httpx.Response:
    return await client.post(
        f"{PROFILES}/{profile_id}/avatar/upload",
        json={"content_type": content_type, "size": size},
        headers=user.headers,
    )


async def storage_call(method: str, url: str, **kwargs: Any) -> httpx.Response:
    """A request to a local presigned URL, served by the dev server's storage app."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=storage_app)) as http:
        return await http.request(method, url, **kwargs)


async def upload_to_storage(
    client: httpx.AsyncClient, user: SignedIn, profile_id: str, data: bytes, content_type: str = "image/png"
) -> str:
    """Ticket, then the browser's PUT; returns the key to confirm."""
    response = await ticket(client, user, profile_id, content_type, len(data))
    assert response.status_code == 200, response.text
    grant = response.json()
    assert grant["backend"] == "storage" and grant["method"] == "PUT"
    # Staged outside the avatars/ folder, under a dated name (the daily sweep drops it if never confirmed).
    staged = rf"avatar-uploads/{user.user_id}/{profile_id}/[0-9]+-[0-9a-f]{{32}}\.[a-z]+"
    assert re.fullmatch(staged, grant["key"])
    put = await storage_call("PUT", grant["upload_url"], content=data, headers=grant["headers"])
    assert put.status_code in (200, 201, 204), put.text
    return str(grant["key"])


async def confirm(client: httpx.AsyncClient, user: SignedIn, profile_id: str, **body: Any) -> httpx.Response:
    return await client.put(f"{PROFILES}/{profile_id}/avatar", json=body, headers=user.headers)


# --- object storage (the default) --------------------------------------------------------------------


async def test_storage_avatar_round_trip(user: SignedIn, client: httpx.AsyncClient) -> None:
    from shared.infra.storage import get_storage

    storage = await get_storage()
    profile = await made(client, user.headers)
    image = png(16, 16)
    key = await upload_to_storage(client, user, profile["id"], image)

    confirmed = await confirm(client, user, profile["id"], key=key)
    assert confirmed.status_code == 200, confirmed.text
    url = confirmed.json()["avatar_url"]
    assert url and url.startswith("http://localhost:3000/")
    # The checked bytes live under a new key the upload URL cannot overwrite; the upload is gone.
    assert await storage.head(key) is None

    listed = {item["id"]: item for item in await profiles_of(client, user.headers)}
    shown = listed[profile["id"]]["avatar_url"]
    assert shown
    fetched = await storage_call("GET", shown)
    assert fetched.status_code == 200 and same_pixels(fetched.content, image)
    assert fetched.headers["content-type"].startswith("image/png")

    # A new avatar replaces the old image, which is deleted.
    old_key = _key_of(shown)
    webp_key = await upload_to_storage(client, user, profile["id"], WEBP, "image/webp")
    replaced = await confirm(client, user, profile["id"], key=webp_key)
    assert replaced.status_code == 200
    assert await storage.head(old_key) is None
    new_key = _key_of(replaced.json()["avatar_url"])
    assert new_key.endswith(".webp")

    removed = await client.delete(f"{PROFILES}/{profile['id']}/avatar", headers=user.headers)
    assert removed.status_code == 200 and removed.json()["avatar_url"] is None
    assert await storage.head(new_key) is None


def _key_of(url: str) -> str:
    return httpx.URL(url).path.removeprefix("/_storage/")


async def test_a_text_file_disguised_as_png_is_refused(user: SignedIn, client: httpx.AsyncClient) -> None:
    from shared.infra.storage import get_storage

    profile = await made(client, user.headers)
    key = await upload_to_storage(client, user, profile["id"], b"<html><script>alert(1)</script></html>")
    refused = await confirm(client, user, profile["id"], key=key)
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_image"
    assert await (await get_storage()).head(key) is None
    assert (await client.get(f"{PROFILES}/{profile['id']}", headers=user.headers)).json()[
        "avatar_url"
    ] is None


async def test_an_oversized_upload_is_refused(user: SignedIn, client: httpx.AsyncClient) -> None:
    from shared.infra.storage import get_storage

    profile = await made(client, user.headers)
    # The ticket was asked for a small file; the browser then sent more than 2 MB: storage refuses it,
    # as the ticket binds the body to the announced size.
    grant = (await ticket(client, user, profile["id"], size=1000)).json()
    big = png(padding=2 * 1024 * 1024)
    put = await storage_call("PUT", grant["upload_url"], content=big, headers=grant["headers"])
    assert put.status_code in (400, 403), put.text
    never = await confirm(client, user, profile["id"], key=grant["key"])
    assert never.status_code == 400 and never.json()["code"] == "avatar_not_uploaded"
    # What arrived is checked again whatever wrote it: more than 2 MB under the key is refused.
    await (await get_storage()).put_bytes(grant["key"], big, content_type="image/png")
    refused = await confirm(client, user, profile["id"], key=grant["key"])
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_image"


async def test_jpeg_is_accepted(user: SignedIn, client: httpx.AsyncClient) -> None:
    profile = await made(client, user.headers)
    key = await upload_to_storage(client, user, profile["id"], JPEG, "image/jpeg")
    confirmed = await confirm(client, user, profile["id"], key=key)
    assert confirmed.status_code == 200 and ".jpg" in confirmed.json()["avatar_url"]


async def test_ticket_and_key_checks(user: SignedIn, client: httpx.AsyncClient) -> None:
    profile = await made(client, user.headers)
    other = await made(client, user.headers)
    html = await ticket(client, user, profile["id"], content_type="text/html")
    assert html.status_code == 422 and html.json()["code"] == "unsupported_image_type"
    huge = await ticket(client, user, profile["id"], size=2 * 1024 * 1024 + 1)
    assert huge.status_code == 422 and huge.json()["code"] == "image_too_large"

    # A key uploaded for another profile, outside the staging folder (a stored avatar included), or not
    # of the shape handed out (undated, as before names carried their time) is not accepted.
    elsewhere = await upload_to_storage(client, user, other["id"], png())
    staging = f"avatar-uploads/{user.user_id}/{profile['id']}/"
    for key in [
        elsewhere,
        "media/secret.mp4",
        f"{staging}../x.png",
        f"avatars/{user.user_id}/{profile['id']}/{new_name()}.png",
        f"{staging}{'0' * 32}.png",
    ]:
        response = await confirm(client, user, profile["id"], key=key)
        assert response.status_code == 400 and response.json()["code"] == "invalid_avatar_key", key
    never = f"{staging}{new_name()}.png"
    missing = await confirm(client, user, profile["id"], key=never)
    assert missing.status_code == 400 and missing.json()["code"] == "avatar_not_uploaded"


async def test_deleting_a_profile_deletes_its_avatar(user: SignedIn, client: httpx.AsyncClient) -> None:
    from shared.infra.storage import get_storage

    await made(client, user.headers)
    profile = await made(client, user.headers)
    key = await upload_to_storage(client, user, profile["id"], png())
    stored = _key_of((await confirm(client, user, profile["id"], key=key)).json()["avatar_url"])
    assert await (await get_storage()).head(stored) is not None
    assert (await client.delete(f"{PROFILES}/{profile['id']}", headers=user.headers)).status_code == 204
    assert await (await get_storage()).head(stored) is None


async def test_unconfirmed_uploads_are_swept_and_avatars_never(
    user: SignedIn, client: httpx.AsyncClient
) -> None:
    import time

    from shared.images.direct_upload import STAGING_MAX_AGE
    from shared.infra.storage import get_storage
    from shared.maintenance.service import sweep_images

    storage = await get_storage()
    profile = await made(client, user.headers)
    avatar = await upload_to_storage(client, user, profile["id"], png())
    confirmed = await confirm(client, user, profile["id"], key=avatar)
    stored = _key_of(confirmed.json()["avatar_url"])
    assert stored.startswith(f"avatars/{user.user_id}/{profile['id']}/")
    abandoned = await upload_to_storage(client, user, profile["id"], png())

    await sweep_images()  # now: the upload URL may still be in use
    assert await storage.head(abandoned) is not None

    # Once no upload URL for it is valid, the abandoned upload goes; the profile's avatar never does.
    staged = (await sweep_images(now=time.time() + STAGING_MAX_AGE + 5)).uploads
    assert staged >= 1 and await storage.head(abandoned) is None
    await sweep_images(now=time.time() + 365 * 86400)
    assert await storage.head(stored) is not None
    listed = {item["id"]: item for item in await profiles_of(client, user.headers)}
    assert same_pixels((await storage_call("GET", listed[profile["id"]]["avatar_url"])).content, png())


async def test_a_phone_photo_avatar_loses_its_exif(user: SignedIn, client: httpx.AsyncClient) -> None:
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # camera make
    exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})  # GPS
    photo = encoded((64, 48), "JPEG", exif=exif.tobytes())
    assert Image.open(io.BytesIO(photo)).getexif().get_ifd(0x8825)  # the upload does carry GPS
    profile = await made(client, user.headers)
    key = await upload_to_storage(client, user, profile["id"], photo, "image/jpeg")
    assert (await confirm(client, user, profile["id"], key=key)).status_code == 200

    listed = {item["id"]: item for item in await profiles_of(client, user.headers)}
    stored = Image.open(io.BytesIO((await storage_call("GET", listed[profile["id"]]["avatar_url"])).content))
    assert stored.size == (64, 48) and not stored.getexif() and "exif" not in stored.info


# --- Cloudinary --------------------------------------------------------------------------------------


async def browser_upload(grant: dict[str, Any], data: bytes, filename: str = "me.png") -> httpx.Response:
    """What a browser does with the ticket: a multipart POST straight to Cloudinary."""
    async with httpx.AsyncClient() as http:
        return await http.post(grant["upload_url"], data=grant["fields"], files={"file": (filename, data)})


async def cloudinary_ticket(client: httpx.AsyncClient, user: SignedIn, profile_id: str) -> dict[str, Any]:
    response = await ticket(client, user, profile_id)
    assert response.status_code == 200, response.text
    grant: dict[str, Any] = response.json()
    return grant


async def test_cloudinary_avatar_round_trip(
    cloudinary_env: CloudinaryServer, user: SignedIn, client: httpx.AsyncClient
) -> None:
    server = cloudinary_env
    profile = await made(client, user.headers)
    grant = await cloudinary_ticket(client, user, profile["id"])
    assert grant["backend"] == "cloudinary" and grant["method"] == "POST"
    assert grant["upload_url"] == f"{server.url}/v1_1/{server.cloud_name}/image/upload"
    fields = grant["fields"]
    assert fields["api_key"] == server.api_key and server.api_secret not in str(grant)
    assert re.fullmatch(rf"avatars/{user.user_id}/{profile['id']}/[0-9]+-[0-9a-f]{{32}}", fields["public_id"])
    assert fields["allowed_formats"] == "png,jpg,webp" and fields["overwrite"] == "false"

    uploaded = await browser_upload(grant, png(32, 24))
    assert uploaded.status_code == 200, uploaded.text
    result = uploaded.json()
    assert (result["format"], result["width"], result["height"]) == ("png", 32, 24)

    lookups_before = len(server.requests_to("/resources/image/upload/", "GET"))
    confirmed = await confirm(
        client,
        user,
        profile["id"],
        public_id=result["public_id"],
        version=result["version"],
        signature=result["signature"],
    )
    assert confirmed.status_code == 200, confirmed.text
    lookups = server.requests_to("/resources/image/upload/", "GET")
    assert len(lookups) == lookups_before + 1
    assert lookups[-1].path.endswith("/" + result["public_id"]) and lookups[-1].status == 200
    url = confirmed.json()["avatar_url"]
    assert url == (
        f"https://res.cloudinary.com/{server.cloud_name}/image/upload/c_fill,h_320,w_320/"
        f"v{result['version']}/{result['public_id']}"
    )
    listed = {item["id"]: item for item in await profiles_of(client, user.headers)}
    assert listed[profile["id"]]["avatar_url"] == url

    # The same ticket cannot replace the checked image (overwrite=false is part of the signature).
    again = await browser_upload(grant, png(64, 64))
    assert again.json().get("existing") is True and again.json()["width"] == 32
    tampered = dict(grant, fields={**grant["fields"], "overwrite": "true"})
    assert (await browser_upload(tampered, png(64, 64))).status_code == 401

    # Removing the avatar destroys the image at Cloudinary.
    removed = await client.delete(f"{PROFILES}/{profile['id']}/avatar", headers=user.headers)
    assert removed.status_code == 200 and removed.json()["avatar_url"] is None
    assert result["public_id"] not in server.resources
    destroyed = server.requests_to("/image/destroy", "POST")
    assert destroyed and destroyed[-1].params["public_id"] == result["public_id"]


async def test_cloudinary_confirm_checks_the_signature_and_the_folder(
    cloudinary_env: CloudinaryServer, user: SignedIn, client: httpx.AsyncClient
) -> None:
    profile = await made(client, user.headers)
    other = await made(client, user.headers)
    result = (await browser_upload(await cloudinary_ticket(client, user, profile["id"]), png())).json()
    base = {"public_id": result["public_id"], "version": result["version"]}

    forged = hashlib.sha1(
        f"public_id={result['public_id']}&version={result['version']}guess".encode()
    ).hexdigest()
    flipped = result["signature"][:-1] + ("1" if result["signature"].endswith("0") else "0")
    for signature in [forged, flipped, ""]:
        response = await confirm(client, user, profile["id"], **base, signature=signature)
        assert response.status_code == 400 and response.json()["code"] == "invalid_avatar_signature"
    wrong_version = await confirm(
        client,
        user,
        profile["id"],
        **{**base, "version": int(result["version"]) + 1},
        signature=result["signature"],
    )
    assert wrong_version.status_code == 400 and wrong_version.json()["code"] == "invalid_avatar_signature"
    # A genuine upload of another profile cannot be attached here.
    foreign = await confirm(client, user, other["id"], **base, signature=result["signature"])
    assert foreign.status_code == 400 and foreign.json()["code"] == "invalid_avatar_key"
    assert (
        await confirm(client, user, profile["id"], **base, signature=result["signature"])
    ).status_code == 200


async def test_cloudinary_refuses_non_images_and_the_api_refuses_big_ones(
    cloudinary_env: CloudinaryServer, user: SignedIn, client: httpx.AsyncClient
) -> None:
    server = cloudinary_env
    profile = await made(client, user.headers)
    grant = await cloudinary_ticket(client, user, profile["id"])
    text = await browser_upload(grant, b"just some text, honest", filename="me.png")
    assert text.status_code == 400 and "Invalid image" in text.json()["error"]["message"]
    gif = await browser_upload(grant, b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", filename="me.gif")
    assert gif.status_code == 400 and "not allowed" in gif.json()["error"]["message"]

    big = (await browser_upload(grant, png(padding=2 * 1024 * 1024))).json()
    refused = await confirm(
        client,
        user,
        profile["id"],
        public_id=big["public_id"],
        version=big["version"],
        signature=big["signature"],
    )
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_image"
    assert big["public_id"] not in server.resources  # destroyed

    never = (await cloudinary_ticket(client, user, profile["id"]))["fields"]["public_id"]
    from tests.support.cloudinary_server import response_signature

    missing = await confirm(
        client,
        user,
        profile["id"],
        public_id=never,
        version=1,
        signature=response_signature(never, 1, server.api_secret),
    )
    assert missing.status_code == 400 and missing.json()["code"] == "avatar_not_uploaded"


async def test_cloudinary_unreachable_is_a_503(
    cloudinary_env: CloudinaryServer, settings_env: Any, user: SignedIn, client: httpx.AsyncClient
) -> None:
    import socket

    profile = await made(client, user.headers)
    result = (await browser_upload(await cloudinary_ticket(client, user, profile["id"]), png())).json()
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    settings_env(CLOUDINARY_UPLOAD_PREFIX=dead)
    response = await confirm(
        client,
        user,
        profile["id"],
        public_id=result["public_id"],
        version=result["version"],
        signature=result["signature"],
    )
    assert response.status_code == 503 and response.json()["code"] == "service_unavailable"
