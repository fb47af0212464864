-- Media pipeline: uploaded source files, transcode jobs with their history, the playable assets they
-- produce (renditions, images), per-asset content keys (wrapped), subtitles, and a small domain-event log
-- other capabilities subscribe to. All internal (RLS on, no policies): the API applies the rules.

-- A source file a content manager uploads straight to storage (single PUT or S3 multipart).
create table if not exists public.media_sources (
  id uuid primary key default gen_random_uuid(),
  title_id uuid not null references public.catalog_titles (id) on delete cascade,
  episode_id uuid references public.catalog_episodes (id) on delete cascade,
  purpose text not null default 'main',               -- 'main' (the feature/episode) or 'trailer'
  storage_key text not null,                           -- private object key, never served to viewers
  filename text not null,
  content_type text not null,
  size_bytes bigint not null,                          -- announced by the client, verified on completion
  sha256 text,                                         -- announced hex digest, verified on completion
  upload_id text,                                      -- S3 multipart upload id (null for a single PUT)
  part_size bigint,
  state text not null default 'uploading',
  probe jsonb,                                         -- container and streams as PyAV saw them
  rejection_reason text,
  created_by uuid references public.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  uploaded_at timestamptz,
  deleted_at timestamptz,                              -- source object removed (MEDIA_KEEP_SOURCES=false)
  constraint media_sources_purpose_check check (purpose in ('main', 'trailer')),
  constraint media_sources_state_check check (state in ('uploading', 'uploaded', 'aborted', 'rejected')),
  constraint media_sources_size_check check (size_bytes > 0),
  constraint media_sources_sha256_check check (sha256 is null or sha256 ~ '^[0-9a-f]{64}$'),
  constraint media_sources_storage_key_key unique (storage_key)
);
create index if not exists media_sources_content_idx on public.media_sources (title_id, episode_id, created_at desc);

