// The watch page (/watch/?content=<movie title id or episode id>): starts a stream session, plays it with
// hls.js behind a custom control bar, keeps the session alive and the position saved, and explains refusals.
//
// Why hls.js only (no dash.js here): the platform packages every asset as HLS with AES-128 and as DASH with
// CENC/ClearKey. hls.js plays the HLS side wherever Media Source Extensions exist (every desktop browser,
// Android, iPadOS, and iOS 17.1+ through ManagedMediaSource), and its loader lets one code path add the
// viewer's bearer to the manifest request and swap renewed delivery tokens into every later URL. dash.js
// would only add EME ClearKey, which protects no more than AES-128 and fails in more browsers. Where hls.js
// is unsupported the page says so instead of trying the native HLS player, which could not authorise the
// manifest. (public/dev/player.js keeps both paths for the pipeline's tests.)
//
// Flow: POST /streaming/sessions (device id kept in localStorage, device class web) -> refusal pages
// (stream limit with the active devices and "End", geo, maturity, not entitled with offers, not playable
// yet) or playback: resume at resume_position; heartbeats every heartbeat_seconds (fresh delivery token
// swapped into later requests by /assets/hls-loader.js; a 403 stops playback and says why); PUT
// position every 10 s and on pause / hidden / pagehide (fetch keepalive: a bearer cannot ride sendBeacon);
// DELETE the session on leave; next episode prompt near the end or at the credits.
// window.watchState reports what happened (the browser tests read it).

import {
  api,
  apiOk,
  el,
  formatDuration,
  formatMoney,
  formatRelative,
  loadSession,
  notify,
  notifyError,
  problemText,
  query,
  showError,
  startPage,
  titleHref,
  watchHref,
} from "/assets/app.js";
import { hlsTokenConfig, loadHls, withDeliveryToken } from "/assets/hls-loader.js";

const DEVICE_KEY = "cinema.device_id";
const POSITION_EVERY_MS = 10_000;
// The first position is saved soon after playback starts: the title joins Continue watching at once
// (the first write reaches the database directly), so leaving early never races the next page's read.
const FIRST_POSITION_MS = 3_000;
const SEEK_STEP = 10;
const VOLUME_STEP = 0.1;
const NEXT_LEAD_SECONDS = 20; // the next-episode prompt shows this long before the end (or at the credits)
const NEXT_COUNTDOWN = 10;
const IDLE_MS = 3000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Refusals of content the catalog still shows this profile: the heading may then name it from the catalog
// (as a title: right for a movie). The others (hidden, geo-blocked, above the profile's maturity) would
// only answer 404 there.
const VISIBLE_REFUSALS = new Set(["not_entitled", "rental_expired", "stream_limit_reached", "not_playable_yet"]);

const $ = (id) => document.getElementById(id);
const video = $("video");
const stage = $("stage");

const state = {
  phase: "starting", // starting | playing | refused | stopped | error
  code: null, // the refusal's problem code
  contentId: null,
  sessionId: null,
  library: null,
  currentTime: 0,
  duration: null,
  playing: false,
  resumeFrom: null,
  maxHeight: null,
  levels: [], // heights hls.js was offered (the server caps the manifest)
  menuLevels: [], // heights the quality menu lists
  audioTracks: [],
  subtitleTracks: [],
  subtitle: -1,
  heartbeats: 0,
  positions: 0, // answered position writes
  lastSaved: null,
  token: null,
  thumbnails: 0, // storyboard cues loaded
  next: null,
  errors: [],
};
window.watchState = state;

let session = null; // the StartResponse
let hls = null;
let freshToken = null;
let heartbeatTimer = null;
let positionTimer = null;
let firstPositionTimer = null;
let sequence = 0;
let ended = false; // the session was deleted (or the server ended it)

// --- small helpers -----------------------------------------------------------------------------------------

function say(text) {
  const region = $("watch-status");
  region.textContent = "";
  setTimeout(() => {
    region.textContent = text;
  }, 30);
}

function deviceId() {
  let id = null;
  try {
    id = window.localStorage.getItem(DEVICE_KEY);
  } catch {
    // storage refused: a fresh id for this page load
  }
  if (!id || !/^[A-Za-z0-9._:-]{1,128}$/.test(id)) {
    id = `web-${crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2)}`;
    try {
      window.localStorage.setItem(DEVICE_KEY, id);
    } catch {
      // not kept
    }
  }
  return id;
}

function deviceName() {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua)
    ? "Edge"
    : /Firefox\//.test(ua)
      ? "Firefox"
      : /Chrom(e|ium)\//.test(ua)
        ? "Chrome"
        : /Safari\//.test(ua)
          ? "Safari"
          : "Browser";
  const os = /Android/.test(ua)
    ? "Android"
    : /iPhone|iPad/.test(ua)
      ? "iOS"
      : /Mac OS X/.test(ua)
        ? "macOS"
        : /Windows/.test(ua)
          ? "Windows"
          : /CrOS/.test(ua)
            ? "ChromeOS"
            : /Linux/.test(ua)
              ? "Linux"
              : "";
  return os ? `${browser} on ${os}` : browser;
}

const DEVICE_CLASS = { web: "Web browser", mobile: "Phone or tablet", tv: "TV" };

