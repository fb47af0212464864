// The viewer app's shared shell: every page of the web client (Home, Browse, Search, Title, Watch, Account,
// the profile picker...) imports from this module, and this module imports the session from account.js.
// Plain DOM, no framework, no inline script: it runs under the pages' strict Content-Security-Policy.
//
// A page's HTML: <body data-page="..."> with, in this order,
//   <a class="skip-link" href="#main">Skip to content</a>
//   <header id="app-header" class="app-header"></header>      (filled by mountShell(); created if missing)
//   <main id="main" tabindex="-1"> <h1>...</h1> ... </main>
//   <link rel="stylesheet" href="/assets/app.css"> in the head, <script type="module" src="/assets/<page>.js">.
// A page module:
//   import { startPage, api, titleRow } from "/assets/app.js";
//   startPage(async ({ session, profile }) => { ... }, { require: "profile", nav: "home" });
//
// Exports (all named):
//   Session and navigation
//     startPage(fn, {require: "none"|"signin"|"profile", nav, shell=true}) -> runs fn({session, profile,
//         user?}) after the guard; mounts the header; errors shown in the live region; sets body[data-ready].
//         `profile` is a Promise of the active ProfileRead (or null) so pages need not wait for it.
//     requireSignIn() -> the session, or null after redirecting to /login/?next=<here>.
//     requireProfile() -> the session, or null after redirecting (no session: /login/?next=...; no profile
//         on the token: /profiles/?next=<here>).
//     loadSession, saveSession, clearSession (re-exported from account.js), signedIn() -> bool.
//     activeProfile({fresh}) -> Promise<ProfileRead|null> (GET /users/me/profiles, cached per page load).
//     signOut() -> POST /auth/logout, forget the session, go to /.
//     here() -> this page's path + query; sameSitePath(value) -> value if it is a same-origin path, else "".
//     query(name) -> a query-string parameter of this page ("" when absent).
//   API (paths are relative to /api/v1, e.g. "/catalog/home")
//     api(method, path, {body, query, auth=true, signal, keepalive, headers}) -> {ok, status, data, code,
//         retryAfter}: bearer from the session, one refresh + retry on 401, JSON in and out; throws
//         NetworkError when nothing answered (AbortError passes through).
//     apiOk(method, path, opts) -> data; throws ApiError (message = problemText, .result, .code, .status).
//     ApiError, NetworkError, problemText (re-exported), codeOf(result).
//   Messages
//     notify(text) (polite live region #app-live + a toast), notifyError(text) (assertive, error toast),
//     showError(error) (an ApiError/NetworkError's words, else a generic message + console.error).
//   Formatting
//     formatRuntime(minutes) "1 h 52 min"; formatDuration(seconds) "1:02:03"; formatMoney(minor, currency,
//     {locale, digits}) via Intl with ISO 4217 minor units as the server counts them (minorDigits(currency));
//     formatDate(iso|Date, {style}); formatDateTime(iso);
//     formatRelative(iso) "3 days ago"; plural(n, word, words?).
//   DOM and cards
//     el(tag, {class, text, attrs..., on: {event: fn}}, ...children) -> Element (strings become text nodes).
//     imageUrl(images, kind="poster", width=342) -> URL or "" (picks the smallest size >= width);
//     imageSrcset(images, kind) -> "url 185w, url 342w, ..." or "" (cards add sizes from app.css's widths).
//     maturityBadge(level, rating?) -> <span class="badge maturity">.
//     titleCard(summary, {href, progress, label, sublabel, eager, kind: "poster"|"backdrop", grid}) -> <li>.
//     titleRow({id, title, items, card: (item, index) => titleCard options, eager, headingLevel=2,
//         empty}) -> <section class="row"> with a scroll-snapped list, prev/next buttons, keyboard reachable.
//     skeletonRow(title) -> a placeholder row; titleHref(id) "/title/?id=..."; watchHref(contentId).
//   Results pages (Browse, Search)
//     pagedGrid({grid, more, card}) -> {load(fetchPage, {more}), reset(), cursor, count}: a card grid a
//         page at a time with its "Load more" button; foldFilters({button, fields, what}): filters that
//         fold away behind a button on a phone.
//
// Header (mountShell, called by startPage): logo -> /, nav Home / Browse / My List (/#my-list), the search
// box (a combobox: GET /search/autocomplete?q= as you type; Enter submits to /search/?q=), and the profile
// menu (Switch profile, Account, Billing, Sign out) or, signed out, Sign in / Create account.

import {
  clearSession,
  loadSession,
  NetworkError,
  problemText,
  saveSession,
} from "/assets/account.js";

export { clearSession, loadSession, NetworkError, problemText, saveSession };

const API = "/api/v1";
const GENERIC_ERROR = "Something went wrong on this page. Reload it and try again.";
const $ = (id) => document.getElementById(id);

// --- small DOM helper --------------------------------------------------------------------------------------

