"""Relevance: viewers' queries (misspelt, accented or not, names, synopsis phrases, prefixes, websearch
syntax) find the title they mean in the top 3, over HTTP on a fixed 66-title catalog."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.search.conftest import AUTOCOMPLETE, SEARCH, search_client
from tests.search.relevance_catalog import load

# (query, the title expected among the first three results)
QUERIES: list[tuple[str, str]] = [
    # misspellings
    ("godfathr", "The Godfather"),
    ("the godfater", "The Godfather"),
    ("interstelar", "Interstellar"),
    ("shawshank redemtion", "The Shawshank Redemption"),
    ("jurasic park", "Jurassic Park"),
    ("sprited away", "Spirited Away"),
    ("gladiater", "Gladiator"),
    ("stranger thngs", "Stranger Things"),
    ("breakng bad", "Breaking Bad"),
    ("schindlers list", "Schindler's List"),
    ("lord of the rigns", "The Lord of the Rings: The Fellowship of the Ring"),
    ("spirtied away", "Spirited Away"),
    ("tom hnaks", "Forrest Gump"),
    # accents, both ways
    ("amelie", "Amélie"),
    ("Amélie", "Amélie"),
    ("AMELIE POULAIN", "Amélie"),
    ("leon the professional", "Léon: The Professional"),
    ("les miserables", "Les Misérables"),
    ("creme brulee", "Crème Brûlée"),
    ("y tu mama tambien", "Y tu mamá también"),
    ("la casa de papél", "Money Heist"),
    ("la vita e bella", "Life Is Beautiful"),
    # people: full names, accents, misspellings, directors
    ("tom hanks", "Forrest Gump"),
    ("tom hankss", "Forrest Gump"),
    ("keanu reeves", "The Matrix"),
    ("keanu reves", "The Matrix"),
    ("sigourney weaver", "Alien"),
    ("leonardo di caprio", "Inception"),
    ("penelope cruz", "Volver"),
    ("almodovar", "Volver"),
    ("daniel bruhl", "Good Bye Lenin!"),
    ("bjork", "Dancer in the Dark"),
    ("inarritu", "Amores perros"),
    ("miyazaki", "Spirited Away"),
    ("cristopher nolan", "The Dark Knight"),
    ("audrey tatou", "Amélie"),
    ("ursula corbero", "Money Heist"),
    # synopsis phrases (stemming: "orphan" finds "orphaned", "with" is not in the text)
    ("short-term memory loss", "Memento"),
    ("killer shark", "Jaws"),
    ("dream sharing technology", "Inception"),
    ("wormhole in space", "Interstellar"),
    ("chemistry teacher with cancer", "Breaking Bad"),
    ("orphan boy school of wizardry", "Harry Potter and the Philosopher's Stone"),
    ("robbers stealing from the royal mint", "Money Heist"),
    ("submarine", "Das Boot"),
    ("clown preys on children", "It"),
    ("paleontologist protects kids", "Jurassic Park"),
    ("convict friendship redemption", "The Shawshank Redemption"),
    ("hobbit destroys the ring", "The Lord of the Rings: The Fellowship of the Ring"),
    # prefixes typed into the search box
    ("interst", "Interstellar"),
    ("shawsh", "The Shawshank Redemption"),
    ("jurassic", "Jurassic Park"),
    # websearch syntax
    ('"east germany"', "Good Bye Lenin!"),
    ('"the dark knight"', "The Dark Knight"),
    ("godfather -part", "The Godfather"),
    ("alien -aliens", "Alien"),
    ("heist -money", "Inception"),
    ("spielberg shark", "Jaws"),
    ("totoro or ponyo", "Ponyo"),
    ("totoro or ponyo", "My Neighbor Totoro"),
    ("mafia", "The Godfather"),
    # short titles that are English stop words
    ("it", "It"),
    ("up", "Up"),
    ("her", "Her"),
]

# (typed so far, a title expected among the first three suggestions)
PREFIXES: list[tuple[str, str]] = [
    ("godf", "The Godfather"),
    ("inter", "Interstellar"),
    ("ame", "Amélie"),
    ("amé", "Amélie"),
    ("spir", "Spirited Away"),
    ("la la", "La La Land"),
    ("jurass", "Jurassic Park"),
    ("fell", "The Lord of the Rings: The Fellowship of the Ring"),
    ("mise", "Les Misérables"),
    ("crème b", "Crème Brûlée"),
]


@pytest.fixture(scope="module")
async def catalog(search_db: str) -> dict[str, uuid.UUID]:
    """The relevance catalog, loaded once into the module's database."""
    async with await psycopg.AsyncConnection.connect(search_db, autocommit=True) as conn:
        return await load(conn)


