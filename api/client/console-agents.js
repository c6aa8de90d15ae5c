// The console's agents (admins): each one's status as the server combines it (their choice online | busy |
// offline, and offline whatever they chose while no device is connected) and their load against the capacity
// (GET /api/admin/agents). Statuses follow `agent.availability` live; loads are reloaded when tickets move.

import { $, el, showError } from "./dom.js";
import { on } from "./hooks.js";
import { api } from "./state.js";

const RELOAD_AFTER_MS = 400; // ticket events come in bursts (a requeue and its reassignment): one reload for them

let agents = new Map(); // user id -> agent
let teamNames = new Map(); // team id -> name
let capacity = 0;
let loaded = false;
let reloadTimer = null;

const shown = () => loaded && !$("console").hidden && !$("console-agents").hidden;

/** "busy", or "offline (chose busy)" when no device is connected. */
function statusText(agent) {
  return agent.status === agent.availability ? agent.status : `${agent.status} (chose ${agent.availability})`;
}

function agentRow(agent) {
  const full = capacity && agent.open_tickets >= capacity;
  return el("tr", { "data-agent": agent.user_id },
    el("th", { text: agent.role === "admin" ? `${agent.username} (admin)` : agent.username }),
    el("td", {}, el("span", { class: "dot", "data-status": agent.status === "busy" ? "away" : agent.status }), " ",
      el("span", { class: `agent-status ${agent.status}`, text: statusText(agent) })),
    el("td", {}, el("span", { class: "agent-presence", text: agent.presence })),
    el("td", { class: `agent-load${full ? " at-capacity" : ""}`, text: `${agent.open_tickets} / ${capacity}` }),
    el("td", { text: agent.team_ids.map((id) => teamNames.get(id) ?? "?").join(", ") || "–" }));
}

function draw() {
  const rows = [...agents.values()].map(agentRow);
  $("agents-rows").replaceChildren(...rows);
  if (!rows.length) $("agents-rows").append(el("tr", {}, el("td", { class: "empty-note", colSpan: 5, text: "No agents match." })));
}

export async function loadAgents() {
  showError("agents-error", null);
  const form = $("agents-form");
  const params = new URLSearchParams({ limit: "200" });
  if (form.q.value.trim()) params.set("q", form.q.value.trim());
  if (form.team_id.value) params.set("team_id", form.team_id.value);
  try {
    const [roster, teams] = await Promise.all([api.get(`/api/admin/agents?${params}`), api.get("/api/teams")]);
    teamNames = new Map(teams.items.map((t) => [t.id, t.name]));
    const chosen = form.team_id.value;
    form.team_id.replaceChildren(el("option", { value: "", text: "every team" }),
      ...teams.items.map((t) => el("option", { value: t.id, text: t.name, selected: t.id === chosen })));
    capacity = roster.capacity;
    agents = new Map(roster.items.map((a) => [a.user_id, a]));
    loaded = true;
    draw();
  } catch (error) {
    showError("agents-error", error);
  }
}

function availabilityEvent({ agent }) {
  if (!loaded || !agents.has(agent.user_id)) return;
  Object.assign(agents.get(agent.user_id), agent);
  draw();
}

/** A ticket changed hands or status: the loads may have changed. */
function ticketEvent({ change }) {
  if (!shown() || !(change?.assignee_id || change?.status)) return;
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(loadAgents, RELOAD_AFTER_MS);
}

export function wire() {
  on("signed-in", () => { loaded = false; });
  on("agent.availability", availabilityEvent);
  for (const type of ["ticket.created", "ticket.updated"]) on(type, ticketEvent);
  on("reconnected", () => shown() && loadAgents());
  $("agents-form").addEventListener("submit", (event) => { event.preventDefault(); loadAgents(); });
  $("agents-form").team_id.addEventListener("change", loadAgents);
}
