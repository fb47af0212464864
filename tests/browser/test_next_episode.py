"""The watch page's next-episode prompt in Debian's headless Chromium against the live dev server.

A free series of two episodes, each with a real transcode of one generated 26 s clip (longer than the
player's 20 s lead, so the prompt must wait for the end). Episode 1 plays, the prompt stays hidden; the
viewer seeks forward (the arrow key: +10 s) into the last 20 s and the prompt names episode 2 with its
"Play next" button focused. Enter plays episode 2 right away (the button's click, with the countdown still
running); back on episode 1, a click on "Play next" does the same. No console errors (the heading names an
episode from its session's title, without asking the catalog for the episode id as a title).
Screenshot: watch-next-episode (TEST_ARTIFACTS_DIR/browser/).
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import LiveServer, Series, transcoded_series
from tests.support.browser_pages import (
    ConsoleErrors,
    profile_session,
    require_players,
    screenshot,
    signed_in_tab,
    wait_state,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]

EPISODES = ("The Lantern Keeper", "The Tide Clock")
CLIP_SECONDS = 26.0
LEAD_SECONDS = 20  # player.js NEXT_LEAD_SECONDS: the prompt shows this long before the end
COUNTDOWN_SECONDS = 10  # player.js NEXT_COUNTDOWN: then the next episode plays by itself


@pytest.fixture(scope="module", autouse=True)
def players_installed() -> None:
    require_players("hls.min.js")


@pytest.fixture(scope="module")
async def series(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Series:
    """A free series whose two episodes play (one cheap encode each of the same generated clip)."""
    return await transcoded_series(
        database_url,
        tmp_path_factory.mktemp("next-episode"),
        f"Lanternfall {uuid.uuid4().hex[:6]}",
        EPISODES,
        seconds=CLIP_SECONDS,
        access="free",
        maturity_level="all",
    )


async def play_into_the_last_seconds(page: Page, series: Series) -> None:
    """Episode 1 plays with episode 2 up next; the arrow key seeks into the prompt's lead."""
    state = await wait_state(
        page,
        lambda s: s.get("currentTime", 0) > 0.3 and s.get("next"),
        what="episode 1 playing, with what follows it loaded",
    )
    assert state["phase"] == "playing", state
    assert state["next"]["episode"]["id"] == str(series.episode_ids[1]), state
    await page.evaluate("() => document.activeElement && document.activeElement.blur()")
    if state["duration"] - state["currentTime"] > LEAD_SECONDS:
        await page.keyboard.press("ArrowRight")  # +10 s
    await wait_state(
        page,
        lambda s: s["duration"] - s["currentTime"] <= LEAD_SECONDS,
        within=10,
        what="the seek into the last 20 s",
    )


async def test_the_prompt_near_the_end_of_an_episode_plays_the_next_one(
    browser: Browser, live_server: LiveServer, series: Series, database_url: str
) -> None:
    viewer = await profile_session(database_url)
    errors = ConsoleErrors()
    page = await signed_in_tab(browser, live_server.base_url, viewer.tokens, errors)
    first, second = (str(episode) for episode in series.episode_ids)
    prompt = page.get_by_role("region", name="Up next")
    played_second = re.compile(rf"/watch/\?content={second}$")
    try:
        await page.goto(f"/watch/?content={first}")
        await expect(page.get_by_role("heading", level=1)).to_contain_text(f"S1 E1 {EPISODES[0]}")
        state = await wait_state(page, lambda s: s.get("currentTime", 0) > 0.3, what="episode 1 playing")
        assert state["duration"] - state["currentTime"] > LEAD_SECONDS, state
        await expect(prompt).to_be_hidden()  # not at the start of the episode

        await play_into_the_last_seconds(page, series)
        await expect(prompt).to_be_visible()
        await expect(prompt).to_contain_text(f"Season 1, episode 2: {EPISODES[1]}")
        await expect(prompt).to_contain_text(re.compile(r"Playing in \d+ seconds?"))
        play_next = prompt.get_by_role("button", name="Play next")
        await expect(play_next).to_be_focused()  # the keyboard's Enter is the one step to accept
        await expect(prompt.get_by_role("button", name="Cancel")).to_be_visible()
        await screenshot(page, "watch-next-episode")

        # Enter on the focused button clicks it: note the countdown as the click saw it (the tab's
        # sessionStorage outlives the navigation). The countdown plays the episode itself at 0 s, no click.
        await play_next.evaluate(
            """button => button.addEventListener("click", () => sessionStorage.setItem(
                "test-next-accepted", document.getElementById("next-countdown").textContent))"""
        )
        await page.keyboard.press("Enter")
        await page.wait_for_url(played_second)
        accepted = await page.evaluate("() => sessionStorage.getItem('test-next-accepted')")
        assert accepted is not None, "the key did not press Play next"
        seconds = re.fullmatch(r"Playing in (\d+) seconds?", accepted)
        assert seconds and 0 < int(seconds.group(1)) <= COUNTDOWN_SECONDS, accepted  # before the countdown
        state = await wait_state(page, lambda s: s.get("currentTime", 0) > 0.5, what="episode 2 playing")
        assert state["phase"] == "playing" and state["playing"], state
        await expect(page.get_by_role("heading", level=1)).to_contain_text(f"S1 E2 {EPISODES[1]}")
        await expect(prompt).to_be_hidden()

        # Back on episode 1 (it resumes where it was left, already in the lead): a click accepts too.
        await page.goto(f"/watch/?content={first}")
        await play_into_the_last_seconds(page, series)
        await expect(prompt).to_be_visible()
        await prompt.get_by_role("button", name="Play next").click()
        await page.wait_for_url(played_second)
        await wait_state(page, lambda s: s.get("currentTime", 0) > 0.5, what="episode 2 playing again")
        await page.goto("about:blank")  # leave: the page ends its stream session
    finally:
        await page.context.close()
    errors.check()
