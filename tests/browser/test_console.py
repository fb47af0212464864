"""The content manager console in Debian's headless Chromium against the live dev server.

A content manager creates a title through the console's form, uploads a generated 320x180 clip on the
upload page (SHA-256 in the browser, a presigned PUT with XMLHttpRequest progress up to 100 %), the test
runs the real transcode worker in-process (as tests/browser/test_playback.py does) and the page, which polls
the job, shows it ready with a preview link. A poster generated with Pillow is uploaded from the title
editor (ticket, direct PUT, confirm: resized WebP variants) and shows on the title page. A viewer without the
role gets the role message. Screenshots go to TEST_ARTIFACTS_DIR/browser/ (default
.data/test-artifacts/browser/)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.async_api import Browser, Page, expect
from playwright.async_api import Error as PlaywrightError

from tests.browser.conftest import LiveServer, serving
from tests.support.browser_pages import (
    ConsoleErrors,
    artefacts_dir,
    profile_session,
    session_of,
    signed_in_tab,
)
from tests.support.browser_pages import ready as page_ready
from tests.support.identity import SignedIn, signed_in_user

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

CLIP_SECONDS = 3.0
PART_BYTES = 5 * 1024 * 1024  # the smallest multipart threshold and part size the settings allow


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    """The dev server with the cheapest x264 preset and the smallest multipart threshold and part size.

    The worker run in this process reads the same settings."""
    with serving(
        LiveServer(),
        MEDIA_X264_PRESET="ultrafast",
        MEDIA_MULTIPART_THRESHOLD_BYTES=str(PART_BYTES),  # the smallest allowed: parts above 5 MiB
        MEDIA_PART_BYTES=str(PART_BYTES),
    ) as server:
        yield server


async def signed_in_page(
    browser: Browser, base_url: str, user: SignedIn, *, expected_statuses: tuple[int, ...] = ()
) -> tuple[Page, ConsoleErrors]:
    """A fresh tab whose sessionStorage holds the user's session, as after the sign-in page."""
    problems = ConsoleErrors(expected_statuses=expected_statuses)
    opened = await signed_in_tab(
        browser, base_url, session_of(user), problems, viewport={"width": 1280, "height": 900}
    )
    return opened, problems


@pytest.fixture
async def manager(database_url: str) -> SignedIn:
    return await signed_in_user(database_url, roles=["content_manager"])


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(
        database_url, autocommit=True, prepare_threshold=None
    ) as conn:
        yield conn


async def test_a_viewer_without_the_role_gets_the_role_message(
    browser: Browser, live_server: LiveServer, database_url: str
) -> None:
    viewer = await signed_in_user(database_url)
    page, problems = await signed_in_page(browser, live_server.base_url, viewer)
    try:
        for path in ("/console/", f"/console/upload/?title={uuid.uuid4()}"):
            await page.goto(path)
            await expect(page.locator("body")).to_have_attribute("data-ready", "true")
            message = page.get_by_role("heading", name="You need the content manager role")
            await expect(message).to_be_visible()
            await expect(page.locator("#console, #upload-page")).to_be_hidden()
        await page.screenshot(path=str(artefacts_dir() / "console-no-role.png"), full_page=True)
    finally:
        await page.context.close()
    problems.check()


