// The field inspector's phone page. Reports go into an IndexedDB outbox first, each with its own
// Idempotency-Key, and are sent (and re-sent with the same key) until the server acknowledges.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("config").textContent);
  const t = config.t;
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "gridcase.token";
  const CATEGORIES_KEY = "gridcase.categories";
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

  const stateLabel = (state) => t["state_" + state] || state;
  const categoryName = (code) => {
    const c = categories.find((x) => x.code === code);
    if (!c) return code;
    return config.lang === "en" && c.name_en ? c.name_en : c.name;
  };
  const when = (value) => new Date(value).toLocaleString(config.lang === "zh" ? "zh-CN" : "en-GB",
    { timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });

  // -- the outbox (api/static/app/outbox.js: IndexedDB, same key on every attempt, back-off) -----
  const outbox = gridcaseOutbox({ db: "gridcase-inspector", send, ready: () => Boolean(token()),
    sent: (item, created) => { say(t.sent + " " + created.tracking_code); refreshLists(); },
    changed: () => renderOutbox() });

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
    await outbox.release("auth"); // reports held back for want of a token may go now
    outbox.flush(true);
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
        const option = el("option", null, config.lang === "en" && c.name_en ? c.name_en : c.name);
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
    await outbox.add({ fields, photo: await file.arrayBuffer(),
      photoName: file.name || "photo.jpg", photoType: file.type || "image/jpeg" });
    $("report-form").reset();
    $("preview").hidden = true;
    say(t.queued);
    outbox.flush(true);
  });

  // -- sending one report: its answer decides (outbox.js keeps it, backs off or drops it) ---------
  async function send(item) {
    const body = new FormData();
    for (const [name, value] of Object.entries(item.fields)) body.append(name, value);
    body.append("photos", new Blob([item.photo], { type: item.photoType }), item.photoName);
    const response = await fetch("/api/v1/cases", { method: "POST", body,
      headers: { ...authHeaders(), "Idempotency-Key": item.key } });
    if (response.ok) return { sent: await response.json() };
    if (response.status === 401) {
      localStorage.removeItem(TOKEN_KEY);
      showSignIn(t.needs_sign_in);
      return { hold: "auth", error: t.needs_sign_in };
    }
    if (response.status >= 400 && response.status < 500 && ![408, 425, 429].includes(response.status)) {
      const error = await errorText(response);
      say(error, true);
      return { failed: error };
    }
    return { retry: "HTTP " + response.status };
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

  $("retry").addEventListener("click", () => outbox.flush(true));

  // -- own reports and check tasks (核查) ---------------------------------------------------------
  // Names, never codes: the grid and unit names come with the list, the category's from the
  // catalogue (loaded, or cached, before the list is drawn).
  function caseRow(c, names) {
    const row = el("li", "item");
    row.dataset.trackingCode = c.tracking_code;
    const grid = (c.grid_code && names.grid_names[c.grid_code]) || t.no_grid;
    const unit = (c.unit_code && names.unit_names[c.unit_code]) || t.no_unit;
    const head = el("div", "item-head");
    head.append(el("span", "state", stateLabel(c.state)), document.createTextNode(" · " + t.tracking_code + " "),
      el("b", "code", c.tracking_code));
    row.append(head,
      el("div", "category-name", categoryName(c.category_code) + (c.description ? " · " + c.description : "")),
      el("div", "muted place", when(c.reported_at) + " · " + grid + " → " + unit));
    return row;
  }

  async function refreshLists() {
    if (!token()) return;
    try {
      await categoriesReady;
      const response0 = await fetch("/api/v1/me/cases?limit=30&lang=" + config.lang, { headers: authHeaders() });
      if (response0.status === 401) { showSignIn(t.needs_sign_in); return; }
      if (!response0.ok) throw new Error(await errorText(response0));
      const mine = await response0.json();
      $("mine").replaceChildren(...mine.items.map((c) => caseRow(c, mine)));
      if (!mine.items.length) $("mine").append(el("li", "muted", t.no_data));
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

  window.gridcaseInspector = { outbox, flush: outbox.flush };
  const categoriesReady = loadCategories();
  categoriesReady.then(renderOutbox);
  if (token()) showApp().catch((error) => say(String(error.message || error), true));
  else showSignIn();
})();