/** Build an element: el("a", {href: "/", class: "x", text: "Home", on: {click}}, child, "text", ...). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "on") for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node && typeof value !== "string" && key !== "width" && key !== "height") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// --- navigation helpers ------------------------------------------------------------------------------------

export function here() {
  return window.location.pathname + window.location.search;
}

export function query(name) {
  return new URLSearchParams(window.location.search).get(name) || "";
}

/** `value` when it is a path on this site, else "" (never follow ?next= off the site). */
export function sameSitePath(value) {
  if (typeof value !== "string" || !value.startsWith("/") || /[\u0000-\u001f\u007f\\]/.test(value)) return "";
  try {
    const url = new URL(value, window.location.origin);
    return url.origin === window.location.origin ? url.pathname + url.search + url.hash : "";
  } catch {
    return "";
  }
}

export const titleHref = (id) => `/title/?id=${encodeURIComponent(id)}`;
export const watchHref = (contentId) => `/watch/?content=${encodeURIComponent(contentId)}`;

// --- the API client ----------------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(result) {
    super(problemText(result));
    this.name = "ApiError";
    this.result = result;
    this.status = result.status;
    this.code = codeOf(result);
  }
}

export function codeOf(result) {
  return result && result.data && typeof result.data.code === "string" ? result.data.code : "";
}

export function signedIn() {
  const stored = loadSession();
  return Boolean(stored && stored.access_token);
}

let refreshing = null; // one refresh at a time for every call that got a 401

async function refreshSession(stored) {
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const response = await fetch(`${API}/auth/refresh`, {
          method: "POST",
          headers: { accept: "application/json", "content-type": "application/json" },
          body: JSON.stringify({ refresh_token: stored.refresh_token }),
          cache: "no-store",
          credentials: "same-origin",
        });
        if (!response.ok) {
          if (response.status === 401 || response.status === 400) clearSession();
          return false;
        }
        saveSession(await response.json());
        return true;
      } catch {
        return false;
      } finally {
        setTimeout(() => {
          refreshing = null;
        }, 0);
      }
    })();
  }
  return refreshing;
}

async function send(method, path, { body, query: params, token, signal, keepalive, headers = {} }) {
  const all = { accept: "application/json, application/problem+json", ...headers };
  if (body !== undefined && !(body instanceof FormData)) all["content-type"] = "application/json";
  if (token) all.authorization = `Bearer ${token}`;
  let url = API + path;
  if (params) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value === undefined || value === null || value === "") continue;
      for (const one of Array.isArray(value) ? value : [value]) search.append(key, String(one));
    }
    const text = search.toString();
    if (text) url += (url.includes("?") ? "&" : "?") + text;
  }
  let response;
  try {
    response = await fetch(url, {
      method,
      headers: all,
      credentials: "same-origin",
      cache: "no-store",
      signal,
      keepalive,
      body: body === undefined ? undefined : body instanceof FormData ? body : JSON.stringify(body),
    });
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new NetworkError("We could not reach Cinema Online. Check your connection and try again.", {
      cause: error,
    });
  }
  let data = null;
  if (response.status !== 204 && (response.headers.get("content-type") || "").includes("json")) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  const result = { ok: response.ok, status: response.status, data, retryAfter: response.headers.get("retry-after") };
  result.code = codeOf(result);
  return result;
}

/** One API call with the session's bearer (renewed once on a 401). See the header for the options. */
export async function api(method, path, options = {}) {
  const { auth = true } = options;
  const stored = auth ? loadSession() : null;
  const token = stored && stored.access_token;
  const result = await send(method, path, { ...options, token });
  if (result.status !== 401 || !token || !stored.refresh_token) return result;
  if (!(await refreshSession(stored))) return result;
  return send(method, path, { ...options, token: loadSession().access_token });
}

/** api() that returns the data of a 2xx answer and throws ApiError otherwise. */
export async function apiOk(method, path, options = {}) {
  const result = await api(method, path, options);
  if (!result.ok) throw new ApiError(result);
  return result.data;
}

// --- guards -------------------------------------------------------------------------------------------------

function redirect(path) {
  window.location.replace(path);
  return null;
}

/** The session, or null after sending the person to sign in (and back here afterwards). */
export function requireSignIn() {
  const stored = loadSession();
  if (stored && stored.access_token) return stored;
  return redirect(`/login/?next=${encodeURIComponent(here())}`);
}

/** The session with a profile on its token, or null after redirecting to sign in or to the profile picker. */
export function requireProfile() {
  const stored = requireSignIn();
  if (!stored) return null;
  if (stored.profile_id) return stored;
  return redirect(`/profiles/?next=${encodeURIComponent(here())}`);
}

let profilesPromise = null;

/** The account's profiles (GET /users/me/profiles), cached for this page load; [] when signed out. */
export function profiles({ fresh = false } = {}) {
  if (!signedIn()) return Promise.resolve([]);
  if (!profilesPromise || fresh) {
    profilesPromise = apiOk("GET", "/users/me/profiles").catch((error) => {
      profilesPromise = null;
      throw error;
    });
  }
  return profilesPromise;
}

