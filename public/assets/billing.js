// The account billing page (/account/billing/): the plan, plans to subscribe to, renting or buying a title,
// rentals and purchases, invoices. One module, no inline scripts and no third-party code (strict CSP).
// The shell (header, live regions, toasts), the API client, the session and the formatters are app.js's; this
// module keeps what is billing's own: Idempotency-Key retries, the checkout return and the invoice tab.

import {
  api,
  clearSession,
  codeOf,
  formatDate,
  formatDateTime,
  formatMoney,
  loadSession,
  mountShell,
  NetworkError,
  notify,
  plural,
  problemText,
  showError,
  startPage,
  sectionMessages,
} from "/assets/app.js";

const PAYMENTS = "/payments";
const PAGE_ERROR = "Something went wrong on this page. Reload it and try again.";
const SESSION_ENDED = "Your session has ended. Sign in again to manage your plan.";
const POLL_ATTEMPTS = 6;
const POLL_DELAY_MS = 1000;
const BLOB_LIFETIME_MS = 10 * 60 * 1000;
// A subscription the account has now (the API answers the free plan when there is none).
const LIVE = new Set(["trialing", "active", "past_due", "unpaid", "incomplete", "paused"]);
const CANCELABLE = new Set(["trialing", "active", "past_due"]);

const STATUS_TEXT = {
  free: "Free plan",
  trialing: "Free trial",
  active: "Active",
  past_due: "Payment overdue",
  unpaid: "Unpaid",
  incomplete: "Waiting for payment",
  incomplete_expired: "Payment not completed",
  paused: "Paused",
  canceled: "Ended",
};
const PURCHASE_KIND = { rental: "Rental", purchase: "Purchase", ppv: "Pay-per-view ticket" };
const PURCHASE_STATUS = {
  pending: "Waiting for payment",
  paid: "Paid",
  failed: "Payment failed",
  canceled: "Cancelled",
  refunded: "Refunded",
  disputed: "Disputed",
};
const INVOICE_STATUS = {
  open: "Open",
  paid: "Paid",
  void: "Void",
  uncollectible: "Uncollectible",
  refunded: "Refunded",
};
/** The person is not (or no longer) signed in: the page already shows the sign-in link. */
class SignedOut extends Error {}

const state = {
  subscription: null,
  plans: null,
  currency: "USD",
  interval: "month",
  picked: null, // {id, title} of the title whose offers are shown
  purchasesCursor: null,
  invoicesCursor: null,
};

// --- formatting (app.js's formatters; money keeps the minor units the API states) -------------------------

/** An amount in minor units as the reader's locale writes money (the API's minor-unit digits when given). */
function money(amountMinor, currency, digitsGiven) {
  return formatMoney(amountMinor, currency, { digits: digitsGiven });
}

const day = (iso) => formatDate(iso, { style: "long" });
const moment = (iso) => formatDateTime(iso);

function quality(height) {
  if (height >= 2160) return `4K Ultra HD (${height}p)`;
  if (height >= 1080) return `Full HD (${height}p)`;
  if (height >= 720) return `HD (${height}p)`;
  return `${height}p`;
}

const screens = (count) => `${plural(count, "screen")} at once`;

const per = (interval) => (interval === "year" ? "year" : "month");

// --- DOM helpers (text only: nothing from the API is parsed as HTML here) -------------------------------

const $ = (id) => document.getElementById(id);

function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "className") element.className = value;
    else if (name === "hidden") element.hidden = Boolean(value);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

