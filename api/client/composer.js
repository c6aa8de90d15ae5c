// Writing: sending (resent until acknowledged), editing and deleting my messages, the server's refusals.

import { $, el, showError } from "./dom.js";
import { emit, on, render } from "./hooks.js";
import { getLive, state } from "./state.js";
import { stopTyping } from "./typing.js";

const RESEND_AFTER_MS = 10_000;

/** Publish a send again until its message comes back (same client_msg_id: the server keeps one). */
export function resend(clientMsgId) {
  const pending = state.pending.get(clientMsgId);
  if (!pending || pending.error) return;
  pending.sentAt = Date.now();
  getLive().outbox("send", pending.request);
  setTimeout(() => state.pending.has(clientMsgId) && getLive().client?.connected && resend(clientMsgId), RESEND_AFTER_MS);
}

function submitComposer(event) {
  event.preventDefault();
  const text = $("body").value;
  showError("composer-error", null);
  if (state.editing) {
    getLive().outbox("edit", { message_id: state.editing, body: text });
    cancelEdit();
    return;
  }
  if (!text.trim() && !state.attachments.length) return;
  const request = { conversation_id: state.openId, client_msg_id: crypto.randomUUID(), body: text };
  if (state.attachments.length) {
    request.attachment_ids = state.attachments.map((a) => a.id);
    request.kind = state.attachments.every((a) => a.kind === "image") ? "image" : "file";
  }
  emit("composing", request);
  state.pending.set(request.client_msg_id, { request, sentAt: 0, error: null });
  stopTyping();
  resend(request.client_msg_id);
  $("body").value = "";
  state.attachments = [];
  render("attachments");
  render("messages", { toBottom: true });
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
  if (confirm("Delete this message for everyone?")) getLive().outbox("delete", { message_id: message.id });
}

/** Edit and Delete on my messages. */
function addActions({ meta, message, mine }) {
  if (!mine || message.deleted) return;
  meta.append(el("span", { class: "actions" },
    el("button", { type: "button", class: "link", text: "Edit", onclick: () => startEdit(message) }), " ",
    el("button", { type: "button", class: "link", text: "Delete", onclick: () => deleteMessage(message) })));
}

/** An outbox request the server refused (an "error" event on my inbox). */
function refused(event) {
  const pending = event.client_msg_id && state.pending.get(event.client_msg_id);
  if (pending) pending.error = event.error.message;
  $("composer-error").textContent = `${event.action}: ${event.error.message}`;
  if (state.openId) render("messages");
}

export function wire() {
  on("message-item", addActions);
  on("error", refused);
  $("composer").addEventListener("submit", submitComposer);
  $("body").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("composer").requestSubmit(); }
    if (e.key === "Escape" && state.editing) cancelEdit();
  });
  $("cancel-edit").addEventListener("click", cancelEdit);
}
