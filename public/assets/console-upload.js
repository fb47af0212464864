// The console's upload page (/console/upload/?title=<id>[&episode=<id>]): pick a video, SHA-256 it in the
// browser, upload it straight to storage through the presigned URL(s) with a progress bar (multipart uploads
// resume after a reload: the upload id is kept in localStorage and GET /media/uploads/{id} names the parts
// storage already holds), complete it, then follow the transcode job live; subtitles; a preview link once
// the asset is playable. The session, API client and messages are app.js's; the role check is console.js's.

import {
  api,
  apiOk,
  ApiError,
  el,
  formatDateTime,
  notify,
  notifyError,
  query,
  showError,
  startPage,
  watchHref,
} from "/assets/app.js";
import { requireManager } from "/assets/console.js";

const $ = (id) => document.getElementById(id);
const SUBTLE_LIMIT = 256 * 1024 * 1024; // above this the file is hashed in chunks (no whole-file buffer)
const READ_CHUNK = 8 * 1024 * 1024;
const PART_CONCURRENCY = 3;
const PART_RETRIES = 2;
const POLL_MS = 1500;
const RESUME_PREFIX = "cinema.console.upload:";
const FINISHED = new Set(["ready", "failed", "cancelled"]);
const PLAYABLE_ASSET = new Set(["playable", "ready"]);
const FORBIDDEN_HEADERS = new Set(["content-length", "host", "connection", "expect"]);
const JOB_STATES = {
  queued: "Queued",
  probing: "Checking the file",
  encoding: "Encoding",
  packaging: "Packaging",
  publishing: "Publishing",
  ready: "Ready",
  failed: "Failed",
  cancelled: "Cancelled",
};
const ASSET_STATES = { processing: "Processing", playable: "Playable", ready: "Ready", failed: "Failed", superseded: "Replaced" };
const CONTENT_TYPES = new Set([
  "video/mp4", "video/quicktime", "video/x-matroska", "video/matroska", "video/webm", "video/mp2t", "video/mpeg",
  "video/x-msvideo", "video/avi", "video/x-flv", "application/mxf", "audio/wav", "audio/x-wav", "audio/mpeg",
  "audio/flac", "audio/ogg", "audio/mp4",
]);

const page = {
  titleId: "",
  episodeId: "",
  title: null,
  abort: null, // AbortController of the running upload
  xhrs: new Set(),
  pollTimer: 0,
  jobId: "",
};

