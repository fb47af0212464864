"""Browser test harness: the real dev server (pages and API on one origin) and Debian's headless Chromium."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import psycopg
import pytest

from tests.support.identity import random_ip
from tests.support.threaded_server import ThreadedServer

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page


def _unavailable(reason: str) -> NoReturn:
    """Skip on a developer machine without a browser; CI must run these tests, so there it fails."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the browser tests may not be skipped)", pytrace=False)
    pytest.skip(reason)


class LiveServer(ThreadedServer):
    """The dev server app (shared.local.devserver: public/ plus every api/ function) on a free local port."""

    def __init__(self) -> None:
        super().__init__(
            label="the live server", thread_name="browser-live-server", start_timeout=20, stop_timeout=15
        )

    @property
    def base_url(self) -> str:
        """The server's origin."""
        return self.url

    def _build_app(self) -> Any:
        """Build the app at start(), with the settings of that moment."""
        from shared.local.devserver import DevServer

        return DevServer()

    def _serve_forever(self, server: Any, sockets: list[socket.socket]) -> None:
        try:
            asyncio.run(self._serve(server, sockets))
        except BaseException as error:  # reported by start()
            self._error = error

    async def _serve(self, server: Any, sockets: list[socket.socket]) -> None:
        from shared.infra.loop_local import reset_all

        try:
            await server.serve(sockets=sockets)
        finally:
            await reset_all()  # this loop's database pool and Redis client


@contextmanager
def serving(server: LiveServer, **env: str) -> Iterator[LiveServer]:
    """Start `server` with its settings (its own origin as PUBLIC_BASE_URL, plus `env`); restore them after.

    The browser is a client behind a trusted local proxy (X-Forwarded-For per test, see `page`), so each
    test gets its own rate-limit budget, as the API tests do with `random_ip()`.
    """
    from shared.settings import get_settings

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PUBLIC_BASE_URL", server.base_url)
        patch.setenv("TRUSTED_PROXIES", "127.0.0.1")
        for key, value in env.items():
            patch.setenv(key, value)
        get_settings.cache_clear()  # one cache for the process: the server thread reads these too
        try:
            server.start()
            yield server
        finally:
            server.stop()
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    """The platform as `make dev` serves it, with emailed links pointing at this origin."""
    with serving(LiveServer()) as server:
        yield server


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Debian's headless Chromium driven by Playwright (no browser download)."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        _unavailable("chromium is not installed (Debian: apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -r requirements-dev.txt)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


class PageProblems:
    """What went wrong inside the page: uncaught exceptions and Content-Security-Policy violations."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def on_console(self, message: Any) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.items.append(f"CSP: {message.text}")

    def on_page_error(self, error: Any) -> None:
        self.items.append(f"uncaught: {error}")


@pytest.fixture
async def page(browser: Browser, live_server: LiveServer) -> AsyncIterator[Page]:
    """A fresh browser profile on the live server, as a client with its own address."""
    context = await browser.new_context(
        base_url=live_server.base_url, extra_http_headers={"x-forwarded-for": random_ip()}
    )
    context.set_default_timeout(10_000)
    opened = await context.new_page()
    problems = PageProblems()
    opened.on("console", problems.on_console)
    opened.on("pageerror", problems.on_page_error)
    try:
        yield opened
    finally:
        await context.close()
    assert not problems.items, problems.items


async def transcoded_title(
    database_url: str,
    folder: Path,
    name: str,
    *,
    seconds: float = 16.0,
    audio_languages: tuple[str, ...] = ("eng",),
    **fields: Any,
) -> uuid.UUID:
    """A published title (catalog_factory.title's `fields`) whose current asset is a real transcode.

    A generated 640x360 clip of `seconds`, cheap encode settings (ultrafast, the first two rungs), run by the
    real worker dispatch in this process, as tests/browser/test_watch_page.py makes its free title.
    """
    from shared.infra.loop_local import reset_all
    from shared.settings import get_settings
    from tests.support import catalog_factory as factory
    from tests.transcoding.jobs_support import clip, make_source, park_foreign_jobs, queue_job, work

    file = clip(
        folder / "source.mp4", seconds=seconds, width=640, height=360, audio_languages=audio_languages
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDIA_X264_PRESET", "ultrafast")
        patch.setenv("MEDIA_FIRST_RUNGS", "2")
        get_settings.cache_clear()
        await reset_all()
        try:
            async with await psycopg.AsyncConnection.connect(
                database_url, autocommit=True, prepare_threshold=None
            ) as db:
                await park_foreign_jobs(db)
                title_id = await factory.title(db, name, **fields)
                source_id, _ = await make_source(db, file, title_id=title_id)
                await queue_job(database_url, source_id)
                outcomes = await work(kinds=["transcode.run", "events.deliver"])
                assert ("transcode.run", "done") in outcomes, outcomes
        finally:
            get_settings.cache_clear()
            await reset_all()
    return title_id
