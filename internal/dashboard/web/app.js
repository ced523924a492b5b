// cordstream dashboard page. It loads one query's state from the JSON API,
// then follows the event stream (/api/v1/events): each committed batch
// updates the elements already on the page (text, table rows, chart data);
// nothing is rebuilt wholesale. No dependencies besides uPlot for the charts.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const api = "/api/v1";
  const MAX_POINTS = 720; // points kept per chart
  const BATCH_ROWS = 10; // rows of the recent batches table

  const st = {
    name: null, // query name
    query: null, // its description
    measure: null, // name of the measure the leaderboard ranks by
    total: null, // name of the additive measure the totals chart shows (or null)
    batch: null, // the batch shown (BatchInfo)
    windows: new Map(), // window start (ms) -> window (totals), held or not
    windowSel: "current",
    drill: null, // {key_id, label}
    es: null,
    local: false,
    charts: {},
    loading: null,
  };
  const nf = new Intl.NumberFormat();

  // ------------------------------------------------------------ helpers

  async function getJSON(path) {
    const r = await fetch(api + path, { headers: { Accept: "application/json" } });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error ? body.error.message : "HTTP " + r.status);
    return body;
  }
  const q = (path) => "/queries/" + encodeURIComponent(st.name) + path;
  const ms = (iso) => Date.parse(iso);
  const fmtNum = (v) => (v === null || v === undefined ? "–" : nf.format(v));
  function pad(n) { return String(n).padStart(2, "0"); }
  function fmtTime(iso, withDate) {
    if (!iso) return "–";
    const d = new Date(iso);
    if (d.getTime() === 0) return "none yet";
    const p = st.local
      ? [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()]
      : [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()];
    const t = pad(p[3]) + ":" + pad(p[4]) + ":" + pad(p[5]);
    const z = st.local ? "" : " UTC";
    return (withDate ? p[0] + "-" + pad(p[1]) + "-" + pad(p[2]) + " " : "") + t + z;
  }
  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }
  function keyLabel(keys) {
    return Object.entries(keys).map(([c, v]) => (Object.keys(keys).length > 1 ? c + "=" : "") + (v === null ? "null" : v)).join(" · ");
  }
  // Updates tbody's rows in place: rows keyed by id, cells set by fill;
  // rows no longer listed are removed, the others are moved into order.
  function syncRows(tbody, items, id, make, fill) {
    const have = new Map();
    for (const tr of tbody.rows) have.set(tr.dataset.id, tr);
    let i = 0;
    for (const it of items) {
      const k = id(it);
      let tr = have.get(k);
      if (tr) have.delete(k);
      else {
        tr = make(it);
        tr.dataset.id = k;
      }
      fill(tr, it, i);
      if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
      i++;
    }
    for (const tr of have.values()) tr.remove();
  }
  function row(cells) {
    const tr = document.createElement("tr");
    for (const c of cells) {
      const td = document.createElement("td");
      if (c) td.className = c;
      tr.appendChild(td);
    }
    return tr;
  }

  // ------------------------------------------------------------ charts

  function chartOpts(el, label) {
    const dark = matchMedia("(prefers-color-scheme: dark)").matches;
    const axis = { stroke: dark ? "#9aa1ad" : "#5f6672", grid: { stroke: dark ? "#2e323a" : "#e1e4ea" }, ticks: { stroke: dark ? "#2e323a" : "#e1e4ea" } };
    return {
      width: Math.max(200, el.clientWidth),
      height: 220,
      tzDate: st.local ? (ts) => new Date(ts * 1e3) : (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
      scales: { x: { time: true } },
      legend: { show: true },
      axes: [axis, Object.assign({ size: 60 }, axis)],
      series: [{}, { label: label, stroke: dark ? "#8b94ff" : "#4f5bd5", fill: dark ? "rgba(139,148,255,.25)" : "rgba(79,91,213,.2)", width: 1.5, points: { show: true, size: 4 } }],
    };
  }
  function drawChart(name, el, data, label) {
    let c = st.charts[name];
    if (!c) {
      c = st.charts[name] = new uPlot(chartOpts(el, label), data, el);
      new ResizeObserver(() => c.setSize({ width: Math.max(200, el.clientWidth), height: 220 })).observe(el);
    } else {
      c.setData(data);
    }
  }
  function resetCharts() {
    for (const [name, c] of Object.entries(st.charts)) {
      c.destroy();
      delete st.charts[name];
    }
  }

  // ------------------------------------------------------------ query

  function showQuery(d) {
    st.query = d;
    st.measure = d.measures[0].name;
    const add = d.measures.find((m) => m.additive);
    st.total = add ? add.name : null;
    setText($("query-title"), d.title || d.name);
    document.title = "cordstream · " + (d.title || d.name);
    const ms_ = d.measures.map((m) => m.name + " = " + m.aggregate).join(", ");
    setText($("query-settings"), "window " + d.window + ", slide " + d.slide + ", watermark " + d.watermark + ", " + d.output_mode +
      " mode, trigger " + d.trigger + ", group by " + d.group_by.join(", ") + "; " + ms_ + (d.input ? "; reads " + d.input : ""));
    $("query-scope").hidden = d.scope !== "instance";
    setText($("query-scope"), "The rows this instance's engine holds: with several instances in a group, the leader (the instance that owns input partition 0) holds the whole query and the others none; cordstream dashboard shows the whole query from the results topic.");
    setText($("board-key-h"), d.group_by.join(" · "));
    setText($("board-val-h"), st.measure);
    setText($("totals-h"), st.total ? st.total + " per window" : "Totals per window");
    $("totals-card").hidden = !st.total;
    $("find").hidden = $("find-or").hidden = d.group_by.length !== 1;
    $("find-input").placeholder = d.group_by[0] + " (exact)";
    $("heatmap-card").hidden = d.view !== "heatmap" || !st.total;
  }

  // ------------------------------------------------------------ status

  function showBatch(b) {
    st.batch = b;
    const el = $("batch-id");
    setText(el, b ? String(b.id) : "–");
    el.dataset.batch = b ? String(b.id) : "";
    setText($("batch-time"), b ? fmtTime(b.committed_at, true) : "–");
    if (b) $("batch-time").dateTime = b.committed_at;
    setText($("batch-took"), b ? fmtNum(b.duration_ms) + " ms" : "–");
    tickAge();
  }
  function tickAge() {
    const b = st.batch;
    if (!b) return setText($("batch-age"), "");
    const s = Math.max(0, Math.round((Date.now() - ms(b.committed_at)) / 1000));
    const ago = s < 90 ? s + " s" : s < 5400 ? Math.round(s / 60) + " min" : s < 172800 ? Math.round(s / 3600) + " h" : Math.round(s / 86400) + " days";
    setText($("batch-age"), "(" + ago + " ago)");
  }

  function showStatus(s) {
    showBatch(s.batch);
    const wm = s.watermark && ms(s.watermark) > 0;
    setText($("t-watermark"), s.watermark ? fmtTime(s.watermark, false) : "–");
    setText($("t-watermark-sub"), wm ? fmtTime(s.watermark, true).slice(0, 10) + " · the next batch closes windows ending by then" : "");
    setText($("t-lag"), fmtNum(s.lag.total));
    const since = s.since_start;
    const last = s.last_batch || { counted: 0, late_rows: 0, late_records: 0, bad: {} };
    setText($("t-counted"), fmtNum(since.counted));
    setText($("t-counted-sub"), "last batch " + fmtNum(last.counted) + " · " + fmtNum(since.batches) + " batches");
    setText($("t-late"), fmtNum(since.late_rows + since.late_records));
    setText($("t-late-sub"), fmtNum(since.late_rows) + " rows, " + fmtNum(since.late_records) + " records");
    const bad = (c) => Object.values(c.bad || {}).reduce((a, b) => a + b, 0);
    setText($("t-bad"), fmtNum(bad(since)));
    setText($("t-bad-sub"), "last batch " + fmtNum(bad(last)));
    setText($("t-dup"), fmtNum(since.duplicates));
    syncRows($("lag-table").tBodies[0], s.lag.partitions, (p) => p.topic + "/" + p.partition, () => row(["", "num", "num"]), (tr, p) => {
      setText(tr.cells[0], p.topic);
      setText(tr.cells[1], String(p.partition));
      setText(tr.cells[2], fmtNum(p.lag));
    });
    const reasons = Object.keys(since.bad || {}).sort();
    $("bad-none").hidden = reasons.length > 0;
    syncRows($("bad-table").tBodies[0], reasons, (r) => r, () => row(["", "num", "num"]), (tr, r) => {
      setText(tr.cells[0], r);
      setText(tr.cells[1], fmtNum(since.bad[r]));
      setText(tr.cells[2], fmtNum((last.bad || {})[r] || 0));
    });
  }

  // ------------------------------------------------------------ leaderboard

  function showBoard(cur) {
    const w = cur.window;
    setText($("board-window"), w ? fmtTime(w.window_start, true) + " – " + fmtTime(w.window_end, false) + (w.closed ? " (closed)" : " (open)") : "no window yet");
    const tot = w && st.total ? w.totals[st.total] : null;
    setText($("board-total"), fmtNum(tot));
    $("board-total").dataset.value = tot === null ? "" : String(tot);
    $("board-total").dataset.window = w ? w.window_start : "";
    setText($("board-keys"), w ? fmtNum(w.rows) : "–");
    const rows = cur.rows || [];
    const top = rows.length ? Math.max(...rows.map((r) => r.values[st.measure] || 0)) : 0;
    syncRows($("board").tBodies[0], rows, (r) => r.key_id, () => row(["num rank", "key", "num val", "bar"]), (tr, r) => {
      const v = r.values[st.measure];
      setText(tr.cells[0], String(r.rank));
      const label = keyLabel(r.keys);
      setText(tr.cells[1], label);
      tr.cells[1].title = label;
      tr.cells[1].classList.toggle("null", Object.values(r.keys).some((x) => x === null));
      setText(tr.cells[2], fmtNum(v));
      tr.dataset.value = String(v);
      tr.dataset.label = label;
      let bar = tr.cells[3].firstChild;
      if (!bar) bar = tr.cells[3].appendChild(document.createElement("span"));
      bar.style.width = (top > 0 ? (100 * v) / top : 0).toFixed(1) + "%";
      tr.setAttribute("aria-selected", st.drill && st.drill.key_id === r.key_id ? "true" : "false");
    });
    $("board-empty").hidden = rows.length > 0;
  }

  async function loadBoard() {
    const w = st.windowSel === "current" ? "current" : st.windowSel;
    try {
      const t = await getJSON(q("/top?n=20&window=" + encodeURIComponent(w)));
      showBoard(t);
    } catch (e) {
      // The window was dropped (or never held): back to the current one.
      st.windowSel = "current";
      $("window-select").value = "current";
      showBoard(await getJSON(q("/top?n=20")));
    }
  }

  function showWindowChoices() {
    const sel = $("window-select");
    const held = [...st.windows.values()].filter((w) => w.held).sort((a, b) => ms(b.window_start) - ms(a.window_start));
    const items = [{ id: "current", text: "current" }].concat(held.map((w) => ({
      id: w.window_start,
      text: fmtTime(w.window_start, true) + " – " + fmtTime(w.window_end, false) + (w.closed ? " closed" : ""),
    })));
    const have = new Map([...sel.options].map((o) => [o.value, o]));
    items.forEach((it, i) => {
      let o = have.get(it.id);
      if (o) have.delete(it.id);
      else {
        o = document.createElement("option");
        o.value = it.id;
      }
      if (o.textContent !== it.text) o.textContent = it.text;
      if (sel.options[i] !== o) sel.insertBefore(o, sel.options[i] || null);
    });
    for (const o of have.values()) o.remove();
    sel.value = st.windowSel;
  }

  // ------------------------------------------------------------ totals

  function mergeWindows(list, dropBefore) {
    for (const w of list) st.windows.set(ms(w.window_start), w);
    // Windows older than the ones held keep their totals but not their rows.
    if (dropBefore) for (const w of st.windows.values()) if (ms(w.window_start) <= ms(dropBefore)) w.held = false;
    const keys = [...st.windows.keys()].sort((a, b) => a - b);
    for (const k of keys.slice(0, Math.max(0, keys.length - MAX_POINTS))) st.windows.delete(k);
  }

  function showTotals() {
    const ws = [...st.windows.values()].sort((a, b) => ms(a.window_start) - ms(b.window_start));
    if (st.total) {
      drawChart("totals", $("totals-chart"), [ws.map((w) => ms(w.window_start) / 1000), ws.map((w) => w.totals[st.total])], st.total);
    }
    const recent = ws.slice(-12).reverse();
    syncRows($("totals-table").tBodies[0], recent, (w) => w.window_start, () => row(["", "", "num val", "num", ""]), (tr, w) => {
      setText(tr.cells[0], fmtTime(w.window_start, true));
      setText(tr.cells[1], fmtTime(w.window_end, false));
      const v = st.total ? w.totals[st.total] : null;
      setText(tr.cells[2], fmtNum(v));
      tr.dataset.value = String(v);
      tr.dataset.start = w.window_start;
      setText(tr.cells[3], fmtNum(w.rows));
      setText(tr.cells[4], (w.closed ? "closed" : "open") + (w.held ? "" : ", rows dropped"));
    });
    showWindowChoices();
    if (st.query && st.query.view === "heatmap") showHeatmap(ws);
  }

  // The heatmap sums the totals of the windows kept by day of week and hour
  // of their start, in UTC or local time.
  function showHeatmap(ws) {
    const el = $("heatmap");
    const days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    if (!el.childElementCount) {
      el.appendChild(document.createElement("span"));
      for (let h = 0; h < 24; h++) {
        const s = document.createElement("span");
        s.className = "lbl";
        s.textContent = h % 3 === 0 ? String(h) : "";
        el.appendChild(s);
      }
      for (const d of days) {
        const s = document.createElement("span");
        s.className = "lbl";
        s.textContent = d;
        el.appendChild(s);
        for (let h = 0; h < 24; h++) {
          const c = document.createElement("span");
          c.className = "cell";
          el.appendChild(c);
        }
      }
    }
    const sums = new Array(7 * 24).fill(0);
    for (const w of ws) {
      const d = new Date(w.window_start);
      const day = ((st.local ? d.getDay() : d.getUTCDay()) + 6) % 7;
      const hour = st.local ? d.getHours() : d.getUTCHours();
      sums[day * 24 + hour] += w.totals[st.total] || 0;
    }
    const max = Math.max(1, ...sums);
    const cells = el.querySelectorAll(".cell");
    cells.forEach((c, i) => {
      c.style.setProperty("--v", (sums[i] / max).toFixed(3));
      c.title = days[Math.floor(i / 24)] + " " + pad(i % 24) + ":00 " + (st.local ? "local" : "UTC") + ": " + fmtNum(sums[i]);
      c.dataset.value = String(sums[i]);
    });
    setText($("heatmap-sub"), ws.length + " windows, " + (st.local ? "local time" : "UTC"));
  }

  // ------------------------------------------------------------ drill-down

  async function loadDrill() {
    const d = st.drill;
    $("drill-card").hidden = !d;
    for (const tr of $("board").tBodies[0].rows) tr.setAttribute("aria-selected", d && tr.dataset.id === d.key_id ? "true" : "false");
    if (!d) return;
    const path = d.key_id ? "key_id=" + encodeURIComponent(d.key_id) : "key=" + encodeURIComponent(d.value);
    let s;
    try {
      s = await getJSON(q("/series?" + path));
    } catch (e) {
      setText($("drill-key"), d.label || d.value);
      setText($("drill-sub"), e.message);
      return;
    }
    if (!st.drill || st.drill !== d) return;
    d.key_id = s.key_id;
    setText($("drill-key"), keyLabel(s.keys));
    const pts = s.points;
    const withRow = pts.filter((p) => p.row).length;
    setText($("drill-sub"), st.measure + " in each window held (" + pts.length + " windows, a row in " + withRow + ")");
    drawChart("drill", $("drill-chart"), [pts.map((p) => ms(p.window_start) / 1000), pts.map((p) => p.values[st.measure])], st.measure);
  }

  // ------------------------------------------------------------ batches

  function showBatches(list) {
    syncRows($("batches-table").tBodies[0], list.slice(0, BATCH_ROWS), (b) => String(b.id), () => row(["num", "", "num", "num", "num", "num", "num"]), (tr, b) => {
      setText(tr.cells[0], b.reset ? b.id + " (reset)" : String(b.id));
      setText(tr.cells[1], fmtTime(b.committed_at, false));
      setText(tr.cells[2], fmtNum(b.duration_ms));
      setText(tr.cells[3], fmtNum(b.counts.records));
      setText(tr.cells[4], fmtNum(b.rows_changed));
      setText(tr.cells[5], fmtNum(b.rows_closed));
      setText(tr.cells[6], fmtNum(b.lag));
    });
  }
  let recentBatches = [];

  // ------------------------------------------------------------ loading

  // load fetches everything from the API (at start, on a reset event, when
  // the query changes). Answers may come from different batches: the
  // stream's events that follow bring them together.
  async function load() {
    const [desc, status, totals, batches] = await Promise.all([
      getJSON(q("")), getJSON(q("/status")), getJSON(q("/totals?limit=" + MAX_POINTS)), getJSON(q("/batches?limit=" + BATCH_ROWS)),
    ]);
    showQuery(desc);
    st.windows.clear();
    mergeWindows(totals.windows, null);
    showStatus(status);
    recentBatches = batches.batches;
    showBatches(recentBatches);
    showTotals();
    await loadBoard();
    await loadDrill();
    document.body.dataset.loads = String(Number(document.body.dataset.loads || 0) + 1);
  }

  function onBatch(e) {
    const ev = JSON.parse(e.data);
    if (ev.query !== st.name || !ev.batch) return;
    if (st.batch && ev.batch.id < st.batch.id) return;
    if (ev.batch.reset) {
      // The query's state was reloaded (a restart, a rebalance): windows
      // may be gone that no event names, so load it all again.
      load().catch(showError);
      return;
    }
    showStatus(ev);
    mergeWindows(ev.windows, ev.held.dropped_through);
    showTotals();
    if (st.windowSel === "current") showBoard(ev.current);
    else loadBoard();
    if (!recentBatches.length || recentBatches[0].id !== ev.batch.id) {
      recentBatches = [ev.batch].concat(recentBatches.filter((b) => b.id !== ev.batch.id)).slice(0, BATCH_ROWS);
    }
    showBatches(recentBatches);
    if (st.drill) loadDrill();
    document.body.dataset.events = String(Number(document.body.dataset.events || 0) + 1);
  }

  function connect() {
    if (st.es) st.es.close();
    const es = (st.es = new EventSource(api + "/events?query=" + encodeURIComponent(st.name)));
    const conn = $("conn");
    const set = (s) => {
      conn.dataset.state = s;
      setText(conn, s);
    };
    es.onopen = () => set("live");
    es.onerror = () => set(es.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting");
    es.addEventListener("batch", onBatch);
    es.addEventListener("reset", () => load().catch(showError));
  }

  function showError(e) {
    setText($("conn"), "error: " + e.message);
    $("conn").dataset.state = "reconnecting";
  }

  function readHash() {
    const h = new URLSearchParams(location.hash.slice(1));
    return { query: h.get("query"), key: h.get("key_id") };
  }
  function writeHash() {
    const h = new URLSearchParams();
    h.set("query", st.name);
    if (st.drill && st.drill.key_id) h.set("key_id", st.drill.key_id);
    history.replaceState(null, "", "#" + h.toString());
  }

  async function start(name, keyID) {
    st.name = name;
    st.batch = null;
    st.windowSel = "current";
    st.drill = keyID ? { key_id: keyID } : null;
    resetCharts();
    $("heatmap").replaceChildren();
    for (const id of ["board", "totals-table", "lag-table", "bad-table", "batches-table"]) $(id).tBodies[0].replaceChildren();
    writeHash();
    await load();
    connect();
    document.body.dataset.ready = "1";
  }

  async function init() {
    const list = await getJSON("/queries");
    const names = list.queries.map((x) => x.name);
    const want = readHash();
    const sel = $("query-select");
    sel.hidden = names.length < 2;
    for (const n of names) {
      const o = document.createElement("option");
      o.value = o.textContent = n;
      sel.appendChild(o);
    }
    const name = names.includes(want.query) ? want.query : names[0];
    sel.value = name;
    sel.addEventListener("change", () => start(sel.value, null).catch(showError));
    $("window-select").addEventListener("change", (e) => {
      st.windowSel = e.target.value;
      loadBoard().catch(showError);
    });
    $("board").tBodies[0].addEventListener("click", (e) => {
      const tr = e.target.closest("tr");
      if (!tr) return;
      st.drill = { key_id: tr.dataset.id, label: tr.dataset.label };
      writeHash();
      loadDrill().catch(showError);
    });
    $("drill-close").addEventListener("click", () => {
      st.drill = null;
      writeHash();
      loadDrill();
    });
    const find = () => {
      const v = $("find-input").value;
      if (v === "") return;
      st.drill = { value: v, label: v };
      loadDrill().then(writeHash).catch(showError);
    };
    $("find-go").addEventListener("click", find);
    $("find-input").addEventListener("keydown", (e) => {
      if (e.key === "Enter") find();
    });
    $("tz-local").addEventListener("change", (e) => {
      st.local = e.target.checked;
      resetCharts();
      load().catch(showError);
    });
    setInterval(tickAge, 1000);
    await start(name, want.key);
  }

  init().catch(showError);
})();
