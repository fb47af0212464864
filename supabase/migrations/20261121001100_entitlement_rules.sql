-- Entitlement rules the playback code relies on, enforced where commerce writes them.
-- A play window is a positive number of seconds (0 would be a rental that can never be watched, and code
-- reading it as "no window" would make it watchable forever); a rental is bounded by a play window or an
-- end (else it would be a purchase).
do $$ begin
  alter table public.entitlements add constraint entitlements_play_window_check
    check (play_window_seconds is null or play_window_seconds > 0);
exception when duplicate_object then null; end $$;
do $$ begin
  alter table public.entitlements add constraint entitlements_rental_bounded_check
    check (kind <> 'rental' or play_window_seconds is not null or ends_at is not null);
exception when duplicate_object then null; end $$;

-- The every-minute maintenance closes the records of streams whose player vanished (no heartbeat, no
-- stop): only open records are indexed, so the lookup stays small however long the history grows.
create index if not exists stream_sessions_open_idx
  on public.stream_sessions (last_heartbeat_at) where ended_at is null;
