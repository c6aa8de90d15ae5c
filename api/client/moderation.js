// My own view of conversations and people: archive and mute (the header's menu, the "Archived chats" list),
// blocking the other person of a direct conversation, reporting a message or a user to the admins.

import { loadConversations } from "./conversations.js";
import { $, el, showError } from "./dom.js";
import { emit, on, render } from "./hooks.js";
import { others, userName } from "./people.js";
import { api, state } from "./state.js";

const DEFAULT_REASON = "Spam or abuse";

function openConversation() {
  return state.conversations.get(state.openId);
}

/** The other person of the open direct conversation, if it is one. */
function otherPerson() {
  const c = openConversation();
  return c?.kind === "direct" ? others(c)[0] : undefined;
}

function note(text) {
  $("moderation-note").textContent = text;
  $("moderation-note").hidden = !text;
}

async function loadBlocks() {
  const { items } = await api.get("/api/blocks");
  state.blocked = new Set(items.map((b) => b.user_id));
}

let menuFor = null; // the conversation the note is about

function renderMenu() {
  const c = openConversation();
  if (!c) return;
  if (menuFor !== c.id) note("");
  menuFor = c.id;
  $("archive-toggle").textContent = c.archived ? "Unarchive" : "Archive";
  $("mute-toggle").textContent = c.muted ? "Unmute" : "Mute";
  const other = otherPerson();
  $("block-toggle").hidden = $("report-user").hidden = !other;
  if (other) {
    $("block-toggle").textContent = `${state.blocked?.has(other) ? "Unblock" : "Block"} ${userName(other)}`;
    $("report-user").textContent = `Report ${userName(other)}`;
  }
}

/** Archive or mute the open conversation for me; one that leaves the list shown is closed. */
async function changeSettings(change) {
  $("conversation-menu").open = false;
  try {
    const view = await api.request("PATCH", `/api/conversations/${state.openId}/settings`, change);
    settingsChanged({ conversation_id: view.id, archived: view.archived, muted: view.muted });
  } catch (error) {
    showError("moderation-note", error);
    $("moderation-note").hidden = false;
  }
}

/** My settings changed (here or on another of my devices). */
function settingsChanged({ conversation_id: cid, archived, muted }) {
  const c = state.conversations.get(cid);
  if (!c) return loadConversations();
  Object.assign(c, { archived, muted });
  if (archived !== Boolean(state.showArchived)) {
    state.conversations.delete(cid);
    if (state.openId === cid) emit("conversation-left", cid);
  }
  render("list");
  if (state.openId === cid) render("head");
}

async function toggleBlock() {
  $("conversation-menu").open = false;
  const other = otherPerson();
  try {
    if (state.blocked.has(other)) {
      await api.request("DELETE", `/api/blocks/${other}`);
      state.blocked.delete(other);
      note(`${userName(other)} is unblocked.`);
    } else if (confirm(`Block ${userName(other)}? They will not be able to write to you here.`)) {
      const block = await api.request("POST", "/api/blocks", { user_id: other });
      state.blocked.add(other);
      note(block.enforced ? `${userName(other)} is blocked.` : `${userName(other)} is shop staff: the block is recorded, but they can still reach you about your orders.`);
    }
  } catch (error) {
    showError("moderation-note", error);
    $("moderation-note").hidden = false;
  }
  render("head");
}

let reporting = null; // what the open report dialog is about: {message_id} or {user_id}

/** Ask why (a dialog), then report a message ({message_id}) or a user ({user_id}) to the admins. */
function report(target, what) {
  $("conversation-menu").open = false;
  reporting = target;
  $("report-title").textContent = `Report ${what}`;
  $("report-reason").value = DEFAULT_REASON;
  showError("report-error", null);
  $("report-dialog").showModal();
}

async function sendReport(event) {
  event.preventDefault();
  const reason = $("report-reason").value.trim();
  if (!reason) {
    $("report-error").textContent = "Say in a few words what is wrong.";
    return;
  }
  try {
    await api.request("POST", "/api/reports", { ...reporting, reason });
    $("report-dialog").close();
    note("Thank you: the report went to the moderators.");
  } catch (error) {
    showError("report-error", error);
  }
}

/** Report on other people's messages. */
function addReport({ meta, message, mine }) {
  if (mine || message.deleted || message.kind === "system") return;
  meta.append(el("button", { type: "button", class: "link", text: "Report", onclick: () => report({ message_id: message.id }, "this message") }));
}

async function toggleArchivedList() {
  state.showArchived = !state.showArchived;
  $("show-archived").textContent = state.showArchived ? "Back to chats" : "Archived chats";
  $("show-archived").setAttribute("aria-pressed", String(state.showArchived));
  if (state.openId) emit("conversation-left", state.openId);
  await loadConversations();
}

export function wire() {
  on("start", loadBlocks);
  on("render:head", renderMenu);
  on("message-item", addReport);
  on("conversation.settings", settingsChanged);
  $("archive-toggle").addEventListener("click", () => changeSettings({ archived: !openConversation().archived }));
  $("mute-toggle").addEventListener("click", () => changeSettings({ muted: !openConversation().muted }));
  $("block-toggle").addEventListener("click", toggleBlock);
  $("report-user").addEventListener("click", () => report({ user_id: otherPerson() }, userName(otherPerson())));
  $("show-archived").addEventListener("click", toggleArchivedList);
  $("report-form").addEventListener("submit", sendReport);
  $("report-cancel").addEventListener("click", () => $("report-dialog").close());
}
