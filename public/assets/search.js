// Search results (/search/?q=...): titles found by name, cast and crew, story and tags (misspellings
// included: the API's search is typo tolerant), facets (genre, decade, maturity, language) with their counts
// to narrow the results, and "Load more". The query and the chosen facets live in the query string
// (?q=heat&genre=drama&decade=1990), so reload, back and forward keep them. The header's search box and its
// autocomplete land here. API: GET /search?q=&genre=&decade=&maturity=&language=&cursor=&limit=.

import { api, el, foldFilters, pagedGrid, plural, signedIn, startPage, titleCard } from "/assets/app.js";

const PAGE_SIZE = 24;
const MAX_QUERY = 200;
const FACETS = [
  { name: "genre", title: "Genre", valid: (v) => /^[a-z0-9][a-z0-9-]{0,79}$/.test(v) },
  { name: "decade", title: "Decade", valid: (v) => /^\d{4}$/.test(v) && Number(v) >= 1870 && Number(v) <= 2100 },
  { name: "maturity", title: "Maturity rating", valid: (v) => ["all", "7+", "13+", "16+", "18+"].includes(v) },
  { name: "language", title: "Original language", valid: (v) => /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$/.test(v) },
];
const MATCHED = { person: "Cast or crew match", synopsis: "Story match", tags: "Tag match" };

const $ = (id) => document.getElementById(id);

const state = { search: null, labels: new Map() };

const results = pagedGrid({ grid: $("grid"), more: $("more"), card: hitCard });

// --- the address bar ---------------------------------------------------------------------------------------

function searchFromUrl() {
  const params = new URLSearchParams(window.location.search);
  const search = { q: (params.get("q") || "").trim().slice(0, MAX_QUERY) };
  for (const facet of FACETS) {
    search[facet.name] = [...new Set(params.getAll(facet.name).filter(facet.valid))].slice(0, 20);
  }
  return search;
}

function urlOf(search) {
  const params = new URLSearchParams();
  if (search.q) params.set("q", search.q);
  for (const facet of FACETS) for (const value of search[facet.name]) params.append(facet.name, value);
  const text = params.toString();
  return `/search/${text ? `?${text}` : ""}`;
}

function sameSearch(a, b) {
  return Boolean(a && b) && urlOf(a) === urlOf(b);
}

function refined(search) {
  return FACETS.some((facet) => search[facet.name].length > 0);
}

// --- facets -------------------------------------------------------------------------------------------------

function labelOf(name, value) {
  return state.labels.get(`${name}:${value}`) || (name === "decade" ? `${value}s` : value);
}

function renderFacets(search, facets) {
  const form = $("facets");
  const groups = [];
  for (const facet of FACETS) {
    const values = [...(facets[facet.name] || [])];
    for (const item of values) state.labels.set(`${facet.name}:${item.value}`, item.label);
    // A chosen value the results no longer count stays listed (and checked) so it can be unticked.
    for (const chosen of search[facet.name]) {
      if (!values.some((item) => item.value === chosen)) {
        values.push({ value: chosen, label: labelOf(facet.name, chosen), count: 0 });
      }
    }
    if (!values.length) continue;
    const legendId = `facet-${facet.name}-legend`;
    const list = el("ul", { class: "facet-list", role: "list" });
    values.forEach((item, index) => {
      const id = `facet-${facet.name}-${index}`;
      const checkbox = el("input", {
        type: "checkbox",
        id,
        name: facet.name,
        value: item.value,
        checked: search[facet.name].includes(item.value),
      });
      list.append(
        el(
          "li",
          { class: "facet" },
          checkbox,
          el(
            "label",
            { for: id },
            el("span", { class: "facet-label", text: item.label }),
            " ",
            el("span", { class: "facet-count", text: `(${item.count})` }),
            el("span", { class: "visually-hidden", text: item.count === 1 ? " title" : " titles" }),
          ),
        ),
      );
    });
    groups.push(
      el(
        "fieldset",
        { class: "facet-group" },
        el("legend", { id: legendId, text: facet.title }),
        list,
      ),
    );
  }
  $("facet-groups").replaceChildren(...groups);
  form.hidden = groups.length === 0;
  $("clear-facets").hidden = !refined(search);
}

function searchFromFacets() {
  const form = $("facets");
  const search = { q: state.search ? state.search.q : "" };
  for (const facet of FACETS) {
    search[facet.name] = [...form.querySelectorAll(`input[name="${facet.name}"]:checked`)].map((box) => box.value);
  }
  return search;
}

// --- results ------------------------------------------------------------------------------------------------

/** A search hit as a title card (options: pagedGrid's eager and grid). */
function hitCard(hit, options) {
  const item = { ...hit, release_year: hit.year };
  const bits = [hit.title];
  if (hit.year) bits.push(String(hit.year));
  if (hit.kind === "series") bits.push("series");
  bits.push(`rated ${hit.maturity_level}`);
  if (MATCHED[hit.matched]) bits.push(MATCHED[hit.matched].toLowerCase());
  return titleCard(item, { ...options, label: bits.join(", "), sublabel: MATCHED[hit.matched] });
}