// ISO 639-2 (audio renditions) to 639-1 (subtitles) for the forced-subtitle default.
const LANG2 = { eng: "en", fra: "fr", fre: "fr", deu: "de", ger: "de", spa: "es", ita: "it", por: "pt",
  nld: "nl", dut: "nl", jpn: "ja", kor: "ko", zho: "zh", chi: "zh", rus: "ru", ara: "ar", hin: "hi",
  swe: "sv", nor: "no", dan: "da", fin: "fi", pol: "pl", tur: "tr", ces: "cs", cze: "cs", ell: "el", gre: "el" };

function baseLanguage(code) {
  const lower = String(code || "").toLowerCase().split(/[-_]/)[0];
  return LANG2[lower] || lower.slice(0, 2);
}

function accessToken() {
  const stored = loadSession();
  return stored && stored.access_token ? stored.access_token : null;
}

/** `url` with the freshest delivery token (see /assets/hls-loader.js). */
function withFreshToken(url) {
  return withDeliveryToken(url, freshToken);
}

// --- refusals -------------------------------------------------------------------------------------------

const HEADINGS = {
  stream_limit_reached: "Too many screens are playing",
  geo_blocked: "Not available in your country",
  maturity_restricted: "Not available on this profile",
  not_entitled: "Not included in your plan",
  rental_expired: "Your rental has expired",
  not_playable_yet: "Not ready to play yet",
  not_available: "Not available right now",
  content_not_found: "We could not find this title",
  session_ended: "Playback stopped",
  unsupported: "This browser cannot play the video",
  playback_failed: "Playback failed",
};

function showRefusal(code, text, { keepPlayer = false } = {}) {
  state.phase = code === "session_ended" || code === "playback_failed" ? "stopped" : "refused";
  state.code = code;
  closeMenus();
  if (!keepPlayer) stage.hidden = true;
  $("devices").hidden = true;
  $("devices").replaceChildren();
  $("offers").replaceChildren();
  $("refusal-actions").replaceChildren();
  $("refusal-title").textContent = HEADINGS[code] || "We could not play this";
  $("refusal-text").textContent = text;
  $("refusal").hidden = false;
  $("refusal").dataset.code = code;
  $("refusal-title").focus();
}

function actionButton(text, onClick, className = "button") {
  return el("button", { type: "button", class: className, text, on: { click: onClick } });
}

function actionLink(text, href, className = "button") {
  return el("a", { href, class: className, text });
}

function retryButton(text = "Try again") {
  return actionButton(text, () => start());
}

async function listActive(problem) {
  if (problem && Array.isArray(problem.active_sessions)) return problem.active_sessions;
  const result = await api("GET", "/streaming/sessions");
  return result.ok && Array.isArray(result.data) ? result.data : [];
}

async function showStreamLimit(result) {
  const problem = result.data || {};
  const limit = Number(problem.max_streams) || null;
  showRefusal(
    "stream_limit_reached",
    limit
      ? `Your plan plays on ${limit} screen${limit === 1 ? "" : "s"} at a time. End a stream on another device to watch here.`
      : problemText(result),
  );
  const devices = await listActive(problem);
  const list = $("devices");
  list.replaceChildren(
    ...devices.map((item) => {
      const name = item.device_name || DEVICE_CLASS[item.device_class] || "A device";
      const since = item.started_at ? `started ${formatRelative(item.started_at)}` : "";
      const who = item.this_profile ? "this profile" : "another profile";
      const end = el("button", {
        type: "button",
        class: "button ghost",
        "aria-label": `End the stream on ${name}`,
        text: "End",
        on: { click: (event) => endOther(event.currentTarget, item) },
      });
      return el(
        "li",
        { class: "device", dataset: { session: item.session_id } },
        el("span", { class: "device-name", text: name }),
        el("span", { class: "device-meta", text: [DEVICE_CLASS[item.device_class], who, since].filter(Boolean).join(" · ") }),
        end,
      );
    }),
  );
  list.hidden = devices.length === 0;
  $("refusal-actions").replaceChildren(retryButton());
}

async function endOther(button, item) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    const result = await api("DELETE", `/streaming/sessions/${encodeURIComponent(item.session_id)}`, {
      query: { device_id: deviceId() },
    });
    if (!result.ok && result.status !== 404) {
      notifyError(problemText(result));
      button.disabled = false;
      return;
    }
    notify(`Ended the stream on ${item.device_name || DEVICE_CLASS[item.device_class] || "that device"}. Starting here…`);
    await start();
  } catch (error) {
    showError(error);
    button.disabled = false;
  } finally {
    button.removeAttribute("aria-busy");
  }
}

async function showOffers(result) {
  const problem = result.data || {};
  const code = problem.code === "rental_expired" ? "rental_expired" : "not_entitled";
  showRefusal(code, problemText(result), { keepPlayer: false });
  const offers = Array.isArray(problem.offers) ? problem.offers : [];
  const box = $("offers");
  const items = [];
  if (offers.includes("subscribe")) items.push(actionLink("Subscribe", "/account/billing/"));
  if (offers.includes("upgrade")) items.push(actionLink("Change plan", "/account/billing/"));
  const sales = offers.filter((offer) => offer === "rent" || offer === "buy");
  if (sales.length) {
    // Prices of the title: the refusal names it (an episode's series).
    const titleId = state.titleId || state.contentId;
    let prices = null;
    const answer = await api("GET", `/payments/titles/${encodeURIComponent(titleId)}/offers`).catch(() => null);
    if (answer && answer.ok) prices = answer.data;
    for (const offer of sales) {
      const list = prices ? prices[offer === "rent" ? "rental" : "purchase"] || [] : [];
      const first = list[0];
      const price = first ? ` for ${formatMoney(first.amount_minor, first.currency)}` : "";
      const label = `${offer === "rent" ? "Rent" : "Buy"}${price}`;
      items.push(
        actionButton(label, (event) => purchase(event.currentTarget, titleId, offer, first && first.currency), "button ghost"),
      );
    }
  }
  box.replaceChildren(...items);
  if (!items.length) $("refusal-actions").replaceChildren(actionLink("Browse titles", "/browse/", "button ghost"));
}