/** The session's active profile, or null. */
export async function activeProfile({ fresh = false } = {}) {
  const stored = loadSession();
  if (!stored || !stored.profile_id) return null;
  const list = await profiles({ fresh });
  return list.find((p) => p.active) || list.find((p) => p.id === stored.profile_id) || null;
}

export async function signOut() {
  try {
    await api("POST", "/auth/logout");
  } catch {
    // offline: the tokens are forgotten here anyway and expire on their own
  }
  clearSession();
  window.location.assign("/");
}

// --- messages -----------------------------------------------------------------------------------------------

function liveRegion(id, politeness) {
  let region = $(id);
  if (!region) {
    region = el("div", { id, class: "visually-hidden", "aria-live": politeness, "aria-atomic": "true" });
    if (politeness === "assertive") region.setAttribute("role", "alert");
    else region.setAttribute("role", "status");
    document.body.append(region);
  }
  return region;
}

function speak(region, text) {
  region.textContent = "";
  setTimeout(() => {
    region.textContent = text;
  }, 30);
}

function toast(text, kind) {
  let stack = document.querySelector(".toasts");
  if (!stack) {
    stack = el("div", { class: "toasts", "aria-hidden": "true" });
    document.body.append(stack);
  }
  const item = el("p", { class: `toast ${kind}`, text });
  stack.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}

/** A polite message: read by screen readers (#app-live) and shown briefly as a toast. */
export function notify(text) {
  speak(liveRegion("app-live", "polite"), text);
  toast(text, "ok");
}

/** An error message: read at once (#app-alert) and shown as a toast. */
export function notifyError(text) {
  speak(liveRegion("app-alert", "assertive"), text);
  toast(text, "error");
}

/**
 * Messages shown in the page section an action came from (the nearest `sections` ancestor of `near`, under
 * its heading; the page's #page-message otherwise) and announced: say() politely, fail() at once. `near`
 * defaults to the element last given to at(): the form or button of the action under way.
 */
export function sectionMessages(sections) {
  let current = null;
  const slotFor = (near) => {
    const section = near && near.closest ? near.closest(sections) : null;
    if (!section || section.closest("[hidden]")) return document.getElementById("page-message");
    let slot = section.querySelector(":scope > .section-message");
    if (!slot) {
      slot = el("p", { class: "notice section-message" });
      section.querySelector(":scope > h2, :scope > h3").after(slot);
    }
    return slot;
  };
  const clear = () => {
    for (const slot of document.querySelectorAll(".section-message")) {
      slot.textContent = "";
      slot.className = "notice section-message";
    }
  };
  const show = (kind, announce) => (text, near = current) => {
    clear();
    const slot = slotFor(near);
    slot.className = `notice ${kind} section-message`;
    slot.textContent = text;
    announce(text);
  };
  const at = (element) => {
    current = element;
  };
  return { clear, at, say: show("ok", notify), fail: show("error", notifyError) };
}

export function showError(error) {
  if (error instanceof ApiError || error instanceof NetworkError) {
    notifyError(error.message);
  } else {
    notifyError(GENERIC_ERROR);
    console.error(error);
  }
}

// --- formatting ---------------------------------------------------------------------------------------------

const LOCALE = undefined; // the browser's

export function plural(count, word, words = `${word}s`) {
  return `${count} ${count === 1 ? word : words}`;
}

/** 112 -> "1 h 52 min"; 45 -> "45 min". */
export function formatRuntime(minutes) {
  if (!Number.isFinite(minutes) || minutes <= 0) return "";
  const hours = Math.floor(minutes / 60);
  const rest = Math.round(minutes % 60);
  if (!hours) return `${rest} min`;
  return rest ? `${hours} h ${rest} min` : `${hours} h`;
}

/** 3723 -> "1:02:03"; 65 -> "1:05" (a player's clock). */
export function formatDuration(seconds) {
  const total = Math.max(0, Math.floor(Number(seconds) || 0));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const two = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
}

