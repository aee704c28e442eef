// Silent devices and blind cells: the open maintenance orders (GET /v1/maintenance), reloaded when
// the event stream says one opened, was acknowledged or resolved. Maintenance, not fire warnings.
// On a team's phone (`canAck`, elements named `phone-maintenance-*`) each has an "On it" button
// (POST /v1/maintenance/{id}/ack); an order resolves itself when the device reports again.

import { ago, api, clockTime } from "./api.js";
import { h } from "./dom.js";

export function createDevices(root, { onBlind = () => {}, canAck = false } = {}) {
  const named = (what) => root.querySelector(`[data-testid=${canAck ? "phone-" : ""}maintenance-${what}]`);
  const list = named("list");
  const empty = named("empty");
  const count = named("count");
  const error = named("error");
  let orders = [];
  let timer = null;

  async function ack(id) {
    if (error) error.textContent = "";
    try {
      const answer = await api(`/v1/maintenance/${encodeURIComponent(id)}/ack`, { method: "POST" });
      orders = orders.map((o) => (o.id === id ? answer.order : o));
      render();
    } catch (err) {
      if (error) error.textContent = `Could not acknowledge ${id}: ${err.message}`;
    }
  }

  function item(o) {
    const where = o.grid_name || o.grid_id;
    const what =
      o.kind === "device"
        ? `${o.source} ${o.subject} silent`
        : `${where}: none of its ${o.devices} devices reporting`;
    const detail = o.kind === "device" ? ` in ${where}` : "";
    const taken = o.acked_by
      ? h("span", { class: "acked", "data-testid": "maintenance-acked", title: clockTime(o.acked_at) },
          ` · on it: ${o.acked_by} ${ago(o.acked_at)}`)
      : null;
    const button =
      canAck && !o.acked_by
        ? h("button", { type: "button", class: "big primary", "data-testid": "maintenance-ack", onclick: () => ack(o.id) }, "On it")
        : null;
    return h(
      "li",
      { "data-testid": "maintenance-item", "data-kind": o.kind, "data-subject": o.subject, "data-acked": o.acked_by ? "1" : "0" },
      h("strong", {}, what),
      detail,
      h("span", { class: "team" }, o.team && !canAck ? ` · ${o.team}` : ""),
      h("span", { class: "age", title: clockTime(o.since) }, ` · since ${ago(o.since)}`),
      taken,
      button ? h("div", { class: "actions" }, button) : null,
    );
  }

  function render() {
    list.replaceChildren(...orders.map(item));
    empty.hidden = orders.length > 0;
    count.textContent = orders.length ? `(${orders.length})` : "";
  }

  async function load() {
    try {
      orders = (await api("/v1/maintenance?limit=200")).orders;
    } catch {
      return; // kept as it was: the next change or tick tries again
    }
    render();
    onBlind(orders.filter((o) => o.kind === "cell").map((o) => o.subject));
  }

  return {
    load,
    render,
    loadSoon() {
      clearTimeout(timer);
      timer = setTimeout(load, 300);
    },
  };
}
