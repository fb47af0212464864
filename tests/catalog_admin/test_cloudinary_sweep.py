"""The daily sweep of catalog artwork at Cloudinary: images under catalog/images/ that no title, season,
episode or person refers to, once their dated public_id is over a week old, and only with
CLOUDINARY_SWEEP_UNUSED on (other deployments may share the account). Real PostgreSQL, the real
cloudinary SDK against the local stand-in (tests/support/cloudinary_server.py); ages come from public_ids
dated in the past (new_name(at=...)), never from sleeping."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from psycopg.types.json import Jsonb

from shared.catalog_admin import image_sweep, repository
from shared.catalog_admin.images import FOLDER
from shared.images.direct_upload import new_name
from shared.infra.storage import get_storage
from shared.maintenance.service import run_daily, sweep_images
from shared.settings import get_settings
from tests.catalog_admin.conftest import encoded
from tests.support import catalog_factory
from tests.support.catalog_factory import Db
from tests.support.cloudinary_server import CloudinaryServer

DAY = 86400
PNG = encoded((60, 90))
LIST_PATH = "/resources/image/upload"


@pytest.fixture
def sweeping(settings_env: Callable[..., None], cloudinary_env: CloudinaryServer) -> CloudinaryServer:
    """IMAGES_BACKEND=cloudinary against the stand-in, with the sweep of unused images opted in."""
    settings_env(CLOUDINARY_SWEEP_UNUSED="true")
    return cloudinary_env


def uploaded(server: CloudinaryServer, age: float, folder: str = "catalog/images/") -> str:
    """A public_id issued `age` seconds ago (as upload tickets name them), uploaded to the stand-in."""
    public_id = f"{folder}{new_name(at=time.time() - age)}"
    server.add(public_id, PNG)
    return public_id


def entry(public_id: str) -> dict[str, object]:
    """The images[kind] entry the confirm call answers for a Cloudinary upload."""
    return {"public_id": public_id, "version": 1700000000, "width": 600, "height": 900}


def unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:8]}"


def deleted_ids(server: CloudinaryServer, since: int) -> list[list[str]]:
    """The public_ids of each Admin API delete the SDK sent after the first `since` requests."""
    return [
        json.loads(request.params["public_ids"])
        for request in server.received[since:]
        if request.method == "DELETE" and request.path.endswith(LIST_PATH)
    ]


async def test_referenced_public_ids_come_from_every_kind_of_row(db: Db) -> None:
    ids = [f"catalog/images/{new_name()}" for _ in range(5)]
    title = await catalog_factory.title(
        db, unique("Cloud Series"), kind="series", images={"poster": entry(ids[0]), "backdrop": "junk"}
    )
    season = await catalog_factory.season(db, title, 1, episodes=1)
    await db.execute(
        "update public.catalog_seasons set images = %s where id = %s",
        (Jsonb({"poster": entry(ids[1])}), season),
    )
    await db.execute(
        "update public.catalog_episodes set images = %s where season_id = %s",
        (Jsonb({"still": entry(ids[2])}), season),
    )
    await catalog_factory.person(db, unique("Cloud Person"), images={"photo": entry(ids[3])})
    # A deleted title can be restored: its images still count.
    await catalog_factory.title(
        db,
        unique("Cloud Deleted"),
        images={"poster": entry(ids[4])},
        deleted_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    stored = f"catalog/images/{new_name()}.png"
    await catalog_factory.title(db, unique("Stored Poster"), images={"poster": {"key": stored, "sizes": {}}})

    referenced = await repository.referenced_image_public_ids(db, FOLDER)
    assert set(ids) <= referenced
    assert stored not in referenced
    assert all(item.startswith("catalog/images/") for item in referenced)


async def test_old_unreferenced_cloudinary_images_go_the_rest_stay(
    db: Db, sweeping: CloudinaryServer
) -> None:
    server = sweeping
    unused = [uploaded(server, 8 * DAY), uploaded(server, 40 * DAY)]
    recent = uploaded(server, 6 * DAY)  # a manager may still save the form it was uploaded from
    undated = "catalog/images/legacy-poster"  # not a name we hand out: never touched
    server.add(undated, PNG)
    elsewhere = uploaded(server, 30 * DAY, folder="avatars/someone/")
    poster, photo = uploaded(server, 30 * DAY), uploaded(server, 9 * DAY)
    await catalog_factory.title(db, unique("Cloud Film"), images={"poster": entry(poster)})
    await catalog_factory.person(db, unique("Cloud Star"), images={"photo": entry(photo)})
    since = len(server.received)

    report = await run_daily(settings=get_settings())

    assert report.swept_cloudinary_images >= 2
    assert not set(unused) & set(server.resources)
    assert {recent, undated, elsewhere, poster, photo} <= set(server.resources)
    # Listed through the Admin API under the folder only, deleted by public_id with a CDN invalidation.
    lists = [r for r in server.received[since:] if r.method == "GET" and r.path.endswith(LIST_PATH)]
    assert lists and all(r.params["prefix"] == "catalog/images/" and r.status == 200 for r in lists)
    batches = deleted_ids(server, since)
    assert set(unused) <= {item for batch in batches for item in batch}
    assert not {recent, undated, poster, photo} & {item for batch in batches for item in batch}
    deletes = [r for r in server.received[since:] if r.method == "DELETE"]
    assert all(r.status == 200 and json.loads(r.params["invalidate"]) is True for r in deletes)


async def test_the_sweep_pages_and_deletes_in_batches(db: Db, sweeping: CloudinaryServer) -> None:
    server = sweeping
    unused = [uploaded(server, 10 * DAY) for _ in range(105)]
    kept = [uploaded(server, 10 * DAY) for _ in range(3)]
    for public_id in kept:
        await catalog_factory.title(db, unique("Paged Film"), images={"poster": entry(public_id)})
    listed_before = len(server.requests_to(LIST_PATH, "GET"))
    since = len(server.received)

    # Listing and filtering take no connection; the referenced check and the deletion take one.
    candidates = await image_sweep.cloudinary_candidates(settings=get_settings(), page_size=20)
    assert set(unused) | set(kept) <= set(candidates)
    assert all(r.method == "GET" and r.path.endswith(LIST_PATH) for r in server.received[since:])
    swept = await image_sweep.sweep_cloudinary(db, settings=get_settings(), candidates=candidates)

    assert swept >= 105
    assert not set(unused) & set(server.resources)
    assert set(kept) <= set(server.resources)
    pages = server.requests_to(LIST_PATH, "GET")[listed_before:]
    assert len(pages) >= 6  # 108+ images, 20 a page
    assert all(page.params["max_results"] == "20" for page in pages)
    assert "next_cursor" not in pages[0].params and all("next_cursor" in page.params for page in pages[1:])
    batches = deleted_ids(server, since)
    assert len(batches) >= 2 and all(len(batch) <= 100 for batch in batches)


async def test_off_by_default_no_cloudinary_call(db: Db, cloudinary_env: CloudinaryServer) -> None:
    """A shared account: another deployment's images look unused to this database, so nothing is asked."""
    server = cloudinary_env
    assert get_settings().cloudinary_sweep_unused is False
    unused = uploaded(server, 30 * DAY)
    since = len(server.received)

    report = await run_daily(settings=get_settings())

    assert report.swept_cloudinary_images == 0
    assert unused in server.resources
    assert server.received[since:] == []  # no Admin API call at all
    assert await image_sweep.cloudinary_candidates(settings=get_settings()) == []
    assert server.received[since:] == []


