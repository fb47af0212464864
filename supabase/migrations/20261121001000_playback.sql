-- Playback: how a title may be watched (its access model), what a user is entitled to (written by
-- commerce; read here through one indexed query), stream sessions, positions, watch history.
-- All internal (RLS on, no policies): the API applies the rules.

-- How a title is offered. 'subscription' needs a subscription of at least min_tier (or a rental/purchase
-- of the title); 'transactional' only a rental, purchase or pay-per-view entitlement of the title.
alter table public.catalog_titles
  add column if not exists access text not null default 'subscription',
  add column if not exists min_tier smallint not null default 1;
do $$ begin
  alter table public.catalog_titles add constraint catalog_titles_access_check
    check (access in ('free', 'free_with_ads', 'subscription', 'transactional'));
exception when duplicate_object then null; end $$;
do $$ begin
  alter table public.catalog_titles add constraint catalog_titles_min_tier_check check (min_tier between 0 and 10);
exception when duplicate_object then null; end $$;

-- Where the credits start (watched when the viewer reaches them, or 95 %).
alter table public.catalog_titles add column if not exists credits_start_seconds integer;
alter table public.catalog_episodes add column if not exists credits_start_seconds integer;

-- What a user may play, with the limits that come with it. Commerce writes these rows (subscriptions with
-- a plan's limits, rentals, purchases, pay-per-view); playback only reads them.
create table if not exists public.entitlements (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,
  kind text not null,                                  -- subscription | rental | purchase | ppv
  title_id uuid references public.catalog_titles (id) on delete cascade,  -- null for a subscription
  plan_code text,                                      -- e.g. 'basic', 'standard', 'premium'
  tier smallint not null default 0,                    -- compared with catalog_titles.min_tier
  max_streams smallint not null default 1,
  max_height integer not null default 1080,            -- highest rendition height allowed
  ad_free boolean not null default true,
  starts_at timestamptz not null default now(),
  ends_at timestamptz,                                 -- null = no end (purchase, open subscription)
  play_window_seconds integer,                         -- rental: playable this long from first play
  first_played_at timestamptz,
  source text not null default 'manual',               -- 'stripe', 'sandbox', 'manual'
  source_ref text,                                     -- the provider's id (subscription, payment)
  revoked_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint entitlements_kind_check check (kind in ('subscription', 'rental', 'purchase', 'ppv')),
  constraint entitlements_title_check check ((kind = 'subscription') = (title_id is null)),
  constraint entitlements_window_check check (ends_at is null or starts_at < ends_at),
  constraint entitlements_limits_check check (max_streams between 1 and 20 and max_height between 144 and 4320)
);
-- The one lookup of the playback path: a user's live entitlements for a title (or all subscriptions).
create index if not exists entitlements_user_idx on public.entitlements (user_id, title_id) where revoked_at is null;
create unique index if not exists entitlements_source_ref_key on public.entitlements (source, source_ref)
  where source_ref is not null;

-- Started streams (the live state is in Redis; this is the record for history and analytics).
create table if not exists public.stream_sessions (
  id uuid primary key,
  user_id uuid not null references public.users (id) on delete cascade,
  profile_id uuid references public.profiles (id) on delete set null,
  device_id text not null,
  device_name text,
  device_class text not null default 'web',            -- web | mobile | tv
  title_id uuid not null references public.catalog_titles (id) on delete cascade,
  episode_id uuid references public.catalog_episodes (id) on delete cascade,
  asset_id uuid not null references public.media_assets (id) on delete cascade,
  entitlement_id uuid references public.entitlements (id) on delete set null,
  country text,
  ads boolean not null default false,
  max_height integer not null,
  started_at timestamptz not null default now(),
  last_heartbeat_at timestamptz not null default now(),
  ended_at timestamptz,
  end_reason text,                                     -- stopped | expired | evicted | revoked
  playback jsonb not null default '{}'::jsonb          -- last reported quality (bitrate, buffering)
);
create index if not exists stream_sessions_user_idx on public.stream_sessions (user_id, started_at desc);

-- Where each profile stopped in each playable item (the movie itself, or an episode).
create table if not exists public.watch_positions (
  profile_id uuid not null references public.profiles (id) on delete cascade,
  title_id uuid not null references public.catalog_titles (id) on delete cascade,
  episode_id uuid references public.catalog_episodes (id) on delete cascade,
  content_id uuid not null,                            -- episode id, or the title id for a movie
  position_seconds double precision not null,
  duration_seconds double precision,
  sequence bigint not null default 0,                  -- the client's write sequence: monotonic
  watched boolean not null default false,              -- reached 95 % or the credits
  updated_at timestamptz not null default now(),
  hidden_at timestamptz,                               -- removed from history by the viewer
  primary key (profile_id, content_id),
  constraint watch_positions_position_check check (position_seconds >= 0)
);
create index if not exists watch_positions_recent_idx
  on public.watch_positions (profile_id, updated_at desc) where hidden_at is null;

alter table public.entitlements enable row level security;
alter table public.stream_sessions enable row level security;
alter table public.watch_positions enable row level security;
revoke all on table public.entitlements, public.stream_sessions, public.watch_positions from anon, authenticated;

drop trigger if exists entitlements_touch_updated_at on public.entitlements;
create trigger entitlements_touch_updated_at
  before update on public.entitlements
  for each row execute function cinema_private.touch_updated_at();
