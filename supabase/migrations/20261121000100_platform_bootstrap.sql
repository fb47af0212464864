-- Platform bootstrap: what Supabase provides, created on plain PostgreSQL only when missing, so every
-- later migration (policies naming roles, auth.uid()) applies unchanged on both.

do $$
begin
  if not exists (select from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
exception when duplicate_object or unique_violation then
  null; -- roles are cluster-wide: another database's migration created them first
end
$$;

create schema if not exists auth;
create schema if not exists extensions;

-- auth.uid()/auth.role()/auth.jwt() read the claims PostgREST puts in the session, as on Supabase.
do $$
begin
  if to_regprocedure('auth.jwt()') is null then
    create function auth.jwt() returns jsonb language sql stable as
      $f$ select coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb $f$;
  end if;
  if to_regprocedure('auth.uid()') is null then
    create function auth.uid() returns uuid language sql stable as
      $f$ select nullif(auth.jwt() ->> 'sub', '')::uuid $f$;
  end if;
  if to_regprocedure('auth.role()') is null then
    create function auth.role() returns text language sql stable as
      $f$ select nullif(auth.jwt() ->> 'role', '') $f$;
  end if;
end
$$;

-- Shared trigger function keeping updated_at honest; kept out of the exposed public schema.
create schema if not exists cinema_private;
revoke all on schema cinema_private from public;

create or replace function cinema_private.touch_updated_at() returns trigger
language plpgsql as $$
begin
  new.updated_at := now();
  return new;
end
$$;
