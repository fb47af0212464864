// The profile picker (/profiles/?next=...): "Who's watching?" (a PIN prompt for locked profiles; choosing a
// profile swaps the session's tokens for the profile-scoped ones and goes on to ?next= or Home), and the
// manage mode (?manage=1): add (kids or not), rename, picture upload (presigned, straight to storage or
// Cloudinary, then confirmed), PIN set/remove (with the account password), delete.

import {
  api,
  apiOk,
  ApiError,
  avatarFor,
  el,
  loadSession,
  profiles as loadProfiles,
  query,
  requireSignIn,
  sameSitePath,
  saveSession,
  showError,
  signOut,
  startPage,
} from "/assets/app.js";

const $ = (id) => document.getElementById(id);
let list = [];
let managing = false;
let editing = null; // the profile in the edit dialog

function say(text) {
  $("error").textContent = "";
  $("status").textContent = "";
  setTimeout(() => {
    $("status").textContent = text;
  }, 30);
}

function fail(text) {
  $("status").textContent = "";
  $("error").textContent = "";
  setTimeout(() => {
    $("error").textContent = text;
  }, 30);
}

function nextPath() {
  const next = sameSitePath(query("next"));
  return next && !next.startsWith("/profiles") ? next : "/";
}

// --- the grid -------------------------------------------------------------------------------------------

function tile(profile) {
  const badges = el(
    "span",
    { class: "tile-badges" },
    profile.is_kids ? el("span", { class: "badge kids", text: "Kids" }) : null,
    profile.has_pin ? el("span", { class: "badge", text: "PIN", title: "Locked with a PIN" }) : null,
  );
  const extra = [profile.is_kids ? "kids profile" : "", profile.has_pin ? "locked with a PIN" : ""].filter(Boolean);
  const name = managing ? `Edit ${profile.name}` : profile.name;
  const button = el(
    "button",
    {
      type: "button",
      class: "profile-tile",
      "aria-label": extra.length ? `${name} (${extra.join(", ")})` : name,
      dataset: { profile: profile.id },
    },
    avatarFor(profile, 112),
    el("span", { class: "tile-name", text: profile.name }),
    badges,
  );
  button.addEventListener("click", () => (managing ? openEdit(profile) : choose(profile)));
  return el("li", {}, button);
}

function render() {
  const grid = $("profiles");
  const items = list.map(tile);
  if (managing && list.length < 5) {
    const add = el(
      "button",
      { type: "button", class: "profile-tile add", id: "add-profile" },
      el("span", { class: "avatar", "aria-hidden": "true", text: "+" }),
      el("span", { class: "tile-name", text: "Add profile" }),
      el("span", { class: "tile-badges" }),
    );
    add.addEventListener("click", openAdd);
    items.push(el("li", {}, add));
  }
  grid.replaceChildren(...items);
  grid.removeAttribute("aria-busy");
  document.body.classList.toggle("managing", managing);
  $("page-title").textContent = managing ? "Manage profiles" : "Who’s watching?";
  document.title = `${managing ? "Manage profiles" : "Who’s watching?"} · Cinema Online`;
  const toggle = $("manage");
  toggle.textContent = managing ? "Done" : "Manage profiles";
  toggle.setAttribute("aria-pressed", String(managing));
}

async function refresh() {
  list = await loadProfiles({ fresh: true });
  render();
}

// --- choosing a profile ---------------------------------------------------------------------------------

async function select(profile, pin) {
  return api("POST", `/users/me/profiles/${profile.id}/select`, { body: pin ? { pin } : {} });
}

async function choose(profile) {
  if (profile.has_pin) {
    openPin(profile);
    return;
  }
  const result = await select(profile);
  if (result.ok) {
    saveSession(result.data);
    window.location.assign(nextPath());
  } else if (result.code === "pin_required") {
    openPin(profile);
  } else {
    fail(new ApiError(result).message);
  }
}

let pinFor = null;

function openPin(profile) {
  pinFor = profile;
  const form = $("pin-form");
  form.reset();
  $("pin-error").textContent = "";
  $("pin").removeAttribute("aria-invalid");
  $("pin-for").textContent = `${profile.name} is locked with a PIN.`;
  $("pin-dialog").showModal();
  $("pin").focus();
}

function fieldError(input, text) {
  const slot = $(`${input.id}-error`);
  if (slot) slot.textContent = text;
  input.setAttribute("aria-invalid", "true");
  input.focus();
}

