// A title (/title/?id=<id or slug>[&season=N]): backdrop and poster, facts, story, cast and crew (each name
// searches the catalog for that person), seasons and episodes with their own Play, the profile's rating
// (thumbs and stars), the My List toggle, the trailer in a dialog, Play or Resume (-> /watch/?content=), and,
// when the viewer cannot watch it yet, what unlocks it: a subscription (-> /account/billing/) or the title's
// rental and purchase offers (POST /payments/purchase with an Idempotency-Key -> the checkout page).
//
// API: GET /catalog/titles/{id}; with a profile also GET/PUT/DELETE /catalog/my-list/{id},
// GET/PUT/DELETE /catalog/titles/{id}/rating, GET /streaming/continue-watching, GET /streaming/{id}/next;
// GET /payments/titles/{id}/offers, GET /payments/subscription, GET /payments/purchases.

import { loadHls } from "./hls-loader.js";
import {
  api,
  codeOf,
  el,
  formatDate,
  formatDuration,
  formatMoney,
  formatRuntime,
  here,
  imageUrl,
  maturityBadge,
  notify,
  notifyError,
  plural,
  problemText,
  query,
  showError,
  signedIn,
  startPage,
  watchHref,
} from "/assets/app.js";

const $ = (id) => document.getElementById(id);

// Subscription states in which the plan's limits apply (as the billing page reads them).
const LIVE_PLAN = new Set(["trialing", "active", "past_due"]);
const LANGUAGES = typeof Intl.DisplayNames === "function" ? new Intl.DisplayNames(undefined, { type: "language" }) : null;
const REGIONS = typeof Intl.DisplayNames === "function" ? new Intl.DisplayNames(undefined, { type: "region" }) : null;

const state = {
  title: null, // TitleDetail
  profile: false, // the session has a profile: My List, rating, resume
  inList: false,
  rating: { thumbs: null, stars: null },
  intents: new Map(), // purchase intent -> Idempotency-Key, until it gets a final answer
};

// --- small helpers ------------------------------------------------------------------------------------------

function languageName(code) {
  try {
    return (LANGUAGES && LANGUAGES.of(code)) || code;
  } catch {
    return code;
  }
}

function regionName(code) {
  try {
    return (REGIONS && REGIONS.of(code)) || code;
  } catch {
    return code;
  }
}

function searchHref(text) {
  return `/search/?q=${encodeURIComponent(text)}`;
}

function setBusy(button, busy) {
  button.disabled = busy;
  if (busy) button.setAttribute("aria-busy", "true");
  else button.removeAttribute("aria-busy");
}

function newKey() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
  const bytes = window.crypto.getRandomValues(new Uint8Array(16)); // plain-http LAN address: no randomUUID
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// --- the title ----------------------------------------------------------------------------------------------

/** Lay the hero out for the art there is (the HTML reserves room for both) and show its text. */
function showHero({ backdrop = false, poster = false } = {}) {
  const hero = $("hero");
  hero.classList.toggle("has-backdrop", backdrop);
  hero.classList.toggle("has-poster", poster);
  $("poster").hidden = !poster;
  hero.classList.remove("loading");
}

function renderHero(title) {
  document.title = `${title.title} · Cinema Online`;
  $("title-name").textContent = title.title;
  if (title.original_title && title.original_title !== title.title) {
    $("original-title").textContent = `Original title: ${title.original_title}`;
    $("original-title").hidden = false;
  }
  const backdrop = imageUrl(title.images, "backdrop", 1280);
  if (backdrop) {
    $("backdrop").src = backdrop;
    $("backdrop").hidden = false;
  }
  const poster = imageUrl(title.images, "poster", 342);
  if (poster) $("poster").src = poster;
  showHero({ backdrop: Boolean(backdrop), poster: Boolean(poster) });
  const meta = [];
  if (title.release_year) meta.push(el("span", { text: String(title.release_year) }));
  if (title.kind === "series") {
    const seasons = title.seasons.length;
    meta.push(el("span", { text: seasons ? plural(seasons, "season") : "Series" }));
  } else if (title.runtime_minutes) {
    meta.push(el("span", { text: formatRuntime(title.runtime_minutes) }));
  }
  const badge = maturityBadge(title.maturity_level, title.rating);
  if (badge) meta.push(badge);
  const ratings = title.user_ratings || {};
  if (ratings.stars_count) {
    meta.push(
      el("span", {
        class: "stars-average",
        text: `★ ${ratings.stars_average.toFixed(1)}`,
        title: `${ratings.stars_average.toFixed(1)} out of 5 from ${plural(ratings.stars_count, "rating")}`,
      }),
    );
  }
  $("title-meta").replaceChildren(...meta.flatMap((part, index) => (index ? [el("span", { class: "dot", "aria-hidden": "true", text: "·" }), part] : [part])));
  $("title-genres").replaceChildren(
    ...(title.genres || []).map((genre) =>
      el("li", {}, el("a", { href: `/browse/?genre=${encodeURIComponent(genre.slug)}`, text: genre.name })),
    ),
  );
  $("tagline").textContent = title.synopsis_short || "";
}

