// Polls /api/stats twice a second and redraws the counters, two SVG charts and two lists.
// No libraries: the page must work offline and under a `default-src 'self'` policy.
"use strict";

(() => {
  const POLL_MS = 500;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const intFmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const timeFmt = new Intl.DateTimeFormat("en-GB", {
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });

  // Short display names for the model's fields; the full name stays in the chip's tooltip.
  const FIELD_LABELS = {
    category_recipient: "recipient",
    transaction_type: "type",
    transaction_method: "method",
    foreign_transaction: "foreign",
    day_of_week: "weekday",
    old_balance: "balance",
    marital_status: "marital",
  };

  const $ = (id) => document.getElementById(id);

  // ---------- formatting ----------
  const fmtInt = (n) => (n == null ? "–" : intFmt.format(n));
  const fmtPct = (x, digits = 1) => (x == null ? "–" : `${(x * 100).toFixed(digits)}%`);
  const fmtProb = (x) => (x == null ? "–" : x.toFixed(3));
  const fmtMs = (ms) => {
    if (ms == null) return "–";
    if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
    if (ms >= 100) return `${ms.toFixed(0)} ms`;
    if (ms >= 10) return `${ms.toFixed(1)} ms`;
    return `${ms.toFixed(2)} ms`;
  };
  const fmtElapsed = (s) => {
    const total = Math.floor(s);
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const sec = String(total % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
  };
  const fmtAmount = (x) => (x == null ? "–" : x.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
  const fmtAxis = (n) => {
    if (n >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
    if (n >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
    return `${+n.toFixed(1)}`;
  };

  function setText(id, text, raw) {
    const el = $(id);
    if (!el) return;
    if (el.textContent !== text) el.textContent = text;
    // Tests and scripts read the raw number rather than parse the formatted text.
    if (raw !== undefined) el.dataset.value = raw == null ? "" : String(raw);
  }

  // ---------- SVG helpers ----------
  function el(tag, attrs, parent, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text != null) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function sizeOf(svg) {
    const box = svg.parentElement.getBoundingClientRect();
    const w = Math.max(240, Math.round(box.width));
    const h = Math.max(160, Math.round(box.height));
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.replaceChildren();
    return [w, h];
  }

  function niceMax(v) {
    if (v <= 0) return 1;
    const mag = 10 ** Math.floor(Math.log10(v));
    for (const step of [1, 2, 2.5, 5, 10]) if (v <= step * mag) return step * mag;
    return 10 * mag;
  }

  function emptyNote(svg, w, h, text) {
    el("text", { x: w / 2, y: h / 2, "text-anchor": "middle", class: "empty-chart" }, svg, text);
  }

  // ---------- line chart: scored/s and flagged/s ----------
  function drawRates(points) {
    const svg = $("rate-chart");
    const [w, h] = sizeOf(svg);
    const m = { l: 48, r: 12, t: 10, b: 26 };
    const iw = w - m.l - m.r;
    const ih = h - m.t - m.b;
    if (!points.length) {
      emptyNote(svg, w, h, "no complete second of data yet");
      return;
    }
    const t0 = points[0].t;
    // Fit the run so far; once it is longer than the window, the window slides.
    const t1 = Math.max(points[points.length - 1].t, t0 + 1);
    const yMax = niceMax(Math.max(1, ...points.map((p) => p.scored)));
    const x = (t) => m.l + ((t - t0) / (t1 - t0)) * iw;
    const y = (v) => m.t + ih - (v / yMax) * ih;

    const axis = el("g", { class: "axis" }, svg);
    for (let i = 0; i <= 4; i += 1) {
      const v = (yMax * i) / 4;
      el("line", { x1: m.l, x2: m.l + iw, y1: y(v), y2: y(v), class: i ? "gridline" : "baseline" }, svg);
      el("text", { x: m.l - 8, y: y(v) + 4, "text-anchor": "end" }, axis, fmtAxis(v));
    }
    const span = t1 - t0;
    const step = span > 90 ? 30 : span > 40 ? 15 : span > 20 ? 5 : span > 10 ? 2 : 1;
    for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
      el("text", { x: x(t), y: h - 6, "text-anchor": "middle" }, axis, fmtElapsed(t));
    }

    const line = (key) => points.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`).join("");
    const scored = line("scored");
    const last = points[points.length - 1];
    el("path", { d: `${scored}L${x(last.t).toFixed(1)},${y(0)}L${x(t0).toFixed(1)},${y(0)}Z`, class: "area-scored" }, svg);
    el("path", { d: scored, class: "line-scored", "data-series": "scored" }, svg);
    el("path", { d: line("flagged"), class: "line-flagged", "data-series": "flagged" }, svg);
    el("circle", { cx: x(last.t), cy: y(last.scored), r: 3.5, class: "dot-scored" }, svg);
    el("circle", { cx: x(last.t), cy: y(last.flagged), r: 3.5, class: "dot-flagged" }, svg);
  }

  // ---------- histogram: fraud probability, log-scaled counts, threshold marked ----------
  function drawHistogram(hist, threshold) {
    const svg = $("histogram-chart");
    const [w, h] = sizeOf(svg);
    const m = { l: 44, r: 10, t: 18, b: 26 };
    const iw = w - m.l - m.r;
    const ih = h - m.t - m.b;
    const counts = hist.counts;
    const total = counts.reduce((a, b) => a + b, 0);
    if (!total) {
      emptyNote(svg, w, h, "no scored rows yet");
      return;
    }
    // Most rows sit near 0: a log scale keeps the sparse high-probability bins visible.
    const maxCount = Math.max(...counts);
    const decades = Math.max(1, Math.ceil(Math.log10(maxCount + 1)));
    const yLog = (c) => m.t + ih - (Math.log10(c + 1) / decades) * ih;
    const bw = iw / hist.bins;
    const axis = el("g", { class: "axis" }, svg);
    for (let d = 0; d <= decades; d += 1) {
      const c = 10 ** d - 1;
      el("line", { x1: m.l, x2: m.l + iw, y1: yLog(c), y2: yLog(c), class: d ? "gridline" : "baseline" }, svg);
      el("text", { x: m.l - 6, y: yLog(c) + 4, "text-anchor": "end" }, axis, fmtAxis(10 ** d));
    }
    // Overlaid, not stacked: on a log scale each bar's top must be its own count.
    const bars = el("g", { "data-testid": "histogram-bars" }, svg);
    const bottom = m.t + ih;
    counts.forEach((c, i) => {
      if (!c) return;
      const fraud = hist.fraud_counts[i] || 0;
      const x0 = m.l + i * bw + 1;
      const width = Math.max(1, bw - 2);
      const bar = el("rect", { x: x0, y: yLog(c), width, height: bottom - yLog(c), class: "bar-legit", rx: 1.5 }, bars);
      const range = `${(i / hist.bins).toFixed(2)}–${((i + 1) / hist.bins).toFixed(2)}`;
      el("title", {}, bar, `${range}: ${fmtInt(c)} rows, ${fmtInt(fraud)} labelled fraud`);
      if (fraud) el("rect", { x: x0, y: yLog(fraud), width, height: bottom - yLog(fraud), class: "bar-fraud", rx: 1.5 }, bars);
    });
    for (const p of [0, 0.25, 0.5, 0.75, 1]) {
      el("text", { x: m.l + p * iw, y: h - 6, "text-anchor": "middle" }, axis, p.toFixed(2));
    }
    if (threshold != null) {
      const tx = m.l + threshold * iw;
      el("line", { x1: tx, x2: tx, y1: m.t - 6, y2: m.t + ih, class: "threshold-line", "data-testid": "threshold-line" }, svg);
      const right = threshold < 0.7;
      el("text", { x: tx + (right ? 5 : -5), y: m.t, "text-anchor": right ? "start" : "end", class: "threshold-label" }, svg, `threshold ${threshold.toFixed(2)}`);
    }
  }

  // ---------- tables ----------
  function td(row, text, cls) {
    const cell = document.createElement("td");
    if (cls) cell.className = cls;
    if (text != null) cell.textContent = text;
    row.appendChild(cell);
    return cell;
  }

  function drawFlagged(items) {
    const body = $("flagged-rows");
    const rows = [];
    for (const item of items) {
      const tr = document.createElement("tr");
      tr.dataset.id = item.id;
      const stamp = Date.parse(item.scored_at);
      td(tr, Number.isNaN(stamp) ? "–" : timeFmt.format(stamp), "mono");
      const idCell = td(tr, item.id.slice(0, 8), "mono");
      idCell.title = item.id;
      td(tr, item.category.replaceAll("_", " "));
      td(tr, fmtAmount(item.amount), "num");
      const prob = td(tr, null);
      const wrap = document.createElement("div");
      wrap.className = "prob";
      const track = document.createElement("div");
      track.className = "prob-track";
      const fill = document.createElement("div");
      fill.className = "prob-fill";
      fill.style.width = `${Math.round((item.probability || 0) * 100)}%`;
      track.appendChild(fill);
      const num = document.createElement("span");
      num.textContent = fmtProb(item.probability);
      wrap.append(track, num);
      prob.appendChild(wrap);
      const label = td(tr, null);
      const badge = document.createElement("span");
      badge.className = `badge ${item.is_fraud == null ? "badge-none" : item.is_fraud ? "badge-fraud" : "badge-legit"}`;
      badge.textContent = item.is_fraud == null ? "unlabelled" : item.is_fraud ? "fraud" : "legit";
      label.appendChild(badge);
      const reasons = td(tr, null, "reasons-cell");
      const chips = document.createElement("div");
      chips.className = "chips";
      for (const r of item.reasons) {
        const chip = document.createElement("span");
        chip.className = "chip";
        chip.dataset.testid = "reason";
        chip.dataset.field = r.field;
        chip.title = r.field;
        // The reason in an analyst's words; a document scored before reasons had words shows its field.
        chip.append(r.text || FIELD_LABELS[r.field] || r.field.replaceAll("_", " "));
        if (r.contribution != null) {
          const b = document.createElement("b");
          b.textContent = `${r.contribution >= 0 ? "+" : ""}${r.contribution.toFixed(2)}`;
          chip.appendChild(b);
        }
        chips.appendChild(chip);
      }
      if (!item.reasons.length) chips.textContent = "–";
      reasons.appendChild(chips);
      rows.push(tr);
    }
    if (!rows.length) {
      const tr = document.createElement("tr");
      tr.className = "empty";
      const cell = td(tr, "No flagged transactions yet");
      cell.colSpan = 7;
      rows.push(tr);
    }
    body.replaceChildren(...rows);
  }

  function drawRejected(byReason) {
    const list = $("rejected-reasons");
    const entries = Object.entries(byReason);
    const max = Math.max(1, ...entries.map(([, n]) => n));
    const items = entries.map(([reason, n]) => {
      const li = document.createElement("li");
      li.className = "reason-row";
      li.dataset.reason = reason;
      const name = document.createElement("span");
      name.className = "reason-name";
      name.textContent = reason;
      const count = document.createElement("span");
      count.className = "reason-count";
      count.textContent = fmtInt(n);
      const track = document.createElement("div");
      track.className = "reason-track";
      const fill = document.createElement("div");
      fill.className = "reason-fill";
      fill.style.width = `${(n / max) * 100}%`;
      track.appendChild(fill);
      li.append(name, count, track);
      return li;
    });
    if (!items.length) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = "No rejected transactions";
      items.push(li);
    }
    list.replaceChildren(...items);
  }

  // ---------- the whole page ----------
  function setStatus(status) {
    const pill = $("status");
    pill.textContent = status;
    pill.className = `status status-${status}`;
    pill.dataset.value = status;
    // Once the run is over nothing on the page moves any more: say so where it said "live".
    const notes = { finished: "· run over, not live", disconnected: "· not live: the demo is not answering" };
    const note = notes[status] || "· live";
    setText("live-note", note);
    document.title = `Fraud scoring ${note}`;
  }

  function render(s) {
    const t = s.totals;
    const r = s.rates;
    const mtr = s.metrics;
    const lat = s.latency_ms;
    setStatus(s.status);
    setText("model-version", s.model_version || "–");
    setText("threshold", s.threshold == null ? "–" : s.threshold.toFixed(3), s.threshold);
    setText("elapsed", fmtElapsed(s.elapsed_s), s.elapsed_s);

    setText("events-per-second", fmtInt(r.events_per_s), r.events_per_s);
    setText("generated-rate", `${fmtInt(r.generated_per_s)} generated / s`, r.generated_per_s);
    setText("scored-count", fmtInt(t.scored), t.scored);
    setText("generated-count", `of ${fmtInt(t.generated)} generated`, t.generated);
    setText("flagged-count", fmtInt(t.flagged), t.flagged);
    setText("flagged-share", t.scored ? `${fmtPct(t.flagged / t.scored)} of scored` : "\u00a0");
    setText("rejected-count", fmtInt(t.rejected), t.rejected);
    const seen = t.scored + t.rejected;
    setText("rejected-share", seen ? `${fmtPct(t.rejected / seen, 2)} of transactions` : "\u00a0");
    setText("precision", fmtPct(mtr.precision), mtr.precision);
    setText("precision-detail", `${fmtInt(mtr.tp)} TP · ${fmtInt(mtr.fp)} FP`);
    setText("recall", fmtPct(mtr.recall), mtr.recall);
    setText("f1", `F1 ${fmtPct(mtr.f1)}`, mtr.f1);
    setText("latency-p99", fmtMs(lat.p99), lat.p99);
    setText("latency-p50", `p50 ${fmtMs(lat.p50)}`, lat.p50);
    // Short enough for the tile; the tooltip says it in full.
    setText("latency-window", lat.window);
    $("latency-window").title = `p50 and p99 over the ${lat.window} transactions stored so far`;

    drawRates(s.series.points);
    drawHistogram(s.histogram, s.threshold);
    drawFlagged(s.latest_flagged);
    drawRejected(s.rejected_by_reason);
    document.body.dataset.updated = String(Date.now());
  }

  async function poll() {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 4 * POLL_MS);
    try {
      const response = await fetch("/api/stats", { cache: "no-store", signal: controller.signal });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      render(await response.json());
    } catch (err) {
      setStatus("disconnected");
      console.debug("stats poll failed", err);
    } finally {
      clearTimeout(timer);
      setTimeout(poll, POLL_MS);
    }
  }

  poll();
})();
