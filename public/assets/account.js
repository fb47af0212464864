// The account pages (sign-up, sign-in, the links in our emails) until the web client lands: one module,
// no inline scripts and no third-party code, so the pages run under a strict Content-Security-Policy.
// Each page names itself in <body data-page="..."> and this module wires that page to the real API.

const API = "/api/v1";
const SESSION_KEY = "cinema.session";
const NETWORK_ERROR = "We could not reach Cinema Online. Check your connection and try again.";
const PAGE_ERROR = "Something went wrong on this page. Reload it and try again.";
const BROKEN_LINK =
  "This link is incomplete or damaged. Copy the whole link from the email into the address bar, " +
  "or ask for a new one.";
const INCOMPLETE_SIGN_IN = "This sign-in link is incomplete. Start again from the sign-in page.";
const PASSWORD_CODES = new Set([
  "password_too_short",
  "password_too_long",
  "password_too_common",
  "password_contains_context",
  "password_invalid_character",
]);
// Codes the social login callback may carry in #error=...; anything else gets the generic message.
const SOCIAL_ERRORS = {
  oauth_access_denied: "You cancelled signing in with the provider, so you are not signed in.",
  oauth_provider_unavailable: "The sign-in provider is having trouble right now. Try again in a moment.",
  oauth_provider_error: "The sign-in provider refused the request. Try signing in again.",
  oauth_exchange_failed: "The sign-in provider refused the request. Try signing in again.",
  provider_not_configured: "Signing in with this provider is not available here.",
  invalid_state:
    "The sign-in took too long or was started in another browser or tab. Start again from the sign-in page.",
  oauth_browser_mismatch:
    "The sign-in took too long or was started in another browser or tab. Start again from the sign-in page.",
  oauth_invalid_id_token: "The sign-in provider's answer could not be checked. Try signing in again.",
  oauth_email_unverified:
    "The provider has not verified your email address, so it cannot be used to sign in here. Verify it " +
    "with the provider, or sign in with your password.",
  identity_in_use:
    "That provider account is already linked to another account here. Sign in to that account instead.",
  account_disabled: "This account has been disabled. Contact support.",
  rate_limited: "Too many sign-in attempts. Wait a few minutes and try again.",
};

// Where a finished sign-in goes when it was not sent from a page: the profile picker ("Who's watching?").
const PROFILES = "/profiles/";
// Pages that only sign in again (or spend a one-time code): never somewhere to continue to.
const SIGN_IN_PAGES = /^\/(login|signup|auth\/callback)(\/|$)/;

const $ = (id) => document.getElementById(id);

class NetworkError extends Error {}

// --- talking to the API ---------------------------------------------------------------------------------