@pytest.mark.slow
async def test_a_content_manager_creates_a_title_uploads_a_clip_and_sees_it_playable(
    browser: Browser,
    live_server: LiveServer,
    manager: SignedIn,
    db: psycopg.AsyncConnection[Any],
    tmp_path: Path,
) -> None:
    from shared.infra.loop_local import reset_all
    from tests.transcoding.jobs_support import clip, park_foreign_jobs, work

    name = f"Console clip {uuid.uuid4().hex[:8]}"
    file = clip(tmp_path / "console-clip.mp4", seconds=CLIP_SECONDS, audio_languages=("eng",))
    page, problems = await signed_in_page(browser, live_server.base_url, manager)
    try:
        # Create the title through the form.
        await page.goto("/console/")
        await expect(page.locator("body")).to_have_attribute("data-ready", "true")
        await expect(page.get_by_role("heading", name="Catalog console", level=1)).to_be_visible()
        await page.get_by_role("button", name="New title").click()
        form = page.locator("#title-form")
        await form.get_by_label("Title", exact=True).fill(name)
        await form.get_by_label("Kind").select_option("movie")
        await form.get_by_label("Release year").fill("2024")
        await form.get_by_label("Production countries").fill("us, fr")
        await form.get_by_label("Rating system").select_option("mpaa")
        await page.locator("#f-rating").fill("PG-13")
        await page.locator("#f-available_from").fill("2024-01-01T00:00")
        # How it is offered: the minimum tier shows for subscription titles only.
        offered = form.get_by_label("How it is offered")
        await expect(offered).to_have_value("subscription")
        await expect(form.get_by_label("Minimum plan tier")).to_have_value("1")
        await offered.select_option("transactional")
        await expect(form.get_by_label("Minimum plan tier")).to_be_hidden()
        await page.get_by_role("button", name="Save title").click()
        await expect(page.locator("#editor-status")).to_contain_text(f"Created “{name}”")
        await expect(offered).to_have_value("transactional")  # the form shows the stored title
        await expect(page).to_have_url(re.compile(r"/console/\?id=[0-9a-f-]{36}$"))
        title_id = uuid.UUID(page.url.split("id=")[1][:36])
        await page.screenshot(path=str(artefacts_dir() / "console-title-created.png"), full_page=True)

        stored = await (
            await db.execute(
                "select title, kind, release_year, rating, maturity_level, status, access, min_tier,"
                " countries from public.catalog_titles where id = %s",
                (title_id,),
            )
        ).fetchone()
        assert stored is not None
        assert stored[:8] == (name, "movie", 2024, "PG-13", "13+", "draft", "transactional", 1), stored
        assert sorted(stored[8]) == ["FR", "US"], stored

        # Upload the clip: hashed in the browser, PUT to storage with a progress bar up to 100 %.
        await park_foreign_jobs(db)  # the worker below runs only this test's job
        row = page.locator(f'#titles-table tr[data-id="{title_id}"]')
        await expect(row).to_contain_text("Draft")  # the list shows the new title with its status
        await expect(row.locator("td.access")).to_have_text("Rent or buy")  # ...and how it is offered
        await page.get_by_role("link", name="Upload a video", exact=True).click()
        await expect(page.locator("body")).to_have_attribute("data-ready", "true")
        await expect(page.locator("#target-name")).to_have_text(name)
        await page.get_by_label("Video file").set_input_files(str(file))
        await page.get_by_role("button", name="Upload", exact=True).click()
        await expect(page.locator("#upload-status")).to_contain_text("Uploaded console-clip.mp4")
        assert await page.locator("#hash-progress").evaluate("node => node.value") == 100
        assert await page.locator("#upload-progress").evaluate("node => node.value") == 100
        await expect(page.locator("#job-state")).to_have_attribute("data-state", "queued")
        await page.screenshot(path=str(artefacts_dir() / "console-uploaded.png"), full_page=True)

        source = await (
            await db.execute(
                "select state, size_bytes, sha256 from public.media_sources where title_id = %s", (title_id,)
            )
        ).fetchall()
        assert len(source) == 1 and source[0][0] == "uploaded" and source[0][1] == file.stat().st_size

        # The real worker transcodes it; the page, polling the job, shows it ready with a preview link.
        try:
            outcomes = await work(kinds=["transcode.run", "events.deliver"])
        finally:
            await reset_all()
        assert ("transcode.run", "done") in outcomes, outcomes
        await expect(page.locator("#job-state")).to_have_attribute("data-state", "ready", timeout=20_000)
        await expect(page.locator("#job-progress-label")).to_have_text("100 %")
        preview = page.get_by_role("link", name="Play it")
        await expect(preview).to_be_visible()
        await expect(preview).to_have_attribute("href", f"/watch/?content={title_id}")
        await expect(page.locator("#assets-table tbody tr").first).to_contain_text("Ready")
        await page.screenshot(path=str(artefacts_dir() / "console-ready.png"), full_page=True)

        # A phone-sized screen keeps the page usable (no sideways scrolling of the page itself).
        await page.set_viewport_size({"width": 360, "height": 780})
        overflow = await page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        wide = await page.evaluate(
            "() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right"
            " > window.innerWidth + 1 && !e.closest('.table-wrap')).map(e => e.tagName + '#' + e.id + '.'"
            " + e.className).slice(0, 8)"
        )
        assert overflow <= 1, (overflow, wide)
        await page.screenshot(path=str(artefacts_dir() / "console-upload-phone.png"), full_page=True)
    finally:
        await page.context.close()
    problems.check()


