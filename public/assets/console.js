// The content manager's catalog console (/console/): titles (list, search, status filter, create/edit with
// rating, publishing, availability and images), genres and categories, cast and crew, seasons and episodes,
// people, and the bulk import with its per-row report. Plain DOM on the shared shell (app.js): the session,
// the API client, the messages and the formatting are app.js's.

import {
  api,
  apiOk,
  ApiError,
  el,
  formatDateTime,
  imageUrl,
  loadSession,
  NetworkError,
  notify,
  notifyError,
  query,
  showError,
  startPage,
  titleHref,
} from "/assets/app.js";

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 24;
const DETAIL_CONCURRENCY = 6;
const MANAGER_ROLES = new Set(["content_manager", "admin"]);
const STATUS_NAMES = { draft: "Draft", scheduled: "Scheduled", published: "Published", archived: "Archived" };
const KIND_NAMES = { movie: "Movie", series: "Series" };
// How a title is offered (catalog_titles.access): the list's short names (the form's select is in the page).
const ACCESS_NAMES = { subscription: "Subscription", transactional: "Rent or buy", free: "Free", free_with_ads: "Free with ads" };
const DEFAULT_MIN_TIER = 1; // the API's default (a tier-1 subscription title)
const IMAGE_KINDS = ["poster", "backdrop", "logo"]; // a title's; the page has a field for each
// What the catalog image upload takes (POST /catalog/images/upload): checked here first for a quick answer.
const IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp"];
const IMAGE_MAX_BYTES = 10 * 1024 * 1024;
// Headers a presigned upload may list that browsers set themselves (XMLHttpRequest refuses to).
const FORBIDDEN_HEADERS = new Set(["content-length", "host", "connection", "expect"]);
// Form fields of a title and how their values are read and written.
const TEXT_FIELDS = ["title", "slug", "original_title", "synopsis_short", "synopsis_long", "rating", "imdb_id", "tmdb_id", "original_language"];
const NUMBER_FIELDS = ["release_year", "runtime_minutes"];
const LIST_FIELDS = ["countries", "audio_languages", "subtitle_languages", "tags", "country_allow", "country_deny"];
const COUNTRY_FIELDS = new Set(["countries", "country_allow", "country_deny"]);
const DATETIME_FIELDS = ["publish_at", "available_from", "available_until"];
const NEVER_NULL = new Set(["kind", "title", "slug", "maturity_level", "status", "access", "min_tier"]);
const IMPORT_STATUS = { imported: "Imported", updated: "Updated", rejected: "Rejected" };

const state = {
  cursor: null, // next page of the titles list
  listMode: "browse",
  title: null, // TitleDetail being edited (null: a new title)
  snapshot: null, // the form's values when the title was loaded (to send only what changed)
  terms: { genre: [], category: [] },
  cast: [],
  crew: [],
  people: new Map(), // "Name (slug)" -> {id, name}
  person: null, // PersonDetail being edited
};

// --- small helpers -----------------------------------------------------------------------------------------

function textOf(value) {
  return value === null || value === undefined ? "" : String(value);
}

function splitList(text, upper = false) {
  return text
    .split(/[,;\n]/)
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => (upper ? part.toUpperCase() : part));
}

function pad(number) {
  return String(number).padStart(2, "0");
}

/** An ISO timestamp as a datetime-local value in the reader's time zone ("" when none). */
function toLocalInput(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** A datetime-local value (the reader's time zone) as an ISO timestamp, or null. */
function fromLocalInput(value) {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

// A Cloudinary public id is written `cloudinary:<public_id>` in the form, as the bulk import's image columns
// take it (shared/catalog_admin/importer.py): uploads to Cloudinary are named catalog/images/..., like storage
// keys, so the prefix is what tells the two apart.
const CLOUDINARY_PREFIX = "cloudinary:";

/** An image entry as the text the form shows: its https URL, storage key or `cloudinary:<public id>`. */
function imageText(entry) {
  if (!entry || typeof entry !== "object") return "";
  if (typeof entry.key === "string") return entry.key;
  if (typeof entry.public_id === "string") return CLOUDINARY_PREFIX + entry.public_id;
  if (typeof entry.url === "string") return entry.url;
  return "";
}

/** The ImageRef the API takes for what was typed: an https URL, `cloudinary:<public id>`, else a storage key. */
function imageRef(text) {
  const value = text.trim();
  if (!value) return null;
  if (/^https:\/\//i.test(value)) return { url: value };
  if (value.toLowerCase().startsWith(CLOUDINARY_PREFIX)) return { public_id: value.slice(CLOUDINARY_PREFIX.length).trim() };
  return { key: value };
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

// --- catalog images: upload next to every image field ------------------------------------------------------
//
// Every image text field (data-image-kind) gets an "Upload image" file control: a ticket from the API, the
// file straight to storage (PUT) or Cloudinary (POST) with XMLHttpRequest's upload progress, then the confirm
// call, whose `entry` (with its resized `sizes`) is what saving sends, whole. The field's text shows the
// entry's key (or `cloudinary:<public id>`); typing something else there replaces the upload. An empty field keeps the current image
// (shown as a preview from the resolved URLs the API reads back); its "Remove" box takes it off.
// The title and person editors reuse their inputs for every record: showing another record's image
// (setImageField) aborts the upload in flight, whose late result is then dropped, never written into the
// form of the record opened since.

class UploadError extends Error {}

/** An upload superseded by setImageField (another record opened): its result is dropped silently. */
class UploadStale extends Error {}

const imageFields = new WeakMap(); // text input -> {kind, entry, current, remove, preview, ...}

/** Send `body` with XMLHttpRequest, reporting upload progress (0..1); resolves with the response text. */
function sendWithProgress({ method, url, headers = {}, body, onProgress, signal }) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new UploadStale());
      return;
    }
    const xhr = new XMLHttpRequest();
    signal.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.open(method, url);
    for (const [name, value] of Object.entries(headers)) {
      if (!FORBIDDEN_HEADERS.has(name.toLowerCase())) xhr.setRequestHeader(name, value);
    }
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && event.total) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(xhr.responseText);
        return;
      }
      let detail = "";
      try {
        const answer = JSON.parse(xhr.responseText); // Cloudinary: {"error": {"message": ...}}
        detail = (answer && answer.error && answer.error.message) || "";
      } catch {
        // storage answers XML or plain text: the status says enough
      }
      reject(new UploadError(`The upload was refused (HTTP ${xhr.status})${detail ? `: ${detail}` : ""}. Try again or choose another image.`));
    });
    xhr.addEventListener("error", () => reject(new UploadError("The upload did not get through. Check your connection and try again.")));
    xhr.addEventListener("abort", () => reject(signal.aborted ? new UploadStale() : new UploadError("The upload was stopped.")));
    xhr.send(body);
  });
}

/** The field's current or uploaded image as a small preview ("" hides it). */
function showPreview(field, url, alt) {
  field.preview.hidden = !url;
  if (url) {
    field.preview.src = url;
    field.preview.alt = alt;
  } else {
    field.preview.removeAttribute("src");
    field.preview.alt = "";
  }
}