// ISO 4217 minor units, as the server counts them (shared/plans/money.py); every other currency has 2.
// Intl's own digits differ for a few (IQD, HUF, IDR, COP...), so amounts in minor units use these.
const ZERO_DECIMALS = new Set("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split(" "));
const THREE_DECIMALS = new Set("BHD IQD JOD KWD LYD OMR TND".split(" "));

/** The minor-unit digits of a currency: `given` when the API states them, else the server's table. */
export function minorDigits(currency, given) {
  if (Number.isInteger(given) && given >= 0 && given <= 4) return given;
  const code = String(currency || "").toUpperCase();
  if (ZERO_DECIMALS.has(code)) return 0;
  if (THREE_DECIMALS.has(code)) return 3;
  return 2;
}

/** An amount in minor units (cents; yen have none) as the browser's locale writes it: 999, "EUR" -> €9.99. */
export function formatMoney(minor, currency, { locale = LOCALE, digits: given } = {}) {
  const code = String(currency || "USD").toUpperCase();
  const digits = minorDigits(code, given);
  const amount = Number(minor) / 10 ** digits;
  try {
    return new Intl.NumberFormat(locale, {
      style: "currency",
      currency: code,
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    }).format(amount);
  } catch {
    return `${amount.toFixed(digits)} ${code}`;
  }
}

function asDate(value) {
  if (value instanceof Date) return value;
  if (typeof value === "number") return new Date(value < 1e12 ? value * 1000 : value); // epoch s or ms
  return new Date(value);
}

/** A date ("12 March 2025" in the reader's locale); style: "long" | "medium" | "short". */
export function formatDate(value, { style = "medium" } = {}) {
  if (value === null || value === undefined || value === "") return "";
  const date = asDate(value);
  if (Number.isNaN(date.getTime())) return "";
  // A bare date (2025-03-12) is a calendar day: format it in UTC so it does not shift a day west of UTC.
  const dayOnly = typeof value === "string" && /^\d{4}-\d{2}-\d{2}$/.test(value);
  return new Intl.DateTimeFormat(LOCALE, { dateStyle: style, timeZone: dayOnly ? "UTC" : undefined }).format(date);
}

export function formatDateTime(value) {
  if (value === null || value === undefined || value === "") return "";
  const date = asDate(value);
  if (Number.isNaN(date.getTime())) return "";
  return new Intl.DateTimeFormat(LOCALE, { dateStyle: "medium", timeStyle: "short" }).format(date);
}

/** "3 days ago", "in 2 hours". */
export function formatRelative(value) {
  const date = asDate(value);
  if (Number.isNaN(date.getTime())) return "";
  const seconds = (date.getTime() - Date.now()) / 1000;
  const units = [
    ["year", 31536000],
    ["month", 2592000],
    ["week", 604800],
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
  ];
  const format = new Intl.RelativeTimeFormat(LOCALE, { numeric: "auto" });
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size) return format.format(Math.round(seconds / size), unit);
  }
  return format.format(Math.round(seconds), "second");
}

// --- images, badges, cards and rows ------------------------------------------------------------------------

const IMAGE_BOX = { poster: [342, 513], backdrop: [780, 439], still: [780, 439], photo: [185, 278], logo: [300, 120] };

/** The URL of an image of a catalog entry, the smallest size at least `width` wide ("" when none). */
export function imageUrl(images, kind = "poster", width = 342) {
  const sizes = images && images[kind];
  if (!sizes || typeof sizes !== "object") return "";
  if (typeof sizes.url === "string") return sizes.url;
  const named = Object.entries(sizes)
    .filter(([name, url]) => /^w\d+$/.test(name) && typeof url === "string")
    .map(([name, url]) => [Number(name.slice(1)), url])
    .sort((a, b) => a[0] - b[0]);
  const fit = named.find(([w]) => w >= width) || named[named.length - 1];
  if (fit) return fit[1];
  return typeof sizes.original === "string" ? sizes.original : "";
}

const MATURITY_NAMES = { all: "All ages", "7+": "7+", "13+": "13+", "16+": "16+", "18+": "18+" };

/** The title's rating (e.g. "PG-13"), or its maturity level, as a small badge with an accessible name. */
export function maturityBadge(level, rating) {
  const text = rating || MATURITY_NAMES[level] || level || "";
  if (!text) return null;
  return el("span", {
    class: `badge maturity maturity-${String(level || "").replace("+", "plus")}`,
    title: `Rated ${text}`,
    text,
  });
}

/**
 * An image's srcset ("url 185w, url 342w, ..."): one candidate per distinct URL of its w-sizes (a URL that
 * stands for several sizes, the original where no smaller variant was made, counts at the smallest of
 * them); "" when fewer than two differ (nothing to choose from: src alone says it).
 */
export function imageSrcset(images, kind = "poster") {
  const sizes = images && images[kind];
  if (!sizes || typeof sizes !== "object" || typeof sizes.url === "string") return "";
  const widths = new Map(); // url -> width
  Object.entries(sizes)
    .filter(([name, url]) => /^w\d+$/.test(name) && typeof url === "string" && url && !url.endsWith(","))
    .map(([name, url]) => [Number(name.slice(1)), url.replace(/\s/g, encodeURIComponent)])
    .sort((a, b) => a[0] - b[0])
    .forEach(([width, url]) => {
      if (!widths.has(url)) widths.set(url, width);
    });
  if (widths.size < 2) return "";
  return [...widths].map(([url, width]) => `${url} ${width}w`).join(", ");
}