function renderAbout(title) {
  const story = title.synopsis_long || title.synopsis_short || "";
  $("synopsis").textContent = story || "No synopsis yet.";
  const facts = [];
  const add = (term, value) => {
    if (value) facts.push(el("div", { class: "fact" }, el("dt", { text: term }), el("dd", { text: value })));
  };
  if (title.release_date) add("Released", formatDate(title.release_date, { style: "long" }));
  if (title.kind === "movie" && title.runtime_minutes) add("Runtime", formatRuntime(title.runtime_minutes));
  if (title.original_language) add("Original language", languageName(title.original_language));
  if (title.audio_languages && title.audio_languages.length) add("Audio", title.audio_languages.map(languageName).join(", "));
  if (title.subtitle_languages && title.subtitle_languages.length) add("Subtitles", title.subtitle_languages.map(languageName).join(", "));
  if (title.countries && title.countries.length) add("Country", title.countries.map(regionName).join(", "));
  if (title.categories && title.categories.length) add("Categories", title.categories.map((c) => c.name).join(", "));
  $("facts").replaceChildren(...facts);
  $("about").hidden = false;
}

function renderCredits(title) {
  const cast = [...(title.cast || [])].sort((a, b) => a.order - b.order);
  const crew = [...(title.crew || [])].sort((a, b) => a.order - b.order);
  const person = (credit, role) =>
    el(
      "li",
      { class: "person" },
      el("a", { href: searchHref(credit.name), text: credit.name, "aria-label": `${credit.name}${role ? `, ${role}` : ""}: find their titles` }),
      role ? el("span", { class: "role", text: role }) : null,
    );
  $("cast").replaceChildren(...cast.map((c) => person(c, c.character ? `as ${c.character}` : "")));
  $("crew").replaceChildren(...crew.map((c) => person(c, c.job)));
  $("cast-block").hidden = cast.length === 0;
  $("crew-block").hidden = crew.length === 0;
  $("credits").hidden = cast.length + crew.length === 0;
}

// --- seasons and episodes ------------------------------------------------------------------------------------

function seasonLabel(season) {
  const name = season.name && season.name !== `Season ${season.number}` ? `: ${season.name}` : "";
  const count = season.episode_count ?? season.episodes.length;
  return `${season.number === 0 ? "Specials" : `Season ${season.number}`}${name} (${plural(count, "episode")})`;
}

function renderSeasons(title, wanted) {
  const seasons = [...(title.seasons || [])].sort((a, b) => a.number - b.number);
  if (title.kind !== "series" || !seasons.length) return;
  const select = $("season");
  select.replaceChildren(...seasons.map((s) => el("option", { value: String(s.number), text: seasonLabel(s) })));
  const first = seasons.find((s) => s.number >= 1) || seasons[0];
  const chosen = seasons.find((s) => String(s.number) === String(wanted)) || first;
  select.value = String(chosen.number);
  select.addEventListener("change", () => {
    const season = seasons.find((s) => String(s.number) === select.value);
    showSeason(season);
    const url = new URL(window.location.href);
    url.searchParams.set("season", select.value);
    window.history.replaceState(window.history.state, "", url.pathname + url.search);
  });
  showSeason(chosen);
  $("episodes").hidden = false;
}

function showSeason(season) {
  $("season-synopsis").textContent = season.synopsis || "";
  const episodes = [...(season.episodes || [])].sort((a, b) => a.number - b.number);
  if (!episodes.length) {
    $("episode-list").replaceChildren(el("li", { class: "episode empty", text: "No episodes yet." }));
    return;
  }
  $("episode-list").replaceChildren(...episodes.map((episode) => episodeItem(season, episode)));
  markInProgress();
}

