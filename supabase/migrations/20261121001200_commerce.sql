-- Commerce: plans and their prices, rental/purchase/pay-per-view offers, payment customers, subscriptions,
-- purchases, invoices, processed provider events, idempotency records and the local sandbox provider's
-- objects. Money is integer minor units with an ISO 4217 currency everywhere. All internal (RLS on, no
-- policies): the API applies the rules. Entitlements (what may be played) stay in public.entitlements,
-- written only through shared.entitlements.service.

-- Plans: what a subscriber gets. The free plan (is_free) is what everyone has without paying: it has no
-- prices and is never subscribed to; its limits are shown to viewers (playback applies FREE_MAX_*).
create table if not exists public.plans (
  code text primary key,
  name text not null,
  description text not null default '',
  tier smallint not null default 0,                     -- compared with catalog_titles.min_tier
  max_streams smallint not null,
  max_height integer not null,                          -- 720, 1080, 2160...
  ad_free boolean not null default true,
  trial_days smallint not null default 0,               -- first subscription of an account only
  is_free boolean not null default false,
  active boolean not null default true,                 -- offered to new subscribers
  sort_order smallint not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint plans_code_check check (code ~ '^[a-z][a-z0-9_-]{1,39}$'),
  constraint plans_name_check check (char_length(name) between 1 and 80),
  constraint plans_tier_check check (tier between 0 and 10),
  constraint plans_limits_check check (max_streams between 1 and 20 and max_height between 144 and 4320),
  constraint plans_trial_check check (trial_days between 0 and 365)
);

-- A plan's price in one currency and billing interval. Prices are immutable once used (like Stripe's):
-- a new amount is a new row and the old one is deactivated, so existing subscribers keep theirs.
create table if not exists public.plan_prices (
  id uuid primary key default gen_random_uuid(),
  plan_code text not null references public.plans (code) on update cascade on delete cascade,
  currency text not null,
  billing_interval text not null,
  amount_minor integer not null,
  provider text,                                        -- 'stripe' / 'sandbox' once created there
  provider_price_ref text,                              -- the provider's price id
  active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint plan_prices_currency_check check (currency ~ '^[A-Z]{3}$'),
  constraint plan_prices_interval_check check (billing_interval in ('month', 'year')),
  constraint plan_prices_amount_check check (amount_minor > 0 and amount_minor <= 100000000),
  constraint plan_prices_ref_check check ((provider is null) = (provider_price_ref is null))
);
create unique index if not exists plan_prices_current_key
  on public.plan_prices (plan_code, currency, billing_interval) where active;
create unique index if not exists plan_prices_provider_ref_key
  on public.plan_prices (provider, provider_price_ref) where provider_price_ref is not null;

-- Pay-per-view events: a title sold during one window and watchable during another.
create table if not exists public.ppv_events (
  id uuid primary key default gen_random_uuid(),
  title_id uuid not null references public.catalog_titles (id) on delete cascade,
  name text not null,
  sale_starts_at timestamptz not null,
  sale_ends_at timestamptz not null,
  view_starts_at timestamptz not null,
  view_ends_at timestamptz not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint ppv_events_name_check check (char_length(name) between 1 and 200),
  constraint ppv_events_sale_check check (sale_starts_at < sale_ends_at),
  constraint ppv_events_view_check check (view_starts_at < view_ends_at and sale_ends_at <= view_ends_at)
);
create index if not exists ppv_events_title_idx on public.ppv_events (title_id, view_starts_at);

-- What a title costs to rent, buy or watch at a pay-per-view event, per currency.
create table if not exists public.title_offers (
  id uuid primary key default gen_random_uuid(),
  title_id uuid not null references public.catalog_titles (id) on delete cascade,
  kind text not null,
  ppv_event_id uuid references public.ppv_events (id) on delete cascade,
  currency text not null,
  amount_minor integer not null,
  active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint title_offers_kind_check check (kind in ('rental', 'purchase', 'ppv')),
  constraint title_offers_ppv_check check ((kind = 'ppv') = (ppv_event_id is not null)),
  constraint title_offers_currency_check check (currency ~ '^[A-Z]{3}$'),
  constraint title_offers_amount_check check (amount_minor > 0 and amount_minor <= 100000000)
);
create unique index if not exists title_offers_current_key on public.title_offers
  (title_id, kind, currency, coalesce(ppv_event_id, '00000000-0000-0000-0000-000000000000'::uuid))
  where active;

