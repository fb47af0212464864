"""The content manager console in Debian's headless Chromium against the live dev server.

A content manager creates a title through the console's form, uploads a generated 320x180 clip on the
upload page (SHA-256 in the browser, a presigned PUT with XMLHttpRequest progress up to 100 %), the test
runs the real transcode worker in-process (as tests/browser/test_playback.py does) and the page, which polls
the job, shows it ready with a preview link. A viewer without the role gets the role message. Screenshots go
to TEST_ARTIFACTS_DIR/browser/ (default .data/test-artifacts/browser/)."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import LiveServer, PageProblems, serving
from tests.support.identity import SignedIn, random_ip, signed_in_user

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[2]
CLIP_SECONDS = 3.0


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    """The dev server with the cheapest x264 preset (the worker in this process reads the same settings)."""
    with serving(LiveServer(), MEDIA_X264_PRESET="ultrafast") as server:
        yield server


def artefacts_dir() -> Path:
    folder = Path(os.environ.get("TEST_ARTIFACTS_DIR") or REPO / ".data" / "test-artifacts") / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class ConsoleErrors(PageProblems):
    """Every console error (not only CSP ones) and uncaught exception."""

    def on_console(self, message: Any) -> None:
        if message.type == "error":
            self.items.append(f"console: {message.text}")


async def signed_in_page(browser: Browser, base_url: str, user: SignedIn) -> tuple[Page, ConsoleErrors]:
    """A fresh tab whose sessionStorage holds the user's session, as after the sign-in page."""
    context = await browser.new_context(
        base_url=base_url,
        extra_http_headers={"x-forwarded-for": random_ip()},
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(15_000)
    session = {
        "access_token": user.access_token,
        "refresh_token": user.refresh_token,
        "expires_at": user.body.get("expires_at"),
        "session_id": user.session_id,
        "profile_id": None,
    }
    await context.add_init_script(
        f"window.sessionStorage.setItem('cinema.session', {json.dumps(json.dumps(session))});"
    )
    opened = await context.new_page()
    problems = ConsoleErrors()
    opened.on("console", problems.on_console)
    opened.on("pageerror", problems.on_page_error)
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
    assert not problems.items, problems.items


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
        await page.get_by_role("button", name="Save title").click()
        await expect(page.locator("#editor-status")).to_contain_text(f"Created “{name}”")
        await expect(page).to_have_url(re.compile(r"/console/\?id=[0-9a-f-]{36}$"))
        title_id = uuid.UUID(page.url.split("id=")[1][:36])
        await page.screenshot(path=str(artefacts_dir() / "console-title-created.png"), full_page=True)

        stored = await (
            await db.execute(
                "select title, kind, release_year, rating, maturity_level, status, countries"
                " from public.catalog_titles where id = %s",
                (title_id,),
            )
        ).fetchone()
        assert stored is not None
        assert stored[:6] == (name, "movie", 2024, "PG-13", "13+", "draft"), stored
        assert sorted(stored[6]) == ["FR", "US"], stored

        # Upload the clip: hashed in the browser, PUT to storage with a progress bar up to 100 %.
        await park_foreign_jobs(db)  # the worker below runs only this test's job
        row = page.locator(f'#titles-table tr[data-id="{title_id}"]')
        await expect(row).to_contain_text("Draft")  # the list shows the new title with its status
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
    assert not problems.items, problems.items
