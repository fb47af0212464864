// The account settings page (/account/): details, password, email, two-step verification, signed-in devices,
// linked sign-ins, streams now playing, the plan's summary, the data export and deleting the account.
// One module, no inline scripts and no third-party code (strict CSP); the shell, the API client, the session
// and the formatting helpers are app.js's. Nothing from the API is ever parsed as HTML here.

import {
  api as call,
  clearSession,
  codeOf,
  el,
  formatDate as day,
  formatDateTime as dateTime,
  formatMoney as money,
  mountShell,
  NetworkError,
  plural,
  problemText,
  saveSession,
  showError,
  startPage,
  sectionMessages,
} from "/assets/app.js";

const PASSWORD_CODES = new Set([
  "password_too_short",
  "password_too_long",
  "password_too_common",
  "password_contains_context",
  "password_invalid_character",
]);
const PROVIDERS = [
  ["google", "Google"],
  ["github", "GitHub"],
];
const PROVIDER_NAMES = { google: "Google", github: "GitHub", supabase: "Supabase" };
const STATUS_TEXT = {
  free: "Free plan",
  trialing: "Free trial",
  active: "Active",
  past_due: "Payment overdue",
  unpaid: "Unpaid",
  incomplete: "Waiting for payment",
  incomplete_expired: "Payment not completed",
  paused: "Paused",
  canceled: "Ended",
};
const LIVE = new Set(["trialing", "active", "past_due", "unpaid", "incomplete", "paused"]);
const BLOB_LIFETIME_MS = 60 * 1000;

const $ = (id) => document.getElementById(id);

const state = { user: null, mfa: null, codes: [] };

// --- messages and small DOM helpers (text only) ----------------------------------------------------------------------

function showStep(id) {
  for (const section of document.querySelectorAll("[data-step]")) section.hidden = section.id !== id;
}

function done(section) {
  $(section).removeAttribute("aria-busy");
}

// say() good news, fail() bad news: in the section of the action under way (messages.at), until the next.
const messages = sectionMessages(".subpanel, .panel");
const { say, fail, clear: clearMessages } = messages;

/** An exception of an action: a network failure's own words, else app.js's generic message. */
function report(error, near) {
  if (error instanceof NetworkError) fail(error.message, near);
  else showError(error);
}

/** Show an error under one field (its slot is `${id}-error`, linked by aria-describedby) and focus it. */
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

/** The field a 422 validation problem is about (its loc's last part), when the form has it. */
function invalidField(form, result) {
  const errors = result.data && Array.isArray(result.data.errors) ? result.data.errors : [];
  for (const error of errors) {
    const name = Array.isArray(error.loc) ? error.loc[error.loc.length - 1] : "";
    const field = name && form.elements.namedItem(name);
    if (field instanceof HTMLInputElement) return field;
  }
  return null;
}

/** Run a form's handler on submit: one at a time, messages cleared, its buttons busy meanwhile. */
function onSubmit(form, handler) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (form.getAttribute("aria-busy") === "true") return;
    clearFieldErrors(form);
    clearMessages();
    messages.at(form);
    const buttons = [...form.querySelectorAll("button")];
    form.setAttribute("aria-busy", "true");
    for (const button of buttons) button.disabled = true;
    try {
      await handler(form, event.submitter);
    } catch (error) {
      report(error, form);
    } finally {
      form.removeAttribute("aria-busy");
      for (const button of buttons) button.disabled = false;
    }
  });
}

/** Run a button's action: one at a time, messages cleared, the button busy meanwhile. */
async function busy(button, action) {
  if (button.getAttribute("aria-busy") === "true") return;
  clearMessages();
  messages.at(button);
  button.setAttribute("aria-busy", "true");
  button.disabled = true;
  try {
    await action();
  } catch (error) {
    report(error, button);
  } finally {
    button.removeAttribute("aria-busy");
    if (button.isConnected) button.disabled = false;
  }
}

/** Hand the person a file (the export, the backup codes) made in the page. */
function download(filename, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = el("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), BLOB_LIFETIME_MS);
}

async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
    say(`${what} copied to the clipboard.`);
  } catch {
    fail(`Your browser did not let this page copy. Select the ${what.toLowerCase()} and copy them yourself.`);
  }
}