function showProgress(field, fraction) {
  const percent = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
  field.progress.value = percent;
  field.progress.setAttribute("aria-valuetext", `${percent} %`);
  field.progressText.textContent = `${percent} %`;
}

function setUploadError(field, text) {
  field.error.textContent = text;
  if (text) field.file.setAttribute("aria-invalid", "true");
  else field.file.removeAttribute("aria-invalid");
}

/**
 * Upload `file` as the field's image: ticket, direct upload with progress, confirm; the entry joins the form.
 * Throws UploadStale once `signal` is aborted (the field now shows another record): nothing is written then.
 */
async function uploadImage(input, file, signal) {
  const field = imageFields.get(input);
  if (!IMAGE_TYPES.includes(file.type)) throw new UploadError("Choose a PNG, JPEG or WebP image.");
  if (file.size > IMAGE_MAX_BYTES) throw new UploadError("That image is over 10 MB. Choose a smaller one.");
  const current = async (step) => {
    let result;
    try {
      result = await step;
    } catch (error) {
      if (signal.aborted) throw new UploadStale();
      throw error;
    }
    if (signal.aborted) throw new UploadStale();
    return result;
  };
  const ticket = await current(apiOk("POST", "/catalog/images/upload", { body: { kind: field.kind, content_type: file.type, size: file.size }, signal }));
  const onProgress = (fraction) => {
    if (!signal.aborted) showProgress(field, fraction);
  };
  let confirm;
  if (ticket.backend === "cloudinary") {
    const form = new FormData();
    for (const [name, value] of Object.entries(ticket.fields || {})) form.append(name, value);
    form.append("file", file);
    const text = await current(sendWithProgress({ method: ticket.method || "POST", url: ticket.upload_url, body: form, onProgress, signal }));
    let answer;
    try {
      answer = JSON.parse(text);
    } catch {
      throw new UploadError("The image service answered something unexpected. Try again.");
    }
    confirm = { kind: field.kind, public_id: answer.public_id, version: answer.version, signature: answer.signature };
  } else {
    await current(sendWithProgress({ method: ticket.method || "PUT", url: ticket.upload_url, headers: ticket.headers || {}, body: file, onProgress, signal }));
    confirm = { kind: field.kind, key: ticket.key };
  }
  const uploaded = await current(apiOk("POST", "/catalog/images", { body: confirm, signal }));
  field.entry = uploaded.entry;
  input.value = imageText(uploaded.entry);
  input.removeAttribute("aria-invalid");
  field.remove.checked = false;
  field.removeLabel.hidden = true; // the upload replaces the current image
  const url = imageUrl({ [field.kind]: uploaded.urls || {} }, field.kind, 185);
  showPreview(field, url, `The uploaded ${field.noun}`);
}

/** Add the upload control, progress, preview and "Remove" box after an image text field. */
function attachImageUpload(input) {
  if (imageFields.has(input)) return imageFields.get(input);
  const id = input.id;
  const kind = input.dataset.imageKind;
  const noun = input.dataset.imageNoun || kind;
  // The field's own error slot (found in the field, so it works before a built form is in the page).
  let error = input.parentElement ? input.parentElement.querySelector(".field-error") : null;
  if (!error) {
    error = el("p", { id: `${id}-error`, class: "field-error" });
    input.after(error);
    input.setAttribute("aria-describedby", `${id}-error`);
  }
  const file = el("input", {
    id: `${id}-file`,
    type: "file",
    accept: IMAGE_TYPES.join(","),
    "aria-describedby": `${id}-file-hint ${id}-error`,
  });
  const progress = el("progress", { id: `${id}-progress`, max: "100", value: "0", "aria-label": `Upload of the ${noun}` });
  const progressText = el("span", { id: `${id}-progress-text`, "aria-hidden": "true", text: "0 %" });
  const progressBox = el("div", { class: "image-progress", hidden: true }, progress, progressText);
  const remove = el("input", { id: `${id}-remove`, type: "checkbox" });
  const removeLabel = el("label", { class: "choice", hidden: true }, remove, ` Remove the current ${noun}`);
  const preview = el("img", { class: "image-preview", alt: "", hidden: true, decoding: "async" });
  const box = el(
    "div",
    { class: "image-upload" },
    el("label", { for: `${id}-file`, class: "upload-label" }, "Upload image", el("span", { class: "visually-hidden", text: ` for the ${noun}` })),
    file,
    el("p", { id: `${id}-file-hint`, class: "hint", text: "PNG, JPEG or WebP, up to 10 MB." }),
    progressBox,
    preview,
    removeLabel,
  );
  error.before(box);
  // upload: the AbortController of the upload in flight (null when none); setImageField aborts it.
  const field = { kind, noun, entry: null, current: null, file, error, progress, progressText, progressBox, remove, removeLabel, preview, upload: null };
  imageFields.set(input, field);
  file.addEventListener("change", async () => {
    const picked = file.files && file.files[0];
    if (!picked) return;
    setUploadError(field, "");
    const upload = new AbortController();
    field.upload = upload;
    file.disabled = true;
    showProgress(field, 0);
    field.progressBox.hidden = false;
    try {
      await uploadImage(input, picked, upload.signal);
      notify(`${picked.name} uploaded as the ${noun}: save to keep it.`);
    } catch (problem) {
      if (problem instanceof UploadStale || upload.signal.aborted) return; // another record is shown now
      const known = problem instanceof ApiError || problem instanceof UploadError || problem instanceof NetworkError;
      if (!known) console.error(problem);
      const text = known ? problem.message : "The upload failed. Try again.";
      setUploadError(field, text);
      notifyError(`The ${noun} was not uploaded: ${text}`);
      field.progressBox.hidden = true;
    } finally {
      if (field.upload === upload) {
        field.upload = null;
        file.disabled = false;
        file.value = "";
        file.focus();
      }
    }
  });
  remove.addEventListener("change", () => {
    const url = field.current ? imageUrl({ [kind]: field.current }, kind, 185) : "";
    showPreview(field, remove.checked ? "" : url, `The current ${noun}`);
  });
  return field;
}

/** Stop the field's upload in flight, if any: its result is dropped (see uploadImage). */
function cancelUpload(field) {
  if (!field.upload) return;
  field.upload.abort();
  field.upload = null;
  field.file.disabled = false;
  field.file.value = "";
}

/**
 * Show an image field with the stored image (a resolved {size: URL} object, or a raw entry, or nothing).
 * The field now belongs to that record: an upload still running for the previous one is abandoned.
 */
function setImageField(input, current) {
  const field = attachImageUpload(input);
  cancelUpload(field);
  const stored = current && typeof current === "object" ? current : null;
  const text = imageText(stored);
  field.current = stored;
  field.entry = text ? stored : null; // a raw entry goes back as it is, `sizes` and all
  input.value = text;
  input.removeAttribute("aria-invalid");
  field.remove.checked = false;
  field.removeLabel.hidden = !stored;
  field.progressBox.hidden = true;
  setUploadError(field, "");
  showPreview(field, stored ? imageUrl({ [field.kind]: stored }, field.kind, 185) : "", `The current ${field.noun}`);
}

