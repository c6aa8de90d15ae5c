// Typing indicators: telling the open conversation that I type, and showing who else does.

import { $ } from "./dom.js";
import { on } from "./hooks.js";
import { ensureUsers, userName } from "./people.js";
import { getLive, state } from "./state.js";

const TYPING_REPEAT_MS = 3_000;
const TYPING_IDLE_MS = 4_000;
const TYPING_SHOWN_MS = 6_000;

let typingSentAt = 0;
let typingIdle = null;

function typingInput() {
  if (!state.openId || state.editing) return;
  const now = Date.now();
  if (now - typingSentAt > TYPING_REPEAT_MS) {
    typingSentAt = now;
    getLive().outbox("typing", { conversation_id: state.openId, typing: true }, 0);
  }
  clearTimeout(typingIdle);
  typingIdle = setTimeout(stopTyping, TYPING_IDLE_MS);
}

/** Say I stopped typing (the message was sent, or I went quiet). */
export function stopTyping() {
  clearTimeout(typingIdle);
  if (typingSentAt && state.openId) getLive().outbox("typing", { conversation_id: state.openId, typing: false }, 0);
  typingSentAt = 0;
}

function typingEvent(cid, event) {
  if (cid !== state.openId || event.user_id === state.me.id) return;
  clearTimeout(state.typing.get(event.user_id));
  if (event.typing) state.typing.set(event.user_id, setTimeout(() => { state.typing.delete(event.user_id); renderTyping(); }, TYPING_SHOWN_MS));
  else state.typing.delete(event.user_id);
  ensureUsers([event.user_id]).then(renderTyping);
}

function renderTyping() {
  const names = [...state.typing.keys()].map(userName);
  $("typing").textContent = names.length ? `${names.join(", ")} ${names.length > 1 ? "are" : "is"} typing…` : "";
}

export function wire() {
  on("typing", typingEvent);
  on("render:typing", renderTyping);
  $("body").addEventListener("input", typingInput);
}
