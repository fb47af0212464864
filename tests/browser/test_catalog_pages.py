"""Browse, Search and the title page in a real headless Chromium against the real dev server: filters and
sort kept in the address bar across a reload, a misspelt search that still finds its title, a series' page
(synopsis, cast and crew, seasons and episodes, rating, My List) and a transactional title's rent and buy
offers leading to the checkout.

Screenshots of each page at desktop size and at 375 px are left in TEST_ARTIFACTS_DIR/browser/ (default
.data/test-artifacts/browser/, gitignored)."""

from __future__ import annotations

import random
import re
import string
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import LiveServer
from tests.support import catalog_factory as factory
from tests.support.browser_pages import ConsoleErrors, keep_session, profile_session, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
CHECKOUT = re.compile(r"/api/v1/payments/sandbox/checkout/cs_sbx_[0-9a-f]{32}$")


async def screenshots(page: Page, name: str) -> None:
    """The page at desktop size and at 375 px wide (a phone), then back to desktop."""
    for label, size in (("desktop", DESKTOP), ("375", PHONE)):
        await page.set_viewport_size(size)
        wide = await page.evaluate("document.documentElement.scrollWidth")
        assert wide <= size["width"], f"{name} scrolls sideways at {size['width']} px ({wide} px wide)"
        await screenshot(page, f"catalog-{name}-{label}", full_page=True)
    await page.set_viewport_size(DESKTOP)


def word(length: int = 9) -> str:
    """A made-up word (letters only, so the search dictionary learns it whole), capitalised."""
    rng = random.SystemRandom()
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    letters = [rng.choice(consonants if i % 2 == 0 else vowels) for i in range(length)]
    return "".join(letters).capitalize()


@dataclass
class Catalog:
    genre_slug: str
    genre_name: str
    word: str
    movies: dict[str, uuid.UUID]  # name -> id, A-Z
    series_id: uuid.UUID
    series_name: str
    episodes: dict[tuple[int, int], uuid.UUID]
    actor: str
    director: str
    for_sale_id: uuid.UUID
    for_sale_name: str


async def episode_ids(db: Any, series_id: uuid.UUID) -> dict[tuple[int, int], uuid.UUID]:
    cursor = await db.execute(
        """select s.number, e.number, e.id from public.catalog_episodes e
           join public.catalog_seasons s on s.id = e.season_id where e.title_id = %s""",
        (series_id,),
    )
    return {(row[0], row[1]): uuid.UUID(str(row[2])) for row in await cursor.fetchall()}


@pytest.fixture
async def catalog(database_url: str) -> AsyncIterator[Catalog]:
    """Three films and a series in a genre of their own, and a transactional film with rent and buy offers."""
    unique = word(10)
    genre_name = f"{word(7)} {''.join(random.choices(string.ascii_lowercase, k=6))}"
    genre_slug = "-".join(genre_name.lower().split())
    movies = {}
    actor, director = f"Ines {word(8)}", f"Paulo {word(8)}"
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        for name, released in (
            (f"Amber {unique}", 2001),
            (f"Bright {unique}", 2019),
            (f"Cobalt {unique}", 2012),
        ):
            movies[name] = await factory.title(
                db,
                name,
                genres=[genre_name],
                release_year=released,
                release_date=date(released, 6, 1),
                runtime_minutes=101,
                maturity_level="all",
                synopsis_short=f"A film called {name}.",
            )
        series_name = f"The {unique} Chronicles"
        series_id = await factory.title(
            db,
            series_name,
            kind="series",
            genres=[genre_name],
            release_year=2016,
            release_date=date(2016, 3, 1),
            maturity_level="13+",
            synopsis_short="A lighthouse keeper's family and the storm that changed them.",
            synopsis_long="Three generations keep the light on a remote island while the sea takes the rest.",
            trailers=[{"name": "Teaser", "url": "/trailers/missing-teaser.mp4"}],
            cast=[(actor, "Mara Holt"), (f"Tomas {word(7)}", "Young Ed")],
            crew=[(director, "Director"), (f"Lena {word(7)}", "Writer")],
        )
        await factory.season(db, series_id, 1, episodes=3)
        await factory.season(db, series_id, 2, episodes=2)
        episodes = await episode_ids(db, series_id)
        for_sale_name = f"The {unique} Lighthouse"
        for_sale_id = await factory.title(
            db,
            for_sale_name,
            genres=["Drama"],
            release_year=2021,
            maturity_level="all",
            access="transactional",
            min_tier=0,
            synopsis_short="Only for rent or purchase.",
        )
        for kind, amount in (("rental", 399), ("purchase", 1499)):
            await db.execute(
                """insert into public.title_offers (title_id, kind, currency, amount_minor)
                   values (%s, %s, 'USD', %s)""",
                (for_sale_id, kind, amount),
            )
    yield Catalog(
        genre_slug=genre_slug,
        genre_name=genre_name,
        word=unique,
        movies=dict(sorted(movies.items())),
        series_id=series_id,
        series_name=series_name,
        episodes=episodes,
        actor=actor,
        director=director,
        for_sale_id=for_sale_id,
        for_sale_name=for_sale_name,
    )


