// Live timeline: fetches entries newer than the newest one shown and adds them at the top.
// Without JavaScript the page still works; "Show new entries" reloads it.
"use strict";
(function () {
  const table = document.getElementById("timeline");
  const live = document.getElementById("live");
  if (!table) return;
  const body = table.tBodies[0];
  async function poll() {
    const newest = table.dataset.newest || "0";
    const url = table.dataset.rowsUrl + (table.dataset.rowsUrl.includes("?") ? "&" : "?") + "after=" + newest;
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } });
      if (response.redirected || !response.ok) return;
      const html = (await response.text()).trim();
      if (!html) return;
      const holder = document.createElement("tbody");
      holder.innerHTML = html; // server-rendered, escaped by the template engine
      const rows = Array.from(holder.querySelectorAll("tr[data-seq]"));
      for (const row of rows) {
        row.classList.add("new");
        body.insertBefore(row, body.firstChild);
        table.dataset.newest = row.dataset.seq;
      }
      if (rows.length && live) live.textContent = rows.length + " new " + (rows.length === 1 ? "entry" : "entries");
    } catch (error) {
      // The gateway may be restarting: try again on the next tick.
    }
  }
  setInterval(poll, 2000);
})();
