"""All SQL of catalog search: weighted full text, typo tolerance, facets and autocomplete.

Typo tolerance goes through a dictionary of the catalog's words. Every query filters titles with
`visible_sql` and `Viewer.params()`; text goes through cinema_private.search_norm() (unaccented, lower
case) exactly as the indexes of migration 20261121000500_catalog_search.sql do, or they would not apply.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.catalog.visibility import Viewer, visible_sql
from shared.infra.db import fetch_one

if TYPE_CHECKING:  # psycopg loads on first query, not at import (cold start)
    from psycopg import AsyncConnection

    Conn = AsyncConnection[Any]
else:
    Conn = Any
Row = dict[str, Any]

VISIBLE = visible_sql("t")

# Full text below this many visible matches also tries the words the query's words resemble (typos).
FUZZY_BELOW = 10
# The dictionary words considered for one typed word, and how far below the closest they may be.
ALTERNATIVES = 3
NEAR_BEST = 0.1
# The most popular matches that are ranked and counted (beyond it `capped` is set: the query says little);
# for a corrected query, the most popular of the first FUZZY_SCAN matches found.
MAX_MATCHES = 200
MAX_FUZZY = 100
FUZZY_SCAN = 1000
FACET_LIMIT = 30
# Trigram similarity from which a dictionary word is taken for a typed one (pg_trgm's own default floor):
# one letter missed or swapped in a short word costs half the trigrams or more ("tatou" ~ "tautou" 0.44,
# "rigns" ~ "rings" 0.33).
SIMILAR = 0.3
# What a dictionary word with two neighbouring letters of the typed word swapped counts as (a likely typo).
SWAPPED = 0.8
# Autocomplete looks among this many most popular titles first (a common prefix is answered there).
POPULAR_HEAD = 2000

# Full text over both copies of the document ('simple' and 'english' stemmed). The expressions are
# immutable, so with the query as a parameter the planner folds them to constants and estimates well.
_NQ = "cinema_private.search_norm(%(q)s)"
_TSQUERY = f"(websearch_to_tsquery('simple', {_NQ}) || websearch_to_tsquery('english', {_NQ}))"
_FUZZY = "cinema_private.search_norm(%(fuzzy)s)"
# Words the query excludes (-word) as written (not stemmed: "alien -aliens" keeps Alien), applied to the
# typo-tolerant matches too, which full text's own exclusion never saw.
_EXCLUDED = """(%(excluded)s::text = '' or not t.search_document
    @@ websearch_to_tsquery('simple', cinema_private.search_norm(%(excluded)s)))"""
# Rank weights in the order D, C, B, A (tags, synopsis, people, title); flag 32 maps a rank to 0..1.
_WEIGHTS = "'{0.1, 0.3, 0.6, 1.0}'::float4[]"
# A lexeme as tsquery input: quoted, its backslashes and quotes doubled.
_QUOTED = (
    "(chr(39) || replace(replace(x, chr(92), chr(92) || chr(92)), chr(39), chr(39) || chr(39)) || chr(39))"
)

# What one hit is worth: full-text rank (a corrected query counts a little less), how much of the query is
# a word run of the title (typos included), whether that is the whole title (the lengths agree: "Up" over
# "Up in the Air"), and a little popularity.
_SCORE = """(greatest(c.rank, 0.8 * c.fuzzy_rank)
    + 0.6 * c.wsim * c.wsim
    + 0.3 * c.wsim * c.length_ratio
    + 0.05 * ln(1 + greatest(c.popularity, 0)) / (1 + ln(1 + greatest(c.popularity, 0))))"""

# The strongest field that matched: any query word (or its correction) found with that weight.
_MATCHED = """case
    when ts_rank('{0, 0, 0, 1}', t.search_document, m.either) > 0 or m.wsim >= 0.6 then 'title'
    when ts_rank('{0, 0, 1, 0}', t.search_document, m.either) > 0 then 'person'
    when ts_rank('{0, 1, 0, 0}', t.search_document, m.either) > 0 then 'synopsis'
    else 'tags' end"""

_GENRE_OK = "(%(genres)s::text[] is null or t.search_genres && %(genres)s::text[])"
_DECADE = "(t.release_year / 10 * 10)"

# Matches are the most popular `max_matches` (one common word can match most of the catalog): ranking,
# `total` and the facets cover those, and `capped` says when more matched.
#
# Typo tolerance runs only when full text finds little (one-time filters: otherwise never executed). Each
# typed word missing from the dictionary of the catalog's words is given the words it resembles most
# (trigram similarity). Each word or one it resembles must match, except short and stop words, which only
# rank. Nothing is corrected when every word is known (full text has said it all) or when a word resembles
# nothing (dropping it would answer another question).
_SEARCH = f"""
with fts as materialized (
  select t.id from public.catalog_titles t
  where t.search_document @@ {_TSQUERY} and {VISIBLE}
  order by t.popularity desc, t.id limit %(max_matches)s
),
typed as materialized (
  select w.lexeme,
         char_length(w.lexeme) <= 2 or to_tsvector('english', w.lexeme) = ''::tsvector as minor,
         exists (select 1 from public.catalog_search_words d where d.word = w.lexeme) as known
  from unnest(to_tsvector('simple', {_FUZZY})) w
  where (select count(*) from fts) < %(fuzzy_below)s
),
groups as (
  select typed.lexeme, typed.minor, typed.known, alike.words
  from typed cross join lateral (
    select array_agg(near.word order by near.sim desc) as words from (
      select word, sim, max(sim) over () as best from (
        select word, max(sim) as sim from (
          (select d.word, extensions.similarity(typed.lexeme, d.word) as sim
           from public.catalog_search_words d
           where not typed.known and d.word operator(extensions.%%) typed.lexeme
             -- a typo changes a letter or two; a longer word only counts when the typed one begins it
             and (abs(char_length(d.word) - char_length(typed.lexeme)) <= 2
                  or starts_with(d.word, typed.lexeme))
           order by sim desc limit %(alternatives)s)
          union all
          -- Two letters swapped ("rigns") leave few trigrams in common: look those words up directly.
          (select d.word, %(swapped)s::float8 from public.catalog_search_words d
           where not typed.known and d.word = any(array(
             select overlay(typed.lexeme placing substr(typed.lexeme, i + 1, 1) || substr(typed.lexeme, i, 1)
                            from i for 2)
             from generate_series(1, char_length(typed.lexeme) - 1) i)))
        ) found group by word order by sim desc limit %(alternatives)s
      ) ranked
    ) near where near.sim >= %(similar)s and near.sim >= near.best - %(near_best)s
  ) alike
),
corrected as materialized (
  select case when bool_or(not known and not minor) and not bool_or(lost) then
           nullif(string_agg(alternatives, ' & ') filter (where not minor), '')::tsquery end as must,
         nullif(string_agg(alternatives, ' | '), '')::tsquery as loose
  from (select minor, known, not minor and not known and words is null as lost,
               '(' || array_to_string(array(select {_QUOTED}
                      from unnest(array_prepend(lexeme, coalesce(words, '{{}}'::text[]))) x), ' | ') || ')'
                 as alternatives
        from groups) g
),
-- A short word's corrections can be common words: the first `fuzzy_scan` matches are enough to offer.
fuzzy as materialized (
  select id from (
    select t.id, t.popularity from public.catalog_titles t
    where t.search_document @@ (select must from corrected) and {VISIBLE}
      and (%(phrases)s::text = '' or t.search_document
           @@ websearch_to_tsquery('simple', cinema_private.search_norm(%(phrases)s)))
    limit %(fuzzy_scan)s
  ) found order by popularity desc, id limit %(max_fuzzy)s
),
candidates as (
  select id, bool_or(exact) as exact from (
    select id, true as exact from fts union all select id, false from fuzzy
  ) found group by id
),
matches as materialized (
  select t.id, t.kind, t.title, t.slug, t.release_year, t.maturity_level, t.maturity_rank, t.images,
         t.original_language, t.search_genres, {_DECADE} as decade, c.wsim, {_SCORE} as score,
         {_GENRE_OK} as genre_ok,
         (%(decades)s::int[] is null or {_DECADE} = any(%(decades)s::int[])) as decade_ok,
         (%(maturities)s::text[] is null or t.maturity_level = any(%(maturities)s::text[])) as maturity_ok,
         (%(languages)s::text[] is null or t.original_language = any(%(languages)s::text[])) as language_ok
  from candidates join public.catalog_titles t on t.id = candidates.id
  cross join lateral (
    -- A match of the query as typed is ranked by it (cover density: its words close together rank
    -- higher); a match of the corrected query by that, an OR of alternatives where only weights matter.
    select t.popularity,
           case when candidates.exact
             then ts_rank_cd({_WEIGHTS}, t.search_document, {_TSQUERY}, 32) else 0 end::float8 as rank,
           case when candidates.exact then 0
             else coalesce(ts_rank({_WEIGHTS}, t.search_document, (select loose from corrected), 32), 0)
             end::float8 as fuzzy_rank,
           extensions.word_similarity({_FUZZY}, t.search_title)::float8 as wsim,
           least(char_length({_FUZZY}), char_length(t.search_title))::float8
             / greatest(char_length({_FUZZY}), char_length(t.search_title), 1) as length_ratio
  ) c
  where {_EXCLUDED}
),
hits as (
  select * from matches where genre_ok and decade_ok and maturity_ok and language_ok
),
page as (
  select m.*, {_MATCHED} as matched
  from (select hits.*, {_TSQUERY} || coalesce((select loose from corrected), {_TSQUERY}) as either
        from hits
        where %(after_score)s::float8 is null
           or score < %(after_score)s::float8 or (score = %(after_score)s::float8 and id > %(after_id)s::uuid)
        order by score desc, id limit %(limit)s) m
  join public.catalog_titles t on t.id = m.id
)
select
  (select count(*) from hits) as total,
  (select count(*) from fts) >= %(max_matches)s or (select count(*) from fuzzy) >= %(max_fuzzy)s as capped,
  (select coalesce(json_agg(json_build_object(
      'id', id, 'kind', kind, 'title', title, 'slug', slug, 'year', release_year,
      'maturity_level', maturity_level, 'images', images, 'score', score, 'matched', matched)
      order by score desc, id), '[]'::json) from page) as items,
  (select coalesce(json_agg(json_build_object('value', slug, 'label', name, 'count', n)
      order by n desc, name), '[]'::json)
   from (select g.slug, g.name, counted.n
         from (select genre, count(*) as n from matches m cross join unnest(m.search_genres) genre
               where m.decade_ok and m.maturity_ok and m.language_ok group by genre) counted
         join public.catalog_terms g on g.kind = 'genre' and g.slug = counted.genre
         order by counted.n desc, g.name limit %(facet_limit)s) f) as genre,
  (select coalesce(json_agg(json_build_object('value', decade::text, 'label', decade::text || 's', 'count', n)
      order by decade desc), '[]'::json)
   from (select decade, count(*) as n from matches
         where decade is not null and genre_ok and maturity_ok and language_ok group by decade) f) as decade,
  (select coalesce(json_agg(json_build_object('value', maturity_level, 'label', maturity_level, 'count', n)
      order by maturity_rank), '[]'::json)
   from (select maturity_level, maturity_rank, count(*) as n from matches
         where genre_ok and decade_ok and language_ok group by maturity_level, maturity_rank) f) as maturity,
  (select coalesce(json_agg(json_build_object('value', original_language, 'label', original_language,
      'count', n) order by n desc, original_language), '[]'::json)
   from (select original_language, count(*) as n from matches
         where original_language is not null and genre_ok and decade_ok and maturity_ok
         group by original_language order by n desc, original_language limit %(facet_limit)s) f) as language