@pytest.fixture
async def viewer(database_url: str) -> dict[str, Any]:
    """A new viewer signed in, with the session switched to their profile (the tokens the pages keep)."""
    return (await profile_session(database_url)).tokens


async def signed_in(page: Page, session: dict[str, Any]) -> ConsoleErrors:
    """The tab holds the profile session as the sign-in and profile pages leave it (sessionStorage)."""
    await keep_session(page.context, session)
    return ConsoleErrors(page)


async def ready(page: Page, path: str) -> None:
    await page.goto(path)
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")


async def card_titles(page: Page) -> list[str]:
    return [text.strip() for text in await page.locator("#grid .card-title").all_text_contents()]


async def test_browse_filters_and_sort_are_kept_by_reload_and_history(
    page: Page, live_server: LiveServer, catalog: Catalog, viewer: dict[str, Any]
) -> None:
    console = await signed_in(page, viewer)
    await ready(page, "/browse/")
    await expect(page.get_by_role("heading", name="Browse", level=1)).to_be_visible()

    # Genre (its option names the title count), then sort A-Z: the address bar follows each change.
    genre = page.get_by_label("Genre")
    await expect(genre.locator(f"option[value='{catalog.genre_slug}']")).to_have_text(
        f"{catalog.genre_name} (4)"
    )
    await genre.select_option(catalog.genre_slug)
    await expect(page).to_have_url(re.compile(rf"/browse/\?genre={catalog.genre_slug}$"))
    await page.get_by_label("Sort by").select_option(label="A\u2013Z")
    await expect(page).to_have_url(re.compile(rf"/browse/\?genre={catalog.genre_slug}&sort=title$"))
    a_to_z = [*catalog.movies, catalog.series_name]
    await expect(page.locator("#grid .card-title")).to_have_text(a_to_z)
    await expect(page.locator("#summary")).to_contain_text("Showing 4 titles")
    first = page.locator("#grid .card-link").first
    await expect(first).to_have_attribute("href", f"/title/?id={catalog.movies[a_to_z[0]]}")

    # Newest first, from 2010: the 2001 film drops out.
    await page.get_by_label("Sort by").select_option(label="New")
    await page.get_by_label("From").fill("2010")
    await page.get_by_role("button", name="Apply filters").click()
    names = list(catalog.movies)
    newest = [names[1], catalog.series_name, names[2]]  # 2019, 2016, 2012
    await expect(page.locator("#grid .card-title")).to_have_text(newest)
    await expect(page).to_have_url(re.compile(r"[?&]year_from=2010"))
    await expect(page).to_have_url(re.compile(r"[?&]sort=newest"))
    await screenshots(page, "browse")

    # A reload keeps every filter and the order.
    await page.reload()
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    await expect(page.get_by_label("Genre")).to_have_value(catalog.genre_slug)
    await expect(page.get_by_label("Sort by")).to_have_value("newest")
    await expect(page.get_by_label("From")).to_have_value("2010")
    await expect(page.locator("#grid .card-title")).to_have_text(newest)

    # Back: newest without the year (each change is a history entry), then the A-Z list; forward again.
    await page.go_back()
    await expect(page.get_by_label("From")).to_have_value("")
    await expect(page.get_by_label("Sort by")).to_have_value("newest")
    await expect(page.locator("#grid .card-title")).to_have_text([*newest, names[0]])
    await page.go_back()
    await expect(page.get_by_label("Sort by")).to_have_value("title")
    await expect(page.locator("#grid .card-title")).to_have_text(a_to_z)
    await page.go_forward()
    await page.go_forward()
    await expect(page.get_by_label("From")).to_have_value("2010")
    await expect(page.locator("#grid .card-title")).to_have_text(newest)
    console.check()


