// Message search: a box above the conversation list (all my conversations) and one in the open conversation's
// header; a result opens its conversation at the message. Snippets are drawn as text, matches in <mark>.

import { $, el, showError } from "./dom.js";
import { on } from "./hooks.js";
import { jumpTo } from "./jump.js";
import { conversationTitle, ensureUsers, userName } from "./people.js";
import { api, state } from "./state.js";

const TYPING_PAUSE_MS = 400; // searches are rate limited per user: one per pause in typing

function snippet(parts) {
  return el("span", { class: "snippet", dir: "auto" }, ...parts.map((part) => (part.hit ? el("mark", { text: part.text }) : part.text)));
}

async function search(q, conversationId) {
  const params = new URLSearchParams({ q });
  if (conversationId) params.set("conversation_id", conversationId);
  const { items } = await api.get(`/api/search/messages?${params}`);
  await ensureUsers(items.map((hit) => hit.message.sender_id));
  return items;
}

function resultItem({ message, snippet: parts }, withTitle) {
  const conversation = state.conversations.get(message.conversation_id);
  const who = message.sender_id ? userName(message.sender_id) : "system";
  return el("li", { tabIndex: 0, class: "search-hit", "data-id": message.id, "data-conversation-id": message.conversation_id },
    el("span", { class: "title", text: withTitle && conversation ? conversationTitle(conversation) : who }),
    el("time", { dateTime: message.created_at, text: new Date(message.created_at).toLocaleDateString() }),
    el("span", { class: "preview" }, withTitle ? `${who}: ` : "", snippet(parts)));
}

/** A search box: searches after a pause in typing (or on Enter), shows its results, goes to the one chosen. */
function searchBox({ input, results, error, scope, withTitle, onShow }) {
  let timer = null;
  let asked = 0;
  const run = async () => {
    const q = input.value.trim();
    const ticket = ++asked;
    showError(error, null);
    if (!q) { results.replaceChildren(); onShow(false); return; }
    try {
      const items = await search(q, scope());
      if (ticket !== asked) return; // a newer search was asked meanwhile
      results.replaceChildren(...(items.length ? items.map((hit) => resultItem(hit, withTitle)) : [el("li", { class: "none", text: "No messages found" })]));
      onShow(true);
    } catch (e) {
      if (ticket === asked) showError(error, e);
    }
  };
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, TYPING_PAUSE_MS); });
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); clearTimeout(timer); run(); } });
  const chosen = (e) => {
    const item = e.target.closest("li[data-id]");
    if (item && (e.type === "click" || e.key === "Enter")) jumpTo(item.dataset.conversationId, item.dataset.id);
  };
  results.addEventListener("click", chosen);
  results.addEventListener("keydown", chosen);
}

function toggleHere(open = $("search-here").hidden) {
  $("search-here").hidden = !open;
  $("search-here-results").hidden = true;
  $("search-here-results").replaceChildren();
  $("search-here-query").value = "";
  showError("search-here-error", null);
  if (open) $("search-here-query").focus();
}

export function wire() {
  searchBox({ input: $("search-all"), results: $("search-results"), error: "search-error", scope: () => null, withTitle: true,
    onShow: (shown) => { $("search-results").hidden = !shown; $("conversation-list").hidden = shown; } });
  searchBox({ input: $("search-here-query"), results: $("search-here-results"), error: "search-here-error", scope: () => state.openId,
    withTitle: false, onShow: (shown) => { $("search-here-results").hidden = !shown; } });
  $("search-here-toggle").addEventListener("click", () => toggleHere());
  on("conversation-opened", () => toggleHere(false));
}
