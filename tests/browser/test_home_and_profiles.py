"""Home and the profile picker in a real headless Chromium against the real dev server: a viewer signs in,
lands on "Who's watching?", adds a kids and a grown-up profile, picks the grown-up one and sees the home
rows (an R-rated title among them); on the kids profile the R-rated title is neither on Home nor in the
search box's suggestions. The keyboard reaches the search box and the first card; no page logs an error.
Screenshots (home at desktop and phone width, the picker) go to TEST_ARTIFACTS_DIR/browser/."""

from __future__ import annotations

import io
import re
import uuid

import psycopg
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import LiveServer
from tests.support import catalog_factory as factory
from tests.support.browser_pages import ConsoleErrors, ready, screenshot, sign_in
from tests.support.identity import PASSWORD, sign_up_verified

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

WHO_IS_WATCHING = "Who\u2019s watching?"  # the page's typographic apostrophe


async def catalog(database_url: str, word: str) -> dict[str, str]:
    """Three published titles sharing a made-up word, one of them R-rated; popular enough for every row."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        made = {
            "family": await factory.title(
                db,
                f"{word} Meadow",
                maturity_level="all",
                rating_system="mpaa",
                rating="G",
                release_year=2021,
                popularity=100_000,
                genres=["Family"],
            ),
            "kids": await factory.title(
                db,
                f"{word} Harbour",
                maturity_level="7+",
                rating_system="mpaa",
                rating="PG",
                release_year=2022,
                popularity=99_000,
                genres=["Family"],
            ),
            "adult": await factory.title(
                db,
                f"{word} Nightfall",
                maturity_level="16+",
                rating_system="mpaa",
                rating="R",
                release_year=2023,
                popularity=101_000,
                genres=["Thriller"],
            ),
        }
    return {key: str(value) for key, value in made.items()}


def png() -> bytes:
    """A small PNG picture."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 80, 90)).save(out, format="PNG")
    return out.getvalue()


async def add_profile(page: Page, name: str, *, kids: bool) -> None:
    await page.get_by_role("button", name="Add profile").click()
    dialog = page.get_by_role("dialog", name="Add a profile")
    await dialog.get_by_label("Name").fill(name)
    if kids:
        await dialog.get_by_label("Kids profile").check()
    await dialog.get_by_role("button", name="Add profile").click()
    await expect(page.get_by_role("status").filter(has_text=f"{name} was added.")).to_have_count(1)


async def suggestions(page: Page, typed: str) -> list[str]:
    box = page.get_by_role("combobox", name="Search")
    await box.fill(typed)
    listbox = page.get_by_role("listbox", name="Suggestions")
    await expect(listbox.get_by_role("option", name=re.compile("Search for"))).to_be_visible()
    return [text.strip() for text in await listbox.get_by_role("option").all_inner_texts()]


