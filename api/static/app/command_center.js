// The command-centre screen: polls the dashboard JSON every few seconds and redraws in place.
// No build step, no dependencies beyond the Leaflet that gridcase serves itself.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("config").textContent);
  const t = config.t;
  const monthQuery = config.month ? "?month=" + encodeURIComponent(config.month) : "";
  const $ = (id) => document.getElementById(id);
  const locale = config.lang === "zh" ? "zh-CN" : "en-GB";
  const zone = { timeZone: "Asia/Shanghai" };

  async function getJSON(url) {
    const response = await fetch(url, { cache: "no-store" });
    if (!response.ok) throw new Error(url + ": HTTP " + response.status);
    return response.json();
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  const stateLabel = (state) => t["state_" + state] || state;
  const shortTime = (iso) => new Date(iso).toLocaleString(locale, {
    ...zone, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  const asText = (text) => { const span = document.createElement("span"); span.textContent = text; return span; };
  const percent = (rate) => (rate === null || rate === undefined) ? "–" : (rate * 100).toFixed(1) + "%";

  // -- the map: no tiles unless an intranet tile server is configured --------------------------
  const map = L.map("map", { attributionControl: Boolean(config.tiles_url) });
  map.setView([29.72, 113.9], 13); // Chibi, until the grids arrive
  if (config.tiles_url) L.tileLayer(config.tiles_url, { maxZoom: 19 }).addTo(map);

  const grids = L.geoJSON(null, {
    className: "grid", // on every polygon's <path>, so tests and styles can find them
    style: { color: "#3d8fd1", weight: 1, fillColor: "#16324f", fillOpacity: 0.35 },
    // Names come from import files: always text, never markup (a string tooltip is HTML).
    onEachFeature: (feature, layer) => layer.bindTooltip(
      asText(feature.properties.name + " " + feature.properties.code), { sticky: true }),
  }).addTo(map);

  const STATE_COLOURS = {
    reported: "#f5a623", verified: "#f5a623", filed: "#f5a623", published: "#f5a623",
    claimed: "#40a9ff", dispatched: "#40a9ff", signed: "#40a9ff", returned: "#b37feb",
    rework: "#b37feb", handled: "#52c41a", checked: "#52c41a", parked: "#8c8c8c",
  };
  const colourOf = (p) => p.overdue ? "#ff4d4f" : (STATE_COLOURS[p.state] || "#d9d9d9");
  const cases = L.layerGroup().addTo(map);
  const markers = new Map(); // tracking code -> circle marker

  function drawLiveCases(collection) {
    const seen = new Set();
    for (const feature of collection.features) {
      const p = feature.properties;
      const [lon, lat] = feature.geometry.coordinates; // GeoJSON is lon, lat; Leaflet lat, lon
      seen.add(p.tracking_code);
      const style = { color: "#0b1726", weight: 1, fillColor: colourOf(p), fillOpacity: 0.9 };
      const tip = p.tracking_code + " · " + stateLabel(p.state) + (p.overdue ? " · " + t.overdue_tag : "");
      let marker = markers.get(p.tracking_code);
      if (marker) {
        marker.setStyle(style).setTooltipContent(asText(tip));
        continue;
      }
      marker = L.circleMarker([lat, lon], {
        ...style, radius: 5, className: "case-marker case-" + p.tracking_code,
      }).bindTooltip(asText(tip));
      marker.addTo(cases);
      markers.set(p.tracking_code, marker);
    }
    for (const [code, marker] of markers) {
      if (!seen.has(code)) { cases.removeLayer(marker); markers.delete(code); }
    }
    $("live-count").textContent = "(" + t.shown + " " + collection.features.length + " / " +
      t.of + " " + collection.total + ")";
  }

  const legend = L.control({ position: "bottomleft" });
  legend.onAdd = function () {
    const box = el("div", "legend");
    for (const [label, colour] of [[t.overdue_tag, "#ff4d4f"], [stateLabel("reported"), "#f5a623"],
      [stateLabel("dispatched"), "#40a9ff"], [stateLabel("rework"), "#b37feb"],
      [stateLabel("handled"), "#52c41a"], [stateLabel("parked"), "#8c8c8c"]]) {
      const row = el("div");
      const dot = el("i");
      dot.style.background = colour;
      row.append(dot, label);
      box.append(row);
    }
    return box;
  };
  legend.addTo(map);

  // -- panels ------------------------------------------------------------------------------------
  function drawSummary(s) {
    for (const node of document.querySelectorAll("[data-count]")) {
      node.textContent = s.counts[node.dataset.count];
    }
    $("disposal-rate").textContent = percent(s.disposal.rate);
    $("disposal-formula").textContent = t.disposal_formula + " = " + s.disposal.closed + " ÷ " +
      s.disposal.dispatched + " (" + s.disposal.window.label + ")";
    $("overdue").textContent = s.overdue;
    $("unresolved").textContent = s.unresolved;
  }

  function drawLatest(rows) {
    const list = $("latest");
    list.replaceChildren();
    if (!rows.length) list.append(el("li", "muted", t.no_data));
    for (const c of rows) {
      const item = el("li", "case");
      item.dataset.trackingCode = c.tracking_code;
      const head = el("div", "case-head");
      head.append(el("span", "code", c.tracking_code), el("span", "time", shortTime(c.reported_at)),
        el("span", "state state-" + c.state, stateLabel(c.state)));
      if (c.overdue) head.append(el("span", "tag-overdue", t.overdue_tag));
      const category = config.lang === "en" && c.category_name_en ? c.category_name_en : c.category_name;
      const what = el("div", "case-what", category + (c.community ? " · " + c.community : "") +
        " → " + (c.unit_name || c.unit_code || "—"));
      const why = el("ul", "why");
      for (const text of c.explanation) why.append(el("li", null, text));
      item.append(head, what, why);
      list.append(item);
    }
  }

  function drawUnits(rows) {
    const body = $("units");
    body.replaceChildren();
    if (!rows.length) {
      const cell = el("td", "muted", t.no_data);
      cell.colSpan = 5;
      const row = el("tr");
      row.append(cell);
      body.append(row);
    }
    for (const u of rows) {
      const row = el("tr");
      const name = config.lang === "en" && u.name_en ? u.name_en : u.name;
      row.append(el("td", null, u.rank), el("td", null, name), el("td", "num", u.dispatched),
        el("td", "num", u.closed), el("td", "num", percent(u.rate)));
      body.append(row);
    }
  }

  // -- polling (every config.poll_seconds; units once a minute) -------------------------------
  let ticks = 0;
  let busy = false; // a slow poll is not overlapped by the next one
  async function tick() {
    if (busy) return;
    busy = true;
    const jobs = [
      getJSON("/api/v1/dashboard/summary" + monthQuery).then(drawSummary),
      getJSON("/api/v1/dashboard/latest?limit=8").then(drawLatest),
      getJSON("/api/v1/dashboard/live-cases").then(drawLiveCases),
    ];
    if (ticks % Math.max(1, Math.round(60 / config.poll_seconds)) === 0) {
      jobs.push(getJSON("/api/v1/dashboard/units" + monthQuery).then(drawUnits));
    }
    ticks += 1;
    const results = await Promise.allSettled(jobs);
    busy = false;
    const failed = results.some((r) => r.status === "rejected");
    $("status").hidden = !failed;
    if (!failed) $("updated").textContent = new Date().toLocaleTimeString(locale, zone);
    window.gridcaseScreen.polls = ticks;
  }

  function clock() {
    $("clock").textContent = new Date().toLocaleString(locale, { ...zone, hour12: false });
  }

  async function loadGrids() {
    try {
      const collection = await getJSON("/api/v1/dashboard/grids");
      grids.addData(collection);
      if (collection.features.length) map.fitBounds(grids.getBounds(), { padding: [10, 10] });
    } catch (error) {
      $("status").hidden = false;
      setTimeout(loadGrids, config.poll_seconds * 1000);
    }
  }

  window.gridcaseScreen = { map, markers, polls: 0 };
  clock();
  setInterval(clock, 1000);
  loadGrids();
  tick();
  setInterval(tick, config.poll_seconds * 1000);
})();
