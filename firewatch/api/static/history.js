// History: incidents of any status in a date range of the server's calendar (GET /v1/incidents
// with since/until, page by page), and the same query as CSV (format=csv).

import { api, clockTime, query, serverDate, serverMidnight } from "./api.js";
import { h, place, severityTag } from "./dom.js";

export function createHistory(root) {
  const form = root.querySelector("[data-testid=history-form]");
  const body = root.querySelector("[data-testid=history] tbody");
  const more = root.querySelector("[data-testid=history-more]");
  const error = root.querySelector("[data-testid=history-error]");
  const csv = root.querySelector("[data-testid=history-csv]");
  let cursor = null;

  function params() {
    const f = new FormData(form);
    return {
      status: f.get("status"),
      since: serverMidnight(f.get("from")),
      until: serverMidnight(serverDate(Date.parse(serverMidnight(f.get("to"))), 1)),
    };
  }

  async function load(append) {
    error.textContent = "";
    try {
      const page = await api(`/v1/incidents?${query({ ...params(), limit: 100, cursor: append ? cursor : null })}`);
      const rows = page.incidents.map((r) =>
        h(
          "tr",
          { "data-testid": "history-row", "data-incident": r.id },
          h("td", {}, clockTime(r.first_seen)),
          h("td", {}, severityTag(r.severity)),
          h("td", {}, place(r)),
          h("td", {}, r.team || "none"),
          h("td", {}, r.status),
          h("td", {}, String(r.detections)),
        ),
      );
      if (append) body.append(...rows);
      else body.replaceChildren(...rows);
      cursor = page.next;
      more.hidden = !cursor;
    } catch (err) {
      error.textContent = `History is not available: ${err.message}`;
    }
  }

  async function download() {
    error.textContent = "";
    try {
      const res = await api(`/v1/incidents?${query({ ...params(), format: "csv" })}`, { raw: true });
      const url = URL.createObjectURL(await res.blob());
      const f = new FormData(form);
      const a = h("a", { href: url, download: `incidents-${f.get("from")}-${f.get("to")}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      error.textContent = `The CSV is not available: ${err.message}`;
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    load(false);
  });
  more.addEventListener("click", () => load(true));
  csv.addEventListener("click", () => form.reportValidity() && download());

  return {
    // the default range: the last seven days of the server's calendar
    init() {
      form.elements.from.value = serverDate(undefined, -6);
      form.elements.to.value = serverDate();
    },
  };
}
