-- The subscription checkout an account has open at the provider: a new one expires it first, so two
-- tabs (or two plans tried in turn) can never both be paid into two subscriptions.
alter table public.payment_customers add column if not exists open_checkout_ref text;
