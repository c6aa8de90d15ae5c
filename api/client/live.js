// The MQTT-over-WebSocket connection: persistent session with a stable per-browser client id,
// own presence (retained, with a Last Will), outbox requests, and the topics the UI listens to.

const DEVICES_KEY = "mqchat.devices";

function newDeviceId() {
  return Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function holdLock(name) {
  // Resolves true once this tab holds the lock (kept until the tab closes), false if another tab has it.
  return new Promise((resolve) => {
    navigator.locks.request(name, { ifAvailable: true }, (lock) => {
      resolve(lock !== null);
      return lock ? new Promise(() => {}) : null;
    });
  });
}

/**
 * A stable client id per browser and user: the first open tab gets the browser's first device id,
 * a second tab the second one, and so on (two live connections may not share a client id, or the
 * broker would keep switching between them). Each id keeps its persistent session across reloads.
 */
async function claimDeviceId(userId) {
  const key = `${DEVICES_KEY}.${userId}`;
  const devices = JSON.parse(localStorage.getItem(key) || "[]");
  if (!navigator.locks) {
    if (!devices.length) localStorage.setItem(key, JSON.stringify([newDeviceId()]));
    return JSON.parse(localStorage.getItem(key))[0];
  }
  for (const id of devices) if (await holdLock(`mqchat-client-${userId}-${id}`)) return id;
  const id = newDeviceId();
  await holdLock(`mqchat-client-${userId}-${id}`);
  localStorage.setItem(key, JSON.stringify([...JSON.parse(localStorage.getItem(key) || "[]"), id]));
  return id;
}

export class Live {
  /**
   * handlers: onInbox(event), onTickets(event), onPresence(presence), onTyping(conversationId, event),
   * onReceipt(event), onStatus("online" | "offline" | "connecting"), onConnect()
   */
  constructor(api, handlers) {
    this.api = api;
    this.handlers = handlers;
    this.client = null;
    this.presenceTopics = new Set();
    this.conversationTopic = null;
  }

  get userId() { return this.api.session.user.id; }

  async start() {
    const { mqtt: info, user } = this.api.session;
    this.clientId = `${info.client_id_prefix}-web-${await claimDeviceId(user.id)}`;
    this.presenceTopic = `chat/users/${user.id}/outbox/presence/${this.clientId}`;
    this.client = window.mqtt.connect(info.ws_url, {
      clientId: this.clientId,
      username: info.username,
      password: info.password,
      clean: false,
      protocolVersion: 4,
      // 1-3 s, drawn once per page: the devices a broker (node) drops together do not come back together
      reconnectPeriod: 1000 + Math.floor(Math.random() * 2000),
      reconnectOnConnackError: true, // a refused CONNECT (expired token) is retried with the renewed one
      connectTimeout: 10_000,
      will: { topic: this.presenceTopic, payload: JSON.stringify({ status: "offline" }), qos: 1, retain: true },
    });
    this.handlers.onStatus("connecting");
    this.client.on("connect", () => this.connected());
    this.client.on("close", () => this.handlers.onStatus("offline"));
    this.client.on("reconnect", () => this.handlers.onStatus("connecting"));
    this.client.on("error", (error) => {
      // A refused CONNECT (expired access token): renew it; the next reconnect uses the new password.
      if (error && (error.code === 4 || error.code === 5)) this.api.refresh().catch(() => {});
    });
    this.client.on("message", (topic, payload) => this.received(topic, payload));
  }

  /** New tokens from a refresh: the next (re)connect presents them. */
  updateCredentials(session) {
    if (this.client) this.client.options.password = session.mqtt.password;
  }

  connected() {
    const uid = this.userId;
    const topics = { [`chat/users/${uid}/inbox`]: { qos: 1 } };
    if (["agent", "admin"].includes(this.api.session.user.role)) topics["chat/agents/tickets"] = { qos: 1 };
    for (const topic of this.presenceTopics) topics[topic] = { qos: 0 };
    if (this.conversationTopic) topics[this.conversationTopic] = { qos: 0 };
    this.client.subscribe(topics);
    this.setPresence(document.visibilityState === "hidden" ? "away" : "online");
    this.handlers.onStatus("online");
    this.handlers.onConnect();
  }

  received(topic, payload) {
    let event;
    try {
      event = JSON.parse(new TextDecoder().decode(payload));
    } catch {
      return;
    }
    const parts = topic.split("/");
    if (topic === `chat/users/${this.userId}/inbox`) {
      if (event.type === "receipt.read") this.handlers.onReceipt(event);
      else this.handlers.onInbox(event);
    } else if (topic === "chat/agents/tickets") this.handlers.onTickets(event);
    else if (parts[1] === "presence") this.handlers.onPresence(event);
    else if (parts[1] === "conversations" && parts[3] === "typing") this.handlers.onTyping(parts[2], event);
  }

  watchPresence(userId) {
    const topic = `chat/presence/${userId}`;
    if (this.presenceTopics.has(topic)) return;
    this.presenceTopics.add(topic);
    if (this.client?.connected) this.client.subscribe(topic, { qos: 0 });
  }

  /** Typing indicators of the open conversation only. */
  watchConversation(conversationId) {
    const topic = conversationId ? `chat/conversations/${conversationId}/typing` : null;
    if (topic === this.conversationTopic) return;
    if (this.conversationTopic && this.client?.connected) this.client.unsubscribe(this.conversationTopic);
    this.conversationTopic = topic;
    if (topic && this.client?.connected) this.client.subscribe(topic, { qos: 0 });
  }

  outbox(action, request, qos = 1) {
    this.client.publish(`chat/users/${this.userId}/outbox/${action}`, JSON.stringify(request), { qos });
  }

  setPresence(status) {
    if (this.client?.connected) {
      this.client.publish(this.presenceTopic, JSON.stringify({ status }), { qos: 1, retain: true });
    }
  }

  /** Say offline (a Will is not sent after a clean disconnect), then close. */
  stop() {
    if (!this.client) return Promise.resolve();
    const client = this.client;
    this.client = null;
    return new Promise((resolve) => {
      const end = () => client.end(false, {}, resolve);
      if (!client.connected) return client.end(true, {}, resolve);
      client.publish(this.presenceTopic, JSON.stringify({ status: "offline" }), { qos: 1, retain: true }, end);
    });
  }
}
