-- Catalog: titles (movies and series), seasons, episodes, people and credits, taxonomy, My List and
-- ratings with incrementally maintained aggregates. Search indexes come in the next migration.
-- Everything is RLS-enabled and internal: viewers read the catalog through the API, which applies the
-- visibility rules (status, window, country, maturity) that plain RLS cannot express per profile.

create extension if not exists unaccent with schema extensions;
create extension if not exists pg_trgm with schema extensions;

-- The maturity scale shared with profiles ('all' < '7+' < '13+' < '16+' < '18+'), as a rank for range filters.
create or replace function cinema_private.maturity_rank(level text) returns smallint
  language sql immutable parallel safe
  as $$ select case level when 'all' then 0 when '7+' then 1 when '13+' then 2 when '16+' then 3
                          when '18+' then 4 end::smallint $$;

create table if not exists public.catalog_titles (
  id uuid primary key default gen_random_uuid(),
  kind text not null,
  slug text not null,
  title text not null,
  original_title text,
  synopsis_short text,
  synopsis_long text,
  release_date date,
  release_year smallint,
  runtime_minutes integer,
  countries text[] not null default '{}',           -- production countries (ISO 3166-1 alpha-2)
  original_language text,                            -- BCP 47 / ISO 639-1
  audio_languages text[] not null default '{}',
  subtitle_languages text[] not null default '{}',
  rating_system text,                                -- 'mpaa' or 'tv'
  rating text,                                       -- e.g. 'PG-13', 'TV-MA'
  maturity_level text not null default '18+',        -- the profiles' scale, derived from the rating
  maturity_rank smallint generated always as (cinema_private.maturity_rank(maturity_level)) stored,
  tags text[] not null default '{}',
  images jsonb not null default '{}'::jsonb,         -- {"poster": {"key": ..., "width": ..}, "backdrop": ...}
  trailers jsonb not null default '[]'::jsonb,       -- [{"name": ..., "url" | "key": ..., "language": ..}]
  imdb_id text,
  tmdb_id text,
  status text not null default 'draft',
  publish_at timestamptz,                            -- when a 'scheduled' title goes live
  available_from timestamptz,
  available_until timestamptz,
  country_allow text[] not null default '{}',        -- empty = everywhere (minus the deny list)
  country_deny text[] not null default '{}',
  popularity double precision not null default 0,
  thumbs_up integer not null default 0,
  thumbs_down integer not null default 0,
  stars_sum integer not null default 0,
  stars_count integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz,
  constraint catalog_titles_kind_check check (kind in ('movie', 'series')),
  constraint catalog_titles_status_check check (status in ('draft', 'scheduled', 'published', 'archived')),
  constraint catalog_titles_scheduled_has_time check (status <> 'scheduled' or publish_at is not null),
  constraint catalog_titles_maturity_check check (maturity_level in ('all', '7+', '13+', '16+', '18+')),
  constraint catalog_titles_window_check check (
    available_from is null or available_until is null or available_from < available_until
  ),
  constraint catalog_titles_title_length check (char_length(title) between 1 and 300),
  constraint catalog_titles_runtime_check check (runtime_minutes is null or runtime_minutes between 1 and 2000),
  constraint catalog_titles_counters_check check (
    thumbs_up >= 0 and thumbs_down >= 0 and stars_sum >= 0 and stars_count >= 0
  )
);
create unique index if not exists catalog_titles_slug_key on public.catalog_titles (slug) where deleted_at is null;
create unique index if not exists catalog_titles_imdb_key on public.catalog_titles (imdb_id)
  where imdb_id is not null and deleted_at is null;
-- Browse: the visible set narrowed by the common sorts.
create index if not exists catalog_titles_browse_popularity_idx
  on public.catalog_titles (popularity desc, id) where deleted_at is null and status in ('published', 'scheduled');
create index if not exists catalog_titles_browse_newest_idx
  on public.catalog_titles (release_date desc nulls last, id)
  where deleted_at is null and status in ('published', 'scheduled');

drop trigger if exists catalog_titles_touch_updated_at on public.catalog_titles;
create trigger catalog_titles_touch_updated_at
  before update on public.catalog_titles
  for each row execute function cinema_private.touch_updated_at();

create table if not exists public.catalog_seasons (
  id uuid primary key default gen_random_uuid(),
  title_id uuid not null references public.catalog_titles (id) on delete cascade,
  number integer not null,
  name text,
  synopsis text,
  release_date date,
  images jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint catalog_seasons_number_check check (number between 0 and 1000),
  unique (title_id, number)
);

create table if not exists public.catalog_episodes (
  id uuid primary key default gen_random_uuid(),
  season_id uuid not null references public.catalog_seasons (id) on delete cascade,
  title_id uuid not null references public.catalog_titles (id) on delete cascade,
  number integer not null,
  name text not null,
  synopsis text,
  runtime_minutes integer,
  release_date date,
  images jsonb not null default '{}'::jsonb,         -- {"still": {...}}
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint catalog_episodes_number_check check (number between 0 and 10000),
  constraint catalog_episodes_runtime_check check (runtime_minutes is null or runtime_minutes between 1 and 2000),
  unique (season_id, number)
);
create index if not exists catalog_episodes_title_idx on public.catalog_episodes (title_id);

