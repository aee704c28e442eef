// Small DOM helpers shared by the views: build elements without innerHTML (no markup from data).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      el.append(child instanceof Node ? child : String(child));
    }
  }
  return el;
}

export const SEVERITIES = ["low", "moderate", "high", "critical"];
export const rank = (severity) => SEVERITIES.indexOf(severity);

export const STATE_LABELS = {
  pending: "waiting for the team",
  acknowledged: "acknowledged",
  on_scene: "on scene",
  closed: "order closed",
  none: "no order",
};

export function place(r) {
  const cell = r.grid_name || r.grid_id;
  return [cell, r.village, r.township].filter(Boolean).join(" · ");
}

export function severityTag(severity) {
  return h("span", { class: `sev sev-${severity}`, "data-severity": severity }, severity);
}

export const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

export function percent(rate) {
  return rate === null || rate === undefined ? "–" : `${Math.round(rate * 100)} %`;
}