function deviceName(row) {
  if (row.device_name) return row.device_name;
  const agent = row.user_agent || "";
  const browser = /Edg\//.test(agent)
    ? "Edge"
    : /Firefox\//.test(agent)
      ? "Firefox"
      : /Chrom(e|ium)\//.test(agent)
        ? "Chrome"
        : /Safari\//.test(agent)
          ? "Safari"
          : "";
  const system = /Android/.test(agent)
    ? "Android"
    : /iPhone|iPad/.test(agent)
      ? "iOS"
      : /Windows/.test(agent)
        ? "Windows"
        : /Mac OS X/.test(agent)
          ? "macOS"
          : /Linux/.test(agent)
            ? "Linux"
            : "";
  if (browser && system) return `${browser} on ${system}`;
  return browser || system || "Unknown device";
}

// --- Account ----------------------------------------------------------------------------------------------

function renderUser(user) {
  state.user = user;
  $("account-email").textContent = user.email_verified ? user.email : `${user.email} (not confirmed yet)`;
  $("account-since").textContent = day(user.created_at);
  $("display-name").value = user.display_name || "";
}

function wireName() {
  onSubmit($("name-form"), async (form) => {
    const input = $("display-name");
    const name = input.value.trim();
    const result = await call("PATCH", "/users/me", { body: { display_name: name || null } });
    if (!result.ok) {
      if (result.status === 422) fieldError(input, "Use at most 80 characters.");
      else fail(problemText(result));
      return;
    }
    renderUser(result.data);
    say(name ? `Your display name is now ${name}.` : "Your display name has been removed.");
  });
}

// --- Security: password and email -------------------------------------------------------------------------

function wirePassword() {
  onSubmit($("password-form"), async (form) => {
    const current = $("current-password");
    const next = $("new-password");
    if (!current.value) return fieldError(current, "Enter your current password.");
    if (!next.value) return fieldError(next, "Enter a new password.");
    const result = await call("PUT", "/users/me/password", {
      body: { current_password: current.value, new_password: next.value },
    });
    const code = codeOf(result);
    if (result.ok) {
      form.reset();
      const ended = Number(result.data && result.data.sessions_ended) || 0;
      say(
        ended
          ? `Your password has been changed. ${plural(ended, "other device")} signed out.`
          : "Your password has been changed.",
      );
      await loadDevices();
    } else if (PASSWORD_CODES.has(code)) {
      fieldError(next, problemText(result));
    } else if (code === "reauthentication_failed") {
      current.value = "";
      fieldError(current, problemText(result));
    } else if (code === "validation_failed") {
      const field = invalidField(form, result) || next;
      fieldError(field, field === current ? "Enter your current password." : "That password is too long.");
    } else {
      fail(problemText(result));
    }
  });
}

function wireEmail() {
  onSubmit($("email-form"), async (form) => {
    const email = $("new-email");
    const password = $("email-password");
    const address = email.value.trim();
    if (!address || !email.checkValidity()) return fieldError(email, "Enter the new email address, like name@example.com.");
    if (!password.value) return fieldError(password, "Enter your password.");
    const result = await call("POST", "/users/me/email", {
      body: { new_email: address, password: password.value },
    });
    const code = codeOf(result);
    if (result.ok) {
      form.reset();
      say(`We sent a confirmation link to ${address}. ${result.data.detail}`);
    } else if (code === "email_unchanged") {
      fieldError(email, problemText(result));
    } else if (code === "reauthentication_failed") {
      password.value = "";
      fieldError(password, problemText(result));
    } else if (code === "validation_failed") {
      const field = invalidField(form, result) || email;
      fieldError(field, field === email ? "Enter a valid email address, like name@example.com." : "Enter your password.");
    } else {
      fail(problemText(result));
    }
  });
}

// --- Security: two-step verification ----------------------------------------------------------------------

function mfaPanel(which) {
  for (const id of ["mfa-off", "mfa-setup", "mfa-on"]) $(id).hidden = id !== which;
}

