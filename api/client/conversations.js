// The conversation list: loading it, keeping it current from live events, drawing it (unread badges, presence dots).

import { $, el } from "./dom.js";
import { emit, on, render } from "./hooks.js";
import { conversationTitle, ensureUsers, others, userName } from "./people.js";
import { api, getLive, state } from "./state.js";

function activity(conversation) {
  return conversation.last_message?.created_at ?? conversation.updated_at ?? "";
}

export async function loadConversations() {
  const { items } = await api.get(state.showArchived ? "/api/conversations?archived=true" : "/api/conversations");
  state.conversations = new Map(items.map((c) => [c.id, c]));
  await ensureUsers(items.flatMap((c) => c.participant_ids));
  for (const c of items) for (const id of others(c)) getLive().watchPresence(id);
  renderConversations();
  if (state.openId && state.conversations.has(state.openId)) render("head");
}

/** Add or update a conversation; one I am no longer in leaves the list (the "conversation-left" hook closes it). */
export async function upsertConversation(conversation) {
  if (!conversation.participant_ids.includes(state.me.id)) {
    state.conversations.delete(conversation.id);
    if (state.openId === conversation.id) emit("conversation-left", conversation.id);
  } else {
    const known = state.conversations.get(conversation.id);
    state.conversations.set(conversation.id, { ...known, ...conversation, unread_count: conversation.unread_count ?? known?.unread_count ?? 0 });
    await ensureUsers(conversation.participant_ids);
    for (const id of others(conversation)) getLive().watchPresence(id);
  }
  renderConversations();
  if (state.openId === conversation.id) render("head");
}

/** Items carry data-id; the open conversation (conversation.js) listens for their clicks. */
function renderConversations() {
  const list = $("conversation-list");
  const items = [...state.conversations.values()].sort((a, b) => activity(b).localeCompare(activity(a)));
  list.replaceChildren(...items.map((c) => {
    const other = others(c);
    const dot = el("span", { class: "dot", "data-status": c.kind === "direct" && other.length ? (state.presence.get(other[0]) ?? "offline") : "group" });
    const last = c.last_message;
    const preview = last ? (last.deleted ? "message deleted" : `${userName(last.sender_id)}: ${last.body || "attachment"}`) : "no messages yet";
    return el("li", { tabIndex: 0, "data-id": c.id, "aria-current": String(c.id === state.openId) },
      dot, el("span", { class: "title", text: conversationTitle(c) }),
      c.unread_count ? el("span", { class: "badge", text: String(c.unread_count), "aria-label": `${c.unread_count} unread` }) : el("span"),
      el("span", { class: "preview", text: preview }));
  }));
}

export function wire() {
  on("render:list", renderConversations);
  on("start", loadConversations);
  on("conversation.created", ({ conversation }) => upsertConversation(conversation));
  on("conversation.updated", ({ conversation }) => upsertConversation(conversation));
}