async function purchase(button, titleId, kind, currency) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    const body = { title_id: titleId, kind };
    if (currency) body.currency = currency;
    const key = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
    const result = await api("POST", "/payments/purchase", { body, headers: { "idempotency-key": key } });
    if (result.ok && result.data && result.data.checkout_url) {
      say("Taking you to the checkout…");
      window.location.assign(result.data.checkout_url);
      return;
    }
    if (result.ok) {
      notify("Done. Starting playback…");
      await start();
      return;
    }
    notifyError(problemText(result));
  } catch (error) {
    showError(error);
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

async function refused(result) {
  const code = result.code || (result.data && result.data.code) || "";
  // These refusals name the content's title (an episode's series), which has its name and prices.
  if (result.data && result.data.title_id) state.titleId = result.data.title_id;
  if (VISIBLE_REFUSALS.has(code)) nameHeading(state.titleId || state.contentId);
  else if ($("watch-title").textContent === "Loading…") $("watch-title").textContent = "Watch";
  if (code === "stream_limit_reached") return showStreamLimit(result);
  if (code === "not_entitled" || code === "rental_expired") return showOffers(result);
  if (code === "profile_required") {
    window.location.replace(`/profiles/?next=${encodeURIComponent(location.pathname + location.search)}`);
    return undefined;
  }
  showRefusal(code || "error", problemText(result));
  const actions = [];
  if (code === "maturity_restricted") actions.push(actionLink("Switch profile", `/profiles/?next=${encodeURIComponent(location.pathname + location.search)}`));
  if (code === "not_playable_yet" || code === "rate_limited" || result.status >= 500) actions.push(retryButton());
  actions.push(actionLink("Browse titles", "/browse/", "button ghost"));
  $("refusal-actions").replaceChildren(...actions);
  return undefined;
}

// --- the session: start, heartbeat, position, end --------------------------------------------------------

async function start() {
  stopTimers();
  destroyPlayer();
  ended = false;
  state.phase = "starting";
  state.code = null;
  say("Starting playback…");
  const result = await api("POST", "/streaming/sessions", {
    body: { content_id: state.contentId, device_id: deviceId(), device_name: deviceName(), device_class: "web" },
  });
  if (!result.ok) {
    await refused(result);
    return;
  }
  session = result.data;
  state.sessionId = session.session_id;
  state.titleId = session.title_id;
  nameHeading(session.title_id); // the session names the title (an episode's too)
  state.maxHeight = session.max_height;
  state.duration = session.duration_seconds;
  freshToken = session.delivery_token;
  state.token = freshToken;
  sequence = 0;
  $("refusal").hidden = true;
  stage.hidden = false;
  $("back").href = titleHref(session.title_id);
  const resume = Number(session.resume_position) || 0;
  const duration = Number(session.duration_seconds) || 0;
  state.resumeFrom = resume > 1 && (!duration || resume < duration - 5) ? resume : 0;
  await play();
  startTimers();
  loadThumbnails().catch((error) => state.errors.push(`thumbnails: ${error}`));
  loadNext().catch((error) => state.errors.push(`next: ${error}`));
  if (state.resumeFrom) say(`Resuming at ${formatDuration(state.resumeFrom)}.`);
}

async function heartbeat() {
  if (!session || ended) return;
  const body = {};
  if (video.videoHeight) body.height = video.videoHeight;
  if (video.getVideoPlaybackQuality) body.dropped_frames = video.getVideoPlaybackQuality().droppedVideoFrames;
  if (hls && hls.levels && hls.currentLevel >= 0 && hls.levels[hls.currentLevel]) {
    body.bitrate = hls.levels[hls.currentLevel].bitrate;
  }
  let result;
  try {
    result = await api("POST", `/streaming/sessions/${encodeURIComponent(session.session_id)}/heartbeat`, { body });
  } catch (error) {
    state.errors.push(`heartbeat: ${error.message}`); // offline: the next beat tries again
    return;
  }
  if (result.ok) {
    freshToken = result.data.delivery_token;
    state.token = freshToken;
    state.heartbeats += 1;
    return;
  }
  state.errors.push(`heartbeat: HTTP ${result.status} ${result.code}`);
  if (result.status === 403 || result.status === 404) {
    ended = true;
    stopTimers();
    video.pause();
    destroyPlayer();
    if (result.status === 403) {
      await showOffers(result);
      $("refusal-text").textContent = `Playback stopped: ${problemText(result)}`;
    } else {
      showRefusal(
        "session_ended",
        "Playback stopped because this stream ended: it was ended from another device, or it was paused for too long.",
      );
      $("refusal-actions").replaceChildren(retryButton("Start again"));
    }
  }
}

function positionBody() {
  sequence += 1;
  const body = { position_seconds: Math.max(0, video.currentTime || 0), sequence };
  if (Number.isFinite(video.duration) && video.duration > 0) body.duration_seconds = video.duration;
  return body;
}

async function savePosition() {
  if (!session || ended || !video.currentTime) return;
  const body = positionBody();
  try {
    const result = await api("PUT", `/streaming/sessions/${encodeURIComponent(session.session_id)}/position`, { body });
    if (result.ok) {
      state.positions += 1;
      state.lastSaved = result.data.position_seconds;
      if (result.data.watched) nearTheEnd(); // the credits have started
    }
  } catch (error) {
    state.errors.push(`position: ${error.message}`);
  }
}

/** On leave: the position, then the end of the session, both with keepalive (they outlive the page). */
function leave() {
  if (!session || ended) return;
  ended = true;
  stopTimers();
  const token = accessToken();
  const headers = { "content-type": "application/json", accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const path = `/api/v1/streaming/sessions/${encodeURIComponent(session.session_id)}`;
  if (video.currentTime) {
    fetch(`${path}/position`, { method: "PUT", headers, body: JSON.stringify(positionBody()), keepalive: true }).catch(() => {});
  }
  fetch(path, { method: "DELETE", headers, keepalive: true }).catch(() => {});
}

function flushPosition() {
  if (!session || ended || !video.currentTime) return;
  const token = accessToken();
  const headers = { "content-type": "application/json", accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  fetch(`/api/v1/streaming/sessions/${encodeURIComponent(session.session_id)}/position`, {
    method: "PUT",
    headers,
    body: JSON.stringify(positionBody()),
    keepalive: true,
  }).catch(() => {});
}

function startTimers() {
  stopTimers();
  const every = Math.max(5, Number(session.heartbeat_seconds) || 30) * 1000;
  heartbeatTimer = setInterval(() => heartbeat(), every);
  positionTimer = setInterval(() => {
    if (!video.paused) savePosition();
  }, POSITION_EVERY_MS);
  firstPositionTimer = setTimeout(() => {
    if (!video.paused) savePosition();
  }, FIRST_POSITION_MS);
}

function stopTimers() {
  if (heartbeatTimer !== null) clearInterval(heartbeatTimer);
  if (positionTimer !== null) clearInterval(positionTimer);
  if (firstPositionTimer !== null) clearTimeout(firstPositionTimer);
  firstPositionTimer = null;
  heartbeatTimer = null;
  positionTimer = null;
}

// --- hls.js -----------------------------------------------------------------------------------------------

function destroyPlayer() {
  if (hls) {
    hls.destroy();
    hls = null;
  }
  // Detaching the media runs the video's load algorithm, which drops a "pause" event still queued (a
  // heartbeat refusal pauses, then destroys): say "not playing" here rather than wait for that event.
  state.playing = false;
  updatePlayButton();
}

async function play() {
  const Hls = await loadHls();
  state.library = `hls.js ${Hls.version}`;
  if (!Hls.isSupported()) {
    showRefusal("unsupported", "Your browser does not support the video technology this site uses (Media Source Extensions). Try a current version of Chrome, Edge, Firefox or Safari.");
    return;
  }
  const instance = new Hls({
    enableWorker: true,
    ...hlsTokenConfig(Hls, { deliveryToken: () => freshToken, bearer: accessToken }),
    startPosition: state.resumeFrom || -1,
    capLevelToPlayerSize: false,
    subtitleDisplay: true,
    renderTextTracksNatively: true,
  });
  hls = instance;
  const recovered = { network: 0, media: 0 };
  instance.on(Hls.Events.MANIFEST_PARSED, (_event, data) => {
    state.levels = data.levels.map((level) => level.height);
    capLevels();
    renderQualityMenu();
    startPlaying();
  });
  instance.on(Hls.Events.LEVEL_SWITCHED, () => updateQualityLabel());
  instance.on(Hls.Events.AUDIO_TRACKS_UPDATED, () => renderAudioMenu());
  instance.on(Hls.Events.AUDIO_TRACK_SWITCHED, () => {
    renderAudioMenu();
    applyForcedSubtitles();
  });
  instance.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => {
    applyForcedSubtitles();
    renderSubtitlesMenu();
  });
  instance.on(Hls.Events.SUBTITLE_TRACK_SWITCH, () => renderSubtitlesMenu());
  instance.on(Hls.Events.ERROR, (_event, data) => {
    const what = `${data.type} ${data.details}${data.response ? ` HTTP ${data.response.code}` : ""}`;
    state.errors.push(what);
    if (!data.fatal || instance !== hls) return;
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR && recovered.network < 2) {
      recovered.network += 1;
      instance.startLoad();
    } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR && recovered.media < 2) {
      recovered.media += 1;
      instance.recoverMediaError();
    } else {
      fail("playback_failed", "The video could not be loaded. Check your connection and try again.");
    }
  });
  instance.attachMedia(video);
  instance.loadSource(new URL(session.manifests.hls, location.origin).href);
}

