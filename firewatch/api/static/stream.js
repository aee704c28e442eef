// The live change feed: POST /v1/session (EventSource cannot send a header), then an EventSource on
// /v1/stream after the feed id the lists were loaded at. EventSource reconnects by itself with
// Last-Event-ID; when it gives up (a refused reconnect), this opens a new one after the last id
// seen. Without a stream (refused or missing) the page polls instead.

import { api, ApiError } from "./api.js";

const RETRY_MS = [1000, 2000, 5000, 10000, 30000];

// onEvent(kind, data), onReset(reason), onState("live" | "connecting" | "down" | "polling").
export function connect(after, { onEvent, onReset, onState, poll }) {
  let source = null;
  let lastId = after;
  let failures = 0;
  let timer = null;
  let stopped = false;

  async function open() {
    if (stopped) return;
    onState("connecting");
    try {
      await api("/v1/session", { method: "POST" });
    } catch (err) {
      if (err instanceof ApiError && [403, 404, 405].includes(err.status)) return polling();
      return retry();
    }
    source = new EventSource(`/v1/stream?after=${encodeURIComponent(lastId)}`);
    source.onopen = () => {
      failures = 0;
      onState("live");
    };
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) retry(); // it gave up: open a new one
      else onState("down"); // EventSource is reconnecting by itself (Last-Event-ID)
    };
    for (const kind of ["incident", "order", "maintenance"]) {
      source.addEventListener(kind, (e) => {
        if (e.lastEventId) lastId = e.lastEventId;
        onEvent(kind, JSON.parse(e.data));
      });
    }
    source.addEventListener("reset", (e) => {
      let reason = "";
      try {
        reason = JSON.parse(e.data).reason;
      } catch {
        // keep it empty
      }
      onReset(reason);
    });
  }

  function retry() {
    if (source) source.close();
    source = null;
    onState("down");
    const wait = RETRY_MS[Math.min(failures, RETRY_MS.length - 1)];
    failures += 1;
    clearTimeout(timer);
    timer = setTimeout(open, wait);
  }

  function polling() {
    onState("polling");
    timer = setInterval(poll, 10000);
  }

  open();
  return {
    close() {
      stopped = true;
      clearTimeout(timer);
      clearInterval(timer);
      if (source) source.close();
    },
  };
}