/**
 * What saving sends for an image field: the uploaded (or stored) entry while the text still shows it, an
 * ImageRef for typed text, null to remove the current image, undefined to leave it as it is.
 */
function imageValue(input) {
  const field = imageFields.get(input);
  const text = input.value.trim();
  if (text) return field && field.entry && imageText(field.entry) === text ? field.entry : imageRef(text);
  return field && field.remove.checked ? null : undefined;
}

/** True (and says so) while an image of `form` is still uploading: saving now would leave it out. */
function uploadsPending(form) {
  const pending = [...form.querySelectorAll("input[data-image-kind]")].some((input) => Boolean(imageFields.get(input)?.upload));
  if (pending) notifyError("An image is still uploading: save once it is done.");
  return pending;
}

/** Run `work` on every item with at most `limit` at a time. */
async function eachLimited(items, limit, work) {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      await work(items[index], index);
    }
  });
  await Promise.all(runners);
}

/** Show a 422's field errors next to their fields (ids `${prefix}${field}`); the rest as one message. */
function showFieldErrors(form, error, prefix, { imagePrefix } = {}) {
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  for (const slot of form.querySelectorAll(".field-error")) slot.textContent = "";
  const result = error instanceof ApiError ? error.result : null;
  const errors = result && result.data && Array.isArray(result.data.errors) ? result.data.errors : [];
  let first = null;
  const unplaced = [];
  for (const item of errors) {
    const loc = Array.isArray(item.loc) ? item.loc.filter((part) => part !== "body") : [];
    let id = loc.length ? `${prefix}${loc[0]}` : "";
    if (loc[0] === "images" && imagePrefix && loc[1]) id = `${imagePrefix}${loc[1]}`;
    const input = id ? $(id) : null;
    const message = item.msg || item.message || "This value is not accepted.";
    if (input) {
      const slot = $(`${id}-error`);
      if (slot) slot.textContent = slot.textContent ? `${slot.textContent} ${message}` : message;
      input.setAttribute("aria-invalid", "true");
      first = first || input;
    } else {
      unplaced.push(loc.length ? `${loc.join(".")}: ${message}` : message);
    }
  }
  if (first) first.focus();
  const summary = unplaced.length ? unplaced.join("; ") : error.message;
  notifyError(first && !unplaced.length ? "Some fields need attention." : summary);
  return summary;
}

/** Disable a form's buttons while `work` runs; errors go to `onError` (default: the shell's message). */
async function busy(form, work, onError = showError) {
  if (form.getAttribute("aria-busy") === "true") return;
  form.setAttribute("aria-busy", "true");
  const buttons = [...form.querySelectorAll("button")];
  for (const button of buttons) button.disabled = true;
  try {
    await work();
  } catch (error) {
    onError(error);
  } finally {
    form.removeAttribute("aria-busy");
    for (const button of buttons) button.disabled = false;
  }
}

function setText(id, text) {
  const node = $(id);
  if (node) node.textContent = text;
}

// --- the titles list ---------------------------------------------------------------------------------------

function statusBadge(status) {
  return el("span", { class: `badge status-${status || "unknown"}`, text: STATUS_NAMES[status] || "—" });
}

/** "Subscription · tier 2+", "Rent or buy", ... ("—" when unknown). */
function accessText(access, minTier) {
  if (!access) return "—";
  const name = ACCESS_NAMES[access] || access;
  return access === "subscription" && Number.isInteger(minTier) ? `${name} · tier ${minTier}+` : name;
}

function titleRowElement(item, detail) {
  const status = detail && detail.publishing ? detail.publishing.status : "";
  const offered = detail || item;
  const edit = el("button", {
    type: "button",
    class: "small",
    text: "Edit",
    "aria-label": `Edit ${item.title}`,
    on: { click: () => openTitle(item.id) },
  });
  const upload = el("a", {
    class: "button small secondary",
    href: `/console/upload/?title=${encodeURIComponent(item.id)}`,
    text: "Video",
    "aria-label": `Upload a video for ${item.title}`,
  });
  return el(
    "tr",
    { dataset: { id: item.id, status } },
    el("th", { scope: "row" }, el("a", { href: `/console/?id=${encodeURIComponent(item.id)}`, text: item.title, on: { click: (event) => { event.preventDefault(); openTitle(item.id); } } })),
    el("td", { text: KIND_NAMES[item.kind] || item.kind }),
    el("td", { text: textOf(item.release_year ?? item.year) || "—" }),
    el("td", {}, statusBadge(status)),
    el("td", { class: "access", text: accessText(offered.access, offered.min_tier) }),
    el("td", { text: item.rating || item.maturity_level || "—" }),
    el("td", { class: "row-actions" }, edit, " ", upload),
  );
}

/** Show a title's new state in its row of the list (when the list shows it). */
function refreshRow(detail) {
  if (!detail) return;
  const row = [...$("titles-table").querySelectorAll("tbody tr[data-id]")].find((tr) => tr.dataset.id === detail.id);
  if (row) row.replaceWith(titleRowElement(detail, detail));
}

async function loadTitles({ more = false } = {}) {
  const form = $("titles-filter");
  const q = form.elements.namedItem("q").value.trim();
  const status = form.elements.namedItem("status").value;
  const kind = form.elements.namedItem("kind").value;
  const body = $("titles-table").querySelector("tbody");
  if (!more) {
    body.replaceChildren();
    state.cursor = null;
  }
  setText("titles-summary", "Loading titles…");
  let page;
  if (q) {
    page = await apiOk("GET", "/search", { query: { q, limit: PAGE_SIZE, cursor: more ? state.cursor : undefined } });
  } else {
    page = await apiOk("GET", "/catalog/titles", {
      query: { sort: "title", limit: PAGE_SIZE, kind: kind || undefined, cursor: more ? state.cursor : undefined },
    });
  }
  state.cursor = page.next_cursor || null;
  let items = page.items || [];
  if (kind) items = items.filter((item) => item.kind === kind);
  // The list answers have no publishing state: each title's detail (a manager's view) has it.
  const details = new Array(items.length).fill(null);
  await eachLimited(items, DETAIL_CONCURRENCY, async (item, index) => {
    const result = await api("GET", `/catalog/titles/${encodeURIComponent(item.id)}`);
    details[index] = result.ok ? result.data : null;
  });
  let shown = 0;
  items.forEach((item, index) => {
    const detail = details[index];
    if (status && (!detail || !detail.publishing || detail.publishing.status !== status)) return;
    body.append(titleRowElement(item, detail));
    shown += 1;
  });
  const total = body.children.length;
  $("titles-more").hidden = !state.cursor;
  let summary = total ? `${total} title${total === 1 ? "" : "s"} shown.` : "No titles match.";
  if (status && state.cursor) summary += " The status filter applies to the titles loaded so far: show more to look further.";
  setText("titles-summary", summary);
  return shown;
}

function wireTitlesList() {
  const form = $("titles-filter");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, () => loadTitles());
  });
  form.elements.namedItem("status").addEventListener("change", () => busy(form, () => loadTitles()));
  form.elements.namedItem("kind").addEventListener("change", () => busy(form, () => loadTitles()));
  $("titles-more").addEventListener("click", () => busy(form, () => loadTitles({ more: true })));
  $("new-title").addEventListener("click", () => openEditor(null));
}

