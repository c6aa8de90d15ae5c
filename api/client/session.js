// Who is signed in: the sign-in and sign-up form, entering the app, renewing tokens, signing out.

import { connect } from "./connection.js";
import { $, showError } from "./dom.js";
import { emit } from "./hooks.js";
import { clearLink } from "./links.js";
import { followLink } from "./routing.js";
import { api, config, embed, getLive, setLive, state } from "./state.js";

let authMode = "login";
let refreshTimer = null;
let signingOut = false;

function setAuthMode(mode) {
  authMode = mode;
  for (const tab of document.querySelectorAll("[data-auth-mode]")) tab.setAttribute("aria-selected", String(tab.dataset.authMode === mode));
  for (const field of document.querySelectorAll(".signup-only")) field.hidden = mode !== "signup";
  $("auth-submit").textContent = mode === "signup" ? "Create account" : "Sign in";
  $("auth-form").password.autocomplete = mode === "signup" ? "new-password" : "current-password";
}

async function submitAuth(event) {
  event.preventDefault();
  const form = event.target;
  const fields = { email: form.email.value.trim(), password: form.password.value };
  if (authMode === "signup") Object.assign(fields, { username: form.username.value.trim() || fields.email.split("@")[0], role: form.role.value });
  showError("auth-error", null);
  try {
    await api.signIn(authMode, fields);
    form.reset();
    await enterApp();
  } catch (error) {
    showError("auth-error", error);
  }
}

function showAuth() {
  $("app-view").hidden = true;
  $("auth-view").hidden = false;
  $("auth-form").email.focus();
}

async function signOut() {
  if (signingOut) return; // an expired session can ask again while the modules let go
  signingOut = true;
  await emit("signing-out"); // while the tokens still work (notify.js deletes this browser's push subscription)
  await getLive()?.stop();
  setLive(null);
  api.forget();
  clearLink(); // the next person to sign in here starts from the list
  location.reload();
}

/**
 * Renew the access token before it expires, so API calls and MQTT reconnects keep working.
 * A refused refresh token ends the session (api.onExpired); other failures are retried.
 */
export function scheduleRefresh() {
  clearTimeout(refreshTimer);
  const ttl = JSON.parse(atob(api.session.access_token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).exp * 1000 - Date.now();
  refreshTimer = setTimeout(() => api.refresh().then(scheduleRefresh, (error) => {
    if (error.status !== 401) refreshTimer = setTimeout(scheduleRefresh, 5_000);
  }), Math.max(5_000, ttl * 0.8));
}

/** Signed in: show the app, connect, let the modules load ("start"), then open what the address asks. */
export async function enterApp() {
  state.me = api.session.user;
  state.users.set(state.me.id, state.me);
  $("auth-view").hidden = true;
  $("embed-view").hidden = true;
  $("app-view").hidden = false;
  $("logout").hidden = embed.on; // the host page owns an embedded session
  $("me").textContent = `${state.me.username} (${state.me.role})`;
  emit("signed-in", state.me);
  api.onExpired = embed.on ? () => embed.tell({ type: "mqchat:token-needed" }) : signOut;
  scheduleRefresh();
  await connect();
  await emit("start");
  await followLink({ landing: true });
}

/** On page load (not embedded): resume the stored session, or ask to sign in. */
export function resume() {
  if (api.signedIn) enterApp().catch(() => { api.forget(); showAuth(); });
  else showAuth();
}

export function wire() {
  for (const tab of document.querySelectorAll("[data-auth-mode]")) tab.addEventListener("click", () => setAuthMode(tab.dataset.authMode));
  $("auth-form").addEventListener("submit", submitAuth);
  $("logout").addEventListener("click", signOut);
  config.then(({ signup }) => { $("tab-signup").hidden = signup === "closed"; }, () => {});
}