function clearErrors(scope) {
  for (const slot of scope.querySelectorAll(".field-error")) slot.textContent = "";
  for (const input of scope.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const top = scope.querySelector(".notice.error");
  if (top) top.textContent = "";
}

/** A form's submit: one at a time, its buttons disabled meanwhile, errors shown. */
function onSubmit(form, handler) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (form.getAttribute("aria-busy") === "true") return;
    clearErrors(form);
    form.setAttribute("aria-busy", "true");
    const buttons = [...form.querySelectorAll("button")];
    for (const button of buttons) button.disabled = true;
    try {
      await handler(form, event.submitter);
    } catch (error) {
      showError(error);
    } finally {
      form.removeAttribute("aria-busy");
      for (const button of buttons) button.disabled = false;
    }
  });
}

function wirePin() {
  onSubmit($("pin-form"), async () => {
    const input = $("pin");
    const pin = input.value.trim();
    if (!/^[0-9]{4}$/.test(pin)) {
      fieldError(input, "Enter the profile’s 4-digit PIN.");
      return;
    }
    const result = await select(pinFor, pin);
    if (result.ok) {
      saveSession(result.data);
      $("pin-dialog").close();
      window.location.assign(nextPath());
      return;
    }
    input.value = "";
    fieldError(input, new ApiError(result).message);
  });
}

// --- manage: add, rename, picture, PIN, delete -------------------------------------------------------------

function openAdd() {
  const form = $("add-form");
  form.reset();
  clearErrors(form);
  $("add-dialog").showModal();
  $("add-name").focus();
}

function wireAdd() {
  onSubmit($("add-form"), async (form) => {
    const input = $("add-name");
    const name = input.value.trim();
    if (!name) {
      fieldError(input, "Give the profile a name.");
      return;
    }
    const result = await api("POST", "/users/me/profiles", { body: { name, is_kids: $("add-kids").checked } });
    if (!result.ok) {
      fieldError(input, new ApiError(result).message);
      return;
    }
    $("add-dialog").close();
    await refresh();
    say(`${result.data.name} was added.`);
    const added = document.querySelector(`[data-profile="${result.data.id}"]`);
    if (added) added.focus();
  });
}

function fillEdit(profile) {
  editing = profile;
  $("edit-title").textContent = `Edit ${profile.name}`;
  $("edit-name").value = profile.name;
  $("edit-kids").checked = profile.is_kids;
  $("edit-avatar").replaceChildren(avatarFor(profile, 80));
  $("avatar-remove").hidden = !profile.avatar_url;
  $("pin-state").textContent = profile.has_pin
    ? "This profile is locked with a PIN. Set a new one or remove it."
    : "No PIN: anyone on this account can open this profile.";
  $("pin-remove").hidden = !profile.has_pin;
  $("delete-open").textContent = `Delete ${profile.name}`;
  $("delete-open").hidden = list.length <= 1;
}

function openEdit(profile) {
  const dialog = $("edit-dialog");
  for (const form of dialog.querySelectorAll("form")) form.reset();
  clearErrors(dialog);
  $("pin-code-field").hidden = true;
  fillEdit(profile);
  dialog.showModal();
  $("edit-name").focus();
}

async function updated(profile, message) {
  await refresh();
  const fresh = list.find((p) => p.id === profile.id) || profile;
  fillEdit(fresh);
  say(message);
}

function editFail(result) {
  const box = $("edit-error");
  box.textContent = "";
  setTimeout(() => {
    box.textContent = new ApiError(result).message;
  }, 30);
}