function fail(code, text) {
  destroyPlayer();
  stopTimers();
  showRefusal(code, text);
  $("refusal-actions").replaceChildren(retryButton());
}

function startPlaying() {
  state.phase = "playing";
  video.play().catch((error) => {
    if (error && error.name === "NotAllowedError") {
      // Autoplay with sound refused (no gesture yet): play muted and offer to unmute.
      video.muted = true;
      $("unmute").hidden = false;
      video.play().catch(() => showStageMessage("Press Play to start."));
    }
  });
}

function showStageMessage(text) {
  const message = $("stage-message");
  message.textContent = text;
  message.hidden = !text;
}

// --- quality, audio, subtitles menus ----------------------------------------------------------------------

function allowedLevels() {
  if (!hls) return [];
  const cap = Number(state.maxHeight) || Infinity;
  return hls.levels
    .map((level, index) => ({ index, height: level.height, bitrate: level.bitrate }))
    .filter((level) => !level.height || level.height <= cap);
}

function capLevels() {
  const allowed = allowedLevels();
  if (!allowed.length || !hls) return;
  const top = Math.max(...allowed.map((level) => level.index));
  if (top < hls.levels.length - 1) hls.autoLevelCapping = top;
}

function renderQualityMenu() {
  const levels = allowedLevels().sort((a, b) => b.height - a.height || b.bitrate - a.bitrate);
  state.menuLevels = levels.map((level) => level.height);
  const auto = !hls || hls.autoLevelEnabled;
  const items = [{ label: "Auto", value: -1, checked: auto }];
  for (const level of levels) {
    items.push({ label: level.height ? `${level.height}p` : `${Math.round(level.bitrate / 1000)} kbps`, value: level.index, checked: !auto && hls.manualLevel === level.index });
  }
  fillMenu("quality", items, (value) => {
    if (!hls) return;
    hls.currentLevel = Number(value);
    renderQualityMenu();
    say(Number(value) < 0 ? "Quality: automatic" : `Quality: ${hls.levels[Number(value)].height}p`);
  });
  updateQualityLabel();
}

