// DOM helpers: find by id, build elements (text always via textContent), times, error lines.

import { ApiError } from "./api.js";
import { plainWords } from "./words.js";

export const $ = (id) => document.getElementById(id);

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key.startsWith("data-") || key.startsWith("aria-") || key === "role") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

export function clock(iso) {
  return iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
}

/** Show an error (the API's in plain words) in the element `id`; null clears it. */
export function showError(id, error) {
  $(id).textContent = error ? (error instanceof ApiError ? plainWords(error.message) : String(error.message || error)) : "";
}
