// The web client's service worker (scope `/client/`): shows Web Push notifications and opens their conversation
// on click, in an open tab of the client if there is one, else in a new one. It caches nothing.

import { OPEN_CONVERSATION, clickTarget, notificationOf, tabFor } from "./notification.js";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let payload = null;
  try {
    payload = event.data?.json() ?? null;
  } catch {
    payload = null; // not JSON: still shown (browsers require a notification for every push), generically
  }
  const { title, options } = notificationOf(payload);
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(openFrom(event.notification.data));
});

async function openFrom(data) {
  const scope = self.registration.scope;
  const tab = tabFor(await self.clients.matchAll({ type: "window", includeUncontrolled: true }), scope);
  if (!tab) return self.clients.openWindow(clickTarget(scope, data));
  if (data?.conversation_id) tab.postMessage({ type: OPEN_CONVERSATION, conversation_id: data.conversation_id });
  return tab.focus();
}
