// The admin console (`#/admin/<tab>`, admins only): reports, user management and the audit log, each in its
// own module; this one shows and hides the console and switches its tabs.

import { loadAudit, wire as wireAudit } from "./console-audit.js";
import { loadReports, wire as wireReports } from "./console-reports.js";
import { loadUsers, wire as wireUsers } from "./console-users.js";
import { $ } from "./dom.js";
import { on } from "./hooks.js";
import { clearLink, linkConsole } from "./links.js";
import { state } from "./state.js";

export const TABS = { reports: loadReports, users: loadUsers, audit: loadAudit };

/** Show the console on `tab` (reports, users or audit) and load it. */
export function showConsole(tab) {
  if (state.me?.role !== "admin" || !TABS[tab]) return;
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

export function wire() {
  wireReports();
  wireUsers();
  wireAudit();
  on("signed-in", (user) => { $("open-console").hidden = user.role !== "admin"; });
  $("open-console").addEventListener("click", () => { linkConsole("reports"); showConsole("reports"); });
  $("close-console").addEventListener("click", () => { clearLink(); hideConsole(); });
  for (const button of document.querySelectorAll("[data-console-tab]")) {
    button.addEventListener("click", () => { linkConsole(button.dataset.consoleTab, { newEntry: false }); showConsole(button.dataset.consoleTab); });
  }
}
