"""The billing page (/account/billing/) in a real headless Chromium against the real dev server and the
sandbox payment provider: subscribe through the sandbox checkout, see the plan and its invoice, open the
invoice page, cancel and resume, rent a title through checkout, and decline a second checkout.

Screenshots of the billing page, the sandbox checkout and the invoice are left in
TEST_ARTIFACTS_DIR/browser/ (default .data/test-artifacts/browser/, gitignored)."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import LiveServer, PageProblems
from tests.support import catalog_factory as factory
from tests.support.identity import sign_up_verified

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]
BILLING = "/account/billing"
CHECKOUT = re.compile(r"/api/v1/payments/sandbox/checkout/cs_sbx_[0-9a-f]{32}$")
BACK_ON_BILLING = re.compile(r"/account/billing/(\?.*)?$")
DATE = r"[A-Z][a-z]+ \d{1,2}, \d{4}"  # en-US "long" date, e.g. June 3, 2026


def artefacts_dir() -> Path:
    """Where browser tests leave what a person would look at (TEST_ARTIFACTS_DIR, else .data/, gitignored)."""
    folder = Path(os.environ.get("TEST_ARTIFACTS_DIR") or REPO / ".data" / "test-artifacts") / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def screenshot(page: Page, name: str) -> Path:
    path = artefacts_dir() / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    return path


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


async def sign_in(page: Page, email: str, password: str) -> None:
    """Through the sign-in page, as a person does: the tab keeps the session in sessionStorage."""
    await page.goto("/login")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(re.compile(r"/profiles/$"))  # signing in goes on to the profile picker


async def open_billing(page: Page) -> None:
    await page.goto(BILLING)
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")


async def pay_at_checkout(page: Page, *, shot: str | None = None) -> None:
    """On the sandbox checkout page: Pay (or Start trial), and back on the billing page."""
    await page.wait_for_url(CHECKOUT)
    await expect(page.get_by_role("heading", name="Order summary")).to_be_visible()
    if shot:
        await screenshot(page, shot)
    await page.get_by_role("button", name=re.compile(r"^(Pay .+|Start trial)$")).click()
    await page.wait_for_url(BACK_ON_BILLING)


async def test_signed_out_shows_a_sign_in_link(page: Page, live_server: LiveServer) -> None:
    await open_billing(page)
    await expect(page.get_by_role("heading", name="Sign in to manage your plan")).to_be_visible()
    await expect(page.get_by_role("link", name="Sign in")).to_have_attribute("href", "/login/")
    await expect(page.get_by_role("heading", name="Your plan", exact=True)).to_be_hidden()


async def test_subscribe_invoice_cancel_resume_rent_and_decline(
    page: Page, live_server: LiveServer, database_url: str, title_for_sale: dict[str, Any]
) -> None:
    email, password = await sign_up_verified(database_url)
    await sign_in(page, email, password)
    await open_billing(page)

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
    await screenshot(page, "billing-page")

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
    await screenshot(invoice_tab, "billing-invoice")
    await invoice_tab.close()
    assert not tab_problems.items, tab_problems.items

    # Cancel (confirmed) -> "ends on <date>"; Resume -> renews again.
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Cancel plan").click()
    await expect(summary).to_contain_text(re.compile(f"ends on {DATE}"))
    await expect(page.get_by_role("status").filter(has_text="Your plan is cancelled")).to_be_visible()
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
    await expect(page.get_by_role("status").filter(has_text="You are now on Premium.")).to_be_visible()
    await expect(summary).to_contain_text("Premium")
    await expect(summary).to_contain_text("4 screens at once")
    await page.get_by_role("button", name="Manage payment method").click()
    await page.wait_for_url(re.compile(r"/api/v1/payments/sandbox/portal/"))
    await open_billing(page)
    await expect(summary).to_contain_text("Premium")

    # Rent the title: search, pick, Rent -> checkout -> Pay -> listed under Rentals and purchases.
    await page.get_by_label("Search titles").fill(title_for_sale["word"])
    await page.get_by_role("button", name="Search", exact=True).click()
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
    await screenshot(page, "billing-page-rented")

    # A second checkout, declined: the cancel banner, nothing bought.
    await page.get_by_label("Search titles").fill(title_for_sale["word"])
    await page.get_by_role("button", name="Search", exact=True).click()
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

    # Narrow screens: one column, nothing wider than the viewport.
    await page.set_viewport_size({"width": 375, "height": 800})
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a phone screen"
    await screenshot(page, "billing-page-narrow")