/** fetch() an API path (a JSON body, a bearer token, uncached); throws NetworkError when nothing answered. */
async function request(
  method,
  path,
  { body, token, headers = {}, accept = "application/json, application/problem+json", credentials = "same-origin" } = {},
) {
  const all = { accept, ...headers };
  if (body !== undefined) all["content-type"] = "application/json";
  if (token) all.authorization = `Bearer ${token}`;
  try {
    return await fetch(API + path, {
      method,
      headers: all,
      credentials,
      cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new NetworkError(NETWORK_ERROR, { cause: error });
  }
}

/** One JSON call to the API: {ok, status, data, retryAfter}; throws NetworkError when nothing answered. */
async function api(method, path, { body, token, credentials = "same-origin" } = {}) {
  const response = await request(method, path, { body, token, credentials });
  let data = null;
  if (response.status !== 204 && (response.headers.get("content-type") || "").includes("json")) {
    try {
      data = await response.json();
    } catch {
      data = null; // a proxy's error page with a JSON label: fall back to the status below
    }
  }
  return { ok: response.ok, status: response.status, data, retryAfter: response.headers.get("retry-after") };
}

function codeOf(result) {
  return result.data && typeof result.data.code === "string" ? result.data.code : "";
}

function duration(seconds) {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? "" : "s"}`;
}

/** What to tell the person about a failed call: the problem's `detail`, and when to try again. */
function problemText(result) {
  const detail = result.data && typeof result.data.detail === "string" ? result.data.detail.trim() : "";
  let text = detail;
  if (!text) {
    if (result.status === 429) text = "Too many attempts.";
    else if (result.status >= 500) text = "Something went wrong on our side. Please try again in a moment.";
    else text = `The request failed (HTTP ${result.status}).`;
  }
  const wait = Number.parseInt(result.retryAfter || "", 10);
  if (result.status === 429 && wait > 0 && !/try again in/i.test(text)) {
    text += ` Try again in ${duration(wait)}.`;
  }
  return text;
}

/** A 422 from request validation that is about the link's token (too short or long: a damaged link). */
function isBrokenToken(result) {
  const errors = result.data && Array.isArray(result.data.errors) ? result.data.errors : [];
  return (
    codeOf(result) === "validation_failed" &&
    errors.some((e) => Array.isArray(e.loc) && (e.loc.includes("token") || e.loc.includes("login_code")))
  );
}

// --- messages, fields and steps -------------------------------------------------------------------------

function announce(element, text) {
  if (!element) return;
  if (element.textContent === text && text) {
    // The same words again (a second wrong password): empty the live region first so it is read again.
    element.textContent = "";
    setTimeout(() => {
      element.textContent = text;
    }, 50);
    return;
  }
  element.textContent = text;
}

function say(text) {
  announce($("error"), "");
  announce($("status"), text);
}

function fail(text) {
  announce($("status"), "");
  announce($("error"), text);
}

function clearMessages() {
  announce($("status"), "");
  announce($("error"), "");
}

/** Show what went wrong: a network failure's own words, else the generic message (and log the error). */
function showError(error) {
  fail(error instanceof NetworkError ? error.message : PAGE_ERROR);
  if (!(error instanceof NetworkError)) console.error(error);
}

/** Show an error under one field (linked by aria-describedby in the markup) and put the focus there. */
function fieldError(input, text) {
  const slot = $(`${input.id}-error`);
  if (slot) slot.textContent = text;
  else fail(text);
  input.setAttribute("aria-invalid", "true");
  input.focus();
}

function clearFieldErrors(form) {
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  for (const slot of form.querySelectorAll(".field-error")) slot.textContent = "";
}

/** Show one [data-step] section of the page, hide the others, and move the focus to its heading or field. */
function showStep(id, { focus = true } = {}) {
  for (const section of document.querySelectorAll("[data-step]")) section.hidden = section.id !== id;
  const section = $(id);
  if (!focus || !section) return;
  const heading = section.querySelector("h2");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  } else {
    const field = section.querySelector("input:not([type=hidden]), a, button");
    if (field) field.focus();
  }
}

/** Run a form's handler on submit: one at a time, messages cleared, the button busy meanwhile. */
function onSubmit(form, handler) {
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (form.getAttribute("aria-busy") === "true") return;
    clearFieldErrors(form);
    clearMessages();
    const buttons = form.querySelectorAll("button");
    form.setAttribute("aria-busy", "true");
    for (const button of buttons) button.disabled = true;
    try {
      await handler(form);
    } catch (error) {
      showError(error);
    } finally {
      form.removeAttribute("aria-busy");
      for (const button of buttons) button.disabled = false;
    }
  });
}

function value(form, name) {
  const field = form.elements.namedItem(name);
  return field ? String(field.value) : "";
}

// --- secrets in the address bar -------------------------------------------------------------------------

function queryToken() {
  return new URLSearchParams(window.location.search).get("token") || "";
}

function fragmentParams() {
  return new URLSearchParams(window.location.hash.replace(/^#/, ""));
}

/** Drop ?token=... and #login_code=... from the address bar (and this history entry) once they are spent. */
function forgetUrlSecrets() {
  if (window.location.search || window.location.hash) {
    window.history.replaceState(window.history.state, "", window.location.pathname);
  }
}

// --- the session (the web client will own storage later) -------------------------------------------------

let memorySession = null; // when sessionStorage is unavailable (privacy modes), the tab keeps it in memory

function loadSession() {
  try {
    const raw = window.sessionStorage.getItem(SESSION_KEY);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return memorySession;
  }
}

function saveSession(tokens) {
  const kept = {
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    expires_at: tokens.expires_at,
    session_id: tokens.session_id,
    profile_id: tokens.profile_id ?? null,
  };
  memorySession = kept;
  try {
    window.sessionStorage.setItem(SESSION_KEY, JSON.stringify(kept));
  } catch {
    // memory only
  }
}

function clearSession() {
  memorySession = null;
  try {
    window.sessionStorage.removeItem(SESSION_KEY);
  } catch {
    // nothing stored
  }
}

/** A call with the stored access token, renewed once with the refresh token when it has expired. */
async function withSession(method, path) {
  const stored = loadSession();
  if (!stored || !stored.access_token) return null;
  const result = await api(method, path, { token: stored.access_token });
  if (result.status !== 401 || !stored.refresh_token) return result;
  const renewed = await api("POST", "/auth/refresh", { body: { refresh_token: stored.refresh_token } });
  if (!renewed.ok) return result;
  saveSession(renewed.data);
  return api(method, path, { token: renewed.data.access_token });
}

/** The signed-in account, or null (a session that no longer works is forgotten). */
async function currentUser() {
  const me = await withSession("GET", "/users/me");
  if (me === null) return null;
  if (!me.ok) {
    if (me.status === 401 || me.status === 403) clearSession();
    else fail(problemText(me));
    return null;
  }
  return me.data;
}

/** Where a sign-in starts over on this page: the password form, or on the social callback a link to it. */
function startStep() {
  return $("password-step") ? "password-step" : "callback-start";
}

async function showSignedIn({ focus = true } = {}) {
  const user = await currentUser();
  if (!user) {
    showStep(startStep(), { focus });
    return;
  }
  $("signed-in-email").textContent = user.email;
  showStep("signed-in", { focus });
}

// --- sign-in: password or social first factor, then the 2FA step when the account has it -------------------

let challenge = null; // the MFA challenge of the current sign-in
let afterSignIn = PROFILES; // where this page goes once signed in (the page sets it from ?next= or redirect_to)

/**
 * The same-site path to continue to after signing in, or "" (not a path on this site, or a sign-in page).
 * `value` comes from the address bar, i.e. from anyone: never an open redirect. A sign-in page's own
 * ?next= is followed through (/login/?next=%2Faccount%2F continues to /account/).
 */
function continueTo(value) {
  const path = sameSitePath(value || "");
  if (!path) return "";
  const url = new URL(path, window.location.origin);
  if (!SIGN_IN_PAGES.test(url.pathname)) return path;
  const inner = url.searchParams.get("next");
  return inner && inner.length < path.length ? continueTo(inner) : "";
}

/** The page's ?next= as a place to continue to, or "" when there is none we may follow. */
function queryNext() {
  return continueTo(new URLSearchParams(window.location.search).get("next"));
}

/** Carry where to continue to through the page's other sign-in routes: social sign-in, sign-up/sign-in. */
function carryNext(next) {
  for (const link of document.querySelectorAll("a[data-social]")) {
    const url = new URL(link.getAttribute("href"), window.location.origin);
    url.searchParams.set("redirect_to", next || PROFILES);
    link.setAttribute("href", url.pathname + url.search);
  }
  if (!next) return;
  for (const link of document.querySelectorAll("a[data-keeps-next]")) {
    const url = new URL(link.getAttribute("href"), window.location.origin);
    url.searchParams.set("next", next);
    link.setAttribute("href", url.pathname + url.search);
  }
}

/** Continue after a first factor: store the tokens and go on, or ask for the 2FA code. */
async function finishFirstFactor(answer) {
  if (answer && answer.mfa_required) {
    challenge = answer;
    const form = $("mfa-form");
    form.reset();
    clearFieldErrors(form);
    showStep("mfa-step", { focus: false });
    form.elements.namedItem("code").focus();
    return;
  }
  challenge = null;
  saveSession(answer);
  // On to where the person was going (or the profile picker); replace(): Back skips the spent sign-in page.
  say("You are signed in.");
  window.location.replace(afterSignIn);
}

function wireMfaStep() {
  onSubmit($("mfa-form"), async (form) => {
    const input = form.elements.namedItem("code");
    if (!challenge) {
      showStep(startStep());
      fail("Your sign-in expired. Sign in again.");
      return;
    }
    const result = await api("POST", "/auth/login/mfa", {
      body: { mfa_token: challenge.mfa_token, code: input.value.trim() },
    });
    if (result.ok) {
      await finishFirstFactor(result.data);
      return;
    }
    const code = codeOf(result);
    if (code === "invalid_mfa_code") {
      fieldError(input, problemText(result));
    } else if (code === "validation_failed") {
      fieldError(input, "Enter the 6-digit code from your app, or one of your backup codes.");
    } else if (code === "mfa_expired") {
      challenge = null;
      showStep(startStep());
      fail(problemText(result));
    } else {
      fail(problemText(result));
    }
  });
  const restart = $("mfa-restart");
  if (restart) {
    restart.addEventListener("click", () => {
      challenge = null;
      clearMessages();
      showStep(startStep());
    });
  }
}

function wireSignOut() {
  const button = $("sign-out");
  if (!button) return;
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await withSession("POST", "/auth/logout"); // ends the session on the server, not just in this tab
    } catch {
      // Offline: the tokens are forgotten here anyway and expire on their own.
    } finally {
      button.disabled = false;
    }
    clearSession();
    showStep(startStep());
    say("You have signed out.");
  });
}

// --- local development: a link to the email just sent -----------------------------------------------------

const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** On a local machine, link to the newest outbox email for the address (GET /api/v1/dev/outbox). */
async function showDevOutbox(email) {
  const box = $("dev-outbox");
  if (!box || !LOCAL_HOSTS.has(window.location.hostname) || !email) return;
  let result;
  try {
    result = await api("GET", `/dev/outbox?limit=1&to=${encodeURIComponent(email)}`);
  } catch {
    return;
  }
  const item = result.ok && result.data && Array.isArray(result.data.items) ? result.data.items[0] : null;
  if (!item) return;
  const link = $("dev-outbox-link");
  link.href = `${API}/dev/outbox/${encodeURIComponent(item.id)}/html`;
  link.textContent = `open “${item.subject}” in the local outbox`;
  box.hidden = false;
}

// --- pages ------------------------------------------------------------------------------------------------

async function resend(email) {
  const result = await api("POST", "/auth/verify-email/resend", { body: { email } });
  if (!result.ok) {
    fail(problemText(result));
    return;
  }
  say(result.data.detail);
  await showDevOutbox(email);
}

function wireResendForm() {
  onSubmit($("resend-form"), async (form) => {
    await resend(value(form, "email").trim());
  });
}

/** Spend an emailed link's token with one POST; the token leaves the address bar once it is answered. */
async function spendLinkToken(path, { working, onSuccess, onFailure }) {
  const token = queryToken();
  if (!token) return false;
  const retry = $("retry");
  const attempt = async () => {
    if (retry) retry.hidden = true;
    say(working);
    let result;
    try {
      result = await api("POST", path, { body: { token } });
    } catch (error) {
      // Keep the token in the address bar: reloading (or the button) tries again.
      fail(error.message);
      if (retry) retry.hidden = false;
      return;
    }
    forgetUrlSecrets();
    if (result.ok) {
      clearMessages();
      onSuccess(result.data);
    } else {
      fail(isBrokenToken(result) ? BROKEN_LINK : problemText(result));
      onFailure(result);
    }
  };
  if (retry) retry.addEventListener("click", attempt);
  await attempt();
  return true;
}

async function verifyEmailPage() {
  wireResendForm();
  const used = await spendLinkToken("/auth/verify-email", {
    working: "Confirming your email address…",
    onSuccess: () => showStep("verified"),
    onFailure: () => showStep("resend-step", { focus: false }),
  });
  if (!used) showStep("resend-step", { focus: false });
}

async function confirmEmailPage() {
  const used = await spendLinkToken("/auth/email/confirm", {
    working: "Confirming your new email address…",
    onSuccess: (user) => {
      $("confirmed-email").textContent = user.email;
      showStep("confirmed");
    },
    onFailure: () => showStep("failed", { focus: false }),
  });
  if (!used) {
    fail(BROKEN_LINK);
    showStep("failed", { focus: false });
  }
}

function resetPasswordPage() {
  // The token stays in the address bar until the request that spends it is answered: a reload keeps working.
  const token = queryToken();
  if (!token) {
    fail(BROKEN_LINK);
    showStep("failed", { focus: false });
    return;
  }
  onSubmit($("reset-form"), async (form) => {
    const password = form.elements.namedItem("password");
    const confirm = form.elements.namedItem("confirm");
    if (password.value !== confirm.value) {
      fieldError(confirm, "The two passwords do not match. Type the same password in both fields.");
      return;
    }
    const result = await api("POST", "/auth/password/reset/confirm", {
      body: { token, password: password.value },
    });
    const code = codeOf(result);
    if (result.ok) {
      forgetUrlSecrets();
      form.reset();
      clearMessages();
      showStep("reset-done");
    } else if (PASSWORD_CODES.has(code)) {
      fieldError(password, problemText(result)); // the token is still good: the person tries another password
    } else if (result.status === 400 || isBrokenToken(result)) {
      forgetUrlSecrets();
      form.reset();
      fail(isBrokenToken(result) ? BROKEN_LINK : problemText(result));
      showStep("failed", { focus: false });
    } else {
      fail(problemText(result));
    }
  });
}

function forgotPasswordPage() {
  onSubmit($("forgot-form"), async (form) => {
    const email = value(form, "email").trim();
    const result = await api("POST", "/auth/password/reset", { body: { email } });
    if (!result.ok) {
      fail(problemText(result));
      return;
    }
    say(result.data.detail);
    await showDevOutbox(email);
  });
}

function signupPage() {
  carryNext(queryNext());
  let signedUpEmail = "";
  onSubmit($("signup-form"), async (form) => {
    const email = value(form, "email").trim();
    const name = value(form, "display_name").trim();
    const password = form.elements.namedItem("password");
    const body = { email, password: password.value };
    if (name) body.display_name = name;
    const result = await api("POST", "/auth/signup", { body });
    if (result.ok) {
      signedUpEmail = email;
      form.reset();
      $("sent-email").textContent = email;
      showStep("sent");
      say(result.data.detail);
      await showDevOutbox(email);
    } else if (PASSWORD_CODES.has(codeOf(result))) {
      fieldError(password, problemText(result));
    } else {
      fail(problemText(result));
    }
  });
  const again = $("send-again");
  if (again) {
    again.addEventListener("click", async () => {
      again.disabled = true;
      try {
        await resend(signedUpEmail);
      } catch (error) {
        fail(error instanceof NetworkError ? error.message : PAGE_ERROR);
      } finally {
        again.disabled = false;
      }
    });
  }
}

async function loginPage() {
  const next = queryNext();
  afterSignIn = next || PROFILES;
  carryNext(next);
  let unverifiedEmail = "";
  wireMfaStep();
  wireSignOut();
  onSubmit($("login-form"), async (form) => {
    $("unverified-form").hidden = true;
    const email = value(form, "email").trim();
    const password = form.elements.namedItem("password");
    const result = await api("POST", "/auth/login", { body: { email, password: password.value } });
    if (result.ok) {
      password.value = "";
      await finishFirstFactor(result.data);
      return;
    }
    fail(problemText(result));
    if (codeOf(result) === "email_not_verified") {
      unverifiedEmail = email;
      $("unverified-form").hidden = false;
    } else if (codeOf(result) === "invalid_credentials") {
      password.value = "";
      password.focus();
    }
  });
  onSubmit($("unverified-form"), async () => {
    await resend(unverifiedEmail);
  });
  // Sent here to sign in while this tab already is (Back, an old link): go straight on.
  if (next && loadSession() && (await currentUser())) {
    window.location.replace(next);
    return;
  }
  await showSignedIn({ focus: false });
}

function socialErrorText(code) {
  if (Object.hasOwn(SOCIAL_ERRORS, code)) return SOCIAL_ERRORS[code];
  // Only a code-shaped value is echoed: the fragment is attacker-controlled text on our origin.
  const shown = /^[a-z0-9_.-]{1,64}$/.test(code) ? ` (error: ${code})` : "";
  return `Signing in with the provider did not complete${shown}. Start again from the sign-in page.`;
}

/** `value` when it is a path on this site, else "": ?next= and the fragment's redirect_to are anyone's to set. */
function sameSitePath(value) {
  // Browsers drop tabs and newlines from URLs ("/\t/evil.example" becomes "//evil.example"): refuse them.
  if (!value.startsWith("/") || /[\u0000-\u001f\u007f\\]/.test(value)) return "";
  try {
    const url = new URL(value, location.origin);
    return url.origin === location.origin ? url.pathname + url.search + url.hash : "";
  } catch {
    return "";
  }
}

async function callbackPage() {
  wireMfaStep();
  wireSignOut();
  const params = fragmentParams();
  const loginCode = params.get("login_code") || "";
  const error = params.get("error");
  if (error !== null || !loginCode) {
    forgetUrlSecrets();
    fail(error !== null ? socialErrorText(error) : INCOMPLETE_SIGN_IN);
    showStep("callback-start", { focus: false });
    return;
  }
  const retry = $("retry");
  const attempt = async () => {
    retry.hidden = true;
    say("Signing you in…");
    let result;
    try {
      result = await api("POST", "/auth/oauth/exchange", {
        body: { login_code: loginCode },
        credentials: "same-origin", // the cookie that binds the sign-in to this browser goes along
      });
    } catch (networkError) {
      fail(networkError.message);
      retry.hidden = false;
      return;
    }
    forgetUrlSecrets();
    if (!result.ok) {
      fail(isBrokenToken(result) ? INCOMPLETE_SIGN_IN : problemText(result));
      showStep("callback-start", { focus: false });
      return;
    }
    clearMessages();
    afterSignIn = continueTo(params.get("redirect_to")) || PROFILES;
    await finishFirstFactor(result.data);
  };
  retry.addEventListener("click", attempt);
  await attempt();
}

const PAGES = {
  "verify-email": verifyEmailPage,
  "confirm-email": confirmEmailPage,
  "reset-password": resetPasswordPage,
  "forgot-password": forgotPasswordPage,
  signup: signupPage,
  login: loginPage,
  "auth-callback": callbackPage,
};

/** Wire the page up: its errors shown by onError, and data-ready on the body once it is done either way. */
async function runPage(page, onError = showError) {
  try {
    await page();
  } catch (error) {
    onError(error);
  } finally {
    document.body.dataset.ready = "true"; // for people's tools and tests alike: the page is wired up
  }
}

async function main() {
  const page = PAGES[document.body.dataset.page];
  if (page) await runPage(page);
}

main();

// For the billing page's module (public/assets/billing.js), which shares this session, these messages and
// the way to call the API.
export {
  $,
  announce,
  clearMessages,
  clearSession,
  codeOf,
  fail,
  forgetUrlSecrets,
  loadSession,
  NETWORK_ERROR,
  NetworkError,
  PAGE_ERROR,
  problemText,
  request,
  runPage,
  saveSession,
  say,
  showError,
};
