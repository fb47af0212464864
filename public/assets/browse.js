// Browse (/browse/): the catalog with filters (genre, type, release years, maturity) and a sort, a page at a
// time with a "Load more" button. The filters live in the query string (?genre=drama&sort=newest...), so a
// reload, a shared link and the browser's back and forward buttons all show the same list.
// API: GET /catalog/genres (the genres with their title counts), GET /catalog/titles (cursor paging).

import { api, el, foldFilters, pagedGrid, plural, signedIn, startPage, titleCard } from "/assets/app.js";

const PAGE_SIZE = 24;
const SORTS = new Set(["popularity", "newest", "rating", "title"]);
const KINDS = new Set(["movie", "series"]);
const MATURITIES = new Set(["all", "7+", "13+", "16+", "18+"]);
const SORT_NAMES = { popularity: "most popular first", newest: "newest first", rating: "top rated first", title: "A to Z" };
const FIELDS = ["genre", "kind", "year_from", "year_to", "maturity", "sort"];

const $ = (id) => document.getElementById(id);

const state = {
  filters: null, // what the list shows now
  genres: [],
};

const results = pagedGrid({
  grid: $("grid"),
  more: $("more"),
  card: (item, options) => titleCard(item, { ...options, label: cardLabel(item) }),
});

// --- the filters and the address bar ----------------------------------------------------------------------

function year(value) {
  const number = Number.parseInt(String(value || ""), 10);
  return Number.isInteger(number) && number >= 1870 && number <= 2200 ? number : null;
}

/** The filters the query string asks for, cleaned (anything the API would refuse is dropped). */
function filtersFromUrl() {
  const params = new URLSearchParams(window.location.search);
  const genre = (params.get("genre") || "").trim();
  const filters = {
    genre: /^[a-z0-9][a-z0-9-]{0,99}$/.test(genre) ? genre : "",
    kind: KINDS.has(params.get("kind")) ? params.get("kind") : "",
    year_from: year(params.get("year_from")),
    year_to: year(params.get("year_to")),
    maturity: MATURITIES.has(params.get("maturity")) ? params.get("maturity") : "",
    sort: SORTS.has(params.get("sort")) ? params.get("sort") : "popularity",
  };
  if (filters.year_from && filters.year_to && filters.year_from > filters.year_to) filters.year_to = null;
  return filters;
}

function filtersFromForm(form) {
  return {
    genre: form.elements.genre.value,
    kind: form.elements.kind.value,
    year_from: year(form.elements.year_from.value),
    year_to: year(form.elements.year_to.value),
    maturity: form.elements.maturity.value,
    sort: form.elements.sort.value || "popularity",
  };
}

function fillForm(form, filters) {
  ensureGenreOption(filters.genre);
  for (const name of FIELDS) {
    const value = filters[name];
    form.elements[name].value = value === null || value === undefined ? "" : String(value);
  }
  clearYearError();
}

