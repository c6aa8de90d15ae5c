// The console's live queue: open (unassigned) tickets per team, oldest first, each with how long it has waited
// (ticking), escalated ones flagged; admins and team leads assign them by hand. Kept live from the desk's
// ticket events (chat/agents/tickets), reloaded over REST after a reconnect and every minute as a fallback.

import { duration } from "./console-reports.js";
import { $, el, showError } from "./dom.js";
import { on } from "./hooks.js";
import { api, state } from "./state.js";

const PAGES = 5; // at most 500 waiting tickets are shown
const RELOAD_MS = 60_000;
const NO_TEAM = "";

let tickets = new Map(); // id -> open ticket
let teams = []; // the teams I see (admins: all), with their members' statuses
let roster = []; // admins: every agent, for tickets of no team
let loaded = false;
let truncated = false;

const shown = () => loaded && !$("console").hidden && !$("console-queue").hidden;

/** Since when the ticket has been waiting in the queue: its last move to open (a requeue), else its creation. */
function waitingSince(ticket) {
  const opened = ticket.history.filter((h) => h.status === "open").at(-1);
  return opened?.at ?? ticket.created_at;
}

const waited = (since) => duration(Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 1000)));

/** How long since `since`, counted up by tick(). */
function waitingClock(since) {
  return el("span", { class: "waiting", "data-since": since, title: `waiting since ${new Date(since).toLocaleString()}`, text: waited(since) });
}

/** Do I see this open ticket in the queue? Admins all; agents their teams' and no team's (as the server). */
function inMyQueue(ticket) {
  if (ticket.status !== "open") return false;
  return state.me.role === "admin" || !ticket.team_id || teams.some((t) => t.id === ticket.team_id);
}

/** Whom I may give the ticket to: admins anyone (a team's members for its tickets), a lead the team's members. */
function assignees(ticket) {
  const team = teams.find((t) => t.id === ticket.team_id);
  if (state.me.role === "admin") return team ? team.members : roster;
  return team?.lead_ids.includes(state.me.id) ? team.members : [];
}

async function assign(ticket, agentId) {
  showError("queue-error", null);
  try {
    const assigned = await api.post(`/api/tickets/${ticket.id}/assign`, { agent_id: agentId });
    ticketEvent({ ticket: assigned });
  } catch (error) {
    showError("queue-error", error);
    draw();
  }
}

function ticketRow(ticket) {
  const since = waitingSince(ticket);
  const people = assignees(ticket);
  const picker = people.length ? el("select", {
    "aria-label": `Assign ticket #${ticket.number}`,
    onchange: (event) => event.target.value && assign(ticket, event.target.value),
  }, el("option", { value: "", text: "Assign to…" }),
  ...people.map((a) => el("option", { value: a.user_id, text: `${a.username} (${a.status})` }))) : null;
  return el("li", { class: `queue-row${ticket.escalated ? " is-escalated" : ""}`, "data-queue-ticket": String(ticket.number) },
    el("span", { class: "badge", text: `#${ticket.number}` }),
    el("span", { class: "title", text: ticket.subject }),
    waitingClock(since),
    el("span", { class: "ticket-meta" },
      ticket.escalated ? el("span", { class: "escalated", text: "escalated" }) : null,
      el("span", { text: `${ticket.priority} · ${ticket.category}` }), picker));
}

function teamSection(id, name, waiting) {
  const escalated = waiting.filter((t) => t.escalated).length;
  const summary = waiting.length
    ? el("span", { class: "queue-summary" }, `${waiting.length} waiting · oldest `, waitingClock(waitingSince(waiting[0])),
      escalated ? ` · ${escalated} escalated` : "")
    : el("span", { class: "queue-summary", text: "nobody waiting" });
  return el("section", { class: "queue-team", "data-queue-team": id || "none", "aria-label": name },
    el("h3", {}, el("span", { text: name }), " ", summary),
    waiting.length ? el("ul", { class: "list queue" }, ...waiting.map(ticketRow)) : null);
}

function draw() {
  if (!loaded) return;
  const byTeam = new Map([[NO_TEAM, []], ...teams.map((t) => [t.id, []])]);
  for (const ticket of tickets.values()) (byTeam.get(ticket.team_id ?? NO_TEAM) ?? byTeam.get(NO_TEAM)).push(ticket);
  for (const waiting of byTeam.values()) waiting.sort((a, b) => Date.parse(waitingSince(a)) - Date.parse(waitingSince(b)));
  const sections = teams.map((t) => teamSection(t.id, t.name, byTeam.get(t.id)));
  if (byTeam.get(NO_TEAM).length || !teams.length) sections.push(teamSection(NO_TEAM, "No team", byTeam.get(NO_TEAM)));
  const busiest = (section) => -section.querySelectorAll(".queue-row").length;
  sections.sort((a, b) => busiest(a) - busiest(b)); // stable: teams with waiting tickets first, by name otherwise
  $("queue-teams").replaceChildren(...sections,
    truncated ? el("p", { class: "console-note", text: `Showing the newest ${tickets.size} waiting tickets.` }) : "");
}

/** Count the waiting times up, once a second, while the queue is on screen. */
function tick() {
  if (shown()) for (const node of document.querySelectorAll("#queue-teams .waiting")) node.textContent = waited(node.dataset.since);
}

async function openTickets() {
  const found = [];
  let before = null;
  for (let page = 0; page < PAGES; page += 1) {
    const params = new URLSearchParams({ status: "open", limit: "100" });
    if (before) params.set("before", String(before));
    const { items, next_before: next } = await api.get(`/api/tickets?${params}`);
    found.push(...items);
    before = next;
    if (!before) break;
  }
  return { found, more: Boolean(before) };
}

export async function loadQueue() {
  showError("queue-error", null);
  try {
    const [{ found, more }, teamList, agents] = await Promise.all([openTickets(), api.get("/api/teams"),
      state.me.role === "admin" ? api.get("/api/admin/agents?limit=200") : { items: [] }]);
    teams = teamList.items;
    roster = agents.items;
    tickets = new Map(found.map((t) => [t.id, t]));
    truncated = more;
    loaded = true;
    draw();
  } catch (error) {
    showError("queue-error", error);
  }
}

/** A ticket created or changed: in the queue while open and mine to see, out of it otherwise. */
function ticketEvent({ ticket }) {
  if (!loaded) return;
  if (ticket.status === "open" && ticket.team_id && !teams.some((t) => t.id === ticket.team_id) && state.me.role === "admin") {
    loadQueue(); // a team created since the queue was loaded
    return;
  }
  if (inMyQueue(ticket)) tickets.set(ticket.id, ticket);
  else if (!tickets.delete(ticket.id)) return;
  draw();
}

/** A member's availability changed: the names in the assign lists say it. */
function availabilityEvent({ agent }) {
  if (!loaded) return;
  for (const team of teams) {
    const member = team.members.find((m) => m.user_id === agent.user_id);
    if (member) Object.assign(member, agent);
  }
  const known = roster.find((a) => a.user_id === agent.user_id);
  if (known) Object.assign(known, agent);
}

export function wire() {
  for (const type of ["ticket.created", "ticket.updated", "ticket.escalated"]) on(type, ticketEvent);
  on("agent.availability", availabilityEvent);
  on("signed-in", () => { loaded = false; });
  on("reconnected", () => loaded && loadQueue());
  setInterval(tick, 1000);
  setInterval(() => shown() && loadQueue(), RELOAD_MS);
}
