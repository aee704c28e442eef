// The phone view of a team token: its own open orders, big buttons to acknowledge, arrive and
// close; closing asks the outcome (a false alarm with its cause: the closed-loop causes of
// rules/routing.yaml, given by the page, mute the place).

import { api, ago, duration, serverNow, toMs } from "./api.js";
import { h, place, severityTag, STATE_LABELS } from "./dom.js";

function causes() {
  const meta = document.querySelector("meta[name=fw-closed-loop-causes]");
  return meta ? meta.content.split(",").filter((c) => c && !c.startsWith("__")) : [];
}

const words = (s) => s.charAt(0).toUpperCase() + s.slice(1).replaceAll("_", " ");

export function createPhone(root, { state, changed }) {
  const list = root.querySelector("[data-testid=phone-orders]");
  const empty = root.querySelector("[data-testid=phone-empty]");
  const error = root.querySelector("[data-testid=phone-error]");
  const dialog = root.querySelector("[data-testid=close-dialog]");
  const form = dialog.querySelector("form");
  const causeLabel = form.querySelector(".cause");
  let closing = null;

  form.elements.cause.replaceChildren(
    ...causes().map((c) => h("option", { value: c }, `${words(c)} (mutes this place)`)),
    h("option", { value: "" }, "Unknown or other"),
  );
  form.addEventListener("change", () => {
    causeLabel.hidden = form.elements.outcome.value !== "false_alarm";
  });
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "close" && closing) {
      const f = new FormData(form);
      const outcome = f.get("outcome");
      const cause = outcome === "false_alarm" ? f.get("cause") || null : null;
      act(closing, "close", { outcome, cause, note: f.get("note") || null });
    }
    closing = null;
  });

  async function act(id, action, body) {
    error.textContent = "";
    try {
      const answer = await api(`/v1/dispatches/${encodeURIComponent(id)}/${action}`, { method: "POST", body });
      changed(answer.order);
    } catch (err) {
      error.textContent = `Could not ${action} the order: ${err.message}`;
    }
  }

  function askClose(id) {
    closing = id;
    form.reset();
    causeLabel.hidden = true;
    dialog.returnValue = "";
    dialog.showModal();
  }

  function since(o) {
    if (o.state === "pending") return `waiting ${duration((serverNow() - toMs(o.created_at)) / 1000)}`;
    if (o.state === "on_scene") return `on scene since ${ago(o.on_scene_at)}`;
    return `acknowledged ${ago(o.acked_at)}`;
  }

  function card(o) {
    const button = (action, label, cls, onclick) =>
      h("button", { type: "button", class: `big ${cls}`, "data-testid": action, onclick }, label);
    return h(
      "li",
      { class: `card card-${o.state}`, "data-testid": "phone-order", "data-order": o.id, "data-state": o.state },
      h("div", { class: "card-head" }, severityTag(o.severity), h("span", { class: `state state-${o.state}` }, STATE_LABELS[o.state])),
      h("div", { class: "where" }, place(o)),
      h("div", { class: "meta" }, `${o.lat.toFixed(4)}, ${o.lon.toFixed(4)} · ${since(o)}`),
      o.escalations ? h("div", { class: "meta warn" }, `escalated ${o.escalations}× (now: ${o.responder})`) : null,
      h(
        "div",
        { class: "actions" },
        o.state === "pending" ? button("ack", "Acknowledge", "primary", () => act(o.id, "ack")) : null,
        o.state !== "on_scene" ? button("arrive", "Arrived", "", () => act(o.id, "arrive")) : null,
        button("close", "Close…", "", () => askClose(o.id)),
      ),
    );
  }

  return {
    render() {
      const orders = [...state.orders.values()].sort((a, b) => toMs(a.created_at) - toMs(b.created_at));
      empty.hidden = orders.length > 0;
      list.replaceChildren(...orders.map(card));
    },
  };
}
