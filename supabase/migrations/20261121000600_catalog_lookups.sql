-- Lookups the catalog's write and browse paths make: import matches people by name or IMDb id, and the
-- trending row reads the last week of ratings and My List additions.

create index if not exists catalog_people_name_idx on public.catalog_people (lower(name)) where deleted_at is null;
create index if not exists catalog_people_imdb_idx on public.catalog_people (imdb_id)
  where imdb_id is not null and deleted_at is null;
create index if not exists catalog_ratings_recent_idx on public.catalog_ratings (rated_at desc);
create index if not exists catalog_my_list_added_idx on public.catalog_my_list (added_at desc);
create index if not exists catalog_titles_az_idx
  on public.catalog_titles (lower(cinema_private.unaccent_text(title)), id) where deleted_at is null;
