// Where modules meet: each registers handlers by name in its wire(); others emit the name instead of importing it.
//
// Names in use:
//   live events, by their `type`: "message.created", "ticket.updated", "receipt.read", "error", ...;
//     "presence" (event), "typing" (conversation id, event)
//   "signed-in" (user): set up the screen for this user, before connecting
//   "start": load what the app shows, once connected (awaited together)
//   "reconnected": the live connection is back after a break (events may have been missed): reload what is shown
//   "signing-out": let go of what belongs to the user, while the tokens still work (awaited)
//   "conversation-left" (id): the open conversation is no longer mine
//   "render:<part>" (options): redraw a part: list, head, messages, typing, attachments
//   "message-item" ({item, meta, message, mine}): add to one message's element while it is drawn
//   "conversation-opened" (id): a conversation is being opened (before its messages are drawn)
//   "composing" (request): a message is about to be sent; add to its outbox request (a quote)

const handlers = new Map(); // name -> [handler], in registration order

/** Call `handler` on every emit of `name`. */
export function on(name, handler) {
  if (!handlers.has(name)) handlers.set(name, []);
  handlers.get(name).push(handler);
}

/** Call the handlers of `name` in registration order (synchronously); the promise settles when all have. */
export function emit(name, ...args) {
  return Promise.all((handlers.get(name) ?? []).map((handler) => handler(...args)));
}

/** Redraw a part of the screen (whichever module owns it). */
export function render(part, options) {
  emit(`render:${part}`, options);
}