function renderMfa(status) {
  state.mfa = status;
  const on = Boolean(status.enabled);
  $("mfa-state").textContent = on
    ? `On${status.confirmed_at ? ` since ${day(status.confirmed_at)}` : ""}: signing in asks for a code from your app.`
    : "Off: signing in needs only your password.";
  $("mfa-state").className = on ? "state on" : "state off";
  const left = Number(status.backup_codes_remaining) || 0;
  $("mfa-remaining").textContent = `${plural(left, "unused backup code")} left.`;
  $("delete-code-field").hidden = !on;
  if ($("backup-codes").hidden) mfaPanel(on ? "mfa-on" : "mfa-off");
}

async function loadMfa() {
  const result = await call("GET", "/auth/mfa");
  done("mfa-section");
  if (!result.ok) {
    $("mfa-state").textContent = `Two-step verification could not be loaded: ${problemText(result)}`;
    return;
  }
  renderMfa(result.data);
}

function reauthHint(result) {
  // The API asks for a sign-in within the last minutes before adding a way into the account.
  if (codeOf(result) !== "recent_sign_in_required") return problemText(result);
  return `${problemText(result)} Sign out, sign in again, and come back to this page.`;
}

function showBackupCodes(codes) {
  state.codes = codes;
  $("backup-code-list").replaceChildren(...codes.map((code) => el("li", {}, el("code", {}, code))));
  mfaPanel("");
  $("backup-codes").hidden = false;
  $("backup-codes").focus();
}

function wireMfa() {
  const start = $("mfa-start");
  start.addEventListener("click", () =>
    busy(start, async () => {
      const result = await call("POST", "/auth/mfa/totp");
      if (!result.ok) {
        if (codeOf(result) === "mfa_already_enabled") await loadMfa();
        fail(reauthHint(result));
        return;
      }
      const enrolment = result.data;
      $("mfa-qr").src = enrolment.qr_svg || enrolment.qr_png;
      $("mfa-secret").textContent = enrolment.secret;
      $("mfa-uri").href = enrolment.otpauth_uri;
      $("mfa-uri-text").textContent = enrolment.otpauth_uri;
      $("mfa-confirm-form").reset();
      clearFieldErrors($("mfa-confirm-form"));
      mfaPanel("mfa-setup");
      $("mfa-setup-title").focus();
    }),
  );
  $("mfa-copy-secret").addEventListener("click", () => copy($("mfa-secret").textContent, "Key"));
  $("mfa-cancel").addEventListener("click", () => {
    // The pending secret stays unconfirmed on the server (starting again replaces it): nothing to undo.
    $("mfa-qr").removeAttribute("src");
    $("mfa-secret").textContent = "";
    mfaPanel("mfa-off");
    clearMessages();
    start.focus();
  });
  onSubmit($("mfa-confirm-form"), async () => {
    const input = $("mfa-code");
    const code = input.value.replace(/\s+/g, "");
    if (!/^\d{6}$/.test(code)) return fieldError(input, "Enter the 6-digit code your app shows now.");
    const result = await call("POST", "/auth/mfa/totp/confirm", { body: { code } });
    const problem = codeOf(result);
    if (result.ok) {
      if (result.data.tokens) saveSession(result.data.tokens); // this session is now at aal2
      $("mfa-qr").removeAttribute("src");
      $("mfa-secret").textContent = "";
      showBackupCodes(result.data.backup_codes);
      say("Two-step verification is on. Save your backup codes now.");
      await loadMfa();
    } else if (problem === "invalid_mfa_code") {
      fieldError(input, problemText(result));
    } else if (problem === "mfa_enrolment_not_found" || problem === "mfa_enrolment_changed") {
      mfaPanel("mfa-off");
      fail(`${problemText(result)} Start the setup again.`);
    } else if (problem === "mfa_already_enabled") {
      await loadMfa();
      fail(problemText(result));
    } else {
      fail(problemText(result));
    }
  });
  $("codes-copy").addEventListener("click", () => copy(state.codes.join("\n"), "Backup codes"));
  $("codes-download").addEventListener("click", () => {
    const text =
      "Cinema Online backup codes\n" +
      `${state.user ? state.user.email : ""}\n` +
      "Each code signs you in once. Keep them somewhere safe.\n\n" +
      `${state.codes.join("\n")}\n`;
    download("cinema-online-backup-codes.txt", text, "text/plain");
  });
  $("codes-done").addEventListener("click", () => {
    state.codes = [];
    $("backup-code-list").replaceChildren();
    $("backup-codes").hidden = true;
    clearMessages();
    mfaPanel(state.mfa && state.mfa.enabled ? "mfa-on" : "mfa-off");
    $("mfa-title").setAttribute("tabindex", "-1");
    $("mfa-title").focus();
  });
  onSubmit($("mfa-manage-form"), async (form, submitter) => {
    const password = $("mfa-manage-password");
    const input = $("mfa-manage-code");
    const action = submitter && submitter.value === "disable" ? "disable" : "regenerate";
    const code = input.value.replace(/\s+/g, "");
    if (!code) return fieldError(input, "Enter a code from your app, or one of your backup codes.");
    const body = { code };
    if (password.value) body.password = password.value;
    const result =
      action === "disable"
        ? await call("DELETE", "/auth/mfa/totp", { body })
        : await call("POST", "/auth/mfa/backup-codes", { body });
    const problem = codeOf(result);
    if (result.ok) {
      form.reset();
      if (action === "disable") {
        say("Two-step verification is off. Signing in needs only your password now.");
        await loadMfa();
        $("mfa-start").focus();
      } else {
        showBackupCodes(result.data.backup_codes);
        say("New backup codes are ready; the old ones no longer work. Save these now.");
        await loadMfa();
      }
    } else if (problem === "reauthentication_failed") {
      password.value = "";
      fieldError(password, problemText(result));
    } else if (problem === "mfa_required" || problem === "invalid_mfa_code") {
      fieldError(input, problemText(result));
    } else if (problem === "validation_failed") {
      fieldError(invalidField(form, result) || input, "Check this field: it is too short or too long.");
    } else {
      if (problem === "mfa_not_enabled") await loadMfa();
      fail(problemText(result));
    }
  });
}

