// mqchat reference web client: REST for sign-in, history, conversations and tickets; MQTT over WebSocket for
// everything live. No build step; text is always set with textContent. This file wires the modules and starts.

import * as attachments from "./attachments.js";
import * as availability from "./availability.js";
import * as canned from "./canned.js";
import * as composer from "./composer.js";
import * as context from "./context.js";
import * as adminConsole from "./console.js";
import * as conversation from "./conversation.js";
import * as conversations from "./conversations.js";
import * as csat from "./csat.js";
import * as embedded from "./embed.js";
import { adoptQueryLink } from "./links.js";
import * as messages from "./messages.js";
import * as moderation from "./moderation.js";
import * as notify from "./notify.js";
import * as picker from "./picker.js";
import * as presence from "./presence.js";
import * as reactions from "./reactions.js";
import * as routing from "./routing.js";
import * as session from "./session.js";
import * as settings from "./settings.js";
import { api, embed, getLive, state } from "./state.js";
import * as tickets from "./tickets.js";
import * as typing from "./typing.js";

// Each module's wire() registers its hooks (hooks.js) and DOM listeners. Handlers of one hook run in this
// order: the header's title before its ticket part, a message's attachments before its Edit/Delete, then its
// reactions and Report.
const MODULES = [session, embedded, conversations, conversation, presence, messages, attachments, composer, reactions,
  moderation, typing, tickets, picker, settings, adminConsole, routing,
  context, notify, availability, canned, csat];

adoptQueryLink();
for (const module of MODULES) module.wire();
window.mqchat = { state, api, get live() { return getLive(); } }; // for debugging in the console and for the browser tests
if (embed.on) embedded.awaitHost();
else session.resume();
