// The field inspector's phone page. Reports go into an IndexedDB outbox first, each with its own
// Idempotency-Key, and are sent (and re-sent with the same key) until the server acknowledges.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("config").textContent);
  const t = config.t;
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "gridcase.token";
  const CATEGORIES_KEY = "gridcase.categories";
  const RETRY_BASE_MS = 2000;
  const RETRY_MAX_MS = 60000;
  let categories = [];

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function say(text, isError) {
    const msg = $("msg");
    msg.textContent = text;
    msg.classList.toggle("error", Boolean(isError));
  }

  function uuid() {
    if (window.crypto.randomUUID) return crypto.randomUUID();
    // randomUUID needs a secure context; an intranet http:// page still has getRandomValues.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  const stateLabel = (state) => t["state_" + state] || state;
  const categoryName = (code) => {
    const c = categories.find((x) => x.code === code);
    if (!c) return code;
    return config.lang === "en" && c.name_en ? c.name_en : c.name;
  };
  const when = (value) => new Date(value).toLocaleString(config.lang === "zh" ? "zh-CN" : "en-GB",
    { timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });

  // -- the outbox in IndexedDB (survives reloads; the photo is kept as an ArrayBuffer) ----------
  const dbReady = new Promise((resolve, reject) => {
    const request = indexedDB.open("gridcase-inspector", 1);
    request.onupgradeneeded = () => request.result.createObjectStore("outbox", { keyPath: "key" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });

  async function withStore(mode, work) {
    const db = await dbReady;
    return new Promise((resolve, reject) => {
      const tx = db.transaction("outbox", mode);
      const request = work(tx.objectStore("outbox"));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = tx.onabort = () => reject(tx.error);
    });
  }

  const outbox = {
    all: () => withStore("readonly", (s) => s.getAll()),
    put: (item) => withStore("readwrite", (s) => s.put(item)),
    remove: (key) => withStore("readwrite", (s) => s.delete(key)),
  };

  // -- signing in --------------------------------------------------------------------------------
  const token = () => localStorage.getItem(TOKEN_KEY);
  const authHeaders = () => ({ Authorization: "Bearer " + token() });

  async function errorText(response) {
    try {
      const body = await response.json();
      const first = Array.isArray(body.detail) ? body.detail[0] : { message: body.detail };
      return "HTTP " + response.status + ": " + (first.field ? first.field + ": " : "") + first.message;
    } catch (error) {
      return "HTTP " + response.status;
    }
  }

  function showSignIn(message) {
    $("app").hidden = true;
    $("sign-out").hidden = true;
    $("who").textContent = "";
    $("sign-in").hidden = false;
    $("sign-in-msg").textContent = message || "";
  }

  async function showApp() {
    try {
      const response = await fetch("/api/v1/auth/me", { headers: authHeaders() });
      if (response.status === 401) {
        localStorage.removeItem(TOKEN_KEY);
        return showSignIn(t.needs_sign_in);
      }
      if (!response.ok) throw new Error(await errorText(response));
      $("who").textContent = (await response.json()).username;
    } catch (error) {
      say(String(error.message || error), true); // offline: keep working from the outbox
    }
    $("sign-in").hidden = true;
    $("sign-out").hidden = false;
    $("app").hidden = false;
    // Reports held back for want of a token may go now.
    for (const item of await outbox.all()) {
      if (item.status === "auth") await outbox.put({ ...item, status: "pending", nextAt: 0 });
    }
    flush(true);
    refreshLists();
  }

  $("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new URLSearchParams({ username: $("username").value, password: $("password").value });
    try {
      const response = await fetch("/api/v1/auth/token", { method: "POST", body: form });
      if (!response.ok) return showSignIn(await errorText(response));
      localStorage.setItem(TOKEN_KEY, (await response.json()).access_token);
      $("password").value = "";
      await showApp();
    } catch (error) {
      showSignIn(String(error));
    }
  });

  $("sign-out").addEventListener("click", () => {
    localStorage.removeItem(TOKEN_KEY);
    showSignIn();
  });

  // -- the catalogue (cached for offline use) ------------------------------------------------
  async function loadCategories() {
    try {
      const response = await fetch("/api/v1/categories");
      if (!response.ok) throw new Error(await errorText(response));
      categories = await response.json();
      localStorage.setItem(CATEGORIES_KEY, JSON.stringify(categories));
    } catch (error) {
      categories = JSON.parse(localStorage.getItem(CATEGORIES_KEY) || "[]");
    }
    const select = $("category");
    for (const [kind, label] of [["event", t.events], ["component", t.components]]) {
      const group = el("optgroup");
      group.label = label;
      for (const c of categories.filter((x) => x.kind === kind)) {
        const option = el("option", null, c.code + " " + (config.lang === "en" && c.name_en ? c.name_en : c.name));
        option.value = c.code;
        group.append(option);
      }
      if (group.children.length) select.append(group);
    }
  }

  // -- the report form ------------------------------------------------------------------------
  const locateMode = () => document.querySelector("input[name=locate]:checked").value;

  function locate() {
    return new Promise((resolve, reject) => {
      if (!navigator.geolocation) return reject(new Error("no geolocation"));
      navigator.geolocation.getCurrentPosition(resolve, reject,
        { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
    });
  }

  async function showFix() {
    const fix = $("fix");
    if (locateMode() !== "phone") { fix.textContent = ""; return; }
    fix.textContent = t.locating;
    try {
      const p = await locate();
      fix.textContent = p.coords.longitude.toFixed(6) + ", " + p.coords.latitude.toFixed(6) +
        " ±" + Math.round(p.coords.accuracy) + " m";
    } catch (error) {
      fix.textContent = t.no_fix;
    }
  }

  for (const radio of document.querySelectorAll("input[name=locate]")) {
    radio.addEventListener("change", showFix);
  }

  $("photo").addEventListener("change", () => {
    const file = $("photo").files[0];
    const preview = $("preview");
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.hidden = !file;
    if (file) preview.src = URL.createObjectURL(file);
  });

  $("report-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $("photo").files[0];
    if (!file) return say(t.need_photo, true);
    if (!$("category").value) return say(t.need_category, true);
    const fields = { category: $("category").value, description: $("description").value.trim(),
      channel: "inspector" };
    if (locateMode() === "phone") {
      try {
        const p = await locate();
        // The Geolocation API gives WGS-84, like GPS.
        Object.assign(fields, { lon: p.coords.longitude, lat: p.coords.latitude, crs: "wgs84" });
      } catch (error) {
        return say(t.no_fix, true);
      }
    } // else: no lon/lat at all, and the server reads the photo's EXIF GPS
    const item = { key: uuid(), createdAt: Date.now(), fields, photo: await file.arrayBuffer(),
      photoName: file.name || "photo.jpg", photoType: file.type || "image/jpeg",
      attempts: 0, nextAt: 0, status: "pending", error: null };
    await outbox.put(item);
    $("report-form").reset();
    $("preview").hidden = true;
    say(t.queued);
    await renderOutbox();
    flush(true);
  });

  // -- sending: same key every time, back off on network errors and 5xx, stop on other 4xx ------
  let flushing = false;
  let flushAgain = false;

  async function flush(force) {
    if (flushing) { flushAgain = flushAgain || force; return; }
    flushing = true;
    try {
      do {
        const now = Date.now();
        force = force || flushAgain;
        flushAgain = false;
        for (const item of await outbox.all()) {
          if (item.status !== "pending" || (!force && item.nextAt > now)) continue;
          if (!token()) break;
          await send(item);
        }
        force = false;
      } while (flushAgain);
    } finally {
      flushing = false;
      await renderOutbox();
    }
  }

  async function send(item) {
    const body = new FormData();
    for (const [name, value] of Object.entries(item.fields)) body.append(name, value);
    body.append("photos", new Blob([item.photo], { type: item.photoType }), item.photoName);
    item.attempts += 1;
    let response;
    let created;
    try {
      response = await fetch("/api/v1/cases", { method: "POST", body,
        headers: { ...authHeaders(), "Idempotency-Key": item.key } });
      if (response.ok) created = await response.json();
    } catch (error) {
      return retryLater(item, String(error.message || error));
    }
    if (created) {
      await outbox.remove(item.key);
      say(t.sent + " " + created.tracking_code);
      refreshLists();
      return;
    }
    if (response.status === 401) {
      await outbox.put({ ...item, status: "auth", error: t.needs_sign_in });
      localStorage.removeItem(TOKEN_KEY);
      return showSignIn(t.needs_sign_in);
    }
    if (response.status >= 400 && response.status < 500 && ![408, 425, 429].includes(response.status)) {
      const error = await errorText(response);
      await outbox.put({ ...item, status: "failed", error });
      return say(error, true);
    }
    return retryLater(item, "HTTP " + response.status);
  }

  async function retryLater(item, error) {
    const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (item.attempts - 1));
    const jitter = 0.8 + Math.random() * 0.4; // phones that lost the network together retry apart
    await outbox.put({ ...item, error, nextAt: Date.now() + delay * jitter });
  }

  async function renderOutbox() {
    const items = (await outbox.all()).sort((a, b) => a.createdAt - b.createdAt);
    $("outbox-count").textContent = items.length;
    const list = $("outbox");
    list.replaceChildren();
    if (!items.length) list.append(el("li", "muted", t.outbox_empty));
    for (const item of items) {
      const row = el("li", "item item-" + item.status);
      row.dataset.key = item.key;
      const status = item.status === "failed" ? t.failed : item.status === "auth" ? t.needs_sign_in
        : item.nextAt > Date.now() ? t.waiting : t.sending;
      row.append(el("div", "item-head", categoryName(item.fields.category) + " · " + when(item.createdAt)),
        el("div", "muted", status + " · #" + item.attempts + " · " + item.key.slice(0, 8)));
      if (item.error) row.append(el("div", "error", item.error));
      if (item.status === "failed") {
        const remove = el("button", "secondary", t.delete);
        remove.type = "button";
        remove.addEventListener("click", async () => { await outbox.remove(item.key); renderOutbox(); });
        row.append(remove);
      }
      list.append(row);
    }
  }

  $("retry").addEventListener("click", () => flush(true));
  window.addEventListener("online", () => flush(true));
  setInterval(() => flush(false), 1000);

  // -- own reports and check tasks (核查) ---------------------------------------------------------
  async function getCases(url) {
    const response = await fetch(url, { headers: authHeaders() });
    if (response.status === 401) { showSignIn(t.needs_sign_in); return null; }
    if (!response.ok) throw new Error(await errorText(response));
    return (await response.json()).items;
  }

  function caseRow(c) {
    const row = el("li", "item");
    row.dataset.trackingCode = c.tracking_code;
    row.append(el("div", "item-head", c.tracking_code + " · " + stateLabel(c.state)),
      el("div", null, categoryName(c.category_code) + (c.description ? " · " + c.description : "")),
      el("div", "muted", when(c.reported_at) + " · " + t.grid + " " + (c.grid_code || "—") +
        " → " + (c.unit_code || "—")));
    return row;
  }

  async function refreshLists() {
    if (!token()) return;
    try {
      const mine = await getCases("/api/v1/me/cases?limit=30");
      if (mine) {
        $("mine").replaceChildren(...mine.map(caseRow));
        if (!mine.length) $("mine").append(el("li", "muted", t.no_data));
      }
      const response = await fetch("/api/v1/me/checks?limit=50&lang=" + config.lang, { headers: authHeaders() });
      if (response.status === 401) { showSignIn(t.needs_sign_in); return; }
      if (!response.ok) throw new Error(await errorText(response));
      renderChecks(await response.json());
    } catch (error) {
      say(String(error.message || error), true);
    }
  }

  // Rows are kept across refreshes (keyed by case and version) so a chosen photo is not lost.
  let checkRows = new Map();

  function renderChecks(tasks) {
    $("checks-count").textContent = tasks.length;
    const rows = new Map();
    for (const task of tasks) {
      const id = task.case.id + ":" + task.case.version;
      rows.set(id, checkRows.get(id) || checkRow(task));
    }
    checkRows = rows;
    $("checks").replaceChildren(...rows.values());
    if (!tasks.length) $("checks").append(el("li", "muted", t.no_checks));
    drawCheckMaps();
  }

  // A map drawn while its tab is hidden has no size: each card's map is drawn (or fitted again)
  // once the checks tab shows.
  function drawCheckMaps() {
    if ($("tab-checks").hidden) return;
    for (const row of checkRows.values()) if (row.drawMap) row.drawMap();
  }

  function figure(caption, photo, className) {
    const box = el("figure", "check-photo " + className);
    if (photo) {
      const link = el("a");
      link.href = photo.url;
      link.target = "_blank";
      const img = el("img");
      Object.assign(img, { src: photo.url, alt: caption, loading: "lazy" });
      link.append(img);
      box.append(link);
    } else {
      box.append(el("div", "no-photo muted", t.check_no_photo));
    }
    box.append(el("figcaption", null, caption));
    return box;
  }

  function checkMap(task) {
    const c = task.case;
    const box = el("div", "check-map");
    box.setAttribute("role", "img");
    box.setAttribute("aria-label", t.check_map + " " + (task.grid_name || ""));
    let map = null;
    const draw = () => {
      if (!window.L || c.lon === null || c.lat === null) return;
      if (map) { map.invalidateSize(); return; }
      map = L.map(box, { zoomControl: false, attributionControl: false, dragging: false,
        scrollWheelZoom: false, doubleClickZoom: false, touchZoom: false, keyboard: false });
      if (config.tiles_url) L.tileLayer(config.tiles_url, { maxZoom: 19 }).addTo(map);
      const point = L.latLng(c.lat, c.lon); // GeoJSON is lon/lat; Leaflet takes lat/lon
      const bounds = L.latLngBounds(point, point);
      const grid = task.grid_outline && L.geoJSON(task.grid_outline,
        { style: { color: "#0d6efd", weight: 2, fillOpacity: 0.08 }, interactive: false });
      if (grid) bounds.extend(grid.getBounds());
      map.fitBounds(bounds, { padding: [12, 12], maxZoom: 18 }); // a view before any layer
      if (grid) grid.addTo(map);
      L.circleMarker(point, { radius: 8, color: "#c62828", fillColor: "#e53935", fillOpacity: 0.9 }).addTo(map);
      box.dataset.drawn = "yes";
    };
    return { box, draw };
  }

  function checkRow(task) {
    const c = task.case;
    const row = el("li", "item check-task");
    row.dataset.trackingCode = c.tracking_code;
    row.append(el("div", "item-head", c.tracking_code + " · " + stateLabel(c.state)),
      el("div", null, categoryName(c.category_code) + (c.description ? " · " + c.description : "")));
    const where = el("dl", "check-facts");
    for (const [label, value, className] of [
      [t.check_unit, task.unit_name || "—", "unit-name"],
      [t.grid, task.grid_name || "—", "grid-name"],
      [t.check_unit_note, task.handle_note || "—", "handle-note"],
    ]) {
      where.append(el("dt", null, label), el("dd", className, value));
    }
    const photos = el("div", "check-photos");
    const report = c.photos.find((p) => p.purpose === "report");
    const after = c.photos.filter((p) => p.purpose === "after").pop();
    photos.append(figure(t.check_report_photo, report, "report"), figure(t.check_unit_photo, after, "after"));
    const map = checkMap(task);
    row.drawMap = map.draw;
    row.append(where, photos, map.box);

    const photo = el("input");
    Object.assign(photo, { type: "file", accept: "image/*", className: "after-photo" });
    photo.setAttribute("capture", "environment");
    const pass = el("button", "primary check-pass", t.check_pass);
    const reason = el("input", "reason");
    reason.placeholder = t.reason;
    const fail = el("button", "danger check-fail", t.check_fail);
    pass.type = fail.type = "button";
    const photoLabel = el("label", "photo-button small");
    const photoText = el("span", null, "📷 " + t.after_photo);
    photoLabel.append(photoText, photo);
    photo.addEventListener("change", () => {
      photoText.textContent = "📷 " + (photo.files[0] ? photo.files[0].name : t.after_photo);
    });
    pass.addEventListener("click", () => {
      if (!photo.files[0]) return say(t.need_photo, true);
      const body = new FormData();
      body.append("photos", photo.files[0], photo.files[0].name || "check.jpg");
      body.append("note", t.check_pass);
      check(c, "check_pass", body, row);
    });
    fail.addEventListener("click", () => {
      const body = new FormData();
      body.append("reason", reason.value.trim());
      if (photo.files[0]) body.append("photos", photo.files[0], photo.files[0].name || "check.jpg");
      check(c, "check_fail", body, row);
    });
    row.append(photoLabel, pass, reason, fail);
    return row;
  }

  async function check(c, action, body, row) {
    body.append("expected_version", c.version); // refused if someone changed the case meanwhile
    for (const button of row.querySelectorAll("button")) button.disabled = true;
    try {
      const response = await fetch("/api/v1/cases/" + c.id + "/actions/" + action,
        { method: "POST", body, headers: authHeaders() });
      if (!response.ok) throw new Error(await errorText(response));
      const done = await response.json();
      say((action === "check_pass" ? t.check_pass : t.check_fail) + " " + done.tracking_code +
        " → " + stateLabel(done.state));
      refreshLists();
    } catch (error) {
      say(String(error.message || error), true);
      for (const button of row.querySelectorAll("button")) button.disabled = false;
    }
  }

  for (const button of document.querySelectorAll("[data-refresh]")) {
    button.addEventListener("click", refreshLists);
  }

  // -- tabs ----------------------------------------------------------------------------------------
  for (const tab of document.querySelectorAll("[data-tab]")) {
    tab.addEventListener("click", () => {
      for (const other of document.querySelectorAll("[data-tab]")) {
        other.classList.toggle("active", other === tab);
        $("tab-" + other.dataset.tab).hidden = other !== tab;
      }
      if (tab.dataset.tab === "checks") drawCheckMaps();
      if (tab.dataset.tab !== "report" && tab.dataset.tab !== "outbox") refreshLists();
    });
  }

  window.gridcaseInspector = { outbox, flush };
  loadCategories().then(renderOutbox);
  if (token()) showApp().catch((error) => say(String(error.message || error), true));
  else showSignIn();
})();
