// The page: sign in, load the state from the API, then follow the change feed.
//
// Order matters so that nothing falls between: whoami (its feed_id), then the lists, then the
// stream after that feed_id. Every change seen on the stream is applied at once from the event
// and then confirmed by reading the record it names; a `reset` reloads everything. A dashboard or
// admin token gets the centre view; a team token the phone view of its own orders.

import { api, setClock, setToken, takeToken, toMs, whenUnauthorized } from "./api.js";
import { beep, initAlarm } from "./alarm.js";
import { createBoard } from "./board.js";
import { createDevices } from "./devices.js";
import { createHistory } from "./history.js";
import { createIncidentList } from "./incidents.js";
import { createMap } from "./map.js";
import { createMute } from "./mute.js";
import { createOutcome } from "./outcome.js";
import { createPhone } from "./phone.js";
import { connect } from "./stream.js";

const $ = (sel) => document.querySelector(sel);
const state = { me: null, incidents: new Map(), orders: new Map() };
const CONNECTION = {
  idle: "not connected",
  connecting: "connecting…",
  live: "live",
  down: "stream down: reconnecting",
  polling: "no live stream: refreshing every 10 s",
};

function show(id) {
  for (const view of ["login", "centre", "phone", "other"]) $(`#${view}`).hidden = view !== id;
}

function connection(st) {
  const el = $("[data-testid=connection]");
  el.dataset.state = st;
  el.textContent = CONNECTION[st];
}

const iso = (at) => (at ? new Date(toMs(at)).toISOString() : null);
const PLACE = ["team", "village", "township", "district", "grid_id"];

function where(d) {
  const out = { lat: Number(d.lat), lon: Number(d.lon) };
  for (const k of PLACE) out[k] = d[k] || null;
  return out;
}

// Reads one record per id, keeping only the answer to the latest read of each.
function reader(path, apply) {
  const latest = new Map();
  return async (id) => {
    const n = (latest.get(id) || 0) + 1;
    latest.set(id, n);
    try {
      const answer = await api(path(id));
      if (latest.get(id) === n) apply(answer);
    } catch {
      // the event's own fields stay until the next change or reload
    }
  };
}

let render = () => {};
let renderTimer = null;
function renderSoon() {
  clearTimeout(renderTimer);
  renderTimer = setTimeout(() => render(), 30);
}

function setOrder(order) {
  if (order.state === "closed") state.orders.delete(order.id);
  else state.orders.set(order.id, order);
  const inc = state.incidents.get(order.incident_id);
  if (inc && !inc.order_id) state.incidents.set(inc.id, { ...inc, order_id: order.id });
  renderSoon();
}

const readOrder = reader(
  (id) => `/v1/dispatches/${encodeURIComponent(id)}`,
  (answer) => setOrder(answer.order),
);
const readIncident = reader(
  (id) => `/v1/incidents/${encodeURIComponent(id)}`,
  (record) => {
    const { order, order_log, events, ...rest } = record;
    if (rest.status === "open") state.incidents.set(rest.id, rest);
    else state.incidents.delete(rest.id);
    renderSoon();
  },
);

function onOrder(d, { team, isNew }) {
  if (team && d.team !== team) return;
  const before = state.orders.get(d.order);
  const at = iso(d.at);
  setOrder({
    ...before,
    id: d.order,
    incident_id: d.incident,
    state: d.state,
    severity: d.severity,
    responder: d.responder,
    ...where(d),
    created_at: before ? before.created_at : at,
    escalations: (before ? before.escalations || 0 : 0) + (d.event === "escalated" ? 1 : 0),
  });
  if (d.event === "created" && !before) isNew();
  readOrder(d.order);
}

function onIncident(d, { isNew }) {
  const before = state.incidents.get(d.incident);
  if (d.state === "closed") {
    state.incidents.delete(d.incident);
  } else {
    const at = iso(d.observed_at) || iso(d.at);
    state.incidents.set(d.incident, {
      first_seen: at,
      recorded_at: iso(d.at),
      ...before,
      id: d.incident,
      status: "open",
      severity: d.severity,
      last_seen: at,
      order_id: (before && before.order_id) || d.order || null,
      ...where(d),
    });
    if (d.event === "opened" && !before) isNew();
  }
  readIncident(d.incident);
  renderSoon();
}

async function allPages(path) {
  const out = [];
  let cursor = null;
  for (let page = 0; page < 10; page++) {
    const answer = await api(cursor ? `${path}&cursor=${encodeURIComponent(cursor)}` : path);
    out.push(...answer.incidents);
    cursor = answer.next;
    if (!cursor) break;
  }
  return out;
}

async function whoami() {
  const me = await api("/v1/whoami");
  setClock(me);
  state.me = me;
  $("[data-testid=who]").textContent = `${me.name} (${me.role})`;
  return me;
}

