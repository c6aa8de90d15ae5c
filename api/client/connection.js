// The signed-in user's live connection (live.js): its events go to the hooks by type; catch-up on every reconnect.

import { resend } from "./composer.js";
import { loadConversations } from "./conversations.js";
import { $ } from "./dom.js";
import { emit } from "./hooks.js";
import { Live } from "./live.js";
import { catchUp } from "./messages.js";
import { api, getLive, setLive, state } from "./state.js";
import { loadTickets } from "./tickets.js";

/** An event from my inbox or the agents' queue, to the modules registered for its type ("message.created", ...). */
function dispatch(event) {
  emit(event.type, event);
}

function showStatus(status) {
  $("connection").dataset.state = status;
  $("connection").textContent = status;
}

/** Every (re)connect: catch up on what may have been missed while away, and resend unacknowledged sends. */
async function connected() {
  if (state.connectedOnce) {
    await loadConversations();
    await Promise.all([...state.history.keys()].map(catchUp));
    await loadTickets();
    emit("reconnected");
  }
  state.connectedOnce = true;
  for (const [clientMsgId, pending] of state.pending) if (!pending.error) resend(clientMsgId);
}

/** Connect as the signed-in user; renewed tokens reach the connection. */
export async function connect() {
  setLive(new Live(api, {
    onInbox: dispatch,
    onTickets: dispatch,
    onReceipt: dispatch,
    onPresence: (presence) => emit("presence", presence),
    onTyping: (cid, event) => emit("typing", cid, event),
    onStatus: showStatus,
    onConnect: connected,
  }));
  api.onSession = (session) => getLive()?.updateCredentials(session);
  await getLive().start();
}