// --- the title editor --------------------------------------------------------------------------------------

/** The minimum tier only means something for subscription titles. */
function showMinTier() {
  $("min-tier-field").hidden = $("f-access").value !== "subscription";
}

function termChecks(kind, listId, chosen) {
  const list = $(listId);
  const picked = new Set(chosen.map((term) => term.slug));
  // A term made since the page loaded (by a bulk import, another tab) joins the choices.
  const known = new Set(state.terms[kind].map((term) => term.slug));
  const fresh = chosen.filter((term) => term.slug && !known.has(term.slug));
  if (fresh.length) state.terms[kind] = [...state.terms[kind], ...fresh].sort((a, b) => String(a.name).localeCompare(String(b.name)));
  const terms = state.terms[kind];
  if (!terms.length) {
    list.replaceChildren(el("li", { class: "muted", text: kind === "genre" ? "No genres yet." : "No categories yet." }));
    return;
  }
  list.replaceChildren(
    ...terms.map((term) =>
      el(
        "li",
        {},
        el("label", { class: "choice" }, el("input", { type: "checkbox", name: kind, value: term.slug, checked: picked.has(term.slug) }), ` ${term.name}`),
      ),
    ),
  );
}

function checkedSlugs(kind) {
  return [...document.querySelectorAll(`#title-form input[name="${kind}"]:checked`)].map((input) => input.value);
}

/** The title form's values in the API's shape (nulls for emptied optional fields). */
function formValues() {
  const form = $("title-form");
  const get = (name) => form.elements.namedItem(name).value;
  const values = { kind: get("kind") };
  for (const name of TEXT_FIELDS) values[name] = get(name).trim() || null;
  for (const name of NUMBER_FIELDS) {
    const text = get(name).trim();
    values[name] = text === "" ? null : Number(text);
  }
  values.release_date = get("release_date") || null;
  for (const name of LIST_FIELDS) values[name] = splitList(get(name), COUNTRY_FIELDS.has(name));
  values.rating_system = get("rating_system") || null;
  values.maturity_level = get("maturity_level") || null;
  values.status = get("status");
  values.access = get("access");
  const tier = get("min_tier").trim();
  values.min_tier = tier === "" ? null : Number(tier);
  for (const name of DATETIME_FIELDS) values[name] = fromLocalInput(get(name));
  values.images = {};
  for (const kind of IMAGE_KINDS) values.images[kind] = imageValue($(`f-image-${kind}`));
  values.genres = checkedSlugs("genre");
  values.categories = checkedSlugs("category");
  return values;
}

function fillForm(detail) {
  const form = $("title-form");
  const set = (name, value) => {
    form.elements.namedItem(name).value = textOf(value);
  };
  const publishing = (detail && detail.publishing) || {};
  const ids = (detail && detail.external_ids) || {};
  set("kind", detail ? detail.kind : "movie");
  for (const name of TEXT_FIELDS) set(name, detail ? detail[name] : "");
  set("imdb_id", ids.imdb);
  set("tmdb_id", ids.tmdb);
  for (const name of NUMBER_FIELDS) set(name, detail ? detail[name] : "");
  set("release_date", detail ? detail.release_date : "");
  for (const name of ["countries", "audio_languages", "subtitle_languages", "tags"]) set(name, detail ? (detail[name] || []).join(", ") : "");
  set("country_allow", (publishing.country_allow || []).join(", "));
  set("country_deny", (publishing.country_deny || []).join(", "));
  set("rating_system", detail ? detail.rating_system : "");
  set("maturity_level", detail ? detail.maturity_level : "");
  set("status", publishing.status || "draft");
  set("access", (detail && detail.access) || "subscription");
  set("min_tier", detail && Number.isInteger(detail.min_tier) ? detail.min_tier : DEFAULT_MIN_TIER);
  showMinTier();
  for (const name of DATETIME_FIELDS) set(name, toLocalInput(publishing[name]));
  const images = (detail && detail.images) || {};
  for (const kind of IMAGE_KINDS) setImageField($(`f-image-${kind}`), images[kind]);
  termChecks("genre", "genres-list", detail ? detail.genres || [] : []);
  termChecks("category", "categories-list", detail ? detail.categories || [] : []);
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  for (const slot of form.querySelectorAll(".field-error")) slot.textContent = "";
}

function showEditorChrome(detail) {
  const editing = Boolean(detail);
  const deleted = Boolean(detail && detail.publishing && detail.publishing.deleted_at);
  setText("editor-title", editing ? `Edit “${detail.title}”` : "New title");
  const meta = [];
  if (editing) {
    meta.push(`${KIND_NAMES[detail.kind] || detail.kind} · id ${detail.id}`);
    if (detail.publishing) {
      meta.push(`${STATUS_NAMES[detail.publishing.status] || detail.publishing.status}`);
      meta.push(`last changed ${formatDateTime(detail.publishing.updated_at)}`);
      if (deleted) meta.push("deleted");
    }
  }
  setText("editor-meta", meta.join(" · "));
  $("editor-links").hidden = !editing;
  if (editing) {
    $("editor-upload").href = `/console/upload/?title=${encodeURIComponent(detail.id)}`;
    $("editor-view").href = titleHref(detail.id);
  }
  $("delete-title").hidden = !editing || deleted;
  $("restore-title").hidden = !deleted;
  $("credits-section").hidden = !editing;
  $("seasons-section").hidden = !editing || detail.kind !== "series";
}

function openEditor(detail, { focus = true } = {}) {
  state.title = detail;
  fillForm(detail);
  state.snapshot = formValues();
  showEditorChrome(detail);
  if (detail) {
    state.cast = (detail.cast || []).map((c) => ({ person_id: c.person_id, name: c.name, character: c.character || "", order: c.order }));
    state.crew = (detail.crew || []).map((c) => ({ person_id: c.person_id, name: c.name, job: c.job, order: c.order }));
    renderCredits();
    renderSeasons(detail.seasons || []);
  }
  const url = detail ? `/console/?id=${encodeURIComponent(detail.id)}` : "/console/?new=1";
  window.history.replaceState(null, "", url);
  const editor = $("editor");
  editor.hidden = false;
  if (focus) {
    editor.focus();
    editor.scrollIntoView({ block: "start" });
  }
}

async function openTitle(id, options) {
  try {
    const detail = await apiOk("GET", `/catalog/titles/${encodeURIComponent(id)}`);
    openEditor(detail, options);
  } catch (error) {
    showError(error);
  }
}

async function reloadTitle() {
  const detail = await apiOk("GET", `/catalog/titles/${encodeURIComponent(state.title.id)}`);
  openEditor(detail, { focus: false });
  return detail;
}