"""  # noqa: S608 - built from constants only


@dataclass
class SearchQuery:
    """A parsed search: the websearch text, its plain words, excluded words, filters and the cursor."""

    text: str
    fuzzy: str
    excluded: str = ""
    phrases: str = ""
    genres: list[str] = field(default_factory=list)
    decades: list[int] = field(default_factory=list)
    maturities: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    after: tuple[float, uuid.UUID] | None = None
    limit: int = 20


async def _one(conn: Conn, query: str, params: dict[str, Any]) -> Row:
    # Composed from this module's constants only; values always travel as parameters.
    row = await fetch_one(conn, query, params)
    assert row is not None  # aggregate statements always return one row
    return row


def search_params(viewer: Viewer, query: SearchQuery) -> dict[str, Any]:
    """The parameters of the search statement."""
    after_score, after_id = query.after if query.after else (None, None)
    return {
        **viewer.params(),
        "q": query.text,
        "fuzzy": query.fuzzy,
        "excluded": query.excluded,
        "phrases": query.phrases,
        "genres": query.genres or None,
        "decades": query.decades or None,
        "maturities": query.maturities or None,
        "languages": query.languages or None,
        "after_score": after_score,
        "after_id": after_id,
        "limit": query.limit,
        "fuzzy_below": FUZZY_BELOW,
        "alternatives": ALTERNATIVES,
        "near_best": NEAR_BEST,
        "similar": SIMILAR,
        "swapped": SWAPPED,
        "max_matches": MAX_MATCHES,
        "max_fuzzy": MAX_FUZZY,
        "fuzzy_scan": FUZZY_SCAN,
        "facet_limit": FACET_LIMIT,
    }


async def search(conn: Conn, viewer: Viewer, query: SearchQuery) -> Row:
    """One page of hits (`items`), `total`, `capped` and the facets (genre, decade, maturity, language)."""
    return await _one(conn, _SEARCH, search_params(viewer, query))


# --- autocomplete ---------------------------------------------------------------------------------------

# The typed words as words of the normalised title, the last as a prefix: 'the' & 'godf':* .
_PREFIX = "to_tsquery('simple', cinema_private.search_norm(%(prefix)s))"
_TITLE_COLUMNS = """t.id, t.kind, t.title, t.slug, t.release_year as year, t.maturity_level, t.images,
       starts_with(t.search_title, cinema_private.search_norm(%(typed)s)) as whole"""
# The same test per row, as regular expressions (a word boundary, the typed word, and for all but the last
# another boundary).
_WORD_STARTS = """t.search_title ~ all (array(
    select '(^|[^[:alnum:]])'
           || regexp_replace(cinema_private.search_norm(w.word), '([^[:alnum:]])', '\\\\\\1', 'g')
           || case when w.n < cardinality(%(words)s::text[]) then '([^[:alnum:]]|$)' else '' end
    from unnest(%(words)s::text[]) with ordinality as w(word, n)))"""

# Titles: a common prefix is answered among the most popular titles (the partial index of browse, read in
# order, stops early: nothing outside them outranks those matches); when they hold too few, or for content
# managers (who also see drafts), the word-prefix index finds every match, which are then few.
_HEAD = f"""
select {_TITLE_COLUMNS}, head.popularity
from (select t.id, t.popularity
      from (select t.id, t.popularity, t.search_title from public.catalog_titles t
            where %(use_head)s and t.deleted_at is null and t.status in ('published', 'scheduled')
            order by t.popularity desc, t.id limit %(head)s) t
      where {_WORD_STARTS}) head
