// Search results (/search/?q=...): titles found by name, cast and crew, story and tags (misspellings
// included: the API's search is typo tolerant), facets (genre, decade, maturity, language) with their counts
// to narrow the results, and "Load more". The query and the chosen facets live in the query string
// (?q=heat&genre=drama&decade=1990), so reload, back and forward keep them. The header's search box and its
// autocomplete land here. API: GET /search?q=&genre=&decade=&maturity=&language=&cursor=&limit=.

import { api, el, notify, plural, problemText, signedIn, startPage, titleCard } from "/assets/app.js";

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

const state = { search: null, cursor: null, count: 0, controller: null, labels: new Map() };

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

function hitCard(hit, index) {
  const item = { ...hit, release_year: hit.year };
  const bits = [hit.title];
  if (hit.year) bits.push(String(hit.year));
  if (hit.kind === "series") bits.push("series");
  bits.push(`rated ${hit.maturity_level}`);
  if (MATCHED[hit.matched]) bits.push(MATCHED[hit.matched].toLowerCase());
  return titleCard(item, { eager: index < 6, label: bits.join(", "), sublabel: MATCHED[hit.matched] });
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
  if (state.count < data.total) text += `, showing ${state.count}`;
  return `${text}.`;
}

async function run(search, { more = false } = {}) {
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  state.controller = controller;
  const grid = $("grid");
  const button = $("more");
  $("error").textContent = "";
  if (!more) {
    state.search = search;
    state.cursor = null;
    state.count = 0;
    $("empty").hidden = true;
    button.hidden = true;
    document.title = search.q ? `“${search.q}” · Search · Cinema Online` : "Search · Cinema Online";
    $("search-heading").textContent = search.q ? `Results for “${search.q}”` : "Search";
  }
  if (!search.q) {
    grid.replaceChildren();
    $("facets").hidden = true;
    $("summary").textContent = "";
    emptyState(search);
    return;
  }
  grid.setAttribute("aria-busy", "true");
  if (more) {
    button.disabled = true;
    button.textContent = "Loading…";
  } else {
    $("summary").textContent = "Searching…";
  }
  const query = { q: search.q, limit: PAGE_SIZE, cursor: more ? state.cursor : undefined };
  for (const facet of FACETS) query[facet.name] = search[facet.name];
  let result;
  try {
    result = await api("GET", "/search", { query, signal: controller.signal });
  } catch (error) {
    if (error && error.name === "AbortError") return;
    done();
    $("summary").textContent = "";
    $("error").textContent = error.message;
    return;
  }
  if (controller.signal.aborted) return;
  done();
  if (!result.ok) {
    $("summary").textContent = "";
    if (!more) grid.replaceChildren();
    if (result.status === 422 && !more) {
      $("q-error").textContent = problemText(result);
      $("q").setAttribute("aria-invalid", "true");
    } else {
      $("error").textContent = problemText(result);
    }
    return;
  }
  const data = result.data;
  const items = data.items || [];
  const first = state.count;
  const cards = items.map((hit, index) => hitCard(hit, more ? 99 : index));
  if (more) grid.append(...cards);
  else grid.replaceChildren(...cards);
  state.count += items.length;
  state.cursor = data.next_cursor || null;
  button.hidden = !state.cursor;
  if (!more) renderFacets(search, data.facets || {});
  $("summary").textContent = summary(search, data);
  if (!state.count) emptyState(search);
  if (more && cards.length) {
    const link = grid.children[first] && grid.children[first].querySelector("a");
    if (link) link.focus();
    notify(`${plural(items.length, "more title")} loaded.`);
  }

  function done() {
    grid.setAttribute("aria-busy", "false");
    button.disabled = false;
    button.textContent = "Load more";
    if (state.controller === controller) state.controller = null;
  }
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

// On a phone the filters fold away behind a button (open on wider screens, where they sit beside the list).
function foldFilters(what) {
  const button = $("filters-toggle");
  const fields = $("filter-fields");
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

// --- wiring -------------------------------------------------------------------------------------------------

startPage(
  async () => {
    foldFilters("refinements");
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
      if (state.cursor) run(state.search, { more: true });
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
