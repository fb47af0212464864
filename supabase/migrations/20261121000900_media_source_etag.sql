-- The ETag of a source object when its upload completed: the transcoder compares it with what storage
-- holds before a (re-)encode, so a source replaced after completion is detected instead of encoded.
alter table public.media_sources add column if not exists etag text;

-- The orphan sweep's query: aborted and rejected uploads whose objects were not removed yet.
create index if not exists media_sources_orphan_idx on public.media_sources (updated_at)
  where state in ('aborted', 'rejected') and deleted_at is null;
