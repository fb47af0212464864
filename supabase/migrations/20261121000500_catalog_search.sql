-- Catalog search on PostgreSQL alone: a weighted full-text document per title kept current by triggers,
-- a trigram-indexed dictionary of the catalog's words for typo tolerance, and prefix indexes for the search
-- box's autocomplete. Measured in bench/search.py (100,000 titles, 300,000 people), see bench/README.md.
-- Text is compared accent- and case-insensitively: everything indexed or searched goes through
-- cinema_private.search_norm(), so queries must use it too for the indexes to apply.

create extension if not exists unaccent with schema extensions;
create extension if not exists pg_trgm with schema extensions;

-- unaccent() is only STABLE (its dictionary could change); the two-argument form with a fixed dictionary is
-- safe to declare IMMUTABLE, which index expressions and generated columns require.
create or replace function cinema_private.unaccent_text(text) returns text
  language sql immutable strict parallel safe
  as $$ select extensions.unaccent('extensions.unaccent'::regdictionary, $1) $$;

-- The one normal form of searchable text: unaccented, lower case.
create or replace function cinema_private.search_norm(text) returns text
  language sql immutable strict parallel safe
  as $$ select lower(cinema_private.unaccent_text($1)) $$;

-- The normalised title and person name: autocomplete's prefix indexes and the title-similarity part of
-- the ranking use these.
alter table public.catalog_titles
  add column if not exists search_title text generated always as (cinema_private.search_norm(title)) stored;
alter table public.catalog_people
  add column if not exists search_name text generated always as (cinema_private.search_norm(name)) stored;
alter table public.catalog_titles add column if not exists search_document tsvector;
-- The title's genre slugs, kept with the document: search filters and counts genres without a join per match.
alter table public.catalog_titles add column if not exists search_genres text[] not null default '{}';

-- Typo tolerance: every word of the catalog's titles, synopses, tags, people's names and genres, once. A
-- query word missing from it is matched by trigram similarity against this table of distinct words (not
-- against every title and name: on 300,000 people that scan alone costs more than the whole search may)
-- and replaced by the words it resembles; a word found in it is taken as meant.
create table if not exists public.catalog_search_words (
  word text primary key,
  constraint catalog_search_words_length check (char_length(word) between 2 and 60)
);
alter table public.catalog_search_words enable row level security;
revoke all on table public.catalog_search_words from anon, authenticated;

-- Remember the words of some texts (titles, synopses, tags, names). Words are never forgotten: a word left by a renamed title only ever leads
-- to a full-text query that finds nothing, and the visibility rules still apply to what that finds.
create or replace function cinema_private.catalog_search_learn(p_texts text[]) returns void
  language sql
  as $$
    insert into public.catalog_search_words (word)
    select distinct w.lexeme
      from unnest(p_texts) as named(text),
           unnest(to_tsvector('simple'::regconfig, cinema_private.search_norm(named.text))) w
     where char_length(w.lexeme) between 2 and 60
    on conflict do nothing
  $$;

-- The document: A = title and original title, B = cast and main crew (director, writer), C = synopses,
-- D = free tags, genre and category names. 'simple' keeps every word (titles such as "It" or "Up" are
-- English stop words); the 'english' stemmed copy lets "memories" find "memory" and must cover every field
-- so that an excluded word (-word) is excluded from both copies alike.
create or replace function cinema_private.catalog_search_document(
  p_id uuid, p_title text, p_original_title text, p_synopsis_short text, p_synopsis_long text, p_tags text[]
) returns tsvector
  language plpgsql stable parallel safe
  set search_path = pg_catalog
  as $$
declare
  names text;
  terms text;
  parts text[];
  doc tsvector := ''::tsvector;
  weights "char"[] := array['A', 'B', 'C', 'D']::"char"[];
  config regconfig;
  i int;
begin
  select string_agg(p.name, ' ' order by c.role, c.billing_order) into names
    from public.catalog_credits c join public.catalog_people p on p.id = c.person_id
   where c.title_id = p_id and p.deleted_at is null
     and (c.role = 'cast' or lower(c.job) in ('director', 'writer', 'screenplay', 'creator'));
  select string_agg(term.name, ' ') into terms
    from public.catalog_title_terms tt join public.catalog_terms term on term.id = tt.term_id
   where tt.title_id = p_id;
  parts := array[
    concat_ws(' ', p_title, p_original_title),
    coalesce(names, ''),
    concat_ws(' ', p_synopsis_short, p_synopsis_long),
    concat_ws(' ', array_to_string(p_tags, ' '), terms)
  ];
  foreach config in array array['simple', 'english']::regconfig[] loop
    for i in 1..4 loop
      doc := doc || setweight(to_tsvector(config, cinema_private.search_norm(parts[i])), weights[i]);
    end loop;
  end loop;
  return doc;
