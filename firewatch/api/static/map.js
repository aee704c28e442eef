// The map: the forest grid (GET /v1/grid) and the cameras (GET /v1/cameras) drawn from GeoJSON
// with Leaflet and no tile layer; live incidents as circles coloured by severity, outlined by
// their order's state; muted cells greyed; cells no device watches (blind) outlined in dashes.
// Clicking a cell selects it (for muting).

import { ago, clockTime } from "./api.js";
import { h, place, plural, rank, STATE_LABELS } from "./dom.js";

const COLOURS = { low: "#f2c500", moderate: "#ef6c00", high: "#c62828", critical: "#6a0010" };
const OUTLINES = { pending: "#000000", acknowledged: "#1565c0", on_scene: "#2e7d32" };

export function orderState(inc, orders) {
  const order = inc.order_id ? orders.get(inc.order_id) : null;
  if (order) return order.state;
  return inc.order_id ? "closed" : "none";
}

export function createMap(el, { onCell }) {
  const L = window.L;
  const map = L.map(el, { zoomSnap: 0.25, preferCanvas: false }).setView([0, 0], 2);
  const canvas = L.canvas({ padding: 0.2 });
  let grid = null;
  let muted = new Set();
  let blind = new Set();
  const markers = new Map();

  function cellStyle(feature) {
    const isMuted = muted.has(feature.properties.grid_id);
    const isBlind = blind.has(feature.properties.grid_id);
    return {
      color: isBlind ? "#7b1fa2" : "#6b8f71",
      weight: isBlind ? 2 : 0.6,
      dashArray: isBlind ? "4 3" : null,
      fillColor: isMuted ? "#9e9e9e" : isBlind ? "#ead7f2" : "#dfeedd",
      fillOpacity: isMuted ? 0.7 : 0.35,
    };
  }

  return {
    setGrid(fc) {
      grid = L.geoJSON(fc, {
        renderer: canvas,
        style: cellStyle,
        onEachFeature(feature, layer) {
          const p = feature.properties;
          layer.bindTooltip(`${p.grid_id} ${p.name || ""} · ${p.team || "no team"}`, { sticky: true });
          layer.on("click", () => onCell(p.grid_id));
        },
      }).addTo(map);
      if (fc.features && fc.features.length) map.fitBounds(grid.getBounds(), { padding: [8, 8] });
      el.dataset.cells = String(fc.features ? fc.features.length : 0);
    },

    setCameras(fc) {
      L.geoJSON(fc, {
        pointToLayer: (f, latlng) =>
          L.circleMarker(latlng, {
            renderer: canvas,
            radius: 3,
            color: "#0d2f5e",
            weight: 1,
            fillColor: "#5c8fd6",
            fillOpacity: 1,
          }).bindTooltip(`camera ${f.properties.device_id}`),
      }).addTo(map);
      el.dataset.cameras = String(fc.features ? fc.features.length : 0);
    },

    setMasks(masks) {
      muted = new Set(masks.filter((m) => m.active !== false && m.grid_id).map((m) => m.grid_id));
      if (grid) grid.setStyle(cellStyle);
    },

    setBlind(gridIds) {
      blind = new Set(gridIds);
      if (!grid) return;
      grid.setStyle(cellStyle);
      let drawn = 0;
      grid.eachLayer((layer) => {
        if (blind.has(layer.feature.properties.grid_id)) drawn += 1;
      });
      el.dataset.blind = String(drawn);
    },

    render(state) {
      for (const [id, marker] of markers) {
        if (!state.incidents.has(id)) {
          marker.remove();
          markers.delete(id);
        }
      }
      const sorted = [...state.incidents.values()].sort((a, b) => rank(a.severity) - rank(b.severity));
      for (const inc of sorted) {
        const orderSt = orderState(inc, state.orders);
        const style = {
          radius: 6 + 2 * Math.max(0, rank(inc.severity)),
          fillColor: COLOURS[inc.severity] || "#888",
          fillOpacity: orderSt === "closed" ? 0.4 : 0.9,
          color: OUTLINES[orderSt] || "#616161",
          weight: orderSt === "pending" ? 3 : 2,
          dashArray: orderSt === "pending" ? "4 3" : null,
        };
        let marker = markers.get(inc.id);
        if (!marker) {
          marker = L.circleMarker(where(inc), style).addTo(map);
          marker.bindPopup(() => popup(state.incidents.get(inc.id) || inc, state));
          markers.set(inc.id, marker);
        } else {
          marker.setLatLng(where(inc)).setStyle(style);
        }
        marker.bringToFront();
        const path = marker.getElement();
        if (path) {
          path.setAttribute("data-testid", "map-incident");
          path.setAttribute("data-incident", inc.id);
          path.setAttribute("data-severity", inc.severity);
          path.setAttribute("data-state", orderSt);
        }
      }
    },

    focus(id) {
      const marker = markers.get(id);
      if (!marker) return;
      map.setView(marker.getLatLng(), Math.max(map.getZoom(), 13));
      marker.openPopup();
    },
  };
}

// Where the fire is now (the centroid of its last detections), else where it is placed.
function where(inc) {
  return inc.current_lat != null ? [inc.current_lat, inc.current_lon] : [inc.lat, inc.lon];
}

// How a camera placed it (a detection's own place says nothing here), with its 95% radius.
function located(inc) {
  const r = inc.uncertainty_m;
  const within = r == null ? "" : r >= 1000 ? ` (within ${(r / 1000).toFixed(1)} km)` : ` (within ${Math.round(r)} m)`;
  if (inc.located_by === "triangulated") return `placed where cameras' lines of sight cross${within}`;
  if (inc.located_by === "line_of_sight") return `placed on one camera's line of sight${within}`;
  return null;
}

function popup(inc, state) {
  const others = (inc.teams || []).filter((t) => t !== inc.team);
  return h(
    "div",
    { class: "popup" },
    h("strong", {}, `${inc.severity} · ${place(inc)}`),
    h("div", {}, `team ${inc.team || "none"} · ${STATE_LABELS[orderState(inc, state.orders)]}`),
    h("div", {}, `first seen ${clockTime(inc.first_seen)} (${ago(inc.first_seen)})`),
    inc.detections ? h("div", {}, `${plural(inc.detections, "detection")} · rule ${inc.rule}`) : null,
    inc.area_km2 ? h("div", {}, `spread over ${inc.area_km2.toFixed(1)} km²`) : null,
    located(inc) ? h("div", {}, located(inc)) : null,
    others.length ? h("div", { class: "warn" }, `reached ${others.join(", ")}`) : null,
  );
}