async def ready(page: Page, path: str) -> None:
    await page.goto(path)
    await page_ready(page)


def storage_part(url: str) -> int:
    """The part number of a multipart part PUT to the dev server's storage (0: a single PUT)."""
    found = re.search(r"[?&]part=(\d+)", url)
    return int(found.group(1)) if found else 0


@pytest.mark.slow
async def test_a_multipart_upload_resumes_after_a_reload_without_sending_stored_parts_again(
    browser: Browser,
    live_server: LiveServer,
    manager: SignedIn,
    db: psycopg.AsyncConnection[Any],
    tmp_path: Path,
) -> None:
    from tests.support.catalog_factory import title
    from tests.transcoding.jobs_support import clip

    title_id = await title(db, f"Console resume {uuid.uuid4().hex[:8]}", status="draft")
    # A real clip padded with random bytes (nothing compresses them away) to just above the threshold:
    # two parts, 5 MiB and the rest.
    file = clip(tmp_path / "resume-clip.mp4", seconds=1.0, audio_languages=("eng",))
    with file.open("ab") as handle:
        handle.write(os.urandom(PART_BYTES + 300_000 - file.stat().st_size))
    size = file.stat().st_size
    page, problems = await signed_in_page(browser, live_server.base_url, manager)
    page.on("dialog", lambda dialog: dialog.accept())  # "leave the page?" while the upload runs: yes
    sent: list[int] = []  # part numbers of the PUTs the browser sent to storage
    stored: list[int] = []  # ... and of those storage answered
    page.on(
        "request",
        lambda r: sent.append(storage_part(r.url)) if "/_storage/" in r.url and r.method == "PUT" else None,
    )
    page.on(
        "requestfinished",
        lambda r: stored.append(storage_part(r.url)) if "/_storage/" in r.url and r.method == "PUT" else None,
    )
    held: list[Any] = []
    holding = [True]

    async def hold_second_part(route: Any) -> None:
        if holding[0] and route.request.method == "PUT" and storage_part(route.request.url) == 2:
            held.append(route)  # never answered: the reload below drops it
        else:
            await route.continue_()

    await page.route(re.compile(r"/_storage/"), hold_second_part)
    try:
        await ready(page, f"/console/upload/?title={title_id}")
        await expect(page.locator("#resume-panel")).to_be_hidden()
        await page.get_by_label("Video file").set_input_files(str(file))
        async with page.expect_request_finished(
            lambda r: "/_storage/" in r.url and storage_part(r.url) == 1
        ) as first:
            await page.get_by_role("button", name="Upload", exact=True).click()
        assert (await (await first.value).response()).status == 200  # type: ignore[union-attr]
        await expect(page.locator("#upload-status")).to_contain_text("Uploading resume-clip.mp4")
        assert held, "part 2 was never sent"
        row = await (
            await db.execute(
                "select state, upload_id is not null from public.media_sources where title_id = %s",
                (title_id,),
            )
        ).fetchone()
        assert row == ("uploading", True), row

        # The reload drops the held part; the page offers to resume the unfinished upload.
        await ready(page, f"/console/upload/?title={title_id}")
        holding[0] = False
        panel = page.locator("#resume-panel")
        await expect(panel).to_be_visible()
        await expect(panel.get_by_role("heading", name="Unfinished upload")).to_be_visible()
        await expect(panel).to_contain_text("resume-clip.mp4")
        await expect(panel).to_contain_text("1 of 2 parts")
        await page.screenshot(path=str(artefacts_dir() / "console-upload-resume.png"), full_page=True)

        # The same file again: only the missing part goes to storage, then the upload completes.
        await page.get_by_label("Video file").set_input_files(str(file))
        await expect(page.get_by_role("button", name="Resume the upload")).to_be_visible()
        await page.get_by_role("button", name="Resume the upload").click()
        await expect(page.locator("#upload-status")).to_contain_text("Uploaded resume-clip.mp4")
        await expect(page.locator("#job-state")).to_have_attribute("data-state", "queued")
        await expect(panel).to_be_hidden()
        assert await page.locator("#upload-progress").evaluate("node => node.value") == 100
        assert sorted(stored) == [1, 2], (sent, stored)  # each part stored once
        assert sent.count(1) == 1, sent  # the stored part was not sent again after the reload
        source = await (
            await db.execute(
                "select state, size_bytes from public.media_sources where title_id = %s", (title_id,)
            )
        ).fetchall()
        assert source == [("uploaded", size)], source
        await page.screenshot(path=str(artefacts_dir() / "console-upload-resumed.png"), full_page=True)
    finally:
        await page.context.close()
    problems.check()


