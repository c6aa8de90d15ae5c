// Deep links in the fragment, so they survive the redirect from `/` and the sign-in form (nothing reloads):
// `#/c/<conversation id>` opens a conversation (email digests and push notifications link there),
// `#/settings/email` offers to stop email notifications (the digests' List-Unsubscribe),
// `#/admin/<tab>` opens the console on that tab (CONSOLE_TABS; admins, and agents for the queue and canned replies).
// Nothing here runs on import: the service worker (sw.js) imports it too.

const OBJECT_ID = /^[0-9a-f]{24}$/;
export const CONSOLE_TABS = ["queue", "agents", "reports", "moderation", "teams", "routing", "canned", "users", "audit"];

/** The fragment that opens conversation `cid` (`#/c/<id>`), or "" (the list) for anything not a conversation id. */
export function conversationHash(cid) {
  return typeof cid === "string" && OBJECT_ID.test(cid) ? `#/c/${cid}` : "";
}

/** Older digests linked `/?conversation=<id>`: the same link, moved into the fragment. */
export function adoptQueryLink() {
  const params = new URLSearchParams(location.search);
  const cid = params.get("conversation");
  if (!cid) return;
  params.delete("conversation");
  const query = params.toString();
  history.replaceState(null, "", `${location.pathname}${query ? `?${query}` : ""}${conversationHash(cid)}`);
}

/** What the current address asks for: {conversation: id}, {settings: "email"}, {admin: tab} or null. */
export function currentLink() {
  const [, kind, value] = location.hash.match(/^#\/(c|settings|admin)\/([^/]+)$/) ?? [];
  if (kind === "c" && OBJECT_ID.test(value)) return { conversation: value };
  if (kind === "settings" && value === "email") return { settings: "email" };
  if (kind === "admin" && CONSOLE_TABS.includes(value)) return { admin: value };
  return null;
}

/** Show `#/admin/<tab>` in the address bar (a reload opens the console there again). */
export function linkConsole(tab, { newEntry = true } = {}) {
  const hash = `#/admin/${tab}`;
  if (location.hash === hash) return;
  if (newEntry) history.pushState(null, "", hash);
  else history.replaceState(null, "", hash);
}

/** Show `#/c/<id>` in the address bar: a reload or a shared bookmark opens it again; Back returns to the list. */
export function linkConversation(cid, { newEntry = true } = {}) {
  const hash = conversationHash(cid);
  if (location.hash === hash) return;
  if (newEntry) history.pushState(null, "", hash);
  else history.replaceState(null, "", hash);
}

/** Drop the deep link (the list is shown, or this tab signs out). */
export function clearLink() {
  if (location.hash) history.replaceState(null, "", `${location.pathname}${location.search}`);
}