function episodeItem(season, episode) {
  const still = imageUrl(episode.images, "still", 300);
  const headingId = `episode-${episode.id}`;
  const meta = [
    episode.runtime_minutes ? formatRuntime(episode.runtime_minutes) : "",
    episode.release_date ? formatDate(episode.release_date) : "",
  ].filter(Boolean);
  return el(
    "li",
    { class: "episode", dataset: { episode: episode.id } },
    still
      ? el("img", { class: "episode-still", src: still, alt: "", width: 300, height: 169, loading: "lazy", decoding: "async" })
      : el("span", { class: "episode-still art-missing", "aria-hidden": "true" }),
    el(
      "div",
      { class: "episode-text" },
      el("h3", { id: headingId, class: "episode-name" }, el("span", { class: "episode-number", text: `${episode.number}. ` }), episode.name),
      meta.length ? el("p", { class: "episode-meta", text: meta.join(" · ") }) : null,
      episode.synopsis ? el("p", { class: "episode-synopsis", text: episode.synopsis }) : null,
      el("p", { class: "episode-progress hint", hidden: true }),
    ),
    el(
      "a",
      {
        class: "button small episode-play",
        href: watchHref(episode.id),
        "aria-label": `Play season ${season.number}, episode ${episode.number}: ${episode.name}`,
      },
      el("span", { "aria-hidden": "true", text: "▶ " }),
      "Play",
    ),
  );
}

// --- Play / Resume -----------------------------------------------------------------------------------------

const resume = { contentId: null, position: 0, episode: null };

function firstEpisode(title) {
  const seasons = [...(title.seasons || [])].sort((a, b) => a.number - b.number);
  const season = seasons.find((s) => s.number >= 1 && s.episodes.length) || seasons.find((s) => s.episodes.length);
  if (!season) return null;
  return [...season.episodes].sort((a, b) => a.number - b.number)[0];
}

function renderPlay() {
  const title = state.title;
  const play = $("play");
  let contentId = title.id;
  let text = "Play";
  let label = `Play ${title.title}`;
  if (title.kind === "series") {
    const episode = resume.episode || firstEpisode(title);
    if (!episode) {
      play.hidden = true;
      return;
    }
    contentId = resume.contentId || episode.id;
    const where = `S${episode.season_number} E${episode.number}`;
    // The accessible name starts with the visible words (WCAG 2.5.3), then says what they stand for.
    const spelled = `${title.title}, season ${episode.season_number} episode ${episode.number}`;
    if (resume.position > 0) {
      text = `Resume ${where}`;
      label = `Resume ${where}: ${spelled}, from ${formatDuration(resume.position)}`;
    } else {
      text = `Play ${where}`;
      label = `Play ${where}: ${spelled}, ${episode.name}`;
    }
  } else if (resume.position > 0) {
    text = "Resume";
    label = `Resume ${title.title} from ${formatDuration(resume.position)}`;
  }
  play.replaceChildren(el("span", { "aria-hidden": "true", text: "▶ " }), text);
  play.setAttribute("aria-label", label);
  play.href = watchHref(contentId);
  play.hidden = false;
  const note = $("resume-note");
  note.textContent = resume.position > 0 ? `You stopped at ${formatDuration(resume.position)}.` : "";
  note.hidden = !(resume.position > 0);
}

function markInProgress() {
  if (!resume.episode) return;
  const item = document.querySelector(`[data-episode="${CSS.escape(resume.contentId || "")}"] .episode-progress`);
  if (!item) return;
  item.textContent = resume.position > 0 ? `In progress: stopped at ${formatDuration(resume.position)}` : "Up next";
  item.hidden = false;
}

async function loadResume() {
  const title = state.title;
  if (title.kind === "series") {
    const result = await api("GET", `/streaming/${encodeURIComponent(title.id)}/next`);
    if (result.status === 200 && result.data && result.data.episode) {
      resume.contentId = result.data.episode.id;
      resume.episode = result.data.episode;
      resume.position = Number(result.data.position_seconds) || 0;
    }
  } else {
    const result = await api("GET", "/streaming/continue-watching", { query: { limit: 50 } });
    const items = result.ok && result.data ? result.data.items || [] : [];
    const found = items.find((item) => item.title && item.title.id === title.id);
    if (found) {
      resume.contentId = found.content_id;
      resume.position = Number(found.position_seconds) || 0;
    }
  }
  renderPlay();
  markInProgress();
}

