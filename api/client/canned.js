// Canned responses in the composer: in a ticket's conversation, staff type `/code` and pick a saved reply,
// which the server fills in for the ticket (placeholders like {{customer.name}}) as plain text.

import { $, el } from "./dom.js";
import { on } from "./hooks.js";
import { api, isStaff, state, ticketOf } from "./state.js";

const SLASH = /(^|\s)\/([a-z0-9_-]*)$/; // the `/code` being typed at the end of the text
let suggestions = []; // [{short_code, expanded}] for the text as typed
let asked = 0; // the latest request: older answers are dropped

function hide() {
  suggestions = [];
  $("canned-suggestions").hidden = true;
  $("canned-suggestions").replaceChildren();
}

/** Offer the responses whose code starts with what follows the slash. */
async function suggest() {
  const ticket = ticketOf(state.openId);
  const typed = $("body").value.match(SLASH);
  if (!ticket || !isStaff(state.me) || !typed) return hide();
  const request = ++asked;
  const query = new URLSearchParams({ q: typed[2], ticket_id: ticket.id });
  try {
    const { items } = await api.get(`/api/canned?${query}`);
    if (request !== asked) return;
    suggestions = items;
  } catch {
    return hide();
  }
  if (!suggestions.length) return hide();
  $("canned-suggestions").replaceChildren(...suggestions.map((item, index) =>
    el("li", { role: "option", "aria-selected": String(index === 0), onmousedown: (e) => { e.preventDefault(); pick(item); } },
      el("strong", { text: `/${item.short_code}` }), " ", el("span", { text: item.expanded }))));
  $("canned-suggestions").hidden = false;
}

/** Put the response's text where the `/code` was. */
function pick(item) {
  const body = $("body");
  body.value = body.value.replace(SLASH, (_, space) => `${space}${item.expanded}`);
  hide();
  body.focus();
}

/** Tab or Enter takes the first suggestion (before the composer would send); Escape closes the list. */
function keys(event) {
  if (event.target.id !== "body" || !suggestions.length) return;
  if (event.key === "Tab" || (event.key === "Enter" && !event.shiftKey)) {
    event.preventDefault();
    event.stopPropagation();
    pick(suggestions[0]);
  } else if (event.key === "Escape") {
    event.stopPropagation();
    hide();
  }
}

export function wire() {
  $("body").addEventListener("input", suggest);
  $("composer").addEventListener("keydown", keys, true); // capturing: before the composer's own Enter
  $("composer").addEventListener("submit", hide);
  on("render:head", hide);
}
