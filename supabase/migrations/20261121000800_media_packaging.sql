-- Packaged facts of an asset's renditions (PackagedRendition as JSON: codecs, bandwidths, segment
-- durations, playlist paths), so manifests can be rewritten (new subtitles, more rungs) from the database
-- and the subtitle files alone, without downloading or re-packaging any segment.
alter table public.media_assets add column if not exists packaging jsonb not null default '{}'::jsonb;
