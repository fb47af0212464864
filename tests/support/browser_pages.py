"""What the browser tests share: signing in, profile-bound sessions, console errors, screenshots.

Two ways into a signed-in tab:
- through the pages, as a person does: `sign_in(page, email, password)` fills /login and (by default) waits
  for the profile picker;
- handed over, for tests about another page: `profile_session(database_url)` signs a new viewer in through
  the API and selects their profile (the tokens the picker saves), and `signed_in_tab(browser, base_url,
  tokens, errors)` opens a fresh browser profile whose sessionStorage holds them (as account.js keeps them).
  `session_of(user)` is the account-level session of a `SignedIn` (no profile yet), for the same hand-over.

`ConsoleErrors` collects the tab's console errors and uncaught exceptions; Chromium's own line for an
answered HTTP refusal ("Failed to load resource: ... status of 409") is counted by status instead, and
`check()` allows only the statuses the test drives the page into.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import httpx
import psycopg
import pytest

from tests.support.identity import PASSWORD, SignedIn, random_ip, signed_in_user, users_client

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page, ViewportSize

REPO = Path(__file__).resolve().parents[2]
VENDOR = REPO / "public" / "vendor"
SESSION_KEY = "cinema.session"  # account.js keeps the session in the tab's sessionStorage under this key
PICKER = re.compile(r"/profiles/$")  # signing in without a `next` goes on to "Who's watching?"
SESSIONS = "/api/v1/streaming/sessions"  # the stream sessions of the caller's account
NETWORK_LOG = re.compile(r"^Failed to load resource: the server responded with a status of (\d{3})")


def unavailable(reason: str) -> NoReturn:
    """Skip on a developer machine without a browser or players; on CI (which must run them) fail."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the browser tests may not be skipped)", pytrace=False)
    pytest.skip(reason)


def require_players(*names: str) -> None:
    """public/vendor/ is filled by `make` (npm ci + copy): skip without these files locally, fail on CI."""
    missing = [name for name in names or ("hls.min.js",) if not (VENDOR / name).is_file()]
    if missing:
        unavailable(f"public/vendor/ lacks {missing}: run `make test` (or `make public/vendor/.installed`)")


def artefacts_dir() -> Path:
    """Where browser tests leave what a person would look at (TEST_ARTIFACTS_DIR, else .data/, gitignored)."""
    folder = Path(os.environ.get("TEST_ARTIFACTS_DIR") or REPO / ".data" / "test-artifacts") / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def screenshot(page: Page, name: str, *, full_page: bool = False) -> Path:
    """A PNG of the page in the artefacts folder."""
    path = artefacts_dir() / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 0
    return path


async def ready(page: Page) -> None:
    """The page's startup is over (app.js marks the body)."""
    from playwright.async_api import expect

    await expect(page.locator("body")).to_have_attribute("data-ready", "true")


async def sign_in(
    page: Page,
    email: str,
    password: str = PASSWORD,
    *,
    start: str = "/login",
    then: re.Pattern[str] | None = PICKER,
) -> None:
    """Through the sign-in page, as a person does; then wait for the URL `then` (None: do not wait)."""
    await page.goto(start)
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    if then is not None:
        await page.wait_for_url(then)


def session_of(user: SignedIn) -> dict[str, Any]:
    """The session account.js would keep right after signing in (no profile selected yet)."""
    return {
        "access_token": user.access_token,
        "refresh_token": user.refresh_token,
        "expires_at": user.body.get("expires_at"),
        "session_id": user.session_id,
        "profile_id": None,
    }


@dataclass(frozen=True)
class ProfileSession:
    """A new viewer and the profile-bound session the profile picker saves for them."""

    user_id: uuid.UUID
    tokens: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        """The bearer of the profile token, for API calls as this viewer."""
        return {"authorization": f"Bearer {self.tokens['access_token']}"}


async def profile_session(
    database_url: str, *, streams: int | None = None, kids: bool = False
) -> ProfileSession:
    """A new viewer signed in with a profile selected; a subscription (tier 1, `streams` screens) if given.

    With `kids`, a kids profile is added and selected (the account's own profile stays, unlocked).
    """
    user = await signed_in_user(database_url)
    if streams is not None:
        from shared.entitlements.service import invalidate

        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
            await db.execute(
                "insert into public.entitlements (user_id, kind, plan_code, tier, max_streams, max_height)"
                " values (%s, 'subscription', 'standard', 1, %s, 1080)",
                (user.user_id, streams),
            )
        await invalidate(user.user_id)
    async with users_client() as client:
        if kids:
            made = await client.post(
                "/api/v1/users/me/profiles",
                json={"name": "Little ones", "is_kids": True},
                headers=user.headers,
            )
            assert made.status_code == 201, made.text
            profile_id = made.json()["id"]
        else:
            listed = await client.get("/api/v1/users/me/profiles", headers=user.headers)
            assert listed.status_code == 200, listed.text
            profile_id = listed.json()[0]["id"]
        selected = await client.post(f"/api/v1/users/me/profiles/{profile_id}/select", headers=user.headers)
        assert selected.status_code == 200, selected.text
    tokens = selected.json()
    return ProfileSession(
        user_id=uuid.UUID(str(user.user_id)),
        tokens={
            "access_token": tokens["access_token"],
            "refresh_token": tokens.get("refresh_token") or user.refresh_token,
            "expires_at": tokens.get("expires_at"),
            "session_id": tokens.get("session_id") or user.session_id,
            "profile_id": tokens.get("profile_id") or profile_id,
        },
    )


