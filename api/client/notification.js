// What a Web Push shows and where clicking it leads: pure functions shared by the service worker (sw.js), which
// uses them, and the page (notify.js) and the browser tests, which check them without a real click.

import { conversationHash } from "./links.js";

/** What the service worker posts to an open tab to have it open a conversation. */
export const OPEN_CONVERSATION = "mqchat:open-conversation";

/**
 * The notification for a push payload (`{type: "message.digest", conversation_id, title, body, count}`, see
 * docs/protocol.md): one per conversation (its tag), a newer digest replacing the older one with a sound.
 */
export function notificationOf(payload) {
  const cid = conversationHash(payload?.conversation_id) ? payload.conversation_id : null;
  const options = { body: typeof payload?.body === "string" ? payload.body : "", data: { conversation_id: cid } };
  if (cid) Object.assign(options, { tag: `conversation-${cid}`, renotify: true });
  return { title: typeof payload?.title === "string" && payload.title ? payload.title : "New messages", options };
}

/** The address a click opens: the conversation's deep link in the web client at `scope` (`…/client/`), or its list. */
export function clickTarget(scope, data) {
  return new URL(conversationHash(data?.conversation_id), scope).href;
}

/** The open tab of the web client at `scope` a click should bring forward (focused, else visible, else any), or null. */
export function tabFor(windows, scope) {
  const ours = windows.filter((tab) => tab.url.startsWith(scope));
  return ours.find((tab) => tab.focused) ?? ours.find((tab) => tab.visibilityState === "visible") ?? ours[0] ?? null;
}
