"""The account pages in a real headless Chromium against the real dev server: what a person clicks through
from sign-up to a changed password, with the links read from the local outbox."""

from __future__ import annotations

import re
import time
from urllib.parse import quote

import pyotp
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import LiveServer
from tests.support.browser_pages import PICKER, newest_mail, sign_in
from tests.support.identity import (
    PASSWORD,
    auth_client,
    log_in,
    sign_up_verified,
    unique_email,
    users_client,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

USED_LINK = "This link is invalid, was already used or has expired; ask for a new one."
NEW_PASSWORD = "violet harbour lantern 1987 quietly"


async def test_sign_up_confirm_by_email_link_and_sign_in(page: Page, live_server: LiveServer) -> None:
    email = unique_email("browser")
    await page.goto("/signup")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Your name").fill("Browser Tester")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("heading", name="Check your inbox")).to_be_focused()
    await expect(page.locator("#sent-email")).to_have_text(email)

    mail = await newest_mail(live_server.base_url, email, "verify_email")
    link = mail["links"][0]
    assert link.startswith(f"{live_server.base_url}/verify-email?token="), link
    # Locally the page links straight to that email.
    await expect(page.get_by_role("link", name=re.compile("in the local outbox"))).to_have_attribute(
        "href", f"/api/v1/dev/outbox/{mail['id']}/html"
    )

    response = await page.goto(link)
    assert response is not None and response.ok
    redirected = response.request.redirected_from
    assert redirected is not None and redirected.url == link  # /verify-email -> /verify-email/, query kept
    await expect(page.get_by_role("heading", name="Email confirmed")).to_be_visible()
    await expect(page.get_by_text("you can sign in now")).to_be_visible()
    assert page.url == f"{live_server.base_url}/verify-email/", "the spent token stayed in the address bar"

    await page.goto(link)
    await expect(page.get_by_role("alert")).to_have_text(USED_LINK)
    await expect(page.get_by_role("heading", name="Need a new link?")).to_be_visible()
    assert "token" not in page.url

    await sign_in(page, email, PASSWORD)  # sent from nowhere in particular: on to "Who's watching?"
    stored = await page.evaluate("JSON.parse(sessionStorage.getItem('cinema.session'))")
    assert stored["access_token"] and stored["refresh_token"] and stored["session_id"]

    await page.goto("/login")  # the tab keeps its session: the sign-in page says who is signed in
    await expect(page.get_by_role("heading", name=f"Signed in as {email}")).to_be_visible()
    await expect(page.get_by_role("link", name="Continue to Cinema Online")).to_have_attribute(
        "href", "/profiles/"
    )
    await page.reload()
    await expect(page.get_by_role("heading", name=f"Signed in as {email}")).to_be_visible()
    # An access token that no longer works is renewed once with the refresh token.
    await page.evaluate(
        """() => {
            const kept = JSON.parse(sessionStorage.getItem('cinema.session'));
            sessionStorage.setItem('cinema.session', JSON.stringify({...kept, access_token: 'expired'}));
        }"""
    )
    await page.reload()
    await expect(page.get_by_role("heading", name=f"Signed in as {email}")).to_be_visible()
    stored = await page.evaluate("JSON.parse(sessionStorage.getItem('cinema.session'))")
    assert stored["access_token"] != "expired"
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("status")).to_have_text("You have signed out.")
    assert await page.evaluate("sessionStorage.getItem('cinema.session')") is None
    async with users_client() as client:
        me = await client.get(
            "/api/v1/users/me", headers={"authorization": f"Bearer {stored['access_token']}"}
        )
    assert me.status_code == 401, "signing out left the access token working"


async def test_sign_in_errors_show_the_problem_detail(
    page: Page, live_server: LiveServer, database_url: str
) -> None:
    unverified = unique_email("browser")
    async with auth_client() as client:
        response = await client.post("/api/v1/auth/signup", json={"email": unverified, "password": PASSWORD})
        assert response.status_code == 202, response.text

    await sign_in(page, unverified, PASSWORD, then=None)
    await expect(page.get_by_role("alert")).to_contain_text("Confirm your email address first")
    await page.get_by_role("button", name="Send a new confirmation link").click()
    await expect(page.get_by_role("status")).to_have_text(
        "If that address has an unconfirmed account, a new link is on its way."
    )

    email, _ = await sign_up_verified(database_url)
    await sign_in(page, email, "not the right password at all", then=None)
    await expect(page.get_by_role("alert")).to_have_text("The email or password is incorrect.")
    password = page.get_by_label("Password")
    await expect(password).to_be_focused()
    await expect(password).to_have_value("")
    assert await page.evaluate("sessionStorage.getItem('cinema.session')") is None


