// The admin console's audit log: who changed roles, accounts, API keys and webhooks, newest first, page by page.

import { $, el, showError } from "./dom.js";
import { api, state } from "./state.js";

let nextBefore = null;

/** An actor's name: "mqchat command" for the CLI, a username when we know or can look it up, else the id. */
async function actorName(id) {
  if (id === "cli") return "mqchat command";
  if (!state.users.has(id)) {
    try {
      state.users.set(id, await api.get(`/api/users/${id}`));
    } catch {
      return id;
    }
  }
  return state.users.get(id).username;
}

async function entryRow(entry) {
  const details = Object.entries(entry.details).map(([key, value]) => `${key}: ${value}`).join(", ");
  return el("tr", {},
    el("td", { text: new Date(entry.at).toLocaleString([], { dateStyle: "short", timeStyle: "short" }) }),
    el("td", { text: await actorName(entry.actor_id) }),
    el("td", { text: entry.action }),
    el("td", { text: `${entry.target_type} ${entry.target_id}` }),
    el("td", { text: details }));
}

async function loadPage({ more = false } = {}) {
  showError("audit-error", null);
  const params = new URLSearchParams({ limit: "50" });
  if ($("audit-action").value) params.set("action", $("audit-action").value);
  if (more && nextBefore) params.set("before", String(nextBefore));
  try {
    const page = await api.get(`/api/admin/audit?${params}`);
    const rows = await Promise.all(page.items.map(entryRow));
    if (more) $("audit-rows").append(...rows);
    else $("audit-rows").replaceChildren(...rows);
    nextBefore = page.next_before;
    $("audit-more").hidden = nextBefore === null;
  } catch (error) {
    showError("audit-error", error);
  }
}

export const loadAudit = () => loadPage();

export function wire() {
  $("audit-action").addEventListener("change", () => loadPage());
  $("audit-more").addEventListener("click", () => loadPage({ more: true }));
}
