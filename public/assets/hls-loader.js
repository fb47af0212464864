// hls.js with renewed delivery tokens: the one copy the watch page (player.js) and the pipeline's dev test
// page (public/dev/player.js) share. public/dev/ is not deployed, so it imports from here, never the reverse.
//
// A stream session's media URLs carry a delivery token: the `/t/<token>/` path segment of playlists and
// segments, and the `token=` query of key and licence URLs. Tokens expire (STREAM_TOKEN_TTL_SECONDS); each
// heartbeat of the session answers a fresh one, which every later request must carry. hls.js requests go
// through a loader that swaps the freshest token in, and the per-session manifest request (that one only:
// never a segment, never a CDN) carries the viewer's bearer.
//
// Exports: withDeliveryToken(url, token), isManifestRequest(url), loadScript(src), loadHls(),
// hlsTokenConfig(Hls, {deliveryToken, bearer}).

const HLS_SRC = "/vendor/hls.min.js"; // from npm, copied by make (no CDN)
const MANIFEST_PATH = /^\/api\/v1\/streaming\/[^/]+\/manifest$/;

/** `url` with `token` in its `/t/<token>/` path segment and its `token=` query (as it was without either). */
export function withDeliveryToken(url, token) {
  if (!token) return url;
  const target = new URL(url, location.href);
  let changed = false;
  if (target.pathname.startsWith("/t/")) {
    const rest = target.pathname.indexOf("/", 3);
    if (rest > 3) {
      target.pathname = `/t/${token}${target.pathname.slice(rest)}`;
      changed = true;
    }
  }
  if (target.searchParams.has("token")) {
    target.searchParams.set("token", token);
    changed = true;
  }
  return changed ? target.href : url;
}

/** Whether `url` is this origin's per-session manifest endpoint: the one request that gets the bearer. */
export function isManifestRequest(url) {
  const target = new URL(url, location.href);
  return target.origin === location.origin && MANIFEST_PATH.test(target.pathname);
}

const scripts = new Map(); // src -> Promise: each script is added to the page once

/** Load a classic script (a player library from /vendor/) once; a failed load may be tried again. */
export function loadScript(src) {
  if (!scripts.has(src)) {
    const loading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.onload = resolve;
      script.onerror = () => {
        scripts.delete(src);
        script.remove();
        reject(new Error(`could not load ${src}`));
      };
      document.head.append(script);
    });
    scripts.set(src, loading);
  }
  return scripts.get(src);
}

/** hls.js (window.Hls), loaded once. */
export async function loadHls() {
  if (!window.Hls) await loadScript(HLS_SRC);
  if (!window.Hls) throw new Error("hls.js did not load");
  return window.Hls;
}

/**
 * The part of an hls.js config that authorises its requests: a loader that puts deliveryToken() (the
 * freshest token, or null) into every playlist, segment and key URL, and an xhrSetup that adds bearer()
 * (or nothing when it is null) to the manifest request only. new Hls({...hlsTokenConfig(Hls, ...), ...}).
 */
export function hlsTokenConfig(Hls, { deliveryToken, bearer }) {
  const DefaultLoader = Hls.DefaultConfig.loader;
  class FreshTokenLoader extends DefaultLoader {
    load(context, config, callbacks) {
      context.url = withDeliveryToken(context.url, deliveryToken());
      super.load(context, config, callbacks);
    }
  }
  return {
    loader: FreshTokenLoader,
    xhrSetup: (xhr, url) => {
      const token = bearer();
      if (token && isManifestRequest(url)) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    },
  };
}
