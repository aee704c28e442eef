// The API client: the bearer token, JSON requests, and the server's clock.
//
// The token comes from the address's fragment (#token=..., never sent to the server) or the
// sign-in form, is kept in localStorage and removed from the address bar.

const KEY = "fw.token";
let token = null;
let onUnauthorized = () => {};

export function takeToken() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const given = fragment.get("token");
  if (given) {
    localStorage.setItem(KEY, given);
    history.replaceState(null, "", location.pathname + location.search);
  }
  token = localStorage.getItem(KEY);
  return token;
}

export function setToken(value) {
  token = value;
  if (value) localStorage.setItem(KEY, value);
  else localStorage.removeItem(KEY);
}

export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(`${status}: ${detail}`);
    this.status = status;
    this.detail = detail;
  }
}

// `path` with a JSON `body` (POST) or none; the answer's JSON, or the Response when `raw`.
export async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (!res.ok) {
    let detail = res.statusText;
    try {
      const answer = await res.json();
      detail = typeof answer.detail === "string" ? answer.detail : JSON.stringify(answer.detail);
    } catch {
      // not JSON: keep the status text
    }
    if (res.status === 401) onUnauthorized(detail);
    throw new ApiError(res.status, detail);
  }
  if (raw) return res;
  return res.status === 204 ? null : res.json();
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, v);
  return q.toString();
}

// The server's clock: whoami's `now`, moved on at `rate` simulated seconds per wall second.
const clock = { now: Date.now(), rate: 1, fetchedAt: Date.now(), offset: "Z" };

export function setClock(whoami) {
  clock.now = Date.parse(whoami.now);
  clock.rate = whoami.rate || 1;
  clock.fetchedAt = Date.now();
  const m = /([+-]\d{2}:\d{2}|Z)$/.exec(whoami.now);
  clock.offset = m ? m[1] : "Z";
}

export function serverNow() {
  return clock.now + clock.rate * (Date.now() - clock.fetchedAt);
}

// The server's UTC offset in minutes (from the form of whoami's `now`).
function offsetMinutes() {
  if (clock.offset === "Z") return 0;
  const sign = clock.offset[0] === "-" ? -1 : 1;
  return sign * (Number(clock.offset.slice(1, 3)) * 60 + Number(clock.offset.slice(4, 6)));
}

// The server's calendar date (YYYY-MM-DD) of a moment, `days` later.
export function serverDate(ms = serverNow(), days = 0) {
  return new Date(ms + offsetMinutes() * 60000 + days * 86400000).toISOString().slice(0, 10);
}

// Midnight of a server calendar date, as an ISO datetime with the server's offset.
export function serverMidnight(date) {
  return `${date}T00:00:00${clock.offset === "Z" ? "+00:00" : clock.offset}`;
}

export function toMs(at) {
  if (at === null || at === undefined || at === "") return null;
  if (typeof at === "number") return at;
  return /^\d+(\.\d+)?$/.test(at) ? Number(at) * 1000 : Date.parse(at);
}

export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

// "3 min ago", counted against the server's clock.
export function ago(at) {
  const ms = toMs(at);
  if (ms === null || Number.isNaN(ms)) return "";
  const seconds = (serverNow() - ms) / 1000;
  return seconds < 10 ? "just now" : `${duration(seconds)} ago`;
}

export function clockTime(at) {
  const ms = toMs(at);
  if (ms === null) return "";
  return new Date(ms + offsetMinutes() * 60000).toISOString().slice(0, 16).replace("T", " ");
}
