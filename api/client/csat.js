// Customer satisfaction: the survey message of a resolved ticket becomes a rating card (1-5 and a comment)
// for the ticket's customer; once rated, it shows the rating.

import { el } from "./dom.js";
import { on, render } from "./hooks.js";
import { api, state } from "./state.js";

const SURVEY = "csat:"; // the survey message's client_msg_id is csat:<ticket id>
const ratings = new Map(); // ticket id -> rating, or null when known to be unrated
const drafts = new Map(); // ticket id -> {rating, comment, error} while the customer fills the card in

/** Whether the ticket was rated (asked once per ticket; the card is redrawn when the answer arrives). */
async function lookUp(ticketId) {
  ratings.set(ticketId, undefined);
  try {
    ratings.set(ticketId, (await api.get(`/api/tickets/${ticketId}/csat`)).csat);
  } catch {
    ratings.delete(ticketId); // asked again when next drawn
    return;
  }
  render("messages");
}

async function submit(ticketId) {
  const draft = drafts.get(ticketId);
  try {
    ratings.set(ticketId, await api.post(`/api/tickets/${ticketId}/csat`, { rating: draft.rating, comment: draft.comment }));
    drafts.delete(ticketId);
  } catch (error) {
    draft.error = error.message;
  }
  render("messages");
}

function card(ticketId) {
  const draft = drafts.get(ticketId) ?? { rating: 0, comment: "", error: "" };
  drafts.set(ticketId, draft);
  const stars = [1, 2, 3, 4, 5].map((score) => el("button", {
    type: "button", text: String(score), "aria-label": `Rate ${score} of 5`, "aria-pressed": String(draft.rating === score),
    onclick: () => { draft.rating = score; render("messages"); },
  }));
  const comment = el("textarea", { rows: 2, maxLength: 2000, placeholder: "A comment (optional)", value: draft.comment,
    "aria-label": "Comment", oninput: (e) => { draft.comment = e.target.value; } });
  return el("form", { class: "csat", onsubmit: (e) => { e.preventDefault(); submit(ticketId); } },
    el("div", { class: "csat-scores", role: "group", "aria-label": "Rating" }, ...stars), comment,
    el("button", { type: "submit", text: "Send rating", disabled: !draft.rating }),
    el("p", { class: "error", role: "alert", text: draft.error }));
}

/** On the survey message: the card for its customer, the rating for everyone once known. */
function surveyItem({ item, message }) {
  if (message.kind !== "system" || !message.client_msg_id.startsWith(SURVEY)) return;
  const ticketId = message.client_msg_id.slice(SURVEY.length);
  if (!ratings.has(ticketId)) {
    lookUp(ticketId);
    return;
  }
  const rating = ratings.get(ticketId);
  const customer = state.tickets.get(ticketId)?.customer_id === state.me.id;
  if (rating) {
    const said = rating.comment ? `: “${rating.comment}”` : "";
    item.append(el("p", { class: "csat-done", text: `Rated ${rating.rating} of 5${said}.${customer ? " Thank you!" : ""}` }));
  } else if (rating === null && customer) item.append(card(ticketId));
}

function submitted({ csat }) {
  ratings.set(csat.ticket_id, csat);
  drafts.delete(csat.ticket_id);
  render("messages");
}

export function wire() {
  on("message-item", surveyItem);
  on("csat.submitted", submitted);
}