join public.catalog_titles t on t.id = head.id
where {VISIBLE}
order by head.popularity desc, head.id
limit %(limit)s
"""  # noqa: S608 - built from constants only
_EVERYWHERE = f"""
select {_TITLE_COLUMNS}, t.popularity
from public.catalog_titles t
where (select count(*) from head) < %(limit)s and to_tsvector('simple', t.search_title) @@ {_PREFIX}
  and {VISIBLE}
order by t.popularity desc, t.id
limit %(limit)s
"""  # noqa: S608 - built from constants only

# People: a bounded set of candidates (whole names, and last names, starting with what was typed, in name
# order along their b-trees), kept when credited on a title the caller can see; whole-name matches first,
# then by their most popular visible title.
_SURNAME = "(regexp_replace(p.search_name, '^.*\\s', '') collate \"C\")"
_PEOPLE = f"""
with candidates as (
  (select p.id from public.catalog_people p
   where (p.search_name collate "C") like cinema_private.search_norm(%(like)s) || '%%'
     and p.deleted_at is null
   order by (p.search_name collate "C") limit %(candidates)s)
  union
  (select p.id from public.catalog_people p
   where %(one_word)s and {_SURNAME} like cinema_private.search_norm(%(like)s) || '%%'
     and p.deleted_at is null
   order by {_SURNAME} limit %(candidates)s)
)
select p.id, p.name, p.slug, p.images,
       starts_with(p.search_name, cinema_private.search_norm(%(typed)s)) as whole, best.popularity
