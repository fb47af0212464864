"""Browser test harness: the real dev server (pages and API on one origin) and Debian's headless Chromium."""

from __future__ import annotations

import asyncio
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from tests.support import catalog_factory as factory
from tests.support.browser_pages import unavailable
from tests.support.identity import random_ip
from tests.support.playback import _add_subtitles
from tests.support.threaded_server import ThreadedServer

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page


class LiveServer(ThreadedServer):
    """The dev server app (shared.local.devserver: public/ plus every api/ function) on a free local port."""

    def __init__(self, public: Path | None = None) -> None:
        super().__init__(
            label="the live server", thread_name="browser-live-server", start_timeout=20, stop_timeout=15
        )
        # Served instead of public/ when given (a built copy: tests/support/web_build.py).
        self.public = public

    @property
    def base_url(self) -> str:
        """The server's origin."""
        return self.url

    def _build_app(self) -> Any:
        """Build the app at start(), with the settings of that moment."""
        from shared.local.devserver import DevServer

        return DevServer(public=self.public)

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
        unavailable("chromium is not installed (Debian: apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install -r requirements-dev.txt)")
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


@dataclass(frozen=True)
class Series:
    """A published series whose season 1 episodes each have a real transcode as their current asset."""

    title_id: uuid.UUID
    episode_ids: tuple[uuid.UUID, ...]  # season 1, in order
    episode_names: tuple[str, ...]


async def transcoded_title(
    database_url: str,
    folder: Path,
    name: str,
    *,
    seconds: float = 16.0,
    size: tuple[int, int] = (640, 360),
    audio_languages: tuple[str, ...] = ("eng",),
    subtitles: bool = False,
    **fields: Any,
) -> uuid.UUID:
    """A published title (catalog_factory.title's `fields`) whose current asset is a real transcode.

    A generated clip of `seconds` (640x360: two rungs, 240p and 360p), with tests/support/playback.py's
    English and forced French subtitle tracks if `subtitles`.
    """

    async def content(db: psycopg.AsyncConnection[Any]) -> list[tuple[uuid.UUID, uuid.UUID | None]]:
        title_id = await factory.title(db, name, **fields)
        if subtitles:
            await _add_subtitles(db, title_id)
        return [(title_id, None)]

    made = await _transcoded(database_url, folder, content, seconds=seconds, size=size, audio=audio_languages)
    return made[0][0]


async def transcoded_series(
    database_url: str,
    folder: Path,
    name: str,
    episodes: tuple[str, ...],
    *,
    seconds: float = 16.0,
    size: tuple[int, int] = (320, 180),
    **fields: Any,
) -> Series:
    """A published series with one season of `episodes` (their names), each with a real transcode.

    One generated clip serves every episode (one source and one cheap encode each, queued together and run
    by one worker loop); 320x180 by default: a single rung is enough for a series' navigation tests.
    """

    async def content(db: psycopg.AsyncConnection[Any]) -> list[tuple[uuid.UUID, uuid.UUID | None]]:
        title_id = await factory.title(db, name, kind="series", **fields)
        await factory.season(db, title_id, 1, episodes=len(episodes))
        made: list[tuple[uuid.UUID, uuid.UUID | None]] = []
        for number, episode_name in enumerate(episodes, start=1):
            cursor = await db.execute(
                "update public.catalog_episodes set name = %s where title_id = %s and number = %s"
                " returning id",
                (episode_name, title_id, number),
            )
            row = await cursor.fetchone()
            assert row is not None
            made.append((title_id, uuid.UUID(str(row[0]))))
        return made

    made = await _transcoded(database_url, folder, content, seconds=seconds, size=size, audio=("eng",))
    return Series(
        title_id=made[0][0],
        episode_ids=tuple(episode for _, episode in made if episode is not None),
        episode_names=episodes,
    )


async def _transcoded(
    database_url: str,
    folder: Path,
    content: Callable[[psycopg.AsyncConnection[Any]], Awaitable[list[tuple[uuid.UUID, uuid.UUID | None]]]],
    *,
    seconds: float,
    size: tuple[int, int],
    audio: tuple[str, ...],
) -> list[tuple[uuid.UUID, uuid.UUID | None]]:
    """Make the catalog rows (`content`: the (title, episode) pairs to give media), then transcode for each.

    Cheap encode settings (ultrafast, the first two rungs), run by the real worker dispatch in this process.
    """
    from shared.infra.loop_local import reset_all
    from shared.settings import get_settings
    from tests.transcoding.jobs_support import clip, make_source, park_foreign_jobs, queue_job, work

    file = clip(folder / "source.mp4", seconds=seconds, width=size[0], height=size[1], audio_languages=audio)
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
                made = await content(db)
                for title_id, episode_id in made:
                    source_id, _ = await make_source(db, file, title_id=title_id)
                    if episode_id is not None:  # an episode's media: the asset is made for the episode
                        await db.execute(
                            "update public.media_sources set episode_id = %s where id = %s",
                            (episode_id, source_id),
                        )
                    await queue_job(database_url, source_id)
                outcomes = await work(kinds=["transcode.run", "events.deliver"])
                assert outcomes.count(("transcode.run", "done")) == len(made), outcomes
        finally:
            get_settings.cache_clear()
            await reset_all()
    return made
