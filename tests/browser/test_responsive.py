"""The viewer pages from a 360 px phone to a 3840 px TV, in Debian's headless Chromium (issue 8, quality 8).

Home (signed in with a profile), Browse, search results, a title page, the account page, the player's
refusal page (a subscription title the viewer has no plan for: the offers) and the profile picker, each at
360x740, 1280x800, 1920x1080 and 3840x2160: nothing scrolls sideways, the header's controls are on screen
and not covered, every control in Chromium's accessibility tree has a name, the root font size grows at
>= 1600 px as app.css says, the focus ring is visible after Tab, and no page logs an error. Screenshots at
360 and 3840 px go to TEST_ARTIFACTS_DIR/browser/responsive-<page>-<width>.png."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import psycopg
import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import LiveServer
from tests.support import catalog_factory as factory
from tests.support.browser_pages import ConsoleErrors, profile_session, screenshot, signed_in_tab

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

SIZES = ((360, 740), (1280, 800), (1920, 1080), (3840, 2160))
SHOTS = {360, 3840}
# Roles Chromium exposes for controls a person operates: each needs an accessible name.
CONTROL_ROLES = {
    "button",
    "link",
    "textbox",
    "searchbox",
    "combobox",
    "checkbox",
    "radio",
    "slider",
    "spinbutton",
    "switch",
    "tab",
    "menuitem",
    "menuitemradio",
    "menuitemcheckbox",
    "option",
    "listbox",
    "PopUpButton",
}

# Everything measured in one round trip: sideways overflow (and the culprits), the header's controls,
# the root and heading font sizes.
MEASURE = """() => {
  if (document.activeElement) document.activeElement.blur(); // a focused skip link covers the logo
  window.scrollTo(0, 0);
  const width = window.innerWidth;
  const shown = (node) => {
    if (!node.getClientRects().length) return false;
    const style = getComputedStyle(node);
    return style.visibility !== 'hidden' && style.display !== 'none';
  };
  const describe = (node) => {
    const id = node.id ? '#' + node.id : '';
    const names = typeof node.className === 'string' ? node.className.trim().split(/\\s+/) : [];
    return [node.tagName.toLowerCase() + id, ...names.filter(Boolean)].join('.');
  };
  const wide = [];
  for (const node of document.body.querySelectorAll('*')) {
    if (!shown(node)) continue;
    const rect = node.getBoundingClientRect();
    if (rect.right > width + 1 && rect.width > 0) {
      wide.push(`${describe(node)} right=${Math.round(rect.right)}`);
    }
    if (wide.length > 8) break;
  }
  const header = document.getElementById('app-header');
  const controls = [];
  if (header) {
    for (const node of header.querySelectorAll('a, button, input, select')) {
      if (!shown(node) || node.closest('[hidden]')) continue;
      const rect = node.getBoundingClientRect();
      const x = rect.left + rect.width / 2;
      const y = rect.top + rect.height / 2;
      const inside = x >= 0 && y >= 0 && x < width && y < window.innerHeight;
      const hit = inside ? document.elementFromPoint(x, y) : null;
      controls.push({
        what: describe(node),
        left: rect.left,
        right: rect.right,
        width: rect.width,
        height: rect.height,
        onTop: Boolean(hit && (hit === node || node.contains(hit) || hit.contains(node))),
        hit: hit ? describe(hit) : null,
      });
    }
  }
  const h1 = document.querySelector('h1');
  return {
    width,
    scrollWidth: document.scrollingElement.scrollWidth,
    wide,
    controls,
    rootFont: parseFloat(getComputedStyle(document.documentElement).fontSize),
    h1Font: h1 ? parseFloat(getComputedStyle(h1).fontSize) : null,
  };
}"""

FOCUS = """() => {
  const node = document.activeElement;
  if (!node || node === document.body) return null;
  const style = getComputedStyle(node);
  const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
  const shadow = style.boxShadow && style.boxShadow !== 'none';
  const rect = node.getBoundingClientRect();
  return {
    what: node.tagName.toLowerCase() + (node.id ? '#' + node.id : ''),
    visible: Boolean(outline || shadow),
    inView: rect.width > 0 && rect.height > 0 && rect.bottom > 0 && rect.right > 0
      && rect.top < window.innerHeight && rect.left < window.innerWidth,
  };
}"""


START_AT_TOP = """() => {
  window.scrollTo(0, 0);
  const root = document.documentElement;
  root.tabIndex = -1;
  root.focus({ preventScroll: true });
  root.removeAttribute('tabindex');
}"""


def made_up(length: int = 9) -> str:
    rng = random.SystemRandom()
    letters = [rng.choice("bdfgklmnprstvz" if i % 2 == 0 else "aeiou") for i in range(length)]
    return "".join(letters).capitalize()


@pytest.fixture(scope="module")
async def world(database_url: str) -> dict[str, Any]:
    """Titles sharing a made-up word (one with a long name), a subscription title, a viewer with a profile."""
    word = made_up(10)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        genre = f"{made_up(7)} drama"
        movie = await factory.title(
            db,
            f"The Extraordinarily Long Chronicles of {word} Mountain Observatory",
            synopsis_long="A storm keeps a crew of astronomers on a mountain for a winter. " * 4,
            release_year=2021,
            runtime_minutes=128,
            maturity_level="all",
            rating_system="mpaa",
            rating="PG",
            popularity=120_000,
            genres=[genre],
            cast=[(f"Ines {made_up(8)}", "Captain"), (f"Tomas {made_up(8)}", "Navigator")],
            crew=[(f"Paulo {made_up(8)}", "Director")],
        )
        for name, year in ((f"Amber {word}", 2019), (f"Cobalt {word}", 2012), (f"Delta {word}", 2003)):
            await factory.title(
                db,
                name,
                release_year=year,
                maturity_level="all",
                popularity=110_000,
                genres=[genre],
            )
        planbound = await factory.title(
            db, f"Planbound {word}", access="subscription", min_tier=1, maturity_level="all"
        )
        # One word longer than a phone's card: it must wrap, not widen the page (found in CI, where
        # other tests' titles named by uuid hex reached the first page of Browse).
        await factory.title(
            db, f"{word}{uuid.uuid4().hex}", maturity_level="all", popularity=130_000, genres=[genre]
        )
    return {
        "word": word,
        "movie": movie,
        "planbound": planbound,
        "tokens": (await profile_session(database_url)).tokens,
    }


PAGES = ("home", "browse", "search", "title", "account", "watch", "profiles")


def path_of(name: str, world: dict[str, Any]) -> str:
    return {
        "home": "/",
        "browse": "/browse/",
        "search": f"/search/?q={world['word']}",
        "title": f"/title/?id={world['movie']}",
        "account": "/account/",
        "watch": f"/watch/?content={world['planbound']}",
        "profiles": "/profiles/",
    }[name]


async def accessible_names(page: Page) -> list[str]:
    """Controls in Chromium's accessibility tree (what a screen reader gets) without a name."""
    cdp = await page.context.new_cdp_session(page)
    try:
        tree = await cdp.send("Accessibility.getFullAXTree")
    finally:
        await cdp.detach()
    nameless = []
    for node in tree["nodes"]:
        if node.get("ignored"):
            continue
        role = (node.get("role") or {}).get("value")
        name = str((node.get("name") or {}).get("value") or "").strip()
        if role in CONTROL_ROLES and not name:
            nameless.append(f"{role} (backend node {node.get('backendDOMNodeId')})")
    return nameless


