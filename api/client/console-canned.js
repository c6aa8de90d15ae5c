// The console's canned replies: one's own and one's teams' (admins: every team's, or another agent's personal
// ones), added, edited and deleted by whoever the server lets (admins, the owner of a personal reply, a team's
// leads: /api/canned).

import { findAgent } from "./console-teams.js";
import { $, el, showError } from "./dom.js";
import { on } from "./hooks.js";
import { api, state } from "./state.js";

const MINE = "mine";

let teams = [];
let items = [];
let editing = null; // the id of the reply being edited
let owner = null; // admins: the agent whose personal replies are shown ({user_id, username}), null: mine and my teams'

const teamName = (id) => teams.find((t) => t.id === id)?.name ?? "a team";

/** May I change replies of this team (null: my own)? As the server: admins any, leads their team's. */
function mayWrite(teamId) {
  return teamId === null || state.me.role === "admin" || teams.some((t) => t.id === teamId && t.lead_ids.includes(state.me.id));
}

async function act(change) {
  showError("canned-error", null);
  try {
    await change();
    editing = null;
  } catch (error) {
    showError("canned-error", error);
    return;
  }
  await loadCanned({ keepError: true });
}

function editor(item) {
  return el("form", { class: "canned-edit", onsubmit: (event) => {
    event.preventDefault();
    const form = event.target;
    act(() => api.request("PATCH", `/api/canned/${item.id}`, { short_code: form.short_code.value.trim(), content: form.content.value }));
  } },
  el("label", { text: "Short code" }, el("input", { name: "short_code", value: item.short_code, maxLength: 32, required: true })),
  el("label", { text: "Text" }, el("textarea", { name: "content", value: item.content, rows: 3, maxLength: 10000, required: true })),
  el("span", { class: "row" },
    el("button", { type: "button", class: "secondary", text: "Cancel", onclick: () => { editing = null; draw(); } }),
    el("button", { type: "submit", text: "Save" })));
}

function cannedRow(item) {
  const scope = item.team_id ? teamName(item.team_id) : item.owner_id === state.me.id ? "personal" : `personal, of ${owner?.username ?? "someone"}`;
  const writable = state.me.role === "admin" || item.owner_id === state.me.id || (item.team_id !== null && mayWrite(item.team_id));
  return el("li", { class: "canned-row", "data-canned": item.short_code },
    el("span", { class: "title", text: `/${item.short_code}` }),
    el("span", { class: "canned-scope", text: scope }),
    editing === item.id ? editor(item) : el("span", { class: "preview canned-content", text: item.content }),
    writable && editing !== item.id ? el("span", { class: "user-actions" },
      el("button", { type: "button", class: "secondary", text: "Edit", "aria-label": `Edit /${item.short_code}`,
        onclick: () => { editing = item.id; draw(); } }),
      el("button", { type: "button", class: "danger", text: "Delete", "aria-label": `Delete /${item.short_code}`,
        onclick: () => confirm(`Delete /${item.short_code}?`) && act(() => api.request("DELETE", `/api/canned/${item.id}`)) })) : null);
}

function draw() {
  const filter = $("canned-filter").value;
  const shown = items.filter((i) => !filter || (filter === MINE ? i.team_id === null : i.team_id === filter));
  $("canned-list").replaceChildren(...shown.map(cannedRow));
  if (!shown.length) $("canned-list").append(el("li", { class: "empty-note", text: "No canned replies here yet." }));
}

function fillSelects() {
  const scope = $("canned-scope").value;
  $("canned-scope").replaceChildren(el("option", { value: "", text: "me (personal)" }),
    ...teams.filter((t) => mayWrite(t.id)).map((t) => el("option", { value: t.id, text: `team ${t.name}`, selected: t.id === scope })));
  const filter = $("canned-filter").value;
  $("canned-filter").replaceChildren(el("option", { value: "", text: "all I can use" }), el("option", { value: MINE, text: "my personal replies" }),
    ...teams.map((t) => el("option", { value: t.id, text: `team ${t.name}` })));
  $("canned-filter").value = [...$("canned-filter").options].some((o) => o.value === filter) ? filter : "";
}

export async function loadCanned({ keepError = false } = {}) {
  if (!keepError) showError("canned-error", null);
  try {
    const query = owner ? `?owner_id=${owner.user_id}` : "";
    const [list, teamList] = await Promise.all([api.get(`/api/canned${query}`), api.get("/api/teams")]);
    items = list.items;
    teams = teamList.items;
    fillSelects();
    draw();
  } catch (error) {
    showError("canned-error", error);
  }
}

/** Admins: show the personal replies of the agent named in the form (empty: mine and my teams' again). */
async function showOwner(event) {
  event.preventDefault();
  const name = event.target.owner.value.trim();
  showError("canned-error", null);
  try {
    owner = name ? await findAgent(name) : null;
  } catch (error) {
    showError("canned-error", error);
    return;
  }
  $("canned-filter").value = "";
  await loadCanned({ keepError: true });
}

export function wire() {
  on("signed-in", (me) => {
    owner = null;
    for (const node of document.querySelectorAll("#canned-show .admin-only")) node.hidden = me.role !== "admin";
  });
  $("canned-show").addEventListener("submit", showOwner);
  $("canned-filter").addEventListener("change", draw);
  $("canned-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    await act(async () => {
      await api.post("/api/canned", { short_code: form.short_code.value.trim(), content: form.content.value, team_id: form.team_id.value || null });
      form.short_code.value = "";
      form.content.value = "";
    });
  });
}