async def test_a_bulk_import_reports_each_row(
    browser: Browser,
    live_server: LiveServer,
    manager: SignedIn,
    db: psycopg.AsyncConnection[Any],
    tmp_path: Path,
) -> None:
    good = f"Imported film {uuid.uuid4().hex[:8]}"
    bad = f"Broken film {uuid.uuid4().hex[:8]}"
    csv_file = tmp_path / "import.csv"
    csv_file.write_text(
        "title,kind,release_year,rating_system,rating,genres\n"
        f"{good},movie,2021,mpaa,PG,Drama|Console import\n"
        f"{bad},movie,1700,mpaa,PG,Drama\n",
        encoding="utf-8",
    )
    page, problems = await signed_in_page(browser, live_server.base_url, manager)
    try:
        await ready(page, "/console/")
        section = page.locator("#import-section")
        await section.get_by_label("File").set_input_files(str(csv_file))
        await expect(page.locator("#import-text")).to_have_value(re.compile(re.escape(good)))
        await expect(page.locator("#import-format")).to_have_value("csv")
        await section.get_by_role("button", name="Import").click()
        report = page.locator("#import-report")
        await expect(report).to_be_visible()
        await expect(page.locator("#import-counts")).to_have_text("1 imported, 0 updated, 1 rejected.")
        rows = page.locator("#import-table tbody tr")
        await expect(rows).to_have_count(2)
        await expect(rows.nth(0)).to_contain_text("Imported")
        await expect(rows.nth(0).get_by_role("link")).to_have_text(good)
        await expect(rows.nth(1)).to_contain_text("Rejected")
        await expect(rows.nth(1)).to_contain_text(bad)  # named from the file: the API gives no slug
        await expect(rows.nth(1)).to_contain_text("release_year")
        await expect(rows.nth(1)).to_contain_text("greater than or equal to 1870")
        stored = await (
            await db.execute(
                "select title, release_year, rating from public.catalog_titles where title in (%s, %s)",
                (good, bad),
            )
        ).fetchall()
        assert stored == [(good, 2021, "PG")], stored
        await expect(page.locator("#titles-summary")).not_to_have_text("Loading titles…")  # the list reloaded
        await page.screenshot(path=str(artefacts_dir() / "console-import-report.png"), full_page=True)

        # The imported row links to its title in the editor.
        await rows.nth(0).get_by_role("link").click()
        await expect(page.locator("#editor-title")).to_have_text(f"Edit “{good}”")
        await expect(page.get_by_label("Drama", exact=True)).to_be_checked()
        await expect(page.get_by_label("Console import", exact=True)).to_be_checked()  # a genre it created
    finally:
        await page.context.close()
    problems.check()