async def keep_session(context: BrowserContext, tokens: dict[str, Any]) -> None:
    """Every tab of `context` starts with this session, unless the pages saved one (a profile switch)."""
    await context.add_init_script(
        "try { if (location.protocol.startsWith('http') && !sessionStorage.getItem("
        f"{json.dumps(SESSION_KEY)})) sessionStorage.setItem({json.dumps(SESSION_KEY)},"
        f" {json.dumps(json.dumps(tokens))}); }} catch {{}}"
    )


class ConsoleErrors:
    """Console errors and uncaught exceptions of a tab; HTTP refusals the browser logs are counted by status.

    `expected_statuses` are refusals the test drives the page into; `expected` a pattern of console lines
    that are not errors of the page (a deliberate failure the page reports itself). Call `check()` at the end.
    """

    def __init__(
        self,
        page: Page | None = None,
        *,
        expected_statuses: tuple[int, ...] = (),
        expected: str | None = None,
    ) -> None:
        self.items: list[str] = []
        self.refused: list[tuple[int, str]] = []  # (status, url) of each HTTP refusal the browser logged
        self.expected_statuses = expected_statuses
        self.expected = re.compile(expected) if expected else None
        if page is not None:
            self.watch(page)

    def watch(self, page: Page) -> None:
        """Listen to this tab."""
        page.on("console", self.on_console)
        page.on("pageerror", self.on_page_error)

    def on_console(self, message: Any) -> None:
        """Keep an error line (Playwright's console event)."""
        if message.type != "error":
            return
        text = message.text
        where = (message.location or {}).get("url", "")
        refused = NETWORK_LOG.match(text)
        if refused:
            self.refused.append((int(refused.group(1)), where))
        elif not (self.expected and self.expected.search(text)):
            self.items.append(f"console: {text} ({where})" if where else f"console: {text}")

    @property
    def statuses(self) -> list[int]:
        """The HTTP statuses of the refusals, in order."""
        return [status for status, _ in self.refused]

    def on_page_error(self, error: Any) -> None:
        """Keep an uncaught exception (Playwright's pageerror event)."""
        self.items.append(f"uncaught: {error}")

    def check(self, *allowed_statuses: int, where: str = "") -> None:
        """No console error, and no HTTP refusal but the expected ones (and `allowed_statuses`)."""
        place = f" on {where}" if where else ""
        assert not self.items, f"console errors{place}: {self.items}"
        allowed = set(self.expected_statuses) | set(allowed_statuses)
        assert set(self.statuses) <= allowed, f"unexpected HTTP refusals{place}: {self.refused}"


async def signed_in_tab(
    browser: Browser,
    base_url: str,
    tokens: dict[str, Any],
    errors: ConsoleErrors,
    *,
    headers: dict[str, str] | None = None,
    viewport: ViewportSize | None = None,
    timeout_ms: int = 15_000,
) -> Page:
    """A fresh browser profile holding `tokens` in the tab's sessionStorage, its errors going to `errors`.

    The tab is a client with its own address behind the live server's trusted proxy (its own rate-limit
    budget); `headers` ride every request (a trusted proxy's country header, say).
    """
    context = await browser.new_context(
        base_url=base_url,
        extra_http_headers={"x-forwarded-for": random_ip(), **(headers or {})},
        viewport=viewport or {"width": 1280, "height": 800},
    )
    context.set_default_timeout(timeout_ms)
    await keep_session(context, tokens)
    page = await context.new_page()
    errors.watch(page)
    return page


async def watch_state(page: Page) -> dict[str, Any]:
    """What the watch page reports of itself (player.js's window.watchState)."""
    return dict(await page.evaluate("() => JSON.parse(JSON.stringify(window.watchState || {}))"))


async def wait_state(page: Page, check: Any, *, within: float = 40, what: str = "") -> dict[str, Any]:
    """Poll the watch page's state until `check(state)` holds; fail after `within` seconds naming `what`."""
    deadline = time.monotonic() + within
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = await watch_state(page)
        if check(state):
            return state
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {state}")


async def live_sessions(base_url: str, tokens: dict[str, Any]) -> list[dict[str, Any]]:
    """The account's live stream sessions (GET /api/v1/streaming/sessions with the tab's token)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as api:
        listed = await api.get(
            SESSIONS,
            headers={"authorization": f"Bearer {tokens['access_token']}", "x-forwarded-for": random_ip()},
        )
    assert listed.status_code == 200, listed.text
    return list(listed.json())


async def newest_mail(base_url: str, to: str, template: str) -> dict[str, Any]:
    """The newest outbox message of this template to this address, read as a person would: GET the outbox."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        response = await client.get("/api/v1/dev/outbox", params={"to": to, "limit": 20})
    assert response.status_code == 200, response.text
    mails = [item for item in response.json()["items"] if item["template"] == template]
    assert mails, f"no {template} mail to {to}"
    return dict(mails[0])
