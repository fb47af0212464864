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
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import LiveServer, serving, transcoded_title
from tests.support import catalog_factory as factory
from tests.support.browser_pages import (
    SESSIONS,
    ConsoleErrors,
    live_sessions,
    profile_session,
    require_players,
    screenshot,
    signed_in_tab,
    wait_state,
    watch_state,
)
from tests.support.identity import random_ip

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

CLIP_SECONDS = 16.0
CAP = 240  # FREE_MAX_HEIGHT: the free plan's quality cap (the clip has 240p and 360p)


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    """The dev server with the free plan capped at 240p and heartbeats every 10 s."""
    with serving(LiveServer(), FREE_MAX_HEIGHT=str(CAP), STREAM_HEARTBEAT_TTL_SECONDS="30") as server:
        yield server


@pytest.fixture(scope="module", autouse=True)
def players_installed() -> None:
    require_players("hls.min.js")


@pytest.fixture(scope="module")
async def free_title(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> uuid.UUID:
    """A published free movie whose current asset is a real transcode (cheap encode settings)."""
    return await transcoded_title(
        database_url,
        tmp_path_factory.mktemp("watch"),
        f"Watchpage {uuid.uuid4().hex[:6]}",
        seconds=CLIP_SECONDS,
        audio_languages=("eng", "fra"),
        subtitles=True,
        access="free",
        maturity_level="all",
    )


async def viewer_session(
    database_url: str, *, streams: int | None = None, kids: bool = False
) -> dict[str, Any]:
    """A new viewer's profile-bound tokens (as the profile picker saves them); a subscription if `streams`."""
    return (await profile_session(database_url, streams=streams, kids=kids)).tokens


async def fits_from_a_phone_to_a_tv(page: Page) -> None:
    """The playing stage at a phone's and a TV's size: no sideways scroll, every control on the stage."""
    for width, height in ((360, 740), (3840, 2160)):
        await page.set_viewport_size({"width": width, "height": height})
        await page.locator("#play").focus()  # the controls show while the stage holds the focus
        layout = await page.evaluate(
            """() => {
              const stage = document.getElementById('stage').getBoundingClientRect();
              const outside = [...document.querySelectorAll('#controls button, #controls input')]
                .filter((node) => node.getClientRects().length)
                .filter((node) => {
                  const box = node.getBoundingClientRect();
                  return box.left < stage.left - 1 || box.right > stage.right + 1
                    || box.bottom > stage.bottom + 1;
                })
                .map((node) => node.id || node.className);
              const play = document.getElementById('play').getBoundingClientRect();
              const time = document.getElementById('time');
              return { scroll: document.scrollingElement.scrollWidth, width: innerWidth, outside,
                       stage: stage.width, play: play.height,
                       timeClipped: time.scrollWidth > time.clientWidth + 1 };
            }"""
        )
        assert layout["scroll"] <= layout["width"], layout
        assert not layout["outside"] and not layout["timeClipped"], layout
        if width >= 1600:  # read from across a room: a large stage and controls that grow with the text
            assert layout["stage"] >= 0.8 * width and layout["play"] >= 60, layout
        await screenshot(page, f"watch-playing-{width}")
    await page.set_viewport_size({"width": 1280, "height": 800})
    await page.evaluate("() => document.activeElement && document.activeElement.blur()")


async def test_plays_caps_quality_toggles_with_keys_and_resumes_after_leaving(
    browser: Browser, live_server: LiveServer, free_title: uuid.UUID, database_url: str
) -> None:
    base_url = live_server.base_url
    tokens = await viewer_session(database_url)
    console = ConsoleErrors()
    page = await signed_in_tab(browser, base_url, tokens, console)
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
        await fits_from_a_phone_to_a_tv(page)

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
    console.check()


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
        console = ConsoleErrors(expected_statuses=(409,))
        page = await signed_in_tab(browser, base_url, tokens, console)
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
    console.check()


async def test_a_subscription_title_without_a_plan_shows_the_subscribe_offer(
    browser: Browser, live_server: LiveServer, database_url: str
) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        title_id = await factory.title(
            db, f"Planbound {uuid.uuid4().hex[:6]}", access="subscription", min_tier=1, maturity_level="all"
        )
    tokens = await viewer_session(database_url)
    console = ConsoleErrors(expected_statuses=(403,))
    page = await signed_in_tab(browser, live_server.base_url, tokens, console)
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
    console.check()


async def test_a_title_denied_in_the_viewers_country_says_so(
    browser: Browser, live_server: LiveServer, database_url: str
) -> None:
    """geo_blocked: the edge's country header (through the trusted local proxy) names a denied country."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        title_id = await factory.title(
            db, f"Faraway {uuid.uuid4().hex[:6]}", access="free", maturity_level="all", country_deny=["US"]
        )
    tokens = await viewer_session(database_url)
    # 403 the refusal (the heading does not ask the catalog, which hides the title from the US as well).
    console = ConsoleErrors(expected_statuses=(403,))
    # uvicorn takes the client address from X-Forwarded-For (its own proxy headers): the browser stands
    # right behind the trusted local proxy here, so the platform believes the proxy's country header.
    edge = {"x-forwarded-for": "127.0.0.1", "x-vercel-ip-country": "US"}
    page = await signed_in_tab(browser, live_server.base_url, tokens, console, headers=edge)
    try:
        await page.goto(f"/watch/?content={title_id}")
        heading = page.get_by_role("heading", name="Not available in your country")
        await expect(heading).to_be_visible()
        await expect(heading).to_be_focused()  # the message is where a screen reader lands
        await expect(page.get_by_text("not available in your country.")).to_be_visible()
        await expect(page.get_by_role("link", name="Browse titles")).to_have_attribute("href", "/browse/")
        await expect(page.get_by_role("region", name="Video player")).to_be_hidden()
        await expect(page.get_by_role("heading", level=1)).not_to_have_text("Loading…")
        state = await watch_state(page)
        assert state["code"] == "geo_blocked" and state["phase"] == "refused", state
        assert state["sessionId"] is None, state
        await screenshot(page, "watch-geo-blocked")
    finally:
        await page.context.close()
    console.check()


async def test_a_kids_profile_is_refused_a_mature_title_and_offered_the_profile_switch(
    browser: Browser, live_server: LiveServer, database_url: str
) -> None:
    """maturity_restricted on a kids profile; Switch profile goes to the picker and back to this title."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        title_id = await factory.title(
            db,
            f"Midnight {uuid.uuid4().hex[:6]}",
            access="free",
            maturity_level="16+",
            rating_system="mpaa",
            rating="R",
        )
    tokens = await viewer_session(database_url, kids=True)
    # 403 the refusal (the heading does not ask the catalog: a kids profile does not see the title there);
    # 409 the grown-up profile's start of a title without a playable asset (after the switch).
    console = ConsoleErrors(expected_statuses=(403, 409))
    page = await signed_in_tab(browser, live_server.base_url, tokens, console)
    watch = f"/watch/?content={title_id}"
    try:
        await page.goto(watch)
        await expect(page.get_by_role("heading", name="Not available on this profile")).to_be_visible()
        await expect(page.get_by_text("above the maturity level of your profile")).to_be_visible()
        await expect(page.get_by_role("region", name="Video player")).to_be_hidden()
        assert (await watch_state(page))["code"] == "maturity_restricted"
        switch = page.get_by_role("link", name="Switch profile")
        await expect(switch).to_have_attribute("href", f"/profiles/?next={quote(watch, safe='')}")
        await screenshot(page, "watch-maturity-restricted")

        await switch.click()
        await page.wait_for_url(re.compile(r"/profiles/\?next="))
        await expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("watching", re.I))
        await page.get_by_role("button", name=re.compile(r"^viewer-")).click()  # the account's own profile
        await page.wait_for_url(re.compile(re.escape(watch) + "$"))
        # The grown-up profile passes the maturity check; this title has no video yet.
        await expect(page.get_by_role("heading", name="Not ready to play yet")).to_be_visible()
        assert (await watch_state(page))["code"] == "not_playable_yet"
    finally:
        await page.context.close()
    console.check()


