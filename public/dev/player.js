// Dev test page: plays ?manifest=<url>&format=hls|dash[&session=<id>][&heartbeat=<seconds>][&buffer=<seconds>]
// [&clearkey=<licence url>][#bearer=<access token>] with hls.js or dash.js (served from /vendor/, installed
// from npm) and reports what happened in window.playerState, which the browser tests read. No third-party
// code or network. buffer= caps the forward buffer (tests: a tiny clip keeps fetching after start).
//
// The per-session master manifest (GET /api/v1/streaming/{contentId}/manifest) needs the viewer's bearer
// token: it is taken from the fragment (never sent to a server, so in no access log) and added to that
// request only. Everything after the manifest is authorised by the delivery token in its signed URL.
//
// Delivery tokens expire (STREAM_TOKEN_TTL_SECONDS): with session=, the page sends the session's heartbeat
// every `heartbeat` seconds (default 30) and swaps the fresh `delivery_token` it answers into every later
// request: the `/t/<token>/` path segment of media URLs and the `token=` query of key and licence URLs
// (hls.js: the watch page's loader from /assets/hls-loader.js; dash.js: a request interceptor and a licence
// request filter). window.cinemaHeartbeatNow() beats at once (tests) and resolves to the fresh token.

import { hlsTokenConfig, isManifestRequest, loadHls, loadScript, withDeliveryToken } from "/assets/hls-loader.js";

const params = new URLSearchParams(location.search);
const manifest = params.get("manifest");
const format = params.get("format") || (manifest && /\.mpd(\?|$)/.test(manifest) ? "dash" : "hls");
const clearkey = params.get("clearkey");
const sessionId = params.get("session");
const heartbeatSeconds = Math.max(5, Number(params.get("heartbeat")) || 30);
const bearer = new URLSearchParams(location.hash.slice(1)).get("bearer");
const video = document.getElementById("video");
const output = document.getElementById("state");

const state = {
  format,
  manifest,
  library: null,
  currentTime: 0,
  duration: null,
  playing: false,
  ended: false,
  fatal: [], // errors the player could not recover from
  errors: [], // recovered ones (a retried segment, a buffer stall)
  keyLoads: 0, // HLS AES-128 keys fetched
  keySystem: null, // DASH: the EME key system dash.js chose
  licences: 0, // DASH: licence requests answered
  levels: [], // heights the player was offered
  heartbeats: 0, // answered heartbeats
  token: null, // the freshest delivery token (from the last heartbeat); swapped into later requests
  log: [],
};
window.playerState = state;

function note(message) {
  state.log.push(`${video.currentTime.toFixed(2)} ${message}`);
  render();
}

function fatal(message) {
  state.fatal.push(String(message));
  note(`fatal: ${message}`);
}

function render() {
  output.textContent = JSON.stringify({ ...state, log: state.log.slice(-12) }, null, 2);
}

// Only the manifest endpoint of this origin gets the bearer (never a CDN, never a segment).
function wantsBearer(url) {
  return Boolean(bearer) && isManifestRequest(url);
}

// The freshest delivery token, swapped into media (`/t/<token>/`) and key/licence (`token=`) URLs.
let freshToken = null;

function withFreshToken(url) {
  return withDeliveryToken(url, freshToken);
}