async def test_browse_loads_more_with_a_button(
    page: Page, live_server: LiveServer, database_url: str
) -> None:
    genre = f"{word(8)} {word(5)}"
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        for number in range(30):
            await factory.title(db, f"Reel {number:02d} {word(6)}", genres=[genre], maturity_level="all")
    console = ConsoleErrors(page)
    slug = "-".join(genre.lower().split())
    await ready(page, f"/browse/?genre={slug}&sort=title")
    cards = page.locator("#grid .card")
    await expect(cards).to_have_count(24)
    await expect(page.locator("#summary")).to_contain_text("Showing 24 titles (more below)")
    await page.get_by_role("button", name="Load more").click()
    await expect(cards).to_have_count(30)
    await expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    # The keyboard carries on from the first title that arrived.
    await expect(cards.nth(24).get_by_role("link")).to_be_focused()
    await expect(cards.nth(24)).to_contain_text("Reel 24")
    console.check()


async def test_a_misspelt_search_finds_the_title_with_facets(
    page: Page, live_server: LiveServer, catalog: Catalog, viewer: dict[str, Any]
) -> None:
    console = await signed_in(page, viewer)
    misspelt = f"{catalog.word[:4]}{catalog.word[5:]} chronicles".lower()  # one letter dropped
    await ready(page, f"/search/?q={misspelt.replace(' ', '+')}")
    await expect(page.get_by_label("Titles, people or story")).to_have_value(misspelt)
    hit = page.locator("#grid .card").filter(has_text=catalog.series_name)
    await expect(hit).to_be_visible()
    await expect(hit.get_by_role("link")).to_have_attribute("href", f"/title/?id={catalog.series_id}")
    await expect(page.locator("#summary")).to_contain_text(f"for “{misspelt}”")
    # Facets with counts; ticking the series' genre narrows the results and goes into the address bar.
    facet = page.get_by_role("group", name="Genre").get_by_label(re.compile(re.escape(catalog.genre_name)))
    await facet.check()
    await expect(page).to_have_url(re.compile(rf"genre={catalog.genre_slug}"))
    await expect(hit).to_be_visible()
    await expect(
        page.get_by_role("group", name="Genre").get_by_label(re.compile(catalog.genre_name))
    ).to_be_checked()
    await screenshots(page, "search")

    # A person's name (misspelt) finds the series too, typed in the page's own search form.
    actor = catalog.actor.split()[1]
    await page.get_by_label("Titles, people or story").fill(f"{actor[:3]}{actor[4:]}")
    await page.locator("#search-form").get_by_role("button", name="Search").click()
    await expect(page.locator("#grid .card").filter(has_text=catalog.series_name)).to_be_visible()

    # Nothing matches: the empty state says so; no query: a prompt.
    await page.get_by_label("Titles, people or story").fill("qqxzzvq wwkkqq")
    await page.locator("#search-form").get_by_role("button", name="Search").click()
    await expect(page.locator("#empty")).to_contain_text("No titles match “qqxzzvq wwkkqq”.")
    await expect(page.locator("#grid .card")).to_have_count(0)
    await page.go_back()
    await expect(page.locator("#grid .card").filter(has_text=catalog.series_name)).to_be_visible()
    console.check()


async def my_list_ids(page: Page) -> list[str]:
    """GET /catalog/my-list with the tab's own session, as the Home row reads it."""
    body = await page.evaluate(
        """async () => {
            const session = JSON.parse(sessionStorage.getItem("cinema.session"));
            const response = await fetch("/api/v1/catalog/my-list", {
                headers: { authorization: `Bearer ${session.access_token}` }, cache: "no-store" });
            return response.json();
        }"""
    )
    return [item["title"]["id"] for item in body["items"]]