/** The request body of POST /titles (new) or PATCH (only the fields that changed). */
function titleChanges(values) {
  const creating = !state.title;
  const body = {};
  for (const [name, value] of Object.entries(values)) {
    if (name === "genres" || name === "categories" || name === "images") continue;
    if (creating) {
      if (value === null || (Array.isArray(value) && !value.length)) continue;
      body[name] = value;
    } else if (!same(value, state.snapshot[name])) {
      if (value === null && NEVER_NULL.has(name)) continue; // emptied: keep (the server refuses null)
      body[name] = value;
    }
  }
  const images = {};
  for (const kind of IMAGE_KINDS) {
    const value = values.images[kind];
    if (value === undefined) continue; // left as it is
    if (creating ? value !== null : !same(value, state.snapshot.images[kind])) images[kind] = value;
  }
  if (Object.keys(images).length) body.images = images;
  // A hidden tier is not the manager's choice: the stored one stays for a later switch back.
  if (values.access !== "subscription") delete body.min_tier;
  // Scheduling needs its publish time with it; the availability window is checked as a whole.
  if (!creating && ("status" in body || "publish_at" in body) && values.status === "scheduled") {
    body.status = values.status;
    body.publish_at = values.publish_at;
  }
  return body;
}

async function saveTitle() {
  const form = $("title-form");
  if (uploadsPending(form)) return;
  const values = formValues();
  if (!values.title) {
    const input = $("f-title");
    $("f-title-error").textContent = "Give the title a name.";
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  const body = titleChanges(values);
  let detail = state.title;
  const creating = !detail;
  try {
    if (creating) {
      detail = await apiOk("POST", "/catalog/titles", { body });
    } else if (Object.keys(body).length) {
      detail = await apiOk("PATCH", `/catalog/titles/${encodeURIComponent(detail.id)}`, { body });
    }
    const before = creating ? { genres: [], categories: [] } : state.snapshot;
    if (!same(values.genres, before.genres)) {
      detail = await apiOk("PUT", `/catalog/titles/${encodeURIComponent(detail.id)}/genres`, { body: { slugs: values.genres } });
    }
    if (!same(values.categories, before.categories)) {
      detail = await apiOk("PUT", `/catalog/titles/${encodeURIComponent(detail.id)}/categories`, { body: { slugs: values.categories } });
    }
  } catch (error) {
    const summary = showFieldErrors(form, error, "f-", { imagePrefix: "f-image-" });
    setText("editor-status", `Not saved: ${summary}`);
    if (creating && detail) openEditor(detail, { focus: false }); // created, but a later step failed
    return;
  }
  openEditor(detail, { focus: false });
  const message = creating ? `Created “${detail.title}” as ${STATUS_NAMES[detail.publishing?.status] || "a draft"}.` : `Saved “${detail.title}”.`;
  setText("editor-status", message);
  notify(message);
  if (creating) loadTitles().catch(() => null); // the new title in the list
  else refreshRow(detail);
}

function wireEditor() {
  for (const kind of IMAGE_KINDS) attachImageUpload($(`f-image-${kind}`));
  $("f-access").addEventListener("change", showMinTier);
  const form = $("title-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setText("editor-status", "");
    busy(form, saveTitle);
  });
  $("close-editor").addEventListener("click", () => {
    $("editor").hidden = true;
    state.title = null;
    window.history.replaceState(null, "", "/console/");
    $("new-title").focus();
  });
  $("delete-title").addEventListener("click", () =>
    busy(form, async () => {
      const detail = state.title;
      if (!detail || !window.confirm(`Delete “${detail.title}”? It disappears everywhere; you can restore it later.`)) return;
      await apiOk("DELETE", `/catalog/titles/${encodeURIComponent(detail.id)}`);
      refreshRow(await reloadTitle().catch(() => null));
      setText("editor-status", `Deleted “${detail.title}”.`);
      notify(`Deleted “${detail.title}”.`);
    }),
  );
  $("restore-title").addEventListener("click", () =>
    busy(form, async () => {
      const detail = await apiOk("POST", `/catalog/titles/${encodeURIComponent(state.title.id)}/restore`);
      openEditor(detail, { focus: false });
      refreshRow(detail);
      setText("editor-status", `Restored “${detail.title}”.`);
      notify(`Restored “${detail.title}”.`);
    }),
  );
}

// --- cast and crew -----------------------------------------------------------------------------------------

function creditRow(list, index, kind) {
  const credit = list[index];
  const detailName = kind === "cast" ? "character" : "job";
  const label = kind === "cast" ? "Character" : "Job";
  const id = `${kind}-${index}`;
  return el(
    "tr",
    {},
    el("th", { scope: "row", text: credit.name }),
    el("td", {}, el("input", {
      id: `${id}-detail`,
      value: textOf(credit[detailName]),
      maxlength: "300",
      "aria-label": `${label} of ${credit.name}`,
      on: { input: (event) => { credit[detailName] = event.target.value; } },
    })),
    el("td", {}, el("input", {
      id: `${id}-order`,
      type: "number",
      min: "0",
      max: "100000",
      class: "order-input",
      value: textOf(credit.order),
      "aria-label": `Billing order of ${credit.name}`,
      on: { input: (event) => { credit.order = event.target.value === "" ? null : Number(event.target.value); } },
    })),
    el("td", {}, el("button", {
      type: "button",
      class: "small secondary",
      text: "Remove",
      "aria-label": `Remove ${credit.name} (${kind})`,
      on: { click: () => { list.splice(index, 1); renderCredits(); } },
    })),
  );
}

function renderCredits() {
  const castBody = $("cast-table").querySelector("tbody");
  const crewBody = $("crew-table").querySelector("tbody");
  castBody.replaceChildren(...state.cast.map((_, index) => creditRow(state.cast, index, "cast")));
  crewBody.replaceChildren(...state.crew.map((_, index) => creditRow(state.crew, index, "crew")));
  if (!state.cast.length) castBody.append(el("tr", {}, el("td", { colspan: "4", class: "muted", text: "No cast yet." })));
  if (!state.crew.length) crewBody.append(el("tr", {}, el("td", { colspan: "4", class: "muted", text: "No crew yet." })));
}

function rememberPeople(people) {
  const options = $("people-options");
  for (const person of people) {
    const label = `${person.name} (${person.slug})`;
    if (!state.people.has(label)) {
      state.people.set(label, { id: person.id, name: person.name });
      options.append(el("option", { value: label }));
    }
  }
}

let peopleLookup = null;

async function suggestPeople(text) {
  if (text.trim().length < 2) return [];
  if (peopleLookup) peopleLookup.abort();
  peopleLookup = new AbortController();
  try {
    const found = await apiOk("GET", "/search/autocomplete", { query: { q: text.trim(), limit: 20 }, signal: peopleLookup.signal });
    rememberPeople(found.people || []);
    return found.people || [];
  } catch (error) {
    if (error && error.name === "AbortError") return [];
    throw error;
  }
}