// How wide app.css draws a card at each of its breakpoints, as an <img sizes>: --card-w (a backdrop card is
// 1.75 of it). A sizes attribute reads rem at the browser's default font size, not at the root size app.css
// raises on TVs, so the 12rem of >= 1600 px is 12 x 1.25 = 15rem there and 12 x 1.6 = 19.2rem at >= 2400 px.
const CARD_REM = [
  [2400, 19.2],
  [1600, 15],
  [1024, 11.5],
  [600, 10],
  [0, 8.5],
];
// A results grid (.card-grid) stretches its columns from one --card-w to about 1.35 of it (auto-fill, 1fr):
// 1.2 is its usual width. (sizes="auto" would be exact for lazy cards, but Chromium picks from a card built
// off the page, as el() builds them, by the viewport's width.)
const CARD_SCALE = { poster: 1, backdrop: 1.75 };
const GRID_SCALE = 1.2;

function cardSizes(kind, grid) {
  const scale = (CARD_SCALE[kind] || 1) * (grid ? GRID_SCALE : 1);
  return CARD_REM.map(([min, rem]) => {
    const width = `${Number((rem * scale).toFixed(3))}rem`;
    return min ? `(min-width: ${min}px) ${width}` : width;
  }).join(", ");
}

function artwork(item, kind, eager, grid) {
  const [width, height] = IMAGE_BOX[kind] || IMAGE_BOX.poster;
  let source = kind;
  let src = imageUrl(item.images, kind, width);
  if (!src && kind === "backdrop") {
    source = "poster";
    src = imageUrl(item.images, "poster", 342);
  }
  if (!src) {
    return el("span", { class: "art art-missing", "aria-hidden": "true" }, el("span", { text: item.title || "" }));
  }
  // srcset + sizes: a phone picks a small file, a high-density screen a sharp one (src: the one-size case).
  const srcset = imageSrcset(item.images, source);
  return el("img", {
    class: "art",
    src,
    srcset: srcset || undefined,
    sizes: srcset ? cardSizes(kind, grid) : undefined,
    alt: "",
    width,
    height,
    loading: eager ? "eager" : "lazy",
    decoding: "async",
    fetchpriority: eager ? "high" : undefined,
  });
}

/**
 * A title card: <li><a href="/title/?id=..."> artwork, title, year, maturity badge [, progress] </a></li>.
 * options: href (default titleHref), label (the link's accessible name), sublabel (text under the title),
 * progress (0-100: a progress bar), eager (no lazy loading: the first cards above the fold),
 * kind ("poster" | "backdrop"), grid (the card sits in a .card-grid, which stretches it: image sizes).
 */
export function titleCard(item, options = {}) {
  const { href = titleHref(item.id), progress, label, sublabel, eager = false, kind = "poster", grid = false } = options;
  const meta = el(
    "span",
    { class: "card-meta" },
    item.release_year ? el("span", { class: "year", text: String(item.release_year) }) : null,
    maturityBadge(item.maturity_level, item.rating),
  );
  const parts = [
    artwork(item, kind, eager, grid),
    el("span", { class: "card-title", text: item.title }),
    sublabel ? el("span", { class: "card-sub", text: sublabel }) : null,
    meta,
  ];
  if (Number.isFinite(progress)) {
    const percent = Math.max(0, Math.min(100, Math.round(progress)));
    parts.push(
      el(
        "span",
        { class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(percent), "aria-label": "Watched" },
        el("span", { class: "progress-bar", style: undefined, dataset: { value: String(percent) } }),
      ),
    );
  }
  const link = el("a", { class: "card-link", href, "aria-label": label || undefined }, parts);
  const card = el("li", { class: `card card-${kind}`, dataset: { id: item.id } }, link);
  if (Number.isFinite(progress)) {
    // No inline style attribute under the CSP: the width is set through the CSSOM, which the CSP allows.
    const bar = card.querySelector(".progress-bar");
    bar.style.width = `${Math.max(0, Math.min(100, progress))}%`;
  }
  return card;
}

let rowCount = 0;

/**
 * A horizontal row of cards: <section class="row" aria-labelledby> <h2> + <ul class="row-list"> with
 * scroll-snap; previous/next buttons for pointer users (keyboard users Tab through the links, which
 * scroll into view). options: id, title, items, card(item, index) -> titleCard options, eager (how many
 * leading cards load eagerly), headingLevel, empty (text when there are no items; without it, no row).
 */
