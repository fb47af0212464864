-- Accounts and identity: users, login sessions (refresh-token families), email tokens, two-factor,
-- social identities, viewer profiles, the audit log and the mail outbox.
-- Tokens and codes are stored only as hashes; the TOTP secret only encrypted (AES-GCM, key from settings).
-- Every table has RLS on. Users and profiles are readable by their owner through PostgREST with our
-- Supabase-compatible access tokens (auth.uid() = sub); everything else is internal to the platform.

create table if not exists public.users (
  id uuid primary key default gen_random_uuid(),
  email text not null,
  email_verified_at timestamptz,
  password_hash text,                      -- null for an account created through social login only
  password_changed_at timestamptz,
  display_name text,
  roles text[] not null default array['viewer']::text[],
  status text not null default 'active',
  disabled_reason text,
  last_login_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint users_status_check check (status in ('active', 'disabled')),
  constraint users_roles_check check (
    roles <@ array['viewer', 'content_manager', 'ads_manager', 'support', 'admin']::text[]
  ),
  constraint users_email_length check (char_length(email) between 3 and 254)
);
-- Emails compare case-insensitively: one account per address however it is typed.
create unique index if not exists users_email_key on public.users (lower(email));
create index if not exists users_created_at_idx on public.users (created_at desc, id desc);

drop trigger if exists users_touch_updated_at on public.users;
create trigger users_touch_updated_at
  before update on public.users
  for each row execute function cinema_private.touch_updated_at();

-- A login session is one refresh-token family on one device; its id travels in the access token.
create table if not exists public.auth_sessions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,
  aal text not null default 'aal1',
  amr text[] not null default array[]::text[],
  profile_id uuid,
  user_agent text,
  ip inet,
  device_name text,
  created_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  expires_at timestamptz not null,
  revoked_at timestamptz,
  revoked_reason text,
  constraint auth_sessions_aal_check check (aal in ('aal1', 'aal2'))
);
create index if not exists auth_sessions_user_idx on public.auth_sessions (user_id, last_seen_at desc);

create table if not exists public.auth_refresh_tokens (
  token_hash bytea primary key,            -- sha256 of the opaque token
  session_id uuid not null references public.auth_sessions (id) on delete cascade,
  issued_at timestamptz not null default now(),
  used_at timestamptz
);
create index if not exists auth_refresh_tokens_session_idx on public.auth_refresh_tokens (session_id);

-- Single-use, expiring tokens sent by email (verification, reset, email change).
create table if not exists public.auth_email_tokens (
  token_hash bytea primary key,
  user_id uuid not null references public.users (id) on delete cascade,
  purpose text not null,
  email text not null,                     -- the address the link was sent to
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  used_at timestamptz,
  constraint auth_email_tokens_purpose_check
    check (purpose in ('verify_email', 'reset_password', 'change_email'))
);
create index if not exists auth_email_tokens_user_idx on public.auth_email_tokens (user_id, purpose);

-- Two-factor: one TOTP factor per account, and its single-use backup codes.
create table if not exists public.mfa_totp (
  user_id uuid primary key references public.users (id) on delete cascade,
  secret_encrypted text not null,
  confirmed_at timestamptz,
  last_used_step bigint,                   -- the last accepted 30 s time step: older or equal is a replay
  created_at timestamptz not null default now()
);

create table if not exists public.mfa_backup_codes (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,
  code_hash text not null,
  used_at timestamptz,
  created_at timestamptz not null default now()
);
create index if not exists mfa_backup_codes_user_idx on public.mfa_backup_codes (user_id);

-- Social login identities, keyed by (provider, subject); provider 'supabase' maps Supabase Auth users.
create table if not exists public.auth_identities (
  provider text not null,
  subject text not null,
  user_id uuid not null references public.users (id) on delete cascade,
  email text,
  created_at timestamptz not null default now(),
  last_login_at timestamptz,
  primary key (provider, subject)
);
create index if not exists auth_identities_user_idx on public.auth_identities (user_id);