function wireCredits() {
  const input = $("credit-person");
  let timer = 0;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => suggestPeople(input.value).catch(() => null), 250);
  });
  $("add-credit").addEventListener("click", async () => {
    const typed = input.value.trim();
    let person = state.people.get(typed);
    if (!person && typed) {
      const found = await suggestPeople(typed).catch(() => []);
      const exact = found.find((p) => p.name.toLowerCase() === typed.toLowerCase());
      if (exact) person = { id: exact.id, name: exact.name };
    }
    if (!person) {
      notifyError(`No person called “${typed}” was found: add them under People first, then pick them here.`);
      input.focus();
      return;
    }
    const role = $("credit-role").value;
    const detail = $("credit-detail").value.trim();
    if (role === "crew" && !detail) {
      notifyError("Give the crew member's job, e.g. director.");
      $("credit-detail").focus();
      return;
    }
    const list = role === "cast" ? state.cast : state.crew;
    const entry = { person_id: person.id, name: person.name, order: list.length };
    if (role === "cast") entry.character = detail;
    else entry.job = detail;
    list.push(entry);
    renderCredits();
    input.value = "";
    $("credit-detail").value = "";
    notify(`${person.name} added to the ${role}; save cast and crew to keep it.`);
    input.focus();
  });
  const form = $("credits-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, async () => {
      const order = (value, index) => (value === null || value === undefined || Number.isNaN(value) ? index : value);
      const body = {
        cast: state.cast.map((c, index) => ({ person_id: c.person_id, character: c.character ? c.character : null, order: order(c.order, index) })),
        crew: state.crew.map((c, index) => ({ person_id: c.person_id, job: c.job, order: order(c.order, index) })),
      };
      const detail = await apiOk("PUT", `/catalog/titles/${encodeURIComponent(state.title.id)}/credits`, { body });
      openEditor(detail, { focus: false });
      notify("Cast and crew saved.");
    });
  });
}

// --- seasons and episodes ----------------------------------------------------------------------------------

function numberInput(id, label, value, { min = "0", max = "10000", required = true } = {}) {
  return el(
    "div",
    { class: "field" },
    el("label", { for: id, text: label }),
    el("input", { id, type: "number", min, max, inputmode: "numeric", value: textOf(value), required }),
  );
}

function textInput(id, label, value, { required = false, max = "300" } = {}) {
  return el(
    "div",
    { class: "field" },
    el("label", { for: id, text: label }),
    el("input", { id, value: textOf(value), maxlength: max, required }),
  );
}

function readNumber(id) {
  const text = $(id).value.trim();
  return text === "" ? null : Number(text);
}

/** A season's or episode's image field (text + upload) showing its stored image; see attachImageUpload. */
function imageInput(id, label, kind, noun, current) {
  const input = el("input", { id, maxlength: "2000", autocomplete: "off", "data-image-kind": kind, "data-image-noun": noun, "aria-describedby": `${id}-error` });
  const field = el("div", { class: "field image-field" }, el("label", { for: id, text: label }), input, el("p", { id: `${id}-error`, class: "field-error" }));
  setImageField(input, current);
  return field;
}

/** `{kind: value}` for a changed image field of a season or episode (nothing when left as it is). */
function imageChange(kind, id, current) {
  const value = imageValue($(id));
  if (value === undefined || (value !== null && same(value, current))) return null;
  return { [kind]: value };
}

function episodeForm(season, episode) {
  const key = episode ? episode.id : `new-${season.id}`;
  const form = el(
    "form",
    { class: "inline-form episode-form", "aria-label": episode ? `Edit episode ${episode.number}` : `Add an episode to season ${season.number}` },
    el(
      "div",
      { class: "grid" },
      numberInput(`ep-number-${key}`, "Episode number", episode ? episode.number : (season.episodes || []).length + 1),
      textInput(`ep-name-${key}`, "Episode name", episode ? episode.name : "", { required: true }),
      numberInput(`ep-runtime-${key}`, "Runtime in minutes", episode ? episode.runtime_minutes : "", { min: "1", max: "2000", required: false }),
      imageInput(
        `ep-still-${key}`,
        "Still image (16:9; https address, storage key or cloudinary:<public id>)",
        "still",
        episode ? `still of episode ${episode.number}` : `still of the new episode of season ${season.number}`,
        episode && episode.images ? episode.images.still : null,
      ),
      el("div", { class: "field buttons" }, el("button", { type: "submit", text: episode ? "Save episode" : "Add episode" })),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, async () => {
      const body = {
        number: readNumber(`ep-number-${key}`),
        name: $(`ep-name-${key}`).value.trim(),
        runtime_minutes: readNumber(`ep-runtime-${key}`),
      };
      if (uploadsPending(form)) return;
      const images = imageChange("still", `ep-still-${key}`, episode && episode.images ? episode.images.still : null);
      if (images) body.images = images;
      if (!episode) {
        for (const name of Object.keys(body)) if (body[name] === null) delete body[name];
        if (body.images && body.images.still === null) delete body.images;
        await apiOk("POST", `/catalog/seasons/${encodeURIComponent(season.id)}/episodes`, { body });
        notify(`Episode ${body.number} added to season ${season.number}.`);
      } else {
        await apiOk("PATCH", `/catalog/episodes/${encodeURIComponent(episode.id)}`, { body });
        notify(`Episode ${body.number} saved.`);
      }
      await reloadTitle();
    });
  });
  return form;
}

function seasonBlock(season) {
  const titleId = state.title.id;
  const heading = `Season ${season.number}${season.name ? ` · ${season.name}` : ""}`;
  const episodes = season.episodes || [];
  const rows = episodes.map((episode) => {
    const edit = el("details", { class: "episode-edit" }, el("summary", { text: "Edit" }), episodeForm(season, episode));
    return el(
      "tr",
      {},
      el("td", { text: String(episode.number) }),
      el("th", { scope: "row", text: episode.name }),
      el("td", { text: episode.runtime_minutes ? `${episode.runtime_minutes} min` : "—" }),
      el(
        "td",
        { class: "row-actions" },
        edit,
        el("a", {
          class: "button small secondary",
          href: `/console/upload/?title=${encodeURIComponent(titleId)}&episode=${encodeURIComponent(episode.id)}`,
          text: "Video",
          "aria-label": `Upload a video for episode ${episode.number}, ${episode.name}`,
        }),
        el("button", {
          type: "button",
          class: "small danger",
          text: "Delete",
          "aria-label": `Delete episode ${episode.number}, ${episode.name}`,
          on: {
            click: async () => {
              if (!window.confirm(`Delete episode ${episode.number} “${episode.name}”? This cannot be undone.`)) return;
              try {
                await apiOk("DELETE", `/catalog/episodes/${encodeURIComponent(episode.id)}`);
                notify(`Episode ${episode.number} deleted.`);
                await reloadTitle();
              } catch (error) {
                showError(error);
              }
            },
          },
        }),
      ),
    );
  });
  const seasonForm = el(
    "form",
    { class: "inline-form", "aria-label": `Edit season ${season.number}` },
    el(
      "div",
      { class: "grid" },
      numberInput(`season-number-${season.id}`, "Season number", season.number, { max: "1000" }),
      textInput(`season-name-${season.id}`, "Season name", season.name),
      imageInput(`season-poster-${season.id}`, "Season poster (2:3)", "poster", `poster of season ${season.number}`, season.images ? season.images.poster : null),
      el(
        "div",
        { class: "field buttons" },
        el("button", { type: "submit", text: "Save season" }),
        el("button", {
          type: "button",
          class: "danger",
          text: "Delete season",
          on: {
            click: async () => {
              if (!window.confirm(`Delete season ${season.number} and its ${episodes.length} episodes? This cannot be undone.`)) return;
              try {
                await apiOk("DELETE", `/catalog/seasons/${encodeURIComponent(season.id)}`);
                notify(`Season ${season.number} deleted.`);
                await reloadTitle();
              } catch (error) {
                showError(error);
              }
            },
          },
        }),
      ),
    ),
  );
  seasonForm.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(seasonForm, async () => {
      if (uploadsPending(seasonForm)) return;
      const name = $(`season-name-${season.id}`).value.trim();
      const body = { number: readNumber(`season-number-${season.id}`), name: name || null };
      const images = imageChange("poster", `season-poster-${season.id}`, season.images ? season.images.poster : null);
      if (images) body.images = images;
      await apiOk("PATCH", `/catalog/seasons/${encodeURIComponent(season.id)}`, { body });
      notify(`Season ${season.number} saved.`);
      await reloadTitle();
    });
  });
  const tableId = `episodes-${season.id}`;
  return el(
    "section",
    { class: "season", "aria-labelledby": `season-h-${season.id}` },
    el("h4", { id: `season-h-${season.id}`, text: `${heading} (${episodes.length} episode${episodes.length === 1 ? "" : "s"})` }),
    seasonForm,
    episodes.length
      ? el(
          "div",
          { class: "table-wrap", role: "region", "aria-labelledby": `season-h-${season.id}`, tabindex: "0" },
          el(
            "table",
            { id: tableId },
            el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "No." }), el("th", { scope: "col", text: "Episode" }), el("th", { scope: "col", text: "Runtime" }), el("th", { scope: "col" }, el("span", { class: "visually-hidden", text: "Actions" })))),
            el("tbody", {}, ...rows),
          ),
        )
      : el("p", { class: "muted", text: "No episodes yet." }),
    el("h5", { text: `Add an episode to season ${season.number}` }),
    episodeForm(season, null),
  );
}

