// The admin console's user management: find anyone (deactivated and erased too), change a role, deactivate or
// reactivate (both sign the user out everywhere), download everything stored about them, erase them.

import { $, el, showError } from "./dom.js";
import { api, state } from "./state.js";

const ROLES = ["customer", "merchant", "designer", "agent", "admin"];

async function findUsers() {
  showError("users-error", null);
  const form = $("users-form");
  const params = new URLSearchParams({ limit: "50" });
  if (form.q.value.trim()) params.set("q", form.q.value.trim());
  if (form.role.value) params.set("role", form.role.value);
  if (form.active.value) params.set("active", form.active.value);
  try {
    const { items } = await api.get(`/api/admin/users?${params}`);
    $("users-list").replaceChildren(...items.map(userRow));
    if (!items.length) $("users-list").append(el("li", { class: "empty-note", text: "Nobody matches." }));
  } catch (error) {
    showError("users-error", error);
  }
}

/** Run a change, then show the list again (the row's state comes from the server). */
async function act(change) {
  showError("users-error", null);
  try {
    await change();
  } catch (error) {
    showError("users-error", error);
  }
  await findUsers();
}

async function download(user) {
  const response = await api.request("GET", `/api/admin/users/${user.id}/export`, undefined, { raw: true });
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: `mqchat-user-${user.id}.json` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function userRow({ user, active, erased }) {
  const self = user.id === state.me.id;
  const locked = self || erased;
  const role = el("select", { "aria-label": `Role of ${user.username}`, disabled: locked,
    onchange: (event) => act(() => api.request("PATCH", `/api/admin/users/${user.id}`, { role: event.target.value })) },
  ...ROLES.map((r) => el("option", { value: r, text: r, selected: r === user.role })));
  const status = erased ? "erased" : active ? "active" : "deactivated";
  return el("li", { class: "user-row", "data-user": user.id },
    el("span", { class: "title", text: user.username }),
    el("span", { class: `status ${status}`, text: status }),
    el("span", { class: "preview", text: user.email ?? "" }),
    el("span", { class: "user-actions" },
      role,
      el("button", { type: "button", class: "secondary", disabled: locked, text: active ? "Deactivate" : "Reactivate",
        onclick: () => act(() => api.request("PATCH", `/api/admin/users/${user.id}`, { active: !active })) }),
      el("button", { type: "button", class: "secondary", text: "Export", onclick: () => act(() => download(user)) }),
      el("button", { type: "button", class: "danger", disabled: locked, text: "Erase",
        onclick: () => confirm(`Erase ${user.username}? Their profile, messages and files are removed for good.`)
          && act(() => api.request("DELETE", `/api/admin/users/${user.id}`)) })));
}

export const loadUsers = findUsers;

export function wire() {
  $("users-form").addEventListener("submit", (event) => { event.preventDefault(); findUsers(); });
  $("users-form").addEventListener("change", (event) => event.target.name !== "q" && findUsers());
}