// --- Security: signed-in devices ----------------------------------------------------------------------------

async function loadDevices() {
  const result = await call("GET", "/users/me/sessions");
  done("devices-section");
  const list = $("device-list");
  if (!result.ok) {
    list.replaceChildren(el("li", { class: "muted" }, `Your devices could not be loaded: ${problemText(result)}`));
    return;
  }
  const rows = [...result.data].sort((a, b) => Number(b.current) - Number(a.current));
  list.replaceChildren(...rows.map(deviceRow));
}

function deviceRow(row) {
  const name = deviceName(row);
  const details = [
    `Last active ${dateTime(row.last_seen_at)}`,
    `signed in ${dateTime(row.created_at)}`,
    row.ip ? `from ${row.ip}` : "",
  ].filter(Boolean);
  const item = el(
    "li",
    { class: "row", "data-session": row.id },
    el(
      "div",
      { class: "item-main" },
      el("strong", {}, name),
      row.current ? el("span", { class: "tag" }, "This device") : null,
      el("span", { class: "muted detail" }, details.join(" · ")),
    ),
  );
  if (!row.current) {
    const button = el("button", { type: "button", class: "secondary small", "aria-label": `Sign out ${name}` }, "Sign out");
    button.addEventListener("click", () =>
      busy(button, async () => {
        const result = await call("DELETE", `/users/me/sessions/${encodeURIComponent(row.id)}`);
        if (result.ok || result.status === 404) {
          const next = item.nextElementSibling || item.previousElementSibling;
          item.remove();
          say(`${name} has been signed out.`, $("device-list"));
          const focusable = next && next.querySelector("button");
          (focusable || $("sign-out-everywhere")).focus();
        } else {
          fail(problemText(result));
        }
      }),
    );
    item.append(button);
  }
  return item;
}

function wireSignOutEverywhere() {
  const button = $("sign-out-everywhere");
  button.addEventListener("click", () =>
    busy(button, async () => {
      const result = await call("POST", "/auth/logout", { body: { scope: "global" } });
      if (!result.ok && result.status !== 401) {
        fail(problemText(result));
        return;
      }
      clearSession();
      mountShell({ nav: "account" });
      showStep("signed-out");
      say("You have been signed out on every device, this one included.", null);
    }),
  );
}

