// The new-conversation dialog: find people, pick one (direct) or several (a group), say what it is about
// (an order, a product: context.js), start.

import { pickedContext, resetContext } from "./context.js";
import { openConversation } from "./conversation.js";
import { upsertConversation } from "./conversations.js";
import { $, el, showError } from "./dom.js";
import { api, state } from "./state.js";

let pickerTimer = null;
const picked = new Set();

function openPicker() {
  picked.clear();
  $("picker-query").value = "";
  $("picker-group-title").value = "";
  resetContext();
  $("picker-results").replaceChildren();
  showError("picker-error", null);
  $("picker").showModal();
  searchPeople();
}

function searchPeople() {
  clearTimeout(pickerTimer);
  pickerTimer = setTimeout(async () => {
    const q = encodeURIComponent($("picker-query").value.trim());
    const { items } = await api.get(`/api/users?q=${q}&limit=20`);
    for (const user of items) state.users.set(user.id, user);
    $("picker-results").replaceChildren(...items.filter((u) => u.id !== state.me.id).map((user) => {
      const box = el("input", { type: "checkbox", checked: picked.has(user.id), id: `pick-${user.id}`,
        onchange: (e) => (e.target.checked ? picked.add(user.id) : picked.delete(user.id)) });
      return el("li", {}, box, el("span", { class: "dot", "data-status": user.presence?.status ?? "offline" }),
        el("label", { htmlFor: `pick-${user.id}`, text: `${user.username} · ${user.role}` }));
    }));
  }, 200);
}

async function createConversation(event) {
  event.preventDefault();
  if (!picked.size) return showError("picker-error", "pick at least one person");
  const ids = [...picked];
  const body = ids.length === 1 ? { participant_ids: ids, kind: "direct" } : { participant_ids: ids, kind: "group", title: $("picker-group-title").value.trim() || undefined };
  try {
    body.context = pickedContext();
    const conversation = await api.post("/api/conversations", body);
    $("picker").close();
    await upsertConversation(conversation);
    await openConversation(conversation.id);
  } catch (error) {
    showError("picker-error", error);
  }
}

export function wire() {
  $("new-conversation").addEventListener("click", openPicker);
  $("picker-query").addEventListener("input", searchPeople);
  $("picker-form").addEventListener("submit", createConversation);
  $("picker-cancel").addEventListener("click", () => $("picker").close());
}
