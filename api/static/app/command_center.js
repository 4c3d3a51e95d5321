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
  // Zoomed out (below DETAIL_ZOOM) the map shows counts per grid; zoomed in, one dot per case.
  // New cases (reported within NEW_SECONDS by the server's clock) show as dots at every zoom.
  const DETAIL_ZOOM = 15;
  const NEW_SECONDS = 60;
  // Fractional zoom: the city fills the panel instead of the next whole zoom level down.
  // No zoom animation: an unattended screen gains nothing from it, and labels must be in their
  // final place when `declutter` measures them at zoomend.
  const map = L.map("map", { attributionControl: Boolean(config.tiles_url), zoomSnap: 0.25, zoomDelta: 0.5,
    zoomAnimation: false, markerZoomAnimation: false, fadeAnimation: false });
  map.setView([29.72, 113.9], 13); // Chibi, until the grids arrive
  if (config.tiles_url) L.tileLayer(config.tiles_url, { maxZoom: 19 }).addTo(map);
  // Panes from the bottom: grids (overlay pane, 400), landmarks, case dots, labels (markers, 600).
  map.createPane("landmarks").style.zIndex = 420;
  map.createPane("cases").style.zIndex = 450;
  map.getPane("landmarks").style.pointerEvents = "none";

  // Open cases per grid, zoomed out: a light-to-dark scale (0 stays the plain grid colour).
  const COUNT_CLASSES = [[0, "#16324f"], [1, "#2f6f8f"], [3, "#d4a72c"], [6, "#e8772e"], [10, "#c2362f"]];
  const countColour = (n) => COUNT_CLASSES.reduce((colour, [from, fill]) => (n >= from ? fill : colour), "#16324f");
  const perGrid = new Map(); // grid code -> {open, overdue}
  const gridStyle = (feature) => {
    const n = detailed() ? 0 : (perGrid.get(feature.properties.code) || { open: 0 }).open;
    return { color: "#3d8fd1", weight: 1, fillColor: countColour(n), fillOpacity: n ? 0.75 : 0.35 };
  };
  const grids = L.geoJSON(null, {
    className: "grid", // on every polygon's <path>, so tests and styles can find them
    style: gridStyle,
    // Names come from import files: always text, never markup (a string tooltip is HTML).
    onEachFeature: (feature, layer) => layer.bindTooltip(
      asText(feature.properties.name + " " + feature.properties.code), { sticky: true }),
  }).addTo(map);

  const LANDMARK_STYLES = {
    river_lake: { color: "#4fb3ff", weight: 5, fillColor: "#2a7fd4", fillOpacity: 0.6 },
    road: { color: "#e0c27a", weight: 6, fillOpacity: 0 },
    park: { color: "#4caf50", weight: 2, fillColor: "#2e7d32", fillOpacity: 0.55 },
  };
  const landmarks = L.geoJSON(null, {
    pane: "landmarks",
    interactive: false,
    style: (f) => ({ ...(LANDMARK_STYLES[f.properties.kind] || { color: "#aaa", weight: 2 }),
      className: "landmark landmark-" + f.properties.kind }),
  }).addTo(map);
  const labels = L.layerGroup().addTo(map); // community and landmark names
  const counts = L.layerGroup(); // per-grid count badges, zoomed out

  function label(latlng, text, className) {
    const node = el("div", null, text); // text, never markup
    return L.marker(latlng, { interactive: false, keyboard: false,
      icon: L.divIcon({ className: "map-label " + className, html: node, iconSize: null }) });
  }
  const nameOf = (p) => config.lang === "en" && p.name_en ? p.name_en : p.name;

  const STATE_COLOURS = {
    reported: "#f5a623", verified: "#f5a623", filed: "#f5a623", published: "#f5a623",
    claimed: "#40a9ff", dispatched: "#40a9ff", signed: "#40a9ff", returned: "#b37feb",
    rework: "#b37feb", handled: "#52c41a", checked: "#52c41a", parked: "#8c8c8c",
  };
  const OVERDUE = "#ff4d4f";
  // Overdue is a red ring around the state's colour, never a red fill: the map keeps its states.
  const styleOf = (p, fresh) => ({
    color: p.overdue ? OVERDUE : (fresh ? "#ffffff" : "#0b1726"),
    weight: p.overdue ? 3 : (fresh ? 3 : 1),
    fillColor: STATE_COLOURS[p.state] || "#d9d9d9",
    fillOpacity: 0.95,
    radius: fresh ? 11 : 6,
  });
  const cases = L.layerGroup(); // on the map only when zoomed in
  const fresh = L.layerGroup().addTo(map); // new cases, at every zoom
  const markers = new Map(); // tracking code -> circle marker
  const freshUntil = new Map(); // tracking code -> ms (server clock) when it stops being new
  const detailed = () => map.getZoom() >= DETAIL_ZOOM;

  function setFresh(marker, p, isFresh) {
    const path = marker.getElement && marker.getElement();
    if (path) path.classList.toggle("case-new", isFresh);
    marker.setStyle(styleOf(p, isFresh));
    marker.setRadius(styleOf(p, isFresh).radius);
    (isFresh ? cases : fresh).removeLayer(marker);
    (isFresh ? fresh : cases).addLayer(marker);
    marker.options.className = "case-marker case-" + p.tracking_code + (isFresh ? " case-new" : "");
    if (path) path.classList.toggle("case-new", isFresh);
  }

  function drawLiveCases(collection) {
    const serverNow = Date.parse(collection.now);
    const skew = serverNow - Date.now(); // the screen's clock may differ from the server's
    const seen = new Set();
    perGrid.clear();
    for (const feature of collection.features) {
      const p = feature.properties;
      const [lon, lat] = feature.geometry.coordinates; // GeoJSON is lon, lat; Leaflet lat, lon
      seen.add(p.tracking_code);
      const tally = perGrid.get(p.grid_code) || { open: 0, overdue: 0 };
      tally.open += 1;
      tally.overdue += p.overdue ? 1 : 0;
      perGrid.set(p.grid_code, tally);
      const until = Date.parse(p.reported_at) + NEW_SECONDS * 1000;
      const isFresh = until > serverNow;
      const tip = p.tracking_code + " · " + stateLabel(p.state) + (p.overdue ? " · " + t.overdue_tag : "");
      let marker = markers.get(p.tracking_code);
      if (!marker) {
        marker = L.circleMarker([lat, lon], {
          ...styleOf(p, isFresh), pane: "cases",
          className: "case-marker case-" + p.tracking_code + (isFresh ? " case-new" : ""),
        }).bindTooltip(asText(tip));
        markers.set(p.tracking_code, marker);
        (isFresh ? fresh : cases).addLayer(marker);
      } else {
        marker.setTooltipContent(asText(tip));
        setFresh(marker, p, isFresh);
      }
      if (isFresh && !freshUntil.has(p.tracking_code)) {
        freshUntil.set(p.tracking_code, until);
        setTimeout(() => {
          freshUntil.delete(p.tracking_code);
          if (markers.get(p.tracking_code) === marker) setFresh(marker, p, false);
          for (const item of document.querySelectorAll("#latest li.case-new")) {
            if (item.dataset.trackingCode === p.tracking_code) item.classList.remove("case-new");
          }
        }, until - (Date.now() + skew));
      }
    }
    for (const [code, marker] of markers) {
      if (!seen.has(code)) { cases.removeLayer(marker); fresh.removeLayer(marker); markers.delete(code); }
    }
    drawCounts();
    $("live-count").textContent = t.shown + " " + collection.features.length + " / " +
      t.of + " " + collection.total + (collection.truncated ? " · " + t.newest_only : "");
  }

  function drawCounts() {
    counts.clearLayers();
    grids.setStyle(gridStyle);
    if (detailed()) return;
    grids.eachLayer((layer) => {
      const p = layer.feature.properties;
      const tally = perGrid.get(p.code);
      if (!tally) return;
      const box = el("div", tally.overdue ? "has-overdue" : null, String(tally.open));
      box.dataset.overdue = tally.overdue;
      box.dataset.grid = p.code;
      counts.addLayer(L.marker([p.label[1], p.label[0]], { interactive: false, keyboard: false,
        icon: L.divIcon({ className: "map-label grid-count", html: box, iconSize: null }) }));
    });
    declutter(); // at once: the new badges never show over other labels, not even for a frame
  }

  function showZoomLevel() {
    if (detailed()) { map.removeLayer(counts); map.addLayer(cases); } else { map.removeLayer(cases); map.addLayer(counts); }
    drawCounts();
    document.body.dataset.mapMode = detailed() ? "cases" : "counts";
  }
  map.on("zoomend", showZoomLevel);

  // The legend sits under the map (not on it), so the map keeps its whole panel.
  function drawLegend() {
    const box = $("map-legend");
    const swatch = (className, style) => { const i = el("i", className); Object.assign(i.style, style); return i; };
    const item = (mark, text) => { const r = el("span", "legend-item"); r.append(mark, text); return r; };
    const group = (title, items) => { const g = el("div", "legend-group"); g.append(el("b", null, title), ...items); return g; };
    const classes = COUNT_CLASSES.map(([from, fill], i) => {
      const next = COUNT_CLASSES[i + 1];
      const text = next ? (next[0] - 1 === from ? String(from) : from + "–" + (next[0] - 1)) : "≥" + from;
      return item(swatch("sq", { background: fill }), text);
    });
    const states = [["reported", "#f5a623"], ["dispatched", "#40a9ff"], ["rework", "#b37feb"],
      ["handled", "#52c41a"], ["parked", "#8c8c8c"]].map(([state, colour]) =>
      item(swatch("dot", { background: colour }), stateLabel(state)));
    box.replaceChildren(
      group(t.legend_counts, classes),
      group(t.legend_cases, [...states,
        item(swatch("dot ring", { background: "#40a9ff" }), t.legend_overdue),
        item(swatch("dot new", { background: "#f5a623" }), t.legend_new)]),
      group(t.legend_places, [item(swatch("line", { background: "#4fb3ff" }), t.layer_river_lake),
        item(swatch("line", { background: "#e0c27a" }), t.layer_road),
        item(swatch("sq", { background: "#2e7d32" }), t.layer_park)]));
  }
  drawLegend();

  // Labels never cover each other: landmarks first, then communities, then grid counts; a label
  // that would overlap one already placed is hidden until the zoom leaves room for it.
  function declutter() {
    const placed = [];
    const order = [".landmark-label", ".community-label", ".grid-count"];
    for (const selector of order) {
      for (const node of document.querySelectorAll("#map " + selector)) {
        node.classList.remove("label-hidden");
        const box = node.firstElementChild.getBoundingClientRect();
        const hit = placed.some((b) => box.left < b.right + 4 && box.right > b.left - 4 &&
          box.top < b.bottom + 2 && box.bottom > b.top - 2);
        if (hit) node.classList.add("label-hidden"); else placed.push(box);
      }
    }
  }
  map.on("zoomend moveend", () => declutter()); // labels are in place: no zoom animation

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
      const item = el("li", "case" + (freshUntil.has(c.tracking_code) ? " case-new" : ""));
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

  // The reception room's requests unanswered past due: how many, the longest overdue first.
  function drawReception(r) {
    $("reception-overdue").textContent = r.overdue;
    $("reception-block").classList.toggle("has-overdue", r.overdue > 0);
    const list = $("reception-items");
    list.replaceChildren();
    for (const item of r.items.slice(0, 2)) {
      list.append(el("li", null, (item.compound || item.community) + " · " + (t["rc_kindshort_" + item.kind] || item.kind) +
        " · " + t.rc_overdue_days.replace("{n}", item.days_overdue)));
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
      // Live cases first: the latest list marks the cases that are new on the map.
      getJSON("/api/v1/dashboard/live-cases").then(drawLiveCases)
        .then(() => getJSON("/api/v1/dashboard/latest?limit=6&lang=" + config.lang)).then(drawLatest),
    ];
    if (ticks % Math.max(1, Math.round(60 / config.poll_seconds)) === 0) {
      jobs.push(getJSON("/api/v1/dashboard/units" + monthQuery).then(drawUnits));
      jobs.push(getJSON("/api/v1/reception/overdue?limit=2&lang=" + config.lang).then(drawReception));
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
      const [collection, places] = await Promise.all([
        getJSON("/api/v1/dashboard/grids"), getJSON("/api/v1/dashboard/orientation")]);
      grids.addData(collection);
      landmarks.addData(places.layers);
      for (const f of places.communities.features) {
        const [lon, lat] = f.geometry.coordinates;
        labels.addLayer(label([lat, lon], nameOf(f.properties), "community-label"));
      }
      landmarks.eachLayer((layer) => {
        const centre = layer.getBounds().getCenter();
        labels.addLayer(label(centre, nameOf(layer.feature.properties), "landmark-label"));
      });
      if (collection.features.length) map.fitBounds(grids.getBounds(), { padding: [10, 10] });
      // The panels settle once the figures arrive: the city keeps filling the map's box.
      new ResizeObserver(() => {
        map.invalidateSize();
        if (grids.getLayers().length) map.fitBounds(grids.getBounds(), { padding: [10, 10] });
      }).observe($("map"));
      showZoomLevel();
      declutter();
      window.gridcaseScreen.gridsLoaded = true;
    } catch (error) {
      $("status").hidden = false;
      setTimeout(loadGrids, config.poll_seconds * 1000);
    }
  }

  window.gridcaseScreen = { map, markers, freshUntil, perGrid, detailZoom: DETAIL_ZOOM, polls: 0,
    gridsLoaded: false };
  clock();
  setInterval(clock, 1000);
  loadGrids();
  tick();
  setInterval(tick, config.poll_seconds * 1000);
})();