function updateQualityLabel() {
  if (!hls) return;
  const current = hls.levels[hls.currentLevel];
  const height = current && current.height ? `${current.height}p` : "";
  $("quality-label").textContent = hls.autoLevelEnabled ? (height ? `Auto (${height})` : "Auto") : height;
}

function trackLabel(track) {
  return track.name || track.lang || "Track";
}

function renderAudioMenu() {
  if (!hls) return;
  const tracks = hls.audioTracks || [];
  state.audioTracks = tracks.map((track) => track.lang || track.name);
  $("audio-button").parentElement.hidden = tracks.length < 2;
  fillMenu(
    "audio",
    tracks.map((track, index) => ({ label: trackLabel(track), value: index, checked: hls.audioTrack === index })),
    (value) => {
      hls.audioTrack = Number(value);
      say(`Audio: ${trackLabel(hls.audioTracks[Number(value)])}`);
    },
  );
}

let chosenSubtitle = null; // the viewer's own choice (index), null until they pick one

function currentAudioLanguage() {
  if (!hls || !hls.audioTracks || hls.audioTrack < 0) return "";
  const track = hls.audioTracks[hls.audioTrack];
  return track ? baseLanguage(track.lang) : "";
}

/** Forced subtitles of the audio's language are on unless the viewer chose otherwise. */
function forcedIndex() {
  if (!hls) return -1;
  const language = currentAudioLanguage();
  return (hls.subtitleTracks || []).findIndex((track) => track.forced && language && baseLanguage(track.lang) === language);
}

function applyForcedSubtitles() {
  if (!hls || chosenSubtitle !== null) return;
  setSubtitle(forcedIndex(), { announce: false });
}

function setSubtitle(index, { announce = true } = {}) {
  if (!hls) return;
  hls.subtitleDisplay = index >= 0;
  hls.subtitleTrack = index;
  state.subtitle = index;
  $("subtitles-button").setAttribute("aria-pressed", index >= 0 && !(hls.subtitleTracks[index] || {}).forced ? "true" : "false");
  renderSubtitlesMenu();
  if (announce) say(index >= 0 ? `Subtitles: ${trackLabel(hls.subtitleTracks[index])}` : "Subtitles off");
}

function renderSubtitlesMenu() {
  if (!hls) return;
  const tracks = hls.subtitleTracks || [];
  state.subtitleTracks = tracks.map((track) => `${track.lang}${track.forced ? " (forced)" : ""}`);
  $("subtitles-button").parentElement.hidden = tracks.length === 0;
  const current = hls.subtitleTrack;
  const items = [{ label: "Off", value: -1, checked: current < 0 }];
  tracks.forEach((track, index) => items.push({ label: trackLabel(track), value: index, checked: current === index }));
  fillMenu("subtitles", items, (value) => {
    chosenSubtitle = Number(value);
    setSubtitle(Number(value));
  });
}

function toggleSubtitles() {
  if (!hls || !(hls.subtitleTracks || []).length) return;
  const tracks = hls.subtitleTracks;
  const current = hls.subtitleTrack;
  const showingFull = current >= 0 && !tracks[current].forced;
  let target;
  if (showingFull) target = forcedIndex();
  else {
    const preferred = chosenSubtitle !== null && chosenSubtitle >= 0 && !tracks[chosenSubtitle].forced ? chosenSubtitle : -1;
    const language = baseLanguage(navigator.language);
    target = preferred >= 0 ? preferred : tracks.findIndex((track) => !track.forced && baseLanguage(track.lang) === language);
    if (target < 0) target = tracks.findIndex((track) => !track.forced);
  }
  chosenSubtitle = target;
  setSubtitle(target);
}

// A menu: a button (aria-expanded) and a list of menuitemradio buttons; arrows move, Escape closes.
const menus = ["quality", "audio", "subtitles"];