async def test_the_series_page_shows_story_credits_episodes_and_toggles_my_list(
    page: Page, live_server: LiveServer, catalog: Catalog, viewer: dict[str, Any]
) -> None:
    console = await signed_in(page, viewer)
    await ready(page, f"/title/?id={catalog.series_id}")
    await expect(page.get_by_role("heading", name=catalog.series_name, level=1)).to_be_visible()
    await expect(page).to_have_title(f"{catalog.series_name} · Cinema Online")
    await expect(page.locator("#synopsis")).to_have_text(
        "Three generations keep the light on a remote island while the sea takes the rest."
    )
    await expect(page.locator("#title-meta")).to_contain_text("2016")
    await expect(page.locator("#title-meta")).to_contain_text("2 seasons")
    await expect(page.get_by_role("link", name=catalog.genre_name)).to_have_attribute(
        "href", f"/browse/?genre={catalog.genre_slug}"
    )

    # Cast and crew link to a search for the person.
    credits = page.get_by_role("region", name="Cast and crew")
    actor = credits.get_by_role("link", name=re.compile(re.escape(catalog.actor)))
    await expect(actor).to_have_attribute("href", re.compile(r"^/search/\?q=Ines%20"))
    await expect(credits).to_contain_text("as Mara Holt")
    await expect(credits.get_by_role("link", name=re.compile(re.escape(catalog.director)))).to_be_visible()
    await expect(credits).to_contain_text("Director")

    # Seasons: season 1's three episodes, each with its own Play; season 2 has two.
    season = page.get_by_label("Season", exact=True)
    await expect(season.locator("option")).to_have_text(["Season 1 (3 episodes)", "Season 2 (2 episodes)"])
    episodes = page.locator("#episode-list > li")
    await expect(episodes).to_have_count(3)
    play_s1e2 = page.get_by_role("link", name="Play season 1, episode 2: Episode 2")
    await expect(play_s1e2).to_have_attribute("href", f"/watch/?content={catalog.episodes[(1, 2)]}")
    await season.select_option("2")
    await expect(episodes).to_have_count(2)
    await expect(page).to_have_url(re.compile(r"&season=2$"))
    await expect(page.get_by_role("link", name="Play season 2, episode 1: Episode 1")).to_have_attribute(
        "href", f"/watch/?content={catalog.episodes[(2, 1)]}"
    )
    # The main Play starts the first episode (nothing watched yet).
    play = page.locator("#play")
    await expect(play).to_have_text("▶ Play S1 E1")
    await expect(play).to_have_attribute("href", f"/watch/?content={catalog.episodes[(1, 1)]}")

    # My List: a toggle button, pressed once added; the API's My List (Home's row) reflects it.
    my_list = page.get_by_role("button", name="My List")
    await expect(my_list).to_have_attribute("aria-pressed", "false")
    await my_list.click()
    await expect(my_list).to_have_attribute("aria-pressed", "true")
    assert str(catalog.series_id) in await my_list_ids(page)

    # The trailer opens in a modal dialog and closing it gives the focus back to its button.
    await page.get_by_role("button", name="Trailer").click()
    dialog = page.get_by_role("dialog", name="Trailer: Teaser")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Close the trailer").click()
    await expect(dialog).to_be_hidden()
    await expect(page.get_by_role("button", name="Trailer")).to_be_focused()

    # Rating: thumbs up, then four stars; both survive a reload.
    await page.get_by_role("button", name="I like it").click()
    await expect(page.get_by_role("button", name="I like it")).to_have_attribute("aria-pressed", "true")
    await page.locator("label[for=stars-4]").click()
    await expect(page.get_by_role("radio", name="4 stars")).to_be_checked()
    await expect(page.locator("#rating-summary")).to_contain_text("4.0 stars on average from 1 rating")
    await screenshots(page, "title-series")

    await page.reload()
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    await expect(page.get_by_label("Season", exact=True)).to_have_value("2")
    await expect(page.get_by_role("button", name="My List")).to_have_attribute("aria-pressed", "true")
    await expect(page.get_by_role("button", name="I like it")).to_have_attribute("aria-pressed", "true")
    await expect(page.get_by_role("radio", name="4 stars")).to_be_checked()

    # Removed from My List again.
    await page.get_by_role("button", name="My List").click()
    await expect(page.get_by_role("button", name="My List")).to_have_attribute("aria-pressed", "false")
    assert str(catalog.series_id) not in await my_list_ids(page)
    # The made-up trailer file does not exist: its 404 is the only console line allowed.
    console.check(404)
    assert all("missing-teaser.mp4" in url for _, url in console.refused), console.refused


