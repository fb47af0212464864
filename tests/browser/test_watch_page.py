"""The watch page (/watch/?content=...) in Debian's headless Chromium against the live dev server.

One real transcode (a generated 16 s 640x360 clip, two rungs 240p/360p, English and French audio, English
and forced French subtitles, ultrafast) of a free title, as tests/browser/test_playback.py makes its asset.
The free plan's quality cap is set to 240p here (FREE_MAX_HEIGHT), so the quality menu must not offer 360p.
The viewer plays past 5 s, pauses and resumes with the keyboard, leaves and comes back to resume near the
same place; a third device on a 2-stream plan gets the stream-limit page listing the two other devices and
plays once one of them is ended; a subscription title the viewer has no plan for shows the subscribe offer.
Screenshots (playing, stream limit, not entitled) go to TEST_ARTIFACTS_DIR/browser/."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import LiveServer, _unavailable, serving
from tests.support import catalog_factory as factory
from tests.support.identity import random_ip, signed_in_user, users_client

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]
VENDOR = REPO / "public" / "vendor"
CLIP_SECONDS = 16.0
CAP = 240  # FREE_MAX_HEIGHT: the free plan's quality cap (the clip has 240p and 360p)
SESSIONS = "/api/v1/streaming/sessions"


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    """The dev server with the free plan capped at 240p and heartbeats every 10 s."""
    with serving(LiveServer(), FREE_MAX_HEIGHT=str(CAP), STREAM_HEARTBEAT_TTL_SECONDS="30") as server:
        yield server


@pytest.fixture(scope="module", autouse=True)
def players_installed() -> None:
    """public/vendor/ is filled by `make` (npm ci + copy); skipped without it locally, failed on CI."""
    if not (VENDOR / "hls.min.js").is_file():
        _unavailable("public/vendor/ lacks hls.min.js: run `make test` (or `make public/vendor/.installed`)")


def artefacts_dir() -> Path:
    folder = Path(os.environ.get("TEST_ARTIFACTS_DIR") or REPO / ".data" / "test-artifacts") / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
async def free_title(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> uuid.UUID:
    """A published free movie whose current asset is a real transcode (cheap encode settings)."""
    from shared.infra.loop_local import reset_all
    from shared.settings import get_settings
    from tests.support.playback import _add_subtitles
    from tests.transcoding.jobs_support import clip, make_source, park_foreign_jobs, queue_job, work

    file = clip(
        tmp_path_factory.mktemp("watch") / "watch.mp4",
        seconds=CLIP_SECONDS,
        width=640,
        height=360,
        audio_languages=("eng", "fra"),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDIA_X264_PRESET", "ultrafast")
        patch.setenv("MEDIA_FIRST_RUNGS", "2")
        get_settings.cache_clear()
        await reset_all()
        try:
            async with await psycopg.AsyncConnection.connect(
                database_url, autocommit=True, prepare_threshold=None
            ) as db:
                await park_foreign_jobs(db)
                title_id = await factory.title(
                    db, f"Watchpage {uuid.uuid4().hex[:6]}", access="free", maturity_level="all"
                )
                await _add_subtitles(db, title_id)
                source_id, _ = await make_source(db, file, title_id=title_id)
                await queue_job(database_url, source_id)
                outcomes = await work(kinds=["transcode.run", "events.deliver"])
                assert ("transcode.run", "done") in outcomes, outcomes
        finally:
            get_settings.cache_clear()
            await reset_all()
    return title_id


async def viewer_session(database_url: str, *, streams: int | None = None) -> dict[str, Any]:
    """A new viewer's profile-bound tokens (as the profile picker saves them); a subscription if `streams`."""
    user = await signed_in_user(database_url)
    if streams is not None:
        from shared.entitlements.service import invalidate

        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
            await db.execute(
                "insert into public.entitlements (user_id, kind, plan_code, tier, max_streams, max_height)"
                " values (%s, 'subscription', 'standard', 1, %s, 1080)",
                (user.user_id, streams),
            )
        await invalidate(user.user_id)
    async with users_client() as client:
        listed = await client.get("/api/v1/users/me/profiles", headers=user.headers)
        assert listed.status_code == 200, listed.text
        profile_id = listed.json()[0]["id"]
        selected = await client.post(f"/api/v1/users/me/profiles/{profile_id}/select", headers=user.headers)
        assert selected.status_code == 200, selected.text
    tokens = selected.json()
    return {
        "access_token": tokens["access_token"],
        "refresh_token": tokens.get("refresh_token") or user.refresh_token,
        "expires_at": tokens.get("expires_at"),
        "session_id": tokens.get("session_id") or user.session_id,
        "profile_id": tokens.get("profile_id") or profile_id,
    }