end $$;

create or replace function cinema_private.catalog_search_genres(p_id uuid) returns text[]
  language sql stable parallel safe
  set search_path = pg_catalog
  as $$
    select coalesce(array_agg(g.slug order by g.slug), '{}')
      from public.catalog_title_terms tt join public.catalog_terms g on g.id = tt.term_id
     where tt.title_id = p_id and g.kind = 'genre'
  $$;

-- Rebuild the documents of some titles (after their credits, terms or people change; bulk loads).
create or replace function cinema_private.catalog_search_refresh(p_ids uuid[]) returns void
  language sql
  as $$
    update public.catalog_titles t
       set search_document = cinema_private.catalog_search_document(
             t.id, t.title, t.original_title, t.synopsis_short, t.synopsis_long, t.tags),
           search_genres = cinema_private.catalog_search_genres(t.id)
     where t.id = any(p_ids)
  $$;

create or replace function cinema_private.catalog_titles_search_document() returns trigger
  language plpgsql as $$
begin
  perform cinema_private.catalog_search_learn(array[new.title, new.original_title, new.synopsis_short,
    new.synopsis_long, array_to_string(new.tags, ' ')]);
  new.search_document := cinema_private.catalog_search_document(
    new.id, new.title, new.original_title, new.synopsis_short, new.synopsis_long, new.tags);
  new.search_genres := cinema_private.catalog_search_genres(new.id);
  return new;
end $$;

drop trigger if exists catalog_titles_search_document on public.catalog_titles;
create trigger catalog_titles_search_document
  before insert or update of title, original_title, synopsis_short, synopsis_long, tags
  on public.catalog_titles
  for each row execute function cinema_private.catalog_titles_search_document();

-- Credits and title terms: once per statement over the transition rows, so a bulk insert of a title's
-- whole cast rebuilds each document once, not once per row.
create or replace function cinema_private.catalog_search_links_changed() returns trigger
  language plpgsql as $$
declare
  ids uuid[];
begin
  if tg_op = 'INSERT' then
    select array_agg(distinct title_id) into ids from new_rows;
  elsif tg_op = 'DELETE' then
    select array_agg(distinct title_id) into ids from old_rows;
  else
    select array_agg(distinct title_id) into ids
      from (select title_id from new_rows union select title_id from old_rows) changed;
  end if;
  if ids is not null then
    perform cinema_private.catalog_search_refresh(ids);
  end if;
  return null;
end $$;

drop trigger if exists catalog_credits_search_insert on public.catalog_credits;
create trigger catalog_credits_search_insert
  after insert on public.catalog_credits referencing new table as new_rows
  for each statement execute function cinema_private.catalog_search_links_changed();
drop trigger if exists catalog_credits_search_update on public.catalog_credits;
create trigger catalog_credits_search_update
  after update on public.catalog_credits referencing old table as old_rows new table as new_rows
  for each statement execute function cinema_private.catalog_search_links_changed();
drop trigger if exists catalog_credits_search_delete on public.catalog_credits;
create trigger catalog_credits_search_delete
  after delete on public.catalog_credits referencing old table as old_rows
  for each statement execute function cinema_private.catalog_search_links_changed();

drop trigger if exists catalog_title_terms_search_insert on public.catalog_title_terms;
create trigger catalog_title_terms_search_insert
  after insert on public.catalog_title_terms referencing new table as new_rows
  for each statement execute function cinema_private.catalog_search_links_changed();
drop trigger if exists catalog_title_terms_search_update on public.catalog_title_terms;
create trigger catalog_title_terms_search_update
  after update on public.catalog_title_terms referencing old table as old_rows new table as new_rows
  for each statement execute function cinema_private.catalog_search_links_changed();
drop trigger if exists catalog_title_terms_search_delete on public.catalog_title_terms;
create trigger catalog_title_terms_search_delete
  after delete on public.catalog_title_terms referencing old table as old_rows
  for each statement execute function cinema_private.catalog_search_links_changed();

