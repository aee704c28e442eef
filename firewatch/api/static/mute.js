// Muted cells: the suppression masks (GET /v1/masks), and for an admin muting a cell for a while
// (POST /v1/masks: click the cell on the map or type its id) and removing a mask.

import { api, clockTime } from "./api.js";
import { h } from "./dom.js";

export function createMute(root, { admin, onMasks }) {
  const panel = root.querySelector("[data-testid=mute-panel]");
  const form = root.querySelector("[data-testid=mute-form]");
  const list = root.querySelector("[data-testid=mask-list]");
  const error = root.querySelector("[data-testid=mute-error]");
  form.hidden = !admin;

  async function load() {
    try {
      const answer = await api("/v1/masks");
      // each is {mask: {name, reason, start, end, ...}, active, grid_id, origin}
      const masks = (Array.isArray(answer) ? answer : answer.masks || []).map((m) => ({ ...m.mask, ...m }));
      panel.hidden = false;
      onMasks(masks);
      list.replaceChildren(...masks.map(item));
    } catch {
      panel.hidden = !admin; // a role that may not read masks sees no panel
    }
  }

  function item(m) {
    const until = m.end ? `until ${clockTime(m.end)}` : "no end";
    const by = m.origin ? ` · by ${m.origin.by}${m.origin.note ? `: ${m.origin.note}` : ""}` : "";
    return h(
      "li",
      { "data-testid": "mask-item", "data-mask": m.name, "data-grid": m.grid_id || "" },
      h("strong", {}, m.grid_id || m.name),
      ` ${m.reason.replaceAll("_", " ")} · ${until}${m.active === false ? " · not active" : ""}${by}`,
      admin
        ? h("button", { type: "button", "aria-label": `Remove mask ${m.name}`, onclick: () => remove(m.name) }, "Remove")
        : null,
    );
  }

  async function remove(name) {
    error.textContent = "";
    try {
      await api(`/v1/masks/${encodeURIComponent(name)}`, { method: "DELETE" });
    } catch (err) {
      error.textContent = `Could not remove ${name}: ${err.message}`;
    }
    load();
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const f = new FormData(form);
    const body = { grid_id: f.get("grid_id"), minutes: Number(f.get("minutes")), note: f.get("note") || null };
    try {
      await api("/v1/masks", { method: "POST", body });
      form.reset();
    } catch (err) {
      error.textContent = `Could not mute ${body.grid_id}: ${err.message}`;
    }
    load();
  });

  return {
    load,
    setCells(ids) {
      root.querySelector("#grid-ids").replaceChildren(...ids.map((id) => h("option", { value: id })));
    },
    selectCell(id) {
      if (!admin) return;
      panel.open = true;
      form.elements.grid_id.value = id;
      form.elements.minutes.focus();
    },
  };
}