/** The query string of a set of filters (defaults left out, so /browse/ is the plain list). */
function searchOf(filters) {
  const params = new URLSearchParams();
  for (const name of FIELDS) {
    const value = filters[name];
    if (value === null || value === undefined || value === "") continue;
    if (name === "sort" && value === "popularity") continue;
    params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

function sameFilters(a, b) {
  return Boolean(a && b) && FIELDS.every((name) => (a[name] ?? "") === (b[name] ?? ""));
}

// --- genres (with their counts) ---------------------------------------------------------------------------

function ensureGenreOption(slug) {
  const select = $("genre");
  if (!slug || [...select.options].some((option) => option.value === slug)) return;
  select.append(el("option", { value: slug, text: slug.replace(/-/g, " ") }));
}

async function loadGenres() {
  const result = await api("GET", "/catalog/genres");
  if (!result.ok || !Array.isArray(result.data)) return; // the list still works without the genre names
  state.genres = result.data;
  const select = $("genre");
  const chosen = select.value;
  select.replaceChildren(
    el("option", { value: "", text: "All genres" }),
    ...result.data.map((genre) =>
      el("option", { value: genre.slug, text: `${genre.name} (${genre.title_count})` }),
    ),
  );
  ensureGenreOption(chosen);
  select.value = chosen;
}

function genreName(slug) {
  const found = state.genres.find((genre) => genre.slug === slug);
  return found ? found.name : slug.replace(/-/g, " ");
}

// --- the list ---------------------------------------------------------------------------------------------

function describe(filters) {
  const parts = [];
  if (filters.genre) parts.push(genreName(filters.genre));
  if (filters.kind) parts.push(filters.kind === "movie" ? "films" : "series");
  if (filters.year_from && filters.year_to) parts.push(`from ${filters.year_from} to ${filters.year_to}`);
  else if (filters.year_from) parts.push(`from ${filters.year_from}`);
  else if (filters.year_to) parts.push(`up to ${filters.year_to}`);
  if (filters.maturity) parts.push(`rated up to ${filters.maturity === "all" ? "all ages" : filters.maturity}`);
  return parts.length ? `${parts.join(", ")}; ${SORT_NAMES[filters.sort]}` : SORT_NAMES[filters.sort];
}

function showSummary() {
  const more = results.cursor ? " (more below)" : "";
  $("summary").textContent = results.count
    ? `Showing ${plural(results.count, "title")}${more}: ${describe(state.filters)}.`
    : "";
}

async function load(filters, { more = false } = {}) {
  $("error").textContent = "";
  if (!more) {
    state.filters = filters;
    $("empty").hidden = true;
    $("summary").textContent = "Loading titles…";
  }
  const query = {
    genre: filters.genre || undefined,
    kind: filters.kind || undefined,
    year_from: filters.year_from || undefined,
    year_to: filters.year_to || undefined,
    maturity: filters.maturity || undefined,
    sort: filters.sort,
    limit: PAGE_SIZE,
  };
  const page = await results.load(
    (cursor, signal) => api("GET", "/catalog/titles", { query: { ...query, cursor }, signal }),
    { more },
  );
  if (!page) return; // a newer list replaced this one
  if (!page.ok) {
    $("error").textContent = page.message;
    if (!more) $("summary").textContent = "";
    return;
  }
  $("empty").hidden = results.count > 0;
  showSummary();
}

function cardLabel(item) {
  const bits = [item.title];
  if (item.release_year) bits.push(String(item.release_year));
  if (item.kind === "series") bits.push("series");
  if (item.rating || item.maturity_level) bits.push(`rated ${item.rating || item.maturity_level}`);
  return bits.join(", ");
}

// --- wiring -------------------------------------------------------------------------------------------------

function clearYearError() {
  $("years-error").textContent = "";
  for (const id of ["year_from", "year_to"]) $(id).removeAttribute("aria-invalid");
}

function validYears(form) {
  clearYearError();
  for (const name of ["year_from", "year_to"]) {
    const input = form.elements[name];
    if (input.value !== "" && year(input.value) === null) {
      $("years-error").textContent = "Enter a year between 1870 and 2200.";
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return false;
    }
  }
  const from = year(form.elements.year_from.value);
  const to = year(form.elements.year_to.value);
  if (from && to && from > to) {
    $("years-error").textContent = "The first year must not be after the second.";
    form.elements.year_to.setAttribute("aria-invalid", "true");
    form.elements.year_to.focus();
    return false;
  }
  return true;
}

function apply(form) {
  if (!validYears(form)) return;
  const filters = filtersFromForm(form);
  if (sameFilters(filters, state.filters)) return;
  window.history.pushState({ browse: true }, "", `/browse/${searchOf(filters)}`);
  load(filters);
}

startPage(
  async () => {
    foldFilters({ button: $("filters-toggle"), fields: $("filter-fields"), what: "filters" });
    const form = $("filters");
    const initial = filtersFromUrl();
    fillForm(form, initial);
    // The address bar shows the cleaned filters (a bad ?sort= is dropped) without a new history entry.
    if (searchOf(initial) !== window.location.search) {
      window.history.replaceState(window.history.state, "", `/browse/${searchOf(initial)}`);
    }
    const genres = loadGenres().catch(() => {});
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      apply(form);
    });
    for (const id of ["genre", "kind", "maturity", "sort"]) {
      $(id).addEventListener("change", () => apply(form));
    }
    $("clear-filters").addEventListener("click", (event) => {
      event.preventDefault();
      const filters = { genre: "", kind: "", year_from: null, year_to: null, maturity: "", sort: "popularity" };
      fillForm(form, filters);
      if (sameFilters(filters, state.filters)) return;
      window.history.pushState({ browse: true }, "", "/browse/");
      load(filters);
    });
    $("more").addEventListener("click", () => {
      if (results.cursor) load(state.filters, { more: true });
    });
    window.addEventListener("popstate", () => {
      const filters = filtersFromUrl();
      fillForm(form, filters);
      if (!sameFilters(filters, state.filters)) load(filters);
    });
    await Promise.all([load(initial), genres]);
    fillForm(form, state.filters); // the genre names arrived: keep the chosen one selected
  },
  { require: signedIn() ? "profile" : "none", nav: "browse" },
);