// --- My List ------------------------------------------------------------------------------------------------

function showListState() {
  const button = $("my-list");
  button.setAttribute("aria-pressed", String(state.inList));
  button.querySelector(".toggle-icon").textContent = state.inList ? "✓" : "+";
  button.title = state.inList ? "In My List: press to remove" : "Add to My List";
}

async function loadListState() {
  let cursor;
  for (let page = 0; page < 5; page += 1) {
    const result = await api("GET", "/catalog/my-list", { query: { limit: 100, cursor } });
    if (!result.ok) return;
    if ((result.data.items || []).some((item) => item.title && item.title.id === state.title.id)) {
      state.inList = true;
      break;
    }
    cursor = result.data.next_cursor;
    if (!cursor) break;
  }
  showListState();
}

async function toggleList() {
  const button = $("my-list");
  if (button.getAttribute("aria-busy") === "true") return;
  const adding = !state.inList;
  setBusy(button, true);
  try {
    const path = `/catalog/my-list/${encodeURIComponent(state.title.id)}`;
    const result = await api(adding ? "PUT" : "DELETE", path);
    if (!result.ok) {
      notifyError(problemText(result));
      return;
    }
    state.inList = adding;
    showListState();
    notify(adding ? `${state.title.title} is in My List.` : `${state.title.title} is no longer in My List.`);
  } catch (error) {
    showError(error);
  } finally {
    setBusy(button, false);
    button.focus();
  }
}

// --- rating -------------------------------------------------------------------------------------------------

function renderStars() {
  const box = $("stars").querySelector(".star-options");
  box.replaceChildren(
    ...[1, 2, 3, 4, 5].map((n) =>
      el(
        "span",
        { class: "star-option" },
        el("input", { type: "radio", name: "stars", id: `stars-${n}`, value: String(n) }),
        el("label", { for: `stars-${n}`, title: plural(n, "star") }, el("span", { "aria-hidden": "true", text: "★" }), el("span", { class: "visually-hidden", text: plural(n, "star") })),
      ),
    ),
  );
}

function showRating(aggregates) {
  const { thumbs, stars } = state.rating;
  $("thumbs-up").setAttribute("aria-pressed", String(thumbs === 1));
  $("thumbs-down").setAttribute("aria-pressed", String(thumbs === -1));
  for (const radio of $("stars").querySelectorAll("input[name=stars]")) radio.checked = Number(radio.value) === stars;
  $("stars").dataset.value = String(stars || 0);
  $("unrate").hidden = thumbs === null && stars === null;
  if (aggregates) {
    const parts = [];
    if (aggregates.thumbs_up || aggregates.thumbs_down) {
      parts.push(`${plural(aggregates.thumbs_up, "viewer")} liked it, ${aggregates.thumbs_down} did not`);
    }
    if (aggregates.stars_count) {
      parts.push(`${aggregates.stars_average.toFixed(1)} stars on average from ${plural(aggregates.stars_count, "rating")}`);
    }
    $("rating-summary").textContent = parts.length ? `${parts.join("; ")}.` : "No ratings yet: be the first.";
  }
}

async function loadRating() {
  const result = await api("GET", `/catalog/titles/${encodeURIComponent(state.title.id)}/rating`);
  if (!result.ok) {
    showRating(state.title.user_ratings);
    return;
  }
  state.rating = { thumbs: result.data.thumbs ?? null, stars: result.data.stars ?? null };
  showRating(result.data.user_ratings);
}

