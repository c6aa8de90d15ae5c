// mqchat reference web client: REST for sign-in, history, conversations and tickets;
// MQTT over WebSocket for everything live. No build step; text is always set with textContent.

import { Api, ApiError } from "./api.js";
import { adoptQueryLink, clearLink, currentLink, linkConversation } from "./links.js";
import { Live } from "./live.js";
import { stickToBottom } from "./stick.js";
import { plainWords } from "./words.js";

const PAGE = 50;
const RESEND_AFTER_MS = 10_000;
const TYPING_REPEAT_MS = 3_000;
const TYPING_IDLE_MS = 4_000;
const TYPING_SHOWN_MS = 6_000;
const STAFF = ["agent", "admin"];
const NEXT_STATUS = { assigned: ["in_progress"], in_progress: ["resolved"], resolved: ["in_progress", "closed"] };

const $ = (id) => document.getElementById(id);
const api = new Api();
const config = api.request("GET", "/api/client/config", undefined, { anonymous: true }); // {embed_origins, signup}
// Embedded in a host page on another origin, which signs the user in with a platform token (docs/web-embed.md).
const embed = { on: new URLSearchParams(location.search).get("embed") === "1" && window.parent !== window, host: null, queue: Promise.resolve() };
const state = {
  me: null,
  conversations: new Map(), // id -> conversation
  history: new Map(), // conversation id -> {messages: Map(id -> message), nextBefore, complete, lastSeq, readSeq}
  pending: new Map(), // client_msg_id -> {request, sentAt, error}
  users: new Map(), // id -> user
  presence: new Map(), // user id -> status
  typing: new Map(), // user id -> timeout, for the open conversation
  tickets: new Map(),
  openId: null,
  editing: null,
  attachments: [],
  images: new Map(), // attachment id -> object URL
  connectedOnce: false,
};
let live = null;
const bottom = stickToBottom($("messages"));

// ---------- helpers ------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key.startsWith("data-") || key.startsWith("aria-") || key === "role") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function clock(iso) {
  return iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
}

function showError(id, error) {
  $(id).textContent = error ? (error instanceof ApiError ? plainWords(error.message) : String(error.message || error)) : "";
}

function userName(id) {
  if (id === null) return "System"; // a system message, posted by the shop's platform
  if (id === state.me?.id) return "You";
  return state.users.get(id)?.username ?? "…";
}