async def test_swept_when_opted_in_whatever_the_images_backend(
    db: Db, settings_env: Callable[..., None], cloudinary_server: CloudinaryServer
) -> None:
    """Entries saved while IMAGES_BACKEND was cloudinary live there after a switch back to storage."""
    server = cloudinary_server
    unused = uploaded(server, 8 * DAY)
    settings_env(
        IMAGES_BACKEND="storage",
        CLOUDINARY_URL=server.cloudinary_url,
        CLOUDINARY_UPLOAD_PREFIX=server.url,
        CLOUDINARY_SWEEP_UNUSED="true",
    )
    assert (await sweep_images(settings=get_settings())).cloudinary >= 1
    assert unused not in server.resources


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_a_cloudinary_outage_sweeps_nothing_and_the_daily_run_completes(
    method: str, db: Db, sweeping: CloudinaryServer
) -> None:
    server = sweeping
    unused = uploaded(server, 8 * DAY)
    # The storage half of the sweep still runs: an unused stored image as old goes in the same run.
    stored = f"catalog/images/{new_name(at=time.time() - 8 * DAY)}.png"
    await (await get_storage()).put_bytes(stored, PNG, content_type="image/png")
    since = len(server.received)

    with server.failing(LIST_PATH, method, status=500):
        report = await run_daily(settings=get_settings())

    assert report.swept_cloudinary_images == 0
    assert unused in server.resources
    assert [r.status for r in server.received[since:] if r.method == method] == [500]
    assert report.swept_catalog_images >= 1 and await (await get_storage()).head(stored) is None
    # Back up: the next run sweeps it.
    assert (await run_daily(settings=get_settings())).swept_cloudinary_images >= 1
    assert unused not in server.resources


async def test_wrong_credentials_sweep_nothing(
    db: Db, settings_env: Callable[..., None], cloudinary_server: CloudinaryServer
) -> None:
    server = cloudinary_server
    unused = uploaded(server, 8 * DAY)
    settings_env(
        CLOUDINARY_URL=f"cloudinary://{server.api_key}:wrong-secret@{server.cloud_name}",
        CLOUDINARY_UPLOAD_PREFIX=server.url,
        CLOUDINARY_SWEEP_UNUSED="true",
    )
    since = len(server.received)
    assert (await sweep_images(settings=get_settings())).cloudinary == 0
    assert unused in server.resources
    assert [r.status for r in server.received[since:]] == [401]