async function rate(next, control) {
  const path = `/catalog/titles/${encodeURIComponent(state.title.id)}/rating`;
  const controls = [$("thumbs-up"), $("thumbs-down"), $("unrate"), ...$("stars").querySelectorAll("input")];
  for (const c of controls) c.disabled = true;
  try {
    if (next.thumbs === null && next.stars === null) {
      const result = await api("DELETE", path);
      if (!result.ok) {
        notifyError(problemText(result));
        showRating();
        return;
      }
      state.rating = { thumbs: null, stars: null };
      await loadRating(); // the aggregates after the removal
      notify("Your rating is removed.");
      return;
    }
    const result = await api("PUT", path, { body: { thumbs: next.thumbs, stars: next.stars } });
    if (!result.ok) {
      notifyError(problemText(result));
      showRating();
      return;
    }
    state.rating = { thumbs: result.data.thumbs ?? null, stars: result.data.stars ?? null };
    showRating(result.data.user_ratings);
    const said = [];
    if (state.rating.thumbs === 1) said.push("you like it");
    if (state.rating.thumbs === -1) said.push("not for you");
    if (state.rating.stars) said.push(plural(state.rating.stars, "star"));
    notify(`Rating saved: ${said.join(", ")}.`);
  } catch (error) {
    showError(error);
    showRating();
  } finally {
    for (const c of controls) c.disabled = false;
    if (control && !control.hidden && document.contains(control)) control.focus();
    else $("thumbs-up").focus();
  }
}

function wireRating() {
  renderStars();
  $("thumbs-up").addEventListener("click", (event) =>
    rate({ thumbs: state.rating.thumbs === 1 ? null : 1, stars: state.rating.stars }, event.currentTarget),
  );
  $("thumbs-down").addEventListener("click", (event) =>
    rate({ thumbs: state.rating.thumbs === -1 ? null : -1, stars: state.rating.stars }, event.currentTarget),
  );
  $("stars").addEventListener("change", (event) => {
    const stars = Number(event.target.value);
    if (stars >= 1 && stars <= 5) rate({ thumbs: state.rating.thumbs, stars }, event.target);
  });
  $("unrate").addEventListener("click", () => rate({ thumbs: null, stars: null }, null));
  $("rating").hidden = false;
}

// --- trailer ------------------------------------------------------------------------------------------------

let hlsInstance = null;

function playableTrailer(title) {
  for (const trailer of title.trailers || []) {
    if (!trailer.url) continue;
    let url;
    try {
      url = new URL(trailer.url, window.location.href);
    } catch {
      continue;
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") continue;
    return { trailer, url, local: url.origin === window.location.origin };
  }
  return null;
}

async function openTrailer(found) {
  const dialog = $("trailer-dialog");
  const video = $("trailer-video");
  $("trailer-error").textContent = "";
  $("trailer-title").textContent = `Trailer: ${found.trailer.name || state.title.title}`;
  dialog.showModal();
  const source = found.url.href;
  const isHls = /\.m3u8(\?|$)/i.test(found.url.pathname + found.url.search);
  try {
    if (isHls && !video.canPlayType("application/vnd.apple.mpegurl")) {
      const Hls = await loadHls();
      if (!Hls.isSupported()) throw new Error("unsupported");
      hlsInstance = new Hls();
      hlsInstance.on(Hls.Events.ERROR, (_event, data) => {
        if (data && data.fatal) $("trailer-error").textContent = "The trailer could not be played.";
      });
      hlsInstance.loadSource(source);
      hlsInstance.attachMedia(video);
    } else {
      video.src = source;
    }
    await video.play().catch(() => {}); // autoplay may be refused: the controls are there
  } catch {
    $("trailer-error").textContent = "The trailer cannot be played in this browser.";
  }
}

function closeTrailer() {
  const video = $("trailer-video");
  video.pause();
  if (hlsInstance) {
    hlsInstance.destroy();
    hlsInstance = null;
  }
  video.removeAttribute("src");
  video.load();
}

function wireTrailer(title) {
  const found = playableTrailer(title);
  if (!found) return;
  if (!found.local) {
    // Another site's trailer: linked, not played here (the dialog plays this origin's trailers only).
    $("trailer-link").href = found.url.href;
    $("trailer-link").hidden = false;
    return;
  }
  const button = $("trailer-button");
  const dialog = $("trailer-dialog");
  button.hidden = false;
  button.addEventListener("click", () => openTrailer(found));
  $("trailer-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    closeTrailer();
    button.focus();
  });
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close(); // a click on the backdrop
  });
}

// --- ways to watch: subscription, rent, buy ----------------------------------------------------------------

function pickCurrency(offers, preferred) {
  const all = [
    ...(offers.rental || []),
    ...(offers.purchase || []),
    ...(offers.ppv_events || []).flatMap((e) => e.prices || []),
  ].map((o) => o.currency);
  if (!all.length) return null;
  for (const wanted of [preferred, "USD", "EUR"]) if (wanted && all.includes(wanted)) return wanted;
  return all[0];
}