function wireEdit() {
  onSubmit($("rename-form"), async () => {
    const input = $("edit-name");
    const name = input.value.trim();
    if (!name) {
      fieldError(input, "Give the profile a name.");
      return;
    }
    const body = {};
    if (name !== editing.name) body.name = name;
    if ($("edit-kids").checked !== editing.is_kids) body.is_kids = $("edit-kids").checked;
    if (!Object.keys(body).length) {
      say("Nothing to change.");
      return;
    }
    const result = await api("PATCH", `/users/me/profiles/${editing.id}`, { body });
    if (!result.ok) {
      if (result.code === "profile_name_taken" || result.code === "validation_failed") fieldError(input, new ApiError(result).message);
      else editFail(result);
      return;
    }
    await updated(result.data, `Saved ${result.data.name}.`);
  });

  $("avatar-file").addEventListener("change", async (event) => {
    const input = event.target;
    const file = input.files && input.files[0];
    $("avatar-error").textContent = "";
    if (!file) return;
    input.disabled = true;
    try {
      await uploadAvatar(editing, file);
      await updated(editing, "The new picture is in place.");
    } catch (error) {
      if (error instanceof ApiError || error instanceof UploadError) fieldError(input, error.message);
      else showError(error);
    } finally {
      input.disabled = false;
      input.value = "";
    }
  });

  $("avatar-remove").addEventListener("click", async () => {
    try {
      await apiOk("DELETE", `/users/me/profiles/${editing.id}/avatar`);
      await updated(editing, "The picture was removed.");
    } catch (error) {
      showError(error);
    }
  });

  onSubmit($("pin-set-form"), async (form, submitter) => {
    const removing = submitter && submitter.dataset.action === "remove";
    const pinInput = $("new-pin");
    const password = $("pin-password");
    const pin = pinInput.value.trim();
    if (!removing && !/^[0-9]{4}$/.test(pin)) {
      fieldError(pinInput, "A PIN is 4 digits.");
      return;
    }
    if (!password.value) {
      fieldError(password, "Enter your account password to change the PIN.");
      return;
    }
    const body = { pin: removing ? null : pin, password: password.value };
    const code = $("pin-code").value.trim();
    if (code) body.code = code;
    const result = await api("PUT", `/users/me/profiles/${editing.id}/pin`, { body });
    if (!result.ok) {
      if (result.code === "mfa_required" || result.code === "invalid_mfa_code") {
        $("pin-code-field").hidden = false;
        fieldError($("pin-code"), new ApiError(result).message);
        $("pin-password-error").textContent = "";
      } else if (result.code === "reauthentication_failed") {
        password.value = "";
        fieldError(password, new ApiError(result).message);
      } else if (result.code === "validation_failed") {
        fieldError(pinInput, "A PIN is 4 digits.");
      } else {
        editFail(result);
      }
      return;
    }
    form.reset();
    $("pin-code-field").hidden = true;
    await updated(result.data, removing ? "The PIN was removed." : "The PIN is set.");
  });

  $("delete-open").addEventListener("click", () => {
    $("confirm-title").textContent = `Delete ${editing.name}?`;
    $("delete-dialog").showModal();
  });

  onSubmit($("delete-form"), async () => {
    const gone = editing;
    const result = await api("DELETE", `/users/me/profiles/${gone.id}`);
    if (!result.ok) {
      $("delete-dialog").close();
      editFail(result);
      return;
    }
    const stored = loadSession();
    if (stored && stored.profile_id === gone.id) {
      // The session goes on without a profile: take tokens that say so.
      const renewed = await api("POST", "/auth/refresh", { auth: false, body: { refresh_token: stored.refresh_token } });
      if (renewed.ok) saveSession(renewed.data);
      else saveSession({ ...stored, profile_id: null });
    }
    $("delete-dialog").close();
    $("edit-dialog").close();
    await refresh();
    say(`${gone.name} was deleted.`);
    $("manage").focus();
  });
}

class UploadError extends Error {}

/** The presigned upload: ticket, the bytes straight to storage or Cloudinary, then the confirm call. */
async function uploadAvatar(profile, file) {
  const types = ["image/png", "image/jpeg", "image/webp"];
  if (!types.includes(file.type)) throw new UploadError("Choose a PNG, JPEG or WebP image.");
  if (file.size > 2 * 1024 * 1024) throw new UploadError("That image is over 2 MB. Choose a smaller one.");
  const ticket = await apiOk("POST", `/users/me/profiles/${profile.id}/avatar/upload`, {
    body: { content_type: file.type, size: file.size },
  });
  let confirm;
  try {
    if (ticket.backend === "cloudinary") {
      const form = new FormData();
      for (const [key, value] of Object.entries(ticket.fields || {})) form.append(key, value);
      form.append("file", file);
      const response = await fetch(ticket.upload_url, { method: "POST", body: form });
      if (!response.ok) throw new UploadError("The image service refused the upload. Try another image.");
      const answer = await response.json();
      confirm = { public_id: answer.public_id, version: answer.version, signature: answer.signature };
    } else {
      const response = await fetch(ticket.upload_url, {
        method: ticket.method || "PUT",
        headers: ticket.headers || {},
        body: file,
      });
      if (!response.ok) throw new UploadError("The upload failed. Try again.");
      confirm = { key: ticket.key };
    }
  } catch (error) {
    if (error instanceof UploadError) throw error;
    throw new UploadError("The upload did not get through. Check your connection and try again.");
  }
  await apiOk("PUT", `/users/me/profiles/${profile.id}/avatar`, { body: confirm });
}

// --- the page --------------------------------------------------------------------------------------------

function wireDialogs() {
  for (const button of document.querySelectorAll("dialog [data-close]")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }
  $("edit-dialog").addEventListener("close", () => {
    const back = editing && document.querySelector(`[data-profile="${editing.id}"]`);
    if (back) back.focus();
  });
}

startPage(
  async () => {
    if (!requireSignIn()) return;
    managing = query("manage") === "1";
    wireDialogs();
    wirePin();
    wireAdd();
    wireEdit();
    $("manage").addEventListener("click", () => {
      managing = !managing;
      const url = new URL(window.location.href);
      if (managing) url.searchParams.set("manage", "1");
      else url.searchParams.delete("manage");
      window.history.replaceState(null, "", url.pathname + url.search);
      render();
    });
    $("sign-out").addEventListener("click", signOut);
    await refresh();
  },
  { require: "signin", minimal: true },
);