// Heartbeats go to the API that served the manifest, with the viewer's bearer.
async function heartbeat() {
  if (!sessionId || !bearer || !manifest) return null;
  const api = new URL(manifest, location.href).origin;
  const body = {};
  if (video.videoHeight) body.height = video.videoHeight;
  if (video.getVideoPlaybackQuality) body.dropped_frames = video.getVideoPlaybackQuality().droppedVideoFrames;
  const url = `${api}/api/v1/streaming/sessions/${encodeURIComponent(sessionId)}/heartbeat`;
  const response = await fetch(url, {
    method: "POST",
    headers: { Authorization: `Bearer ${bearer}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    state.errors.push(`heartbeat: HTTP ${response.status} ${problem.code || ""}`.trim());
    note(`heartbeat refused: ${response.status} ${problem.code || ""}`);
    if (response.status === 404) stopHeartbeats(); // session_ended / session_not_found: start again
    return null;
  }
  const answer = await response.json();
  freshToken = answer.delivery_token;
  state.token = freshToken;
  state.heartbeats += 1;
  note("heartbeat: fresh delivery token");
  return freshToken;
}

let heartbeatTimer = null;

function stopHeartbeats() {
  if (heartbeatTimer !== null) clearInterval(heartbeatTimer);
  heartbeatTimer = null;
}

function startHeartbeats() {
  if (!sessionId || !bearer || heartbeatTimer !== null) return;
  heartbeatTimer = setInterval(() => {
    heartbeat().catch((error) => note(`heartbeat failed: ${error}`));
  }, heartbeatSeconds * 1000);
}

window.cinemaHeartbeatNow = () => heartbeat();

video.addEventListener("timeupdate", () => {
  state.currentTime = video.currentTime;
  if (Number.isFinite(video.duration)) state.duration = video.duration;
  render();
});
video.addEventListener("playing", () => {
  state.playing = true;
  note("playing");
});
video.addEventListener("ended", () => {
  state.ended = true;
  note("ended");
});
video.addEventListener("error", () => {
  const error = video.error;
  fatal(`media element: ${error ? `${error.code} ${error.message}` : "unknown"}`);
});

async function playHls() {
  const Hls = await loadHls();
  state.library = `hls.js ${Hls.version}`;
  if (!Hls.isSupported()) throw new Error("hls.js: Media Source Extensions are not supported");
  // ?buffer=<seconds>: a short forward buffer, so a tiny test clip keeps fetching segments after start.
  const buffer = Number(params.get("buffer")) || 0;
  const hls = new Hls({
    enableWorker: true,
    // Every playlist, segment and key request gets the fresh token; the manifest request the bearer.
    ...hlsTokenConfig(Hls, { deliveryToken: () => freshToken, bearer: () => bearer }),
    ...(buffer ? { maxBufferLength: buffer, maxMaxBufferLength: buffer } : {}),
  });
  hls.on(Hls.Events.MANIFEST_PARSED, (_event, data) => {
    state.levels = data.levels.map((level) => level.height);
    note(`manifest: ${state.levels.join(", ")}`);
    video.play().catch((error) => note(`play(): ${error}`));
  });
  hls.on(Hls.Events.KEY_LOADED, () => {
    state.keyLoads += 1;
  });
  hls.on(Hls.Events.ERROR, (_event, data) => {
    const what = `${data.type} ${data.details}${data.response ? ` HTTP ${data.response.code}` : ""}`;
    if (data.fatal) fatal(what);
    else {
      state.errors.push(what);
      note(what);
    }
  });
  hls.attachMedia(video);
  hls.loadSource(manifest);
  window.player = hls;
}

async function playDash() {
  await loadScript("/vendor/dash.all.min.js");
  const dashjs = window.dashjs;
  // Protection events are on dashjs.Protection.events (the player's own list has them only once extended).
  const events = { ...dashjs.Protection.events, ...dashjs.MediaPlayer.events };
  const player = dashjs.MediaPlayer().create();
  state.library = `dash.js ${player.getVersion()}`;
  player.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING } });
  // The MPD names the ClearKey licence URL (dashif:Laurl); a clearkey= parameter overrides it.
  if (clearkey) player.setProtectionData({ "org.w3.clearkey": { serverURL: clearkey } });
  player.addRequestInterceptor(async (request) => {
    request.url = withFreshToken(request.url);
    if (wantsBearer(request.url)) request.headers = { ...request.headers, Authorization: `Bearer ${bearer}` };
    return request;
  });
  // Licence requests (EME) bypass the interceptors: their token= is swapped here.
  player.registerLicenseRequestFilter(async (request) => {
    request.url = withFreshToken(request.url);
  });
  const buffer = Number(params.get("buffer")) || 0;
  if (buffer) {
    player.updateSettings({
      streaming: {
        buffer: { bufferTimeDefault: buffer, bufferTimeAtTopQuality: buffer, bufferTimeAtTopQualityLongForm: buffer },
      },
    });
  }
  player.on(events.STREAM_INITIALIZED, () => {
    state.levels = player.getRepresentationsByType("video").map((item) => item.height);
    note(`manifest: ${state.levels.join(", ")}`);
  });
  player.on(events.KEY_SYSTEM_SELECTED, (event) => {
    state.keySystem = event.data && event.data.keySystem ? event.data.keySystem.systemString : "unknown";
    note(`key system ${state.keySystem}`);
  });
  player.on(events.LICENSE_REQUEST_COMPLETE, (event) => {
    if (event.error) fatal(`licence: ${event.error.message || event.error}`);
    else state.licences += 1;
  });
  player.on(events.KEY_ERROR, (event) => fatal(`key: ${event.error ? event.error.message : "unknown"}`));
  player.on(events.ERROR, (event) => {
    const error = event.error || {};
    fatal(`${error.code || ""} ${error.message || event.event || "error"}`.trim());
  });
  player.on(events.PLAYBACK_ERROR, (event) => fatal(`playback: ${event.error}`));
  player.initialize(video, manifest, true);
  window.player = player;
}

async function main() {
  render();
  if (!manifest) throw new Error("no ?manifest= given");
  if (format === "dash") await playDash();
  else if (format === "hls") await playHls();
  else throw new Error(`unknown format ${format}`);
  startHeartbeats();
}

main().catch((error) => fatal(error.message || error));
