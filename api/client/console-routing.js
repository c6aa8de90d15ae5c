// The console's ticket routing (admins): which team gets each category of new ticket, the default team for the
// rest (none: every agent), and when each team escalates (GET/PUT /api/admin/ticket-routing).

import { duration } from "./console-reports.js";
import { $, el, showError } from "./dom.js";
import { api } from "./state.js";

const CATEGORIES = ["order", "payment", "shipping", "returns", "product", "account", "other"];

let teams = [];

function escalation(teamId) {
  const team = teams.find((t) => t.id === teamId);
  if (!team) return "–";
  return team.escalate_after_seconds ? duration(team.escalate_after_seconds) : "server default";
}

function teamSelect(name, chosen, none, label) {
  return el("select", { name, "aria-label": label, onchange: () => { $("routing-status").textContent = "Not saved yet."; drawEscalation(); } },
    el("option", { value: "", text: none }),
    ...teams.map((t) => el("option", { value: t.id, text: t.name, selected: t.id === chosen })));
}

/** Each category's "escalates after": its team's, or the default team's. */
function drawEscalation() {
  const form = $("routing-form");
  for (const category of CATEGORIES) {
    const chosen = form[`route-${category}`].value || form.default_team_id.value;
    $(`routing-escalation-${category}`).textContent = chosen ? escalation(chosen) : "server default";
  }
}

export async function loadRouting() {
  showError("routing-error", null);
  $("routing-status").textContent = "";
  try {
    const [routing, teamList] = await Promise.all([api.get("/api/admin/ticket-routing"), api.get("/api/teams")]);
    teams = teamList.items;
    $("routing-rows").replaceChildren(...CATEGORIES.map((category) => el("tr", {},
      el("th", { text: category }),
      el("td", {}, teamSelect(`route-${category}`, routing.routes[category] ?? "", "default team", `Team for ${category}`)),
      el("td", { id: `routing-escalation-${category}` }))));
    $("routing-default").replaceWith(Object.assign(teamSelect("default_team_id", routing.default_team_id ?? "", "none: every agent", "Default team"),
      { id: "routing-default" }));
    drawEscalation();
  } catch (error) {
    showError("routing-error", error);
  }
}

async function save(event) {
  event.preventDefault();
  const form = event.target;
  showError("routing-error", null);
  const routes = Object.fromEntries(CATEGORIES.filter((c) => form[`route-${c}`].value).map((c) => [c, form[`route-${c}`].value]));
  try {
    await api.request("PUT", "/api/admin/ticket-routing", { routes, default_team_id: form.default_team_id.value || null });
    await loadRouting();
    $("routing-status").textContent = "Saved: new tickets follow this routing.";
  } catch (error) {
    showError("routing-error", error);
  }
}

export function wire() {
  $("routing-form").addEventListener("submit", save);
}
