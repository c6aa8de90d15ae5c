// Embedded in a shop's page (docs/web-embed.md): the host hands platform tokens by postMessage; we sign in with them.

import { $, showError } from "./dom.js";
import { enterApp, scheduleRefresh } from "./session.js";
import { api, config, embed, getLive } from "./state.js";

/** Only the parent window, from an origin of MQCHAT_EMBED_ORIGINS; tokens are handled one at a time, in order. */
function hostMessage(event) {
  if (!embed.on || event.source !== window.parent) return;
  embed.queue = embed.queue.then(async () => {
    const { embed_origins: origins } = await config;
    if (!origins.includes(event.origin) || event.data?.type !== "mqchat:token" || typeof event.data.token !== "string") return;
    embed.host = event.origin;
    await signInFromHost(event.data.token);
  }).catch((error) => showError("embed-status", error));
}

/** Exchange the platform token: the first one starts the app, later ones renew the session (another user: start over). */
async function signInFromHost(token) {
  const previous = api.session?.user.id;
  try {
    await api.signIn("exchange", { token });
  } catch (error) {
    embed.tell({ type: "mqchat:error", code: error.code ?? "error", message: error.message });
    throw error;
  }
  embed.tell({ type: "mqchat:signed-in", user_id: api.session.user.id, external_id: api.session.user.external_id ?? null });
  if (!getLive()) return enterApp();
  if (api.session.user.id !== previous) {
    await getLive().stop();
    location.reload();
  } else scheduleRefresh();
}

/** On page load, embedded: an embedded session is always the host's current user, so wait for its token. */
export function awaitHost() {
  api.forget();
  $("embed-view").hidden = false;
}

export function wire() {
  window.addEventListener("message", hostMessage);
}
