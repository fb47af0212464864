// Cinema Online media edge: checks the delivery token in the path, then serves from the media origin
// through Cloudflare's cache. The Python side (shared/delivery/tokens.py) signs; this verifies the same
// bytes and applies the same path rules, and tests/delivery/test_worker.py runs it under node against
// Python-signed tokens.
//
// URL:   https://<media host>/t/<token>/media/assets/<asset id>/<hls|dash|images>/...
// Token: base64url (no padding, canonical) of version (1 byte = 2) | session uuid (16) | asset uuid (16)
//        | expires_at (uint32 big-endian, unix seconds) | max_height (uint16 big-endian)
//        | HMAC-SHA256 of the 39 bytes before it (32), keyed by the UTF-8 bytes of DELIVERY_TOKEN_SECRET
//        (the same value as the API's setting). 71 bytes, 95 characters.
// The token opens one asset's prefix until it expires, except the stored masters (hls/master.m3u8,
// dash/manifest.mpd: a session's capped master comes from the API) and rendition folders <codec>_<N>p
// with N above max_height (a cap below the ladder's lowest rung, 240, still opens that rung). The cache
// key is the origin URL WITHOUT the token, so every session shares the cached segments and playlists.
//
// Paths: the Worker sees request.url after WHATWG URL parsing, so dot segments are already resolved, a
// backslash became '/' and '%2e' a dot; the rules then run on what is left, and any remaining '%' or
// backslash is refused. (The dev server, shared/delivery/edge.py, sees the raw path and refuses '%',
// backslashes and dot segments outright; both end with the same rule: only plain keys the token opens
// are served, so a trick here can at most name another file the token already opens.)
//
// Configuration (wrangler.toml): DELIVERY_TOKEN_SECRET (secret), MEDIA_BUCKET (R2 binding, preferred) or
// ORIGIN (base URL of the storage holding media/assets/..., optionally guarded by ORIGIN_AUTH_HEADER /
// ORIGIN_AUTH_VALUE), API_ORIGIN (where /api/v1/streaming/keys/... is answered). Origin and API failures
// (unreachable, 5xx, not configured) answer 502 problem+json, never cached.

const VERSION = 2;
const TOKEN_CHARS = 95;
const HEAD_BYTES = 39;
const TOKEN_BYTES = HEAD_BYTES + 32;
const TOKEN_RE = /^[A-Za-z0-9_-]{95}$/;
const SEGMENT_RE = /^[A-Za-z0-9._~!$&'()*+,;=:@-]+$/;
const RENDITION_RE = /^[a-z][a-z0-9]*_([0-9]{1,5})p$/i;
const MASTERS = new Set(["hls/master.m3u8", "dash/manifest.mpd"]);
const LOWEST_RUNG = 240;
const KEY_RE = /^media\/assets\/([0-9a-f-]{36})\/hls\/keys\/hls\.key$/;
export const TOKEN_HEADER = "X-Delivery-Token";

export const SEGMENT_CACHE = "public, max-age=31536000, immutable";
export const PLAYLIST_CACHE = "public, max-age=60";
export const CONTENT_TYPES = {
  ".m3u8": "application/vnd.apple.mpegurl",
  ".mpd": "application/dash+xml",
  ".m4s": "video/iso.segment",
  ".mp4": "video/mp4",
  ".m4a": "audio/mp4",
  ".vtt": "text/vtt",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".png": "image/png",
  ".json": "application/json",
};
const CORS = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges, ETag",
};
// shared.delivery.tokens.PROBLEM_CODES
export const TOKEN_CODES = {
  malformed: "invalid_token",
  bad_signature: "invalid_token",
  expired: "token_expired",
  wrong_prefix: "wrong_asset",
  forbidden_path: "path_not_allowed",
};

