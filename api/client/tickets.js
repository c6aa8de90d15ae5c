// Support tickets: my tickets and, for staff, the live queue; opening, taking, changing status; the sidebar tabs.

import { openConversation } from "./conversation.js";
import { loadConversations } from "./conversations.js";
import { $, el, showError } from "./dom.js";
import { on, render } from "./hooks.js";
import { api, isStaff, state, ticketOf } from "./state.js";

const NEXT_STATUS = { assigned: ["in_progress"], in_progress: ["resolved"], resolved: ["in_progress", "closed"] };

export async function loadTickets() {
  const [{ items }, teams] = await Promise.all([api.get("/api/tickets?limit=100"), isStaff(state.me) ? api.get("/api/teams") : { items: [] }]);
  state.teamIds = new Set(teams.items.map((t) => t.id));
  state.ledTeamIds = new Set(teams.items.filter((t) => t.lead_ids.includes(state.me.id)).map((t) => t.id));
  state.tickets = new Map(items.map((t) => [t.id, t]));
  renderTickets();
}

/** An agent sees the queues of their teams and of no team, and every ticket of a team they lead (as the server). */
function agentSees(ticket) {
  const queued = ticket.status === "open" && (!ticket.team_id || state.teamIds.has(ticket.team_id));
  return queued || state.ledTeamIds.has(ticket.team_id);
}

/** A ticket created or changed (live, or answered by the API): keep it if I may see it. */
function ticketEvent({ ticket }) {
  const mine = [ticket.customer_id, ticket.assignee_id].includes(state.me.id);
  const visible = mine || state.me.role === "admin" || (state.me.role === "agent" && agentSees(ticket));
  if (visible) state.tickets.set(ticket.id, ticket);
  else state.tickets.delete(ticket.id);
  renderTickets();
  if (state.openId === ticket.conversation_id) render("head");
}

function renderTickets() {
  const items = [...state.tickets.values()].sort((a, b) => b.number - a.number);
  $("ticket-list").replaceChildren(...items.map((t) => {
    const member = [t.customer_id, t.assignee_id].includes(state.me.id);
    const take = isStaff(state.me) && t.status === "open"
      ? el("button", { type: "button", text: "Take", onclick: (e) => { e.stopPropagation(); takeTicket(t); } }) : null;
    return el("li", { tabIndex: 0, "data-ticket": String(t.number), onclick: () => member && openConversation(t.conversation_id) },
      el("span", { class: "badge", text: `#${t.number}` }), el("span", { class: "title", text: t.subject }), take ?? el("span"),
      el("span", { class: "ticket-meta" }, el("span", { class: "status", text: t.status.replace("_", " ") }),
        t.escalated ? el("span", { class: "escalated", text: "escalated" }) : null,
        el("span", { text: `${t.priority} · ${t.category}` })));
  }));
}

/**
 * The open conversation's ticket in its header: the description, and the status for its assignee or an admin.
 * A closed ticket takes no more messages (the server refuses them): a note says so in place of the composer.
 */
function renderTicketHead() {
  if (!state.conversations.has(state.openId)) return;
  const ticket = ticketOf(state.openId);
  $("ticket-description").hidden = !ticket?.description;
  $("ticket-description").textContent = ticket?.description ?? "";
  const closed = ticket?.status === "closed";
  $("composer").hidden = closed;
  $("ticket-closed").hidden = !closed;
  $("ticket-closed").textContent = closed ? `Ticket #${ticket.number} is closed: open a new ticket to continue.` : "";
  const mayChange = ticket && (ticket.assignee_id === state.me.id || state.me.role === "admin") && NEXT_STATUS[ticket.status];
  $("ticket-controls").hidden = !mayChange;
  if (mayChange) {
    const select = $("ticket-status");
    select.replaceChildren(el("option", { value: ticket.status, text: ticket.status.replace("_", " ") }),
      ...NEXT_STATUS[ticket.status].map((s) => el("option", { value: s, text: s.replace("_", " ") })));
    select.value = ticket.status;
  }
}

async function takeTicket(ticket) {
  try {
    ticketEvent({ ticket: await api.post(`/api/tickets/${ticket.id}/assign`, {}) });
  } catch (error) {
    alert(error.message);
  }
}

async function openTicket(event) {
  event.preventDefault();
  const form = event.target;
  showError("ticket-error", null);
  try {
    const ticket = await api.post("/api/tickets", {
      subject: form.subject.value.trim(), description: form.description.value.trim(),
      category: form.category.value, priority: form.priority.value,
    });
    form.reset();
    ticketEvent({ ticket });
    await loadConversations();
    await openConversation(ticket.conversation_id);
  } catch (error) {
    showError("ticket-error", error);
  }
}

async function changeTicketStatus() {
  const ticket = ticketOf(state.openId);
  try {
    ticketEvent({ ticket: await api.post(`/api/tickets/${ticket.id}/status`, { status: $("ticket-status").value }) });
  } catch (error) {
    showError("composer-error", error);
  }
}

function showPanel(name) {
  for (const tab of document.querySelectorAll("[data-panel]")) {
    const selected = tab.dataset.panel === name;
    tab.setAttribute("aria-selected", String(selected));
    $(`panel-${tab.dataset.panel}`).hidden = !selected;
  }
}

/** Customers open tickets; staff see the queue. */
function signedIn(me) {
  $("ticket-form").hidden = isStaff(me);
  $("ticket-list-title").textContent = isStaff(me) ? "Queue and my tickets" : "My tickets";
}

export function wire() {
  on("signed-in", signedIn);
  on("start", loadTickets);
  on("ticket.created", ticketEvent);
  on("ticket.updated", ticketEvent);
  on("ticket.escalated", ticketEvent);
  on("render:head", renderTicketHead);
  for (const tab of document.querySelectorAll("[data-panel]")) tab.addEventListener("click", () => showPanel(tab.dataset.panel));
  $("ticket-form").addEventListener("submit", openTicket);
  $("ticket-status").addEventListener("change", changeTicketStatus);
}
