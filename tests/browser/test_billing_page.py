"""The billing page (/account/billing/) in a real headless Chromium against the real dev server and the
sandbox payment provider: the app's shared header (nav, search box, profile menu), subscribe through the
sandbox checkout, see the plan and its invoice, open the invoice page, cancel and resume, rent a title
through checkout, decline a second checkout; no sideways scrolling at 360 px, and a look at 1920 px.

Screenshots of the billing page (phone and TV widths too), the sandbox checkout and the invoice are left in
TEST_ARTIFACTS_DIR/browser/ (default .data/test-artifacts/browser/, gitignored)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import LiveServer, PageProblems
from tests.support import catalog_factory as factory
from tests.support.browser_pages import screenshot, sign_in
from tests.support.identity import sign_up_verified

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

BILLING = "/account/billing"
CHECKOUT = re.compile(r"/api/v1/payments/sandbox/checkout/cs_sbx_[0-9a-f]{32}$")
BACK_ON_BILLING = re.compile(r"/account/billing/(\?.*)?$")
DATE = r"[A-Z][a-z]+ \d{1,2}, \d{4}"  # en-US "long" date, e.g. June 3, 2026


@pytest.fixture
async def title_for_sale(database_url: str) -> AsyncIterator[dict[str, Any]]:
    """A published, transactional title rated 'all' with a USD rental (3.99) and purchase (14.99) offer."""
    word = f"Quillbeck{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        title_id = await factory.title(
            db, f"The {word} Lighthouse", maturity_level="all", access="transactional", min_tier=0
        )
        for kind, amount in (("rental", 399), ("purchase", 1499)):
            await db.execute(
                """insert into public.title_offers (title_id, kind, currency, amount_minor)
                   values (%s, %s, 'USD', %s)""",
                (title_id, kind, amount),
            )
    yield {"id": title_id, "word": word, "name": f"The {word} Lighthouse"}


async def open_billing(page: Page) -> None:
    await page.goto(BILLING)
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")


async def said(page: Page, text: str) -> None:
    """A message of the page: shown in the page and spoken by the app's polite live region."""
    await expect(page.locator(".section-message", has_text=text)).to_be_visible()
    await expect(page.locator("#app-live")).to_have_text(text)


async def sideways_overflow(page: Page) -> int:
    return await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


async def pay_at_checkout(page: Page, *, shot: str | None = None) -> None:
    """On the sandbox checkout page: Pay (or Start trial), and back on the billing page."""
    await page.wait_for_url(CHECKOUT)
    await expect(page.get_by_role("heading", name="Order summary")).to_be_visible()
    if shot:
        await screenshot(page, shot, full_page=True)
    await page.get_by_role("button", name=re.compile(r"^(Pay .+|Start trial)$")).click()
    await page.wait_for_url(BACK_ON_BILLING)


async def test_signed_out_goes_to_sign_in_and_back(page: Page, live_server: LiveServer) -> None:
    """Like the other signed-in pages (app.js's startPage require "signin"): to sign in, then back here."""
    await page.goto(f"{BILLING}/?checkout=cancel")
    await page.wait_for_url(re.compile(r"/login/\?next=%2Faccount%2Fbilling%2F%3Fcheckout%3Dcancel$"))
    await expect(page.get_by_label("Email address")).to_be_visible()