// --- Security: linked sign-in -------------------------------------------------------------------------------

async function loadIdentities() {
  const result = await call("GET", "/users/me/identities");
  done("identities-section");
  const list = $("identity-list");
  if (!result.ok) {
    list.replaceChildren(el("li", { class: "muted" }, `Your linked sign-ins could not be loaded: ${problemText(result)}`));
    return;
  }
  const linked = new Map(result.data.map((identity) => [identity.provider, identity]));
  const providers = [...PROVIDERS];
  for (const provider of linked.keys()) {
    if (!providers.some(([id]) => id === provider)) providers.push([provider, PROVIDER_NAMES[provider] || provider]);
  }
  list.replaceChildren(...providers.map(([id, label]) => identityRow(id, label, linked.get(id))));
}

function identityRow(provider, label, identity) {
  const text = identity
    ? `Linked${identity.email ? ` as ${identity.email}` : ""} since ${day(identity.created_at)}`
    : "Not linked";
  const item = el(
    "li",
    { class: "row", "data-provider": provider },
    el("div", { class: "item-main" }, el("strong", {}, label), el("span", { class: "muted detail" }, text)),
  );
  if (identity && (provider === "google" || provider === "github")) {
    const button = el("button", { type: "button", class: "secondary small" }, `Unlink ${label}`);
    button.addEventListener("click", () =>
      busy(button, async () => {
        const result = await call("DELETE", `/auth/oauth/${provider}`);
        if (!result.ok) {
          fail(reauthHint(result));
          return;
        }
        say(`${label} is no longer linked to your account.`, $("identity-list"));
        await loadIdentities();
      }),
    );
    item.append(button);
  } else if (!identity) {
    const button = el("button", { type: "button", class: "secondary small" }, `Link ${label}`);
    button.addEventListener("click", () =>
      busy(button, async () => {
        const result = await call("POST", `/auth/oauth/${provider}/link`, { body: { redirect_to: "/account/" } });
        if (!result.ok) {
          fail(reauthHint(result));
          return;
        }
        window.location.assign(result.data.authorize_url);
      }),
    );
    item.append(button);
  }
  return item;
}

// --- Streams now playing ------------------------------------------------------------------------------------

async function loadStreams() {
  const result = await call("GET", "/streaming/sessions");
  done("streams-section");
  const list = $("stream-list");
  if (!result.ok) {
    list.replaceChildren(el("li", { class: "muted" }, `Streams could not be loaded: ${problemText(result)}`));
    return;
  }
  if (!result.data.length) {
    list.replaceChildren(el("li", { class: "muted empty" }, "Nothing is playing on your account right now."));
    return;
  }
  list.replaceChildren(...result.data.map(streamRow));
}

function streamRow(stream) {
  const name = stream.device_name || `A ${stream.device_class || "device"}`;
  const item = el(
    "li",
    { class: "row", "data-stream": stream.session_id },
    el(
      "div",
      { class: "item-main" },
      el("strong", {}, name),
      stream.this_profile ? el("span", { class: "tag" }, "This profile") : null,
      el("span", { class: "muted detail" }, `Playing since ${dateTime(stream.started_at)}`),
    ),
  );
  const button = el("button", { type: "button", class: "secondary small", "aria-label": `End the stream on ${name}` }, "End");
  button.addEventListener("click", () =>
    busy(button, async () => {
      const result = await call("DELETE", `/streaming/sessions/${encodeURIComponent(stream.session_id)}`);
      if (!result.ok && result.status !== 404) {
        fail(problemText(result));
        return;
      }
      say(`The stream on ${name} has ended.`, $("stream-list"));
      await loadStreams();
      $("streams-refresh").focus();
    }),
  );
  item.append(button);
  return item;
}

// --- Plan and billing ---------------------------------------------------------------------------------------

