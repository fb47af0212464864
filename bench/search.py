"""Catalog search latency over HTTP on a generated catalog, next to a bare primary-key lookup.

Generates a catalog (default 100,000 titles, 300,000 people, ~5 credits per title, 1-3 genres each) in a
fresh database on the embedded PostgreSQL server (or --server-url), built by the real migrations and
bulk-loaded with COPY. Then serves the search routes of api/search.py plus one bench route (select a title
by primary key) with uvicorn in a child process, and measures with an httpx client, request after request:

  fulltext      GET /api/v1/search?q=...       title words, full titles, people's names, synopsis phrases
  fuzzy         GET /api/v1/search?q=...       the same kinds of queries with one typo per word
  autocomplete  GET /api/v1/search/autocomplete?q=...  2-6 typed characters of a title word or a name
  key lookup    GET /api/v1/bench/titles/{id}  the baseline: one indexed primary-key select, same stack

The Redis result cache is off for the run (CATALOG_CACHE_SECONDS=0) and every query is distinct, so each
request reaches PostgreSQL. Kinds are interleaved in rounds so machine noise hits them alike.

    .venv/bin/python bench/search.py [--titles 100000] [--people 300000] [--requests 400] [--explain]
"""

import asyncio
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from _support import (
    add_server_options,
    add_timing_options,
    bench_parser,
    bench_router,
    child_server,
    free_port,
    p50_p95,
    run_server,
    scratch_services,
    send_timed,
)

TARGET_RATIO = 5.0

COMMON = [
    "the",
    "the",
    "the",
    "the",
    "of",
    "of",
    "a",
    "in",
    "and",
    "night",
    "day",
    "love",
    "dark",
    "last",
    "city",
    "man",
    "woman",
    "girl",
    "boy",
    "house",
    "world",
    "war",
    "king",
    "queen",
    "blood",
    "fire",
    "ice",
    "star",
    "moon",
    "sun",
    "river",
    "road",
    "home",
    "heart",
    "secret",
    "story",
    "life",
    "time",
    "shadow",
    "light",
    "dream",
    "game",
    "ghost",
    "lost",
    "black",
    "white",
    "red",
    "blue",
    "golden",
    "silent",
    "wild",
    "little",
    "big",
    "great",
    "new",
    "old",
    "first",
    "final",
    "return",
    "rise",
    "fall",
    "hunt",
    "run",
    "escape",
    "storm",
    "winter",
    "summer",
    "island",
    "sea",
    "mountain",
    "garden",
    "school",
    "family",
    "brother",
    "sister",
    "father",
    "mother",
    "son",
    "daughter",
    "friend",
    "enemy",
    "death",
    "angel",
    "devil",
    "dragon",
    "wolf",
    "tiger",
    "bird",
    "horse",
    "street",
    "money",
    "crime",
    "justice",
    "hero",
    "legend",
    "kingdom",
    "empire",
    "journey",
    "dance",
    "song",
    "music",
    "party",
    "wedding",
    "paradise",
    "echo",
    "edge",
    "beyond",
    "under",
    "after",
    "forever",
    "tomorrow",
    "part",
    "chapter",
    "code",
    "zero",
]
PROSE = [
    "a",
    "the",
    "of",
    "to",
    "and",
    "in",
    "his",
    "her",
    "their",
    "who",
    "when",
    "after",
    "before",
    "with",
    "must",
    "find",
    "save",
    "young",
    "old",
    "man",
    "woman",
    "family",
    "friend",
    "town",
    "city",
    "secret",
    "past",
    "finds",
    "discovers",
    "becomes",
    "tries",
    "learns",
    "fights",
    "against",
    "while",
    "during",
    "years",
    "life",
    "death",
    "love",
    "war",
    "team",
    "group",
    "mysterious",
    "dangerous",
    "strange",
    "small",
    "new",
    "last",
    "one",
    "two",
    "three",
    "across",
    "through",
    "into",
    "from",
    "between",
    "its",
    "world",
    "home",
]
GENRES = [
    "Action",
    "Adventure",
    "Animation",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Family",
    "Fantasy",
    "History",
    "Horror",
    "Music",
    "Mystery",
    "Romance",
    "Science-Fiction",
    "Thriller",
    "War",
    "Western",
    "Sport",
    "Biography",
]
LANGUAGES = ["en"] * 12 + ["fr", "es", "de", "it", "ja", "ko", "pt", "hi", "sv", "zh"]
LEVELS = ["all", "7+", "13+", "16+", "18+"]
FIRST_NAMES = [
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Tom",
    "Emma",
    "Olivia",
    "Liam",
    "Noah",
    "Ava",
    "Sophia",
    "Lucas",
    "Mia",
    "Ethan",
    "Zoë",
    "José",
    "Chloé",
    "Renée",
    "Björn",
    "Søren",
    "Ana",
    "Jürgen",
    "Inés",
    "Agnès",
    "Léa",
    "Hélène",
    "Joël",
    "Éric",
    "Mónica",
    "Nuño",
    "Ångström",
    "Ümit",
    "Akira",
    "Yuki",
    "Hana",
    "Min-jun",
    "Ji-woo",
    "Wei",
    "Li",
    "Priya",
    "Arjun",
    "Fatima",
    "Omar",
    "Kwame",
    "Amara",
    "Lars",
    "Ingrid",
    "Matteo",
    "Giulia",
]
_ONSETS = [
    "b",
    "br",
    "c",
    "ch",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "h",
    "j",
    "k",
    "kl",
    "l",
    "m",
    "n",
    "p",
    "pr",
    "r",
    "s",
    "sh",
    "st",
    "t",
    "th",
    "tr",
    "v",
    "w",
    "z",
]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "y"]
_CODAS = ["", "", "n", "r", "l", "s", "th", "x", "m", "nd", "rk"]
_ACCENTED = {"a": "á", "e": "é", "o": "ö", "u": "ü", "i": "í"}