function fillMenu(name, items, onPick) {
  const list = $(`${name}-menu`);
  list.replaceChildren(
    ...items.map((item) =>
      el(
        "li",
        { role: "none" },
        el("button", {
          type: "button",
          role: "menuitemradio",
          "aria-checked": item.checked ? "true" : "false",
          tabindex: "-1",
          dataset: { value: String(item.value) },
          text: item.label,
          on: {
            click: () => {
              onPick(item.value);
              closeMenus({ focusButton: name });
            },
          },
        }),
      ),
    ),
  );
}

function openMenu(name) {
  closeMenus();
  const button = $(`${name}-button`);
  const list = $(`${name}-menu`);
  if (!list.children.length) return;
  list.hidden = false;
  button.setAttribute("aria-expanded", "true");
  const items = [...list.querySelectorAll("[role=menuitemradio]")];
  (items.find((item) => item.getAttribute("aria-checked") === "true") || items[0]).focus();
}

function closeMenus({ focusButton = null } = {}) {
  for (const name of menus) {
    $(`${name}-menu`).hidden = true;
    $(`${name}-button`).setAttribute("aria-expanded", "false");
  }
  if (focusButton) $(`${focusButton}-button`).focus();
}

function wireMenus() {
  for (const name of menus) {
    const button = $(`${name}-button`);
    const list = $(`${name}-menu`);
    button.addEventListener("click", () => (list.hidden ? openMenu(name) : closeMenus()));
    list.addEventListener("keydown", (event) => {
      const items = [...list.querySelectorAll("[role=menuitemradio]")];
      const at = items.indexOf(document.activeElement);
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        const step = event.key === "ArrowDown" ? 1 : -1;
        items[(at + step + items.length) % items.length].focus();
      } else if (event.key === "Home" || event.key === "End") {
        event.preventDefault();
        items[event.key === "Home" ? 0 : items.length - 1].focus();
      } else if (event.key === "Escape") {
        event.preventDefault();
        closeMenus({ focusButton: name });
      } else if (event.key === "Tab") {
        closeMenus();
      }
      event.stopPropagation(); // the player's shortcuts do not apply inside a menu
    });
  }
  document.addEventListener("click", (event) => {
    if (!event.target.closest(".menu-wrap")) closeMenus();
  });
}

// --- storyboard thumbnails -------------------------------------------------------------------------------

let storyboard = []; // {start, end, url, x, y, w, h}

function parseTime(text) {
  const parts = text.trim().split(":").map(Number);
  return parts.reduce((total, part) => total * 60 + part, 0);
}

async function loadThumbnails() {
  storyboard = [];
  if (!session.thumbnails || !session.thumbnails.url) return;
  const url = new URL(session.thumbnails.url, location.origin).href;
  const response = await fetch(withFreshToken(url), { cache: "no-store", credentials: "omit" });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const text = await response.text();
  for (const block of text.replace(/\r/g, "").split(/\n\n+/)) {
    const lines = block.split("\n").filter(Boolean);
    const timing = lines.findIndex((line) => line.includes("-->"));
    if (timing < 0 || !lines[timing + 1]) continue;
    const [from, to] = lines[timing].split("-->").map((part) => parseTime(part.split(/\s+/).filter(Boolean)[0] || "0"));
    const target = new URL(lines[timing + 1].trim(), url);
    const match = /xywh=(\d+),(\d+),(\d+),(\d+)/.exec(target.hash);
    target.hash = "";
    if (!match) continue;
    const [, x, y, w, h] = match.map(Number);
    storyboard.push({ start: from, end: to, url: target.href, x, y, w, h });
  }
  state.thumbnails = storyboard.length;
}

function cueAt(time) {
  return storyboard.find((cue) => time >= cue.start && time < cue.end) || storyboard[storyboard.length - 1] || null;
}

function showPreview(time, fraction) {
  const preview = $("preview");
  const image = $("preview-image");
  $("preview-time").textContent = formatDuration(time);
  const cue = storyboard.length ? cueAt(time) : null;
  if (cue) {
    image.hidden = false;
    image.style.width = `${cue.w}px`;
    image.style.height = `${cue.h}px`;
    image.style.backgroundImage = `url("${withFreshToken(cue.url)}")`;
    image.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
  } else {
    image.hidden = true;
  }
  preview.hidden = false;
  const bar = $("seek").getBoundingClientRect();
  const half = (cue ? cue.w : 60) / 2;
  const left = Math.min(Math.max(fraction * bar.width, half), Math.max(half, bar.width - half));
  preview.style.left = `${left}px`;
}

function hidePreview() {
  $("preview").hidden = true;
}

// --- controls ---------------------------------------------------------------------------------------------

function duration() {
  if (Number.isFinite(video.duration) && video.duration > 0) return video.duration;
  return Number(session && session.duration_seconds) || 0;
}

function updateTime() {
  const total = duration();
  const now = video.currentTime || 0;
  const seek = $("seek");
  if (total && Number(seek.max) !== total) seek.max = String(total);
  if (!seeking) seek.value = String(now);
  seek.setAttribute("aria-valuetext", `${formatDuration(now)} of ${formatDuration(total)}`);
  // Two parts, so a phone's bar can show the current time alone (player.css hides .time-total there).
  const time = $("time");
  if (!time.querySelector(".time-now")) {
    time.replaceChildren(el("span", { class: "time-now" }), el("span", { class: "time-total" }));
  }
  time.querySelector(".time-now").textContent = formatDuration(now);
  time.querySelector(".time-total").textContent = ` / ${formatDuration(total)}`;
  seek.style.setProperty("--progress", total ? `${(now / total) * 100}%` : "0%");
}