async def test_a_subscription_lost_while_playing_stops_at_the_next_heartbeat(
    browser: Browser, live_server: LiveServer, database_url: str, tmp_path: Path
) -> None:
    """A heartbeat answered 403 not_entitled (the plan was revoked mid-playback) stops with the offers."""
    from shared.entitlements.service import invalidate

    title_id = await transcoded_title(
        database_url,
        tmp_path,
        f"Lapsing {uuid.uuid4().hex[:6]}",
        seconds=CLIP_SECONDS,
        access="subscription",
        min_tier=1,
        maturity_level="all",
    )
    viewer = await profile_session(database_url, streams=2)
    user_id, tokens = viewer.user_id, viewer.tokens
    console = ConsoleErrors(expected_statuses=(403,))
    page = await signed_in_tab(browser, live_server.base_url, tokens, console)
    try:
        await page.goto(f"/watch/?content={title_id}")
        state = await wait_state(page, lambda s: s.get("currentTime", 0) > 0.5, what="playback")
        started = state["sessionId"]
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
            await db.execute(
                "update public.entitlements set revoked_at = now() where user_id = %s", (user_id,)
            )
        await invalidate(user_id)
        # Heartbeats every STREAM_HEARTBEAT_TTL_SECONDS / 3 = 10 s.
        heading = page.get_by_role("heading", name="Not included in your plan")
        await expect(heading).to_be_visible(timeout=15_000)
        await expect(page.get_by_text(re.compile(r"^Playback stopped: "))).to_be_visible()
        await expect(page.get_by_role("link", name="Subscribe")).to_have_attribute(
            "href", "/account/billing/"
        )
        await expect(page.get_by_role("region", name="Video player")).to_be_hidden()
        state = await watch_state(page)
        assert state["code"] == "not_entitled" and state["phase"] == "refused", state
        assert not state["playing"] and await page.evaluate("() => document.getElementById('video').paused")
        assert not any(
            item["session_id"] == started for item in await live_sessions(live_server.base_url, tokens)
        )
        await screenshot(page, "watch-heartbeat-refused")
        await page.goto("about:blank")
    finally:
        await page.context.close()
    console.check()