async def test_forgot_password_reset_by_email_link_and_sign_in(
    page: Page, live_server: LiveServer, database_url: str
) -> None:
    email, _ = await sign_up_verified(database_url)
    await page.goto("/forgot-password")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_role("button", name="Send reset link").click()
    await expect(page.get_by_role("status")).to_have_text(
        "If that address has an account, a reset link is on its way."
    )
    link = (await newest_mail(live_server.base_url, email, "reset_password"))["links"][0]
    assert link.startswith(f"{live_server.base_url}/reset-password?token="), link

    # Follow it the way a person does: open the email, press its button.
    await page.get_by_role("link", name=re.compile("in the local outbox")).click()
    await page.get_by_role("link", name="Choose a new password").click()
    await expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    assert page.url == link.replace("/reset-password?", "/reset-password/?")

    password, confirm = (
        page.get_by_label("New password", exact=True),
        page.get_by_label("Type the new password again"),
    )
    await password.fill(NEW_PASSWORD)
    await confirm.fill(NEW_PASSWORD + "!")
    await page.get_by_role("button", name="Change password").click()
    await expect(page.locator("#confirm-error")).to_have_text(re.compile("do not match"))
    await expect(confirm).to_have_attribute("aria-invalid", "true")

    await password.fill("qwertyuiop")
    await confirm.fill("qwertyuiop")
    await page.get_by_role("button", name="Change password").click()
    await expect(page.locator("#password-error")).to_contain_text("This password is too easy to guess")
    await expect(password).to_be_focused()
    await expect(password).to_have_attribute("aria-invalid", "true")
    await expect(password).to_have_accessible_description(re.compile("too easy to guess"))
    assert "token=" in page.url, "the token left the address bar before it was spent"

    await password.fill(NEW_PASSWORD)
    await confirm.fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_role("heading", name="Password changed")).to_be_focused()
    assert page.url == f"{live_server.base_url}/reset-password/"

    await page.get_by_role("link", name="Sign in").click()
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(PICKER)

    await page.goto(link)  # the link works once
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD + " again")
    await page.get_by_label("Type the new password again").fill(NEW_PASSWORD + " again")
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_role("alert")).to_have_text(USED_LINK)
    await expect(page.get_by_role("link", name="Ask for a new reset link")).to_be_visible()


async def test_sign_in_with_two_step_verification(
    page: Page, live_server: LiveServer, database_url: str
) -> None:
    email, password = await sign_up_verified(database_url)
    user = await log_in(email, password)
    async with auth_client() as client:
        response = await client.post("/api/v1/auth/mfa/totp", headers=user.headers)
        assert response.status_code == 200, response.text
        totp = pyotp.TOTP(response.json()["secret"])
        response = await client.post(
            "/api/v1/auth/mfa/totp/confirm", headers=user.headers, json={"code": totp.now()}
        )
        assert response.status_code == 200, response.text

    await sign_in(page, email, password, start="/login/?next=%2Faccount%2F", then=None)
    code = page.get_by_label("Verification code")
    await expect(code).to_be_focused()
    assert await page.evaluate("sessionStorage.getItem('cinema.session')") is None
    await code.fill("000000")
    await page.get_by_role("button", name="Verify").click()
    await expect(code).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#code-error")).not_to_be_empty()

    await code.fill(totp.at(time.time() + 30))  # the next step: newer than the one that turned 2FA on
    await page.get_by_role("button", name="Verify").click()
    await page.wait_for_url(f"{live_server.base_url}/account/")  # where the sign-in was asked for
    await expect(page.get_by_role("heading", name="Account", level=1)).to_be_visible()


async def test_confirm_a_new_email_address(page: Page, live_server: LiveServer, database_url: str) -> None:
    email, password = await sign_up_verified(database_url)
    user = await log_in(email, password)
    new_email = unique_email("moved")
    async with users_client() as client:
        response = await client.post(
            "/api/v1/users/me/email",
            headers=user.headers,
            json={"new_email": new_email, "password": password},
        )
        assert response.status_code == 202, response.text
    link = (await newest_mail(live_server.base_url, new_email, "email_change_verify"))["links"][0]
    assert link.startswith(f"{live_server.base_url}/confirm-email?token="), link

    await page.goto(link)
    await expect(page.get_by_role("heading", name="Email address changed")).to_be_visible()
    await expect(page.locator("#confirmed-email")).to_have_text(new_email)
    assert "token" not in page.url

    await page.goto(link)
    await expect(page.get_by_role("alert")).to_have_text(USED_LINK)
    await sign_in(page, new_email, password)
    await page.goto("/login")
    await expect(page.get_by_role("heading", name=f"Signed in as {new_email}")).to_be_visible()