-- What viewers play: one asset per successful transcode; the newest ready one per content is current.
create table if not exists public.media_assets (
  id uuid primary key default gen_random_uuid(),
  source_id uuid not null references public.media_sources (id) on delete restrict,
  title_id uuid not null references public.catalog_titles (id) on delete cascade,
  episode_id uuid references public.catalog_episodes (id) on delete cascade,
  purpose text not null default 'main',
  state text not null default 'processing',            -- processing -> playable (low rungs) -> ready | failed
  storage_prefix text not null,                        -- e.g. media/assets/<id>/
  hls_master text,                                     -- key of the HLS master playlist, once playable
  dash_manifest text,                                  -- key of the DASH MPD, once playable
  duration_seconds double precision,
  images jsonb not null default '{}'::jsonb,           -- {"posters": [...], "storyboard": ..., "thumbnails_vtt": ...}
  drm jsonb not null default '{}'::jsonb,              -- signalled systems and the key id (no key material)
  is_current boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  playable_at timestamptz,
  ready_at timestamptz,
  constraint media_assets_purpose_check check (purpose in ('main', 'trailer')),
  constraint media_assets_state_check check (state in ('processing', 'playable', 'ready', 'failed', 'retired'))
);
-- One current asset per content and purpose (episode_id null for a movie's own media).
create unique index if not exists media_assets_current_key
  on public.media_assets (title_id, coalesce(episode_id, '00000000-0000-0000-0000-000000000000'::uuid), purpose)
  where is_current;
create index if not exists media_assets_source_idx on public.media_assets (source_id);

-- One row per rendition published into an asset's manifests.
create table if not exists public.media_renditions (
  asset_id uuid not null references public.media_assets (id) on delete cascade,
  name text not null,                                  -- 'h264_720p', 'hevc_1080p', 'audio_eng', 'trickplay'
  kind text not null,                                  -- video | audio | iframe
  codec text not null,                                 -- 'h264', 'hevc', 'aac'
  codecs text not null,                                -- RFC 6381 string, e.g. 'avc1.64001f'
  width integer,
  height integer,
  frame_rate double precision,
  bandwidth integer not null,                          -- peak bits/s
  average_bandwidth integer not null,
  language text,
  label text,
  is_default boolean not null default false,
  created_at timestamptz not null default now(),
  primary key (asset_id, name),
  constraint media_renditions_kind_check check (kind in ('video', 'audio', 'iframe'))
);

-- Per-asset content keys, wrapped (AES-256-GCM) under the master key from the environment.
create table if not exists public.media_keys (
  asset_id uuid primary key references public.media_assets (id) on delete cascade,
  key_id text not null,                                -- CENC default_KID, 32 hex digits
  wrapped_cenc_key bytea not null,
  wrapped_hls_key bytea not null,
  master_key_id text not null,                         -- which master key wrapped them (rotation)
  created_at timestamptz not null default now(),
  constraint media_keys_key_id_check check (key_id ~ '^[0-9a-f]{32}$')
);

-- Subtitles belong to the content, not to one encode: a re-encode keeps them.
create table if not exists public.media_subtitles (
  id uuid primary key default gen_random_uuid(),
  title_id uuid not null references public.catalog_titles (id) on delete cascade,
  episode_id uuid references public.catalog_episodes (id) on delete cascade,
  language text not null,                              -- BCP 47
  label text not null,
  forced boolean not null default false,
  sdh boolean not null default false,
  storage_key text not null,                           -- normalised WebVTT
  cue_count integer not null,
  created_by uuid references public.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz,
  constraint media_subtitles_language_check check (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$')
);
create unique index if not exists media_subtitles_track_key
  on public.media_subtitles (
    title_id, coalesce(episode_id, '00000000-0000-0000-0000-000000000000'::uuid), language, forced, sdh
  ) where deleted_at is null;

-- A transcode (or re-encode) of one source into one asset, as content managers see it.
create table if not exists public.transcode_jobs (
  id uuid primary key default gen_random_uuid(),
  source_id uuid not null references public.media_sources (id) on delete restrict,
  asset_id uuid references public.media_assets (id) on delete set null,
  reason text not null default 'upload',               -- upload | reencode
  priority smallint not null default 0,
  state text not null default 'queued',
  progress double precision not null default 0,        -- 0..100 over the whole job
  eta_seconds integer,
  stage_detail text,                                   -- e.g. 'encoding 1080p, 720p'
  renditions_done text[] not null default '{}',
  options jsonb not null default '{}'::jsonb,          -- {"hevc": bool, "max_height": int}
  attempts integer not null default 0,
  failure_code text,                                   -- stable code, e.g. 'unsupported_container'
  failure_reason text,                                 -- human-readable
  dead_lettered boolean not null default false,
  cancel_requested boolean not null default false,
  idempotency_key text,
  queue_job_id text,
  worker_id text,
  heartbeat_at timestamptz,
  created_by uuid references public.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  constraint transcode_jobs_state_check check (
    state in ('queued', 'probing', 'encoding', 'packaging', 'publishing', 'ready', 'failed', 'cancelled')
  ),
  constraint transcode_jobs_reason_check check (reason in ('upload', 'reencode')),
  constraint transcode_jobs_progress_check check (progress between 0 and 100),
  constraint transcode_jobs_priority_check check (priority between -100 and 100)
);
create unique index if not exists transcode_jobs_idempotency_key
  on public.transcode_jobs (created_by, idempotency_key) where idempotency_key is not null;
create index if not exists transcode_jobs_source_idx on public.transcode_jobs (source_id, created_at desc);
create index if not exists transcode_jobs_active_idx on public.transcode_jobs (heartbeat_at)
  where state in ('probing', 'encoding', 'packaging', 'publishing');
create index if not exists transcode_jobs_recent_idx on public.transcode_jobs (created_at desc, id);

-- Every state change and notable step of a job (its history in the API).
create table if not exists public.transcode_job_events (
  id bigint generated always as identity primary key,
  job_id uuid not null references public.transcode_jobs (id) on delete cascade,
  at timestamptz not null default now(),
  state text not null,
  message text not null
);
create index if not exists transcode_job_events_job_idx on public.transcode_job_events (job_id, id);

-- Chunked encoding: one row per chunk of a long source, so the last finished chunk triggers the join.
create table if not exists public.transcode_chunks (
  job_id uuid not null references public.transcode_jobs (id) on delete cascade,
  attempt integer not null,
  chunk_index integer not null,
  start_seconds double precision not null,
  duration_seconds double precision not null,
  state text not null default 'queued',
  output_prefix text,
  finished_at timestamptz,
  primary key (job_id, attempt, chunk_index),
  constraint transcode_chunks_state_check check (state in ('queued', 'done'))
);

-- Domain events (e.g. 'media.transcode.ready'): written in the emitting transaction, delivered through
-- the job queue to each subscriber, kept for inspection.
create table if not exists public.domain_events (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  payload jsonb not null,
  created_at timestamptz not null default now(),
  constraint domain_events_payload_is_object check (jsonb_typeof(payload) = 'object')
);
create index if not exists domain_events_name_idx on public.domain_events (name, created_at desc);

do $$
declare t text;
begin
  foreach t in array array['media_sources', 'media_assets', 'media_subtitles', 'transcode_jobs'] loop
    execute format('drop trigger if exists %1$s_touch_updated_at on public.%1$s', t);
    execute format(
      'create trigger %1$s_touch_updated_at before update on public.%1$s '
      'for each row execute function cinema_private.touch_updated_at()', t);
  end loop;
end $$;

alter table public.media_sources enable row level security;
alter table public.media_assets enable row level security;
alter table public.media_renditions enable row level security;
alter table public.media_keys enable row level security;
alter table public.media_subtitles enable row level security;
alter table public.transcode_jobs enable row level security;
alter table public.transcode_job_events enable row level security;
alter table public.transcode_chunks enable row level security;
alter table public.domain_events enable row level security;
revoke all on table
  public.media_sources, public.media_assets, public.media_renditions, public.media_keys,
  public.media_subtitles, public.transcode_jobs, public.transcode_job_events, public.transcode_chunks,
  public.domain_events
  from anon, authenticated;
