// The incident list: open incidents, the most severe first, then the newest; an "N new" badge
// for those not yet looked at (which ones were seen is kept in localStorage, so a reload shows
// the same badge), with relative times against the server's clock.

import { ago } from "./api.js";
import { orderState } from "./map.js";
import { h, place, plural, rank, severityTag, STATE_LABELS } from "./dom.js";

const KEY = "fw.seen";

export function createIncidentList(root, { onSelect }) {
  const list = root.querySelector("[data-testid=incident-list]");
  const empty = root.querySelector("[data-testid=incident-empty]");
  const badge = root.querySelector("[data-testid=new-badge]");
  const count = root.querySelector("[data-testid=incident-count]");
  let seen = null; // Set of incident ids looked at; null until the first load
  let current = [];
  let last = null; // the state last rendered

  function save() {
    localStorage.setItem(KEY, JSON.stringify([...seen]));
  }

  badge.addEventListener("click", () => {
    for (const inc of current) seen.add(inc.id);
    save();
    if (last) render(last);
  });

  function render(state) {
    last = state;
    current = [...state.incidents.values()].sort(
      (a, b) => rank(b.severity) - rank(a.severity) || Date.parse(b.first_seen) - Date.parse(a.first_seen),
    );
    if (seen === null) {
      const stored = localStorage.getItem(KEY);
      seen = new Set(stored ? JSON.parse(stored) : current.map((i) => i.id));
    }
    // forget what is no longer listed, so the set stays as small as the list
    const ids = new Set(current.map((i) => i.id));
    for (const id of seen) if (!ids.has(id)) seen.delete(id);
    save();

    const fresh = current.filter((i) => !seen.has(i.id)).length;
    badge.hidden = fresh === 0;
    badge.textContent = `${fresh} new`;
    badge.title = "Mark all as seen";
    count.textContent = `(${current.length})`;
    empty.hidden = current.length > 0;
    list.replaceChildren(...current.map((inc) => item(inc, state, !seen.has(inc.id))));
  }

  function item(inc, state, isNew) {
    const st = orderState(inc, state.orders);
    return h(
      "li",
      {
        class: `incident${isNew ? " new" : ""}`,
        "data-testid": "incident-item",
        "data-incident": inc.id,
        "data-severity": inc.severity,
        "data-state": st,
      },
      h(
        "button",
        { type: "button", class: "plain", onclick: () => onSelect(inc.id) },
        severityTag(inc.severity),
        isNew ? h("span", { class: "new-mark" }, "new") : null,
        h("span", { class: "where" }, place(inc)),
        h(
          "span",
          { class: "meta" },
          h("span", { "data-testid": "incident-age" }, `first seen ${ago(inc.first_seen)}`),
          inc.detections ? ` · ${plural(inc.detections, "detection")}` : "",
          ` · ${inc.team || "no team"} · `,
          h("span", { class: `state state-${st}` }, STATE_LABELS[st]),
        ),
      ),
    );
  }

  return { render };
}
