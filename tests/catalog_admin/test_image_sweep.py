"""The daily sweep of catalog artwork: staging uploads never confirmed, and images (originals with their
WebP variants) no title, season, episode or person refers to. Real storage and PostgreSQL; ages come from
keys dated in the past (new_name(at=...)) or from a clock moved forward, never from sleeping."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from psycopg.types.json import Jsonb

from shared.catalog_admin import image_sweep, repository
from shared.images.direct_upload import STAGING_MAX_AGE, new_name
from shared.infra.storage import get_storage, reset_storage
from shared.maintenance.service import run_daily, sweep_images
from shared.settings import get_settings
from tests.catalog_admin.conftest import API, confirm, create_title, encoded, ticket, uploaded
from tests.support import catalog_factory
from tests.support.aws import create_bucket
from tests.support.catalog_factory import Db
from tests.support.identity import SignedIn

DAY = 86400


async def put(key: str) -> str:
    await (await get_storage()).put_bytes(key, b"\x89PNG\r\n\x1a\n-not-really", content_type="image/png")
    return key


async def exists(key: str) -> bool:
    return await (await get_storage()).head(key) is not None


async def stored_image(age: float, *, variants: tuple[str, ...] = ("w185", "w342")) -> dict[str, Any]:
    """An original and its variants stored as the confirm call does, issued `age` seconds ago; its entry."""
    key = await put(f"catalog/images/{new_name(at=time.time() - age)}.png")
    stem = key.removesuffix(".png")
    sizes = {name: await put(f"{stem}-{name}.webp") for name in variants}
    return {"key": key, "sizes": sizes, "width": 600, "height": 900}


def keys_of(entry: dict[str, Any]) -> list[str]:
    return [entry["key"], *entry["sizes"].values()]


async def test_stale_staging_uploads_go_and_fresh_ones_stay(db: Db) -> None:
    user = uuid.uuid4()
    stale = await put(f"catalog-uploads/{user}/{new_name(at=time.time() - STAGING_MAX_AGE - 60)}.png")
    fresh = await put(f"catalog-uploads/{user}/{new_name(at=time.time() - STAGING_MAX_AGE + 120)}.jpg")
    undated = await put(f"catalog-uploads/{user}/{uuid.uuid4().hex}.png")  # from before names had a time

    report = await run_daily(settings=get_settings())

    assert report.swept_image_uploads >= 1
    assert not await exists(stale)
    assert await exists(fresh) and await exists(undated)


async def test_unreferenced_old_images_go_with_their_variants(db: Db) -> None:
    unused = await stored_image(8 * DAY)
    recent = await stored_image(6 * DAY)  # a manager may still save the form it was uploaded from
    undated = await put(f"catalog/images/{uuid.uuid4().hex}.png")  # from before names had a time
    undated_variant = await put(undated.removesuffix(".png") + "-w185.webp")

    poster, backdrop = await stored_image(30 * DAY), await stored_image(30 * DAY, variants=("w780",))
    still, photo, season_poster = [await stored_image(9 * DAY) for _ in range(3)]
    deleted_poster = await stored_image(9 * DAY)
    title = await catalog_factory.title(
        db, "Sweep Film", kind="series", images={"poster": poster, "backdrop": backdrop}
    )
    season = await catalog_factory.season(db, title, 1, episodes=1)
    await db.execute(
        "update public.catalog_episodes set images = %s where season_id = %s",
        (Jsonb({"still": still}), season),
    )
    await db.execute(
        "update public.catalog_seasons set images = %s where id = %s",
        (Jsonb({"poster": season_poster}), season),
    )
    await catalog_factory.person(db, "Sweep Person", images={"photo": photo})
    # A deleted title can be restored: its images stay.
    await catalog_factory.title(
        db, "Deleted Film", images={"poster": deleted_poster}, deleted_at=datetime(2026, 1, 1, tzinfo=UTC)
    )

    referenced = await repository.referenced_image_keys(db, image_sweep.FOLDER)
    assert set(keys_of(poster)) | set(keys_of(still)) | set(keys_of(photo)) <= referenced
    assert not set(keys_of(unused)) & referenced

    report = await run_daily(settings=get_settings())

    assert report.swept_catalog_images >= 3
    for key in keys_of(unused):
        assert not await exists(key), key
    for entry in (recent, poster, backdrop, still, photo, season_poster, deleted_poster):
        for key in keys_of(entry):
            assert await exists(key), key
    assert await exists(undated) and await exists(undated_variant)


async def test_an_image_taken_off_a_title_goes_a_week_after_upload(db: Db) -> None:
    replaced = await stored_image(10 * DAY)
    current = await stored_image(DAY)  # its replacement, uploaded yesterday
    title = await catalog_factory.title(db, "Recast Poster", images={"poster": replaced})
    await sweep_images()
    assert all([await exists(key) for key in keys_of(replaced)])

    await db.execute(
        "update public.catalog_titles set images = %s where id = %s", (Jsonb({"poster": current}), title)
    )
    swept = (await sweep_images()).catalog
    assert swept >= 3
    assert not any([await exists(key) for key in keys_of(replaced)])
    assert all([await exists(key) for key in keys_of(current)])


async def test_real_uploads_are_dated_and_swept_on_time(
    client: httpx.AsyncClient, manager: SignedIn, db: Db
) -> None:
    """Through the API: an abandoned ticket, a confirmed image never saved, and one saved on a title."""
    abandoned = await uploaded(client, manager, encoded((200, 300)))
    entries = []
    for _ in range(2):
        key = await uploaded(client, manager, encoded((600, 900)))
        response = await confirm(client, manager, kind="poster", key=key)
        assert response.status_code == 201, response.text
        entries.append(response.json()["entry"])
    never_saved, saved = entries
    assert len(never_saved["sizes"]) == 3  # w185, w342, w500
    title = await create_title(client, manager)
    patched = await client.patch(
        f"{API}/titles/{title['id']}", json={"images": {"poster": saved}}, headers=manager.headers
    )
    assert patched.status_code == 200, patched.text
    # A ticket handed out but never used leaves nothing to sweep.
    assert (await ticket(client, manager, "poster", "image/png", 1000)).status_code == 200

    # Now: everything is fresh.
    await sweep_images()
    assert await exists(abandoned) and all([await exists(key) for key in keys_of(never_saved)])

    # Once every upload URL has expired, the abandoned staging object goes; the images are not a week old.
    await sweep_images(now=time.time() + STAGING_MAX_AGE + 5)
    assert not await exists(abandoned)
    assert all([await exists(key) for key in keys_of(never_saved)])

    # A week and a day later, the image nobody saved goes, variants included; the saved one stays.
    await sweep_images(now=time.time() + 8 * DAY)
    assert not any([await exists(key) for key in keys_of(never_saved)])
    assert all([await exists(key) for key in keys_of(saved)])
    seen = await client.get(f"{API}/titles/{title['id']}", headers=manager.headers)
    assert seen.status_code == 200 and seen.json()["images"]["poster"]["w185"]


async def test_the_sweep_on_s3(db: Db, settings_env: Any, aws_env: None, moto_endpoint: str) -> None:
    bucket = create_bucket(moto_endpoint, "cinema-sweep")
    settings_env(STORAGE_BACKEND="s3", S3_BUCKET=bucket, S3_ENDPOINT_URL=moto_endpoint)
    await reset_storage()
    try:
        old = time.time() - STAGING_MAX_AGE - 60
        stale = [
            await put(f"catalog-uploads/{uuid.uuid4()}/{new_name(at=old)}.png"),
            await put(f"avatar-uploads/{uuid.uuid4()}/{uuid.uuid4()}/{new_name(at=old)}.webp"),
        ]
        fresh = await put(f"avatar-uploads/{uuid.uuid4()}/{uuid.uuid4()}/{new_name()}.png")
        unused, used = await stored_image(8 * DAY), await stored_image(8 * DAY)
        await catalog_factory.person(db, "S3 Person", images={"photo": used})

        assert await sweep_images() == (2, 3, 0)  # Cloudinary's sweep is off (and not configured)
        assert not any([await exists(key) for key in [*stale, *keys_of(unused)]])
        assert await exists(fresh) and all([await exists(key) for key in keys_of(used)])
    finally:
        await reset_storage()