function updatePlayButton() {
  const button = $("play");
  const paused = video.paused;
  button.setAttribute("aria-label", paused ? "Play" : "Pause");
  button.querySelector(".icon").className = `icon ${paused ? "icon-play" : "icon-pause"}`;
  stage.classList.toggle("paused", paused);
}

function updateVolume() {
  const muted = video.muted || video.volume === 0;
  $("mute").setAttribute("aria-label", muted ? "Unmute" : "Mute");
  $("mute").querySelector(".icon").className = `icon ${muted ? "icon-muted" : "icon-volume"}`;
  $("volume").value = String(video.muted ? 0 : video.volume);
  $("volume").setAttribute("aria-valuetext", `${Math.round((video.muted ? 0 : video.volume) * 100)}%`);
  if (!video.muted) $("unmute").hidden = true;
}

function togglePlay() {
  if (state.phase !== "playing") return;
  if (video.paused) video.play().catch(() => {});
  else video.pause();
}

function seekBy(seconds) {
  const total = duration();
  const target = Math.max(0, Math.min(total ? total - 0.5 : Infinity, (video.currentTime || 0) + seconds));
  video.currentTime = target;
  say(`${formatDuration(target)}`);
}

function setVolume(value) {
  video.volume = Math.max(0, Math.min(1, value));
  video.muted = video.volume === 0;
}

function toggleMute() {
  if (video.muted && video.volume === 0) video.volume = 0.5;
  video.muted = !video.muted;
}

function toggleFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  else if (stage.requestFullscreen) stage.requestFullscreen().catch(() => {});
  else if (video.webkitEnterFullscreen) video.webkitEnterFullscreen();
}

let seeking = false;

function wireControls() {
  $("play").addEventListener("click", togglePlay);
  $("back10").addEventListener("click", () => seekBy(-SEEK_STEP));
  $("fwd10").addEventListener("click", () => seekBy(SEEK_STEP));
  $("mute").addEventListener("click", toggleMute);
  $("unmute").addEventListener("click", () => {
    video.muted = false;
    if (video.volume === 0) video.volume = 1;
  });
  $("volume").addEventListener("input", (event) => setVolume(Number(event.target.value)));
  $("fullscreen").addEventListener("click", toggleFullscreen);
  $("help-button").addEventListener("click", () => openHelp());
  video.addEventListener("click", togglePlay);
  video.addEventListener("dblclick", toggleFullscreen);

  const seek = $("seek");
  seek.addEventListener("input", () => {
    seeking = true;
    const total = duration();
    const value = Number(seek.value);
    showPreview(value, total ? value / total : 0);
  });
  seek.addEventListener("change", () => {
    seeking = false;
    video.currentTime = Number(seek.value);
    hidePreview();
  });
  seek.addEventListener("pointermove", (event) => {
    const bar = seek.getBoundingClientRect();
    const fraction = Math.min(1, Math.max(0, (event.clientX - bar.left) / bar.width));
    showPreview(fraction * duration(), fraction);
  });
  seek.addEventListener("pointerleave", () => {
    if (!seeking) hidePreview();
  });
  seek.addEventListener("blur", hidePreview);

  document.addEventListener("fullscreenchange", () => {
    const full = Boolean(document.fullscreenElement);
    $("fullscreen").setAttribute("aria-label", full ? "Exit full screen" : "Full screen");
    stage.classList.toggle("fullscreen", full);
  });

  video.addEventListener("timeupdate", () => {
    state.currentTime = video.currentTime;
    if (Number.isFinite(video.duration)) state.duration = video.duration;
    updateTime();
    const total = duration();
    if (total && total - video.currentTime <= NEXT_LEAD_SECONDS) nearTheEnd(false);
  });
  video.addEventListener("durationchange", updateTime);
  video.addEventListener("playing", () => {
    state.playing = true;
    showStageMessage("");
  });
  video.addEventListener("play", updatePlayButton);
  video.addEventListener("pause", () => {
    state.playing = false;
    updatePlayButton();
    savePosition();
  });
  video.addEventListener("waiting", () => stage.classList.add("buffering"));
  video.addEventListener("canplay", () => stage.classList.remove("buffering"));
  video.addEventListener("volumechange", updateVolume);
  video.addEventListener("ended", () => {
    state.playing = false;
    updatePlayButton();
    savePosition();
    if (state.next && !nextCancelled) playNext();
  });

  // The controls fade while playing and nothing moves; any pointer move, touch or key brings them back.
  let idleTimer = null;
  const wake = () => {
    stage.classList.remove("idle");
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      if (!video.paused && !stage.contains(document.activeElement)) stage.classList.add("idle");
    }, IDLE_MS);
  };
  stage.addEventListener("pointermove", wake);
  stage.addEventListener("touchstart", wake, { passive: true });
  document.addEventListener("keydown", wake);
  stage.addEventListener("focusin", wake);
  wake();
}

function openHelp() {
  const dialog = $("help");
  if (!dialog.open) dialog.showModal();
}