async function loadAccess() {
  const title = state.title;
  const [offersResult, subscriptionResult, purchasesResult] = await Promise.all([
    api("GET", `/payments/titles/${encodeURIComponent(title.id)}/offers`),
    state.profile ? api("GET", "/payments/subscription") : null,
    state.profile ? api("GET", "/payments/purchases", { query: { limit: 100 } }) : null,
  ]);
  const offers = offersResult && offersResult.ok ? offersResult.data : { rental: [], purchase: [], ppv_events: [] };
  const subscription = subscriptionResult && subscriptionResult.ok ? subscriptionResult.data : null;
  const purchases = purchasesResult && purchasesResult.ok ? purchasesResult.data.items || [] : [];
  const mine = purchases.filter((p) => p.title && p.title.id === title.id);
  const owned = mine.some((p) => p.playable_now);
  const pending = mine.some((p) => p.status === "pending");
  const subscribed = Boolean(
    subscription && !subscription.is_free && (subscription.paid_access ?? LIVE_PLAN.has(subscription.status)),
  );
  const tier = subscription && subscription.limits ? Number(subscription.limits.tier) || 0 : 0;
  // The catalog may tell the access model (free, free_with_ads, subscription, transactional); when it does
  // not, a title sold for rent or purchase is treated as needing one unless the plan covers it.
  const access = title.access || null;
  const currency = pickCurrency(offers, subscription && subscription.currency);
  const forSale = Boolean(currency);
  let needs = null; // null: nothing to unlock; else what unlocks it
  if (access === "free" || access === "free_with_ads" || owned) needs = null;
  else if (access === "subscription") needs = subscribed && tier >= (title.min_tier ?? 1) ? null : "subscription";
  else if (access === "transactional") needs = "transactional";
  else if (forSale) needs = subscribed ? "maybe" : "either";
  renderAccess({ needs, offers, currency, subscribed, pending, owned: mine.find((p) => p.playable_now) });
}

function offerButton(kind, offer, text, eventId) {
  return el(
    "button",
    {
      type: "button",
      class: kind === "buy" ? "" : "secondary",
      dataset: { offer: kind },
      on: { click: (event) => purchase(event.currentTarget, kind, offer.currency, eventId) },
    },
    text,
  );
}

function renderAccess({ needs, offers, currency, subscribed, pending, owned }) {
  const section = $("access");
  const actions = [];
  const fineprint = [];
  const title = state.title;
  if (owned) {
    section.hidden = false;
    $("access-note").textContent =
      owned.kind === "rental" && owned.rental && owned.rental.expires_at
        ? `You rented this title: it plays until ${formatDate(owned.rental.expires_at, { style: "long" })}.`
        : owned.kind === "rental"
          ? "You rented this title: the 48-hour window starts when you press Play."
          : "You own this title.";
    $("access-actions").replaceChildren();
    $("access-fineprint").textContent = "";
    return;
  }
  if (!needs) {
    section.hidden = true;
    return;
  }
  const signIn = `/login/?next=${encodeURIComponent(here())}`;
  if (currency && needs !== "subscription") {
    if (state.profile) {
      for (const offer of (offers.rental || []).filter((o) => o.currency === currency)) {
        actions.push(offerButton("rent", offer, `Rent for ${formatMoney(offer.amount_minor, offer.currency)}`));
      }
      for (const offer of (offers.purchase || []).filter((o) => o.currency === currency)) {
        actions.push(offerButton("buy", offer, `Buy for ${formatMoney(offer.amount_minor, offer.currency)}`));
      }
      for (const event of offers.ppv_events || []) {
        if (!event.on_sale) continue;
        for (const offer of (event.prices || []).filter((o) => o.currency === currency)) {
          actions.push(offerButton("ppv", offer, `Ticket for ${event.name}: ${formatMoney(offer.amount_minor, offer.currency)}`, event.id));
        }
      }
    } else {
      actions.push(el("a", { class: "button", href: signIn, text: "Sign in to rent or buy" }));
    }
    if ((offers.rental || []).length) fineprint.push("A rental can be started within 30 days and plays for 48 hours from when you start it.");
    if ((offers.purchase || []).length) fineprint.push("A purchase is yours to keep.");
  }
  if (needs === "subscription" || needs === "either") {
    actions.push(el("a", { class: needs === "subscription" ? "button" : "button secondary", href: "/account/billing/", text: subscribed ? "Change plan" : "Subscribe" }));
  }
  const notes = {
    subscription: subscribed ? `Your plan does not include ${title.title}. A higher plan does.` : `${title.title} is included with a subscription.`,
    transactional: `${title.title} is not included in plans: rent or buy it to watch.`,
    either: `Rent or buy ${title.title} to watch it, or see whether a subscription includes it.`,
    maybe: `Not included in your plan? Rent or buy ${title.title}.`,
  };
  let note = notes[needs];
  if (pending) note += " A payment for it is still being confirmed.";
  if (needs === "transactional" && !actions.length) note = `${title.title} is not for rent or sale at the moment.`;
  $("access-note").textContent = note;
  $("access-actions").replaceChildren(...actions);
  $("access-fineprint").textContent = fineprint.join(" ");
  section.hidden = false;
}