function base64urlDecode(text) {
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  const binary = atob(padded);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function base64urlEncode(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function uuidOf(bytes) {
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const keyCache = new Map();

async function hmacKey(secret) {
  let key = keyCache.get(secret);
  if (!key) {
    key = await crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["verify"],
    );
    keyCache.set(secret, key);
  }
  return key;
}

/** True when `path` is a plain storage key strictly under `prefix` (no '..', '.', '//', '%'). */
export function pathAllowed(path, prefix) {
  if (!path.startsWith(prefix) || path.length <= prefix.length) return false;
  return path.split("/").every((part) => SEGMENT_RE.test(part) && part !== "." && part !== "..");
}

/** N of a rendition folder named <codec>_<N>p (h264_720p -> 720), else null. */
export function renditionHeight(name) {
  const match = RENDITION_RE.exec(name);
  return match ? Number(match[1]) : null;
}

/** Whether a path under the asset prefix is neither a stored master nor a rendition above the cap. */
export function withinCap(relative, maxHeight) {
  if (MASTERS.has(relative.toLowerCase())) return false;
  const cap = Math.max(maxHeight, LOWEST_RUNG);
  return relative.split("/").every((part) => {
    const height = renditionHeight(part);
    return height === null || height <= cap;
  });
}

/**
 * Verify a delivery token for a storage key (the path after /t/<token>/).
 * Resolves to {ok: true, sessionId, assetId, expiresAt, maxHeight} or {ok: false, reason} where reason is
 * one of malformed, bad_signature, expired, wrong_prefix, forbidden_path (the Python TokenError reasons).
 */
export async function verifyToken(token, path, secret, now) {
  if (typeof token !== "string" || token.length !== TOKEN_CHARS || !TOKEN_RE.test(token)) {
    return { ok: false, reason: "malformed" };
  }
  let raw;
  try {
    raw = base64urlDecode(token);
  } catch {
    return { ok: false, reason: "malformed" };
  }
  // Canonical only: the last character's 2 spare bits must be zero (one string per token, as in Python).
  if (raw.length !== TOKEN_BYTES || raw[0] !== VERSION || base64urlEncode(raw) !== token) {
    return { ok: false, reason: "malformed" };
  }
  const head = raw.slice(0, HEAD_BYTES);
  // crypto.subtle.verify compares in constant time.
  const valid = await crypto.subtle.verify("HMAC", await hmacKey(secret), raw.slice(HEAD_BYTES), head);
  if (!valid) return { ok: false, reason: "bad_signature" };
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const expiresAt = view.getUint32(33, false);
  const maxHeight = view.getUint16(37, false);
  if (now >= expiresAt) return { ok: false, reason: "expired" };
  const sessionId = uuidOf(head.slice(1, 17));
  const assetId = uuidOf(head.slice(17, 33));
  const prefix = `media/assets/${assetId}/`;
  if (!pathAllowed(path, prefix)) return { ok: false, reason: "wrong_prefix" };
  if (!withinCap(path.slice(prefix.length), maxHeight)) return { ok: false, reason: "forbidden_path" };
  return { ok: true, sessionId, assetId, expiresAt, maxHeight };
}

/** Split "/t/<token>/<key>" into [token, key], or null. */
export function splitTokenPath(pathname) {
  if (!pathname.startsWith("/t/")) return null;
  const rest = pathname.slice(3);
  const slash = rest.indexOf("/");
  return slash < 0 ? null : [rest.slice(0, slash), rest.slice(slash + 1)];
}

export function contentTypeOf(key) {
  const dot = key.lastIndexOf(".");
  return (dot >= 0 && CONTENT_TYPES[key.slice(dot).toLowerCase()]) || "application/octet-stream";
}

export function cacheControlFor(key) {
  return key.endsWith(".m3u8") || key.endsWith(".mpd") ? PLAYLIST_CACHE : SEGMENT_CACHE;
}

function problem(status, code, detail, cache = "no-store") {
  const body = JSON.stringify({ type: `/problems/${code}`, title: code.replace(/_/g, " "), status, detail, code });
  return new Response(body, {
    status,
    headers: { "Content-Type": "application/problem+json", "Cache-Control": cache, ...CORS },
  });
}

function deliveryHeaders(key, extra) {
  return {
    "Content-Type": contentTypeOf(key),
    "Cache-Control": cacheControlFor(key),
    "X-Content-Type-Options": "nosniff",
    "Accept-Ranges": "bytes",
    ...CORS,
    ...extra,
  };
}

/** 502 problem: the origin or the API failed (or is not configured); never cached. */
function badGateway(detail) {
  return problem(502, "bad_gateway", detail);
}

function isProblem(response) {
  return (response.headers.get("Content-Type") || "").startsWith("application/problem+json");
}

async function forwardKey(request, env, token, assetId) {
  // Keys are per session and checked against the live session: never cached, always the API's answer.
  if (!env.API_ORIGIN) {
    return badGateway("API_ORIGIN is not configured on the media edge: HLS keys cannot be fetched.");
  }
  // The token goes in a header (kept out of URL logs); in the query too while key endpoints read only it.
  const base = env.API_ORIGIN.replace(/\/+$/, "");
  const url = `${base}/api/v1/streaming/keys/${assetId}/hls.key?token=${token}`;
  const headers = { Accept: "application/octet-stream", [TOKEN_HEADER]: token };
  const client = request.headers.get("CF-Connecting-IP");
  if (client) headers["X-Forwarded-For"] = client;
  const origin = request.headers.get("Origin");
  if (origin) headers.Origin = origin;
  let answer;
  try {
    answer = await fetch(url, { method: "GET", headers, cf: { cacheTtl: 0, cacheEverything: false } });
  } catch (error) {
    return badGateway(`The API could not be reached for the key (${error && error.name ? error.name : "error"}).`);
  }
  // The API's own answers (the key, its refusals as problem+json) pass; anything else failed upstream.
  if (!answer.ok && !isProblem(answer)) {
    return badGateway(`The API answered the key request with HTTP ${answer.status}.`);
  }
  const response = new Response(answer.body, answer);
  response.headers.set("Cache-Control", "no-store");
  for (const [name, value] of Object.entries(CORS)) response.headers.set(name, value);
  return response;
}

async function fromBucket(request, env, ctx, key) {
  const ranged = request.headers.has("Range");
  const cache = caches.default;
  // The cache key names the object, not the token: one cached copy for every session.
  const cacheKey = new Request(`https://media-cache.internal/${key}`, { method: "GET" });
  if (!ranged && request.method === "GET") {
    const hit = await cache.match(cacheKey).catch(() => undefined);
    if (hit) return hit;
  }
  let object;
  try {
    object = await env.MEDIA_BUCKET.get(key, ranged ? { range: request.headers } : {});
  } catch (error) {
    return badGateway(`The media bucket could not be read (${error && error.name ? error.name : "error"}).`);
  }
  if (object === null) return problem(404, "not_found", "No such media file.", "public, max-age=5");
  const extra = { ETag: object.httpEtag };
  let status = 200;
  if (ranged && object.range) {
    const start = object.range.offset ?? 0;
    const length = object.range.length ?? object.size - start;
    extra["Content-Range"] = `bytes ${start}-${start + length - 1}/${object.size}`;
    extra["Content-Length"] = String(length);
    status = 206;
  } else {
    extra["Content-Length"] = String(object.size);
  }
  const body = request.method === "HEAD" ? null : object.body;
  const response = new Response(body, { status, headers: deliveryHeaders(key, extra) });
  if (status === 200 && request.method === "GET") {
    ctx.waitUntil(cache.put(cacheKey, response.clone()).catch(() => undefined));
  }
  return response;
}

const ORIGIN_STATUSES = new Set([200, 206, 304]);

async function fromOrigin(request, env, key) {
  if (!env.ORIGIN) {
    return badGateway("Neither MEDIA_BUCKET nor ORIGIN is configured on the media edge.");
  }
  const url = `${env.ORIGIN.replace(/\/+$/, "")}/${key}`;
  const headers = {};
  for (const name of ["Range", "If-None-Match", "If-Modified-Since"]) {
    const value = request.headers.get(name);
    if (value) headers[name] = value;
  }
  if (env.ORIGIN_AUTH_HEADER && env.ORIGIN_AUTH_VALUE) headers[env.ORIGIN_AUTH_HEADER] = env.ORIGIN_AUTH_VALUE;
  // Cloudflare caches m3u8/m4s only when told to: cacheEverything, keyed by the token-free origin URL.
  const ttl = cacheControlFor(key) === SEGMENT_CACHE ? 31536000 : 60;
  let answer;
  try {
    answer = await fetch(url, {
      method: request.method,
      headers,
      cf: { cacheEverything: true, cacheTtlByStatus: { "200-299": ttl, "404": 5, "500-599": 0 } },
    });
  } catch (error) {
    return badGateway(`The media origin could not be reached (${error && error.name ? error.name : "error"}).`);
  }
  if (answer.status === 404 || answer.status === 403) {
    return problem(404, "not_found", "No such media file.", "public, max-age=5");
  }
  if (answer.status === 416) return problem(416, "range_not_satisfiable", "The range is outside the file.");
  // Never pass an origin error on with the immutable caching of a segment.
  if (!ORIGIN_STATUSES.has(answer.status)) {
    return badGateway(`The media origin answered HTTP ${answer.status}.`);
  }
  const extra = {};
  for (const name of ["ETag", "Last-Modified", "Content-Length", "Content-Range"]) {
    const value = answer.headers.get(name);
    if (value) extra[name] = value;
  }
  return new Response(answer.body, { status: answer.status, headers: deliveryHeaders(key, extra) });
}

export default {
  async fetch(request, env, ctx) {
    if (request.method === "OPTIONS") {
      return new Response(null, {
        status: 204,
        headers: {
          ...CORS,
          "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
          "Access-Control-Allow-Headers": "Range, If-None-Match",
          "Access-Control-Max-Age": "86400",
        },
      });
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return problem(405, "method_not_allowed", "Only GET and HEAD are served here.");
    }
    const url = new URL(request.url);
    const parts = splitTokenPath(url.pathname);
    if (parts === null) return problem(404, "not_found", "Nothing is served at this path.");
    const [token, key] = parts;
    // Percent-escapes left after URL parsing (an encoded slash) and backslashes are refused, never decoded
    // and reinterpreted, as the dev server does (see the header for what URL parsing already resolved).
    if (key.includes("%") || key.includes("\\")) {
      return problem(403, "wrong_asset", "The delivery token does not open this path.");
    }
    if (!env.DELIVERY_TOKEN_SECRET) {
      return problem(503, "service_unavailable", "DELIVERY_TOKEN_SECRET is not configured on the media edge.");
    }
    const verdict = await verifyToken(token, key, env.DELIVERY_TOKEN_SECRET, Math.floor(Date.now() / 1000));
    if (!verdict.ok) {
      return problem(403, TOKEN_CODES[verdict.reason], `The delivery token was refused (${verdict.reason}).`);
    }
    const keyMatch = KEY_RE.exec(key);
    if (keyMatch) return forwardKey(request, env, token, keyMatch[1]);
    if (env.MEDIA_BUCKET) return fromBucket(request, env, ctx, key);
    return fromOrigin(request, env, key);
  },
};