export function titleRow({ id, title, items, card, eager = 0, headingLevel = 2, empty, kind = "poster" }) {
  rowCount += 1;
  const headingId = `row-${rowCount}-title`;
  const section = el("section", { class: `row row-${kind}`, "aria-labelledby": headingId, dataset: { row: id || "" } });
  const list = el("ul", { class: "row-list", role: "list" });
  const heading = el(`h${headingLevel}`, { class: "row-title", id: headingId, text: title });
  const prev = el("button", { type: "button", class: "row-scroll prev", "aria-label": `Scroll ${title} back`, tabindex: "-1", text: "‹" });
  const next = el("button", { type: "button", class: "row-scroll next", "aria-label": `Scroll ${title} forward`, tabindex: "-1", text: "›" });
  const scroll = (direction) => {
    const reduce = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    list.scrollBy({ left: direction * list.clientWidth * 0.9, behavior: reduce ? "auto" : "smooth" });
  };
  prev.addEventListener("click", () => scroll(-1));
  next.addEventListener("click", () => scroll(1));
  (items || []).forEach((item, index) => {
    const options = card ? card(item, index) : {};
    list.append(titleCard(options.item || item, { kind, eager: index < eager, ...options }));
  });
  section.append(el("div", { class: "row-head" }, heading));
  if (!items || !items.length) {
    if (!empty) return section; // an empty row: the page decides whether to show it
    section.append(el("p", { class: "row-empty", text: empty }));
    return section;
  }
  section.append(el("div", { class: "row-body" }, prev, list, next));
  const update = () => {
    prev.disabled = list.scrollLeft <= 2;
    next.disabled = list.scrollLeft + list.clientWidth >= list.scrollWidth - 2;
  };
  list.addEventListener("scroll", update, { passive: true });
  requestAnimationFrame(update);
  window.addEventListener("resize", update, { passive: true });
  return section;
}

/** A placeholder row while the rows load (aria-hidden: the page says "Loading" in its live region). */
export function skeletonRow(title = "") {
  return el(
    "section",
    { class: "row skeleton", "aria-hidden": "true" },
    el("div", { class: "row-head" }, el("span", { class: "row-title", text: title || " " })),
    el("ul", { class: "row-list" }, Array.from({ length: 8 }, () => el("li", { class: "card card-poster" }, el("span", { class: "art art-missing" })))),
  );
}

// --- results pages: a card grid a page at a time, filters that fold away on a phone ----------------------

/**
 * A grid of title cards filled a page at a time, with a "Load more" button (Browse and Search).
 * pagedGrid({grid, more, card}) -> {load, reset, cursor, count}: card(item, {eager, grid}) -> a titleCard
 * <li> (pass both options on to titleCard).
 * load(fetchPage, {more}) aborts the page in flight, calls fetchPage(cursor, signal) -> an api() result
 * whose data is {items, next_cursor}, and shows the cards (a new list, or appended for "Load more", with
 * the focus moved to the first new card and the count announced). It resolves to null when a newer load
 * replaced it, else {ok: true, data} or {ok: false, message, result} (result: absent when offline).
 */
export function pagedGrid({ grid, more: button, card }) {
  const pages = { cursor: null, count: 0, load, reset };
  let controller = null;

  function reset() {
    if (controller) controller.abort();
    controller = null;
    pages.cursor = null;
    pages.count = 0;
    button.hidden = true;
  }

  function settle(mine) {
    grid.setAttribute("aria-busy", "false");
    button.disabled = false;
    button.textContent = "Load more";
    if (controller === mine) controller = null;
  }

  async function load(fetchPage, { more = false } = {}) {
    const cursor = more ? pages.cursor : null;
    if (more) {
      if (controller) controller.abort();
      button.disabled = true;
      button.textContent = "Loading…";
    } else {
      reset();
    }
    const mine = new AbortController();
    controller = mine;
    grid.setAttribute("aria-busy", "true");
    let result;
    try {
      result = await fetchPage(cursor || undefined, mine.signal);
    } catch (error) {
      if (error && error.name === "AbortError") return null;
      settle(mine);
      return { ok: false, message: error.message };
    }
    if (mine.signal.aborted) return null;
    settle(mine);
    if (!result.ok) return { ok: false, message: problemText(result), result };
    const items = result.data.items || [];
    const first = pages.count;
    const cards = items.map((item, index) => card(item, { eager: !more && index < 6, grid: true }));
    if (more) grid.append(...cards);
    else grid.replaceChildren(...cards);
    pages.count += items.length;
    pages.cursor = result.data.next_cursor || null;
    button.hidden = !pages.cursor;
    if (more && cards.length) {
      // The keyboard user who pressed "Load more" carries on from the first new title.
      const link = grid.children[first] && grid.children[first].querySelector("a");
      if (link) link.focus();
      notify(`${plural(items.length, "more title")} loaded.`);
    }
    return { ok: true, data: result.data };
  }

  return pages;
}

/**
 * On a phone the filters fold away behind a button (open on wider screens, where they sit beside the
 * list): the toggle `button` shows or hides `fields`; `what` names them for screen readers.
 */
export function foldFilters({ button, fields, what }) {
  const narrow = window.matchMedia("(max-width: 899px)");
  const show = (open) => {
    fields.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    button.firstChild.textContent = open ? "Hide" : "Show";
  };
  button.addEventListener("click", () => show(fields.hidden));
  const follow = () => show(!narrow.matches);
  narrow.addEventListener("change", follow);
  follow();
  button.lastChild.textContent = ` ${what}`;
}

// --- the header: nav, search with autocomplete, profile menu -------------------------------------------------

function navLink(href, text, current) {
  return el("li", {}, el("a", { href, text, "aria-current": current ? "page" : undefined }));
}

