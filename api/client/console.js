// The console (`#/admin/<tab>`): for admins every tab; for agents the live queue and canned replies (the REST
// side decides what each may change). Each tab is its own module; this one shows and hides the console and
// switches its tabs.

import { loadAgents, wire as wireAgents } from "./console-agents.js";
import { loadAudit, wire as wireAudit } from "./console-audit.js";
import { loadCanned, wire as wireCanned } from "./console-canned.js";
import { loadModeration, wire as wireModeration } from "./console-moderation.js";
import { loadQueue, wire as wireQueue } from "./console-queue.js";
import { loadReports, wire as wireReports } from "./console-reports.js";
import { loadRouting, wire as wireRouting } from "./console-routing.js";
import { loadTeams, wire as wireTeams } from "./console-teams.js";
import { loadUsers, wire as wireUsers } from "./console-users.js";
import { $ } from "./dom.js";
import { on } from "./hooks.js";
import { clearLink, linkConsole } from "./links.js";
import { state } from "./state.js";

export const TABS = {
  queue: loadQueue, agents: loadAgents, reports: loadReports, moderation: loadModeration, teams: loadTeams,
  routing: loadRouting, canned: loadCanned, users: loadUsers, audit: loadAudit,
};
const AGENT_TABS = ["queue", "canned"];

/** May the signed-in user open `tab`? */
function allowed(tab) {
  if (!TABS[tab]) return false;
  return state.me?.role === "admin" || (state.me?.role === "agent" && AGENT_TABS.includes(tab));
}

/** Show the console on `tab` and load it (nothing for a tab the user may not open). */
export function showConsole(tab) {
  if (!allowed(tab)) return;
  $("app-view").classList.add("consoling");
  $("console").hidden = false;
  for (const button of document.querySelectorAll("[data-console-tab]")) {
    const current = button.dataset.consoleTab === tab;
    button.setAttribute("aria-selected", String(current));
    $(`console-${button.dataset.consoleTab}`).hidden = !current;
  }
  TABS[tab]();
}

export function hideConsole() {
  $("app-view").classList.remove("consoling");
  $("console").hidden = true;
}

function signedIn(user) {
  $("open-console").hidden = !allowed("queue");
  $("open-console").textContent = user.role === "admin" ? "Admin" : "Desk";
  $("console-title").textContent = user.role === "admin" ? "Admin console" : "Desk console";
  for (const button of document.querySelectorAll("[data-console-tab]")) button.hidden = !allowed(button.dataset.consoleTab);
}

export function wire() {
  for (const wireTab of [wireQueue, wireAgents, wireReports, wireModeration, wireTeams, wireRouting, wireCanned, wireUsers, wireAudit]) wireTab();
  on("signed-in", signedIn);
  $("open-console").addEventListener("click", () => { linkConsole("queue"); showConsole("queue"); });
  $("close-console").addEventListener("click", () => { clearLink(); hideConsole(); });
  for (const button of document.querySelectorAll("[data-console-tab]")) {
    button.addEventListener("click", () => { linkConsole(button.dataset.consoleTab, { newEntry: false }); showConsole(button.dataset.consoleTab); });
  }
}
