"""The viewer's main journey, end to end through the pages, in Debian's headless Chromium against the dev
server app (issue 8, "Done when"):

sign up on /signup/ -> open the verification link from the local outbox -> sign in -> pick the profile on
/profiles/ -> subscribe to Standard in the sandbox checkout (/account/billing/) -> type a misspelt title in
the header's search box, pick "Search for ..." and the title on the results page -> the title page -> Play
-> /watch/ plays past 5 s -> Home -> the Continue watching row has it -> open it again: it resumes near the
same place. Then a third device on Standard (2 screens: two sessions started through the API with other
device ids) gets the stream-limit page, and a kids profile of the same account sees the R-rated title
neither on Home nor in search.

The title is a subscription title (min_tier 1) with a real transcoded asset (conftest.transcoded_title).
No page may log a console error, except Chromium's own "Failed to load resource" line for the deliberate
409 of the stream limit. Screenshots of the key pages: TEST_ARTIFACTS_DIR/browser/journey-*.png."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import psycopg
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import LiveServer, transcoded_title
from tests.browser.test_billing_page import open_billing, pay_at_checkout
from tests.browser.test_catalog_pages import word
from tests.browser.test_home_and_profiles import WHO_IS_WATCHING, add_profile, suggestions
from tests.support import catalog_factory as factory
from tests.support.browser_pages import (
    SESSIONS,
    ConsoleErrors,
    live_sessions,
    newest_mail,
    ready,
    require_players,
    screenshot,
    sign_in,
    wait_state,
)
from tests.support.identity import PASSWORD, random_ip, unique_email

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

NAME = "Journey Tester"  # the sign-up name: the account's first profile is named after it


@pytest.fixture(scope="module", autouse=True)
def players_installed() -> None:
    require_players("hls.min.js")


@pytest.fixture(scope="module")
async def film(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A subscription film (plans of tier 1 and up) with a real transcoded asset and a made-up word."""
    unique = word(10)
    name = f"The {unique} Voyage"
    title_id = await transcoded_title(
        database_url,
        tmp_path_factory.mktemp("journey"),
        name,
        access="subscription",
        min_tier=1,
        maturity_level="all",
        release_year=2024,
    )
    # One letter dropped, in lower case: only the typo-tolerant search finds it.
    return {"id": str(title_id), "name": name, "misspelt": f"{unique[:4]}{unique[5:]} voyage".lower()}


async def r_rated_title(database_url: str) -> dict[str, str]:
    """A published R-rated (16+) film, newest and popular enough to be on the grown-up profile's Home."""
    unique = word(10)
    name = f"{unique} Nightfall"
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        title_id = await factory.title(
            db,
            name,
            maturity_level="16+",
            rating_system="mpaa",
            rating="R",
            release_year=2025,
            popularity=150_000,
            genres=["Thriller"],
        )
    return {"id": str(title_id), "name": name, "word": unique}


async def shot(page: Page, name: str) -> None:
    await screenshot(page, f"journey-{name}", full_page=True)


async def tab_session(page: Page) -> dict[str, Any]:
    """The tokens the tab keeps (sessionStorage, as account.js saves them)."""
    stored = await page.evaluate("JSON.parse(sessionStorage.getItem('cinema.session'))")
    assert stored and stored["access_token"], stored
    return dict(stored)


async def sessions_ended(base_url: str, tokens: dict[str, Any], *, within: float = 10) -> None:
    """Wait until the account has no live stream session (the watch page ends its own on leaving)."""
    deadline = time.monotonic() + within
    while live := await live_sessions(base_url, tokens):
        assert time.monotonic() < deadline, f"the watch page left its session running: {live}"
        await asyncio.sleep(0.25)


async def go_home(page: Page, base_url: str) -> None:
    """Leave the current page through the header's Home link."""
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Home").click()
    await page.wait_for_url(f"{base_url}/")
    await ready(page)