function renderSeasons(seasons) {
  const box = $("seasons-list");
  if (!seasons.length) {
    box.replaceChildren(el("p", { class: "muted", text: "No seasons yet: add the first one below." }));
    return;
  }
  box.replaceChildren(...seasons.map(seasonBlock));
  const numberInput = $("season-number");
  if (numberInput && !numberInput.value) numberInput.placeholder = String(Math.max(...seasons.map((s) => s.number)) + 1);
}

function wireSeasons() {
  const form = $("season-add");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, async () => {
      const number = readNumber("season-number");
      if (number === null) {
        notifyError("Give the season a number (0 for specials).");
        $("season-number").focus();
        return;
      }
      const name = $("season-name").value.trim();
      const body = { number };
      if (name) body.name = name;
      await apiOk("POST", `/catalog/titles/${encodeURIComponent(state.title.id)}/seasons`, { body });
      form.reset();
      notify(`Season ${number} added.`);
      await reloadTitle();
    });
  });
}

// --- people ------------------------------------------------------------------------------------------------

function openPerson(detail) {
  state.person = detail;
  const form = $("person-form");
  const set = (name, value) => {
    form.elements.namedItem(name).value = textOf(value);
  };
  set("name", detail ? detail.name : "");
  set("slug", detail ? detail.slug : "");
  set("birth_date", detail ? detail.birth_date : "");
  set("biography", detail ? detail.biography : "");
  set("imdb_id", detail && detail.external_ids ? detail.external_ids.imdb : "");
  set("tmdb_id", detail && detail.external_ids ? detail.external_ids.tmdb : "");
  setImageField($("p-photo"), detail && detail.images ? detail.images.photo : null);
  for (const slot of form.querySelectorAll(".field-error")) slot.textContent = "";
  setText("person-form-title", detail ? `Edit ${detail.name}` : "New person");
  $("person-delete").hidden = !detail;
  form.hidden = false;
  $("person-form-title").focus();
}

function wirePeople() {
  const find = $("people-find");
  find.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(find, async () => {
      const q = find.elements.namedItem("q").value.trim();
      const list = $("people-results");
      if (!q) {
        list.replaceChildren();
        return;
      }
      const people = await suggestPeople(q);
      list.replaceChildren(
        ...(people.length
          ? people.map((person) =>
              el(
                "li",
                {},
                el("span", { text: `${person.name} ` }),
                el("button", {
                  type: "button",
                  class: "small secondary",
                  text: "Edit",
                  "aria-label": `Edit ${person.name}`,
                  on: { click: async () => openPerson(await apiOk("GET", `/catalog/people/${encodeURIComponent(person.id)}`).catch((e) => { showError(e); return null; })) },
                }),
              ),
            )
          : [el("li", { class: "muted", text: "Nobody found. People show up here once they are credited; add a new person below." })]),
      );
    });
  });
  $("new-person").addEventListener("click", () => openPerson(null));
  $("person-close").addEventListener("click", () => {
    $("person-form").hidden = true;
    state.person = null;
  });
  $("person-delete").addEventListener("click", async () => {
    const person = state.person;
    if (!person || !window.confirm(`Delete ${person.name}? Their credits are hidden until they are restored.`)) return;
    try {
      await apiOk("DELETE", `/catalog/people/${encodeURIComponent(person.id)}`);
      $("person-form").hidden = true;
      state.person = null;
      notify(`${person.name} deleted.`);
    } catch (error) {
      showError(error);
    }
  });
  const form = $("person-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, async () => {
      if (uploadsPending(form)) return;
      const get = (name) => form.elements.namedItem(name).value.trim();
      const body = {
        name: get("name"),
        biography: get("biography") || null,
        birth_date: get("birth_date") || null,
        imdb_id: get("imdb_id") || null,
        tmdb_id: get("tmdb_id") || null,
      };
      if (get("slug")) body.slug = get("slug");
      const photo = imageChange("photo", "p-photo", state.person && state.person.images ? state.person.images.photo : null);
      if (photo) body.images = photo;
      let detail;
      try {
        if (state.person) {
          detail = await apiOk("PATCH", `/catalog/people/${encodeURIComponent(state.person.id)}`, { body });
        } else {
          for (const name of ["biography", "birth_date", "imdb_id", "tmdb_id"]) if (body[name] === null) delete body[name];
          if (body.images && !body.images.photo) delete body.images;
          detail = await apiOk("POST", "/catalog/people", { body });
        }
      } catch (error) {
        showFieldErrors(form, error, "p-", { imagePrefix: "p-" });
        return;
      }
      rememberPeople([detail]);
      state.person = detail;
      setImageField($("p-photo"), detail.images ? detail.images.photo : null);
      setText("person-form-title", `Edit ${detail.name}`);
      $("person-delete").hidden = false;
      notify(`${detail.name} saved. Pick “${detail.name} (${detail.slug})” when adding a credit.`);
    });
  });
}

// --- bulk import -------------------------------------------------------------------------------------------

