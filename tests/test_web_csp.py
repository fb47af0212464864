"""The web client's Content-Security-Policy: scripts only from the site, production hosts where needed.

Locally storage, images and segments are served from the page's own origin, so the browser tests cannot
notice a policy that would block Supabase Storage, Cloudinary or the CDN in production: this test does.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PUBLIC = Path(__file__).resolve().parents[1] / "public"
PAGES = sorted(path for path in PUBLIC.rglob("*.html") if "vendor" not in path.parts)
# Pages showing catalog images or avatars (storage or Cloudinary URLs in production).
SHOWS_IMAGES = {
    "index.html",
    "browse/index.html",
    "search/index.html",
    "title/index.html",
    "watch/index.html",
    "profiles/index.html",
    "account/index.html",
    "account/billing/index.html",
    "console/index.html",
    "console/upload/index.html",
}
PLAYS_VIDEO = {"title/index.html", "watch/index.html", "console/upload/index.html", "dev/player.html"}
# Pages fetching from storage or the CDN: HLS playlists, segments and keys, direct uploads.
FETCHES_ELSEWHERE = PLAYS_VIDEO | {"profiles/index.html", "console/index.html"}
# Pages that talk to the API only: nothing else may receive what is typed or shown there.
API_ONLY = {
    "login/index.html",
    "signup/index.html",
    "reset-password/index.html",
    "index.html",
    "browse/index.html",
    "search/index.html",
    "account/index.html",
    "account/billing/index.html",
}


def policy(page: Path) -> dict[str, list[str]]:
    """The page's CSP meta as {directive: sources}."""
    match = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page.read_text())
    assert match, f"{page} has no Content-Security-Policy"
    directives = [part.split() for part in match[1].split(";") if part.strip()]
    return {words[0]: words[1:] for words in directives}


def name(page: Path) -> str:
    """The page's path under public/."""
    return page.relative_to(PUBLIC).as_posix()


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_scripts_come_only_from_the_site(page: Path) -> None:
    csp = policy(page)
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["base-uri"] == ["'none'"]
    assert not [source for sources in csp.values() for source in sources if "unsafe" in source]


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_production_hosts_are_allowed_where_the_page_needs_them(page: Path) -> None:
    csp, path = policy(page), name(page)
    if path in SHOWS_IMAGES:
        assert "https:" in csp["img-src"], path
    if path in FETCHES_ELSEWHERE:
        assert "https:" in csp["connect-src"], path
    if path in PLAYS_VIDEO:
        assert "https:" in csp["media-src"] and "blob:" in csp["media-src"], path
    if path in API_ONLY:
        assert csp["connect-src"] == ["'self'"], path


def test_every_listed_page_exists() -> None:
    names = {name(page) for page in PAGES}
    assert names >= SHOWS_IMAGES | FETCHES_ELSEWHERE | API_ONLY
