// The console's moderation queue (admins): reported messages (with the copy kept when reported) and users,
// oldest first; an admin resolves each with a note (GET /api/admin/reports, POST .../resolve).

import { $, el, showError } from "./dom.js";
import { ensureUsers, userName } from "./people.js";
import { api } from "./state.js";

const when = (iso) => new Date(iso).toLocaleString([], { dateStyle: "short", timeStyle: "short" });

async function resolve(report, note) {
  showError("moderation-error", null);
  try {
    await api.post(`/api/admin/reports/${report.id}/resolve`, { note });
  } catch (error) {
    showError("moderation-error", error);
  }
  await loadModeration();
}

function reportedMessage(message) {
  const files = message.attachments.length ? ` (+${message.attachments.length} attachment${message.attachments.length > 1 ? "s" : ""})` : "";
  return el("blockquote", { class: "reported-message", dir: "auto" },
    el("span", { class: "sender", text: `${userName(message.sender_id)}, ${when(message.created_at)}` }),
    el("span", { class: "body", text: `${message.body}${files}` || "(empty)" }));
}

function reportCard(report) {
  const about = report.message_id ? `Message by ${userName(report.user_id)}` : `User ${userName(report.user_id)}`;
  const open = report.status === "open";
  const note = el("input", { "aria-label": "Resolution note", maxLength: 2000, placeholder: "What was done (optional)" });
  return el("li", { class: "report-card", "data-report": report.id },
    el("span", { class: "title", text: about }),
    el("span", { class: "preview", text: `reported by ${userName(report.reporter_id)}, ${when(report.created_at)}: ${report.reason}` }),
    report.message ? reportedMessage(report.message) : null,
    open
      ? el("form", { class: "report-resolve", onsubmit: (event) => { event.preventDefault(); resolve(report, note.value.trim()); } },
        note, el("button", { type: "submit", text: "Resolve" }))
      : el("span", { class: "preview", text: `resolved by ${userName(report.resolved_by)}, ${when(report.resolved_at)}${report.resolution_note ? `: ${report.resolution_note}` : ""}` }));
}

export async function loadModeration() {
  showError("moderation-error", null);
  const status = $("moderation-status").value;
  try {
    const { items } = await api.get(`/api/admin/reports?status=${status}&limit=100`);
    await ensureUsers(items.flatMap((r) => [r.reporter_id, r.user_id, r.resolved_by, r.message?.sender_id]));
    $("moderation-list").replaceChildren(...items.map(reportCard));
    if (!items.length) $("moderation-list").append(el("li", { class: "empty-note", text: status === "open" ? "No open reports." : "No resolved reports." }));
  } catch (error) {
    showError("moderation-error", error);
  }
}

export function wire() {
  $("moderation-status").addEventListener("change", loadModeration);
}
