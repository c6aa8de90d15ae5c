// Web push from the page: the "Notify me" control, subscribing this browser with the server's VAPID key (the
// subscription is remembered for every tab of the browser, in localStorage), unsubscribing it on sign-out, and
// opening the conversation whose notification was clicked (sw.js asks an open tab to).

import { $ } from "./dom.js";
import { on } from "./hooks.js";
import { conversationHash } from "./links.js";
import { OPEN_CONVERSATION } from "./notification.js";
import { api, embed, state } from "./state.js";

const KEPT = "mqchat.push"; // {user_id, id}: who subscribed this browser, and the subscription's id on the server
const SUBSCRIBE_TIMEOUT_MS = 20_000;
const SIGN_OUT_TIMEOUT_MS = 5_000;
const NOTES = {
  offer: "Get a notification when messages wait for you and mqchat is closed.",
  busy: "Turning notifications on…",
  on: "Notifications are on in this browser.",
  blocked: "Notifications are blocked for this site: allow them in the browser's site settings to be notified.",
};

let registration = null; // the service worker's registration, once this browser and the server can push
let serverKey = null; // the server's VAPID public key (base64url)

/** Push needs a service worker, the Push API and notifications; an embedded client leaves them to its host page. */
function pushPossible() {
  return !embed.on && "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

function kept() {
  return JSON.parse(localStorage.getItem(KEPT) || "null");
}

/** The control in one of its modes: hidden, or one of NOTES with its button. */
function show(mode) {
  $("notify").hidden = mode === "hidden";
  $("notify-state").textContent = NOTES[mode] ?? "";
  $("notify-on").hidden = mode !== "offer";
  $("notify-off").hidden = mode !== "on";
}

function failed(error) {
  $("notify-error").textContent = error ? `Notifications could not be turned on: ${error.message}` : "";
}

function withTimeout(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(what)), ms); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function bytesOf(base64url) {
  return Uint8Array.from(atob(base64url.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
}

/** This browser's subscription was made by `me` (or renewed by the browser since), for the server's current key. */
function isMine(subscription, me) {
  if (kept()?.user_id !== me.id) return false;
  const key = subscription.options?.applicationServerKey;
  const wanted = bytesOf(serverKey);
  return !key || (key.byteLength === wanted.length && new Uint8Array(key).every((byte, i) => byte === wanted[i]));
}

/** Register the subscription with the server (which replaces one with the same endpoint) and remember its id. */
async function register(subscription, me) {
  const { id } = await api.post("/api/push/subscriptions", subscription.toJSON());
  localStorage.setItem(KEPT, JSON.stringify({ user_id: me.id, id }));
}

/**
 * On sign-in: offer the control when the server has a VAPID key and the browser can push. A subscription this user
 * made here is registered again (the server may have dropped it); anyone else's is removed from the browser.
 */
async function setUp(me) {
  show("hidden");
  failed(null);
  if (!pushPossible()) return;
  ({ public_key: serverKey } = await api.get("/api/push/vapid-public-key"));
  if (!serverKey) return;
  registration = await navigator.serviceWorker.register("sw.js", { type: "module" });
  const subscription = await registration.pushManager.getSubscription();
  if (subscription && Notification.permission === "granted" && isMine(subscription, me)) {
    await register(subscription, me);
    return show("on");
  }
  localStorage.removeItem(KEPT);
  await subscription?.unsubscribe();
  show(Notification.permission === "denied" ? "blocked" : "offer");
}

/** "Notify me": ask permission, subscribe with the server's key, register the subscription. */
async function turnOn() {
  failed(null);
  show("busy");
  try {
    if ((await Notification.requestPermission()) !== "granted") return show(Notification.permission === "denied" ? "blocked" : "offer");
    const subscription = await withTimeout(
      registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytesOf(serverKey) }),
      SUBSCRIBE_TIMEOUT_MS, "the browser's push service did not answer");
    try {
      await register(subscription, state.me);
    } catch (error) {
      await subscription.unsubscribe(); // no browser subscription the server does not know of
      throw error;
    }
    show("on");
  } catch (error) {
    show("offer");
    failed(error);
  }
}

/** Stop pushing to this browser: unsubscribe it and delete its subscription on the server (each even if the other fails). */
async function turnOff() {
  const record = kept();
  localStorage.removeItem(KEPT);
  const current = registration ?? (await navigator.serviceWorker?.getRegistration());
  const subscription = await current?.pushManager.getSubscription();
  await Promise.allSettled([
    record?.user_id === state.me?.id && api.request("DELETE", `/api/push/subscriptions/${record.id}`),
    subscription?.unsubscribe(),
  ]);
}

/** sw.js asks this tab to open the conversation whose notification was clicked: the address says it (routing.js). */
function openFromNotification(event) {
  if (event.data?.type !== OPEN_CONVERSATION || embed.on) return;
  const hash = conversationHash(event.data.conversation_id);
  if (hash && location.hash !== hash) location.hash = hash;
}

export function wire() {
  on("signed-in", (me) => { setUp(me).catch(() => show("hidden")); });
  on("signing-out", () => withTimeout(turnOff(), SIGN_OUT_TIMEOUT_MS, "sign-out").catch(() => {}));
  $("notify-on").addEventListener("click", turnOn);
  $("notify-off").addEventListener("click", () => turnOff().then(() => show("offer")));
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", openFromNotification);
    navigator.serviceWorker.startMessages();
  }
}