from candidates join public.catalog_people p on p.id = candidates.id
cross join lateral (
  select max(t.popularity) as popularity
  from public.catalog_credits c join public.catalog_titles t on t.id = c.title_id
  where c.person_id = p.id and {VISIBLE}
) best
where best.popularity is not null
order by whole desc, best.popularity desc, p.id
limit %(people_limit)s
"""  # noqa: S608 - built from constants only

# One round trip. The whole title starting with what was typed reads as the better completion, then
# popularity.
_SUGGESTIONS = f"""
with head as materialized ({_HEAD}),
everywhere as materialized ({_EVERYWHERE}),
people as materialized ({_PEOPLE})
select
  (select coalesce(json_agg(json_build_object('id', id, 'kind', kind, 'title', title, 'slug', slug,
      'year', year, 'maturity_level', maturity_level, 'images', images)
      order by whole desc, popularity desc, id), '[]'::json)
   from (select * from head where (select count(*) from head) >= %(limit)s
         union all select * from everywhere) found) as titles,
  (select coalesce(json_agg(json_build_object('id', id, 'name', name, 'slug', slug, 'images', images)
      order by whole desc, popularity desc, id), '[]'::json) from people) as people
"""  # noqa: S608 - built from constants only


def suggestion_params(
    viewer: Viewer, *, typed: str, words: list[str], prefix: str, like: str, limit: int
) -> dict[str, Any]:
    """The parameters of the autocomplete statement."""
    return {
        **viewer.params(),
        "typed": typed,
        "words": words,
        "prefix": prefix,
        "like": like,
        "limit": limit,
        "head": POPULAR_HEAD,
        "use_head": not viewer.manager,
        "people_limit": max(1, limit // 2),
        "candidates": 2 * max(1, limit // 2),
        "one_word": " " not in typed,
    }


async def suggestions(
    conn: Conn, viewer: Viewer, *, typed: str, words: list[str], prefix: str, like: str, limit: int
) -> Row:
    """Titles (up to `limit`, most popular first) and people (up to half as many) for what was typed."""
    params = suggestion_params(viewer, typed=typed, words=words, prefix=prefix, like=like, limit=limit)
    return await _one(conn, _SUGGESTIONS, params)
