// Presence: mine follows the tab (online, away when hidden, offline when it closes); others' redraw their dots.

import { on, render } from "./hooks.js";
import { getLive, state } from "./state.js";

function presenceEvent(presence) {
  state.presence.set(presence.user_id, presence.status);
  render("list");
  if (state.openId) render("head");
}

export function wire() {
  on("presence", presenceEvent);
  document.addEventListener("visibilitychange", () => getLive()?.setPresence(document.visibilityState === "hidden" ? "away" : "online"));
  window.addEventListener("pagehide", () => getLive()?.setPresence("offline"));
}