async def focus_rings(page: Page, presses: int = 16) -> list[str]:
    """Tab from the top of the page: each focused element shows a ring (outline or box-shadow)."""
    # The sequential focus starting point at the top of the document: the next Tab reaches the skip link.
    await page.evaluate(START_AT_TOP)
    problems = []
    for _ in range(presses):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(FOCUS)
        for _ in range(15):  # a row scrolls smoothly to a focused card: give it a moment
            if focused is None or focused["inView"]:
                break
            await asyncio.sleep(0.1)
            focused = await page.evaluate(FOCUS)
        if focused is None:
            continue
        if not focused["visible"]:
            problems.append(f"no focus ring on {focused['what']}")
        if not focused["inView"]:
            problems.append(f"focused {focused['what']} is off screen")
    return problems


async def check_size(page: Page, name: str, width: int, height: int) -> dict[str, Any]:
    await page.set_viewport_size({"width": width, "height": height})
    await page.evaluate(
        "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
    )
    measured = await page.evaluate(MEASURE)
    where = f"{name} at {width}x{height}"
    assert measured["scrollWidth"] <= measured["width"], (
        f"{where} scrolls sideways ({measured['scrollWidth']} > {measured['width']}): {measured['wide']}"
    )
    controls = measured["controls"]
    if name != "profiles":  # the picker has a minimal header (the logo only)
        assert len(controls) >= 5, f"{where}: header controls {controls}"
    for control in controls:
        assert control["width"] >= 20 and control["height"] >= 20, f"{where}: too small to reach {control}"
        assert control["left"] >= 0 and control["right"] <= width + 0.5, f"{where}: off screen {control}"
        assert control["onTop"], f"{where}: covered {control}"
    problems = await focus_rings(page)
    assert not problems, f"{where}: {problems}"
    if width in SHOTS:
        await screenshot(page, f"responsive-{name}-{width}", full_page=width == 360)
    return measured


@pytest.mark.parametrize("name", PAGES)
async def test_the_page_works_from_a_phone_to_a_tv(
    browser: Browser, live_server: LiveServer, world: dict[str, Any], name: str
) -> None:
    console = ConsoleErrors(expected_statuses=(403,) if name == "watch" else ())
    page = await signed_in_tab(browser, live_server.base_url, world["tokens"], console)
    try:
        await page.set_viewport_size({"width": SIZES[0][0], "height": SIZES[0][1]})
        await page.goto(path_of(name, world))
        await expect(page.locator("body")).to_have_attribute("data-ready", "true")
        if name == "watch":
            await expect(page.get_by_role("heading", name="Not included in your plan")).to_be_visible()
        elif name == "search":
            await expect(page.get_by_role("link", name=f"Amber {world['word']}").first).to_be_visible()
        elif name == "title":
            await expect(page.get_by_role("heading", level=1)).to_contain_text("Extraordinarily Long")
        await page.wait_for_load_state("networkidle")

        fonts = {}
        for width, height in SIZES:
            measured = await check_size(page, name, width, height)
            fonts[width] = (measured["rootFont"], measured["h1Font"])
        # Read from across a room: the root font grows at >= 1600 px (app.css), and the text with it.
        assert fonts[1920][0] > fonts[1280][0] and fonts[3840][0] >= fonts[1920][0], fonts
        if fonts[1280][1] is not None:
            assert fonts[1920][1] > fonts[1280][1], fonts

        # The profile menu opens on screen at a phone's width (the header's last control).
        if name != "profiles":
            await page.set_viewport_size({"width": 360, "height": 740})
            menu_button = page.locator("#app-profile-button")
            await menu_button.click()
            items = page.locator("#app-profile-menu").locator("a, button")
            await expect(items.first).to_be_visible()
            for box in [await item.bounding_box() for item in await items.all()]:
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360.5, box
            await page.keyboard.press("Escape")

        nameless = await accessible_names(page)
        assert not nameless, f"{name}: controls without an accessible name: {nameless}"
    finally:
        await page.context.close()
    console.check()