-- The provider's customer for an account (created before the first checkout).
create table if not exists public.payment_customers (
  user_id uuid not null references public.users (id) on delete cascade,
  provider text not null,
  customer_ref text not null,
  created_at timestamptz not null default now(),
  primary key (user_id, provider)
);
create unique index if not exists payment_customers_ref_key on public.payment_customers (provider, customer_ref);

-- Subscriptions as last read from the provider (its state wins, never the order events arrived in).
create table if not exists public.subscriptions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,
  provider text not null,
  provider_ref text not null,
  customer_ref text,
  plan_code text not null references public.plans (code) on update cascade,
  price_id uuid references public.plan_prices (id) on delete set null,
  status text not null,
  billing_interval text,
  currency text,
  amount_minor integer,
  current_period_start timestamptz,
  current_period_end timestamptz,
  trial_end timestamptz,
  cancel_at_period_end boolean not null default false,
  canceled_at timestamptz,
  ended_at timestamptz,
  past_due_since timestamptz,                           -- first seen past_due (cleared when paid)
  grace_ends_at timestamptz,                            -- paid access ends here unless paid meanwhile
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint subscriptions_status_check check (status in
    ('incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due', 'unpaid', 'canceled', 'paused'))
);
create unique index if not exists subscriptions_provider_ref_key on public.subscriptions (provider, provider_ref);
create index if not exists subscriptions_user_idx on public.subscriptions (user_id, created_at desc);

-- Rentals, purchases and pay-per-view tickets: pending until the provider says the payment succeeded.
create table if not exists public.purchases (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,
  kind text not null,
  title_id uuid references public.catalog_titles (id) on delete set null,
  title_name text not null,                             -- kept for the record if the title goes
  offer_id uuid references public.title_offers (id) on delete set null,
  ppv_event_id uuid references public.ppv_events (id) on delete set null,
  currency text not null,
  amount_minor integer not null,
  status text not null default 'pending',
  provider text not null,
  checkout_ref text,
  payment_ref text,                                     -- payment intent id once paid
  play_window_seconds integer,                          -- rental: from first play
  access_starts_at timestamptz,                         -- ppv: the viewing window
  access_ends_at timestamptz,                           -- rental: start by; ppv: viewing window end
  entitlement_id uuid references public.entitlements (id) on delete set null,
  paid_at timestamptz,
  ended_at timestamptz,                                 -- refunded, disputed, canceled or failed
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint purchases_kind_check check (kind in ('rental', 'purchase', 'ppv')),
  constraint purchases_status_check check (status in
    ('pending', 'paid', 'failed', 'canceled', 'refunded', 'disputed')),
  constraint purchases_currency_check check (currency ~ '^[A-Z]{3}$'),
  constraint purchases_amount_check check (amount_minor > 0)
);
create unique index if not exists purchases_checkout_key on public.purchases (provider, checkout_ref)
  where checkout_ref is not null;
create index if not exists purchases_user_idx on public.purchases (user_id, created_at desc);
create index if not exists purchases_payment_idx on public.purchases (provider, payment_ref)
  where payment_ref is not null;

-- One invoice per charge (subscription invoices and one-off purchases), numbered without gaps per issue.
create sequence if not exists public.invoice_number_seq;
create table if not exists public.invoices (
  id uuid primary key default gen_random_uuid(),
  number text not null default ('CIN-' || lpad(nextval('public.invoice_number_seq')::text, 8, '0')),
  user_id uuid not null references public.users (id) on delete cascade,
  provider text not null,
  provider_ref text not null,                           -- Stripe invoice id, or the checkout for a purchase
  provider_number text,
  subscription_id uuid references public.subscriptions (id) on delete set null,
  purchase_id uuid references public.purchases (id) on delete set null,
  status text not null,
  currency text not null,
  subtotal_minor integer not null,
  tax_minor integer not null default 0,
  total_minor integer not null,
  amount_paid_minor integer not null default 0,
  amount_refunded_minor integer not null default 0,
  lines jsonb not null default '[]'::jsonb,             -- [{description, quantity, amount_minor, ...}]
  tax_lines jsonb not null default '[]'::jsonb,         -- [{description, rate_percent, amount_minor, inclusive}]
  payment_ref text,
  billing_reason text,
  issued_at timestamptz not null,
  paid_at timestamptz,
  receipt_sent_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint invoices_status_check check (status in ('open', 'paid', 'void', 'uncollectible', 'refunded')),
  constraint invoices_currency_check check (currency ~ '^[A-Z]{3}$')
);
create unique index if not exists invoices_number_key on public.invoices (number);
create unique index if not exists invoices_provider_ref_key on public.invoices (provider, provider_ref);
create index if not exists invoices_user_idx on public.invoices (user_id, issued_at desc);
create index if not exists invoices_payment_idx on public.invoices (provider, payment_ref)
  where payment_ref is not null;