def _word(rng: random.Random, syllables: int) -> str:
    word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)) + rng.choice(_CODAS)
    if rng.random() < 0.08:  # some names and words carry accents, as real catalogs do
        position = rng.randrange(len(word))
        word = word[:position] + _ACCENTED.get(word[position], word[position]) + word[position + 1 :]
    return word


def _vocabulary(rng: random.Random, size: int, syllables: tuple[int, int] = (2, 3)) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add(_word(rng, rng.randint(*syllables)))
    return sorted(words)


def _skewed(rng: random.Random, items: list[Any]) -> Any:
    """An item, the first ones much more often (a cheap Zipf-like pick)."""
    return items[int(len(items) * rng.random() ** 3)]


@dataclass
class Catalog:
    """What was generated, kept to build realistic queries afterwards."""

    titles: list[tuple[str, str, str]] = field(default_factory=list)  # id, title, synopsis
    people: list[tuple[str, str]] = field(default_factory=list)  # id, name
    credited: list[int] = field(default_factory=list)  # indexes of people with a credit


def _title(rng: random.Random, words: list[str]) -> str:
    c = lambda: _skewed(rng, COMMON).capitalize()  # noqa: E731
    p = lambda: rng.choice(words).capitalize()  # noqa: E731
    pattern = rng.randrange(9)
    return [
        lambda: f"The {c()} {p()}",
        lambda: p(),
        lambda: f"{p()} {p()}",
        lambda: f"The {c()} of {p()}",
        lambda: f"{c()} {c()} {p()}",
        lambda: f"{p()}'s {c()}",
        lambda: f"{c()} in {p()}",
        lambda: f"{p()} {rng.randint(2, 5)}",
        lambda: f"{c()} {p()} {c()}",
    ][pattern]()


def _synopsis(rng: random.Random, words: list[str], length: int) -> str:
    return (
        " ".join(
            _skewed(rng, PROSE) if rng.random() < 0.55 else rng.choice(words) for _ in range(length)
        ).capitalize()
        + "."
    )