function wireKeyboard() {
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (stage.hidden || $("help").open) return;
    const target = event.target;
    const tag = target && target.tagName;
    const typing = tag === "TEXTAREA" || tag === "SELECT" || (tag === "INPUT" && !["range", "button", "checkbox"].includes(target.type)) || (target && target.isContentEditable);
    if (typing) return;
    const onRange = tag === "INPUT" && target.type === "range";
    const onButton = tag === "BUTTON" || tag === "A";
    if (target && target.closest && target.closest("#app-header")) return; // the site header's own keys
    switch (event.key) {
      case " ":
      case "Spacebar":
        if (onButton) return; // Space presses the focused button
        event.preventDefault();
        togglePlay();
        break;
      case "k":
      case "K":
        event.preventDefault();
        togglePlay();
        break;
      case "f":
      case "F":
        event.preventDefault();
        toggleFullscreen();
        break;
      case "m":
      case "M":
        event.preventDefault();
        toggleMute();
        break;
      case "c":
      case "C":
        event.preventDefault();
        toggleSubtitles();
        break;
      case "ArrowLeft":
      case "ArrowRight":
        if (onRange) return; // the slider's own keys
        event.preventDefault();
        seekBy(event.key === "ArrowLeft" ? -SEEK_STEP : SEEK_STEP);
        break;
      case "ArrowUp":
      case "ArrowDown":
        if (onRange) return;
        event.preventDefault();
        setVolume((video.muted ? 0 : video.volume) + (event.key === "ArrowUp" ? VOLUME_STEP : -VOLUME_STEP));
        say(`Volume ${Math.round(video.volume * 100)}%`);
        break;
      case "?":
        event.preventDefault();
        openHelp();
        break;
      default:
    }
  });
}

// --- next episode ----------------------------------------------------------------------------------------

let nextShown = false;
let nextCancelled = false;
let countdownTimer = null;

async function loadNext() {
  state.next = null;
  nextShown = false;
  nextCancelled = false;
  if (!session.episode_id) return; // a movie: nothing follows
  const result = await api("GET", `/streaming/${encodeURIComponent(session.content_id)}/next`);
  if (result.ok && result.status === 200 && result.data && result.data.episode) state.next = result.data;
}

function nearTheEnd() {
  if (!state.next || nextShown || nextCancelled || state.phase !== "playing") return;
  nextShown = true;
  const episode = state.next.episode;
  $("next-name").textContent = `Season ${episode.season_number}, episode ${episode.number}: ${episode.name}`;
  $("next-prompt").hidden = false;
  let left = NEXT_COUNTDOWN;
  const tick = () => {
    $("next-countdown").textContent = `Playing in ${left} second${left === 1 ? "" : "s"}`;
    if (left <= 0) playNext();
    left -= 1;
  };
  tick();
  countdownTimer = setInterval(tick, 1000);
  say(`Up next: ${$("next-name").textContent}. Playing in ${NEXT_COUNTDOWN} seconds.`);
  $("next-play").focus({ preventScroll: true });
}

function cancelNext() {
  nextCancelled = true;
  clearInterval(countdownTimer);
  $("next-prompt").hidden = true;
  say("Autoplay of the next episode cancelled.");
  $("play").focus();
}

function playNext() {
  if (!state.next) return;
  clearInterval(countdownTimer);
  window.location.assign(watchHref(state.next.episode.id));
}

// --- the heading -------------------------------------------------------------------------------------------
//
// Named from the catalog's title once the session says which title plays (the content id is an episode's
// for an episode, which the catalog does not know as a title), or after a refusal of visible content.

let headingFor = null; // the title id the heading names (or is being named from)
let heading = Promise.resolve(); // its catalog lookup

/** Name the heading after the title `titleId` (one catalog lookup per title id). */
function nameHeading(titleId) {
  if (headingFor === titleId) return;
  headingFor = titleId;
  heading = describe(titleId);
}

async function describe(titleId) {
  try {
    const detail = await apiOk("GET", `/catalog/titles/${encodeURIComponent(titleId)}`);
    if (!state.titleId) state.titleId = detail.id;
    $("back").href = titleHref(detail.id);
    $("back").querySelector(".visually-hidden").textContent = ` to ${detail.title}`;
    let name = detail.title;
    if (session && session.episode_id) {
      for (const season of detail.seasons || []) {
        const episode = (season.episodes || []).find((item) => item.id === session.episode_id);
        if (episode) name = `${detail.title}: S${season.number} E${episode.number} ${episode.name || ""}`.trim();
      }
    }
    $("watch-title").textContent = name;
    document.title = `${name} · Cinema Online`;
  } catch {
    // Not a title this profile sees (an episode refused before any session named its title): a plain heading.
    if ($("watch-title").textContent === "Loading…") $("watch-title").textContent = "Watch";
  }
}

// --- the page -----------------------------------------------------------------------------------------------

startPage(
  async () => {
    state.contentId = query("content");
    wireControls();
    wireKeyboard();
    wireMenus();
    $("next-play").addEventListener("click", playNext);
    $("next-cancel").addEventListener("click", cancelNext);
    updateVolume();
    if (!UUID.test(state.contentId)) {
      $("watch-title").textContent = "Watch";
      showRefusal("content_not_found", "This link does not name a movie or an episode. Pick a title to watch.");
      $("refusal-actions").replaceChildren(actionLink("Browse titles", "/browse/"));
      return;
    }
    window.addEventListener("pagehide", leave);
    // Back from the back/forward cache: the session was ended on leaving, so start a new one (resumes).
    window.addEventListener("pageshow", (event) => {
      if (event.persisted && ended) start().catch(showError);
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") flushPosition();
    });
    await start(); // names the heading (nameHeading) as soon as the session or the refusal says what plays
    await heading;
  },
  { require: "profile", nav: "" },
);