-- Provider events already handled: inserted in the same transaction as the event's effect, so a replay
-- or a parallel delivery of the same event finds the row and does nothing (exactly once).
create table if not exists public.payment_events (
  provider text not null,
  event_id text not null,
  type text not null,
  object_id text,
  outcome text not null,                                -- processed | ignored
  received_at timestamptz not null default now(),
  primary key (provider, event_id),
  constraint payment_events_outcome_check check (outcome in ('processed', 'ignored'))
);
create index if not exists payment_events_received_idx on public.payment_events (received_at);

-- Idempotency-Key records of POST subscribe / purchase: the same key and body replay the first answer.
create table if not exists public.payment_idempotency (
  user_id uuid not null references public.users (id) on delete cascade,
  key text not null,
  scope text not null,                                  -- 'subscribe' | 'purchase' | ...
  request_hash text not null,
  status_code smallint,
  response jsonb,
  created_at timestamptz not null default now(),
  primary key (user_id, key)
);
create index if not exists payment_idempotency_created_idx on public.payment_idempotency (created_at);

-- The local sandbox provider's own state (customers, checkout sessions, subscriptions, invoices, charges),
-- shaped like Stripe's objects so the same event handling reads them back.
create table if not exists public.sandbox_payment_objects (
  id text primary key,
  kind text not null,
  data jsonb not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index if not exists sandbox_payment_objects_kind_idx on public.sandbox_payment_objects (kind, created_at);

alter table public.plans enable row level security;
alter table public.plan_prices enable row level security;
alter table public.ppv_events enable row level security;
alter table public.title_offers enable row level security;
alter table public.payment_customers enable row level security;
alter table public.subscriptions enable row level security;
alter table public.purchases enable row level security;
alter table public.invoices enable row level security;
alter table public.payment_events enable row level security;
alter table public.payment_idempotency enable row level security;
alter table public.sandbox_payment_objects enable row level security;
revoke all on table public.plans, public.plan_prices, public.ppv_events, public.title_offers,
  public.payment_customers, public.subscriptions, public.purchases, public.invoices, public.payment_events,
  public.payment_idempotency, public.sandbox_payment_objects from anon, authenticated;
revoke all on sequence public.invoice_number_seq from anon, authenticated;

do $$
declare t text;
begin
  foreach t in array array['plans', 'plan_prices', 'ppv_events', 'title_offers', 'subscriptions',
                           'purchases', 'invoices', 'sandbox_payment_objects'] loop
    execute format('drop trigger if exists %1$s_touch_updated_at on public.%1$s', t);
    execute format('create trigger %1$s_touch_updated_at before update on public.%1$s '
                   'for each row execute function cinema_private.touch_updated_at()', t);
  end loop;
end $$;

-- The default plans (admins rename them and change prices through the API; never overwritten here).
insert into public.plans (code, name, description, tier, max_streams, max_height, ad_free, trial_days,
                          is_free, sort_order) values
  ('free', 'Free with ads', 'Free titles with ads, one screen, up to 720p.', 0, 1, 720, false, 0, true, 0),
  ('basic', 'Basic', 'The subscription catalog without ads, one screen, up to 720p.', 1, 1, 720, true, 7,
   false, 1),
  ('standard', 'Standard', 'Two screens at once, Full HD, no ads.', 2, 2, 1080, true, 7, false, 2),
  ('premium', 'Premium', 'Four screens at once, 4K where available, no ads.', 3, 4, 2160, true, 7, false, 3)
on conflict (code) do nothing;
insert into public.plan_prices (plan_code, currency, billing_interval, amount_minor)
select p.plan_code, p.currency, p.billing_interval, p.amount_minor
from (values
  ('basic', 'USD', 'month', 699), ('basic', 'USD', 'year', 6990),
  ('basic', 'EUR', 'month', 699), ('basic', 'EUR', 'year', 6990),
  ('standard', 'USD', 'month', 1299), ('standard', 'USD', 'year', 12990),
  ('standard', 'EUR', 'month', 1199), ('standard', 'EUR', 'year', 11990),
  ('premium', 'USD', 'month', 1999), ('premium', 'USD', 'year', 19990),
  ('premium', 'EUR', 'month', 1799), ('premium', 'EUR', 'year', 17990)
) as p (plan_code, currency, billing_interval, amount_minor)
where not exists (select 1 from public.plan_prices);
