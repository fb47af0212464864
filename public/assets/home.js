// Home (/): the rows of GET /api/v1/catalog/home. With a profile: continue watching (progress from
// GET /api/v1/streaming/continue-watching, cards going to the player), My List and the catalogue rows;
// signed in without a profile: on to the profile picker; signed out: a hero and the public rows.

import {
  api,
  apiOk,
  el,
  loadSession,
  requireProfile,
  skeletonRow,
  startPage,
  titleRow,
  watchHref,
} from "/assets/app.js";

const $ = (id) => document.getElementById(id);

function episodeLabel(episode) {
  return episode ? `S${episode.season_number}:E${episode.number} · ${episode.name}` : "";
}

function continueRow(row, resume) {
  const byTitle = new Map(resume.map((item) => [String(item.title.id), item]));
  const items = row.items.filter((title) => byTitle.has(String(title.id)));
  return titleRow({
    id: row.id,
    title: row.title,
    items,
    eager: 4,
    card: (title) => {
      const entry = byTitle.get(String(title.id));
      const where = entry.episode ? `, season ${entry.episode.season_number} episode ${entry.episode.number}` : "";
      const percent = Math.round(entry.progress);
      return {
        href: watchHref(entry.content_id),
        progress: entry.progress,
        sublabel: episodeLabel(entry.episode) || undefined,
        label: `Resume ${title.title}${where}, ${percent}% watched`,
      };
    },
  });
}

function myListRow(row) {
  const section = titleRow({
    id: "my_list",
    title: "My List",
    items: row ? row.items : [],
    empty: "Titles you add to My List show up here. Open a title and choose “Add to My List”.",
  });
  section.id = "my-list";
  section.tabIndex = -1;
  return section;
}

async function signedInHome(container, profilePromise) {
  const [home, resume] = await Promise.all([
    apiOk("GET", "/catalog/home"),
    api("GET", "/streaming/continue-watching").then((r) => (r.ok && r.data ? r.data.items : [])),
  ]);
  const profile = await profilePromise;
  const heading = el("h1", { id: "page-title", class: "visually-hidden", text: profile ? `Home for ${profile.name}` : "Home" });
  const rows = [];
  let listed = false;
  let eagerUsed = false;
  for (const row of home.rows) {
    if (row.id === "continue_watching") {
      if (row.items.length && resume.length) rows.push(continueRow(row, resume));
      if (row.items.length && resume.length) eagerUsed = true;
    } else if (row.id === "my_list") {
      rows.push(myListRow(row));
      listed = true;
    } else {
      rows.push(titleRow({ id: row.id, title: row.title, items: row.items, eager: eagerUsed ? 0 : 4 }));
      eagerUsed = true;
    }
  }
  if (!listed) {
    // Keep a My List section for the header's link (#my-list).
    rows.push(myListRow(null)); // empty: last, below the titles to watch
  }
  container.replaceChildren(heading, ...rows);
  if (!home.rows.some((row) => row.items.length)) {
    container.append(el("p", { class: "empty-state", text: "Nothing to watch here yet. Try Browse, or come back soon." }));
  }
  if (window.location.hash === "#my-list") $("my-list").scrollIntoView();
}

async function publicHome(container) {
  $("hero").hidden = false;
  const home = await apiOk("GET", "/catalog/home", { auth: false });
  const rows = home.rows
    .filter((row) => row.items.length && row.id !== "continue_watching" && row.id !== "my_list")
    .map((row) => titleRow({ id: row.id, title: row.title, items: row.items }));
  container.replaceChildren(...rows);
}

startPage(
  async ({ profile }) => {
    const container = $("rows");
    const stored = loadSession();
    try {
      if (stored && stored.access_token) {
        if (!requireProfile()) return; // to the profile picker
        $("hero").remove();
        container.replaceChildren(skeletonRow("Continue watching"), skeletonRow(), skeletonRow());
        try {
          await signedInHome(container, profile);
        } catch (error) {
          if (error.status !== 401) throw error;
          window.location.replace("/login/?next=%2F"); // the session ended elsewhere
          return;
        }
      } else {
        await publicHome(container);
      }
      $("home-status").textContent = "";
    } finally {
      container.removeAttribute("aria-busy");
    }
  },
  { nav: "home" },
);
