// The residents' pages: the report page (pin, photos, category search, open reports nearby) and the
// landing page's map of problems fixed nearby. A report goes into the phone's outbox first (outbox.js)
// and is sent, and re-sent with the form's Idempotency-Key, until the server has it: one report,
// never two, even when it was made without network. Without script the form is a plain post.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("config").textContent);
  const t = config.t;
  const $ = (id) => document.getElementById(id);
  const page = document.body.dataset.page;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function baseMap(id, center, zoom) {
    const map = L.map(id, { attributionControl: false }).setView([center[1], center[0]], zoom);
    if (config.tiles_url) L.tileLayer(config.tiles_url, { maxZoom: 19 }).addTo(map);
    // No tiles by default (no network): the grid outlines are the background.
    fetch("/api/v1/dashboard/grids").then((r) => r.json()).then((grids) => {
      L.geoJSON(grids, { style: { color: "#7a8a99", weight: 1, fill: false }, interactive: false }).addTo(map);
    }).catch(() => {});
    return map;
  }

  const when = (value) => new Date(value).toLocaleDateString(config.lang === "zh" ? "zh-CN" : "en-GB",
    { timeZone: "Asia/Shanghai" });

  // -- the landing page ---------------------------------------------------------------------------
  function home() {
    const fixed = config.fixed || [];
    const center = fixed.length ? [fixed[0].lon, fixed[0].lat] : [113.9, 29.72];
    const map = baseMap("fixed-map", center, 13);
    for (const f of fixed) {
      L.circleMarker([f.lat, f.lon], { radius: 7, color: "#0b7a4b", fillOpacity: 0.7 })
        .bindTooltip((f.name || "") + " · " + when(f.closed_at)).addTo(map);
    }
  }

  // -- the report page ----------------------------------------------------------------------------
  function report() {
    const map = baseMap("map", config.start, 16);
    const pin = L.marker(map.getCenter(), { draggable: true, autoPan: true, title: t.pub_pin }).addTo(map);
    let placedBy = null; // "photo" wins over the phone: the photo shows where the problem is
    const fix = $("fix");

    function pinMoved() {
      const p = pin.getLatLng();
      // Leaflet and the Geolocation API are WGS-84, as is EXIF GPS: the server is told "wgs84".
      $("lon").value = p.lng.toFixed(6);
      $("lat").value = p.lat.toFixed(6);
      document.body.dataset.pin = $("lon").value + "," + $("lat").value;
      refreshNearby();
    }

    function place(lon, lat, how, message) {
      placedBy = how;
      pin.setLatLng([lat, lon]);
      map.setView([lat, lon], map.getZoom());
      fix.textContent = message;
      pinMoved();
    }

    pin.on("dragend", () => {
      placedBy = "hand";
      fix.textContent = "";
      map.panTo(pin.getLatLng());
      pinMoved();
    });
    map.on("click", (e) => { placedBy = "hand"; pin.setLatLng(e.latlng); pinMoved(); });

    if (navigator.geolocation) {
      fix.textContent = t.pub_locating;
      navigator.geolocation.getCurrentPosition(
        (p) => { if (!placedBy) place(p.coords.longitude, p.coords.latitude, "phone", t.pub_from_phone); },
        () => { if (!placedBy) { fix.textContent = t.pub_no_fix; pinMoved(); } },
        { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
    } else {
      fix.textContent = t.pub_no_fix;
      pinMoved();
    }

    // Photos: previews, the count limit, and the first photo's EXIF GPS places the pin.
    $("photos").addEventListener("change", async () => {
      const files = Array.from($("photos").files);
      const previews = $("previews");
      previews.replaceChildren();
      if (files.length > config.max_photos) {
        $("photos").value = "";
        fix.textContent = t.pub_photos.replace("{n}", config.max_photos);
        return;
      }
      for (const file of files) {
        const img = el("img");
        img.src = URL.createObjectURL(file);
        img.alt = file.name;
        previews.append(img);
      }
      for (const file of files) {
        const body = new FormData();
        body.append("photo", file);
        try {
          const answer = await fetch("/api/v1/public/photo-location", { method: "POST", body });
          if (!answer.ok) continue;
          const at = await answer.json();
          if (at.lon !== null && at.lat !== null) {
            place(at.lon, at.lat, "photo", t.pub_from_photo);
            document.body.dataset.pinFrom = "photo";
            break;
          }
        } catch (error) { /* offline: the pin stays where it is */ }
      }
    });

    // Category: search names in their groups (部件/事件, then the class), never codes.
    const categories = config.categories;
    const kinds = ["event", "component"];
    function renderCategories() {
      const query = $("category-search").value.trim().toLowerCase();
      const box = $("category-results");
      box.replaceChildren();
      if (!query && $("category").value) return;
      for (const kind of kinds) {
        const groups = new Map();
        for (const c of categories) {
          if (c.kind !== kind) continue;
          const text = (c.name + " " + c.class + " " + t["pub_kind_" + kind]).toLowerCase();
          if (query && !text.includes(query)) continue;
          if (!groups.has(c.class)) groups.set(c.class, []);
          groups.get(c.class).push(c);
        }
        for (const [klass, items] of groups) {
          box.append(el("h3", null, t["pub_kind_" + kind] + " › " + klass));
          for (const c of items) {
            const button = el("button", "category", c.name);
            button.type = "button";
            button.dataset.code = c.code;
            button.addEventListener("click", () => choose(c));
            box.append(button);
          }
        }
      }
      if (!box.children.length) box.append(el("p", "muted small", t.pub_category_none));
    }
    function choose(c) {
      $("category").value = c.code;
      const chosen = $("category-chosen");
      chosen.textContent = t.pub_chosen + "：" + t["pub_kind_" + c.kind] + " › " + c.class + " › " + c.name;
      chosen.hidden = false;
      $("category-search").value = "";
      renderCategories();
      refreshNearby();
    }
    $("category-search").addEventListener("input", renderCategories);
    renderCategories();

    // Open reports of the same category nearby: follow one instead of filing it again.
    let asked = 0;
    async function refreshNearby() {
      const category = $("category").value;
      const box = $("nearby");
      if (!category || !$("lon").value) { box.hidden = true; return; }
      const mine = ++asked;
      const query = new URLSearchParams({ lon: $("lon").value, lat: $("lat").value, category });
      let found = [];
      try {
        const answer = await fetch("/api/v1/public/nearby?" + query);
        if (answer.ok) found = await answer.json();
      } catch (error) { found = []; }
      if (mine !== asked) return; // a newer pin or category answered already
      const list = $("nearby-list");
      list.replaceChildren();
      box.hidden = found.length === 0;
      const name = (categories.find((c) => c.code === category) || {}).name || "";
      for (const c of found) {
        const item = el("li", "nearby-case");
        item.dataset.case = String(c.id);
        const text = el("span", null, name + " · " + (t["state_" + c.state] || c.state) + " · " +
          t.pub_meters_away.replace("{m}", Math.round(c.distance_m)) + " · " + when(c.reported_at));
        const button = el("button", "secondary follow", t.pub_follow);
        button.type = "button";
        button.addEventListener("click", () => follow(c, text.textContent));
        item.append(text, button);
        list.append(item);
      }
      document.body.dataset.nearby = String(found.length);
    }

    function follow(c, what) {
      $("follow-case").value = c.id;
      $("follow-what").textContent = what;
      $("follow-phone").value = $("phone").value;
      $("follow-email").value = $("email").value;
      $("follow-form").hidden = false;
      $("follow-form").scrollIntoView();
    }

    sendLater(categories);
  }

  // -- the report's outbox (outbox.js, as on the inspector's page): a report made without network
  // is kept on the phone and sent, with the form's Idempotency-Key, once the network is back.
  function sendLater(categories) {
    const form = $("report-form");
    const categoryName = (code) => (categories.find((c) => c.code === code) || {}).name || "";
    let current = null; // the key of the report this page's form just queued

    async function send(item) {
      const body = new FormData();
      for (const [name, value] of item.fields) body.append(name, value);
      for (const photo of item.photos) body.append("photos", new Blob([photo.data], { type: photo.type }), photo.name);
      const response = await fetch(form.action, { method: "POST", body, headers: { Accept: "application/json" } });
      if (response.ok) return { sent: await response.json() };
      if (response.status >= 400 && response.status < 500 && ![408, 425, 429].includes(response.status)) {
        const html = await response.text();
        if (item.key === current) { // the form is still on screen: the answer's page says what to correct
          await box.remove(item.key);
          document.open();
          document.write(html);
          document.close();
          return { stop: true };
        }
        const answer = new DOMParser().parseFromString(html, "text/html").getElementById("error");
        return { failed: answer ? answer.innerText.split("\n").slice(0, 2).join(" ") : "HTTP " + response.status };
      }
      return { retry: "HTTP " + response.status };
    }

    function sent(item, answer) {
      document.body.dataset.sent = answer.tracking_code;
      window.location.assign(answer.url); // the case page, with the tracking code to keep
    }

    async function render() {
      if (!$("outbox-card")) return; // the page was replaced by the server's answer
      const items = (await box.all()).sort((a, b) => a.createdAt - b.createdAt);
      $("outbox-card").hidden = items.length === 0;
      document.body.dataset.outbox = String(items.length);
      const list = $("outbox");
      list.replaceChildren();
      for (const item of items) {
        const fields = new Map(item.fields);
        const row = el("li", "item item-" + item.status);
        row.dataset.key = item.key;
        const status = item.status === "failed" ? t.pub_outbox_failed
          : navigator.onLine === false || item.attempts ? t.pub_outbox_waiting : t.pub_outbox_sending;
        row.append(el("div", "item-head", categoryName(fields.get("category")) + " · " +
          new Date(item.createdAt).toLocaleString(config.lang === "zh" ? "zh-CN" : "en-GB",
            { timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" })),
        el("div", "muted small", status));
        if (item.status === "failed") {
          row.append(el("div", "reason small", item.error));
          const drop = el("button", "secondary", t.pub_outbox_drop);
          drop.type = "button";
          drop.addEventListener("click", async () => { await box.remove(item.key); render(); });
          row.append(drop);
        }
        list.append(row);
      }
    }

    const box = gridcaseOutbox({ db: "gridcase-resident", send, sent, changed: render });
    window.gridcaseResident = { outbox: box };

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      $("submit").disabled = true;
      const fields = [];
      for (const [name, value] of new FormData(form)) if (typeof value === "string") fields.push([name, value]);
      const photos = [];
      for (const file of $("photos").files) {
        photos.push({ data: await file.arrayBuffer(), name: file.name || "photo.jpg", type: file.type || "image/jpeg" });
      }
      const key = new Map(fields).get("idempotency_key");
      current = key;
      await box.add({ key, fields, photos });
      $("submit").disabled = false;
      if (navigator.onLine === false) $("outbox-help").textContent = t.pub_outbox_offline;
      $("outbox-card").scrollIntoView();
      box.flush(true);
    });
    $("outbox-retry").addEventListener("click", () => box.flush(true));
    render();
    box.flush(true); // reports kept from an earlier visit go now
  }

  if (page === "home") home();
  if (page === "report") report();
})();