// --- SHA-256 -----------------------------------------------------------------------------------------------

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
  0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
  0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
  0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
  0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** Incremental SHA-256 (WebCrypto's digest takes one buffer only; a film does not fit in one). */
export class Sha256 {
  constructor() {
    this.h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    this.block = new Uint8Array(64);
    this.filled = 0;
    this.length = 0;
    this.w = new Uint32Array(64);
  }

  update(data) {
    let offset = 0;
    this.length += data.length;
    if (this.filled) {
      const take = Math.min(64 - this.filled, data.length);
      this.block.set(data.subarray(0, take), this.filled);
      this.filled += take;
      offset = take;
      if (this.filled < 64) return this;
      this.compress(this.block, 0);
      this.filled = 0;
    }
    for (; offset + 64 <= data.length; offset += 64) this.compress(data, offset);
    if (offset < data.length) {
      this.block.set(data.subarray(offset), 0);
      this.filled = data.length - offset;
    }
    return this;
  }

  compress(d, o) {
    const w = this.w;
    for (let t = 0; t < 16; t++) w[t] = (d[o + 4 * t] << 24) | (d[o + 4 * t + 1] << 16) | (d[o + 4 * t + 2] << 8) | d[o + 4 * t + 3];
    for (let t = 16; t < 64; t++) {
      const a = w[t - 15];
      const b = w[t - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
    }
    const h = this.h;
    let [a, b, c, e0, e, f, g, hh] = [h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]];
    for (let t = 0; t < 64; t++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K[t] + w[t]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      hh = g;
      g = f;
      f = e;
      e = (e0 + t1) | 0;
      e0 = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += e0; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }

  hex() {
    const bytes = this.length;
    const tail = new Uint8Array(this.filled < 56 ? 64 : 128);
    tail.set(this.block.subarray(0, this.filled));
    tail[this.filled] = 0x80;
    const view = new DataView(tail.buffer);
    view.setUint32(tail.length - 8, Math.floor(bytes / 0x20000000));
    view.setUint32(tail.length - 4, (bytes % 0x20000000) * 8);
    this.compress(tail, 0);
    if (tail.length === 128) this.compress(tail, 64);
    return [...this.h].map((word) => word.toString(16).padStart(8, "0")).join("");
  }
}

function toHex(buffer) {
  return [...new Uint8Array(buffer)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The file's SHA-256 (hex), reading it in chunks with progress(fraction); WebCrypto for files that fit. */
async function sha256File(file, progress, signal) {
  const whole = file.size <= SUBTLE_LIMIT && globalThis.crypto && crypto.subtle;
  const buffer = whole ? new Uint8Array(file.size) : null;
  const hash = whole ? null : new Sha256();
  for (let offset = 0; offset < file.size; offset += READ_CHUNK) {
    if (signal.aborted) throw new DOMException("stopped", "AbortError");
    const chunk = new Uint8Array(await file.slice(offset, offset + READ_CHUNK).arrayBuffer());
    if (whole) buffer.set(chunk, offset);
    else hash.update(chunk);
    progress(Math.min(1, (offset + chunk.length) / file.size));
  }
  if (!file.size) progress(1);
  return whole ? toHex(await crypto.subtle.digest("SHA-256", buffer)) : hash.hex();
}

// --- progress ----------------------------------------------------------------------------------------------

function bytes(count) {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = count;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit ? value.toFixed(value < 10 ? 1 : 0) : value} ${units[unit]}`;
}

function meter(id, fraction, text) {
  const percent = Math.max(0, Math.min(100, Math.round(fraction * 1000) / 10));
  const bar = $(id);
  bar.value = percent;
  bar.setAttribute("aria-valuetext", text || `${percent} %`);
  $(id.replace("progress", "text")).textContent = text || `${percent} %`;
}

function status(text, kind = "") {
  const node = $("upload-status");
  node.className = `notice ${kind}`.trim();
  node.textContent = text;
}

function eta(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `about ${Math.max(1, Math.round(seconds))} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `about ${minutes} min`;
  return `about ${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

// --- talking to storage ------------------------------------------------------------------------------------

/** PUT a body to a presigned URL with XMLHttpRequest (upload progress); resolves with the ETag. */
function putToStorage(request, body, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    page.xhrs.add(xhr);
    const done = () => page.xhrs.delete(xhr);
    xhr.open(request.method || "PUT", request.url);
    for (const [name, value] of Object.entries(request.headers || {})) {
      if (!FORBIDDEN_HEADERS.has(name.toLowerCase())) xhr.setRequestHeader(name, value);
    }
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded);
    });
    xhr.addEventListener("load", () => {
      done();
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(body.size);
        resolve(xhr.getResponseHeader("ETag") || "");
      } else {
        reject(new Error(`Storage refused the upload (HTTP ${xhr.status}).`));
      }
    });
    xhr.addEventListener("error", () => {
      done();
      reject(new Error("The connection to storage was lost."));
    });
    xhr.addEventListener("abort", () => {
      done();
      reject(new DOMException("stopped", "AbortError"));
    });
    if (signal) signal.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(body);
  });
}

function resumeKey() {
  return `${RESUME_PREFIX}${page.titleId}:${page.episodeId || "-"}`;
}

function savedUpload() {
  try {
    const raw = window.localStorage.getItem(resumeKey());
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

function saveUpload(record) {
  try {
    if (record) window.localStorage.setItem(resumeKey(), JSON.stringify(record));
    else window.localStorage.removeItem(resumeKey());
  } catch {
    // private mode: no resuming after a reload, the upload itself still works
  }
}

/** Upload the missing parts of a multipart upload (3 at a time), presigning them 100 at a time. */
async function uploadParts(uploadId, file, partSize, missing, given, alreadyUploaded, signal) {
  const urls = new Map(given.map((part) => [part.part_number, part]));
  const loaded = new Map();
  const report = () => {
    let sent = alreadyUploaded;
    for (const value of loaded.values()) sent += value;
    meter("upload-progress", sent / file.size, `${bytes(sent)} of ${bytes(file.size)}`);
  };
  report();
  const queue = [...missing];
  const worker = async () => {
    while (queue.length) {
      if (signal.aborted) throw new DOMException("stopped", "AbortError");
      const number = queue.shift();
      if (!urls.has(number)) {
        const batch = [number, ...queue.filter((n) => !urls.has(n)).slice(0, 99)];
        const answer = await apiOk("POST", `/media/uploads/${uploadId}/parts`, { body: { part_numbers: batch } });
        for (const part of answer.parts) urls.set(part.part_number, part);
      }
      const start = (number - 1) * partSize;
      const blob = file.slice(start, Math.min(file.size, start + partSize));
      for (let attempt = 0; ; attempt++) {
        try {
          await putToStorage(urls.get(number), blob, (sent) => {
            loaded.set(number, sent);
            report();
          }, signal);
          break;
        } catch (error) {
          loaded.set(number, 0);
          if (error.name === "AbortError" || attempt >= PART_RETRIES) throw error;
          // an expired URL or a dropped connection: a fresh URL and another try
          const answer = await apiOk("POST", `/media/uploads/${uploadId}/parts`, { body: { part_numbers: [number] } });
          urls.set(number, answer.parts[0]);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PART_CONCURRENCY, missing.length) }, worker));
}

/** Continue a stored multipart upload: GET it, upload what storage lacks. */
async function resumeParts(record, file, signal) {
  const upload = await apiOk("GET", `/media/uploads/${record.upload_id}`);
  if (upload.source.state !== "uploading") return upload;
  const have = upload.uploaded_parts.reduce((sum, part) => sum + part.size, 0);
  status(`Resuming: ${upload.uploaded_parts.length} of ${upload.part_count} parts are already stored.`);
  await uploadParts(record.upload_id, file, upload.part_size, upload.missing_parts, [], have, signal);
  return upload;
}

async function complete(uploadId, file, record, signal) {
  status("Finishing the upload…");
  let result = await api("POST", `/media/uploads/${uploadId}/complete`, { body: {} });
  if (!result.ok && result.code === "parts_incomplete" && record) {
    await resumeParts(record, file, signal); // a part went missing: send it again, then once more
    result = await api("POST", `/media/uploads/${uploadId}/complete`, { body: {} });
  }
  if (!result.ok) throw new ApiError(result);
  return result.data;
}

// --- the upload --------------------------------------------------------------------------------------------

function contentTypeOf(file) {
  const type = (file.type || "").toLowerCase();
  if (CONTENT_TYPES.has(type)) return type;
  if (/\.mkv$/i.test(file.name)) return "video/x-matroska";
  if (/\.mxf$/i.test(file.name)) return "application/mxf";
  return "application/octet-stream";
}

function sameFile(record, file) {
  return record && record.name === file.name && record.size === file.size && record.last_modified === file.lastModified;
}

async function runUpload(file, purpose) {
  const controller = new AbortController();
  page.abort = controller;
  const signal = controller.signal;
  $("progress-box").hidden = false;
  $("upload-cancel").hidden = false;
  meter("hash-progress", 0);
  meter("upload-progress", 0);
  let record = savedUpload();
  let uploadId = "";
  try {
    if (sameFile(record, file)) {
      // The same file as the unfinished multipart upload: no need to hash it again.
      meter("hash-progress", 1, "Known file");
      uploadId = record.upload_id;
      await resumeParts(record, file, signal);
    } else {
      if (record) saveUpload(null); // another file: the old upload is left to expire
      record = null;
      status("Checking the file…");
      const sha256 = await sha256File(file, (fraction) => meter("hash-progress", fraction), signal);
      meter("hash-progress", 1, "Checked");
      status("Asking for an upload address…");
      const body = {
        title_id: page.titleId,
        purpose,
        filename: file.name,
        content_type: contentTypeOf(file),
        size_bytes: file.size,
        sha256,
      };
      if (page.episodeId) body.episode_id = page.episodeId;
      const ticket = await apiOk("POST", "/media/uploads", { body });
      uploadId = ticket.source.id;
      status(`Uploading ${file.name} (${bytes(file.size)})…`);
      if (ticket.mode === "single") {
        await putToStorage(ticket.upload, file, (sent) => meter("upload-progress", sent / file.size, `${bytes(sent)} of ${bytes(file.size)}`), signal);
      } else {
        record = {
          upload_id: uploadId,
          name: file.name,
          size: file.size,
          last_modified: file.lastModified,
          part_size: ticket.part_size,
          part_count: ticket.part_count,
          started_at: new Date().toISOString(),
        };
        saveUpload(record);
        const all = Array.from({ length: ticket.part_count }, (_, index) => index + 1);
        await uploadParts(uploadId, file, ticket.part_size, all, ticket.parts, 0, signal);
      }
    }
    meter("upload-progress", 1, `${bytes(file.size)} of ${bytes(file.size)}`);
    const done = await complete(uploadId, file, record, signal);
    saveUpload(null);
    $("resume-panel").hidden = true;
    labelStart();
    status(`Uploaded ${file.name}. The transcode is queued.`, "ok");
    notify("Upload complete: transcoding is queued.");
    followJob(done.job);
    await loadAssets();
  } catch (error) {
    if (error && error.name === "AbortError") {
      status(record ? "Stopped. Pick the same file again to resume where it stopped." : "Stopped.", "warn");
    } else {
      const text = error instanceof ApiError || error instanceof Error ? error.message : "The upload failed.";
      status(`${text}${record ? " Pick the same file again to resume." : ""}`, "error");
      if (!(error instanceof ApiError) && !(error instanceof Error)) console.error(error);
      notifyError(text);
    }
    showResume().catch(() => null);
  } finally {
    page.abort = null;
    $("upload-cancel").hidden = true;
  }
}

/** The "Upload" button says "Resume the upload" when the chosen file is the unfinished upload's. */
function labelStart() {
  const input = $("upload-file");
  const file = input.files && input.files[0];
  const resuming = Boolean(file && sameFile(savedUpload(), file));
  $("upload-start").textContent = resuming ? "Resume the upload" : "Upload";
  return resuming;
}

let resumeCheck = 0;

/** Offer to resume the unfinished multipart upload kept in localStorage, with what storage holds of it. */
async function showResume() {
  const record = savedUpload();
  const panel = $("resume-panel");
  labelStart();
  if (!record) {
    panel.hidden = true;
    return;
  }
  const check = ++resumeCheck;
  const about = `${record.name} (${bytes(record.size)}) was not finished.`;
  const choose = "Choose the same file below and resume: the parts already stored are not sent again.";
  $("resume-text").textContent = `${about} ${choose}`;
  panel.hidden = false;
  const result = await api("GET", `/media/uploads/${encodeURIComponent(record.upload_id)}`);
  const current = savedUpload();
  if (check !== resumeCheck || !current || current.upload_id !== record.upload_id) return; // changed meanwhile
  const upload = result.ok ? result.data : null;
  if (result.status === 404 || (upload && upload.source.state !== "uploading")) {
    // Completed, aborted or expired meanwhile (another tab, or storage's lifetime): nothing to resume.
    saveUpload(null);
    panel.hidden = true;
    labelStart();
    return;
  }
  if (!upload) return; // could not ask: the offer stands as it is
  const stored = upload.uploaded_parts.length;
  $("resume-text").textContent =
    `${about} ${stored} of ${upload.part_count} parts (${bytes(upload.uploaded_bytes)} of ${bytes(record.size)}) ` +
    `are stored. ${choose}`;
}

function wireUpload() {
  const form = $("upload-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (page.abort) return;
    const input = $("upload-file");
    const file = input.files && input.files[0];
    $("upload-file-error").textContent = "";
    input.removeAttribute("aria-invalid");
    if (!file || !file.size) {
      $("upload-file-error").textContent = file ? "This file is empty." : "Choose a video file first.";
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    const button = $("upload-start");
    button.disabled = true;
    try {
      await runUpload(file, form.elements.namedItem("purpose").value);
    } finally {
      button.disabled = false;
    }
  });
  $("upload-file").addEventListener("change", labelStart);
  $("upload-cancel").addEventListener("click", () => {
    if (page.abort) page.abort.abort();
  });
  $("resume-discard").addEventListener("click", async () => {
    const record = savedUpload();
    if (!record) return;
    const result = await api("DELETE", `/media/uploads/${record.upload_id}`).catch(() => null);
    saveUpload(null);
    await showResume();
    notify(result && result.ok ? "The unfinished upload was discarded." : "The unfinished upload was forgotten.");
  });
  window.addEventListener("beforeunload", (event) => {
    if (page.abort) event.preventDefault(); // leaving stops the upload (multipart ones can resume)
  });
}

// --- the transcode job -------------------------------------------------------------------------------------

function renderJob(job) {
  $("job-panel").hidden = false;
  const name = JOB_STATES[job.state] || job.state;
  const stateNode = $("job-state");
  const changed = stateNode.dataset.state !== job.state;
  stateNode.textContent = name + (job.cancel_requested && !FINISHED.has(job.state) ? " (cancelling)" : "");
  stateNode.dataset.state = job.state;
  const percent = Math.round((job.progress || 0) * 10) / 10;
  $("job-progress").value = percent;
  $("job-progress-label").textContent = `${percent} %`;
  $("job-eta").textContent = FINISHED.has(job.state) ? "—" : eta(job.eta_seconds);
  $("job-stage").textContent = job.stage_detail || "—";
  $("job-renditions").textContent = job.renditions_done && job.renditions_done.length ? job.renditions_done.join(", ") : "—";
  const failure = $("job-failure");
  if (job.state === "failed") {
    failure.textContent = `The transcode failed${job.failure_code ? ` (${job.failure_code})` : ""}: ${job.failure_reason || "no reason was given."}${job.dead_lettered ? " It will not be retried." : ""}`;
  } else {
    failure.textContent = "";
  }
  $("job-cancel").hidden = FINISHED.has(job.state);
  $("job-history").replaceChildren(
    ...(job.history || []).map((event) => el("li", {}, el("time", { datetime: event.at, text: formatDateTime(event.at) }), ` ${JOB_STATES[event.state] || event.state}: ${event.message}`)),
  );
  if (changed) $("job-live").textContent = `Transcode ${name.toLowerCase()}.`;
  const playable = job.state === "ready" || (job.asset && PLAYABLE_ASSET.has(job.asset.state));
  if (playable && job.purpose !== "trailer") showPreview(job.asset ? job.asset.state : job.state);
}

function showPreview(assetState) {
  const contentId = page.episodeId || page.titleId;
  $("preview-link").href = watchHref(contentId);
  $("preview-text").textContent =
    assetState === "ready"
      ? "The video is ready: every rendition is published."
      : "The video is playable: the first renditions are published, the rest follow.";
  const panel = $("preview-panel");
  if (panel.hidden) {
    panel.hidden = false;
    notify("The video is playable.");
  }
}

function followJob(job) {
  clearTimeout(page.pollTimer);
  page.jobId = job.id;
  renderJob(job);
  if (FINISHED.has(job.state)) {
    loadAssets().catch(() => null);
    return;
  }
  page.pollTimer = setTimeout(async () => {
    try {
      const fresh = await apiOk("GET", `/transcoding/jobs/${job.id}`);
      if (page.jobId === job.id) followJob(fresh);
    } catch (error) {
      if (page.jobId === job.id) page.pollTimer = setTimeout(() => followJob(job), POLL_MS * 2);
      if (!(error instanceof ApiError)) console.warn(error);
    }
  }, document.hidden ? POLL_MS * 4 : POLL_MS);
}

function wireJob() {
  $("job-cancel").addEventListener("click", async () => {
    if (!page.jobId || !window.confirm("Cancel this transcode? The uploaded file stays; you can transcode it again.")) return;
    try {
      followJob(await apiOk("POST", `/transcoding/jobs/${page.jobId}/cancel`));
      notify("Cancelling the transcode.");
    } catch (error) {
      showError(error);
    }
  });
}

async function latestJob() {
  const result = await apiOk("GET", "/transcoding/jobs", { query: { title_id: page.titleId, limit: 10 } });
  const items = (result.items || []).filter((job) => (page.episodeId ? job.episode_id === page.episodeId : !job.episode_id));
  return items[0] || null;
}

// --- assets and subtitles ----------------------------------------------------------------------------------

async function loadAssets() {
  const assets = await apiOk("GET", "/media/assets", { query: { title_id: page.titleId, episode_id: page.episodeId || undefined } });
  const mine = page.episodeId ? assets : assets.filter((asset) => !asset.episode_id);
  const body = $("assets-table").querySelector("tbody");
  body.replaceChildren(
    ...mine.map((asset) =>
      el(
        "tr",
        { dataset: { state: asset.state } },
        el("td", { text: formatDateTime(asset.created_at) }),
        el("td", { text: asset.purpose === "trailer" ? "Trailer" : "Feature" }),
        el("td", { text: `${ASSET_STATES[asset.state] || asset.state}${asset.is_current ? " (current)" : ""}` }),
        el("td", { text: asset.duration_seconds ? `${Math.round(asset.duration_seconds)} s` : "—" }),
        el("td", { text: asset.renditions.filter((r) => r.kind === "video").map((r) => `${r.height}p`).join(", ") || "—" }),
      ),
    ),
  );
  $("assets-empty").hidden = mine.length > 0;
  body.closest(".table-wrap").hidden = mine.length === 0;
  if (mine.some((asset) => asset.is_current && asset.purpose !== "trailer" && PLAYABLE_ASSET.has(asset.state))) {
    showPreview(mine.find((asset) => asset.is_current && asset.purpose !== "trailer").state);
  }
}

async function loadSubtitles() {
  const tracks = await apiOk("GET", "/media/subtitles", { query: { title_id: page.titleId, episode_id: page.episodeId || undefined } });
  const body = $("subtitles-table").querySelector("tbody");
  if (!tracks.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: "5", class: "muted", text: "No subtitles yet." })));
    return;
  }
  body.replaceChildren(
    ...tracks.map((track) =>
      el(
        "tr",
        {},
        el("th", { scope: "row", text: track.language }),
        el("td", { text: track.label }),
        el("td", { text: [track.forced ? "Forced" : "", track.sdh ? "SDH" : ""].filter(Boolean).join(", ") || "Full" }),
        el("td", { text: String(track.cue_count) }),
        el(
          "td",
          {},
          el("button", {
            type: "button",
            class: "small danger",
            text: "Remove",
            "aria-label": `Remove the ${track.label} subtitles`,
            on: {
              click: async () => {
                try {
                  await apiOk("DELETE", `/media/subtitles/${track.id}`);
                  notify(`${track.label} subtitles removed.`);
                  await loadSubtitles();
                } catch (error) {
                  showError(error);
                }
              },
            },
          }),
        ),
      ),
    ),
  );
}

function wireSubtitles() {
  const form = $("subtitle-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (form.getAttribute("aria-busy") === "true") return;
    for (const slot of form.querySelectorAll(".field-error")) slot.textContent = "";
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    const problems = $("sub-problems");
    problems.hidden = true;
    const language = $("sub-language").value.trim();
    const label = $("sub-label").value.trim();
    const file = $("sub-file").files && $("sub-file").files[0];
    const missing = [
      [!language, "sub-language", "Give the language, e.g. en."],
      [!label, "sub-label", "Give the label viewers see, e.g. English."],
      [!file, "sub-file", "Choose an SRT or WebVTT file."],
    ].filter(([bad]) => bad);
    if (missing.length) {
      for (const [, id, text] of missing) {
        $(`${id}-error`).textContent = text;
        $(id).setAttribute("aria-invalid", "true");
      }
      $(missing[0][1]).focus();
      return;
    }
    form.setAttribute("aria-busy", "true");
    try {
      const body = {
        title_id: page.titleId,
        language,
        label,
        forced: $("sub-forced").checked,
        sdh: $("sub-sdh").checked,
        content: await file.text(),
        filename: file.name,
      };
      if (page.episodeId) body.episode_id = page.episodeId;
      const result = await api("POST", "/media/subtitles", { body });
      if (!result.ok) {
        const lines = result.data && Array.isArray(result.data.errors) ? result.data.errors : [];
        problems.replaceChildren(
          ...lines.map((item) => el("li", { text: item.line ? `Line ${item.line}: ${item.message}` : `${(item.loc || []).filter((p) => p !== "body").join(".")}: ${item.msg || item.message}` })),
        );
        problems.hidden = lines.length === 0;
        throw new ApiError(result);
      }
      notify(`${result.data.label} subtitles added (${result.data.cue_count} cues).`);
      form.reset();
      await loadSubtitles();
    } catch (error) {
      showError(error);
    } finally {
      form.removeAttribute("aria-busy");
    }
  });
}

// --- the page ----------------------------------------------------------------------------------------------

function showStep(id) {
  for (const section of document.querySelectorAll("[data-step]")) section.hidden = section.id !== id;
}

async function uploadPage() {
  if (!(await requireManager())) return;
  page.titleId = query("title");
  page.episodeId = query("episode");
  if (!/^[0-9a-f-]{36}$/i.test(page.titleId)) {
    showStep("no-title");
    return;
  }
  const result = await api("GET", `/catalog/titles/${encodeURIComponent(page.titleId)}`);
  if (!result.ok) {
    showStep("no-title");
    $("no-title-text").textContent = `${result.status === 404 ? "This title does not exist (or was deleted)." : result.data?.detail || "The title could not be loaded."} Pick one in the catalog console.`;
    return;
  }
  page.title = result.data;
  let name = page.title.title;
  if (page.episodeId) {
    for (const season of page.title.seasons || []) {
      const episode = (season.episodes || []).find((e) => e.id === page.episodeId);
      if (episode) name = `${page.title.title}, season ${season.number} episode ${episode.number}: ${episode.name}`;
    }
  }
  $("target-name").textContent = name;
  $("target-meta").textContent = `${page.title.kind === "series" ? "Series" : "Movie"} · ${page.title.publishing ? page.title.publishing.status : ""}`;
  $("edit-title").href = `/console/?id=${encodeURIComponent(page.titleId)}`;
  document.title = `Upload a video for ${page.title.title} · Catalog console · Cinema Online`;
  showStep("upload-page");
  wireUpload();
  wireJob();
  wireSubtitles();
  await Promise.all([loadAssets(), loadSubtitles(), showResume()]);
  const job = await latestJob();
  if (job) followJob(job);
}

if (document.body.dataset.page === "console-upload") startPage(uploadPage, { require: "signin" });
