"""Social sign-in in a real headless Chromium: the sign-in page, the local Google stand-in (which approves at
once), our callback, and the web callback page that trades the one-time login code for a session."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import LiveServer, serving
from tests.support.identity import unique_email
from tests.support.oauth_server import GoogleUser, OAuthServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

AUTHORIZE = "/api/v1/auth/oauth/google/authorize"
# Fragment values (raw, as they sit in the address bar) that would leave the site if followed.
OFF_SITE = (
    "//evil.example",
    "/%09/evil.example",  # a tab, which browsers drop from URLs: "//evil.example"
    "/%5Cevil.example",  # a backslash, which browsers read as a slash
    "https://evil.example/",
    "%2F%2Fevil.example",
)


@pytest.fixture(scope="module")
def oauth_server() -> Iterator[OAuthServer]:
    """The local Google/GitHub stand-in for this module."""
    with OAuthServer() as server:
        yield server


@pytest.fixture(scope="module")
def live_server(oauth_server: OAuthServer) -> Iterator[LiveServer]:
    """This module's dev server: conftest's, with both providers pointed at the stand-in."""
    server = LiveServer()
    # The stand-in only redirects to the callback registered for it: the live server's own.
    oauth_server.redirect_base = server.base_url
    with serving(server, **oauth_server.env()) as started:
        yield started


@pytest.fixture
def google_user(oauth_server: OAuthServer) -> GoogleUser:
    """A Google account of this test alone, which the stand-in's consent page approves."""
    oauth_server.reset()
    oauth_server.google_user = GoogleUser(email=unique_email("google"), name="Google Person")
    return oauth_server.google_user


async def login_code(page: Page, live_server: LiveServer, redirect_to: str) -> str:
    """Follow a Google sign-in's redirects with this browser's cookies, stopping short of the web page."""
    url = f"{live_server.base_url}{AUTHORIZE}?{urlencode({'redirect_to': redirect_to})}"
    for _hop in ("to the provider", "back to our callback", "to the web callback page"):
        response = await page.request.get(url, max_redirects=0)  # the context's cookie jar, both ways
        assert response.status == 302, await response.text()
        url = response.headers["location"]
    page_url = f"{live_server.base_url}/auth/callback#"
    assert url.startswith(page_url), url
    return dict(parse_qsl(url.removeprefix(page_url)))["login_code"]


async def test_sign_in_with_google_through_the_pages(
    page: Page, live_server: LiveServer, oauth_server: OAuthServer, google_user: GoogleUser
) -> None:
    await page.goto("/login")
    await page.get_by_role("link", name="Sign in with Google").click()
    # Signed in, the callback goes on to the profile picker (replacing itself: no login code in history).
    await page.wait_for_url(f"{live_server.base_url}/profiles/")

    consent = oauth_server.requests_to("/o/oauth2/v2/auth")
    assert len(consent) == 1
    assert consent[0].query["redirect_uri"] == f"{live_server.base_url}/api/v1/auth/oauth/google/callback"
    assert consent[0].query["code_challenge_method"] == "S256"
    assert len(oauth_server.requests_to("/token")) == 1  # the code was redeemed once, by our callback

    stored = await page.evaluate("JSON.parse(sessionStorage.getItem('cinema.session'))")
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as client:
        me = await client.get(
            "/api/v1/users/me", headers={"authorization": f"Bearer {stored['access_token']}"}
        )
    assert me.status_code == 200, me.text
    assert me.json()["email"] == google_user.email

    # Started from a link elsewhere on the site: the same account, and a way back to where it began.
    await page.goto(f"{AUTHORIZE}?redirect_to=%2Fbrowse")
    await page.wait_for_url(re.compile(re.escape(live_server.base_url) + r"/browse/?$"))
    renewed = await page.evaluate("JSON.parse(sessionStorage.getItem('cinema.session'))")
    assert renewed["session_id"] != stored["session_id"]


async def test_callback_page_never_continues_off_site(
    page: Page, live_server: LiveServer, google_user: GoogleUser
) -> None:
    # The fragment is anyone's to write: a real login code of this browser with a hostile redirect_to.
    for raw in OFF_SITE:
        code = await login_code(page, live_server, "/browse")
        await page.goto(f"/auth/callback#login_code={code}&redirect_to={raw}")
        # Signed in, but never sent off the site: the profile picker instead.
        await page.wait_for_url(f"{live_server.base_url}/profiles/")

    # A made-up code signs nobody in, and still offers no way off the site.
    await page.goto("/auth/callback#login_code=x&redirect_to=//evil.example")
    await expect(page.get_by_role("alert")).not_to_be_empty()
    await expect(page.get_by_role("heading", name="Signed in as")).to_be_hidden()
    await expect(page.get_by_role("link", name="Go to the sign-in page")).to_have_attribute("href", "/login")
    hrefs = await page.eval_on_selector_all("a[href]", "links => links.map((a) => a.href)")
    assert all(href.startswith(f"{live_server.base_url}/") for href in hrefs), hrefs
    assert page.url == f"{live_server.base_url}/auth/callback/"
