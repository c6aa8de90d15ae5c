// What a conversation is about in the shop (an order, a product, a listing): chosen in the "New conversation"
// picker (picker.js sends it), shown under the conversation's header.

import { $ } from "./dom.js";
import { on } from "./hooks.js";
import { state } from "./state.js";

const KINDS = { order: "Order", product: "Product", listing: "Listing" };

/** Empty the picker's "About" fields. */
export function resetContext() {
  for (const id of ["context-type", "context-id", "context-title"]) $(id).value = "";
}

/**
 * The `context` of a new conversation from the picker's "About" fields: undefined when they are empty.
 * Throws an Error in plain words when they are half filled.
 */
export function pickedContext() {
  const [type, id, title] = ["context-type", "context-id", "context-title"].map((field) => $(field).value.trim());
  if (!type && !id && !title) return undefined;
  if (!type) throw new Error("Choose what the conversation is about: an order, a product or a listing");
  if (!id) throw new Error(`Give the ${type}'s number or reference`);
  return title ? { type, id, title } : { type, id };
}

/** "Order A-1001 · Blue sneakers" under the open conversation's header, when it has a context. */
function renderContext() {
  const context = state.conversations.get(state.openId)?.context;
  $("conversation-context").hidden = !context;
  $("conversation-context").textContent = context
    ? `${KINDS[context.type] ?? context.type} ${context.id}${context.title ? ` · ${context.title}` : ""}` : "";
}

export function wire() {
  on("render:head", renderContext);
}
