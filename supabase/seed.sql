-- Demo data for local development, applied by `cinema seed` (and by `make dev` after migrating) and by
-- `supabase db reset`. Every statement must be idempotent (ON CONFLICT DO NOTHING / WHERE NOT EXISTS):
-- it runs on every start. Domains add their demo rows here as they land (catalog, plans, ...).
select 1;