async function loadPlan() {
  const result = await call("GET", "/payments/subscription");
  done("plan-section");
  const box = $("plan-summary");
  if (!result.ok) {
    box.replaceChildren(el("p", { class: "muted" }, `Your plan could not be loaded: ${problemText(result)}`));
    return;
  }
  const plan = result.data;
  const live = !plan.is_free && LIVE.has(plan.status);
  const rows = [
    ["Plan", plan.plan_name],
    ["Status", STATUS_TEXT[plan.status] || plan.status],
  ];
  if (!plan.is_free && plan.amount_minor !== null && plan.amount_minor !== undefined && plan.currency) {
    rows.push(["Price", `${money(plan.amount_minor, plan.currency)} per ${plan.interval === "year" ? "year" : "month"}`]);
  }
  if (live && plan.current_period_end) {
    rows.push([plan.cancel_at_period_end ? "Ends on" : "Renews on", day(plan.current_period_end)]);
  }
  if (plan.limits) {
    const screens = Number(plan.limits.max_streams) || 0;
    rows.push(["Screens", `${plural(screens, "screen")} at once`]);
  }
  box.replaceChildren(
    el("dl", { class: "facts" }, ...rows.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)])),
  );
}

// --- Your data: export and delete -----------------------------------------------------------------------------

function wireExport() {
  const button = $("export");
  button.addEventListener("click", () =>
    busy(button, async () => {
      const result = await call("GET", "/users/me/export");
      if (!result.ok) {
        fail(problemText(result));
        return;
      }
      download("cinema-online-data.json", `${JSON.stringify(result.data, null, 2)}\n`, "application/json");
      say("Your data has been downloaded as cinema-online-data.json.");
    }),
  );
}

function wireDelete() {
  onSubmit($("delete-form"), async (form) => {
    const refusal = $("delete-refusal");
    refusal.hidden = true;
    refusal.replaceChildren();
    const password = $("delete-password");
    const input = $("delete-code");
    const confirm = $("delete-confirm");
    if (!confirm.checked) return fieldError(confirm, "Tick this box to confirm you want the account deleted.");
    const body = {};
    if (password.value) body.password = password.value;
    const code = input.value.replace(/\s+/g, "");
    if (code) body.code = code;
    const result = await call("DELETE", "/users/me", { body });
    const problem = codeOf(result);
    if (result.ok) {
      clearSession();
      mountShell({ nav: "account" });
      showStep("deleted");
      say("Your account has been deleted.", null);
      $("deleted-title").setAttribute("tabindex", "-1");
      $("deleted-title").focus();
    } else if (problem === "subscription_active") {
      refusal.replaceChildren(
        el("p", {}, problemText(result)),
        el("p", {}, el("a", { href: "/account/billing/" }, "Go to Plan and billing to cancel your plan")),
      );
      refusal.hidden = false;
      refusal.focus();
    } else if (problem === "reauthentication_failed") {
      password.value = "";
      fieldError(password, problemText(result));
    } else if (problem === "mfa_required" || problem === "invalid_mfa_code") {
      $("delete-code-field").hidden = false;
      fieldError(input, problemText(result));
    } else if (problem === "validation_failed") {
      fieldError(invalidField(form, result) || password, "Check this field: it is too short or too long.");
    } else {
      fail(problemText(result));
    }
  });
}

// --- the page -------------------------------------------------------------------------------------------------

/** The signed-in account, or null when the session no longer works (then the page says so). */
async function signedInUser() {
  const result = await call("GET", "/users/me");
  if (result.ok) return result.data;
  if (result.status === 401) {
    clearSession();
    mountShell({ nav: "account" });
    return null;
  }
  throw new Error(`GET /users/me answered ${result.status}`);
}

async function main() {
  wireName();
  wirePassword();
  wireEmail();
  wireMfa();
  wireSignOutEverywhere();
  wireExport();
  wireDelete();
  const refresh = $("streams-refresh");
  refresh.addEventListener("click", () => busy(refresh, loadStreams));

  const user = await signedInUser();
  if (!user) {
    showStep("signed-out");
    fail("Your session has ended. Sign in again to manage your account.", null);
    return;
  }
  renderUser(user);
  showStep("settings");
  // Each section loads on its own: one failing leaves the others working.
  const sections = [loadMfa, loadDevices, loadIdentities, loadStreams, loadPlan];
  const results = await Promise.allSettled(sections.map((load) => load()));
  for (const result of results) if (result.status === "rejected") report(result.reason, null);
}

startPage(main, { require: "signin", nav: "account" });
