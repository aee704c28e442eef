// Silent devices and blind cells: the open maintenance orders (GET /v1/maintenance), reloaded when
// the event stream says one opened or resolved. Maintenance, not fire warnings.

import { ago, api, clockTime } from "./api.js";
import { h } from "./dom.js";

export function createDevices(root, { onBlind = () => {} } = {}) {
  const list = root.querySelector("[data-testid=maintenance-list]");
  const empty = root.querySelector("[data-testid=maintenance-empty]");
  const count = root.querySelector("[data-testid=maintenance-count]");
  let orders = [];
  let timer = null;

  function item(o) {
    const where = o.grid_name || o.grid_id;
    const what =
      o.kind === "device"
        ? `${o.source} ${o.subject} silent`
        : `${where}: none of its ${o.devices} devices reporting`;
    const detail = o.kind === "device" ? ` in ${where}` : "";
    return h(
      "li",
      { "data-testid": "maintenance-item", "data-kind": o.kind, "data-subject": o.subject },
      h("strong", {}, what),
      detail,
      h("span", { class: "team" }, o.team ? ` · ${o.team}` : ""),
      h("span", { class: "age", title: clockTime(o.since) }, ` · since ${ago(o.since)}`),
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