function searchBox() {
  const form = el("form", { class: "search", role: "search", action: "/search/", method: "get" });
  const input = el("input", {
    id: "app-search",
    name: "q",
    type: "search",
    placeholder: "Titles, people, genres",
    autocomplete: "off",
    spellcheck: "false",
    enterkeyhint: "search",
    maxlength: "200",
    role: "combobox",
    "aria-autocomplete": "list",
    "aria-expanded": "false",
    "aria-controls": "app-search-list",
  });
  input.value = window.location.pathname.startsWith("/search") ? query("q") : "";
  const list = el("ul", { id: "app-search-list", class: "suggestions", role: "listbox", "aria-label": "Suggestions", hidden: true });
  const label = el("label", { for: "app-search", class: "visually-hidden", text: "Search" });
  const submit = el("button", { type: "submit", class: "search-submit", "aria-label": "Search" }, el("span", { "aria-hidden": "true", text: "⌕" }));
  form.append(label, input, submit, list);

  let timer = 0;
  let controller = null;
  let options = [];
  let active = -1;

  const close = () => {
    list.hidden = true;
    list.replaceChildren();
    options = [];
    active = -1;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  };
  const highlight = (index) => {
    options.forEach((option, i) => option.setAttribute("aria-selected", String(i === index)));
    active = index;
    if (index >= 0) {
      input.setAttribute("aria-activedescendant", options[index].id);
      options[index].scrollIntoView({ block: "nearest" });
    } else input.removeAttribute("aria-activedescendant");
  };
  const go = (option) => {
    window.location.assign(option.dataset.href);
  };
  const render = (data) => {
    list.replaceChildren();
    options = [];
    active = -1;
    const add = (href, text, sub, image) => {
      const option = el(
        "li",
        { id: `app-search-option-${options.length}`, role: "option", "aria-selected": "false", class: "suggestion", dataset: { href } },
        image ? el("img", { src: image, alt: "", width: 32, height: 48, loading: "lazy", decoding: "async" }) : el("span", { class: "suggestion-icon", "aria-hidden": "true" }),
        el("span", { class: "suggestion-text" }, el("span", { text }), sub ? el("span", { class: "suggestion-sub", text: sub }) : null),
      );
      option.addEventListener("mousedown", (event) => event.preventDefault()); // keep the focus in the box
      option.addEventListener("click", () => go(option));
      options.push(option);
      list.append(option);
    };
    for (const t of data.titles || []) {
      add(titleHref(t.id), t.title, [t.year, t.kind === "series" ? "Series" : "Film"].filter(Boolean).join(" · "), imageUrl(t.images, "poster", 92));
    }
    for (const p of data.people || []) {
      add(`/search/?q=${encodeURIComponent(p.name)}`, p.name, "Person", imageUrl(p.images, "photo", 92));
    }
    const typed = input.value.trim();
    if (typed) add(`/search/?q=${encodeURIComponent(typed)}`, `Search for “${typed}”`, "", "");
    list.hidden = options.length === 0;
    input.setAttribute("aria-expanded", String(options.length > 0));
  };
  const suggest = async () => {
    const typed = input.value.trim();
    if (controller) controller.abort();
    if (!typed) {
      close();
      return;
    }
    controller = new AbortController();
    try {
      const result = await api("GET", "/search/autocomplete", { query: { q: typed.slice(0, 100), limit: 8 }, signal: controller.signal });
      if (input.value.trim() !== typed) return;
      if (result.ok && result.data) render(result.data);
      else close();
    } catch (error) {
      if (error && error.name === "AbortError") return;
      close(); // suggestions are a nicety: typing and Enter still search
    }
  };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(suggest, 150);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" && options.length) {
      event.preventDefault();
      highlight((active + 1) % options.length);
    } else if (event.key === "ArrowUp" && options.length) {
      event.preventDefault();
      highlight(active <= 0 ? options.length - 1 : active - 1);
    } else if (event.key === "Escape") {
      if (!list.hidden) {
        event.preventDefault();
        close();
      } else input.value = "";
    } else if (event.key === "Enter" && active >= 0) {
      event.preventDefault();
      go(options[active]);
    }
  });
  input.addEventListener("blur", () => setTimeout(close, 100));
  form.addEventListener("submit", (event) => {
    if (!input.value.trim()) {
      event.preventDefault();
      input.focus();
    }
  });
  return form;
}

function avatar(profile, size = 32) {
  if (profile && profile.avatar_url) {
    return el("img", { class: "avatar", src: profile.avatar_url, alt: "", width: size, height: size, decoding: "async" });
  }
  const letter = profile && profile.name ? profile.name.trim().charAt(0).toUpperCase() : "?";
  return el("span", { class: "avatar avatar-letter", "aria-hidden": "true", dataset: { hue: String(hueOf(profile && profile.id)) }, text: letter });
}