async function ensureUsers(ids) {
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

function others(conversation) {
  return conversation.participant_ids.filter((id) => id !== state.me.id);
}

function conversationTitle(conversation) {
  if (conversation.title) return conversation.title;
  const names = others(conversation).map(userName).join(", ") || "Just you";
  return conversation.context?.title ? `${names} · ${conversation.context.title}` : names;
}

function activity(conversation) {
  return conversation.last_message?.created_at ?? conversation.updated_at ?? "";
}

// ---------- sign-in -------------------------------------------------------------------

let authMode = "login";

function setAuthMode(mode) {
  authMode = mode;
  for (const tab of document.querySelectorAll("[data-auth-mode]")) tab.setAttribute("aria-selected", String(tab.dataset.authMode === mode));
  for (const field of document.querySelectorAll(".signup-only")) field.hidden = mode !== "signup";
  $("auth-submit").textContent = mode === "signup" ? "Create account" : "Sign in";
  $("auth-form").password.autocomplete = mode === "signup" ? "new-password" : "current-password";
}

async function submitAuth(event) {
  event.preventDefault();
  const form = event.target;
  const fields = { email: form.email.value.trim(), password: form.password.value };
  if (authMode === "signup") Object.assign(fields, { username: form.username.value.trim() || fields.email.split("@")[0], role: form.role.value });
  showError("auth-error", null);
  try {
    await api.signIn(authMode, fields);
    form.reset();
    await enterApp();
  } catch (error) {
    showError("auth-error", error);
  }
}

function showAuth() {
  $("app-view").hidden = true;
  $("auth-view").hidden = false;
  $("auth-form").email.focus();
}

async function signOut() {
  await live?.stop();
  live = null;
  api.forget();
  clearLink(); // the next person to sign in here starts from the list
  location.reload();
}

// ---------- embedded: the host page hands a platform token ----------------------------

/** Only the parent window, from an origin of MQCHAT_EMBED_ORIGINS; tokens are handled one at a time, in order. */
function hostMessage(event) {
  if (!embed.on || event.source !== window.parent) return;
  embed.queue = embed.queue.then(async () => {
    const { embed_origins: origins } = await config;
    if (!origins.includes(event.origin) || event.data?.type !== "mqchat:token" || typeof event.data.token !== "string") return;
    embed.host = event.origin;
    await signInFromHost(event.data.token);
  }).catch((error) => showError("embed-status", error));
}

/** Exchange the platform token: the first one starts the app, later ones renew the session (another user: start over). */
async function signInFromHost(token) {
  const previous = api.session?.user.id;
  try {
    await api.signIn("exchange", { token });
  } catch (error) {
    tellHost({ type: "mqchat:error", code: error.code ?? "error", message: error.message });
    throw error;
  }
  tellHost({ type: "mqchat:signed-in", user_id: api.session.user.id, external_id: api.session.user.external_id ?? null });
  if (!live) return enterApp();
  if (api.session.user.id !== previous) {
    await live.stop();
    location.reload();
  } else scheduleRefresh();
}

/** To the host page only, never "*": the origin that handed the last token. */
function tellHost(message) {
  if (embed.host) window.parent.postMessage(message, embed.host);
}

// ---------- app start, connection -----------------------------------------------------

async function enterApp() {
  state.me = api.session.user;
  state.users.set(state.me.id, state.me);
  $("auth-view").hidden = true;
  $("embed-view").hidden = true;
  $("app-view").hidden = false;
  $("logout").hidden = embed.on; // the host page owns an embedded session
  $("me").textContent = `${state.me.username} (${state.me.role})`;
  $("ticket-form").hidden = STAFF.includes(state.me.role);
  $("ticket-list-title").textContent = STAFF.includes(state.me.role) ? "Queue and my tickets" : "My tickets";
  live = new Live(api, {
    onInbox: inboxEvent,
    onTickets: ticketEvent,
    onReceipt: receiptEvent,
    onPresence: (presence) => { state.presence.set(presence.user_id, presence.status); renderPresence(); },
    onTyping: typingEvent,
    onStatus: (status) => { $("connection").dataset.state = status; $("connection").textContent = status; },
    onConnect: connected,
  });
  api.onSession = (session) => live?.updateCredentials(session);
  api.onExpired = embed.on ? () => tellHost({ type: "mqchat:token-needed" }) : signOut;
  scheduleRefresh();
  await live.start();
  await Promise.all([loadConversations(), loadTickets()]);
  await followLink({ landing: true });
}

// ---------- deep links (links.js): digests, notifications, reloads, Back ----------------

/**
 * Do what the address asks: open its conversation, show the list again (Back), or the email settings.
 * Landing on a conversation's link, the list goes under it in the history, so that Back shows the list.
 */
async function followLink({ landing = false } = {}) {
  const link = currentLink();
  if (link?.conversation && landing && !embed.on) {
    clearLink();
    await openConversation(link.conversation);
  } else if (link?.conversation && link.conversation !== state.openId) await openConversation(link.conversation, { fromLink: true });
  else if (!link?.conversation && state.openId) closeConversation({ fromLink: true });
  if (link?.settings === "email") showEmailSettings();
}

function showEmailSettings() {
  const on = state.me.preferences?.email_notifications !== false;
  $("email-settings-state").textContent = on
    ? "When messages wait for you while you are away, we email you a short digest."
    : "Email notifications are off: messages wait for you here.";
  $("email-toggle").textContent = on ? "Stop emails" : "Turn emails on";
  showError("email-settings-error", null);
  if (!$("email-settings").open) $("email-settings").showModal();
}

async function toggleEmail() {
  const on = state.me.preferences?.email_notifications !== false;
  try {
    state.me = await api.request("PATCH", "/api/auth/me", { preferences: { email_notifications: !on } });
    showEmailSettings();
  } catch (error) {
    showError("email-settings-error", error);
  }
}

let refreshTimer = null;

function scheduleRefresh() {
  // Renew the access token before it expires, so API calls and MQTT reconnects keep working.
  // A refused refresh token ends the session (api.onExpired); other failures are retried.
  clearTimeout(refreshTimer);
  const ttl = JSON.parse(atob(api.session.access_token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).exp * 1000 - Date.now();
  refreshTimer = setTimeout(() => api.refresh().then(scheduleRefresh, (error) => {
    if (error.status !== 401) refreshTimer = setTimeout(scheduleRefresh, 5_000);
  }), Math.max(5_000, ttl * 0.8));
}

/** Every (re)connect: catch up on what may have been missed while away, and resend unacknowledged sends. */
async function connected() {
  if (state.connectedOnce) {
    await loadConversations();
    await Promise.all([...state.history.keys()].map(catchUp));
    await loadTickets();
  }
  state.connectedOnce = true;
  for (const [clientMsgId, pending] of state.pending) if (!pending.error) resend(clientMsgId);
}

// ---------- conversations -------------------------------------------------------------

async function loadConversations() {
  const { items } = await api.get("/api/conversations");
  state.conversations = new Map(items.map((c) => [c.id, c]));
  await ensureUsers(items.flatMap((c) => c.participant_ids));
  for (const c of items) for (const id of others(c)) live.watchPresence(id);
  renderConversations();
  if (state.openId && state.conversations.has(state.openId)) renderConversationHead();
}

async function upsertConversation(conversation) {
  if (!conversation.participant_ids.includes(state.me.id)) {
    state.conversations.delete(conversation.id);
    if (state.openId === conversation.id) closeConversation();
  } else {
    const known = state.conversations.get(conversation.id);
    state.conversations.set(conversation.id, { ...known, ...conversation, unread_count: conversation.unread_count ?? known?.unread_count ?? 0 });
    await ensureUsers(conversation.participant_ids);
    for (const id of others(conversation)) live.watchPresence(id);
  }
  renderConversations();
  if (state.openId === conversation.id) renderConversationHead();
}

function renderConversations() {
  const list = $("conversation-list");
  const items = [...state.conversations.values()].sort((a, b) => activity(b).localeCompare(activity(a)));
  list.replaceChildren(...items.map((c) => {
    const other = others(c);
    const dot = el("span", { class: "dot", "data-status": c.kind === "direct" && other.length ? (state.presence.get(other[0]) ?? "offline") : "group" });
    const last = c.last_message;
    const preview = last ? (last.deleted ? "message deleted" : `${userName(last.sender_id)}: ${last.body || "attachment"}`) : "no messages yet";
    return el("li", {
      tabIndex: 0, "data-id": c.id, "aria-current": String(c.id === state.openId),
      onclick: () => openConversation(c.id), onkeydown: (e) => e.key === "Enter" && openConversation(c.id),
    }, dot, el("span", { class: "title", text: conversationTitle(c) }),
    c.unread_count ? el("span", { class: "badge", text: String(c.unread_count), "aria-label": `${c.unread_count} unread` }) : el("span"),
    el("span", { class: "preview", text: preview }));
  }));
}

function renderPresence() {
  renderConversations();
  if (state.openId) renderConversationHead();
}

// ---------- one conversation: history, live messages, reads ---------------------------

function historyOf(cid) {
  if (!state.history.has(cid)) state.history.set(cid, { messages: new Map(), nextBefore: null, complete: false, lastSeq: 0, readSeq: 0 });
  return state.history.get(cid);
}

function remember(message) {
  const history = historyOf(message.conversation_id);
  history.messages.set(message.id, message);
  history.lastSeq = Math.max(history.lastSeq, message.seq);
  if (message.read_by?.some((id) => id !== state.me.id && id !== message.sender_id) && message.sender_id === state.me.id) {
    history.readSeq = Math.max(history.readSeq, message.seq);
  }
}

async function openConversation(cid, { fromLink = false } = {}) {
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
  $("app-view").classList.add("viewing");
  $("conversation").hidden = false;
  $("empty").hidden = true;
  live.watchConversation(cid);
  renderConversations();
  renderConversationHead();
  const history = historyOf(cid);
  if (!history.messages.size && !history.complete) await loadOlder(cid);
  renderMessages({ toBottom: true });
  markRead();
  $("body").focus();
}

function closeConversation({ fromLink = false } = {}) {
  if (!fromLink && !embed.on) clearLink();
  state.openId = null;
  live.watchConversation(null);
  $("app-view").classList.remove("viewing");
  $("conversation").hidden = true;
  $("empty").hidden = false;
  renderConversations();
}

function ticketOf(cid) {
  return [...state.tickets.values()].find((t) => t.conversation_id === cid);
}

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
  const ticket = ticketOf(c.id);
  $("ticket-description").hidden = !ticket?.description;
  $("ticket-description").textContent = ticket?.description ?? "";
  const mayChange = ticket && (ticket.assignee_id === state.me.id || state.me.role === "admin") && NEXT_STATUS[ticket.status];
  $("ticket-controls").hidden = !mayChange;
  if (mayChange) {
    const select = $("ticket-status");
    select.replaceChildren(el("option", { value: ticket.status, text: ticket.status.replace("_", " ") }),
      ...NEXT_STATUS[ticket.status].map((s) => el("option", { value: s, text: s.replace("_", " ") })));
    select.value = ticket.status;
  }
}

async function loadOlder(cid) {
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
async function catchUp(cid) {
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

function renderMessages({ toBottom = false, keepOffset = false } = {}) {
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

function messageItem(message, history) {
  const mine = message.sender_id === state.me.id;
  const item = el("li", { class: `message${mine ? " mine" : ""}${message.kind === "system" ? " system" : ""}${message.deleted ? " deleted" : ""}`, "data-id": message.id, "data-seq": String(message.seq) });
  if (!mine) item.append(el("div", { class: "sender", text: userName(message.sender_id) }));
  item.append(el("div", { class: "body", dir: "auto", text: message.deleted ? "This message was deleted" : message.body }));
  if (!message.deleted) for (const attachment of message.attachments ?? []) item.append(attachmentView(attachment));
  const meta = el("div", { class: "meta" }, el("time", { dateTime: message.created_at, text: clock(message.created_at) }));
  if (message.edited_at && !message.deleted) meta.append(el("span", { text: "edited" }));
  if (mine) {
    const read = history.readSeq >= message.seq;
    meta.append(el("span", { class: "ticks", "data-read": String(read), "aria-label": read ? "read" : "delivered", text: read ? "✓✓" : "✓" }));
    if (!message.deleted) {
      meta.append(el("span", { class: "actions" },
        el("button", { type: "button", class: "link", text: "Edit", onclick: () => startEdit(message) }), " ",
        el("button", { type: "button", class: "link", text: "Delete", onclick: () => deleteMessage(message) })));
    }
  }
  item.append(meta);
  return item;
}

function pendingItem(pending) {
  const { request } = pending;
  return el("li", { class: "message mine pending", "data-client-msg-id": request.client_msg_id },
    el("div", { class: "body", dir: "auto", text: request.body }),
    el("div", { class: "meta", text: pending.error ? `not sent: ${pending.error}` : "sending…" }));
}

function attachmentView(attachment) {
  if (attachment.kind === "image") {
    const img = el("img", { alt: attachment.filename, onload: bottom.keep });
    loadBlob(attachment).then((url) => { img.src = url; }, () => { img.alt = `${attachment.filename} (unavailable)`; });
    return img;
  }
  return el("button", {
    type: "button", class: "link", text: `Download ${attachment.filename}`,
    onclick: async () => el("a", { href: await loadBlob(attachment), download: attachment.filename }).click(),
  });
}

async function loadBlob(attachment) {
  if (!state.images.has(attachment.id)) {
    const response = await api.request("GET", attachment.url, undefined, { raw: true });
    state.images.set(attachment.id, URL.createObjectURL(await response.blob()));
  }
  return state.images.get(attachment.id);
}

/** Everything up to the newest message counts as read (a watermark), over MQTT. */
function markRead() {
  const c = state.conversations.get(state.openId);
  if (!c || document.visibilityState === "hidden") return;
  const { stored } = sortedMessages(c.id);
  const newest = stored.at(-1);
  const history = historyOf(c.id);
  if (!newest || (history.markedSeq ?? 0) >= newest.seq) return;
  history.markedSeq = newest.seq;
  if (newest.sender_id !== state.me.id || c.unread_count) live.outbox("read", { conversation_id: c.id, message_id: newest.id });
  c.unread_count = 0;
  renderConversations();
}

// ---------- events from the inbox -----------------------------------------------------

async function inboxEvent(event) {
  switch (event.type) {
    case "message.created":
    case "message.updated":
    case "message.deleted":
      return messageEvent(event);
    case "conversation.created":
    case "conversation.updated":
      return upsertConversation(event.conversation);
    case "ticket.created":
    case "ticket.updated":
      return ticketEvent(event);
    case "error":
      return refused(event);
  }
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
  renderConversations();
  if (cid === state.openId) {
    state.typing.delete(message.sender_id);
    renderTyping();
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

function refused(event) {
  const pending = event.client_msg_id && state.pending.get(event.client_msg_id);
  if (pending) pending.error = event.error.message;
  $("composer-error").textContent = `${event.action}: ${event.error.message}`;
  if (state.openId) renderMessages();
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

// ---------- composing: send, edit, delete, typing, attachments ------------------------

let typingSentAt = 0;
let typingIdle = null;

function typingInput() {
  if (!state.openId || state.editing) return;
  const now = Date.now();
  if (now - typingSentAt > TYPING_REPEAT_MS) {
    typingSentAt = now;
    live.outbox("typing", { conversation_id: state.openId, typing: true }, 0);
  }
  clearTimeout(typingIdle);
  typingIdle = setTimeout(stopTyping, TYPING_IDLE_MS);
}

function stopTyping() {
  clearTimeout(typingIdle);
  if (typingSentAt && state.openId) live.outbox("typing", { conversation_id: state.openId, typing: false }, 0);
  typingSentAt = 0;
}

function resend(clientMsgId) {
  const pending = state.pending.get(clientMsgId);
  if (!pending || pending.error) return;
  pending.sentAt = Date.now();
  live.outbox("send", pending.request);
  setTimeout(() => state.pending.has(clientMsgId) && live.client?.connected && resend(clientMsgId), RESEND_AFTER_MS);
}

function submitComposer(event) {
  event.preventDefault();
  const text = $("body").value;
  showError("composer-error", null);
  if (state.editing) {
    live.outbox("edit", { message_id: state.editing, body: text });
    cancelEdit();
    return;
  }
  if (!text.trim() && !state.attachments.length) return;
  const request = { conversation_id: state.openId, client_msg_id: crypto.randomUUID(), body: text };
  if (state.attachments.length) {
    request.attachment_ids = state.attachments.map((a) => a.id);
    request.kind = state.attachments.every((a) => a.kind === "image") ? "image" : "file";
  }
  state.pending.set(request.client_msg_id, { request, sentAt: 0, error: null });
  stopTyping();
  resend(request.client_msg_id);
  $("body").value = "";
  state.attachments = [];
  renderAttachments();
  renderMessages({ toBottom: true });
}

function startEdit(message) {
  state.editing = message.id;
  $("editing").hidden = false;
  $("body").value = message.body;
  $("body").focus();
}

function cancelEdit() {
  state.editing = null;
  $("editing").hidden = true;
  $("body").value = "";
}

function deleteMessage(message) {
  if (confirm("Delete this message for everyone?")) live.outbox("delete", { message_id: message.id });
}

async function attachFile(event) {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  showError("composer-error", null);
  try {
    state.attachments.push(await api.request("POST", "/api/attachments", form));
    renderAttachments();
  } catch (error) {
    showError("composer-error", error);
  }
}

function renderAttachments() {
  $("pending-files").replaceChildren(...state.attachments.map((a, index) => el("span", {},
    `Attached: ${a.filename} `, el("button", { type: "button", class: "link", text: "remove", "aria-label": `remove ${a.filename}`,
      onclick: () => { state.attachments.splice(index, 1); renderAttachments(); } }), " ")));
}

// ---------- new conversation picker ---------------------------------------------------

let pickerTimer = null;
const picked = new Set();

function openPicker() {
  picked.clear();
  $("picker-query").value = "";
  $("picker-group-title").value = "";
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
    const conversation = await api.post("/api/conversations", body);
    $("picker").close();
    await upsertConversation(conversation);
    await openConversation(conversation.id);
  } catch (error) {
    showError("picker-error", error);
  }
}

// ---------- tickets -------------------------------------------------------------------

async function loadTickets() {
  const { items } = await api.get("/api/tickets?limit=100");
  state.tickets = new Map(items.map((t) => [t.id, t]));
  renderTickets();
}

function ticketEvent({ ticket }) {
  const mine = [ticket.customer_id, ticket.assignee_id].includes(state.me.id);
  const visible = mine || state.me.role === "admin" || (state.me.role === "agent" && ticket.status === "open");
  if (visible) state.tickets.set(ticket.id, ticket);
  else state.tickets.delete(ticket.id);
  renderTickets();
  if (state.openId === ticket.conversation_id) renderConversationHead();
}

function renderTickets() {
  const items = [...state.tickets.values()].sort((a, b) => b.number - a.number);
  $("ticket-list").replaceChildren(...items.map((t) => {
    const member = [t.customer_id, t.assignee_id].includes(state.me.id);
    const take = STAFF.includes(state.me.role) && t.status === "open"
      ? el("button", { type: "button", text: "Take", onclick: (e) => { e.stopPropagation(); takeTicket(t); } }) : null;
    return el("li", { tabIndex: 0, "data-ticket": String(t.number), onclick: () => member && openConversation(t.conversation_id) },
      el("span", { class: "badge", text: `#${t.number}` }), el("span", { class: "title", text: t.subject }), take ?? el("span"),
      el("span", { class: "ticket-meta" }, el("span", { class: "status", text: t.status.replace("_", " ") }),
        el("span", { text: `${t.priority} · ${t.category}` })));
  }));
}

async function takeTicket(ticket) {
  try {
    ticketEvent({ ticket: await api.post(`/api/tickets/${ticket.id}/assign`, {}) });
  } catch (error) {
    alert(error.message);
  }
}

async function openTicket(event) {
  event.preventDefault();
  const form = event.target;
  showError("ticket-error", null);
  try {
    const ticket = await api.post("/api/tickets", {
      subject: form.subject.value.trim(), description: form.description.value.trim(),
      category: form.category.value, priority: form.priority.value,
    });
    form.reset();
    ticketEvent({ ticket });
    await loadConversations();
    await openConversation(ticket.conversation_id);
  } catch (error) {
    showError("ticket-error", error);
  }
}

async function changeTicketStatus() {
  const ticket = ticketOf(state.openId);
  try {
    ticketEvent({ ticket: await api.post(`/api/tickets/${ticket.id}/status`, { status: $("ticket-status").value }) });
  } catch (error) {
    showError("composer-error", error);
  }
}

function showPanel(name) {
  for (const tab of document.querySelectorAll("[data-panel]")) {
    const selected = tab.dataset.panel === name;
    tab.setAttribute("aria-selected", String(selected));
    $(`panel-${tab.dataset.panel}`).hidden = !selected;
  }
}

// ---------- wiring --------------------------------------------------------------------

function wire() {
  for (const tab of document.querySelectorAll("[data-auth-mode]")) tab.addEventListener("click", () => setAuthMode(tab.dataset.authMode));
  for (const tab of document.querySelectorAll("[data-panel]")) tab.addEventListener("click", () => showPanel(tab.dataset.panel));
  $("auth-form").addEventListener("submit", submitAuth);
  $("logout").addEventListener("click", signOut);
  $("new-conversation").addEventListener("click", openPicker);
  $("picker-query").addEventListener("input", searchPeople);
  $("picker-form").addEventListener("submit", createConversation);
  $("picker-cancel").addEventListener("click", () => $("picker").close());
  $("back").addEventListener("click", closeConversation);
  $("composer").addEventListener("submit", submitComposer);
  $("body").addEventListener("input", typingInput);
  $("body").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("composer").requestSubmit(); }
    if (e.key === "Escape" && state.editing) cancelEdit();
  });
  $("cancel-edit").addEventListener("click", cancelEdit);
  $("file").addEventListener("change", attachFile);
  $("ticket-form").addEventListener("submit", openTicket);
  $("ticket-status").addEventListener("change", changeTicketStatus);
  $("messages").addEventListener("scroll", async () => {
    const cid = state.openId;
    if (!cid || $("messages").scrollTop > 40 || historyOf(cid).complete) return;
    await loadOlder(cid);
    if (cid === state.openId) renderMessages({ keepOffset: true });
  });
  document.addEventListener("visibilitychange", () => {
    live?.setPresence(document.visibilityState === "hidden" ? "away" : "online");
    if (document.visibilityState === "visible") markRead();
  });
  window.addEventListener("pagehide", () => live?.setPresence("offline"));
  window.addEventListener("message", hostMessage);
  window.addEventListener("popstate", () => live && followLink());
  $("email-toggle").addEventListener("click", toggleEmail);
  $("email-close").addEventListener("click", () => $("email-settings").close());
  $("email-settings").addEventListener("close", () => currentLink()?.settings && clearLink());
}

adoptQueryLink();
wire();
window.mqchat = { state, api, get live() { return live; } }; // for debugging in the console and for the browser tests
config.then(({ signup }) => { $("tab-signup").hidden = signup === "closed"; }, () => {});
if (embed.on) {
  api.forget(); // an embedded session is always the host's current user: wait for its token
  $("embed-view").hidden = false;
} else if (api.signedIn) enterApp().catch(() => { api.forget(); showAuth(); });
else showAuth();