def _pg_array(values: list[str]) -> str:
    return (
        "{" + ",".join('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values) + "}"
    )


async def generate(url: str, titles: int, people: int, seed: int = 7) -> Catalog:
    """Bulk-load the catalog with COPY: links first, then titles (their trigger builds each document once)."""
    import psycopg

    rng = random.Random(seed)
    title_words = _vocabulary(rng, max(50, titles // 12))
    prose_words = _vocabulary(rng, max(200, titles // 5), (1, 3))
    last_names = [w.capitalize() for w in _vocabulary(rng, max(100, people // 60))]
    first_names = FIRST_NAMES + [w.capitalize() for w in _vocabulary(rng, 300, (1, 2))]
    catalog = Catalog()
    now = time.time()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("set maintenance_work_mem = '256MB'")
        tables = [
            "catalog_titles",
            "catalog_people",
            "catalog_credits",
            "catalog_terms",
            "catalog_title_terms",
            "catalog_search_words",
        ]
        cursor = await conn.execute(
            """select tablename, indexname, indexdef from pg_indexes i
               where schemaname = 'public' and tablename = any(%s)
                 and not exists (select 1 from pg_constraint c where c.conname = i.indexname)""",
            (tables,),
        )
        secondary = await cursor.fetchall()
        for _table, name, _definition in secondary:  # built once after the load: far faster than per row
            await conn.execute(f'drop index public."{name}"')

        async def rebuild(for_tables: set[str]) -> None:
            for table, _name, definition in secondary:
                if table in for_tables:
                    await conn.execute(definition)
            for table in for_tables:
                await conn.execute(f"analyze public.{table}")

        genre_ids = [str(uuid.uuid4()) for _ in GENRES]
        title_ids = [str(uuid.uuid4()) for _ in range(titles)]
        # Links go in with triggers off (and so foreign keys unchecked: the titles come next, by design).
        await conn.execute("set session_replication_role = replica")
        async with conn.cursor().copy("copy public.catalog_terms (id, kind, slug, name) from stdin") as copy:
            for term_id, name in zip(genre_ids, GENRES, strict=True):
                await copy.write_row((term_id, "genre", name.lower(), name.replace("-", " ")))
        async with conn.cursor().copy("copy public.catalog_people (id, name, slug) from stdin") as copy:
            for index in range(people):
                name = f"{rng.choice(first_names)} {rng.choice(last_names)}"
                person_id = str(uuid.uuid4())
                catalog.people.append((person_id, name))
                await copy.write_row((person_id, name, f"p{index}"))
        credited: set[int] = set()
        async with conn.cursor().copy(
            "copy public.catalog_credits (title_id, person_id, role, job, character, billing_order)"
            " from stdin"
        ) as copy:
            for title_id in title_ids:
                for order in range(rng.randint(3, 5)):
                    person = int(people * rng.random() ** 2)  # some actors are in many titles
                    credited.add(person)
                    await copy.write_row(
                        (title_id, catalog.people[person][0], "cast", None, "Someone", order)
                    )
                person = rng.randrange(people)
                credited.add(person)
                await copy.write_row((title_id, catalog.people[person][0], "crew", "director", None, 0))
        catalog.credited = sorted(credited)
        async with conn.cursor().copy(
            "copy public.catalog_title_terms (title_id, term_id) from stdin"
        ) as copy:
            for title_id in title_ids:
                for term_id in rng.sample(genre_ids, rng.randint(1, 3)):
                    await copy.write_row((title_id, term_id))
        await conn.execute("set session_replication_role = origin")
        # What the skipped triggers would have done: the typo dictionary learns the names.
        await conn.execute(
            """select cinema_private.catalog_search_learn(array(
                 select name from public.catalog_people union all select name from public.catalog_terms))"""
        )
        await rebuild({"catalog_people", "catalog_credits", "catalog_terms", "catalog_title_terms"})
        print(f"  people, credits, genres: {time.time() - now:.0f} s", flush=True)

        columns = (
            "id, kind, slug, title, original_title, synopsis_short, synopsis_long, release_year, "
            "original_language, maturity_level, tags, status, available_until, country_allow, popularity"
        )
        async with conn.cursor().copy(f"copy public.catalog_titles ({columns}) from stdin") as copy:
            for index, title_id in enumerate(title_ids):
                name = _title(rng, title_words)
                synopsis = _synopsis(rng, prose_words, rng.randint(18, 34))
                catalog.titles.append((title_id, name, synopsis))
                status = "published" if rng.random() < 0.97 else rng.choice(["draft", "archived"])
                await copy.write_row(
                    (
                        title_id,
                        "series" if rng.random() < 0.2 else "movie",
                        f"t{index}",
                        name,
                        _title(rng, title_words) if rng.random() < 0.1 else None,
                        synopsis,
                        _synopsis(rng, prose_words, rng.randint(30, 60)) if rng.random() < 0.3 else None,
                        rng.randint(1950, 2025),
                        rng.choice(LANGUAGES),
                        _skewed(rng, LEVELS[::-1]),
                        _pg_array(rng.sample(COMMON[10:], rng.randint(0, 2))),
                        status,
                        "2001-01-01T00:00:00Z" if rng.random() < 0.01 else None,
                        _pg_array(["US"]) if rng.random() < 0.02 else "{}",
                        round(1000 * rng.random() ** 4, 3),
                    )
                )
        await rebuild({"catalog_titles", "catalog_search_words"})
        await conn.execute("vacuum analyze")
    print(f"  generated in {time.time() - now:.0f} s", flush=True)
    return catalog


# --- queries ------------------------------------------------------------------------------------------


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 5:
        return word
    position = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:  # a letter missed
        return word[:position] + word[position + 1 :]
    if kind == 1:  # two letters swapped
        return word[: position - 1] + word[position] + word[position - 1] + word[position + 1 :]
    return word[:position] + rng.choice("aeioustrnl") + word[position + 1 :]  # a wrong letter


def _distinctive(name: str) -> list[str]:
    words = [w.strip("'s").lower() for w in name.split()]
    return [w for w in words if w and w not in COMMON and not w.isdigit()] or [name.split()[0].lower()]


def queries(catalog: Catalog, count: int, seed: int = 11) -> dict[str, list[str]]:
    """Distinct queries per kind, from what the catalog really holds."""
    rng = random.Random(seed)
    kinds: dict[str, set[str]] = {"fulltext": set(), "fuzzy": set(), "autocomplete": set()}

    def a_title() -> tuple[str, str, str]:
        return rng.choice(catalog.titles)

    def a_name() -> str:
        return catalog.people[rng.choice(catalog.credited)][1]

    def phrase(synopsis: str) -> str:
        """2-3 neighbouring words of a synopsis, one of them not a common word (what a viewer recalls)."""
        words = synopsis.rstrip(".").lower().split()
        for _ in range(20):
            start = rng.randrange(len(words) - 2)
            chosen = words[start : start + rng.randint(2, 3)]
            if any(word not in PROSE for word in chosen):
                return " ".join(chosen)
        return " ".join(words[:3])

    makers = {
        "fulltext": [
            lambda: " ".join(_distinctive(a_title()[1])),
            lambda: a_title()[1].lower(),
            lambda: a_name(),
            lambda: phrase(a_title()[2]),
        ],
        "fuzzy": [
            lambda: " ".join(_typo(rng, word) for word in _distinctive(a_title()[1])),
            lambda: " ".join(_typo(rng, word) for word in a_name().lower().split()),
        ],
        "autocomplete": [
            lambda: _distinctive(a_title()[1])[0][: rng.randint(2, 6)],
            lambda: a_title()[1].lower()[: rng.randint(3, 9)],
            lambda: a_name().split()[-1].lower()[: rng.randint(2, 6)],
        ],
    }
    work: dict[str, list[str]] = {}
    for kind, found in kinds.items():
        for _ in range(50 * count):  # a tiny catalog may not hold `count` distinct queries of a kind
            if len(found) >= count:
                break
            found.add(rng.choice(makers[kind])().strip() or "x")
        distinct = sorted(found, key=lambda _: rng.random())
        work[kind] = (distinct * (count // len(distinct) + 1))[:count]
    return work


# --- the server -----------------------------------------------------------------------------------------


def bench_app() -> Any:
    """api/search.py's routers plus the baseline route."""
    from shared.errors import NotFound
    from shared.http.app import create_app
    from shared.infra.db import Tx
    from shared.search.routes import router as search_router

    bench = bench_router()

    @bench.get("/titles/{title_id}")
    async def title_by_id(title_id: uuid.UUID, tx: Tx) -> dict[str, str]:
        cursor = await tx.execute("select id, title from public.catalog_titles where id = %s", (title_id,))
        row = await cursor.fetchone()
        if row is None:
            raise NotFound()
        return {"id": str(row[0]), "title": row[1]}

    return create_app(search_router, bench, group="search")


def serve(port: int) -> None:
    """Run the bench app (child process)."""
    run_server(bench_app(), port)


async def measure(base: str, work: dict[str, list[str]], rounds: int) -> dict[str, list[float]]:
    """Latency in ms of every request, kinds interleaved round by round."""
    import httpx

    paths = {
        "fulltext": ("/api/v1/search", "q"),
        "fuzzy": ("/api/v1/search", "q"),
        "autocomplete": ("/api/v1/search/autocomplete", "q"),
    }
    timings: dict[str, list[float]] = {kind: [] for kind in work}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def one(kind: str, value: str) -> float:
            if kind == "key lookup":
                request = client.build_request("GET", f"/api/v1/bench/titles/{value}")
            else:
                path, name = paths[kind]
                request = client.build_request("GET", path, params={name: value})
            elapsed, response = await send_timed(client, request)
            if response.status_code != 200:
                raise SystemExit(f"{kind} {value!r}: HTTP {response.status_code} {response.text[:300]}")
            return elapsed

        for kind, values in work.items():  # warm-up: connections, pools, caches, plans
            for value in values[:20]:
                await one(kind, value)
        for round_number in range(rounds):
            for kind, values in work.items():
                share = values[20:]
                size = len(share) // rounds
                for value in share[round_number * size : (round_number + 1) * size]:
                    timings[kind].append(await one(kind, value))
    return timings


async def explain(url: str, work: dict[str, list[str]]) -> None:
    """EXPLAIN ANALYZE of one query of each kind, as the endpoints run them: which indexes, how long."""
    import psycopg

    from shared.catalog.visibility import Viewer
    from shared.search import repository, service

    viewer = Viewer(country="US")
    async with await psycopg.AsyncConnection.connect(url, prepare_threshold=None) as conn:
        await conn.execute("select set_config('search_path', 'public, extensions', false)")
        for kind in ("fulltext", "fuzzy", "autocomplete"):
            text = work[kind][0]
            if kind == "autocomplete":
                words = service.prefix_words(text)
                params = repository.suggestion_params(
                    viewer, typed=text, words=words, prefix=service.prefix_query(words),
                    like=service.like_prefix(text), limit=8,
                )  # fmt: skip
                statements = [(repository._SUGGESTIONS, params)]
            else:
                query = repository.SearchQuery(
                    text=text, fuzzy=service.fuzzy_text(text), excluded=service.excluded_text(text),
                    phrases=service.phrases_text(text), limit=21,
                )  # fmt: skip
                statements = [(repository._SEARCH, repository.search_params(viewer, query))]
            for sql, params in statements:
                cursor = await conn.execute(
                    ("explain (analyze, buffers off, costs off) " + sql).encode(), params
                )
                lines = [row[0] for row in await cursor.fetchall()]
                print(f"\n-- {kind}: {text!r}")
                for line in lines:
                    if any(word in line for word in ("Index", "Seq Scan", "Execution Time", "One-Time")):
                        print("   " + line.strip())


def main() -> int:
    """Generate, serve, measure, print the table."""
    parser = bench_parser(__doc__)
    parser.add_argument("--titles", type=int, default=100_000)
    parser.add_argument("--people", type=int, default=300_000)
    add_timing_options(parser, requests=400)
    add_server_options(parser)
    parser.add_argument("--keep", action="store_true", help="keep the bench database (its URL is printed)")
    parser.add_argument(
        "--explain", action="store_true", help="print EXPLAIN ANALYZE of a query of each kind"
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0

    from shared.infra.migrations import migrate

    # The scratch directory (embedded Redis) goes with the run unless --keep asks for the database.
    keep = args.keep
    with scratch_services(args.server_url, keep_database=keep, remove_directory=not keep) as scratch:
        url = scratch.url
        asyncio.run(migrate(url))
        print(f"generating {args.titles} titles, {args.people} people in {url.split('?')[0]}", flush=True)
        catalog = asyncio.run(generate(url, args.titles, args.people))
        work: dict[str, list[str]] = queries(catalog, args.requests + 20)
        rng = random.Random(5)
        work["key lookup"] = [rng.choice(catalog.titles)[0] for _ in range(args.requests + 20)]
        if args.explain:
            asyncio.run(explain(url, work))
        port = free_port()
        # The Redis result cache is off: every request reaches PostgreSQL.
        env = scratch.env(CATALOG_CACHE_SECONDS="0")
        with child_server(__file__, port, env, "/api/v1/search/openapi.json") as base:
            timings = asyncio.run(measure(base, work, args.rounds))

    base_p95 = p50_p95(timings["key lookup"])[1]
    print(
        f"\n{args.titles} titles, {args.people} people, {len(timings['key lookup'])} requests per kind "
        "over HTTP (uvicorn + httpx, one at a time), Redis result cache off"
    )
    print(f"| request | p50 ms | p95 ms | p95 / key lookup p95 | verdict (<= {TARGET_RATIO:g}x) |")
    print("|---|---:|---:|---:|---|")
    for kind in ("key lookup", "fulltext", "fuzzy", "autocomplete"):
        values = timings[kind]
        p50, p95 = p50_p95(values)
        ratio = p95 / base_p95
        verdict = "baseline" if kind == "key lookup" else ("PASS" if ratio <= TARGET_RATIO else "FAIL")
        print(f"| {kind} | {p50:.2f} | {p95:.2f} | {ratio:.2f} | {verdict} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
