// Going to one message of a conversation: open it, load older pages until the message is there, scroll to it.

import { openConversation } from "./conversation.js";
import { $ } from "./dom.js";
import { loadOlder, renderMessages } from "./messages.js";
import { historyOf, state } from "./state.js";

const FLASH_MS = 2000;

/** Show message `id` of conversation `cid` in the middle of the list, marked for a moment. */
export async function jumpTo(cid, id) {
  if (state.openId !== cid) await openConversation(cid);
  const history = historyOf(cid);
  while (!history.messages.has(id) && !history.complete && state.openId === cid) await loadOlder(cid);
  if (state.openId !== cid) return;
  renderMessages({ keepOffset: true });
  const item = $("messages").querySelector(`li[data-id="${CSS.escape(id)}"]`);
  if (!item) return;
  item.scrollIntoView({ block: "center" });
  item.classList.add("flash");
  setTimeout(() => item.classList.remove("flash"), FLASH_MS);
}