class Console:
    """Console errors and uncaught exceptions of the page (a refusal's HTTP status may be expected)."""

    def __init__(self, *, expected_statuses: tuple[int, ...] = ()) -> None:
        self.items: list[str] = []
        self.expected = tuple(f"status of {status}" for status in expected_statuses)

    def on_console(self, message: Any) -> None:
        if message.type != "error":
            return
        text = message.text
        if text.startswith("Failed to load resource") and any(word in text for word in self.expected):
            return  # the browser's own line for an answered refusal (409 stream limit, 403 not entitled)
        self.items.append(f"console: {text}")

    def on_page_error(self, error: Any) -> None:
        self.items.append(f"uncaught: {error}")


async def open_context(browser: Browser, base_url: str, tokens: dict[str, Any], console: Console) -> Page:
    """A browser profile signed in with a profile selected (in the tab's sessionStorage, as account.js)."""
    context = await browser.new_context(
        base_url=base_url,
        extra_http_headers={"x-forwarded-for": random_ip()},
        viewport={"width": 1280, "height": 800},
    )
    context.set_default_timeout(15_000)
    await context.add_init_script(
        "try { if (location.protocol.startsWith('http') && !sessionStorage.getItem('cinema.session'))"
        f" sessionStorage.setItem('cinema.session', {json.dumps(json.dumps(tokens))}); }} catch {{}}"
    )
    page = await context.new_page()
    page.on("console", console.on_console)
    page.on("pageerror", console.on_page_error)
    return page


async def watch_state(page: Page) -> dict[str, Any]:
    return await page.evaluate("() => JSON.parse(JSON.stringify(window.watchState || {}))")


async def wait_state(page: Page, check: Any, *, within: float = 40, what: str = "") -> dict[str, Any]:
    deadline = time.monotonic() + within
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = await watch_state(page)
        if check(state):
            return state
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {state}")


async def screenshot(page: Page, name: str) -> None:
    path = artefacts_dir() / f"{name}.png"
    await page.screenshot(path=str(path))
    assert path.stat().st_size > 0


async def live_sessions(base_url: str, tokens: dict[str, Any]) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as api:
        listed = await api.get(
            SESSIONS,
            headers={"authorization": f"Bearer {tokens['access_token']}", "x-forwarded-for": random_ip()},
        )
    assert listed.status_code == 200, listed.text
    return listed.json()


async def test_plays_caps_quality_toggles_with_keys_and_resumes_after_leaving(
    browser: Browser, live_server: LiveServer, free_title: uuid.UUID, database_url: str
) -> None:
    base_url = live_server.base_url
    tokens = await viewer_session(database_url)
    console = Console()
    page = await open_context(browser, base_url, tokens, console)
    try:
        await page.goto(f"/watch/?content={free_title}")
        state = await wait_state(page, lambda s: s.get("currentTime", 0) > 5, what="5 s of playback")
        assert state["phase"] == "playing" and state["playing"], state
        assert state["library"].startswith("hls.js"), state
        await expect(page.get_by_role("heading", level=1)).to_contain_text("Watchpage")

        # The quality menu: Auto plus the levels under the plan's cap (the manifest has 360p too).
        assert state["maxHeight"] == CAP, state
        assert state["levels"] and all(height <= CAP for height in state["levels"]), state
        await page.get_by_role("button", name="Quality").click()
        items = page.get_by_role("menuitemradio")
        names = [name.strip() for name in await items.all_inner_texts()]
        assert names[0] == "Auto" and len(names) >= 2, names
        assert all(int(name.removesuffix("p")) <= CAP for name in names[1:]), names
        await page.keyboard.press("Escape")
        await expect(page.get_by_role("menu", name="Quality")).to_be_hidden()
        # Audio (English, French) and subtitles (Off + two tracks) menus are offered.
        assert len(state["audioTracks"]) == 2 and len(state["subtitleTracks"]) == 2, state
        # Storyboard thumbnails while hovering the seek bar (the session's WebVTT track of sprite tiles).
        assert state["thumbnails"] > 0, state
        await page.locator("#seek").hover(position={"x": 300, "y": 5})
        await expect(page.locator("#preview")).to_be_visible()
        sprite = await page.evaluate("() => document.getElementById('preview-image').style.backgroundImage")
        assert "/t/" in sprite and ".jpg" in sprite, sprite
        await screenshot(page, "watch-playing")
        await page.mouse.move(5, 5)

        # French audio turns the forced French subtitles on (none are on for English audio).
        assert state["subtitle"] == -1, state
        await page.get_by_role("button", name="Audio").click()
        await page.get_by_role("menu", name="Audio").get_by_role("menuitemradio").nth(1).click()
        state = await wait_state(
            page, lambda s: s.get("subtitle", -1) >= 0, within=10, what="forced subtitles"
        )
        assert "forced" in state["subtitleTracks"][state["subtitle"]], state

        # Space pauses and k plays again (the focus is on the page, not on a button).
        await page.evaluate("() => document.activeElement && document.activeElement.blur()")
        await page.keyboard.press("Space")
        await expect(page.get_by_role("button", name="Play", exact=True)).to_be_visible()
        assert await page.evaluate("() => document.getElementById('video').paused")
        await page.keyboard.press("k")
        await expect(page.get_by_role("button", name="Pause", exact=True)).to_be_visible()
        assert not await page.evaluate("() => document.getElementById('video').paused")
        await wait_state(page, lambda s: s.get("positions", 0) >= 1, within=10, what="a saved position")
        left_at = await page.evaluate("() => document.getElementById('video').currentTime")
        first_session = state["sessionId"]

        # Leave (the page saves the position and ends the session), then come back to resume there.
        await page.goto("about:blank")
        deadline = time.monotonic() + 10
        while any(item["session_id"] == first_session for item in await live_sessions(base_url, tokens)):
            assert time.monotonic() < deadline, "the session was not ended on leaving the page"
            await asyncio.sleep(0.25)
        await page.goto(f"/watch/?content={free_title}")
        state = await wait_state(page, lambda s: s.get("playing"), what="playing again")
        assert state["sessionId"] != first_session
        assert state["resumeFrom"] and abs(state["resumeFrom"] - left_at) < 3, (left_at, state)
        assert state["currentTime"] >= state["resumeFrom"] - 1, state
        await page.goto("about:blank")
    finally:
        await page.context.close()
    assert not console.items, console.items