async def test_play_becomes_resume_at_the_saved_position(
    page: Page, live_server: LiveServer, database_url: str, catalog: Catalog, viewer: dict[str, Any]
) -> None:
    movie_id = next(iter(catalog.movies.values()))
    episode_id = catalog.episodes[(1, 2)]
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        for title_id, episode, content_id in (
            (movie_id, None, movie_id),
            (catalog.series_id, episode_id, episode_id),
        ):
            await db.execute(
                """insert into public.watch_positions (profile_id, title_id, episode_id, content_id,
                       position_seconds, duration_seconds, sequence, watched, updated_at)
                   values (%s, %s, %s, %s, 754, 2700, 1, false, now())""",
                (viewer["profile_id"], title_id, episode, content_id),
            )
    console = await signed_in(page, viewer)
    await ready(page, f"/title/?id={movie_id}")
    play = page.get_by_role("link", name=re.compile(r"^Resume "))
    await expect(play).to_have_text("▶ Resume")
    await expect(play).to_have_attribute("href", f"/watch/?content={movie_id}")
    await expect(page.locator("#resume-note")).to_have_text("You stopped at 12:34.")
    await ready(page, f"/title/?id={catalog.series_id}")
    play = page.locator("#play")
    await expect(play).to_have_text("▶ Resume S1 E2")
    await expect(play).to_have_attribute("href", f"/watch/?content={episode_id}")
    await expect(page.locator(f"[data-episode='{episode_id}']")).to_contain_text("stopped at 12:34")
    console.check()


async def test_a_transactional_title_offers_rent_and_buy_through_checkout(
    page: Page, live_server: LiveServer, catalog: Catalog, viewer: dict[str, Any]
) -> None:
    console = await signed_in(page, viewer)
    await ready(page, f"/title/?id={catalog.for_sale_id}")
    await expect(page.get_by_role("heading", name=catalog.for_sale_name, level=1)).to_be_visible()
    ways = page.get_by_role("region", name="Ways to watch")
    await expect(ways).to_be_visible()
    rent = ways.get_by_role("button", name="Rent for $3.99")
    await expect(rent).to_be_visible()
    await expect(ways.get_by_role("button", name="Buy for $14.99")).to_be_visible()
    await expect(page.locator("#play")).to_have_attribute("href", f"/watch/?content={catalog.for_sale_id}")
    await screenshots(page, "title-offers")
    console.check()

    # Rent -> the purchase opens the payment provider's checkout (the sandbox here).
    await rent.click()
    await page.wait_for_url(CHECKOUT)
    await expect(page.get_by_role("heading", name="Order summary")).to_be_visible()


async def test_signed_out_pages_show_the_catalog_and_a_sign_in_way(
    page: Page, live_server: LiveServer, catalog: Catalog
) -> None:
    console = ConsoleErrors(page)
    await ready(page, f"/title/?id={catalog.for_sale_id}")
    ways = page.get_by_role("region", name="Ways to watch")
    await expect(ways.get_by_role("link", name="Sign in to rent or buy")).to_have_attribute(
        "href", re.compile(r"^/login/\?next=")
    )
    await expect(page.get_by_role("link", name="Sign in to add to My List")).to_be_visible()
    await ready(page, "/title/?id=not-a-title")
    await expect(page.get_by_role("heading", name="Title not found", level=1)).to_be_visible()
    # The 404 of the title's lookup is the only console line (the browser logs failed fetches).
    console.check(404)
    await ready(page, f"/browse/?genre={catalog.genre_slug}&sort=bogus")
    await expect(page).to_have_url(re.compile(rf"/browse/\?genre={catalog.genre_slug}$"))
    await expect(page.locator("#grid .card")).to_have_count(4)
