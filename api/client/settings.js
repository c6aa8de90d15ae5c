// The email notifications dialog (`#/settings/email`, the digests' unsubscribe link): on or off.

import { $, showError } from "./dom.js";
import { clearLink, currentLink } from "./links.js";
import { api, state } from "./state.js";

export function showEmailSettings() {
  const on = state.me.preferences?.email_notifications !== false;
  $("email-settings-state").textContent = on
    ? "When messages wait for you while you are away, we email you a short digest."
    : "Email notifications are off: messages wait for you here.";
  $("email-toggle").textContent = on ? "Stop emails" : "Turn emails on";
  showError("email-settings-error", null);
  if (!$("email-settings").open) $("email-settings").showModal();
}

async function toggleEmail() {
  const on = state.me.preferences?.email_notifications !== false;
  try {
    state.me = await api.request("PATCH", "/api/auth/me", { preferences: { email_notifications: !on } });
    showEmailSettings();
  } catch (error) {
    showError("email-settings-error", error);
  }
}

export function wire() {
  $("email-toggle").addEventListener("click", toggleEmail);
  $("email-close").addEventListener("click", () => $("email-settings").close());
  $("email-settings").addEventListener("close", () => currentLink()?.settings && clearLink());
}