async def test_a_third_device_gets_the_stream_limit_page_and_plays_after_ending_one(
    browser: Browser, live_server: LiveServer, free_title: uuid.UUID, database_url: str
) -> None:
    base_url = live_server.base_url
    tokens = await viewer_session(database_url, streams=2)
    headers = {"authorization": f"Bearer {tokens['access_token']}", "x-forwarded-for": random_ip()}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=15) as api:
        for device_id, name, kind in (
            ("tv-living-room", "Living room TV", "tv"),
            ("phone-anna", "Anna's phone", "mobile"),
        ):
            started = await api.post(
                SESSIONS,
                json={
                    "content_id": str(free_title),
                    "device_id": device_id,
                    "device_name": name,
                    "device_class": kind,
                },
            )
            assert started.status_code == 201, started.text
        console = Console(expected_statuses=(409,))
        page = await open_context(browser, base_url, tokens, console)
        try:
            await page.goto(f"/watch/?content={free_title}")
            await expect(page.get_by_role("heading", name="Too many screens are playing")).to_be_visible()
            devices = page.get_by_role("list", name="Active streams").get_by_role("listitem")
            await expect(devices).to_have_count(2)
            await expect(devices.nth(0)).to_contain_text("Living room TV")
            await expect(devices.nth(1)).to_contain_text("Anna's phone")
            await expect(page.get_by_text("plays on 2 screens at a time")).to_be_visible()
            await screenshot(page, "watch-stream-limit")

            await page.get_by_role("button", name="End the stream on Living room TV").click()
            state = await wait_state(
                page, lambda s: s.get("currentTime", 0) > 0.5, what="playback after ending one"
            )
            assert state["phase"] == "playing", state
            await expect(page.get_by_role("heading", name="Too many screens are playing")).to_be_hidden()
            remaining = {item["device_id"] for item in await live_sessions(base_url, tokens)}
            assert "tv-living-room" not in remaining and "phone-anna" in remaining, remaining
            await page.goto("about:blank")
        finally:
            await page.context.close()
            for item in await live_sessions(base_url, tokens):
                await api.delete(f"{SESSIONS}/{item['session_id']}")
    assert not console.items, console.items


async def test_a_subscription_title_without_a_plan_shows_the_subscribe_offer(
    browser: Browser, live_server: LiveServer, database_url: str
) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        title_id = await factory.title(
            db, f"Planbound {uuid.uuid4().hex[:6]}", access="subscription", min_tier=1, maturity_level="all"
        )
    tokens = await viewer_session(database_url)
    console = Console(expected_statuses=(403,))
    page = await open_context(browser, live_server.base_url, tokens, console)
    try:
        await page.goto(f"/watch/?content={title_id}")
        await expect(page.get_by_role("heading", name="Not included in your plan")).to_be_visible()
        await expect(page.get_by_role("link", name="Subscribe")).to_have_attribute(
            "href", "/account/billing/"
        )
        await expect(page.get_by_role("region", name="Video player")).to_be_hidden()
        assert (await watch_state(page))["code"] == "not_entitled"
        await screenshot(page, "watch-not-entitled")
    finally:
        await page.context.close()
    assert not console.items, console.items