async def test_sign_up_subscribe_search_play_resume_stream_limit_and_kids(
    page: Page, live_server: LiveServer, database_url: str, film: dict[str, Any]
) -> None:
    base_url = live_server.base_url
    page.context.set_default_timeout(15_000)
    console = ConsoleErrors(page, expected_statuses=(409,))
    adult_only = await r_rated_title(database_url)

    # Sign up, open the verification link from the local outbox, sign in.
    email = unique_email("journey")
    await page.goto("/signup/")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Your name").fill(NAME)
    await page.get_by_label("Password").fill(PASSWORD)
    await shot(page, "signup")
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("heading", name="Check your inbox")).to_be_focused()
    link = (await newest_mail(live_server.base_url, email, "verify_email"))["links"][0]
    await page.goto(link)
    await expect(page.get_by_role("heading", name="Email confirmed")).to_be_visible()
    # Signed in, on to "Who's watching?": the account's first profile, named at sign-up; then Home.
    await sign_in(page, email, PASSWORD, start="/login/", then=re.compile(r"/profiles/(\?.*)?$"))
    await ready(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text(WHO_IS_WATCHING)
    await shot(page, "profiles")
    await page.get_by_role("button", name=NAME, exact=True).click()
    await page.wait_for_url(f"{base_url}/")
    await ready(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Home for {NAME}")
    assert (await tab_session(page))["profile_id"]

    # Billing from the profile menu: Standard (2 screens) through the sandbox checkout's Start trial.
    await page.get_by_role("button", name=f"Profile menu: {NAME}").click()
    await page.get_by_role("link", name="Billing").click()
    await page.wait_for_url(re.compile(r"/account/billing/$"))
    await open_billing(page)
    await page.get_by_role("button", name="Subscribe to Standard").click()
    await pay_at_checkout(page, shot="journey-checkout")
    await expect(page.locator("#banner")).to_have_text("Payment received; your plan is active.")
    summary = page.locator("#plan-summary")
    await expect(summary).to_contain_text("Standard")
    await expect(summary).to_contain_text("2 screens at once")
    await shot(page, "billing")

    # Back Home through the header's logo, then the header's search box: a misspelt title; the
    # suggestions offer the full search; the results page (typo tolerant) has it.
    await page.get_by_role("link", name="Cinema Online home", exact=True).click()
    await page.wait_for_url(f"{base_url}/")
    await ready(page)
    box = page.get_by_role("combobox", name="Search")
    await box.fill(film["misspelt"])
    listbox = page.get_by_role("listbox", name="Suggestions")
    await listbox.get_by_role(
        "option", name=re.compile(f"Search for “{re.escape(film['misspelt'])}”")
    ).click()
    await page.wait_for_url(re.compile(r"/search/\?q="))
    await ready(page)
    hit = page.locator("#grid .card").filter(has_text=film["name"])
    await expect(hit).to_be_visible()
    await shot(page, "search")
    await hit.get_by_role("link").click()

    # The title page: Play.
    await page.wait_for_url(f"{base_url}/title/?id={film['id']}")
    await ready(page)
    await expect(page.get_by_role("heading", name=film["name"], level=1)).to_be_visible()
    await shot(page, "title")
    await page.get_by_role("link", name=f"Play {film['name']}").click()

    # The player: the video's clock passes 5 s.
    await page.wait_for_url(f"{base_url}/watch/?content={film['id']}")
    state = await wait_state(page, lambda s: s.get("currentTime", 0) > 5, what="5 s of playback")
    assert state["phase"] == "playing" and state["playing"], state
    await expect(page.get_by_role("heading", level=1)).to_have_text(film["name"])
    await shot(page, "watch")
    first_session = state["sessionId"]

    # Pause (the player saves the position), then leave for Home: Continue watching has the film (and this
    # grown-up profile sees the R-rated title). Without the pause the only saved position of a first play
    # shorter than 10 s is the one sent on leaving (fetch keepalive), which races Home's requests.
    await page.locator("#video").hover()
    await page.get_by_role("button", name="Pause", exact=True).click()
    await wait_state(page, lambda s: s.get("positions", 0) >= 1, within=10, what="the saved position")
    left_at = await page.evaluate("() => document.getElementById('video').currentTime")
    tokens = await tab_session(page)
    await go_home(page, base_url)
    resume = page.get_by_role("link", name=re.compile(rf"^Resume {re.escape(film['name'])}, \d+% watched$"))
    await expect(resume).to_be_visible()
    await expect(resume).to_have_attribute("href", f"/watch/?content={film['id']}")
    await expect(page.locator(f'.card[data-id="{adult_only["id"]}"]').first).to_be_visible()
    await shot(page, "home-continue-watching")

    # Open it again: it resumes near where it was left, in a new session.
    await resume.click()
    await page.wait_for_url(f"{base_url}/watch/?content={film['id']}")
    state = await wait_state(page, lambda s: s.get("playing"), what="playing again")
    assert state["sessionId"] != first_session, state
    assert state["resumeFrom"] and abs(state["resumeFrom"] - left_at) < 3, (left_at, state)
    assert state["currentTime"] >= state["resumeFrom"] - 1, state
    await shot(page, "watch-resumed")
    await go_home(page, base_url)
    await sessions_ended(base_url, tokens)

    # A third device on Standard: two other devices play (started through the API), then this browser.
    headers = {"authorization": f"Bearer {tokens['access_token']}", "x-forwarded-for": random_ip()}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=15) as api:
        try:
            for device_id, device_name, kind in (
                ("tv-living-room", "Living room TV", "tv"),
                ("phone-anna", "Anna's phone", "mobile"),
            ):
                started = await api.post(
                    SESSIONS,
                    json={
                        "content_id": film["id"],
                        "device_id": device_id,
                        "device_name": device_name,
                        "device_class": kind,
                    },
                )
                assert started.status_code == 201, started.text
            await page.goto(f"/watch/?content={film['id']}")
            await expect(page.get_by_role("heading", name="Too many screens are playing")).to_be_visible()
            await expect(page.get_by_text("plays on 2 screens at a time")).to_be_visible()
            devices = page.get_by_role("list", name="Active streams").get_by_role("listitem")
            await expect(devices).to_have_count(2)
            await expect(devices.filter(has_text="Living room TV")).to_have_count(1)
            await expect(devices.filter(has_text="Anna's phone")).to_have_count(1)
            await expect(page.get_by_role("region", name="Video player")).to_be_hidden()
            await shot(page, "stream-limit")
        finally:
            for item in await live_sessions(base_url, tokens):
                await api.delete(f"{SESSIONS}/{item['session_id']}")

    # A kids profile of the same account: added on the picker; no R-rated title on Home or in search.
    await go_home(page, base_url)
    await page.get_by_role("button", name=f"Profile menu: {NAME}").click()
    await page.get_by_role("link", name="Switch profile").click()
    await ready(page)
    await page.get_by_role("button", name="Manage profiles").click()
    await add_profile(page, "Kiddo", kids=True)
    await page.get_by_role("button", name="Done").click()
    await page.get_by_role("button", name="Kiddo (kids profile)").click()
    await page.wait_for_url(f"{base_url}/")
    await ready(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Home for Kiddo")
    assert await page.locator("section.row .card").count() > 0, "the kids profile's Home has no titles"
    await expect(page.locator(f'.card[data-id="{adult_only["id"]}"]')).to_have_count(0)
    await shot(page, "home-kids")
    offered = await suggestions(page, adult_only["word"])
    assert not any("Nightfall" in text for text in offered), offered
    await page.get_by_role("combobox", name="Search").press("Enter")
    await page.wait_for_url(re.compile(r"/search/\?q="))
    await ready(page)
    await expect(page.locator("#empty")).to_contain_text(f"No titles match “{adult_only['word']}”.")
    await expect(page.locator(f'.card[data-id="{adult_only["id"]}"]')).to_have_count(0)
    await shot(page, "search-kids")

    console.check()