async def _search(**params: Any) -> dict[str, Any]:
    async with search_client() as client:
        response = await client.get(SEARCH, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(("query", "expected"), QUERIES, ids=[q for q, _ in QUERIES])
async def test_expected_title_is_in_the_top_three(
    catalog: dict[str, uuid.UUID], query: str, expected: str
) -> None:
    body = await _search(q=query)
    top = [item["title"] for item in body["items"][:3]]
    assert expected in top, f"{query!r}: {top} (then {[i['title'] for i in body['items'][3:8]]})"


@pytest.mark.parametrize(("typed", "expected"), PREFIXES, ids=[p for p, _ in PREFIXES])
async def test_autocomplete_completes_title_prefixes(
    catalog: dict[str, uuid.UUID], typed: str, expected: str
) -> None:
    async with search_client() as client:
        response = await client.get(AUTOCOMPLETE, params={"q": typed})
    assert response.status_code == 200, response.text
    top = [item["title"] for item in response.json()["titles"][:3]]
    assert expected in top, f"{typed!r}: {top}"


async def test_the_relevance_set_is_big_enough() -> None:
    assert len(QUERIES) >= 30
    kinds = {"misspellings": QUERIES[:13], "accents": QUERIES[13:22], "people": QUERIES[22:37]}
    assert all(len(queries) >= 5 for queries in kinds.values())


async def test_exclusion_removes_the_excluded_title(catalog: dict[str, uuid.UUID]) -> None:
    body = await _search(q="godfather -part")
    titles = [item["title"] for item in body["items"]]
    assert titles[0] == "The Godfather"
    assert "The Godfather Part II" not in titles
    body = await _search(q="alien -aliens")
    assert "Aliens" not in [item["title"] for item in body["items"]]


async def test_exact_phrase_needs_the_words_together(catalog: dict[str, uuid.UUID]) -> None:
    # "memory loss" appears in Memento's synopsis; "loss memory" appears nowhere in that order.
    assert [item["title"] for item in (await _search(q='"memory loss"'))["items"]][:1] == ["Memento"]
    titles = [item["title"] for item in (await _search(q='"loss memory"'))["items"]]
    assert "Memento" not in titles[:1]


async def test_results_say_what_matched(catalog: dict[str, uuid.UUID]) -> None:
    by_title = {item["title"]: item for item in (await _search(q="godfather"))["items"]}
    assert by_title["The Godfather"]["matched"] == "title"
    first = (await _search(q="sigourney weaver"))["items"][0]
    assert first["matched"] == "person"
    first = (await _search(q="killer shark"))["items"][0]
    assert (first["title"], first["matched"]) == ("Jaws", "synopsis")
    fuzzy = (await _search(q="godfathr"))["items"][0]
    assert (fuzzy["title"], fuzzy["matched"]) == ("The Godfather", "title")
    assert set(fuzzy) >= {"id", "kind", "title", "slug", "year", "maturity_level", "images", "score"}


async def test_facets_count_every_match_not_only_the_page(catalog: dict[str, uuid.UUID]) -> None:
    body = await _search(q="tom hanks", limit=1)
    assert len(body["items"]) == 1 and body["next_cursor"]
    assert body["total"] == 4  # Forrest Gump, Cast Away, Saving Private Ryan, Toy Story
    decades = {facet["value"]: facet["count"] for facet in body["facets"]["decade"]}
    assert decades == {"1990": 3, "2000": 1}
    genres = {facet["value"]: facet["count"] for facet in body["facets"]["genre"]}
    assert genres["drama"] == 3 and genres["animation"] == 1
    maturity = {facet["value"]: facet["count"] for facet in body["facets"]["maturity"]}
    assert maturity == {"all": 1, "13+": 2, "16+": 1}


async def test_filters_narrow_results_and_facets_ignore_their_own_filter(
    catalog: dict[str, uuid.UUID],
) -> None:
    body = await _search(q="tom hanks", decade=1990)
    assert body["total"] == 3
    assert {item["title"] for item in body["items"]} == {"Forrest Gump", "Saving Private Ryan", "Toy Story"}
    # The decade facet still offers the other decade (multi-select), the others count the filtered set.
    assert {facet["value"] for facet in body["facets"]["decade"]} == {"1990", "2000"}
    assert sum(facet["count"] for facet in body["facets"]["maturity"]) == 3
    body = await _search(q="miyazaki", genre="fantasy")
    assert [item["title"] for item in body["items"]] == ["Spirited Away"]
    body = await _search(q="miyazaki", language=["ja"], maturity=["all"])
    assert {item["title"] for item in body["items"]} == {"My Neighbor Totoro", "Ponyo"}
    languages = {facet["value"]: facet["count"] for facet in body["facets"]["language"]}
    assert languages == {"ja": 2}


async def test_pages_follow_each_other_without_overlap(catalog: dict[str, uuid.UUID]) -> None:
    everything = await _search(q="drama", limit=50)
    assert everything["total"] > 5
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"q": "drama", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = await _search(**params)
        seen.extend(item["id"] for item in body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == [item["id"] for item in everything["items"]]
    assert len(set(seen)) == len(seen) == everything["total"]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("tom h", "Tom Hanks"), ("hanks", "Tom Hanks"), ("penelope", "Penélope Cruz"), ("cruz", "Penélope Cruz"),
     ("miyaz", "Hayao Miyazaki"), ("björ", "Björk"), ("bjor", "Björk")],
)  # fmt: skip
async def test_autocomplete_suggests_people_by_name_or_last_name(
    catalog: dict[str, uuid.UUID], typed: str, expected: str
) -> None:
    async with search_client() as client:
        response = await client.get(AUTOCOMPLETE, params={"q": typed})
    assert response.status_code == 200, response.text
    people = response.json()["people"]
    assert expected in [person["name"] for person in people[:2]], people
    assert set(people[0]) >= {"id", "name", "slug", "images"}
