// The big screen's community-governance strip (社区治理): polls its feed once a minute.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("config").textContent);
  const month = new URLSearchParams(window.location.search).get("month");
  const url = "/api/v1/community/screen" + (month ? "?month=" + encodeURIComponent(month) : "");
  const number = (n) => Number(n).toLocaleString(config.lang === "en" ? "en-US" : "zh-CN");

  function draw(f) {
    const values = {
      raised: number(f.raised),
      claimed: number(f.claimed),
      closed: number(f.closed),
      overdue: number(f.overdue),
      share_answered: f.share_answered === null ? "–" : (100 * f.share_answered).toFixed(1) + "%",
      meetings: number(f.compounds_meeting) + " / " + number(f.compounds),
    };
    for (const node of document.querySelectorAll("[data-cg]")) {
      node.textContent = values[node.dataset.cg];
    }
  }

  async function poll() {
    try {
      const answer = await fetch(url, { credentials: "same-origin" });
      if (answer.ok) draw(await answer.json());
    } catch (error) {
      // the screen's own status line reports a lost connection; try again at the next poll
    }
  }
  poll();
  window.setInterval(poll, 60000);
})();