function facts(rows) {
  return h("dl", { className: "facts" }, rows.filter(Boolean).map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

function hiddenText(text) {
  return h("span", { className: "visually-hidden" }, text);
}

// --- messages: shown in the section of the action under way and spoken through app.js's live regions ----

// say() good news, fail() bad news: in the panel of the action under way (messages.at), until the next.
const messages = sectionMessages(".panel");
const { say, fail, clear: clearMessages } = messages;

/** The outcome of a checkout (?checkout=...), at the top of the page until the page is left. */
function banner(text, tone = "ok") {
  const element = $("banner");
  element.className = `notice ${tone}`;
  element.textContent = text;
  notify(text); // news, not an error, even when the checkout was cancelled
}

// --- talking to the API (app.js's client: the bearer, one refresh on a 401, problem+json) --------------

function sessionEnded() {
  clearSession();
  mountShell({ nav: "account" }); // the header's signed-out links
  showSignedOut();
  fail(SESSION_ENDED, null);
  return new SignedOut(SESSION_ENDED);
}

/** A call with the tab's session; a 401 that a refresh could not cure ends the session on this page. */
async function call(method, path, options = {}) {
  const stored = loadSession();
  if (!stored || !stored.access_token) throw sessionEnded();
  const result = await api(method, path, options);
  if (result.status === 401) throw sessionEnded();
  return result;
}

/**
 * GET an HTML page of the API (the invoice) as text: app.js's client reads JSON only. A 401 lets the
 * client renew the tokens on `renewPath` (a JSON call), then the page is asked for once more.
 */
async function callHtml(path, renewPath) {
  for (let attempt = 1; ; attempt += 1) {
    const stored = loadSession();
    if (!stored || !stored.access_token) throw sessionEnded();
    let response;
    try {
      response = await fetch(`/api/v1${path}`, {
        headers: { accept: "text/html, application/problem+json", authorization: `Bearer ${stored.access_token}` },
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (error) {
      throw new NetworkError("We could not reach Cinema Online. Check your connection and try again.", {
        cause: error,
      });
    }
    if (response.status === 401 && attempt === 1) {
      await call("GET", renewPath);
      continue;
    }
    if (response.status === 401) throw sessionEnded();
    const type = response.headers.get("content-type") || "";
    if (response.ok) return { ok: true, status: response.status, data: null, text: await response.text() };
    let data = null;
    if (type.includes("json")) {
      try {
        data = await response.json();
      } catch {
        data = null; // a proxy's error page with a JSON label: problemText falls back to the status
      }
    }
    return { ok: false, status: response.status, data, text: null };
  }
}

// Idempotency-Key per intent (what was clicked, with what): a retry of the same click after a network error
// or a server error sends the same key, so it can never start a second checkout or charge.
const intents = new Map();

function newKey() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
  const bytes = window.crypto.getRandomValues(new Uint8Array(16)); // plain-http LAN address: no randomUUID
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A POST with an Idempotency-Key kept for this intent until it gets a final answer. */
async function idempotentPost(path, body) {
  const intent = JSON.stringify([path, body ?? null]);
  if (!intents.has(intent)) intents.set(intent, newKey());
  let result;
  try {
    result = await call("POST", path, { body, headers: { "idempotency-key": intents.get(intent) } });
  } catch (error) {
    if (!(error instanceof NetworkError)) intents.delete(intent); // a network error keeps the key for a retry
    throw error;
  }
  const code = codeOf(result);
  const retryable = result.status >= 500 || result.status === 429 || code === "idempotency_key_in_use";
  if (!retryable) intents.delete(intent);
  return result;
}

/** Run a button's action: one at a time, messages cleared, the button busy meanwhile, errors shown. */
async function busy(button, action) {
  if (button && button.getAttribute("aria-busy") === "true") return;
  clearMessages();
  messages.at(button);
  if (button) {
    button.setAttribute("aria-busy", "true");
    button.disabled = true;
  }
  try {
    await action();
  } catch (error) {
    report(error, button);
  } finally {
    if (button) {
      button.removeAttribute("aria-busy");
      button.disabled = false;
    }
  }
}

/** An exception: a network failure's own words where it happened, else app.js's generic message. */
function report(error, near) {
  if (error instanceof SignedOut) return;
  if (error instanceof NetworkError) fail(error.message, near);
  else showError(error);
}

function go(url) {
  let target;
  try {
    target = new URL(url, window.location.href);
  } catch {
    fail(PAGE_ERROR);
    return;
  }
  if (target.protocol !== "https:" && target.protocol !== "http:") {
    fail(PAGE_ERROR);
    return;
  }
  window.location.assign(target.href);
}

// --- sections -------------------------------------------------------------------------------------------

function showSignedOut() {
  $("billing").hidden = true;
  $("signed-out").hidden = false;
}

function showBilling() {
  $("signed-out").hidden = true;
  $("billing").hidden = false;
}

function isLive(subscription) {
  return Boolean(subscription && !subscription.is_free && LIVE.has(subscription.status));
}

// (1) Your plan

async function loadSubscription() {
  const result = await call("GET", `${PAYMENTS}/subscription`);
  if (!result.ok) {
    fail(problemText(result));
    if (!state.subscription) {
      $("plan-summary").replaceChildren(h("p", { className: "muted" }, "Your plan could not be loaded. Reload the page to try again."));
      $("plan-section").removeAttribute("aria-busy");
    }
    return null;
  }
  renderSubscription(result.data);
  return result.data;
}

function renderSubscription(subscription) {
  state.subscription = subscription;
  const live = isLive(subscription);
  const rows = [
    ["Plan", subscription.plan_name],
    ["Status", STATUS_TEXT[subscription.status] || subscription.status],
  ];
  if (!subscription.is_free && subscription.amount_minor !== null && subscription.currency) {
    rows.push(["Price", `${money(subscription.amount_minor, subscription.currency)} per ${per(subscription.interval)}`]);
  }
  if (subscription.status === "trialing" && subscription.trial_end) {
    rows.push(["Free trial ends", day(subscription.trial_end)]);
  }
  if (live && subscription.current_period_end) {
    rows.push(
      subscription.cancel_at_period_end
        ? ["Ends on", day(subscription.current_period_end)]
        : ["Renews on", day(subscription.current_period_end)],
    );
  }
  const limits = subscription.limits;
  rows.push(
    ["Screens", screens(limits.max_streams)],
    ["Best quality", quality(limits.max_height)],
    ["Ads", limits.ads ? "With ads" : "No ads"],
  );

  const notes = [];
  if (live && subscription.cancel_at_period_end && subscription.current_period_end) {
    notes.push(
      h(
        "p",
        { className: "notice warn", id: "plan-ending" },
        `Your plan is cancelled and ends on ${day(subscription.current_period_end)}. ` +
          "After that you are on the free plan. Resume it to keep it.",
      ),
    );
  }
  if (subscription.status === "past_due") {
    const until = subscription.grace_ends_at || subscription.paid_access_until;
    notes.push(
      h(
        "p",
        { className: "notice error", id: "plan-past-due" },
        "Your last payment failed. " +
          (until
            ? `Update your payment method before ${moment(until)} to keep your plan; after that your account moves to the free plan.`
            : "Update your payment method to keep your plan."),
      ),
    );
  } else if (subscription.status === "unpaid" || (live && !subscription.paid_access)) {
    notes.push(
      h(
        "p",
        { className: "notice error" },
        "Your plan is not paid, so the free plan's limits apply. Update your payment method to get it back.",
      ),
    );
  }
  $("plan-summary").replaceChildren(...notes, facts(rows));
  $("plan-section").removeAttribute("aria-busy");

  $("change-plan").hidden = !live;
  $("cancel-plan").hidden = !(live && CANCELABLE.has(subscription.status) && !subscription.cancel_at_period_end);
  $("resume-plan").hidden = !(live && subscription.cancel_at_period_end);
  $("manage-payment").hidden = subscription.is_free || !subscription.provider;
  if (state.plans) renderPlans();
}

async function subscriptionAction(button, path, done) {
  await busy(button, async () => {
    const result = await idempotentPost(`${PAYMENTS}${path}`);
    if (!result.ok) {
      fail(problemText(result));
      return;
    }
    renderSubscription(result.data);
    say(done(result.data));
    await loadInvoices();
  });
}

function wirePlanActions() {
  $("cancel-plan").addEventListener("click", (event) => {
    const subscription = state.subscription;
    const end = subscription && subscription.current_period_end ? ` on ${day(subscription.current_period_end)}` : "";
    if (!window.confirm(`Cancel your ${subscription ? subscription.plan_name : ""} plan? It stays until it ends${end}; nothing more is charged.`)) {
      return;
    }
    subscriptionAction(event.currentTarget, "/subscription/cancel", (view) =>
      `Your plan is cancelled. It ends on ${day(view.current_period_end)}.`,
    );
  });
  $("resume-plan").addEventListener("click", (event) => {
    subscriptionAction(event.currentTarget, "/subscription/resume", (view) =>
      view.current_period_end ? `Your plan continues and renews on ${day(view.current_period_end)}.` : "Your plan continues.",
    );
  });
  $("change-plan").addEventListener("click", () => {
    const heading = $("plans-title");
    heading.setAttribute("tabindex", "-1");
    heading.focus();
    heading.scrollIntoView({ block: "start" });
    say("Pick another plan or billing period below and choose “Switch”.", heading);
  });
  $("manage-payment").addEventListener("click", (event) => {
    busy(event.currentTarget, async () => {
      const result = await call("POST", `${PAYMENTS}/portal`);
      if (!result.ok) {
        fail(problemText(result));
        return;
      }
      say("Opening the billing portal…");
      go(result.data.url);
    });
  });
}

// (2) Plans

async function loadPlans() {
  const list = $("plan-list");
  list.setAttribute("aria-busy", "true");
  const result = await api("GET", `${PAYMENTS}/plans`, { query: { currency: state.currency }, auth: false });
  list.removeAttribute("aria-busy");
  if (!result.ok) {
    fail(problemText(result));
    return;
  }
  state.plans = result.data.plans || [];
  renderPlans();
}

function priceOf(plan) {
  return (plan.prices || []).find((price) => price.currency === state.currency && price.interval === state.interval);
}

function renderPlans() {
  const subscription = state.subscription;
  const live = isLive(subscription);
  const cards = state.plans.map((plan) => {
    const price = priceOf(plan);
    const current =
      subscription &&
      plan.code === subscription.plan_code &&
      (plan.is_free || !live || subscription.interval === state.interval);
    const features = h(
      "ul",
      { className: "features" },
      h("li", {}, screens(plan.max_streams)),
      h("li", {}, quality(plan.max_height)),
      h("li", {}, plan.ad_free ? "No ads" : "With ads"),
    );
    let priceLine;
    if (plan.is_free) priceLine = h("p", { className: "price" }, "Free");
    else if (price) {
      priceLine = h(
        "p",
        { className: "price" },
        h("strong", {}, money(price.amount_minor, price.currency, price.minor_units)),
        ` per ${per(price.interval)}`,
      );
    } else {
      priceLine = h(
        "p",
        { className: "price muted" },
        `Not offered ${state.interval === "year" ? "yearly" : "monthly"} in ${state.currency}.`,
      );
    }
    let action = null;
    if (current && (plan.is_free ? !live : true)) {
      action = h("p", { className: "current" }, "Your current plan");
    } else if (!plan.is_free && price) {
      if (live && subscription.currency && subscription.currency !== price.currency) {
        action = h(
          "p",
          { className: "muted" },
          `Your plan is billed in ${subscription.currency}: choose ${subscription.currency} above to switch.`,
        );
      } else if (live) {
        action = h(
          "button",
          { type: "button", className: "secondary", onclick: (event) => changePlan(event.currentTarget, plan) },
          "Switch",
          hiddenText(` to ${plan.name}`),
        );
      } else {
        action = h(
          "button",
          { type: "button", onclick: (event) => subscribe(event.currentTarget, plan) },
          "Subscribe",
          hiddenText(` to ${plan.name}`),
        );
      }
    }
    const trial =
      !plan.is_free && plan.trial_days > 0 && !live
        ? h("p", { className: "muted" }, `${plan.trial_days}-day free trial on your first subscription.`)
        : null;
    return h(
      "li",
      { className: current ? "plan-card current-plan" : "plan-card", "aria-labelledby": `plan-${plan.code}` },
      h("h3", { id: `plan-${plan.code}` }, plan.name),
      plan.description ? h("p", {}, plan.description) : null,
      priceLine,
      trial,
      features,
      action,
    );
  });
  $("plan-list").replaceChildren(...cards);
}

async function subscribe(button, plan) {
  await busy(button, async () => {
    const result = await idempotentPost(`${PAYMENTS}/subscribe`, {
      plan_code: plan.code,
      interval: state.interval,
      currency: state.currency,
    });
    if (!result.ok) {
      fail(problemText(result));
      return;
    }
    say("Taking you to the checkout…");
    go(result.data.checkout_url);
  });
}

async function changePlan(button, plan) {
  const price = priceOf(plan);
  const cost = price ? ` at ${money(price.amount_minor, price.currency)} per ${per(price.interval)}` : "";
  if (
    !window.confirm(
      `Switch to ${plan.name}${cost}? An upgrade is charged now for the rest of this period; a downgrade credits it.`,
    )
  ) {
    return;
  }
  await busy(button, async () => {
    const result = await idempotentPost(`${PAYMENTS}/subscription/change`, {
      plan_code: plan.code,
      interval: state.interval,
    });
    if (!result.ok) {
      fail(problemText(result));
      return;
    }
    renderSubscription(result.data);
    say(`You are now on ${result.data.plan_name}.`);
    await loadInvoices();
  });
}

function wirePlanOptions() {
  const form = $("plan-options");
  form.addEventListener("submit", (event) => event.preventDefault());
  $("currency").addEventListener("change", (event) => {
    state.currency = event.currentTarget.value;
    messages.at(event.currentTarget); // a failure shows in the Plans section
    loadPlans().catch((error) => report(error));
    if (state.picked) showOffers(state.picked).catch((error) => report(error));
  });
  for (const radio of form.querySelectorAll('input[name="interval"]')) {
    radio.addEventListener("change", () => {
      state.interval = form.querySelector('input[name="interval"]:checked').value;
      if (state.plans) renderPlans();
    });
  }
}

// (3) Rent or buy a title

function wireSearch() {
  const form = $("search-form");
  const input = $("title-query");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = input.value.trim();
    $("title-query-error").textContent = "";
    input.removeAttribute("aria-invalid");
    if (!q) {
      $("title-query-error").textContent = "Type a title to search for.";
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    busy(form.querySelector("button"), () => search(q));
  });
}

async function search(q) {
  $("offer").hidden = true;
  state.picked = null;
  const result = await call("GET", "/search", { query: { q, limit: 10 } });
  const list = $("search-results");
  if (!result.ok) {
    list.replaceChildren();
    $("search-summary").textContent = "";
    fail(problemText(result));
    return;
  }
  const items = result.data.items || [];
  $("search-summary").textContent = items.length
    ? `${plural(items.length, "title")} found. Pick one to see its prices.`
    : "No titles found.";
  list.replaceChildren(
    ...items.map((item) =>
      h(
        "li",
        {},
        h(
          "button",
          {
            type: "button",
            className: "secondary result",
            onclick: (event) => busy(event.currentTarget, () => showOffers({ id: item.id, title: item.title })),
          },
          item.title,
          item.year ? ` (${item.year})` : "",
          hiddenText(item.kind === "series" ? ", series" : ", movie"),
        ),
      ),
    ),
  );
}

async function showOffers(title) {
  state.picked = title;
  const result = await call(
    "GET",
    `${PAYMENTS}/titles/${encodeURIComponent(title.id)}/offers?currency=${encodeURIComponent(state.currency)}`,
  );
  const panel = $("offer");
  if (!result.ok) {
    panel.hidden = true;
    fail(problemText(result));
    return;
  }
  const offers = result.data;
  $("offer-title").textContent = title.title;
  const buttons = [];
  for (const offer of offers.rental || []) {
    buttons.push(offerButton(title, "rent", offer, `Rent for ${money(offer.amount_minor, offer.currency)}`));
  }
  for (const offer of offers.purchase || []) {
    buttons.push(offerButton(title, "buy", offer, `Buy for ${money(offer.amount_minor, offer.currency)}`));
  }
  for (const event of offers.ppv_events || []) {
    for (const offer of event.prices || []) {
      if (!event.on_sale) continue;
      buttons.push(
        offerButton(
          title,
          "ppv",
          offer,
          `Ticket for ${event.name}, ${money(offer.amount_minor, offer.currency)}`,
          event.id,
        ),
      );
    }
  }
  const notes = [];
  if (offers.rental && offers.rental.length) notes.push("A rental plays for 48 hours from when you start it.");
  if (offers.purchase && offers.purchase.length) notes.push("A purchase is yours to keep.");
  $("offer-note").textContent = buttons.length ? notes.join(" ") : `This title is not for rent or sale in ${state.currency}.`;
  $("offer-actions").replaceChildren(...buttons);
  panel.hidden = false;
  panel.focus();
}

function offerButton(title, kind, offer, text, eventId) {
  return h(
    "button",
    {
      type: "button",
      className: kind === "buy" ? "" : "secondary",
      onclick: (event) => purchase(event.currentTarget, title, kind, offer.currency, eventId),
    },
    text,
    hiddenText(`: ${title.title}`),
  );
}

async function purchase(button, title, kind, currency, eventId) {
  await busy(button, async () => {
    const body = { title_id: title.id, kind, currency };
    if (eventId) body.ppv_event_id = eventId;
    const result = await idempotentPost(`${PAYMENTS}/purchase`, body);
    if (!result.ok) {
      fail(problemText(result));
      return;
    }
    if (result.data.checkout_url) {
      say("Taking you to the checkout…");
      go(result.data.checkout_url);
      return;
    }
    say(`${title.title}: done.`);
    await loadPurchases();
  });
}

// (4) Rentals and purchases

function watchWindow(item) {
  if (item.kind === "rental" && item.rental) {
    const rental = item.rental;
    if (rental.expires_at) {
      return new Date(rental.expires_at) > new Date() ? `Plays until ${moment(rental.expires_at)}` : `Expired ${moment(rental.expires_at)}`;
    }
    if (rental.start_by) return `Start watching by ${day(rental.start_by)}`;
  }
  if (item.kind === "ppv" && item.viewing_window && item.viewing_window.starts_at) {
    return `Plays ${moment(item.viewing_window.starts_at)} to ${moment(item.viewing_window.ends_at)}`;
  }
  if (item.kind === "purchase" && item.status === "paid") return "Yours to keep";
  return "—";
}

function purchaseRow(item) {
  return h(
    "tr",
    { "data-purchase": item.id },
    h("th", { scope: "row" }, item.title ? item.title.name : ""),
    h("td", {}, PURCHASE_KIND[item.kind] || item.kind),
    h("td", { className: "num" }, money(item.amount_minor, item.currency)),
    h("td", {}, PURCHASE_STATUS[item.status] || item.status, item.playable_now ? " · playable now" : ""),
    h("td", {}, watchWindow(item)),
  );
}

async function loadPurchases({ more = false } = {}) {
  const cursor = more && state.purchasesCursor ? `&cursor=${encodeURIComponent(state.purchasesCursor)}` : "";
  const result = await call("GET", `${PAYMENTS}/purchases?limit=20${cursor}`);
  if (!result.ok) {
    fail(problemText(result));
    return;
  }
  renderRows("purchases", result.data, purchaseRow, more);
  state.purchasesCursor = result.data.next_cursor || null;
}

function renderRows(name, page, row, more) {
  const body = $(`${name}-table`).tBodies[0];
  const rows = (page.items || []).map(row);
  if (more) body.append(...rows);
  else body.replaceChildren(...rows);
  const empty = body.rows.length === 0;
  $(`${name}-empty`).hidden = !empty;
  $(`${name}-table`).closest(".table-wrap").hidden = empty;
  $(`${name}-more`).hidden = !page.next_cursor;
}

// (5) Invoices

function invoiceRow(invoice) {
  return h(
    "tr",
    { "data-invoice": invoice.id },
    h("th", { scope: "row" }, invoice.number),
    h("td", {}, day(invoice.issued_at)),
    h("td", {}, invoice.description),
    h("td", { className: "num" }, money(invoice.total_minor, invoice.currency)),
    h("td", {}, INVOICE_STATUS[invoice.status] || invoice.status),
    h(
      "td",
      {},
      h(
        "button",
        {
          type: "button",
          className: "secondary small",
          onclick: (event) => viewInvoice(event.currentTarget, invoice),
        },
        "View",
        hiddenText(` invoice ${invoice.number}`),
      ),
    ),
  );
}

async function loadInvoices({ more = false } = {}) {
  const cursor = more && state.invoicesCursor ? `&cursor=${encodeURIComponent(state.invoicesCursor)}` : "";
  const result = await call("GET", `${PAYMENTS}/invoices?limit=20${cursor}`);
  if (!result.ok) {
    fail(problemText(result));
    return;
  }
  renderRows("invoices", result.data, invoiceRow, more);
  state.invoicesCursor = result.data.next_cursor || null;
}

/**
 * The invoice page as a Blob URL. A Blob document keeps this page's Content-Security-Policy, which refuses
 * inline styles: the invoice's <style> and style="" move into a blob stylesheet (style-src blob:).
 */
function invoiceUrl(html) {
  // <style> and style="" go before parsing: even an inert parsed document applies (and reports) them
  // under this page's policy. The server escapes "<" and quotes in text, so these can only be markup.
  let css = "";
  let count = 0;
  const markup = html.replace(/\sstyle\s*=\s*"([^"]*)"/gi, (_, declarations) => {
    count += 1;
    const rules = declarations
      .replace(/&quot;/g, '"')
      .replace(/&#x27;|&#39;/g, "'")
      .replace(/&amp;/g, "&")
      .split(";")
      .map((part) => part.trim())
      .filter(Boolean)
      .map((part) => (/!important$/i.test(part) ? part : `${part} !important`));
    css += `[data-inline-style="${count}"]{${rules.join(";")}}\n`;
    return ` data-inline-style="${count}"`;
  });
  const sheetless = markup.replace(/<style\b[^>]*>([\s\S]*?)<\/style\s*>/gi, (_, rules) => {
    css = `${rules}\n${css}`;
    return "";
  });
  const doc = new DOMParser().parseFromString(sheetless, "text/html");
  for (const element of doc.querySelectorAll('script, meta[http-equiv], base')) element.remove();
  const sheet = URL.createObjectURL(new Blob([css], { type: "text/css" }));
  doc.head.append(Object.assign(doc.createElement("link"), { rel: "stylesheet", href: sheet }));
  const page = URL.createObjectURL(
    new Blob([`<!doctype html>\n${doc.documentElement.outerHTML}`], { type: "text/html;charset=utf-8" }),
  );
  setTimeout(() => {
    URL.revokeObjectURL(page);
    URL.revokeObjectURL(sheet);
  }, BLOB_LIFETIME_MS);
  return page;
}

async function viewInvoice(button, invoice) {
  // Open the tab within the click (popup blockers), then fill it once the invoice has arrived.
  const tab = window.open("", "_blank");
  if (tab) {
    try {
      tab.opener = null;
      tab.document.title = `Invoice ${invoice.number}`;
      tab.document.body.textContent = "Loading the invoice…";
    } catch {
      // Nothing to show meanwhile.
    }
  }
  await busy(button, async () => {
    let result;
    try {
      const path = `${PAYMENTS}/invoices/${encodeURIComponent(invoice.id)}`;
      result = await callHtml(`${path}/html`, path);
    } catch (error) {
      if (tab) tab.close();
      throw error;
    }
    if (!result.ok || typeof result.text !== "string") {
      if (tab) tab.close();
      fail(problemText(result));
      return;
    }
    const url = invoiceUrl(result.text);
    if (tab && !tab.closed) {
      tab.location.replace(url);
      say(`Invoice ${invoice.number} opened in a new tab.`);
    } else {
      window.location.assign(url); // pop-ups blocked: show it in this tab (Back returns here)
    }
  });
}

// --- back from the checkout -----------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Read ?checkout=success|cancel(&purchase=id) once, then drop it from the address bar. */
function checkoutReturn() {
  const params = new URLSearchParams(window.location.search);
  const outcome = params.get("checkout");
  if (outcome === null) return null;
  window.history.replaceState(window.history.state, "", window.location.pathname); // the query has ?checkout=
  const purchaseId = params.get("purchase");
  return { outcome, purchaseId: /^[0-9a-f-]{36}$/i.test(purchaseId || "") ? purchaseId : null };
}

async function confirmSubscription(first) {
  let subscription = first;
  for (let attempt = 1; ; attempt += 1) {
    if (subscription && isLive(subscription) && ["trialing", "active"].includes(subscription.status)) {
      banner("Payment received; your plan is active.");
      return true;
    }
    if (attempt >= POLL_ATTEMPTS) break;
    await sleep(POLL_DELAY_MS);
    subscription = await loadSubscription();
  }
  banner(
    "Payment received. Your plan shows here as soon as the payment provider confirms it; reload the page in a minute.",
    "warn",
  );
  return false;
}

async function confirmPurchase(purchaseId) {
  for (let attempt = 1; attempt <= POLL_ATTEMPTS; attempt += 1) {
    const result = await call("GET", `${PAYMENTS}/purchases/${encodeURIComponent(purchaseId)}`);
    if (!result.ok) {
      fail(problemText(result));
      return false;
    }
    const item = result.data;
    if (item.status === "paid") {
      const name = item.title ? item.title.name : "Your title";
      const what = item.kind === "rental" ? "rented" : item.kind === "ppv" ? "booked" : "yours to keep";
      banner(`Payment received; ${name} is ${what}.`);
      return true;
    }
    if (item.status !== "pending") break;
    if (attempt < POLL_ATTEMPTS) await sleep(POLL_DELAY_MS);
  }
  banner(
    "Payment received. It shows under Rentals and purchases as soon as the payment provider confirms it.",
    "warn",
  );
  return false;
}

async function afterCheckout(back, subscription) {
  if (back.outcome === "cancel") {
    banner("Checkout cancelled; nothing was charged.", "warn");
    return;
  }
  if (back.outcome !== "success") return;
  banner(back.purchaseId ? "Payment received. Confirming your order…" : "Payment received. Confirming your plan…");
  const confirmed = back.purchaseId ? await confirmPurchase(back.purchaseId) : await confirmSubscription(subscription);
  if (confirmed) await Promise.all([loadPurchases(), loadInvoices(), back.purchaseId ? null : loadSubscription()]);
}

// --- the page -------------------------------------------------------------------------------------------

async function main() {
  const back = checkoutReturn();
  showBilling();
  wirePlanActions();
  wirePlanOptions();
  wireSearch();
  $("purchases-more").addEventListener("click", (event) => busy(event.currentTarget, () => loadPurchases({ more: true })));
  $("invoices-more").addEventListener("click", (event) => busy(event.currentTarget, () => loadInvoices({ more: true })));

  const subscription = await loadSubscription();
  if (subscription && isLive(subscription) && subscription.currency && ["USD", "EUR"].includes(subscription.currency)) {
    state.currency = subscription.currency;
    $("currency").value = subscription.currency;
  }
  if (subscription && subscription.interval) {
    state.interval = subscription.interval;
    const radio = document.querySelector(`input[name="interval"][value="${subscription.interval}"]`);
    if (radio) radio.checked = true;
  }
  await Promise.all([loadPlans(), loadPurchases(), loadInvoices()]);
  if (back) await afterCheckout(back, subscription);
}

// Signed out: app.js sends the person to sign in and back here (with ?checkout= when coming from one).
startPage(
  async () => {
    try {
      await main();
    } catch (error) {
      report(error, null); // a session that ended meanwhile is already shown as such
    }
  },
  { require: "signin", nav: "account" },
);