create table if not exists public.catalog_people (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  slug text not null,
  biography text,
  birth_date date,
  images jsonb not null default '{}'::jsonb,         -- {"photo": {...}}
  imdb_id text,
  tmdb_id text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz,
  constraint catalog_people_name_length check (char_length(name) between 1 and 200)
);
create unique index if not exists catalog_people_slug_key on public.catalog_people (slug) where deleted_at is null;

create table if not exists public.catalog_credits (
  id uuid primary key default gen_random_uuid(),
  title_id uuid not null references public.catalog_titles (id) on delete cascade,
  person_id uuid not null references public.catalog_people (id) on delete cascade,
  role text not null,
  character text,                                    -- cast
  job text,                                          -- crew: director, writer, producer, composer...
  billing_order integer not null default 0,
  constraint catalog_credits_role_check check (role in ('cast', 'crew')),
  constraint catalog_credits_shape_check check (role = 'cast' or job is not null)
);
create index if not exists catalog_credits_title_idx on public.catalog_credits (title_id, role, billing_order);
create index if not exists catalog_credits_person_idx on public.catalog_credits (person_id);

-- Genres and categories ("Award winners", "Based on a book"...) share one shape; free tags live on the title.
create table if not exists public.catalog_terms (
  id uuid primary key default gen_random_uuid(),
  kind text not null,
  slug text not null,
  name text not null,
  constraint catalog_terms_kind_check check (kind in ('genre', 'category')),
  unique (kind, slug)
);

create table if not exists public.catalog_title_terms (
  title_id uuid not null references public.catalog_titles (id) on delete cascade,
  term_id uuid not null references public.catalog_terms (id) on delete cascade,
  primary key (title_id, term_id)
);
create index if not exists catalog_title_terms_term_idx on public.catalog_title_terms (term_id, title_id);

-- My List: per profile.
create table if not exists public.catalog_my_list (
  profile_id uuid not null references public.profiles (id) on delete cascade,
  title_id uuid not null references public.catalog_titles (id) on delete cascade,
  added_at timestamptz not null default now(),
  primary key (profile_id, title_id)
);
create index if not exists catalog_my_list_recent_idx on public.catalog_my_list (profile_id, added_at desc);

-- Ratings: one per profile per title (a thumb, stars, or both).
create table if not exists public.catalog_ratings (
  profile_id uuid not null references public.profiles (id) on delete cascade,
  title_id uuid not null references public.catalog_titles (id) on delete cascade,
  thumbs smallint,
  stars smallint,
  rated_at timestamptz not null default now(),
  primary key (profile_id, title_id),
  constraint catalog_ratings_thumbs_check check (thumbs in (-1, 1)),
  constraint catalog_ratings_stars_check check (stars between 1 and 5),
  constraint catalog_ratings_something_check check (thumbs is not null or stars is not null)
);
create index if not exists catalog_ratings_title_idx on public.catalog_ratings (title_id, rated_at desc);

-- Aggregates move by the delta of each rating change, in the same transaction: no recount, no drift.
create or replace function cinema_private.catalog_rating_delta() returns trigger
  language plpgsql as $$
declare
  old_up int := 0; old_down int := 0; old_sum int := 0; old_n int := 0;
  new_up int := 0; new_down int := 0; new_sum int := 0; new_n int := 0;
  target uuid;
begin
  if tg_op in ('UPDATE', 'DELETE') then
    old_up := (old.thumbs = 1)::int; old_down := (old.thumbs = -1)::int;
    old_sum := coalesce(old.stars, 0); old_n := (old.stars is not null)::int;
    target := old.title_id;
  end if;
  if tg_op in ('INSERT', 'UPDATE') then
    new_up := coalesce((new.thumbs = 1)::int, 0); new_down := coalesce((new.thumbs = -1)::int, 0);
    new_sum := coalesce(new.stars, 0); new_n := (new.stars is not null)::int;
    target := new.title_id;
  end if;
  old_up := coalesce(old_up, 0); old_down := coalesce(old_down, 0);
  update public.catalog_titles set
    thumbs_up = thumbs_up + new_up - old_up,
    thumbs_down = thumbs_down + new_down - old_down,
    stars_sum = stars_sum + new_sum - old_sum,
    stars_count = stars_count + new_n - old_n
  where id = target;
  return null;
end $$;

drop trigger if exists catalog_ratings_aggregate on public.catalog_ratings;
create trigger catalog_ratings_aggregate
  after insert or update or delete on public.catalog_ratings
  for each row execute function cinema_private.catalog_rating_delta();

alter table public.catalog_titles enable row level security;
alter table public.catalog_seasons enable row level security;
alter table public.catalog_episodes enable row level security;
alter table public.catalog_people enable row level security;
alter table public.catalog_credits enable row level security;
alter table public.catalog_terms enable row level security;
alter table public.catalog_title_terms enable row level security;
alter table public.catalog_my_list enable row level security;
alter table public.catalog_ratings enable row level security;

revoke all on table
  public.catalog_titles, public.catalog_seasons, public.catalog_episodes, public.catalog_people,
  public.catalog_credits, public.catalog_terms, public.catalog_title_terms, public.catalog_my_list,
  public.catalog_ratings
  from anon, authenticated;
