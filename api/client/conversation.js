// The open conversation: opening and closing it (the list and it are two screens on a phone), its header.

import { upsertConversation } from "./conversations.js";
import { $ } from "./dom.js";
import { emit, on, render } from "./hooks.js";
import { clearLink, linkConversation } from "./links.js";
import { loadOlder, markRead, renderMessages } from "./messages.js";
import { conversationTitle, others, userName } from "./people.js";
import { api, embed, getLive, historyOf, state } from "./state.js";

export async function openConversation(cid, { fromLink = false } = {}) {
  if (!state.conversations.has(cid)) {
    try {
      await upsertConversation(await api.get(`/api/conversations/${cid}`));
    } catch {
      closeConversation();
      $("empty-note").textContent = "That conversation is not available to you. Pick one from the list.";
      return;
    }
  }
  if (!embed.on) linkConversation(cid, { newEntry: !fromLink });
  state.openId = cid;
  state.editing = null;
  state.typing.clear();
  emit("conversation-opened", cid);
  $("app-view").classList.add("viewing");
  $("conversation").hidden = false;
  $("empty").hidden = true;
  getLive().watchConversation(cid);
  render("list");
  render("head");
  const history = historyOf(cid);
  if (!history.messages.size && !history.complete) await loadOlder(cid);
  renderMessages({ toBottom: true });
  markRead();
  $("body").focus();
}

/** Back to the list; `fromLink` when the address already says so (Back, a link). */
export function closeConversation({ fromLink = false } = {}) {
  if (!fromLink && !embed.on) clearLink();
  state.openId = null;
  getLive().watchConversation(null);
  $("app-view").classList.remove("viewing");
  $("conversation").hidden = true;
  $("empty").hidden = false;
  render("list");
}

/** Title and the other person's presence; the ticket's part of the header is tickets.js's ("render:head" too). */
function renderConversationHead() {
  const c = state.conversations.get(state.openId);
  if (!c) return;
  $("conversation-title").textContent = conversationTitle(c);
  const other = others(c);
  const dot = $("conversation-presence");
  dot.hidden = !(c.kind === "direct" && other.length);
  if (!dot.hidden) {
    const status = state.presence.get(other[0]) ?? "offline";
    dot.dataset.status = status;
    dot.title = status;
    dot.setAttribute("aria-label", `${userName(other[0])} is ${status}`);
  }
}

/** The conversation of a list item clicked or chosen with Enter. */
function listItemChosen(event) {
  const item = event.target.closest("li[data-id]");
  if (item && (event.type === "click" || event.key === "Enter")) openConversation(item.dataset.id);
}

export function wire() {
  on("render:head", renderConversationHead);
  on("conversation-left", () => closeConversation());
  $("conversation-list").addEventListener("click", listItemChosen);
  $("conversation-list").addEventListener("keydown", listItemChosen);
  $("back").addEventListener("click", closeConversation);
}