/** POST /catalog/import with a raw body (JSON or CSV); the shared client sends only JSON, so fetch here. */
async function postImport(text, type, dryRun) {
  const send = () => {
    const stored = loadSession();
    const headers = { accept: "application/json, application/problem+json", "content-type": type };
    if (stored && stored.access_token) headers.authorization = `Bearer ${stored.access_token}`;
    return fetch(`/api/v1/catalog/import${dryRun ? "?dry_run=true" : ""}`, {
      method: "POST",
      headers,
      body: text,
      cache: "no-store",
      credentials: "same-origin",
    });
  };
  let response = await send();
  if (response.status === 401) {
    await api("GET", "/users/me"); // renews the session's token when it has expired
    response = await send();
  }
  let data = null;
  if ((response.headers.get("content-type") || "").includes("json")) data = await response.json().catch(() => null);
  const result = { ok: response.ok, status: response.status, data, retryAfter: response.headers.get("retry-after") };
  if (!response.ok) throw new ApiError(result);
  return data;
}

/** The cells of a CSV text (RFC 4180: quoted cells, doubled quotes, CRLF or LF), row by row. */
function csvRows(text) {
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false;
  const source = text.replace(/^\uFEFF/, "");
  for (let i = 0; i < source.length; i++) {
    const char = source[i];
    if (quoted) {
      if (char === '"' && source[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (char === '"') quoted = false;
      else cell += char;
    } else if (char === '"') quoted = true;
    else if (char === ",") {
      row.push(cell);
      cell = "";
    } else if (char === "\n" || char === "\r") {
      if (char === "\r" && source[i + 1] === "\n") i += 1;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
    } else cell += char;
  }
  if (cell || row.length) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

/** The title each row of the import names (numbered as the report numbers them: from 1, data rows only). */
function rowNames(format, payload) {
  try {
    if (format === "json") {
      const titles = JSON.parse(payload).titles;
      return Array.isArray(titles) ? titles.map((row) => (row && typeof row.title === "string" ? row.title : "")) : [];
    }
    const [header, ...rows] = csvRows(payload);
    const column = (header || []).map((name) => name.trim().toLowerCase()).indexOf("title");
    return rows.filter((cells) => cells.some((cell) => cell.trim())).map((cells) => (column >= 0 ? (cells[column] || "").trim() : ""));
  } catch {
    return [];
  }
}

function renderReport(report, names = []) {
  const box = $("import-report");
  const verb = report.dry_run ? "would be" : "";
  setText(
    "import-counts",
    `${report.dry_run ? "Dry run: nothing was written. " : ""}${report.imported} ${verb} imported, ${report.updated} ${verb} updated, ${report.rejected} rejected.`.replace(/\s+/g, " "),
  );
  const body = $("import-table").querySelector("tbody");
  body.replaceChildren(
    ...report.rows.map((row) =>
      el(
        "tr",
        { class: `import-${row.status}` },
        el("th", { scope: "row", text: String(row.row) }),
        el("td", {}, el("span", { class: `badge import-${row.status}`, text: IMPORT_STATUS[row.status] || row.status })),
        el(
          "td",
          {},
          row.id
            ? el("a", { href: `/console/?id=${encodeURIComponent(row.id)}`, text: names[row.row - 1] || row.slug || row.id, on: { click: (event) => { event.preventDefault(); openTitle(row.id); } } })
            : names[row.row - 1] || textOf(row.slug) || "—",
        ),
        el(
          "td",
          {},
          row.errors && row.errors.length
            ? el("ul", { class: "plain-list" }, ...row.errors.map((e) => el("li", {}, el("code", { text: e.field || "(row)" }), ` ${e.message} (${e.code})`)))
            : "—",
        ),
      ),
    ),
  );
  box.hidden = false;
  box.focus();
}

function wireImport() {
  const file = $("import-file");
  file.addEventListener("change", async () => {
    const picked = file.files && file.files[0];
    if (!picked) return;
    $("import-text").value = await picked.text();
    if (/\.csv$/i.test(picked.name)) $("import-format").value = "csv";
    else if (/\.json$/i.test(picked.name)) $("import-format").value = "json";
    notify(`${picked.name} loaded: check it, then import.`);
  });
  const form = $("import-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, async () => {
      const text = $("import-text").value;
      const slot = $("import-text-error");
      slot.textContent = "";
      $("import-text").removeAttribute("aria-invalid");
      if (!text.trim()) {
        slot.textContent = "Paste the data or choose a file first.";
        $("import-text").setAttribute("aria-invalid", "true");
        $("import-text").focus();
        return;
      }
      let format = $("import-format").value;
      if (format === "auto") format = /^\s*[[{]/.test(text) ? "json" : "csv";
      let payload = text;
      if (format === "json") {
        try {
          const parsed = JSON.parse(text);
          if (Array.isArray(parsed)) payload = JSON.stringify({ titles: parsed }); // a bare list of rows
        } catch (error) {
          slot.textContent = `This is not valid JSON: ${error.message}`;
          $("import-text").setAttribute("aria-invalid", "true");
          $("import-text").focus();
          return;
        }
      }
      try {
        const report = await postImport(payload, format === "json" ? "application/json" : "text/csv", $("import-dry-run").checked);
        renderReport(report, rowNames(format, payload));
        notify(`Import done: ${report.imported} imported, ${report.updated} updated, ${report.rejected} rejected.`);
        if (!report.dry_run && (report.imported || report.updated)) {
          await loadTerms(); // the genres and categories the import created
          loadTitles().catch(() => null); // and the titles it made
        }
      } catch (error) {
        if (error instanceof ApiError) {
          slot.textContent = error.message;
          $("import-text").setAttribute("aria-invalid", "true");
        }
        showError(error);
      }
    });
  });
}

// --- the page ----------------------------------------------------------------------------------------------

function showStep(id) {
  for (const section of document.querySelectorAll("[data-step]")) section.hidden = section.id !== id;
}

/** Whether the signed-in account may use the console; shows the role message when not. */
export async function requireManager() {
  const me = await apiOk("GET", "/users/me");
  const roles = Array.isArray(me.roles) ? me.roles : [];
  if (!roles.some((role) => MANAGER_ROLES.has(role))) {
    showStep("no-role");
    document.body.dataset.role = "none";
    return null;
  }
  document.body.dataset.role = "manager";
  return me;
}

async function loadTerms() {
  const [genres, categories] = await Promise.all([
    api("GET", "/catalog/genres"),
    api("GET", "/catalog/categories"),
  ]);
  state.terms.genre = genres.ok && Array.isArray(genres.data) ? genres.data : [];
  state.terms.category = categories.ok && Array.isArray(categories.data) ? categories.data : [];
}

async function consolePage({ session }) {
  if (!(await requireManager())) return;
  if (session && session.profile_id) {
    notify("You are signed in with a viewer profile: drafts and hidden titles only show without one.");
  }
  showStep("console");
  wireTitlesList();
  wireEditor();
  wireCredits();
  wireSeasons();
  wirePeople();
  wireImport();
  await loadTerms();
  const id = query("id");
  if (id) await openTitle(id, { focus: false });
  else if (query("new")) openEditor(null, { focus: false });
  await loadTitles();
}

if (document.body.dataset.page === "console") startPage(consolePage, { require: "signin" });