async def test_a_content_manager_edits_a_title_and_adds_a_season_with_an_episode(
    browser: Browser,
    live_server: LiveServer,
    manager: SignedIn,
    db: psycopg.AsyncConnection[Any],
) -> None:
    from tests.support.catalog_factory import title

    name = f"Console series {uuid.uuid4().hex[:8]}"
    title_id = await title(db, name, kind="series", status="draft", synopsis_short="Old synopsis.")
    page, problems = await signed_in_page(browser, live_server.base_url, manager)
    try:
        await ready(page, f"/console/?id={title_id}")
        editor = page.locator("#editor")
        await expect(page.locator("#editor-title")).to_have_text(f"Edit “{name}”")
        form = page.locator("#title-form")
        await expect(form.get_by_label("Short synopsis")).to_have_value("Old synopsis.")
        await expect(form.get_by_label("Status")).to_have_value("draft")
        await form.get_by_label("Short synopsis").fill(
            "A family of projectionists keeps the last cinema open."
        )
        await form.get_by_label("Status").select_option("published")
        await page.get_by_role("button", name="Save title").click()
        await expect(page.locator("#editor-status")).to_have_text(f"Saved “{name}”.")
        await expect(page.locator("#editor-meta")).to_contain_text("Published")
        stored = await (
            await db.execute(
                "select synopsis_short, status from public.catalog_titles where id = %s", (title_id,)
            )
        ).fetchone()
        assert stored == ("A family of projectionists keeps the last cinema open.", "published"), stored

        # A season, then an episode in it.
        seasons = editor.locator("#seasons-section")
        await expect(seasons).to_be_visible()
        await seasons.get_by_label("Season number").first.fill("1")
        await seasons.get_by_label("Name").fill("The first reel")
        await seasons.get_by_role("button", name="Add season").click()
        season = seasons.locator("section.season")
        await expect(
            season.get_by_role("heading", name="Season 1 · The first reel (0 episodes)")
        ).to_be_visible()
        # Image fields with an upload control: the season's poster, the episode's still.
        await expect(season.get_by_label("Upload image for the poster of season 1")).to_be_visible()
        add_episode = season.get_by_role("form", name="Add an episode to season 1")
        await expect(
            add_episode.get_by_label("Upload image for the still of the new episode of season 1")
        ).to_have_attribute("accept", "image/png,image/jpeg,image/webp")
        await expect(add_episode.get_by_label("Episode number")).to_have_value("1")
        await add_episode.get_by_label("Episode name").fill("Opening night")
        await add_episode.get_by_label("Runtime in minutes").fill("42")
        await add_episode.get_by_role("button", name="Add episode").click()
        await expect(
            season.get_by_role("heading", name="Season 1 · The first reel (1 episode)")
        ).to_be_visible()
        episode_row = season.locator("table tbody tr").first
        await expect(episode_row).to_contain_text("Opening night")
        await expect(episode_row).to_contain_text("42 min")
        await expect(
            episode_row.get_by_role("link", name="Upload a video for episode 1, Opening night")
        ).to_have_attribute(
            "href", re.compile(rf"/console/upload/\?title={title_id}&episode=[0-9a-f-]{{36}}$")
        )
        episodes = await (
            await db.execute(
                "select s.number, s.name, e.number, e.name, e.runtime_minutes from public.catalog_episodes e"
                " join public.catalog_seasons s on s.id = e.season_id where e.title_id = %s",
                (title_id,),
            )
        ).fetchall()
        assert episodes == [(1, "The first reel", 1, "Opening night", 42)], episodes
        row = page.locator(f'#titles-table tr[data-id="{title_id}"]')
        await expect(row).to_contain_text("Published")
        await page.screenshot(path=str(artefacts_dir() / "console-title-edited.png"), full_page=True)
    finally:
        await page.context.close()
    problems.check()