function emptyState(search) {
  const box = $("empty");
  if (!search.q) {
    box.replaceChildren(
      el("p", { text: "Type a title, an actor's or director's name, or a few words of the story." }),
      el("p", {}, "Or ", el("a", { href: "/browse/", text: "browse the catalog" }), " by genre and year."),
    );
  } else if (refined(search)) {
    box.replaceChildren(
      el("p", { text: `No titles match “${search.q}” with these refinements.` }),
      el("p", {}, el("a", { href: urlOf({ ...search, genre: [], decade: [], maturity: [], language: [] }), id: "drop-refinements", text: `Search “${search.q}” without refinements` })),
    );
  } else {
    box.replaceChildren(
      el("p", { text: `No titles match “${search.q}”.` }),
      el("p", {}, "Check the spelling, try fewer words, or ", el("a", { href: "/browse/", text: "browse the catalog" }), "."),
    );
  }
  box.hidden = false;
}

function summary(search, data) {
  if (!data.total) return "";
  let text = `${plural(data.total, "title")} for “${search.q}”`;
  if (data.capped) text += " (the most popular matches; add words to narrow it down)";
  if (results.count < data.total) text += `, showing ${results.count}`;
  return `${text}.`;
}

async function run(search, { more = false } = {}) {
  $("error").textContent = "";
  if (!more) {
    state.search = search;
    $("empty").hidden = true;
    document.title = search.q ? `“${search.q}” · Search · Cinema Online` : "Search · Cinema Online";
    $("search-heading").textContent = search.q ? `Results for “${search.q}”` : "Search";
  }
  if (!search.q) {
    results.reset(); // no load follows: stop a search still in flight (load() resets itself otherwise)
    $("grid").replaceChildren();
    $("facets").hidden = true;
    $("summary").textContent = "";
    emptyState(search);
    return;
  }
  if (!more) $("summary").textContent = "Searching…";
  const query = { q: search.q, limit: PAGE_SIZE };
  for (const facet of FACETS) query[facet.name] = search[facet.name];
  const page = await results.load(
    (cursor, signal) => api("GET", "/search", { query: { ...query, cursor }, signal }),
    { more },
  );
  if (!page) return; // a newer search replaced this one
  if (!page.ok) {
    $("summary").textContent = "";
    if (!page.result) {
      $("error").textContent = page.message; // offline
    } else if (page.result.status === 422 && !more) {
      $("grid").replaceChildren();
      $("q-error").textContent = page.message;
      $("q").setAttribute("aria-invalid", "true");
    } else {
      if (!more) $("grid").replaceChildren();
      $("error").textContent = page.message;
    }
    return;
  }
  if (!more) renderFacets(search, page.data.facets || {});
  $("summary").textContent = summary(search, page.data);
  if (!results.count) emptyState(search);
}

function go(search, { replace = false } = {}) {
  $("q-error").textContent = "";
  $("q").removeAttribute("aria-invalid");
  if (sameSearch(search, state.search)) return Promise.resolve();
  const url = urlOf(search);
  if (replace) window.history.replaceState(window.history.state, "", url);
  else window.history.pushState({ search: true }, "", url);
  return run(search);
}

// --- wiring -------------------------------------------------------------------------------------------------

startPage(
  async () => {
    foldFilters({ button: $("filters-toggle"), fields: $("filter-fields"), what: "refinements" });
    const initial = searchFromUrl();
    $("q").value = initial.q;
    if (urlOf(initial) !== window.location.pathname + window.location.search) {
      window.history.replaceState(window.history.state, "", urlOf(initial));
    }
    $("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const q = $("q").value.trim().slice(0, MAX_QUERY);
      if (!q) {
        $("q-error").textContent = "Type what you are looking for.";
        $("q").setAttribute("aria-invalid", "true");
        $("q").focus();
        return;
      }
      // A new query starts without refinements: the old ones may not exist in the new results.
      go({ q, genre: [], decade: [], maturity: [], language: [] });
    });
    $("facets").addEventListener("change", (event) => {
      const box = event.target;
      if (!(box instanceof HTMLInputElement) || box.type !== "checkbox") return;
      const { name, value } = box;
      // The facets are drawn again with the new counts: keep the keyboard on the box just ticked.
      go(searchFromFacets()).then(() => {
        const again = $("facets").querySelector(`input[name="${name}"][value="${CSS.escape(value)}"]`);
        if (again && document.activeElement === document.body) again.focus();
      });
    });
    $("facets").addEventListener("submit", (event) => event.preventDefault());
    $("clear-facets").addEventListener("click", () => {
      go({ q: state.search.q, genre: [], decade: [], maturity: [], language: [] });
      $("q").focus();
    });
    $("more").addEventListener("click", () => {
      if (results.cursor) run(state.search, { more: true });
    });
    window.addEventListener("popstate", () => {
      const search = searchFromUrl();
      $("q").value = search.q;
      if (!sameSearch(search, state.search)) run(search);
    });
    await run(initial);
    if (!initial.q) $("q").focus();
  },
  { require: signedIn() ? "profile" : "none", nav: "search" },
);
