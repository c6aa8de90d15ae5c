// Who is who: users fetched once, and the names shown for users and conversations.

import { api, state } from "./state.js";

export function userName(id) {
  if (id === null) return "System"; // a system message, posted by the shop's platform
  if (id === state.me?.id) return "You";
  return state.users.get(id)?.username ?? "…";
}

/** Fetch the users not known yet (and their presence). */
export async function ensureUsers(ids) {
  const unknown = [...new Set(ids)].filter((id) => id && !state.users.has(id));
  await Promise.all(unknown.map(async (id) => {
    try {
      const user = await api.get(`/api/users/${id}`);
      state.users.set(id, user);
      if (!state.presence.has(id)) state.presence.set(id, user.presence?.status ?? "offline");
    } catch {
      state.users.set(id, { id, username: "unknown user" });
    }
  }));
}

/** The participants other than me. */
export function others(conversation) {
  return conversation.participant_ids.filter((id) => id !== state.me.id);
}

export function conversationTitle(conversation) {
  if (conversation.title) return conversation.title;
  const names = others(conversation).map(userName).join(", ") || "Just you";
  return conversation.context?.title ? `${names} · ${conversation.context.title}` : names;
}