async def test_profiles_home_rows_and_a_kids_profile(
    page: Page, live_server: LiveServer, database_url: str
) -> None:
    word = "Zq" + uuid.uuid4().hex[:6]
    titles = await catalog(database_url, word)
    errors = ConsoleErrors(page)

    # Signed out: the hero and the public rows.
    await page.goto("/")
    await ready(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Films and series, whenever you want them"
    )
    await expect(page.locator(f'.card[data-id="{titles["family"]}"]').first).to_be_visible()
    await page.set_viewport_size({"width": 360, "height": 740})
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the signed-out phone layout scrolls sideways ({width} px)"
    await screenshot(page, "home-signed-out-360")
    await page.set_viewport_size({"width": 1920, "height": 1080})
    await screenshot(page, "home-signed-out-1920")
    await page.set_viewport_size({"width": 1280, "height": 800})
    errors.check(where="home (signed out)")

    email, _ = await sign_up_verified(database_url)
    await sign_in(page, email)

    # Signed in without a profile: Home sends the person to the picker, and back afterwards.
    await page.goto("/")
    await page.wait_for_url(re.compile(r"/profiles/\?next=%2F$"))
    await ready(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text(WHO_IS_WATCHING)
    await page.get_by_role("button", name="Manage profiles").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Manage profiles")
    await add_profile(page, "Kiddo", kids=True)
    await add_profile(page, "Alex", kids=False)
    await expect(page.get_by_role("button", name="Edit Kiddo (kids profile)")).to_be_visible()
    await page.get_by_role("button", name="Done").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(WHO_IS_WATCHING)
    await screenshot(page, "profiles", full_page=True)
    errors.check(where="profiles")

    await page.get_by_role("button", name="Alex", exact=True).click()
    await page.wait_for_url(f"{live_server.base_url}/")
    await ready(page)
    stored = await page.evaluate("JSON.parse(sessionStorage.getItem('cinema.session'))")
    assert stored["profile_id"], stored
    await expect(page.get_by_role("heading", level=1)).to_have_text("Home for Alex")
    await expect(page.get_by_role("button", name="Profile menu: Alex")).to_be_visible()
    rows = page.locator("section.row")
    assert await rows.count() >= 2
    await expect(page.get_by_role("heading", name="My List")).to_be_visible()
    adult_card = page.locator(f'.card[data-id="{titles["adult"]}"]')
    await expect(adult_card.first).to_be_visible()
    await expect(adult_card.first.get_by_role("link")).to_have_attribute(
        "href", f"/title/?id={titles['adult']}"
    )
    assert word in "".join(await suggestions(page, word.lower()))
    assert f"{word} Nightfall" in "".join(await suggestions(page, word))

    # Keyboard: from the top, Tab reaches the search box, then (past the profile menu) the first card.
    await page.goto("/")
    await ready(page)
    await page.locator("body").focus()
    reached: list[str] = []
    for _ in range(12):
        await page.keyboard.press("Tab")
        reached.append(await page.evaluate("document.activeElement.id || document.activeElement.className"))
        if "card-link" in reached[-1]:
            break
    assert "app-search" in reached, reached
    assert "card-link" in reached[-1], reached
    await expect(page.locator(".card-link").first).to_be_focused()

    await screenshot(page, "home-desktop")
    await page.set_viewport_size({"width": 375, "height": 812})
    await page.reload()
    await ready(page)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the phone layout scrolls sideways ({width} px)"
    await screenshot(page, "home-375")
    await page.set_viewport_size({"width": 1280, "height": 800})
    errors.check(where="home (adult profile)")

    # Switch to the kids profile through the profile menu.
    await page.get_by_role("button", name="Profile menu: Alex").click()
    await page.get_by_role("link", name="Switch profile").click()
    await ready(page)
    await page.get_by_role("button", name="Kiddo (kids profile)").click()
    await page.wait_for_url(f"{live_server.base_url}/")
    await ready(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Home for Kiddo")
    await expect(page.locator(f'.card[data-id="{titles["family"]}"]').first).to_be_visible()
    await expect(page.locator(f'.card[data-id="{titles["adult"]}"]')).to_have_count(0)
    offered = await suggestions(page, word)
    assert any(f"{word} Meadow" in text for text in offered), offered
    assert not any("Nightfall" in text for text in offered), offered
    await screenshot(page, "home-kids")
    errors.check(where="home (kids profile)")


async def test_pin_locked_profile_asks_for_the_pin(page: Page, database_url: str) -> None:
    # The wrong PIN is a 403 that Chromium logs as a failed resource load: that one is expected.
    errors = ConsoleErrors(page, expected_statuses=(403,))
    email, _ = await sign_up_verified(database_url)
    await sign_in(page, email)
    await page.goto("/profiles/?manage=1")
    await ready(page)
    await add_profile(page, "Locked", kids=False)
    await page.get_by_role("button", name="Edit Locked").click()
    dialog = page.get_by_role("dialog", name="Edit Locked")
    await dialog.get_by_label("New 4-digit PIN").fill("4321")
    await dialog.get_by_label("Your account password").fill(PASSWORD)
    await dialog.get_by_role("button", name="Set PIN").click()
    await expect(page.get_by_role("status").filter(has_text="The PIN is set.")).to_have_count(1)
    await dialog.get_by_label(re.compile("Upload a picture")).set_input_files(
        files=[{"name": "me.png", "mimeType": "image/png", "buffer": png()}]
    )
    await expect(page.get_by_role("status").filter(has_text="The new picture is in place.")).to_have_count(1)
    await expect(dialog.locator("#edit-avatar img")).to_have_attribute("src", re.compile(r"^http"))
    await dialog.get_by_label("Name").fill("Locked Up")
    await dialog.get_by_role("button", name="Save").click()
    await expect(dialog.get_by_role("heading", name="Edit Locked Up")).to_be_visible()
    await dialog.get_by_role("button", name="Done").click()

    await add_profile(page, "Temporary", kids=False)
    await page.get_by_role("button", name="Edit Temporary").click()
    await page.get_by_role("button", name="Delete Temporary").click()
    confirm = page.get_by_role("alertdialog", name="Delete Temporary?")
    await confirm.get_by_role("button", name="Delete").click()
    await expect(page.get_by_role("status").filter(has_text="Temporary was deleted.")).to_have_count(1)
    await expect(page.get_by_role("button", name=re.compile("Temporary"))).to_have_count(0)
    await page.get_by_role("button", name="Done").click()
    await expect(page.locator("[data-profile] img.avatar")).to_have_count(1)

    await page.get_by_role("button", name="Locked Up (locked with a PIN)").click()
    pin = page.get_by_role("dialog", name="Enter the PIN")
    await pin.get_by_label("4-digit PIN").fill("0000")
    await pin.get_by_role("button", name="Continue").click()
    await expect(pin.locator("#pin-error")).not_to_be_empty()
    await pin.get_by_label("4-digit PIN").fill("4321")
    await pin.get_by_role("button", name="Continue").click()
    await page.wait_for_url(re.compile(r"/$"))
    await ready(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Home for Locked Up")
    errors.check(where="profiles with a PIN")
