// Reactions under each message: one chip per emoji (count, mine pressed; a click toggles mine) and a small
// palette of quick reactions. Requests go over MQTT (outbox/react); "message.reactions" events redraw them.

import { el } from "./dom.js";
import { on, render } from "./hooks.js";
import { userName } from "./people.js";
import { getLive, historyOf, state } from "./state.js";

export const QUICK = ["👍", "❤️", "😂", "😮", "😢", "🙏"];

function react(message, emoji, on) {
  getLive().outbox("react", { message_id: message.id, emoji, on });
}

function chip(message, { emoji, count, user_ids: userIds }) {
  const mine = userIds.includes(state.me.id);
  const who = userIds.map(userName).join(", ");
  return el("button", {
    type: "button", class: "reaction", "aria-pressed": String(mine), title: who,
    "aria-label": `${emoji} ${count}: ${who}`, text: `${emoji} ${count}`, onclick: () => react(message, emoji, !mine),
  });
}

/** The palette of quick reactions, opened by the message's React button. */
function palette(message) {
  const box = el("span", { class: "reaction-palette", role: "group", "aria-label": "Pick a reaction" });
  box.hidden = true;
  for (const emoji of QUICK) {
    box.append(el("button", { type: "button", class: "link", "aria-label": `React ${emoji}`, text: emoji, onclick: () => {
      box.hidden = true;
      const mine = message.reactions?.find((r) => r.emoji === emoji)?.user_ids.includes(state.me.id);
      if (!mine) react(message, emoji, true);
    } }));
  }
  return box;
}

function addReactions({ item, meta, message }) {
  if (message.deleted || message.kind === "system") return;
  const row = el("div", { class: "reactions" }, ...(message.reactions ?? []).map((r) => chip(message, r)));
  if (row.childElementCount) item.append(row);
  const box = palette(message);
  meta.append(el("button", { type: "button", class: "link", text: "React", "aria-label": "React", onclick: () => { box.hidden = !box.hidden; } }), box);
}

/** Someone reacted: the event carries the message's reactions as they are now. */
function reactionsEvent(event) {
  const message = historyOf(event.conversation_id).messages.get(event.message_id);
  if (!message) return;
  message.reactions = event.reactions;
  if (event.conversation_id === state.openId) render("messages");
}

export function wire() {
  on("message-item", addReactions);
  on("message.reactions", reactionsEvent);
}
