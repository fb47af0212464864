"""The account settings page (/account/) in a real headless Chromium against the real dev server: devices
with revoke, change password (strength errors per field) then sign in with the new one, two-step
verification set up from the page's QR/secret with backup codes, the data export as a JSON file, and
deleting an account (the subscription_active refusal shown with a link to billing, then a real delete).

Screenshots are left in TEST_ARTIFACTS_DIR/browser/ (default .data/test-artifacts/browser/, gitignored)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import httpx
import pyotp
import pytest
from playwright.async_api import Download, Page, Route, expect

from tests.browser.conftest import LiveServer
from tests.support.browser_pages import ConsoleErrors, screenshot, sign_in
from tests.support.identity import auth_client, log_in, sign_up_verified, unique_email, users_client

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

ACCOUNT = "/account/"
NEW_PASSWORD = "amber orchard telescope 2046 gently"


async def downloaded_text(download: Download) -> str:
    """The text of a file the page handed over (read off the event loop)."""
    return await asyncio.to_thread(Path(await download.path()).read_text)


@pytest.fixture
def console(page: Page) -> ConsoleErrors:
    """The tab's console errors. Chromium logs every 4xx/5xx answer of fetch(); the page is driven into some
    on purpose (a weak password, a refusal): `check(statuses...)` allows those, and fails on any other."""
    return ConsoleErrors(page)


async def open_account(page: Page) -> None:
    await page.goto(ACCOUNT)
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    await expect(page.get_by_role("heading", name="Account", level=1)).to_be_visible()
    for section in ("#mfa-section", "#devices-section", "#identities-section", "#streams-section"):
        await expect(page.locator(section)).not_to_have_attribute("aria-busy", "true")


async def test_signed_out_goes_to_sign_in(
    page: Page, live_server: LiveServer, console: ConsoleErrors
) -> None:
    await page.goto(ACCOUNT)
    await page.wait_for_url(re.compile(r"/login/\?next=%2Faccount%2F$"))
    console.check()


async def test_devices_password_two_step_and_export(
    page: Page, live_server: LiveServer, database_url: str, console: ConsoleErrors
) -> None:
    email, password = await sign_up_verified(database_url)
    other = await log_in(email, password)  # a second device, signed in through the API
    await sign_in(page, email, password)
    await open_account(page)

    for heading in ("Account", "Security", "Streams now playing", "Plan and billing", "Your data"):
        await expect(page.get_by_role("heading", name=heading, level=2)).to_be_visible()
    await expect(page.locator("#account-email")).to_have_text(email)
    await expect(page.locator("#mfa-state")).to_contain_text("Off")
    await expect(page.locator("#stream-list")).to_contain_text("Nothing is playing")
    await expect(page.locator("#plan-summary")).to_contain_text("Plan")
    await expect(page.get_by_role("link", name=re.compile("Manage plan"))).to_have_attribute(
        "href", "/account/billing/"
    )
    for provider in ("Google", "GitHub"):
        await expect(page.get_by_role("button", name=f"Link {provider}")).to_be_visible()

    # Display name.
    await page.get_by_label("Display name").fill("Ada Settings")
    await page.get_by_role("button", name="Save name").click()
    await expect(page.locator("#account-section .section-message")).to_have_text(
        "Your display name is now Ada Settings."
    )

    # Devices: this one is marked; the other is signed out from here and disappears.
    devices = page.locator("#device-list")
    await expect(devices.locator("li")).to_have_count(2)
    await expect(devices.locator("li", has_text="This device")).to_have_count(1)
    other_row = devices.locator(f'li[data-session="{other.session_id}"]')
    await expect(other_row).to_be_visible()
    await screenshot(page, "account-page", full_page=True)
    await other_row.get_by_role("button", name=re.compile("^Sign out ")).click()
    await expect(other_row).to_have_count(0)
    await expect(page.locator("#devices-section .section-message")).to_contain_text("has been signed out")
    async with users_client() as client:
        response = await client.get("/api/v1/users/me", headers=other.headers)
    assert response.status_code == 401, "the revoked device's token still works"

    # Change password: the problem's words under the field at fault, then the change.
    form = page.locator("#password-form")
    await form.get_by_label("Current password").fill("not my password at all")
    await form.get_by_label("New password").fill(NEW_PASSWORD)
    await form.get_by_role("button", name="Change password").click()
    await expect(page.locator("#current-password-error")).to_have_text("The current password is incorrect.")
    await expect(form.get_by_label("Current password")).to_be_focused()
    await form.get_by_label("Current password").fill(password)
    await form.get_by_label("New password").fill("qwertyuiop")
    await form.get_by_role("button", name="Change password").click()
    new_field = form.get_by_label("New password")
    await expect(page.locator("#new-password-error")).to_contain_text("too easy to guess")
    await expect(new_field).to_have_attribute("aria-invalid", "true")
    await expect(new_field).to_have_accessible_description(re.compile("too easy to guess"))
    await new_field.fill(NEW_PASSWORD)
    await form.get_by_role("button", name="Change password").click()
    await expect(page.locator("#password-section .section-message")).to_have_text(
        "Your password has been changed."
    )
    await expect(new_field).to_have_value("")

    # Sign in again with the new password (2FA setup wants a recent sign-in anyway).
    await page.goto("/login")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("#status")).to_have_text("You have signed out.")
    await sign_in(page, email, NEW_PASSWORD)
    await open_account(page)

    # Two-step verification: the QR code made by the server, the key and the otpauth URI behind it.
    await page.get_by_role("button", name="Set up two-step verification").click()
    qr = page.get_by_role("img", name=re.compile("QR code"))
    await expect(qr).to_have_attribute("src", re.compile(r"^data:image/svg\+xml"))
    assert await qr.evaluate("img => img.complete && img.naturalWidth > 0"), "the QR code did not render"
    await page.locator("#mfa-setup summary").click()  # "Can't scan it? Enter the key by hand"
    secret = (await page.locator("#mfa-secret").text_content() or "").strip()
    uri = await page.locator("#mfa-uri").get_attribute("href") or ""
    parsed = urlparse(uri)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp", uri
    assert parse_qs(parsed.query)["secret"] == [secret], (uri, secret)
    assert email in unquote(parsed.path)
    await screenshot(page, "account-2fa-setup", full_page=True)

    code = page.get_by_label("Code from the app")
    await code.fill("12345")
    await page.get_by_role("button", name="Turn on").click()
    await expect(page.locator("#mfa-code-error")).to_have_text("Enter the 6-digit code your app shows now.")
    totp = pyotp.TOTP(secret)
    await code.fill(totp.now())
    await page.get_by_role("button", name="Turn on").click()
    codes = page.locator("#backup-code-list li")
    await expect(codes).to_have_count(10)
    await expect(page.locator("#backup-codes")).to_be_focused()
    shown = [text.strip() for text in await codes.all_text_contents()]
    await screenshot(page, "account-2fa-backup-codes", full_page=True)
    async with page.expect_download() as waiting:
        await page.get_by_role("button", name="Download codes").click()
    saved = await downloaded_text(await waiting.value)
    assert all(one in saved for one in shown), saved
    await page.get_by_role("button", name="I have saved them").click()
    await expect(codes).to_have_count(0)
    await expect(page.locator("#mfa-state")).to_contain_text("On")
    await expect(page.locator("#mfa-remaining")).to_have_text("10 unused backup codes left.")

    # New backup codes (password and a fresh code), shown once again.
    manage = page.locator("#mfa-manage-form")
    await manage.get_by_label("Password").fill(NEW_PASSWORD)
    await manage.get_by_label(re.compile("^Code from your app")).fill(totp.at(time.time() + 30))
    await manage.get_by_role("button", name="Get new backup codes").click()
    await expect(codes).to_have_count(10)
    assert not set(await codes.all_text_contents()) & set(shown), "the old backup codes came back"
    await page.get_by_role("button", name="I have saved them").click()

    # Change email: the confirmation goes to the new address.
    moved = unique_email("moved")
    emailing = page.locator("#email-form")
    await emailing.get_by_label("New email address").fill(moved)
    await emailing.get_by_label(re.compile("^Password")).fill(NEW_PASSWORD)
    await emailing.get_by_role("button", name="Send confirmation link").click()
    await expect(page.locator("#email-section .section-message")).to_contain_text(
        f"We sent a confirmation link to {moved}."
    )
    await expect(page.locator("#account-email")).to_have_text(email)  # unchanged until the link is opened
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as client:
        response = await client.get("/api/v1/dev/outbox", params={"to": moved, "limit": 5})
    assert any(item["template"] == "email_change_verify" for item in response.json()["items"]), response.text
    async with auth_client() as client:
        response = await client.get("/api/v1/auth/mfa", headers=other.headers)
        assert response.status_code == 401
        response = await client.post("/api/v1/auth/login", json={"email": email, "password": NEW_PASSWORD})
    assert response.status_code == 200 and response.json()["mfa_required"] is True, response.text

    # Your data: the export arrives as a JSON file about this account.
    async with page.expect_download() as waiting:
        await page.get_by_role("button", name="Download my data").click()
    download = await waiting.value
    assert download.suggested_filename == "cinema-online-data.json"
    exported = json.loads(await downloaded_text(download))
    assert email in json.dumps(exported), exported.keys()
    await expect(page.locator("#export-section .section-message")).to_contain_text("downloaded")

    # Narrow screens: nothing wider than a phone.
    await page.set_viewport_size({"width": 360, "height": 800})
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a phone screen"
    await screenshot(page, "account-page-narrow", full_page=True)
    console.check(403, 422)  # the wrong current password, the weak new one


async def test_delete_account(
    page: Page, live_server: LiveServer, database_url: str, console: ConsoleErrors
) -> None:
    email, password = await sign_up_verified(database_url)
    await sign_in(page, email, password)
    await open_account(page)
    form = page.locator("#delete-form")
    delete = form.get_by_role("button", name="Delete my account")

    await delete.click()
    await expect(page.locator("#delete-confirm-error")).to_contain_text("Tick this box")

    # A renewing plan blocks the delete: the refusal says so and links to billing (answered by a stand-in,
    # so this account need not subscribe first).
    async def subscription_active(route: Route) -> None:
        if route.request.method != "DELETE":
            await route.fallback()
            return
        await route.fulfill(
            status=409,
            content_type="application/problem+json",
            body=json.dumps(
                {
                    "type": "about:blank",
                    "title": "Conflict",
                    "status": 409,
                    "code": "subscription_active",
                    "detail": "Cancel your subscription before deleting the account.",
                }
            ),
        )

    await page.route("**/api/v1/users/me", subscription_active)
    await form.get_by_label("Password").fill(password)
    await form.get_by_label(re.compile("I understand")).check()
    await delete.click()
    refusal = page.locator("#delete-refusal")
    await expect(refusal).to_be_focused()
    await expect(refusal).to_contain_text("Cancel your subscription before deleting the account.")
    await expect(refusal.get_by_role("link", name=re.compile("Plan and billing"))).to_have_attribute(
        "href", "/account/billing/"
    )
    await screenshot(page, "account-delete-refused", full_page=True)
    await page.unroute("**/api/v1/users/me")

    await form.get_by_label("Password").fill("the wrong password")
    await delete.click()
    await expect(page.locator("#delete-password-error")).to_have_text("The current password is incorrect.")

    await form.get_by_label("Password").fill(password)
    await delete.click()
    await expect(page.get_by_role("heading", name="Your account has been deleted")).to_be_focused()
    assert await page.evaluate("sessionStorage.getItem('cinema.session')") is None
    async with auth_client() as client:
        response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 401, response.text
    console.check(403, 409)
