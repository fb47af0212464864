"""The search endpoints' contract: errors, the Redis result cache, cache headers, the OpenAPI document, and
documents that follow every change of a title, its people and its genres."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.search.conftest import AUTOCOMPLETE, SEARCH, search_client
from tests.support import catalog_factory as factory
from tests.support.identity import signed_in_user


async def _get(path: str, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    async with search_client() as client:
        response = await client.get(path, params=params, headers=headers or {})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _titles(body: dict[str, Any]) -> list[str]:
    return [item["title"] for item in body["items"]]


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        (SEARCH, {}, 422, "validation_failed"),
        (SEARCH, {"q": ""}, 422, "validation_failed"),
        (SEARCH, {"q": "x" * 201}, 422, "validation_failed"),
        (SEARCH, {"q": "   "}, 422, "query_empty"),
        (SEARCH, {"q": "up", "decade": "1995"}, 422, "invalid_decade"),
        (SEARCH, {"q": "up", "decade": "1500"}, 422, "validation_failed"),
        (SEARCH, {"q": "up", "maturity": "PG"}, 422, "validation_failed"),
        (SEARCH, {"q": "up", "genre": "Drama!"}, 422, "validation_failed"),
        (SEARCH, {"q": "up", "language": "english"}, 422, "validation_failed"),
        (SEARCH, {"q": "up", "limit": "0"}, 422, "validation_failed"),
        (SEARCH, {"q": "up", "cursor": "not-a-cursor"}, 400, "invalid_cursor"),
        (SEARCH, {"q": "up", "cursor": "WyJhIl0"}, 400, "invalid_cursor"),  # ["a"]
        (AUTOCOMPLETE, {}, 422, "validation_failed"),
        (AUTOCOMPLETE, {"q": "y" * 101}, 422, "validation_failed"),
        (AUTOCOMPLETE, {"q": "\t"}, 422, "query_empty"),
    ],
)
async def test_bad_input_is_a_problem_not_a_crash(
    search_db: str, path: str, params: dict[str, str], status: int, code: str
) -> None:
    async with search_client() as client:
        response = await client.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


@pytest.mark.parametrize("q", ['"', "-", "or", "!!! ???", "' & | : *", '-"" -', "(a | b)", "é"])
async def test_query_syntax_never_breaks_the_search(search_db: str, q: str) -> None:
    body = await _get(SEARCH, q=q)
    assert body["items"] == [] or isinstance(body["items"], list)
    suggestions = await _get(AUTOCOMPLETE, q=q)
    assert isinstance(suggestions["titles"], list)


async def test_documents_follow_titles_people_credits_and_genres(search_db: str) -> None:
    tag = uuid.uuid4().hex[:6]
    async with await psycopg.AsyncConnection.connect(search_db, autocommit=True) as db:
        title_id = await factory.title(db, f"Quokka Harbour {tag}", synopsis_short="A lighthouse keeper.")
        person_id = await factory.person(db, f"Ottoline Vasquez{tag}")
        await db.execute(
            """insert into public.catalog_credits (title_id, person_id, role, job)
               values (%s, %s, 'crew', 'Director')""",
            (title_id, person_id),
        )
        assert _titles(await _get(SEARCH, q=f"ottoline vasquez{tag}")) == [f"Quokka Harbour {tag}"]
        await db.execute(
            "update public.catalog_people set name = %s where id = %s", (f"Ottilie Brandt{tag}", person_id)
        )
        assert _titles(await _get(SEARCH, q=f"ottilie brandt{tag}")) == [f"Quokka Harbour {tag}"]
        assert _titles(await _get(SEARCH, q=f"vasquez{tag}")) == []
        await db.execute("delete from public.catalog_credits where person_id = %s", (person_id,))
        assert _titles(await _get(SEARCH, q=f"brandt{tag}")) == []
        await db.execute(
            "update public.catalog_titles set synopsis_long = %s, tags = %s where id = %s",
            (f"Marmalade smugglers{tag} at dawn.", [f"zephyr{tag}"], title_id),
        )
        assert _titles(await _get(SEARCH, q=f"marmalade smugglers{tag}")) == [f"Quokka Harbour {tag}"]
        assert _titles(await _get(SEARCH, q=f"zephyr{tag}")) == [f"Quokka Harbour {tag}"]
        term_id = await factory.term(db, f"Seafaring{tag}")
        await db.execute(
            "insert into public.catalog_title_terms (title_id, term_id) values (%s, %s)", (title_id, term_id)
        )
        hit = (await _get(SEARCH, q=f"seafaring{tag}"))["items"]
        assert [(item["title"], item["matched"]) for item in hit] == [(f"Quokka Harbour {tag}", "tags")]
        await db.execute(
            "update public.catalog_terms set name = %s where id = %s", (f"Nautical{tag}", term_id)
        )
        assert _titles(await _get(SEARCH, q=f"nautical{tag}")) == [f"Quokka Harbour {tag}"]
        await db.execute(
            "update public.catalog_titles set title = %s where id = %s", (f"Wombat Cove {tag}", title_id)
        )
        assert _titles(await _get(SEARCH, q=f"wombat cove {tag}")) == [f"Wombat Cove {tag}"]
        assert [t["title"] for t in (await _get(AUTOCOMPLETE, q=f"wombat cove {tag[:3]}"))["titles"]] == [
            f"Wombat Cove {tag}"
        ]


async def test_results_are_cached_briefly_per_catalog_version(
    search_db: str, settings_env: Callable[..., None]
) -> None:
    from shared.catalog.cache import invalidate

    settings_env(CATALOG_CACHE_SECONDS="60")
    word = f"kumquat{uuid.uuid4().hex[:6]}"
    async with await psycopg.AsyncConnection.connect(search_db, autocommit=True) as db:
        await factory.title(db, f"First {word}")
        assert _titles(await _get(SEARCH, q=word)) == [f"First {word}"]
        assert len((await _get(AUTOCOMPLETE, q=word))["titles"]) == 1
        await factory.title(db, f"Second {word}", popularity=5)
    # Straight inserts do not bump the version: the cached answers stay for their short TTL...
    assert _titles(await _get(SEARCH, q=word)) == [f"First {word}"]
    assert len((await _get(AUTOCOMPLETE, q=word))["titles"]) == 1
    # ...but content managers are never served from the cache...
    manager = await signed_in_user(search_db, roles=["content_manager"])
    assert len(_titles(await _get(SEARCH, manager.headers, q=word))) == 2
    # ...and a catalog change (the admin API calls invalidate) makes everyone see it at once.
    await invalidate()
    assert len(_titles(await _get(SEARCH, q=word))) == 2
    assert len((await _get(AUTOCOMPLETE, q=word))["titles"]) == 2


async def test_anonymous_answers_are_cdn_cacheable_and_signed_in_ones_private(search_db: str) -> None:
    async with search_client() as client:
        response = await client.get(SEARCH, params={"q": "anything"})
        assert "s-maxage" in response.headers["cache-control"]
        assert "catalog:lists" in response.headers["cache-tag"]
        user = await signed_in_user(search_db)
        response = await client.get(AUTOCOMPLETE, params={"q": "any"}, headers=user.headers)
        assert response.headers["cache-control"] == "private, no-store"


async def test_openapi_documents_both_endpoints_and_their_errors(search_db: str) -> None:
    spec = await _get("/api/v1/search/openapi.json")
    search = spec["paths"]["/api/v1/search"]["get"]
    autocomplete = spec["paths"]["/api/v1/search/autocomplete"]["get"]
    for operation in (search, autocomplete):
        assert operation["tags"] == ["search"] and operation["summary"]
        assert "query_empty" in operation["responses"]["422"]["description"]
    assert "invalid_cursor" in search["responses"]["400"]["description"]
    assert {p["name"] for p in search["parameters"]} >= {
        "q",
        "genre",
        "decade",
        "maturity",
        "language",
        "cursor",
    }


async def test_a_query_matching_too_much_ranks_and_counts_the_most_popular(search_db: str) -> None:
    from shared.search.repository import MAX_MATCHES

    word = f"ubiquitous{uuid.uuid4().hex[:6]}"
    async with await psycopg.AsyncConnection.connect(search_db, autocommit=True) as db:
        await db.execute(
            """insert into public.catalog_titles (kind, slug, title, status, popularity)
               select 'movie', %s || '-' || n, %s || ' ' || n, 'published', n
               from generate_series(1, %s) n""",
            (word, word, MAX_MATCHES + 5),
        )
    body = await _get(SEARCH, q=word, limit=3)
    assert body["capped"] is True and body["total"] == MAX_MATCHES
    # The most popular are the ones kept.
    assert {item["title"] for item in body["items"]} <= {f"{word} {n}" for n in range(6, MAX_MATCHES + 6)}
    assert (await _get(SEARCH, q=f"{word} 7"))["capped"] is False
