// The desks' behaviour: the case map, live countdowns, the unit search and the queues' keys.
// No inline scripts (the CSP forbids them): data comes from <script type="application/json">.
(function () {
  "use strict";
  var lang = document.body.dataset.lang || "zh";
  var words = lang === "zh"
    ? { left: "剩余 ", over: "已超期 ", d: "天", h: "小时", m: "分" }
    : { left: "", over: "overdue ", d: "d ", h: "h ", m: "min" };

  // -- the case map: point, grid, community, the responsibility zone that fired ---------------
  var mapData = document.getElementById("map-data");
  if (mapData && window.L) {
    var data = JSON.parse(mapData.textContent);
    var map = L.map("case-map", { zoomControl: true });
    if (data.tiles_url) { L.tileLayer(data.tiles_url, { maxZoom: 19 }).addTo(map); }
    var styles = {
      community: { color: "#6a4c93", weight: 2, fill: false, dashArray: "6 4" },
      grid: { color: "#0b5cad", weight: 2, fillOpacity: 0.08 },
      layer: { color: "#00897b", weight: 1, fillOpacity: 0.25 },
    };
    var layer = L.geoJSON(data.features, {
      style: function (f) { return styles[f.properties.kind] || {}; },
      pointToLayer: function (f, latlng) {
        return L.circleMarker(latlng, { radius: 8, color: "#c62828", fillColor: "#e53935", fillOpacity: 0.9 });
      },
      onEachFeature: function (f, l) {
        var label = document.createElement("span");
        label.textContent = f.properties.name;  // names from imports are text, never HTML
        l.bindTooltip(label);
      },
    }).addTo(map);
    var bounds = layer.getBounds();
    if (bounds.isValid()) { map.fitBounds(bounds, { padding: [16, 16], maxZoom: 17 }); }
    else { map.setView([29.72, 113.9], 12); }
    document.getElementById("case-map").dataset.features = String(data.features.features.length);

    // Placing a triage report by hand: the city's grids for orientation, a click fills lon/lat.
    var lonBox = document.getElementById("place-lon"), latBox = document.getElementById("place-lat");
    if (lonBox && latBox) {
      var chosen = null;
      fetch("/api/v1/dashboard/grids").then(function (r) { return r.ok ? r.json() : null; }).then(function (grids) {
        if (!grids) { return; }
        var outlines = L.geoJSON(grids, { style: { color: "#607d8b", weight: 1, fill: false }, interactive: false }).addTo(map);
        map.fitBounds(outlines.getBounds().extend(bounds.isValid() ? bounds : outlines.getBounds()));
        document.getElementById("case-map").dataset.grids = String(grids.features.length);
      });
      var pinAt = function (latlng) {
        lonBox.value = latlng.lng.toFixed(6);  // Leaflet's latlng: WGS-84, as the server expects
        latBox.value = latlng.lat.toFixed(6);
        if (chosen) { chosen.setLatLng(latlng); } else { chosen = L.marker(latlng).addTo(map); }
        var details = lonBox.closest("details");
        if (details) { details.open = true; }
      };
      map.on("click", function (e) { pinAt(e.latlng); });
      placeSearch(map, pinAt);
    }
  }

  // -- the place search (地名查询): names from the database; choosing one shows it and pins it ------
  function placeSearch(map, pinAt) {
    var box = document.getElementById("place-search"), list = document.getElementById("place-results");
    if (!box || !list) { return; }
    var words = JSON.parse(document.getElementById("place-words").textContent);
    var asked = 0, timer = null, outline = null;
    function choose(p) {
      if (outline) { map.removeLayer(outline); }
      outline = L.geoJSON(p.outline, { style: { color: "#d35400", weight: 3, fillOpacity: 0.08 }, interactive: false }).addTo(map);
      var bounds = L.latLngBounds([p.bbox[1], p.bbox[0]], [p.bbox[3], p.bbox[2]]);  // GeoJSON order is lon, lat
      map.fitBounds(bounds, { padding: [16, 16], maxZoom: 17, animate: false });
      pinAt(L.latLng(p.lat, p.lon));
      box.value = p.name;
      list.replaceChildren();
      document.getElementById("case-map").dataset.place = p.name;
    }
    function show(found) {
      list.replaceChildren();
      if (!found.length) {
        var none = document.createElement("li");
        none.className = "help";
        none.textContent = words.none;
        list.append(none);
      }
      found.forEach(function (p) {
        var item = document.createElement("li");
        var button = document.createElement("button");
        button.type = "button";
        button.className = "place";
        var name = document.createElement("b");
        name.textContent = p.name;  // names from imports are text, never HTML
        var what = document.createElement("small");
        what.textContent = " " + (words["place_kind_" + p.kind] || "") + (p.within ? " · " + p.within : "");
        button.append(name, what);
        button.addEventListener("click", function () { choose(p); });
        item.append(button);
        list.append(item);
      });
    }
    function search() {
      var q = box.value.trim();
      var mine = ++asked;
      if (!q) { list.replaceChildren(); return; }
      fetch("/api/v1/places?" + new URLSearchParams({ q: q })).then(function (r) {
        return r.ok ? r.json() : [];
      }).then(function (found) { if (mine === asked) { show(found); } });
    }
    box.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(search, 150); });
    box.addEventListener("keydown", function (e) {
      if (e.key !== "Enter") { return; }
      e.preventDefault();  // Enter picks the first place, and never sends the call's form
      var first = list.querySelector("button.place");
      if (first) { first.click(); }
    });
  }

  // -- countdowns ----------------------------------------------------------------------------
  function span(ms) {
    var minutes = Math.floor(Math.abs(ms) / 60000);
    var d = Math.floor(minutes / 1440), h = Math.floor((minutes % 1440) / 60), m = minutes % 60;
    return (d ? d + words.d : "") + (d || h ? h + words.h : "") + m + words.m;
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-deadline]").forEach(function (el) {
      var left = new Date(el.dataset.deadline).getTime() - now;
      if (el.dataset.running !== "yes") { el.textContent = ""; return; }
      el.textContent = left >= 0 ? words.left + span(left) : words.over + span(left);
      el.classList.toggle("overdue", left < 0);
    });
  }
  tick();
  setInterval(tick, 1000);

  // -- the unit picker's search ----------------------------------------------------------------
  document.querySelectorAll(".unit-search").forEach(function (box) {
    var select = box.parentElement.querySelector(".unit-select");
    box.addEventListener("input", function () {
      var q = box.value.trim().toLowerCase();
      var first = null;
      Array.prototype.forEach.call(select.options, function (o) {
        var hit = !q || o.textContent.toLowerCase().indexOf(q) >= 0;
        o.hidden = !hit;
        if (hit && !first) { first = o; }
      });
      if (q && first) { first.selected = true; }
    });
  });
  var selected = document.querySelector(".unit-select option:checked");
  if (selected) { selected.scrollIntoView({ block: "nearest" }); }

  // -- keyboard on the queues: j/k or arrows, Enter opens, d dispatches ------------------------
  var rows = [];
  var at = -1;
  function collect() {
    var current = at >= 0 && rows[at] ? rows[at].dataset.code : null;
    rows = Array.prototype.slice.call(document.querySelectorAll("table[data-keyboard] tbody tr[data-href]"));
    at = -1;
    rows.forEach(function (r, i) { if (r.dataset.code === current) { at = i; r.classList.add("current"); } });
  }
  collect();
  function move(to) {
    if (!rows.length) { return; }
    if (at >= 0) { rows[at].classList.remove("current"); }
    at = Math.max(0, Math.min(rows.length - 1, to));
    rows[at].classList.add("current");
    rows[at].focus();
    rows[at].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (e) {
    var tag = (e.target.tagName || "").toLowerCase();
    if (!rows.length || tag === "input" || tag === "select" || tag === "textarea" || e.ctrlKey || e.metaKey || e.altKey) { return; }
    if (e.key === "j" || e.key === "ArrowDown") { move(at + 1); e.preventDefault(); }
    else if (e.key === "k" || e.key === "ArrowUp") { move(at - 1); e.preventDefault(); }
    else if (e.key === "Enter" && at >= 0) { window.location.href = rows[at].dataset.href; e.preventDefault(); }
    else if (e.key === "d" && at >= 0) {
      var button = rows[at].querySelector("button.dispatch");
      if (button) { button.click(); e.preventDefault(); }
    }
  });

  // -- live lists: the server says when the case event log grew; the lists are fetched again ---
  var live = document.querySelectorAll("[data-live]");
  var refreshing = false, again = false;
  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(window.location.href, { headers: { "Accept": "text/html" } }).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (!html) { return; }
      var fresh = new DOMParser().parseFromString(html, "text/html");
      live.forEach(function (old) {
        var next = fresh.getElementById(old.id);
        if (next) { old.replaceChildren.apply(old, Array.prototype.slice.call(next.childNodes)); }
      });
      collect();
      tick();
      document.body.dataset.refreshed = String((Number(document.body.dataset.refreshed) || 0) + 1);
    }).finally(function () {
      refreshing = false;
      if (again) { again = false; refresh(); }
    });
  }
  if (live.length) {
    var poll = null;
    var startPolling = function () { if (!poll) { poll = setInterval(refresh, 15000); } };
    if (window.EventSource) {
      var source = new EventSource("/desk/events");
      source.addEventListener("changed", refresh);
      source.addEventListener("hello", function () { document.body.dataset.live = "sse"; });
      source.onerror = function () { if (source.readyState === EventSource.CLOSED) { startPolling(); } };
    } else {
      startPolling();  // no server-sent events: look every 15 s
    }
  }
})();