-- A renamed (or deleted/restored) person or a renamed genre changes the documents of their titles.
create or replace function cinema_private.catalog_people_search_changed() returns trigger
  language plpgsql as $$
begin
  perform cinema_private.catalog_search_learn(array[new.name]);
  perform cinema_private.catalog_search_refresh(
    array(select distinct c.title_id from public.catalog_credits c where c.person_id = new.id));
  return null;
end $$;

create or replace function cinema_private.catalog_search_learn_names() returns trigger
  language plpgsql as $$
begin
  perform cinema_private.catalog_search_learn(array(select n.name from new_rows n));
  return null;
end $$;

drop trigger if exists catalog_people_search_learn on public.catalog_people;
create trigger catalog_people_search_learn
  after insert on public.catalog_people referencing new table as new_rows
  for each statement execute function cinema_private.catalog_search_learn_names();
drop trigger if exists catalog_terms_search_learn on public.catalog_terms;
create trigger catalog_terms_search_learn
  after insert on public.catalog_terms referencing new table as new_rows
  for each statement execute function cinema_private.catalog_search_learn_names();

drop trigger if exists catalog_people_search_changed on public.catalog_people;
create trigger catalog_people_search_changed
  after update of name, deleted_at on public.catalog_people
  for each row when (old.name is distinct from new.name or old.deleted_at is distinct from new.deleted_at)
  execute function cinema_private.catalog_people_search_changed();

create or replace function cinema_private.catalog_terms_search_changed() returns trigger
  language plpgsql as $$
begin
  perform cinema_private.catalog_search_learn(array[new.name]);
  perform cinema_private.catalog_search_refresh(
    array(select tt.title_id from public.catalog_title_terms tt where tt.term_id = new.id));
  return null;
end $$;

drop trigger if exists catalog_terms_search_changed on public.catalog_terms;
create trigger catalog_terms_search_changed
  after update of name, slug, kind on public.catalog_terms
  for each row when (old.name is distinct from new.name or old.slug is distinct from new.slug
                     or old.kind is distinct from new.kind)
  execute function cinema_private.catalog_terms_search_changed();

-- Titles that existed before this migration.
update public.catalog_titles t
   set search_document = cinema_private.catalog_search_document(
         t.id, t.title, t.original_title, t.synopsis_short, t.synopsis_long, t.tags),
       search_genres = cinema_private.catalog_search_genres(t.id)
 where t.search_document is null;

select cinema_private.catalog_search_learn(array(
  select concat_ws(' ', title, original_title, synopsis_short, synopsis_long, array_to_string(tags, ' '))
    from public.catalog_titles
  union all select name from public.catalog_people union all select name from public.catalog_terms));

-- Full text: the document. Typos: trigrams of the dictionary's words (`%`). Autocomplete: word prefixes of
-- the normalised title ('godf':* finds "The Godfather"), the popular head below; people by the prefix of
-- their whole name or of its last word, in name order along a b-tree (LIKE 'tom h%' under the C collation
-- stops after a few).
create index if not exists catalog_titles_search_document_idx
  on public.catalog_titles using gin (search_document);
create index if not exists catalog_search_words_trgm_idx
  on public.catalog_search_words using gin (word extensions.gin_trgm_ops);
create index if not exists catalog_titles_search_title_words_idx
  on public.catalog_titles using gin (to_tsvector('simple'::regconfig, search_title));
-- The most popular live titles with their normalised title, read in order without touching the table: a
-- common prefix typed into the search box is completed from the first few thousand entries.
create index if not exists catalog_titles_search_popular_idx
  on public.catalog_titles (popularity desc, id) include (search_title)
  where deleted_at is null and status in ('published', 'scheduled');
create index if not exists catalog_people_search_name_prefix_idx
  on public.catalog_people (search_name collate "C") where deleted_at is null;
create index if not exists catalog_people_search_surname_prefix_idx
  on public.catalog_people ((regexp_replace(search_name, '^.*\s', '') collate "C")) where deleted_at is null;

-- The planner guesses `cardinality(country_allow) = 0` (part of the visibility rule) true for 1 title in 200
-- when it is true for nearly all: it then reads every match of a common word and sorts them by popularity
-- instead of walking the popularity index and stopping after the first few hundred (38 ms against 6 ms on
-- 100,000 titles). Statistics on the expressions give it the real proportions.
create statistics if not exists public.catalog_titles_visibility_stats
  on (cardinality(country_allow)), (cardinality(country_deny)) from public.catalog_titles;
