-- The default job queue (QUEUE_BACKEND=postgres): workers claim rows with FOR UPDATE SKIP LOCKED, a
-- lease (locked_until) hides a running job, and an expired lease makes it claimable again (the watchdog
-- for workers that died). Done and dead rows stay for inspection until purged by maintenance.
-- Written to be harmless if ever re-run (if not exists / drop-then-create), though the runner applies it once.

create table if not exists public.job_queue (
  id uuid primary key default gen_random_uuid(),
  queue text not null default 'default',
  kind text not null,
  payload jsonb not null,
  priority smallint not null default 0,
  state text not null default 'queued',
  attempts integer not null default 0,
  max_attempts integer not null,
  run_at timestamptz not null default now(),
  locked_until timestamptz,
  locked_by text,
  last_error text,
  dedup_key text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz,
  constraint job_queue_state_check check (state in ('queued', 'running', 'done', 'dead')),
  constraint job_queue_attempts_check check (attempts >= 0 and max_attempts >= 1),
  -- A running row without a lease could never be reclaimed if its worker died.
  constraint job_queue_running_has_lease check (state <> 'running' or locked_until is not null),
  constraint job_queue_payload_is_object check (jsonb_typeof(payload) = 'object')
);

comment on table public.job_queue is
  'Internal job queue (FOR UPDATE SKIP LOCKED); read and written only by the platform''s own connections.';

-- The receive query filters one queue and the two claimable states, then walks priority desc, run_at,
-- created_at: with the same key order the planner reads the index in order and stops at the LIMIT.
create index if not exists job_queue_receive_idx
  on public.job_queue (queue, priority desc, run_at, created_at)
  where state in ('queued', 'running');

-- A dedup key names one live or completed job per queue (enqueueing it again returns that job); a dead
-- job frees its key so the work can be queued again once the cause is fixed. Purging done rows frees it too.
create unique index if not exists job_queue_dedup_key_idx
  on public.job_queue (queue, dedup_key)
  where dedup_key is not null and state <> 'dead';

-- purge_finished() and dashboards look up terminal rows by age.
create index if not exists job_queue_finished_idx
  on public.job_queue (queue, finished_at)
  where state in ('done', 'dead');

drop trigger if exists job_queue_touch_updated_at on public.job_queue;
create trigger job_queue_touch_updated_at
  before update on public.job_queue
  for each row execute function cinema_private.touch_updated_at();

-- Internal: no policies, so with RLS on and no grants PostgREST's roles can neither see nor touch it.
alter table public.job_queue enable row level security;
revoke all on table public.job_queue from anon, authenticated;
