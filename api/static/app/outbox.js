// The phone pages' outbox (the inspector's and the residents' report pages): a report is kept in
// IndexedDB first, with its own Idempotency-Key, and sent (and re-sent with the same key) until the
// server acknowledges it: a report made without network goes when the network is back, once.
//
//   const box = gridcaseOutbox({ db: "gridcase-inspector", send, ready, changed });
//   send(item) → { sent: answer } | { retry: text } | { failed: text } | { hold: status, error }
//                | { stop: true } (the page showed the answer itself and dropped the report)
//   ready() → false while nothing may be sent (no sign-in yet); changed() after every change.
(function () {
  "use strict";
  const RETRY_BASE_MS = 2000;
  const RETRY_MAX_MS = 60000;

  function uuid() {
    if (window.crypto.randomUUID) return crypto.randomUUID();
    // randomUUID needs a secure context; an intranet http:// page still has getRandomValues.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function gridcaseOutbox(options) {
    const ready = options.ready || (() => true);
    const changed = options.changed || (() => {});
    const dbReady = new Promise((resolve, reject) => {
      const request = indexedDB.open(options.db, 1);
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

    // A new report: its key is the page's (a resent form is the same report) or a new one.
    async function add(fields) {
      const item = { key: uuid(), createdAt: Date.now(), attempts: 0, nextAt: 0, status: "pending", error: null,
        ...fields };
      await outbox.put(item);
      changed();
      return item;
    }

    // Back off on network errors and 5xx (with jitter: phones that lost the network together retry
    // apart); stop on other 4xx; hold what waits for something else (a sign-in).
    async function retryLater(item, error) {
      const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (item.attempts - 1));
      const jitter = 0.8 + Math.random() * 0.4;
      await outbox.put({ ...item, error, nextAt: Date.now() + delay * jitter });
    }

    async function sendOne(item) {
      item.attempts += 1;
      let outcome;
      try {
        outcome = await options.send(item);
      } catch (error) {
        outcome = { retry: String(error.message || error) };
      }
      if ("sent" in outcome) {
        await outbox.remove(item.key);
        if (options.sent) await options.sent(item, outcome.sent);
      } else if ("failed" in outcome) {
        await outbox.put({ ...item, status: "failed", error: outcome.failed });
      } else if ("stop" in outcome) {
        // the page took the answer over (and dropped the report): nothing to keep
      } else if ("hold" in outcome) {
        await outbox.put({ ...item, status: outcome.hold, error: outcome.error || null });
      } else {
        await retryLater(item, outcome.retry);
      }
      return outcome;
    }

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
            if (!ready()) break;
            const outcome = await sendOne(item);
            if ("hold" in outcome || "stop" in outcome) break; // the others wait, or the page left
          }
          force = false;
        } while (flushAgain);
      } finally {
        flushing = false;
        changed();
      }
    }

    // Pending reports that held for something (a sign-in) may go now.
    async function release(status) {
      for (const item of await outbox.all()) {
        if (item.status === status) await outbox.put({ ...item, status: "pending", nextAt: 0 });
      }
    }

    window.addEventListener("online", () => flush(true));
    setInterval(() => flush(false), 1000);
    return { ...outbox, add, flush, release, uuid };
  }

  window.gridcaseOutbox = gridcaseOutbox;
})();
