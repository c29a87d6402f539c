// The dashboard's only way to the daemon: its public REST API, with the operator's credentials.
// Credentials are asked for once (see app.js), kept in sessionStorage (this tab only) and sent as the
// Authorization header. A 401 asks again, once, then gives up with the API's message.

const KEY = "reconciler.authorization";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
    this.detail = detail;
  }
}

let askForCredentials = null; // async () => boolean, installed by app.js
let asking = null;

export function onUnauthorized(handler) {
  askForCredentials = handler;
}

export function authorization() {
  return sessionStorage.getItem(KEY);
}

export function signIn(header) {
  sessionStorage.setItem(KEY, header);
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

export function basic(user, password) {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return `Basic ${btoa(binary)}`;
}

export function bearer(token) {
  return `Bearer ${token.trim()}`;
}

function headers(json) {
  // X-Requested-With: a 401 then challenges with Bearer, not Basic, so the browser does not put its
  // own password prompt over the page (the dashboard asks itself, see dialogs.js)
  const out = { Accept: "application/json", "X-Requested-With": "reconciler-dashboard" };
  const auth = authorization();
  if (auth) out.Authorization = auth;
  if (json) out["Content-Type"] = "application/json";
  return out;
}

async function credentialsAgain() {
  if (!askForCredentials) return false;
  if (!asking) asking = askForCredentials().finally(() => { asking = null; });
  return asking;
}

export async function request(method, path, { body, query, retry = true } = {}) {
  const url = query ? `${path}?${new URLSearchParams(Object.entries(query).filter(([, v]) => v !== null && v !== undefined && v !== ""))}` : path;
  let response;
  try {
    response = await fetch(url, { method, headers: headers(body !== undefined), body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    throw new ApiError(0, `the daemon cannot be reached (${error.message})`);
  }
  if (response.status === 401 && retry && (await credentialsAgain())) {
    return request(method, path, { body, query, retry: false });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, detail);
  }
  return data;
}

export const get = (path, query) => request("GET", path, { query });
export const post = (path, body, query) => request("POST", path, { body: body ?? {}, query });
export const del = (path, query) => request("DELETE", path, { query });

// Server-sent events from GET /events/stream, read with fetch so that the Authorization header goes
// along (EventSource cannot send one). Calls onEvent(event) per `data:` block until `signal` aborts;
// calls onOpen() once it is open; resolves when the stream ends, rejects with ApiError when it cannot be opened.
export async function streamEvents(onEvent, signal, since, onOpen) {
  const query = since ? `?since=${encodeURIComponent(since)}` : "";
  let response;
  try {
    response = await fetch(`/events/stream${query}`, { headers: { ...headers(false), Accept: "text/event-stream" }, signal });
  } catch (error) {
    if (signal.aborted) return;
    throw new ApiError(0, `the event stream cannot be opened (${error.message})`);
  }
  if (!response.ok || !response.body) throw new ApiError(response.status, `the event stream answered ${response.status}`);
  if (onOpen) onOpen();
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block.split("\n").filter((line) => line.startsWith("data:")).map((line) => line.slice(5).trim()).join("\n");
        if (!data) continue;
        try {
          onEvent(JSON.parse(data));
        } catch {
          // a block that is not JSON is not an event of ours: skip it
        }
      }
    }
  } catch (error) {
    if (!signal.aborted) throw new ApiError(0, `the event stream broke (${error.message})`);
  }
}