async def test_subscribe_invoice_cancel_resume_rent_and_decline(
    page: Page, live_server: LiveServer, database_url: str, title_for_sale: dict[str, Any]
) -> None:
    email, password = await sign_up_verified(database_url)
    await sign_in(page, email, password)
    await open_billing(page)

    # The app's shell: skip link, header with the nav, the search box and the profile menu; one main.
    header = page.locator("header#app-header")
    await expect(header.get_by_role("link", name="Cinema Online home")).to_have_attribute("href", "/")
    nav = header.get_by_role("navigation", name="Main")
    await expect(nav.get_by_role("link", name="Home", exact=True)).to_be_visible()
    await expect(nav.get_by_role("link", name="Browse", exact=True)).to_be_visible()
    await expect(header.get_by_role("combobox", name="Search")).to_be_visible()
    menu_button = header.locator("#app-profile-button")
    await expect(menu_button).to_be_visible()
    await menu_button.click()
    menu = header.locator("#app-profile-menu")
    await expect(menu.get_by_role("link", name="Billing")).to_have_attribute("href", "/account/billing/")
    await expect(menu.get_by_role("link", name="Account")).to_be_visible()
    await expect(menu.get_by_role("button", name="Sign out")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(menu).to_be_hidden()
    await expect(page.get_by_role("main")).to_have_count(1)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Plan and billing")
    await expect(page.locator("a.skip-link")).to_have_attribute("href", "#main")
    assert await page.evaluate(
        "[...document.styleSheets].some((s) => (s.href || '').endsWith('/assets/app.css'))"
    ), "the page is not on app.css"

    # The free plan to start with; the plans in USD, monthly.
    summary = page.locator("#plan-summary")
    await expect(page.get_by_role("heading", name="Your plan", exact=True)).to_be_visible()
    await expect(summary).to_contain_text("Free with ads")
    await expect(page.get_by_role("button", name="Cancel plan")).to_be_hidden()
    await expect(page.get_by_text("No invoices yet.")).to_be_visible()
    await page.get_by_label("Currency").select_option("EUR")
    standard = page.get_by_role("listitem").filter(
        has=page.get_by_role("heading", name="Standard", exact=True)
    )
    await expect(standard).to_contain_text("€11.99")
    await page.get_by_label("Yearly").check()
    await expect(standard).to_contain_text("€119.90 per year")
    await page.get_by_label("Currency").select_option("USD")
    await page.get_by_label("Monthly").check()
    await expect(standard).to_contain_text("$12.99 per month")
    await expect(standard).to_contain_text("7-day free trial")

    # Subscribe -> sandbox checkout -> Start trial (7 days free) -> back with the success banner.
    await page.get_by_role("button", name="Subscribe to Standard").click()
    await pay_at_checkout(page, shot="billing-checkout")
    banner = page.locator("#banner")
    await expect(banner).to_have_text("Payment received; your plan is active.")
    assert page.url == f"{live_server.base_url}{BILLING}/", "the checkout outcome stayed in the address bar"
    await expect(summary).to_contain_text("Standard")
    await expect(summary).to_contain_text("Free trial")
    await expect(summary).to_contain_text(re.compile(f"Renews on{DATE}"))
    await expect(summary).to_contain_text("2 screens at once")
    await expect(standard).to_contain_text("Your current plan")
    invoices = page.locator("#invoices-table tbody tr")
    await expect(invoices).to_have_count(1)
    await expect(invoices.first).to_contain_text(re.compile(r"CIN-\d+"))
    await expect(invoices.first).to_contain_text("$0.00")  # the trial's invoice
    await screenshot(page, "billing-page", full_page=True)

    # The invoice page opens in a new tab (a Blob URL of the authenticated HTML), styled, CSP-clean.
    number = (await invoices.first.locator("th").text_content() or "").strip()
    async with page.context.expect_page() as opened:
        await page.get_by_role("button", name=f"View invoice {number}").click()
    invoice_tab = await opened.value
    tab_problems = PageProblems()
    invoice_tab.on("console", tab_problems.on_console)
    invoice_tab.on("pageerror", tab_problems.on_page_error)
    await invoice_tab.wait_for_url(re.compile(r"^blob:"))
    await invoice_tab.wait_for_load_state()
    await expect(invoice_tab.get_by_role("heading", name="Invoice", exact=True)).to_be_visible()
    await expect(invoice_tab.locator("body")).to_contain_text(number)
    await expect(invoice_tab.locator("body")).to_contain_text(email)
    rules = await invoice_tab.evaluate("[...document.styleSheets].reduce((n, s) => n + s.cssRules.length, 0)")
    assert rules > 5, "the invoice lost its styles"
    await screenshot(invoice_tab, "billing-invoice", full_page=True)
    await invoice_tab.close()
    assert not tab_problems.items, tab_problems.items

    # Cancel (confirmed) -> "ends on <date>"; Resume -> renews again.
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Cancel plan").click()
    await expect(summary).to_contain_text(re.compile(f"ends on {DATE}"))
    await expect(page.locator("#plan-section .section-message")).to_contain_text("Your plan is cancelled")
    await expect(page.locator("#app-live")).to_contain_text("Your plan is cancelled")
    await expect(page.get_by_role("button", name="Cancel plan")).to_be_hidden()
    await page.get_by_role("button", name="Resume plan").click()
    await expect(summary).to_contain_text(re.compile(f"Renews on{DATE}"))
    await expect(summary).not_to_contain_text("ends on")
    await expect(page.get_by_role("button", name="Resume plan")).to_be_hidden()

    # Change plan: the plans offer a switch (an upgrade, confirmed); then the billing portal and back.
    await page.get_by_role("button", name="Change plan").click()
    await expect(page.get_by_role("heading", name="Plans", exact=True)).to_be_focused()
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Switch to Premium").click()
    await said(page, "You are now on Premium.")
    await expect(summary).to_contain_text("Premium")
    await expect(summary).to_contain_text("4 screens at once")
    await page.get_by_role("button", name="Manage payment method").click()
    await page.wait_for_url(re.compile(r"/api/v1/payments/sandbox/portal/"))
    await open_billing(page)
    await expect(summary).to_contain_text("Premium")

    # Rent the title: search, pick, Rent -> checkout -> Pay -> listed under Rentals and purchases.
    # (The header has a Search button too: this is the page's own search, for titles to rent or buy.)
    title_search = page.get_by_role("search", name="Titles to rent or buy")
    await page.get_by_label("Search titles").fill(title_for_sale["word"])
    await title_search.get_by_role("button", name="Search", exact=True).click()
    await page.get_by_role("button", name=re.compile(re.escape(title_for_sale["name"]))).click()
    offer = page.locator("#offer")
    await expect(offer.get_by_role("heading", name=title_for_sale["name"])).to_be_visible()
    await offer.get_by_role("button", name=re.compile(r"^Rent for \$3\.99")).click()
    await pay_at_checkout(page)
    await expect(banner).to_have_text(f"Payment received; {title_for_sale['name']} is rented.")
    rentals = page.locator("#purchases-table tbody tr")
    await expect(rentals).to_have_count(1)
    await expect(rentals.first).to_contain_text(title_for_sale["name"])
    await expect(rentals.first).to_contain_text("Rental")
    await expect(rentals.first).to_contain_text("Paid")
    await expect(rentals.first).to_contain_text(re.compile(f"Start watching by {DATE}"))
    await expect(invoices).to_have_count(2)
    await screenshot(page, "billing-page-rented", full_page=True)

    # A second checkout, declined: the cancel banner, nothing bought.
    await page.get_by_label("Search titles").fill(title_for_sale["word"])
    await title_search.get_by_role("button", name="Search", exact=True).click()
    await page.get_by_role("button", name=re.compile(re.escape(title_for_sale["name"]))).click()
    await offer.get_by_role("button", name=re.compile(r"^Buy for \$14\.99")).click()
    await page.wait_for_url(CHECKOUT)
    await page.get_by_role("button", name="Decline").click()
    await page.wait_for_url(BACK_ON_BILLING)
    await expect(banner).to_have_text("Checkout cancelled; nothing was charged.")
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    await expect(invoices).to_have_count(2)
    await expect(
        page.locator("#purchases-table tbody tr", has_text="Purchase").filter(has_text="Paid")
    ).to_have_count(0)

    # A 360 px phone: the header wraps, the panels go full width, nothing scrolls sideways.
    await page.set_viewport_size({"width": 360, "height": 800})
    overflow = await sideways_overflow(page)
    assert overflow <= 0, f"the page is {overflow}px wider than a 360 px phone screen"
    await expect(page.get_by_role("combobox", name="Search")).to_be_visible()
    await screenshot(page, "billing-page-narrow", full_page=True)

    # A 1920 px screen: the header spans the width, the page's column is centred and bounded.
    await page.set_viewport_size({"width": 1920, "height": 1080})
    await screenshot(page, "billing-page-wide", full_page=True)
    assert await sideways_overflow(page) <= 0
    box = await page.locator("#app-header").bounding_box()
    assert box and box["width"] >= 1900, box
    column = await page.locator("#billing").bounding_box()
    assert column, "the billing column is not shown"
    assert column["width"] <= 1400, f"the column is {column['width']}px wide: text lines too long"
    centre = column["x"] + column["width"] / 2
    assert abs(centre - 960) < 40, f"the column is not centred (centre at {centre}px)"
    cards = await page.locator("#plan-list > li").evaluate_all(
        "(items) => items.map((li) => li.getBoundingClientRect().top)"
    )
    assert len(set(round(top) for top in cards)) == 1, "the plan cards should sit on one line at 1920 px"