function goTo(url) {
  let target;
  try {
    target = new URL(url, window.location.href);
  } catch {
    notifyError("The checkout link is not valid. Try again.");
    return;
  }
  if (target.protocol !== "https:" && target.protocol !== "http:") {
    notifyError("The checkout link is not valid. Try again.");
    return;
  }
  window.location.assign(target.href);
}

async function purchase(button, kind, currency, eventId) {
  if (button.getAttribute("aria-busy") === "true") return;
  const body = { title_id: state.title.id, kind, currency };
  if (eventId) body.ppv_event_id = eventId;
  // One Idempotency-Key per intent: a retry after a network or server error can never open a second checkout.
  const intent = JSON.stringify(body);
  if (!state.intents.has(intent)) state.intents.set(intent, newKey());
  setBusy(button, true);
  try {
    const result = await api("POST", "/payments/purchase", { body, headers: { "idempotency-key": state.intents.get(intent) } });
    const code = codeOf(result);
    if (!(result.status >= 500 || result.status === 429 || code === "idempotency_key_in_use")) state.intents.delete(intent);
    if (!result.ok) {
      notifyError(problemText(result));
      if (code === "already_owned" || code === "already_rented") await loadAccess();
      return;
    }
    if (result.data.checkout_url) {
      notify("Taking you to the checkout…");
      goTo(result.data.checkout_url);
      return;
    }
    notify(`${state.title.title}: done.`);
    await loadAccess();
  } catch (error) {
    showError(error);
  } finally {
    setBusy(button, false);
  }
}

// --- the page -----------------------------------------------------------------------------------------------

function notFound(text) {
  document.title = "Title not found · Cinema Online";
  $("title-name").textContent = "Title not found";
  $("hero").classList.add("missing");
  showHero();
  if (text) $("not-found-text").textContent = text;
  $("not-found").hidden = false;
}

startPage(
  async ({ session }) => {
    const id = query("id").trim();
    if (!id || id.length > 200) {
      notFound("No title was asked for. Pick one from Browse or Search.");
      return;
    }
    state.profile = Boolean(session && session.profile_id);
    const result = await api("GET", `/catalog/titles/${encodeURIComponent(id)}`);
    if (result.status === 404 || result.status === 422) {
      notFound();
      return;
    }
    if (!result.ok) {
      $("title-name").textContent = "This title could not be loaded";
      showHero();
      $("error").textContent = problemText(result);
      return;
    }
    const title = result.data;
    state.title = title;
    renderHero(title);
    renderAbout(title);
    renderCredits(title);
    renderSeasons(title, query("season"));
    renderPlay();
    wireTrailer(title);
    $("actions").hidden = false;
    const waits = [loadAccess().catch(showError).finally(() => document.querySelector(".title-body").classList.remove("pending"))];
    if (state.profile) {
      $("my-list").hidden = false;
      $("my-list").addEventListener("click", toggleList);
      wireRating();
      showRating(title.user_ratings);
      waits.push(loadListState().catch(showError), loadRating().catch(showError), loadResume().catch(showError));
    } else {
      $("my-list-signin").href = `/login/?next=${encodeURIComponent(here())}`;
      $("my-list-signin").hidden = false;
      const signin = $("rating-signin").querySelector("a");
      signin.href = `/login/?next=${encodeURIComponent(here())}`;
      $("rating-signin").hidden = false;
    }
    await Promise.all(waits);
  },
  { require: signedIn() ? "profile" : "none", nav: "" },
);
