// The open conversation's messages: history pages, catch-up after gaps, live message events, drawing them, read marks.

import { loadConversations } from "./conversations.js";
import { $, clock, el } from "./dom.js";
import { emit, on, render } from "./hooks.js";
import { ensureUsers, userName } from "./people.js";
import { api, getLive, historyOf, state } from "./state.js";
import { stickToBottom } from "./stick.js";

const PAGE = 50;

/** Keeps the message list at its newest message while the reader is there (call bottom.grew after late growth). */
export const bottom = stickToBottom($("messages"));

function remember(message) {
  const history = historyOf(message.conversation_id);
  history.messages.set(message.id, message);
  history.lastSeq = Math.max(history.lastSeq, message.seq);
  if (message.read_by?.some((id) => id !== state.me.id && id !== message.sender_id) && message.sender_id === state.me.id) {
    history.readSeq = Math.max(history.readSeq, message.seq);
  }
}

/** One more page of older messages. */
export async function loadOlder(cid) {
  const history = historyOf(cid);
  if (history.complete || history.loading) return;
  history.loading = true;
  try {
    const cursor = history.nextBefore ? `&before=${history.nextBefore}` : "";
    const page = await api.get(`/api/conversations/${cid}/messages?limit=${PAGE}${cursor}`);
    await ensureUsers(page.items.map((m) => m.sender_id));
    for (const message of page.items) remember(message);
    history.nextBefore = page.next_before;
    history.complete = !page.next_before;
  } finally {
    history.loading = false;
  }
}

/** Fetch everything after the last seq we hold (oldest first), page by page. */
export async function catchUp(cid) {
  const history = historyOf(cid);
  for (;;) {
    const { items } = await api.get(`/api/conversations/${cid}/messages?after_seq=${history.lastSeq}&limit=100`);
    await ensureUsers(items.map((m) => m.sender_id));
    for (const message of items) remember(message);
    if (items.length < 100) break;
  }
  if (cid === state.openId) { renderMessages(); markRead(); }
}

function sortedMessages(cid) {
  const stored = [...historyOf(cid).messages.values()].sort((a, b) => a.seq - b.seq);
  const pending = [...state.pending.values()].filter((p) => p.request.conversation_id === cid);
  return { stored, pending };
}

export function renderMessages({ toBottom = false, keepOffset = false } = {}) {
  const list = $("messages");
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const before = list.scrollHeight;
  const history = historyOf(state.openId);
  const { stored, pending } = sortedMessages(state.openId);
  list.replaceChildren(
    history.complete ? el("li", { class: "history-end", text: "Beginning of the conversation" }) : el("li", { class: "history-end", text: "Scroll up for older messages" }),
    ...stored.map((m) => messageItem(m, history)),
    ...pending.map(pendingItem),
  );
  if (keepOffset) list.scrollTop += list.scrollHeight - before;
  else if (toBottom || nearBottom) list.scrollTop = list.scrollHeight;
}

/** One message; other modules add to it on "message-item" (attachments to the item, actions to the meta line). */
function messageItem(message, history) {
  const mine = message.sender_id === state.me.id;
  const item = el("li", { class: `message${mine ? " mine" : ""}${message.kind === "system" ? " system" : ""}${message.deleted ? " deleted" : ""}`, "data-id": message.id, "data-seq": String(message.seq) });
  if (!mine) item.append(el("div", { class: "sender", text: userName(message.sender_id) }));
  item.append(el("div", { class: "body", dir: "auto", text: message.deleted ? "This message was deleted" : message.body }));
  const meta = el("div", { class: "meta" }, el("time", { dateTime: message.created_at, text: clock(message.created_at) }));
  if (message.edited_at && !message.deleted) meta.append(el("span", { text: "edited" }));
  if (mine) {
    const read = history.readSeq >= message.seq;
    meta.append(el("span", { class: "ticks", "data-read": String(read), "aria-label": read ? "read" : "delivered", text: read ? "✓✓" : "✓" }));
  }
  emit("message-item", { item, meta, message, mine });
  item.append(meta);
  return item;
}

function pendingItem(pending) {
  const { request } = pending;
  return el("li", { class: "message mine pending", "data-client-msg-id": request.client_msg_id },
    el("div", { class: "body", dir: "auto", text: request.body }),
    el("div", { class: "meta", text: pending.error ? `not sent: ${pending.error}` : "sending…" }));
}

/** Everything up to the newest message counts as read (a watermark), over MQTT. */
export function markRead() {
  const c = state.conversations.get(state.openId);
  if (!c || document.visibilityState === "hidden") return;
  const { stored } = sortedMessages(c.id);
  const newest = stored.at(-1);
  const history = historyOf(c.id);
  if (!newest || (history.markedSeq ?? 0) >= newest.seq) return;
  history.markedSeq = newest.seq;
  if (newest.sender_id !== state.me.id || c.unread_count) getLive().outbox("read", { conversation_id: c.id, message_id: newest.id });
  c.unread_count = 0;
  render("list");
}

async function messageEvent({ type, message }) {
  const cid = message.conversation_id;
  const history = historyOf(cid);
  const gap = type === "message.created" && history.lastSeq && message.seq > history.lastSeq + 1;
  const fresh = type === "message.created" && !history.messages.has(message.id);
  state.pending.delete(message.client_msg_id);
  await ensureUsers([message.sender_id]);
  remember(message);
  if (!state.conversations.has(cid)) return loadConversations();
  const conversation = state.conversations.get(cid);
  if (!conversation.last_message || conversation.last_message.seq <= message.seq) conversation.last_message = message;
  if (fresh && message.sender_id !== state.me.id && cid !== state.openId) conversation.unread_count = (conversation.unread_count ?? 0) + 1;
  if (gap) await catchUp(cid);
  render("list");
  if (cid === state.openId) {
    state.typing.delete(message.sender_id);
    render("typing");
    renderMessages();
    markRead();
  }
}

function receiptEvent(event) {
  if (event.user_id === state.me.id) return;
  const history = historyOf(event.conversation_id);
  history.readSeq = Math.max(history.readSeq, event.seq);
  if (event.conversation_id === state.openId) renderMessages();
}

export function wire() {
  on("render:messages", renderMessages);
  for (const type of ["message.created", "message.updated", "message.deleted"]) on(type, messageEvent);
  on("receipt.read", receiptEvent);
  $("messages").addEventListener("scroll", async () => {
    const cid = state.openId;
    if (!cid || $("messages").scrollTop > 40 || historyOf(cid).complete) return;
    await loadOlder(cid);
    if (cid === state.openId) renderMessages({ keepOffset: true });
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") markRead();
  });
}
