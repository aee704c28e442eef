// The outcome: warnings issued, response rate, closure rate and time to acknowledge, today and
// this month in the server's calendar (GET /v1/report), refreshed when orders change.

import { api, duration, query, serverDate } from "./api.js";
import { h, percent } from "./dom.js";

export function createOutcome(root) {
  const box = root.querySelector("[data-testid=outcome]");
  let timer = null;

  async function report(from, to) {
    const answer = await api(`/v1/report?${query({ from, to })}&by=`);
    return answer.rows.find((r) => r.scope === "all") || answer.rows[0] || null;
  }

  function card(label, key, row) {
    const figure = (name, title, value) =>
      h("div", {}, h("dt", {}, title), h("dd", { "data-testid": `${key}-${name}` }, value));
    return h(
      "section",
      { class: "figures", "data-testid": `outcome-${key}` },
      h("h3", {}, label),
      h(
        "dl",
        {},
        figure("issued", "Warnings", row ? String(row.issued) : "–"),
        figure("response", "Response rate", percent(row && row.response_rate)),
        figure("closure", "Closure rate", percent(row && row.closure_rate)),
        figure("ack", "Time to acknowledge (median)", row && row.to_ack_p50 !== null ? duration(row.to_ack_p50) : "–"),
      ),
    );
  }

  async function refresh() {
    const today = serverDate();
    try {
      const [day, month] = await Promise.all([report(today, today), report(`${today.slice(0, 8)}01`, today)]);
      box.replaceChildren(card(`Today, ${today}`, "today", day), card(`This month, ${today.slice(0, 7)}`, "month", month));
    } catch (err) {
      box.replaceChildren(h("p", { class: "error" }, `The report is not available: ${err.message}`));
    }
  }

  return {
    refresh,
    refreshSoon() {
      clearTimeout(timer);
      timer = setTimeout(refresh, 300);
    },
  };
}
