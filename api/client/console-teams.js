// The console's teams (admins): create, rename and describe, set the escalation time, delete; members with their
// status, made leads or plain members, added by name or taken out (/api/admin/teams). Refusals show on the team.

import { $, el, showError } from "./dom.js";
import { api } from "./state.js";

/** Run a change of one team (or of the list, without `teamId`), then show the teams again; an error shows on that team. */
async function act(teamId, change) {
  const errorId = teamId ? `team-error-${teamId}` : "teams-error";
  showError(errorId, null);
  try {
    await change();
  } catch (error) {
    await loadTeams();
    showError($(errorId) ? errorId : "teams-error", error);
    return;
  }
  await loadTeams();
}

/** The one active agent or admin whose name is `name` (or the only one starting with it); admins only. */
export async function findAgent(name) {
  const { items } = await api.get(`/api/admin/agents?${new URLSearchParams({ q: name, limit: "20" })}`);
  const exact = items.filter((a) => a.username.toLowerCase() === name.toLowerCase());
  const found = exact.length === 1 ? exact : items;
  if (found.length === 1) return found[0];
  throw new Error(found.length ? `Several agents match "${name}": type the whole name.` : `No active agent or admin is called "${name}".`);
}

const minutes = (seconds) => String(Math.round(seconds / 60));

function memberRow(team, member) {
  const lead = team.lead_ids.includes(member.user_id);
  return el("li", { class: "member-row", "data-member": member.user_id },
    el("span", { class: "dot", "data-status": member.status === "busy" ? "away" : member.status }),
    el("span", { class: "title", text: member.username }),
    el("span", { class: "member-actions" },
      el("label", { class: "check" }, el("input", { type: "checkbox", checked: lead, "aria-label": `${member.username} leads ${team.name}`,
        onchange: (event) => act(team.id, () => api.post(`/api/admin/teams/${team.id}/members`, { user_id: member.user_id, lead: event.target.checked })) }),
      "lead"),
      el("button", { type: "button", class: "secondary", text: "Remove", "aria-label": `Remove ${member.username} from ${team.name}`,
        onclick: () => act(team.id, () => api.request("DELETE", `/api/admin/teams/${team.id}/members/${member.user_id}`)) })));
}

function teamCard(team) {
  const edit = el("form", { class: "filters team-edit", onsubmit: (event) => {
    event.preventDefault();
    const form = event.target;
    act(team.id, () => api.request("PATCH", `/api/admin/teams/${team.id}`, {
      name: form.name.value.trim(), description: form.description.value.trim(),
      escalate_after_seconds: Math.round(Number(form.minutes.value) * 60),
    }));
  } },
  el("label", { class: "grow", text: "Name" }, el("input", { name: "name", value: team.name, maxLength: 64, required: true })),
  el("label", { class: "grow", text: "Description" }, el("input", { name: "description", value: team.description, maxLength: 500 })),
  el("label", { text: "Escalate after (minutes)" }, el("input", { name: "minutes", type: "number", min: 0, max: 43200, value: minutes(team.escalate_after_seconds) })),
  el("button", { type: "submit", text: "Save" }),
  el("button", { type: "button", class: "danger", text: "Delete team",
    onclick: () => confirm(`Delete the team ${team.name}?`) && act(team.id, () => api.request("DELETE", `/api/admin/teams/${team.id}`)) }));
  const add = el("form", { class: "filters member-add", onsubmit: async (event) => {
    event.preventDefault();
    const form = event.target;
    const name = form.agent.value.trim();
    if (name) await act(team.id, async () => api.post(`/api/admin/teams/${team.id}/members`, { user_id: (await findAgent(name)).user_id, lead: form.lead.checked }));
  } },
  el("label", { class: "grow", text: "Add agent" }, el("input", { name: "agent", autocomplete: "off", placeholder: "name", maxLength: 64 })),
  el("label", { class: "check" }, el("input", { name: "lead", type: "checkbox" }), "as lead"),
  el("button", { type: "submit", class: "secondary", text: "Add" }));
  return el("li", { class: "team-card", "data-team": team.id, "aria-label": team.name },
    el("h3", { text: team.name }),
    edit,
    el("ul", { class: "list members" }, ...team.members.map((m) => memberRow(team, m))),
    team.members.length ? null : el("p", { class: "empty-note", text: "No members yet." }),
    add,
    el("p", { class: "error", id: `team-error-${team.id}`, role: "alert" }));
}

export async function loadTeams() {
  showError("teams-error", null);
  try {
    const teams = (await api.get("/api/teams")).items;
    $("teams-list").replaceChildren(...teams.map(teamCard));
    if (!teams.length) $("teams-list").append(el("li", { class: "empty-note", text: "No teams yet: every agent takes every ticket." }));
  } catch (error) {
    showError("teams-error", error);
  }
}

export function wire() {
  $("team-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    await act(null, async () => {
      await api.post("/api/admin/teams", {
        name: form.name.value.trim(), description: form.description.value.trim(),
        escalate_after_seconds: Math.round(Number(form.minutes.value) * 60),
      });
      form.reset();
    });
  });
}
