// Live refresh for the overview and queue pages: polls the overview JSON every 2 s and writes
// numbers with textContent and charts with SVG DOM calls. Nothing from the server is ever
// parsed as HTML, so a queue or job value cannot become markup here.
"use strict";
(function () {
  const live = document.querySelector("[data-live]");
  if (!live) return;
  const SVG = "http://www.w3.org/2000/svg";
  const W = 610, H = 160, PAD = 22;

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, value) {
    const t = el("text", { x: x, y: y }, parent);
    t.textContent = value;
  }

  function clear(svg) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    el("line", { x1: PAD, y1: H - PAD, x2: W, y2: H - PAD, class: "axis" }, svg);
  }

  function minuteLabel(ms) {
    const d = new Date(ms);
    return String(d.getUTCHours()).padStart(2, "0") + ":" + String(d.getUTCMinutes()).padStart(2, "0");
  }

  function drawThroughput(svg, s) {
    clear(svg);
    const n = s.minutes.length;
    const max = Math.max(1, ...s.succeeded.map((v, i) => v + s.dead[i]));
    const bw = (W - PAD) / n;
    for (let i = 0; i < n; i++) {
      const okH = (s.succeeded[i] / max) * (H - 2 * PAD);
      const badH = (s.dead[i] / max) * (H - 2 * PAD);
      el("rect", { x: PAD + i * bw, y: H - PAD - okH, width: Math.max(1, bw - 1), height: okH, class: "ok" }, svg);
      el("rect", { x: PAD + i * bw, y: H - PAD - okH - badH, width: Math.max(1, bw - 1), height: badH, class: "bad" }, svg);
    }
    text(svg, 0, PAD, String(max));
    text(svg, PAD, H - 6, minuteLabel(s.minutes[0]));
    text(svg, W - 34, H - 6, minuteLabel(s.minutes[n - 1]));
  }

  function drawFailures(svg, s) {
    clear(svg);
    const n = s.minutes.length;
    const points = [];
    for (let i = 0; i < n; i++) {
      const total = s.succeeded[i] + s.dead[i];
      const rate = total ? s.dead[i] / total : 0;
      points.push((PAD + (i * (W - PAD)) / (n - 1)).toFixed(1) + "," + (H - PAD - rate * (H - 2 * PAD)).toFixed(1));
    }
    el("polyline", { points: points.join(" "), class: "rate" }, svg);
    text(svg, 0, PAD, "100%");
    text(svg, 0, H - PAD, "0%");
    text(svg, PAD, H - 6, minuteLabel(s.minutes[0]));
    text(svg, W - 34, H - 6, minuteLabel(s.minutes[n - 1]));
  }

  function setCount(queue, key, value) {
    const selector = '[data-count="' + CSS.escape(queue + "/" + key) + '"]';
    for (const node of document.querySelectorAll(selector)) {
      node.textContent = key === "paused" ? (value ? "paused" : "active") : String(value);
    }
  }

  const status = document.getElementById("live-status");
  async function refresh() {
    let response;
    try {
      response = await fetch("/dashboard/api/overview", { headers: { accept: "application/json" } });
    } catch (e) {
      if (status) status.textContent = "(offline: retrying)";
      return;
    }
    // Signed out meanwhile: the session ended or expired.
    if (response.redirected) { window.location.assign("/dashboard/login"); return; }
    if (!response.ok) { if (status) status.textContent = "(server answered " + response.status + ")"; return; }
    const o = await response.json();
    for (const q of o.queues) {
      if (!q.counts) continue;
      for (const [k, v] of Object.entries(q.counts)) setCount(q.name, k, v);
    }
    const updated = document.getElementById("updated");
    if (updated) updated.textContent = new Date(o.at).toISOString().replace("T", " ").slice(0, 19) + " UTC";
    if (status) status.textContent = "";
    const tp = document.getElementById("chart-throughput");
    if (tp) drawThroughput(tp, o.series);
    const fr = document.getElementById("chart-failures");
    if (fr) drawFailures(fr, o.series);
  }
  refresh();
  window.setInterval(refresh, 2000);
})();

// Live progress: the job page's bar and state (every second, until the job is final) and the
// batches page's bars and counts (every 2 s). Values are written with textContent and
// properties only, as above.
(function () {
  const FINAL = ["succeeded", "dead", "cancelled"];

  async function poll(url, apply, every) {
    let timer = null;
    async function tick() {
      let response;
      try {
        response = await fetch(url, { headers: { accept: "application/json" } });
      } catch (e) {
        return; // offline: the next tick tries again
      }
      if (response.redirected) { window.location.assign("/dashboard/login"); return; }
      if (!response.ok) return;
      if (apply(await response.json()) === false && timer !== null) window.clearInterval(timer);
    }
    timer = window.setInterval(tick, every);
  }

  const job = document.querySelector("[data-live-job]");
  if (job) {
    const bar = document.getElementById("job-progress");
    const label = document.getElementById("job-progress-text");
    const state = document.getElementById("job-state");
    poll("/dashboard/api/jobs/" + encodeURIComponent(job.dataset.liveJob), function (j) {
      if (j.progress) {
        bar.value = j.progress.percent;
        label.textContent = j.progress.percent + " % · " + j.progress.message;
      }
      if (state && typeof j.state === "string") {
        state.textContent = j.state;
        state.className = "state state-" + j.state;
      }
      return !FINAL.includes(j.state);
    }, 1000);
  }

  const batches = document.querySelector("[data-live-batches]");
  if (batches) {
    poll("/dashboard/api/batches", function (list) {
      for (const b of list) {
        const row = batches.querySelector('tr[data-batch="' + CSS.escape(String(b.id)) + '"]');
        if (!row) continue; // a batch made since the page loaded: shown on the next load
        const done = b.total - b.pending;
        const bar = row.querySelector("progress");
        bar.max = Math.max(b.total, 1);
        bar.value = done;
        row.querySelector('[data-field="done"]').textContent = done + " / " + b.total;
        for (const field of ["succeeded", "dead", "cancelled"]) {
          row.querySelector('[data-field="' + field + '"]').textContent = String(b[field]);
        }
        const state = row.querySelector('[data-field="state"]');
        state.textContent = b.state;
        state.className = "state state-" + (b.state === "finished" ? "succeeded" : "running");
      }
    }, 2000);
  }
})();
