// The dispatch board: every open order (GET /v1/dispatches), who must answer it, its state, how
// long it has waited and how often it was escalated; orders past their SLA stand out.

import { duration, serverNow, toMs } from "./api.js";
import { h, place, rank, severityTag, STATE_LABELS } from "./dom.js";

const ORDER = { pending: 0, acknowledged: 1, on_scene: 2 };

export function createBoard(root) {
  const body = root.querySelector("[data-testid=board] tbody");
  const empty = root.querySelector("[data-testid=board-empty]");

  function waited(o) {
    const created = toMs(o.created_at);
    if (o.state === "pending") return `waiting ${duration((serverNow() - created) / 1000)}`;
    const acked = toMs(o.acked_at) ?? toMs(o.on_scene_at);
    return acked ? `answered in ${duration((acked - created) / 1000)}` : "";
  }

  function render(state) {
    const orders = [...state.orders.values()].sort(
      (a, b) =>
        (ORDER[a.state] ?? 9) - (ORDER[b.state] ?? 9) ||
        rank(b.severity) - rank(a.severity) ||
        toMs(a.created_at) - toMs(b.created_at),
    );
    empty.hidden = orders.length > 0;
    body.replaceChildren(
      ...orders.map((o) => {
        const overdue = o.state === "pending" && o.sla_deadline && toMs(o.sla_deadline) < serverNow();
        const escalated = o.responder && o.team && o.responder !== `team:${o.team}`;
        return h(
          "tr",
          {
            class: overdue ? "overdue" : "",
            "data-testid": "board-row",
            "data-order": o.id,
            "data-incident": o.incident_id,
            "data-state": o.state,
          },
          h("td", {}, severityTag(o.severity)),
          h("td", {}, place(o)),
          h("td", {}, o.team || "none", escalated ? h("div", { class: "small" }, `now: ${o.responder}`) : null),
          h("td", {}, h("span", { class: `state state-${o.state}` }, STATE_LABELS[o.state] || o.state)),
          h("td", { "data-testid": "board-waited" }, waited(o), overdue ? h("div", { class: "small" }, "past SLA") : null),
          h("td", { class: o.escalations ? "escalated" : "" }, String(o.escalations || 0)),
        );
      }),
    );
  }

  return { render };
}
