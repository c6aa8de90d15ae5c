// Replies: quoting a message (Reply on it, a bar above the composer), the quote drawn in a reply with a click
// that goes to the original, and quotes kept current when the original is edited or deleted.

import { $, el } from "./dom.js";
import { on, render } from "./hooks.js";
import { jumpTo } from "./jump.js";
import { userName } from "./people.js";
import { historyOf, state } from "./state.js";

const PREVIEW_LENGTH = 100; // as the server cuts it (docs/protocol.md)

function quoteText(preview) {
  return preview.deleted ? "deleted message" : preview.body || "attachment";
}

/** The quote in a reply: who and what, a button that goes to the original. */
function addQuote({ item, message }) {
  const preview = message.reply_preview;
  if (!preview || message.deleted) return;
  const quote = el("button", { type: "button", class: "quote", "data-reply-to": preview.id, "aria-label": "Go to the quoted message",
    onclick: () => jumpTo(message.conversation_id, preview.id) },
  el("span", { class: "quote-sender", text: preview.sender_id ? userName(preview.sender_id) : "system" }),
  el("span", { class: "quote-body", dir: "auto", text: quoteText(preview) }));
  item.querySelector(".body").before(quote);
}

function addReplyAction({ meta, message }) {
  if (message.deleted || message.kind === "system") return;
  meta.append(el("button", { type: "button", class: "link reply", text: "Reply", onclick: () => startReply(message) }));
}

function startReply(message) {
  state.replyingTo = message;
  $("replying-text").textContent = `${userName(message.sender_id)}: ${message.body || "attachment"}`;
  $("replying").hidden = false;
  $("body").focus();
}

function cancelReply() {
  state.replyingTo = null;
  $("replying").hidden = true;
}

/** The message being written quotes the one chosen, if it is of this conversation. */
function quoteInRequest(request) {
  if (state.replyingTo?.conversation_id === request.conversation_id) request.reply_to = state.replyingTo.id;
  cancelReply();
}

/** An edited or deleted message: the replies we hold that quote it show its new state. */
function refreshQuotes({ message }) {
  const preview = { body: message.deleted ? "" : [...message.body].slice(0, PREVIEW_LENGTH).join(""), deleted: message.deleted };
  let changed = false;
  for (const reply of historyOf(message.conversation_id).messages.values()) {
    if (reply.reply_preview?.id === message.id) {
      reply.reply_preview = { ...reply.reply_preview, ...preview };
      changed = true;
    }
  }
  if (changed && message.conversation_id === state.openId) render("messages");
}

export function wire() {
  on("message-item", addQuote);
  on("message-item", addReplyAction);
  on("composing", quoteInRequest);
  on("message.updated", refreshQuotes);
  on("message.deleted", refreshQuotes);
  on("conversation-opened", cancelReply);
  $("cancel-reply").addEventListener("click", cancelReply);
}