// Load, then follow the stream; a `reset` starts again from the load.
function follow(load, onEvent) {
  let stream = null;
  async function start() {
    let feedId;
    try {
      feedId = await load();
    } catch {
      connection("down");
      setTimeout(start, 5000);
      return;
    }
    stream = connect(feedId, {
      onEvent,
      onState: connection,
      onReset() {
        stream.close();
        start();
      },
      poll: () => load().catch(() => connection("down")),
    });
  }
  return start();
}

async function centre(me) {
  show("centre");
  const root = $("#centre");
  const admin = me.role === "admin";
  const mute = createMute(root, { admin, onMasks: (masks) => map.setMasks(masks) });
  const map = createMap($("#map"), { onCell: (id) => mute.selectCell(id) });
  const list = createIncidentList(root, { onSelect: (id) => map.focus(id) });
  const board = createBoard(root);
  const outcome = createOutcome(root);
  const devices = createDevices(root, { onBlind: (ids) => map.setBlind(ids) });
  const history = createHistory(root);
  render = () => {
    map.render(state);
    list.render(state);
    board.render(state);
    devices.render();
  };
  history.init();

  const [grid, cameras] = await Promise.all([
    api("/v1/grid").catch(() => ({ type: "FeatureCollection", features: [] })),
    api("/v1/cameras").catch(() => ({ type: "FeatureCollection", features: [] })),
  ]);
  map.setGrid(grid);
  map.setCameras(cameras);
  mute.setCells(grid.features.map((f) => f.properties.grid_id));

  async function load() {
    const current = await whoami();
    const [incidents, dispatches] = await Promise.all([
      allPages("/v1/incidents?status=open&limit=200"),
      api("/v1/dispatches"),
    ]);
    state.incidents = new Map(incidents.map((r) => [r.id, r]));
    state.orders = new Map(dispatches.orders.map((o) => [o.id, o]));
    render();
    outcome.refresh();
    mute.load();
    devices.load();
    return current.feed_id;
  }

  const handlers = { isNew: beep };
  await follow(load, (kind, d) => {
    if (kind === "incident") onIncident(d, handlers);
    else if (kind === "maintenance") devices.loadSoon();
    else {
      onOrder(d, handlers);
      outcome.refreshSoon();
      if (d.event === "mask") mute.load();
    }
  });
  setInterval(() => whoami().catch(() => {}), 60000);
  setInterval(() => outcome.refresh(), 60000);
  setInterval(() => mute.load(), 60000);
  setInterval(() => devices.load(), 60000);
  setInterval(renderSoon, 15000); // relative times move on
}

async function phone(me) {
  show("phone");
  document.body.classList.add("phone-body");
  $("[data-testid=phone-team]").textContent = me.team;
  const view = createPhone($("#phone"), { state, changed: setOrder });
  const devices = createDevices($("#phone"), { canAck: true }); // its own, from its token
  render = () => {
    view.render();
    devices.render();
  };

  async function load() {
    const current = await whoami();
    const dispatches = await api("/v1/dispatches");
    state.orders = new Map(dispatches.orders.map((o) => [o.id, o]));
    render();
    devices.load();
    return current.feed_id;
  }

  await follow(load, (kind, d) => {
    if (kind === "order") onOrder(d, { team: me.team, isNew: beep });
    else if (kind === "maintenance" && d.team === me.team) devices.loadSoon();
  });
  setInterval(() => whoami().catch(() => {}), 60000);
  setInterval(() => devices.load(), 60000);
  setInterval(renderSoon, 15000);
}

function login(message = "") {
  show("login");
  $("[data-testid=logout]").hidden = true;
  $("[data-testid=login-error]").textContent = message;
  $("#token-input").focus();
}

async function boot() {
  let me;
  try {
    me = await whoami();
  } catch (err) {
    setToken(null);
    return login(err.status === 401 ? "That token is unknown or revoked." : `Cannot sign in: ${err.message}`);
  }
  $("[data-testid=logout]").hidden = false;
  if (me.role === "dashboard" || me.role === "admin") return centre(me);
  if (me.role.startsWith("team:")) return phone(me);
  show("other");
  $("[data-testid=other-role]").textContent =
    `This token's role is ${me.role}: it cannot view the dashboard. Sign in with a dashboard, admin or team token.`;
}

initAlarm($("[data-testid=sound-toggle]"));
$("[data-testid=login-form]").addEventListener("submit", (e) => {
  e.preventDefault();
  setToken($("#token-input").value.trim());
  boot();
});
$("[data-testid=logout]").addEventListener("click", async () => {
  await api("/v1/session", { method: "DELETE" }).catch(() => {});
  setToken(null);
  location.reload();
});
whenUnauthorized(() => {
  if (state.me) {
    setToken(null);
    location.reload();
  }
});

if (takeToken()) boot();
else login();
