// Shared state: the REST client, the live connection, the embedding host, and what the app knows (one object).

import { Api } from "./api.js";

export const api = new Api();
/** The server's client settings, fetched once before sign-in: {embed_origins, signup}. */
export const config = api.request("GET", "/api/client/config", undefined, { anonymous: true });

/** Embedded in a host page on another origin, which signs the user in with a platform token (docs/web-embed.md). */
export const embed = {
  on: new URLSearchParams(location.search).get("embed") === "1" && window.parent !== window,
  host: null, // the origin that handed the last token
  queue: Promise.resolve(), // tokens are handled one at a time, in order
  /** To the host page only, never "*": the origin that handed the last token. */
  tell(message) {
    if (this.host) window.parent.postMessage(message, this.host);
  },
};

export const state = {
  me: null,
  conversations: new Map(), // id -> conversation
  history: new Map(), // conversation id -> {messages: Map(id -> message), nextBefore, complete, lastSeq, readSeq}
  pending: new Map(), // client_msg_id -> {request, sentAt, error}
  users: new Map(), // id -> user
  presence: new Map(), // user id -> status
  typing: new Map(), // user id -> timeout, for the open conversation
  tickets: new Map(),
  teamIds: new Set(), // teams I am in (staff), whose queues I see
  ledTeamIds: new Set(), // teams I lead, all of whose tickets I see
  openId: null,
  editing: null,
  replyingTo: null, // the message the one being written quotes
  attachments: [], // uploaded for the message being written
  images: new Map(), // attachment id -> object URL
  connectedOnce: false,
  blocked: new Set(), // users I blocked (moderation.js)
  showArchived: false, // the list shows my archived conversations instead of the others
};

let live = null;

/** The MQTT connection (live.js) of the signed-in user, or null. */
export function getLive() {
  return live;
}

export function setLive(connection) {
  live = connection;
}

/** What we hold of a conversation's messages, created empty on first use. */
export function historyOf(cid) {
  if (!state.history.has(cid)) state.history.set(cid, { messages: new Map(), nextBefore: null, complete: false, lastSeq: 0, readSeq: 0 });
  return state.history.get(cid);
}

/** The ticket whose conversation this is, if any. */
export function ticketOf(cid) {
  return [...state.tickets.values()].find((t) => t.conversation_id === cid);
}

/** Agents and admins work the ticket queue. */
export function isStaff(user) {
  return ["agent", "admin"].includes(user.role);
}
