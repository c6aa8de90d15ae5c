// REST client: the session's tokens (sessionStorage, never URLs), JSON requests, one refresh on 401.

const SESSION_KEY = "mqchat.session";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  constructor() {
    this.session = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    this.onSession = () => {};
    this.onExpired = () => {};
    this.refreshing = null;
    this.expired = false;
  }

  get signedIn() {
    return this.session !== null;
  }

  /** Keep the tokens and MQTT block of a signup, login or refresh answer. */
  keep(auth) {
    this.session = { access_token: auth.access_token, refresh_token: auth.refresh_token, mqtt: auth.mqtt, user: auth.user };
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(this.session));
    this.expired = false;
    this.onSession(this.session);
  }

  /** The session can no longer be renewed: say so once, until new tokens are kept. */
  expire() {
    if (this.expired) return;
    this.expired = true;
    this.onExpired();
  }

  forget() {
    this.session = null;
    sessionStorage.removeItem(SESSION_KEY);
  }

  async signIn(mode, fields) {
    this.keep(await this.request("POST", `/api/auth/${mode}`, fields, { anonymous: true }));
    return this.session;
  }

  /** Exchange the refresh token for new tokens (one refresh at a time; none once it has been refused). */
  refresh() {
    if (this.expired) return Promise.reject(new ApiError(401, "session_expired", "the session has ended"));
    this.refreshing ??= this.request("POST", "/api/auth/refresh", { refresh_token: this.session.refresh_token }, { anonymous: true })
      .then((auth) => this.keep(auth), (error) => {
        if (error.status === 401) this.expire();
        throw error;
      })
      .finally(() => { this.refreshing = null; });
    return this.refreshing;
  }

  async request(method, path, body, { anonymous = false, raw = false, retried = false } = {}) {
    const headers = {};
    if (!anonymous && this.session) headers.Authorization = `Bearer ${this.session.access_token}`;
    let payload;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const response = await fetch(path, { method, headers, body: payload });
    if (response.status === 401 && !anonymous && this.session) {
      if (retried) this.expire(); // the refresh token no longer works either: sign in again
      else {
        await this.refresh().catch(() => {});
        return this.request(method, path, body, { raw, retried: true });
      }
    }
    if (!response.ok) {
      const detail = await response.json().catch(() => ({}));
      const error = detail.error || {};
      throw new ApiError(response.status, error.code || "http_error", error.message || response.statusText);
    }
    if (raw) return response;
    return response.status === 204 ? null : response.json();
  }

  get(path) { return this.request("GET", path); }
  post(path, body) { return this.request("POST", path, body ?? {}); }
}
