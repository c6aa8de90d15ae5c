// Files: uploading one for the message being written, and showing a message's (images inline, others to download).

import { $, el, showError } from "./dom.js";
import { on } from "./hooks.js";
import { bottom } from "./messages.js";
import { api, state } from "./state.js";

async function attachFile(event) {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  showError("composer-error", null);
  try {
    state.attachments.push(await api.request("POST", "/api/attachments", form));
    renderAttachments();
  } catch (error) {
    showError("composer-error", error);
  }
}

/** The files attached to the message being written, each with a remove button. */
function renderAttachments() {
  $("pending-files").replaceChildren(...state.attachments.map((a, index) => el("span", {},
    `Attached: ${a.filename} `, el("button", { type: "button", class: "link", text: "remove", "aria-label": `remove ${a.filename}`,
      onclick: () => { state.attachments.splice(index, 1); renderAttachments(); } }), " ")));
}

function attachmentView(attachment) {
  if (attachment.kind === "image") {
    const img = el("img", { alt: attachment.filename, onload: (event) => bottom.grew(event.target) });
    loadBlob(attachment).then((url) => { img.src = url; }, () => { img.alt = `${attachment.filename} (unavailable)`; });
    return img;
  }
  return el("button", {
    type: "button", class: "link", text: `Download ${attachment.filename}`,
    onclick: async () => el("a", { href: await loadBlob(attachment), download: attachment.filename }).click(),
  });
}

/** The file behind a token (the Authorization header cannot go on an <img>), kept as an object URL. */
async function loadBlob(attachment) {
  if (!state.images.has(attachment.id)) {
    const response = await api.request("GET", attachment.url, undefined, { raw: true });
    state.images.set(attachment.id, URL.createObjectURL(await response.blob()));
  }
  return state.images.get(attachment.id);
}

export function wire() {
  on("render:attachments", renderAttachments);
  on("message-item", ({ item, message }) => {
    if (!message.deleted) for (const attachment of message.attachments ?? []) item.append(attachmentView(attachment));
  });
  $("file").addEventListener("change", attachFile);
}