function hueOf(id) {
  let hash = 0;
  for (const char of String(id || "")) hash = (hash * 31 + char.charCodeAt(0)) % 360;
  return Math.floor(hash / 45); // 0..7: app.css colours .avatar-letter[data-hue]
}

export { avatar as avatarFor };

function profileMenu(profilePromise) {
  const wrapper = el("div", { class: "profile-menu" });
  const button = el(
    "button",
    { type: "button", class: "profile-button", id: "app-profile-button", "aria-expanded": "false", "aria-controls": "app-profile-menu" },
    avatar(null),
    el("span", { class: "profile-name", text: "Profile" }),
  );
  const menu = el(
    "ul",
    { id: "app-profile-menu", class: "menu", hidden: true },
    el("li", {}, el("a", { href: `/profiles/?next=${encodeURIComponent(here())}`, text: "Switch profile" })),
    el("li", {}, el("a", { href: "/profiles/?manage=1", text: "Manage profiles" })),
    el("li", {}, el("a", { href: "/account/", text: "Account" })),
    el("li", {}, el("a", { href: "/account/billing/", text: "Billing" })),
    el("li", {}, el("button", { type: "button", class: "menu-signout", text: "Sign out", on: { click: signOut } })),
  );
  const toggle = (open) => {
    menu.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
  };
  button.addEventListener("click", () => toggle(menu.hidden));
  wrapper.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !menu.hidden) {
      toggle(false);
      button.focus();
    }
  });
  document.addEventListener("click", (event) => {
    if (!wrapper.contains(event.target)) toggle(false);
  });
  wrapper.addEventListener("focusout", (event) => {
    if (event.relatedTarget && !wrapper.contains(event.relatedTarget)) toggle(false);
  });
  wrapper.append(button, menu);
  Promise.resolve(profilePromise)
    .then((profile) => {
      if (!profile) {
        button.querySelector(".profile-name").textContent = "Account";
        button.setAttribute("aria-label", "Account menu");
        return;
      }
      button.replaceChildren(avatar(profile), el("span", { class: "profile-name", text: profile.name }));
      if (profile.is_kids) button.append(el("span", { class: "badge kids", text: "Kids" }));
      button.setAttribute("aria-label", `Profile menu: ${profile.name}${profile.is_kids ? " (kids)" : ""}`);
      document.body.dataset.kids = String(Boolean(profile.is_kids));
    })
    .catch(() => {
      button.setAttribute("aria-label", "Account menu");
    });
  return wrapper;
}

/** Fill (or create) <header id="app-header">: nav "home" | "browse" | "search" | "my-list" | "" is current. */
export function mountShell({ nav = "", profile = null, minimal = false } = {}) {
  let header = $("app-header");
  if (!header) {
    header = el("header", { id: "app-header", class: "app-header" });
    const skip = document.querySelector(".skip-link");
    if (skip) skip.after(header);
    else document.body.prepend(header);
  }
  if (!document.querySelector(".skip-link")) {
    document.body.prepend(el("a", { class: "skip-link", href: "#main", text: "Skip to content" }));
  }
  const logo = el("a", { class: "logo", href: "/", "aria-label": "Cinema Online home" }, el("span", { "aria-hidden": "true", text: "▶" }), " Cinema Online");
  if (minimal) {
    header.replaceChildren(el("div", { class: "header-inner" }, logo));
    return header;
  }
  const navigation = el(
    "nav",
    { class: "main-nav", "aria-label": "Main" },
    el("ul", {}, navLink("/", "Home", nav === "home"), navLink("/browse/", "Browse", nav === "browse"), signedIn() ? navLink("/#my-list", "My List", nav === "my-list") : null),
  );
  const end = signedIn()
    ? profileMenu(profile)
    : el("div", { class: "auth-links" }, el("a", { href: "/login/", class: "button ghost", text: "Sign in" }), el("a", { href: "/signup/", class: "button", text: "Create account" }));
  header.replaceChildren(el("div", { class: "header-inner" }, logo, navigation, searchBox(), end));
  liveRegion("app-live", "polite");
  liveRegion("app-alert", "assertive");
  return header;
}

// --- running a page ----------------------------------------------------------------------------------------

/**
 * Guard, mount the header, run the page: startPage(fn, {require, nav, shell}).
 * fn({session, profile}) where profile is a Promise<ProfileRead|null>. body[data-ready="true"] at the end
 * (tests and tools wait for it); errors thrown by fn are shown via showError.
 */
export async function startPage(fn, { require = "none", nav = "", shell = true, minimal = false } = {}) {
  let session = loadSession();
  if (require === "signin") session = requireSignIn();
  if (require === "profile") session = requireProfile();
  if (require !== "none" && !session) return; // redirecting
  const profile = session && session.profile_id ? activeProfile().catch(() => null) : Promise.resolve(null);
  if (shell) mountShell({ nav, profile, minimal });
  try {
    await fn({ session, profile });
  } catch (error) {
    showError(error);
  } finally {
    document.body.dataset.ready = "true";
  }
}