async def test_social_sign_in_links_and_callback_errors(page: Page, live_server: LiveServer) -> None:
    await page.goto("/login")
    for provider, name in (("google", "Google"), ("github", "GitHub")):
        await expect(page.get_by_role("link", name=f"Sign in with {name}")).to_have_attribute(
            "href", f"/api/v1/auth/oauth/{provider}/authorize?redirect_to=%2Fprofiles%2F"
        )
    # Sent to sign in from a page: social sign-in and sign-up lead back there as well.
    await page.goto("/login/?next=%2Fbrowse%2F%3Fgenre%3Ddrama")
    for provider, name in (("google", "Google"), ("github", "GitHub")):
        await expect(page.get_by_role("link", name=f"Sign in with {name}")).to_have_attribute(
            "href", f"/api/v1/auth/oauth/{provider}/authorize?redirect_to=%2Fbrowse%2F%3Fgenre%3Ddrama"
        )
    await page.get_by_role("link", name="Create an account").click()
    await page.wait_for_url(re.compile(r"/signup/\?next=%2Fbrowse%2F%3Fgenre%3Ddrama$"))
    await expect(page.get_by_role("link", name="Sign up with Google")).to_have_attribute(
        "href", "/api/v1/auth/oauth/google/authorize?redirect_to=%2Fbrowse%2F%3Fgenre%3Ddrama"
    )
    await expect(page.get_by_role("link", name="Sign in", exact=True)).to_have_attribute(
        "href", "/login/?next=%2Fbrowse%2F%3Fgenre%3Ddrama"
    )
    # A hostile next changes none of them.
    await page.goto("/login/?next=https%3A%2F%2Fevil.example%2F")
    await expect(page.get_by_role("link", name="Sign in with Google")).to_have_attribute(
        "href", "/api/v1/auth/oauth/google/authorize?redirect_to=%2Fprofiles%2F"
    )
    await expect(page.get_by_role("link", name="Create an account")).to_have_attribute("href", "/signup/")

    await page.goto("/auth/callback#error=oauth_access_denied")
    await expect(page.get_by_role("alert")).to_have_text(
        "You cancelled signing in with the provider, so you are not signed in."
    )
    await expect(page.get_by_role("link", name="Go to the sign-in page")).to_be_visible()
    assert page.url == f"{live_server.base_url}/auth/callback/"

    # An unknown code is named; text that is not code-shaped is never echoed (the fragment is anyone's).
    await page.goto("/auth/callback#error=something_new")
    await expect(page.get_by_role("alert")).to_contain_text("(error: something_new)")
    await page.goto("/auth/callback#error=Call%20us%20at%20555-0100")
    await expect(page.get_by_role("alert")).to_have_text(
        "Signing in with the provider did not complete. Start again from the sign-in page."
    )
    await page.goto("/auth/callback")
    await expect(page.get_by_role("alert")).to_have_text(
        "This sign-in link is incomplete. Start again from the sign-in page."
    )


async def test_link_without_token_offers_a_new_one(page: Page, live_server: LiveServer) -> None:
    email = unique_email("browser")
    async with auth_client() as client:
        response = await client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
        assert response.status_code == 202, response.text

    await page.goto("/verify-email")
    await expect(page.get_by_role("heading", name="Need a new link?")).to_be_visible()
    await expect(page.get_by_role("alert")).to_be_empty()
    await page.get_by_label("Email address").fill(email)
    await page.get_by_role("button", name="Send a new link").click()
    await expect(page.get_by_role("status")).to_have_text(
        "If that address has an unconfirmed account, a new link is on its way."
    )
    await page.get_by_role("link", name=re.compile("in the local outbox")).click()
    await page.get_by_role("link", name="Confirm email address").click()
    await expect(page.get_by_role("heading", name="Email confirmed")).to_be_visible()

    await page.goto("/reset-password")
    await expect(page.get_by_role("alert")).to_contain_text("This link is incomplete or damaged")
    await expect(page.get_by_role("button", name="Change password")).to_be_hidden()
    await page.goto("/reset-password?token=short")
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("Type the new password again").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_role("alert")).to_contain_text("This link is incomplete or damaged")


HOSTILE_NEXT = [
    "https://evil.example/",
    "//evil.example",
    "/\\evil.example",
    "/\t/evil.example",
    "javascript:alert(1)",
    "/login/?next=//evil.example",
]


async def test_sign_in_continues_to_the_page_that_asked_for_it(
    page: Page, live_server: LiveServer, database_url: str
) -> None:
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    email, password = await sign_up_verified(database_url)

    await page.goto("/account/")  # signed out: the account page sends the person to sign in...
    await page.wait_for_url(f"{live_server.base_url}/login/?next=%2Faccount%2F")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(f"{live_server.base_url}/account/")  # ...and back to it afterwards
    await expect(page.get_by_role("heading", name="Account", level=1)).to_be_visible()
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    # Back does not land on a spent sign-in form.
    await page.go_back()
    assert not page.url.startswith(f"{live_server.base_url}/login"), page.url
    # Asked to sign in while this tab already is: straight on.
    await page.goto("/login/?next=%2Faccount%2F")
    await page.wait_for_url(f"{live_server.base_url}/account/")
    # ...but never off the site: a signed-in tab given a hostile next stays on the sign-in page.
    await page.goto(f"/login/?next={quote('//evil.example', safe='')}")
    await expect(page.get_by_role("heading", name=f"Signed in as {email}")).to_be_visible()
    assert page.url.startswith(f"{live_server.base_url}/login/")

    for hostile in HOSTILE_NEXT:
        await page.evaluate("sessionStorage.clear()")
        # On to the profile picker of this site, whatever next said.
        await sign_in(page, email, password, start=f"/login/?next={quote(hostile, safe='')}")
        assert page.url == f"{live_server.base_url}/profiles/", (hostile, page.url)
    assert not problems, problems