def poster_png(path: Path, width: int = 600, height: int = 900) -> Path:
    """A real PNG poster (2:3) drawn with Pillow: a gradient and a frame, so every variant has content."""
    from PIL import Image, ImageDraw

    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 20, width - 21, height - 21), outline=(230, 180, 40), width=12)
    draw.ellipse((width // 4, height // 3, 3 * width // 4, height // 3 + width // 2), fill=(200, 40, 60))
    image.save(path, format="PNG")
    return path


async def test_a_content_manager_uploads_a_poster_that_the_title_page_shows(
    browser: Browser,
    live_server: LiveServer,
    manager: SignedIn,
    db: psycopg.AsyncConnection[Any],
    database_url: str,
    tmp_path: Path,
) -> None:
    from tests.support.catalog_factory import title

    name = f"Console poster {uuid.uuid4().hex[:8]}"
    title_id = await title(db, name, status="published", release_year=2023)
    poster = poster_png(tmp_path / "poster.png")
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("Only words, no pixels.\n" * 20, encoding="utf-8")
    # The refused upload below answers 422 (invalid_image): the browser logs that refusal.
    page, problems = await signed_in_page(browser, live_server.base_url, manager, expected_statuses=(422,))
    try:
        await ready(page, f"/console/?id={title_id}")
        await expect(page.locator("#editor-title")).to_have_text(f"Edit “{name}”")
        text = page.get_by_label("Poster (2:3)", exact=True)
        upload = page.get_by_label("Upload image for the poster")
        await expect(text).to_have_value("")

        # Something that is not an image: the API's problem text in the poster's error slot.
        await upload.set_input_files(str(not_an_image))
        error = page.locator("#f-image-poster-error")
        await expect(error).not_to_be_empty()
        await expect(upload).to_have_attribute("aria-invalid", "true")
        await expect(text).to_have_value("")
        await expect(upload).to_be_focused()  # back on the control, to choose another file

        # The generated PNG: ticket, PUT with progress, confirm; the key in the field and a preview.
        await upload.set_input_files(str(poster))
        await expect(text).to_have_value(re.compile(r"^catalog/images/[0-9]+-[0-9a-f]{32}\.png$"))
        await expect(error).to_be_empty()
        await expect(upload).not_to_have_attribute("aria-invalid", "true")
        assert await page.locator("#f-image-poster-progress").evaluate("node => node.value") == 100
        preview = page.get_by_role("img", name="The uploaded poster")
        await expect(preview).to_be_visible()
        await expect(preview).to_have_js_property("complete", True)
        assert await preview.evaluate("node => node.naturalWidth") > 0
        key = await text.input_value()
        stem = key.removesuffix(".png")
        await page.screenshot(path=str(artefacts_dir() / "console-poster-uploaded.png"), full_page=True)

        # Saving sends the whole entry: the stored poster keeps its variants.
        await page.get_by_role("button", name="Save title").click()
        await expect(page.locator("#editor-status")).to_have_text(f"Saved “{name}”.")
        stored = await (
            await db.execute("select images->'poster' from public.catalog_titles where id = %s", (title_id,))
        ).fetchone()
        assert stored is not None and stored[0]["key"] == key, stored
        # Variants for the poster widths below the 600 px original.
        assert stored[0]["sizes"] == {f"w{w}": f"{stem}-w{w}.webp" for w in (185, 342, 500)}, stored
        await expect(page.get_by_role("img", name="The current poster")).to_be_visible()  # read back

        # A person's photo goes the same way (the photo kind's widths below 600 px).
        person = f"Console photo {uuid.uuid4().hex[:8]}"
        await page.get_by_role("button", name="New person").click()
        await page.locator("#person-form").get_by_label("Name", exact=True).fill(person)
        await page.get_by_label("Upload image for the photo").set_input_files(str(poster))
        await expect(page.get_by_role("img", name="The uploaded photo")).to_be_visible()
        await page.get_by_role("button", name="Save person").click()
        await expect(page.locator("#person-form-title")).to_have_text(f"Edit {person}")
        photo = await (
            await db.execute("select images->'photo' from public.catalog_people where name = %s", (person,))
        ).fetchone()
        assert photo is not None and set(photo[0]["sizes"]) == {"w185", "w342"}, photo
        await expect(page.get_by_role("img", name="The current photo")).to_be_visible()

    finally:
        await page.context.close()
    problems.check()

    # A viewer's title page shows a resized variant, loaded.
    viewer = await profile_session(database_url)
    seen = ConsoleErrors()
    page = await signed_in_tab(browser, live_server.base_url, viewer.tokens, seen)
    try:
        await ready(page, f"/title/?id={title_id}")
        shown = page.locator("#poster")
        await expect(shown).to_be_visible()
        await expect(shown).to_have_js_property("complete", True)
        assert await shown.evaluate("node => node.naturalWidth") > 0
        source = await shown.evaluate("node => node.currentSrc")
        assert re.search(re.escape(stem.split("/")[-1]) + r"-w\d+\.webp", source), source
        await page.screenshot(path=str(artefacts_dir() / "title-uploaded-poster.png"))
    finally:
        await page.context.close()
    seen.check()


async def test_an_upload_running_when_another_title_is_opened_stays_off_that_title(
    browser: Browser,
    live_server: LiveServer,
    manager: SignedIn,
    db: psycopg.AsyncConnection[Any],
    tmp_path: Path,
) -> None:
    """The editor reuses its image fields: opening another title mid-upload abandons the upload."""
    from tests.support.catalog_factory import title

    # A word of letters only, so the search finds the second title by it.
    word = "".join(random.choice("bcdfghjklmnpqrstvwz") for _ in range(10))
    first = f"Console first {uuid.uuid4().hex[:8]}"
    second = f"Console second {word}"
    first_id = await title(db, first, status="published")
    second_id = await title(db, second, status="published", synopsis_short="The second one.")
    poster = poster_png(tmp_path / "poster.png")
    page, problems = await signed_in_page(browser, live_server.base_url, manager)
    confirms: list[str] = []  # POST /catalog/images: an upload finishing
    page.on(
        "request",
        lambda r: (
            confirms.append(r.url)
            if r.method == "POST" and r.url.endswith("/api/v1/catalog/images")
            else None
        ),
    )
    held: list[Any] = []
    put_held = asyncio.Event()

    async def hold_put(route: Any) -> None:
        if route.request.method == "PUT":
            held.append(route)
            put_held.set()
        else:
            await route.continue_()

    await page.route(re.compile(r"/_storage/"), hold_put)
    try:
        await ready(page, f"/console/?id={first_id}")
        await expect(page.locator("#editor-title")).to_have_text(f"Edit “{first}”")
        text = page.get_by_label("Poster (2:3)", exact=True)
        upload = page.get_by_label("Upload image for the poster")
        await upload.set_input_files(str(poster))
        await asyncio.wait_for(put_held.wait(), timeout=30)  # the file is on its way to storage
        await expect(page.locator("#f-image-poster-progress")).to_be_visible()
        await expect(upload).to_be_disabled()

        # Another title, opened from the list while the PUT is held.
        await page.get_by_label("Search titles").fill(word)
        await page.get_by_role("button", name="Show titles").click()
        await page.get_by_role("button", name=f"Edit {second}").click()
        await expect(page.locator("#editor-title")).to_have_text(f"Edit “{second}”")
        await expect(page.locator("#title-form").get_by_label("Short synopsis")).to_have_value(
            "The second one."
        )
        # The upload is abandoned: the field is the second title's, free to use.
        await expect(text).to_have_value("")
        await expect(upload).to_be_enabled()
        await expect(page.locator("#f-image-poster-progress")).to_be_hidden()

        # Storage answers the held PUT now (the browser has dropped it already).
        for route in held:
            with contextlib.suppress(PlaywrightError):
                await route.continue_()
        await page.unroute(re.compile(r"/_storage/"), hold_put)

        # Saving the second title is not held back and gives it no poster.
        await page.get_by_role("button", name="Save title").click()
        await expect(page.locator("#editor-status")).to_have_text(f"Saved “{second}”.")
        await expect(text).to_have_value("")
        await expect(page.get_by_role("img", name="The uploaded poster")).to_be_hidden()
        assert confirms == [], confirms  # the abandoned upload was never confirmed
        rows = await (
            await db.execute(
                "select id, images->'poster' from public.catalog_titles where id in (%s, %s)",
                (first_id, second_id),
            )
        ).fetchall()
        assert {row[1] for row in rows} == {None}, rows

        # The field still uploads for the title it shows now.
        await upload.set_input_files(str(poster))
        await expect(text).to_have_value(re.compile(r"^catalog/images/[0-9]+-[0-9a-f]{32}\.png$"))
        await expect(page.get_by_role("img", name="The uploaded poster")).to_be_visible()
    finally:
        await page.context.close()
    problems.check()


SRT = """1
00:00:00,500 --> 00:00:02,000
The projector is warming up.

2
00:00:02,500 --> 00:00:04,000
Lights down, please.
"""


async def test_subtitles_are_uploaded_and_listed(
    browser: Browser,
    live_server: LiveServer,
    manager: SignedIn,
    db: psycopg.AsyncConnection[Any],
    tmp_path: Path,
) -> None:
    from tests.support.catalog_factory import title

    title_id = await title(db, f"Console subtitles {uuid.uuid4().hex[:8]}", status="draft")
    srt = tmp_path / "english.srt"
    srt.write_text(SRT, encoding="utf-8")
    page, problems = await signed_in_page(browser, live_server.base_url, manager)
    try:
        await ready(page, f"/console/upload/?title={title_id}")
        panel = page.locator("#subtitles-panel")
        await expect(panel.locator("tbody")).to_contain_text("No subtitles yet.")
        await panel.get_by_role("textbox", name="Language").fill("en")
        await panel.get_by_role("textbox", name="Label").fill("English")
        await panel.get_by_label("SDH").check()
        await panel.get_by_label("Subtitle file").set_input_files(str(srt))
        await panel.get_by_role("button", name="Add subtitles").click()
        row = panel.locator("tbody tr").first
        await expect(row).to_contain_text("English")
        await expect(row.get_by_role("rowheader")).to_have_text("en")
        await expect(row).to_contain_text("SDH")
        await expect(row.locator("td").nth(2)).to_have_text("2")  # cues
        await expect(panel.get_by_role("textbox", name="Language")).to_have_value("")  # the form is reset
        stored = await (
            await db.execute(
                "select language, label, sdh, cue_count from public.media_subtitles where title_id = %s",
                (title_id,),
            )
        ).fetchall()
        assert stored == [("en", "English", True, 2)], stored
        await page.screenshot(path=str(artefacts_dir() / "console-subtitles.png"), full_page=True)

        # Listed again after a reload.
        await ready(page, f"/console/upload/?title={title_id}")
        await expect(panel.locator("tbody tr")).to_have_count(1)
        await expect(panel.locator("tbody tr").first).to_contain_text("English")
    finally:
        await page.context.close()
    problems.check()


@pytest.mark.slow
async def test_a_failed_transcode_shows_its_code_and_reason(
    browser: Browser,
    live_server: LiveServer,
    manager: SignedIn,
    db: psycopg.AsyncConnection[Any],
    tmp_path: Path,
) -> None:
    from shared.infra.loop_local import reset_all
    from tests.support.catalog_factory import title
    from tests.transcoding.jobs_support import park_foreign_jobs, work

    title_id = await title(db, f"Console failure {uuid.uuid4().hex[:8]}", status="draft")
    fake = tmp_path / "not-a-video.mp4"
    fake.write_text("This is a shopping list, not a film.\n" * 200, encoding="utf-8")
    page, problems = await signed_in_page(browser, live_server.base_url, manager)
    try:
        await ready(page, f"/console/upload/?title={title_id}")
        await park_foreign_jobs(db)
        await page.get_by_label("Video file").set_input_files(str(fake))
        await page.get_by_role("button", name="Upload", exact=True).click()
        await expect(page.locator("#upload-status")).to_contain_text("Uploaded not-a-video.mp4")
        try:
            outcomes = await work(kinds=["transcode.run", "events.deliver"])
        finally:
            await reset_all()
        assert any(kind == "transcode.run" for kind, _ in outcomes), outcomes
        job = await (
            await db.execute(
                "select j.state, j.failure_code, j.failure_reason from public.transcode_jobs j"
                " join public.media_sources s on s.id = j.source_id where s.title_id = %s",
                (title_id,),
            )
        ).fetchone()
        assert job is not None and job[0] == "failed" and job[1] and job[2], job
        await expect(page.locator("#job-state")).to_have_attribute("data-state", "failed", timeout=20_000)
        failure = page.locator("#job-failure")
        await expect(failure).to_be_visible()
        await expect(failure).to_contain_text(f"({job[1]})")
        await expect(failure).to_contain_text(job[2][:60])
        await expect(page.locator("#preview-panel")).to_be_hidden()
        await expect(page.locator("#job-cancel")).to_be_hidden()
        await page.screenshot(path=str(artefacts_dir() / "console-transcode-failed.png"), full_page=True)
    finally:
        await page.context.close()
    problems.check()
