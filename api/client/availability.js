// Staff availability: the top bar's switch (online | busy | offline), kept in step with the desk's live events.

import { $ } from "./dom.js";
import { on } from "./hooks.js";
import { api, isStaff, state } from "./state.js";

/** An agent status {availability (chosen), presence, status (the result)} of mine. */
function show(agent) {
  const select = $("availability");
  select.value = agent.availability;
  select.dataset.status = agent.status;
  select.title = agent.status === agent.availability ? "" : `${agent.status}: no device connected`;
}

async function load() {
  if (isStaff(state.me)) show(await api.get("/api/agents/me/availability"));
}

async function choose() {
  try {
    show(await api.request("PUT", "/api/agents/me/availability", { availability: $("availability").value }));
  } catch (error) {
    alert(error.message);
  }
}

function availabilityEvent({ agent }) {
  if (agent.user_id === state.me.id) show(agent);
}

function signedIn(me) {
  $("availability-switch").hidden = !isStaff(me);
}

export function wire() {
  on("signed-in", signedIn);
  on("start", load);
  on("agent.availability", availabilityEvent);
  $("availability").addEventListener("change", choose);
}