-- Viewer profiles: up to five per account (enforced by the service under a lock on the user row).
create table if not exists public.profiles (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,
  name text not null,
  avatar_url text,
  avatar_key text,
  language text not null default 'en',
  maturity_level text not null default '18+',
  is_kids boolean not null default false,
  autoplay_next boolean not null default true,
  autoplay_previews boolean not null default true,
  pin_hash text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint profiles_name_length check (char_length(name) between 1 and 50),
  constraint profiles_maturity_check check (maturity_level in ('all', '7+', '13+', '16+', '18+'))
);
create unique index if not exists profiles_user_name_key on public.profiles (user_id, lower(name));

drop trigger if exists profiles_touch_updated_at on public.profiles;
create trigger profiles_touch_updated_at
  before update on public.profiles
  for each row execute function cinema_private.touch_updated_at();

alter table public.auth_sessions
  drop constraint if exists auth_sessions_profile_fk;
alter table public.auth_sessions
  add constraint auth_sessions_profile_fk
  foreign key (profile_id) references public.profiles (id) on delete set null;

-- Security events and role changes. Rows outlive a deleted account but lose its personal data.
create table if not exists public.audit_log (
  id bigint generated always as identity primary key,
  occurred_at timestamptz not null default now(),
  event text not null,
  actor_id uuid,
  subject_id uuid,
  ip inet,
  user_agent text,
  details jsonb not null default '{}'::jsonb,
  constraint audit_log_details_is_object check (jsonb_typeof(details) = 'object')
);
create index if not exists audit_log_subject_idx on public.audit_log (subject_id, id desc);
create index if not exists audit_log_event_idx on public.audit_log (event, id desc);

-- Mail: every message is written here in the sender's transaction, then delivered by a queued job
-- (SendGrid in production). Locally this table is the inbox a developer reads.
create table if not exists public.mail_outbox (
  id uuid primary key default gen_random_uuid(),
  user_id uuid references public.users (id) on delete cascade,
  to_address text not null,
  template text not null,
  subject text not null,
  text_body text not null,
  html_body text,
  state text not null default 'queued',
  provider_message_id text,
  attempts integer not null default 0,
  last_error text,
  created_at timestamptz not null default now(),
  sent_at timestamptz,
  constraint mail_outbox_state_check check (state in ('queued', 'sent', 'failed'))
);
create index if not exists mail_outbox_created_idx on public.mail_outbox (created_at desc);
create index if not exists mail_outbox_user_idx on public.mail_outbox (user_id);

-- Row level security. Owners may read their own account and profiles through PostgREST.
alter table public.users enable row level security;
alter table public.auth_sessions enable row level security;
alter table public.auth_refresh_tokens enable row level security;
alter table public.auth_email_tokens enable row level security;
alter table public.mfa_totp enable row level security;
alter table public.mfa_backup_codes enable row level security;
alter table public.auth_identities enable row level security;
alter table public.profiles enable row level security;
alter table public.audit_log enable row level security;
alter table public.mail_outbox enable row level security;

revoke all on table
  public.users, public.auth_sessions, public.auth_refresh_tokens, public.auth_email_tokens,
  public.mfa_totp, public.mfa_backup_codes, public.auth_identities, public.profiles,
  public.audit_log, public.mail_outbox
  from anon, authenticated;

grant select (id, email, email_verified_at, display_name, roles, status, created_at)
  on public.users to authenticated;
drop policy if exists users_select_own on public.users;
create policy users_select_own on public.users
  for select to authenticated using (id = auth.uid());

grant select (id, user_id, name, avatar_url, language, maturity_level, is_kids, autoplay_next,
              autoplay_previews, created_at, updated_at)
  on public.profiles to authenticated;
drop policy if exists profiles_select_own on public.profiles;
create policy profiles_select_own on public.profiles
  for select to authenticated using (user_id = auth.uid());
