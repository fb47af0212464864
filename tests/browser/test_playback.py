"""A real player plays the pipeline's encrypted streams through the signed path: hls.js (AES-128) and
dash.js (CENC + ClearKey) in Debian's headless Chromium, on public/dev/player.html with the players
installed from npm (public/vendor/), against the live dev server.

The asset is a real transcode of a generated 8 s clip (320x180, ultrafast) through the queue into storage;
the viewer signs in, gets a subscription entitlement, starts a stream session over HTTP, and the player
takes the session's manifest URL. Everything after it — media playlists, segments, the HLS key, the
ClearKey licence — is fetched through the URLs the manifest endpoint signed. Delivery tokens live
STREAM_TOKEN_TTL_SECONDS=60 here: the player renews its token by heartbeat and swaps it into every later
request, and keeps playing once the first token has expired. A screenshot of each run is left in
TEST_ARTIFACTS_DIR/browser/ (default .data/test-artifacts/browser/, gitignored)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page

from tests.browser.conftest import LiveServer, PageProblems, serving, transcoded_title
from tests.support.browser_pages import profile_session, require_players, screenshot
from tests.support.identity import random_ip

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

CLIP_SECONDS = 8.0  # the shared 4 s asset of tests/support/playback.py is too short to pass 5 s
PLAYED_SECONDS = 5.0
TOKEN_TTL = 60  # STREAM_TOKEN_TTL_SECONDS' minimum: a player that does not renew stops within a minute
MIDWAY_SECONDS = 1.0  # when the renewal test beats: the first 6 s segment is in, the second is not


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    """The dev server with short-lived delivery tokens."""
    with serving(LiveServer(), STREAM_TOKEN_TTL_SECONDS=str(TOKEN_TTL)) as server:
        yield server


@pytest.fixture(scope="module", autouse=True)
def players_installed() -> None:
    require_players("hls.min.js", "dash.all.min.js")


@pytest.fixture(scope="module")
async def title_id(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> uuid.UUID:
    """A published title whose current asset is a real transcode (cheap encode settings, one 180p rung)."""
    return await transcoded_title(
        database_url,
        tmp_path_factory.mktemp("playback"),
        f"Playback {uuid.uuid4().hex[:6]}",
        seconds=CLIP_SECONDS,
        size=(320, 180),
    )


async def entitled_viewer(database_url: str) -> dict[str, str]:
    """A new viewer with a subscription (tier 1, the title's default) and a token bound to their profile."""
    return (await profile_session(database_url, streams=2)).headers


@asynccontextmanager
async def stream_session(
    base_url: str, headers: dict[str, str], title_id: uuid.UUID, format: str
) -> AsyncIterator[tuple[dict[str, Any], str]]:
    """A started stream session of the title and its manifest URL in `format`; the session ends after."""
    async with httpx.AsyncClient(
        base_url=base_url, headers={**headers, "x-forwarded-for": random_ip()}, timeout=15
    ) as api:
        response = await api.post(
            "/api/v1/streaming/sessions",
            json={"content_id": str(title_id), "device_id": uuid.uuid4().hex, "device_class": "web"},
        )
        assert response.status_code == 201, response.text
        session = response.json()
        try:
            yield session, urljoin(base_url + "/", session["manifests"][format])  # an API path, or absolute
        finally:
            ended = await api.delete(f"/api/v1/streaming/sessions/{session['session_id']}")
            assert ended.status_code in (200, 204), ended.text


@dataclass
class Played:
    """What the page reported, what it fetched, and the screenshot."""

    state: dict[str, Any]
    screenshot: Path
    fetched: list[tuple[str, str, int]] = field(default_factory=list)  # method, url, status
    requested: list[str] = field(default_factory=list)  # urls, in the order the page asked for them
    midway_at: int | None = None  # len(requested) when `midway` returned


async def play(
    browser: Browser,
    base_url: str,
    *,
    name: str,
    manifest: str,
    format: str,
    bearer: str,
    session_id: str,
    extra: str = "",
    midway: Callable[[Page, list[str]], Awaitable[None]] | None = None,
) -> Played:
    """Open player.html on the manifest; wait until currentTime passes PLAYED_SECONDS or a fatal error.

    `midway(page, requested so far)` runs once currentTime passes MIDWAY_SECONDS (the page plays on).
    """
    # The bearer rides in the fragment: never sent to a server; the page adds it to the manifest request
    # and to its heartbeats.
    query = (
        f"manifest={quote(manifest, safe='')}&format={format}&session={session_id}{extra}"
        f"#bearer={quote(bearer, safe='')}"
    )
    context = await browser.new_context(
        base_url=base_url, extra_http_headers={"x-forwarded-for": random_ip()}
    )
    context.set_default_timeout(15_000)
    page = await context.new_page()
    problems = PageProblems()
    page.on("console", problems.on_console)
    page.on("pageerror", problems.on_page_error)
    fetched: list[tuple[str, str, int]] = []
    page.on(
        "response", lambda response: fetched.append((response.request.method, response.url, response.status))
    )
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    midway_at = None
    try:
        await page.goto(f"/dev/player.html?{query}")
        deadline = time.monotonic() + 60
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            state = await page.evaluate("() => JSON.parse(JSON.stringify(window.playerState || {}))")
            if state.get("fatal") or state.get("currentTime", 0) > PLAYED_SECONDS:
                break
            if midway is not None and midway_at is None and state.get("currentTime", 0) > MIDWAY_SECONDS:
                await midway(page, list(requested))
                midway_at = len(requested)
            await asyncio.sleep(0.1 if midway is not None else 0.25)
        shot = await screenshot(page, name)
    finally:
        await context.close()
    assert not problems.items, problems.items
    return Played(state, shot, fetched, requested, midway_at)


@pytest.mark.parametrize("format", ["hls", "dash"])
async def test_a_viewer_plays_the_encrypted_stream_through_signed_urls(
    browser: Browser, live_server: LiveServer, title_id: uuid.UUID, database_url: str, format: str
) -> None:
    base_url = live_server.base_url
    headers = await entitled_viewer(database_url)
    async with stream_session(base_url, headers, title_id, format) as (session, manifest):
        assert manifest.startswith(f"{base_url}/api/v1/streaming/{title_id}/manifest?"), manifest
        played = await play(
            browser,
            base_url,
            name=f"playback-{format}",
            manifest=manifest,
            format=format,
            bearer=headers["authorization"].removeprefix("Bearer "),
            session_id=session["session_id"],
        )

    state = played.state
    assert not state.get("fatal"), state
    assert state["currentTime"] > PLAYED_SECONDS and state["playing"], state
    assert played.screenshot.stat().st_size > 0

    # It went the signed way: every request answered, media only under /t/<token>/media/assets/<id>/.
    failed = [item for item in played.fetched if item[2] >= 400]
    assert not failed, failed
    paths = [(method, urlsplit(url).path, urlsplit(url).query) for method, url, _ in played.fetched]
    media = [path for _, path, _ in paths if path.endswith((".m3u8", ".mpd", ".m4s", ".mp4"))]
    segments = [path for path in media if path.endswith(".m4s")]
    assert len(segments) >= 2, media
    assert all(path.startswith("/t/") and "/media/assets/" in path for path in segments), media
    assert not any(path.startswith(("/_storage/", "/media/")) for _, path, _ in paths), paths
    if format == "hls":
        assert state["keyLoads"] >= 1, state
        assert any(path.endswith("/hls.key") for _, path, _ in paths), paths  # the AES-128 key, signed path
    else:
        # ClearKey with the licence URL the MPD names (no clearkey= override), answered with the token.
        assert state["keySystem"] == "org.w3.clearkey" and state["licences"] >= 1, state
        licences = [(path, query) for method, path, query in paths if method == "POST" and "licence" in path]
        assert licences and all("token=" in query for _, query in licences), paths


def _token_in(url: str) -> str | None:
    """The delivery token of a /t/<token>/ URL."""
    path = urlsplit(url).path
    return path.split("/")[2] if path.startswith("/t/") else None


@pytest.mark.parametrize("format", ["hls", "dash"])
async def test_the_player_renews_its_token_by_heartbeat_and_plays_on_after_the_first_expires(
    browser: Browser,
    live_server: LiveServer,
    title_id: uuid.UUID,
    database_url: str,
    format: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.delivery import tokens
    from shared.settings import get_settings
    from shared.streaming import sessions

    base_url = live_server.base_url
    headers = await entitled_viewer(database_url)
    secret = tokens.delivery_secret(get_settings())
    renewed: dict[str, Any] = {}

    async def beat_then_expire_the_first_token(page: Page, requested: list[str]) -> None:
        first = next(token for token in map(_token_in, requested) if token)
        old = tokens.decode(first, secret=secret)
        # A heartbeat in a later second than the first token's (the same claims would sign the same token).
        await asyncio.sleep(max(0.0, old.expires_at - TOKEN_TTL + 1.05 - time.time()))
        fresh = await page.evaluate("() => window.cinemaHeartbeatNow()")
        new = tokens.decode(fresh, secret=secret)
        assert (new.session_id, new.asset_id) == (old.session_id, old.asset_id)
        assert new.expires_at > old.expires_at
        # Playback's clock (which the dev server checks tokens with) stops between the two expiries: from
        # now on the first token is refused, as a minute later for real, and only the fresh one opens media.
        stopped = old.expires_at + 0.5
        monkeypatch.setattr(sessions, "clock", lambda: stopped)
        renewed.update(first=first, fresh=fresh)

    async with stream_session(base_url, headers, title_id, format) as (session, manifest):
        try:
            played = await play(
                browser,
                base_url,
                name=f"playback-renewed-{format}",
                manifest=manifest,
                format=format,
                bearer=headers["authorization"].removeprefix("Bearer "),
                session_id=session["session_id"],
                extra="&buffer=2",  # a 2 s forward buffer: the second 6 s segment comes after the beat
                midway=beat_then_expire_the_first_token,
            )
        finally:
            monkeypatch.undo()  # the real clock again before the session is ended

    state = played.state
    assert renewed, state
    assert not state.get("fatal"), state
    assert state["currentTime"] > PLAYED_SECONDS and state["playing"], state
    assert state["heartbeats"] == 1 and state["token"] == renewed["fresh"], state
    # Every request answered: none went out with the expired first token after the beat.
    failed = [item for item in played.fetched if item[2] >= 400]
    names = {renewed["first"]: "first", renewed["fresh"]: "fresh"}
    assert not failed, [
        (names.get(_token_in(url) or "", "?"), url[-40:], status) for _, url, status in failed
    ]
    assert played.midway_at is not None
    before = [_token_in(url) for url in played.requested[: played.midway_at]]
    after = [url for url in played.requested[played.midway_at :] if _token_in(url)]
    assert renewed["first"] in before
    segments = [url for url in after if urlsplit(url).path.endswith(".m4s")]
    assert segments, played.requested  # the second segment was fetched after the beat...
    assert all(_token_in(url) == renewed["fresh"] for url in after), after  # ...with the fresh token
