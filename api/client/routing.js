// Deep links (links.js) to screens: digests, notifications, reloads and Back open what the address says.

import { hideConsole, showConsole } from "./console.js";
import { closeConversation, openConversation } from "./conversation.js";
import { clearLink, currentLink } from "./links.js";
import { showEmailSettings } from "./settings.js";
import { embed, getLive, state } from "./state.js";

/**
 * Do what the address asks: open its conversation, show the list again (Back), or the email settings.
 * Landing on a conversation's link, the list goes under it in the history, so that Back shows the list.
 */
export async function followLink({ landing = false } = {}) {
  const link = currentLink();
  if (link?.admin) {
    showConsole(link.admin);
    return;
  }
  hideConsole();
  if (link?.conversation && landing && !embed.on) {
    clearLink();
    await openConversation(link.conversation);
  } else if (link?.conversation && link.conversation !== state.openId) await openConversation(link.conversation, { fromLink: true });
  else if (!link?.conversation && state.openId) closeConversation({ fromLink: true });
  if (link?.settings === "email") showEmailSettings();
}

export function wire() {
  window.addEventListener("popstate", () => getLive() && followLink());
}
