// The operator viewer page: one WebSocket to the local viewer process; no framework, no build step.
"use strict";

const state = { alerts: new Map(), order: [], selected: null, outcomes: {}, sound: true, link: false,
                socket: null, audio: null, filters: { outcome: "", camera: "", category: "" } };
const $ = (id) => document.getElementById(id);
const KEYS = { s: "confirmed_stopped", n: "confirmed_not_stopped", f: "false_alert" };

const pad = (n) => String(n).padStart(2, "0");
function fmtClock(t) { const d = new Date(t * 1000); return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`; }
function fmtTime(t) {
  if (!t) return "";
  const d = new Date(t * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtClock(t)}`;
}
function fmtScore(s) { return s.toFixed(2); }
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text; return e; }

// -- sound: a short two-tone beep made with WebAudio (no sound file) --------------------------------------
function audio() {
  if (!state.audio) { try { state.audio = new AudioContext(); } catch (e) { return null; } }
  return state.audio;
}
function beep() {
  if (!state.sound) return;
  const ctx = audio(); if (!ctx) return;
  if (ctx.state === "suspended") { $("sound-hint").classList.remove("hidden"); return; }
  document.body.dataset.beeps = String(Number(document.body.dataset.beeps || 0) + 1);  // for the tests
  [0, 0.18].forEach((at, i) => {
    const osc = ctx.createOscillator(), gain = ctx.createGain();
    osc.frequency.value = i ? 660 : 880; osc.type = "square";
    gain.gain.setValueAtTime(0.0001, ctx.currentTime + at);
    gain.gain.exponentialRampToValueAtTime(0.25, ctx.currentTime + at + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + at + 0.15);
    osc.connect(gain).connect(ctx.destination); osc.start(ctx.currentTime + at); osc.stop(ctx.currentTime + at + 0.16);
  });
}
document.addEventListener("pointerdown", () => { const c = audio(); if (c) c.resume(); $("sound-hint").classList.add("hidden"); });

// -- the queue -------------------------------------------------------------------------------------------
function upsert(alert) {
  if (!state.alerts.has(alert.id)) state.order.push(alert.id);
  state.alerts.set(alert.id, alert);
  state.order.sort((a, b) => state.alerts.get(b).seq - state.alerts.get(a).seq);
}

function stateText(a) {
  if (a.state === "decided") return state.outcomes[a.outcome] || a.outcome;
  if (a.state === "sending") return "sending: " + (state.outcomes[a.outcome] || a.outcome);
  return a.refusal ? "refused – decide again" : "PENDING";
}

function renderQueue(fresh) {
  const ol = $("queue"); ol.replaceChildren();
  for (const id of state.order) {
    const a = state.alerts.get(id);
    const li = el("li", a.state + (id === state.selected ? " selected" : "") + (id === fresh ? " fresh" : ""));
    li.dataset.id = id;
    li.append(el("span", "who", a.subject_name), el("span", "sc", fmtScore(a.score)),
              el("span", "when", `${fmtClock(a.t_wall)} · ${a.camera} · #${a.seq}`), el("span", "st", stateText(a)));
    li.onclick = () => select(id);
    ol.append(li);
  }
}

function select(id) {
  state.selected = id;
  renderQueue(); renderDetail();
}

function renderDetail() {
  const a = state.alerts.get(state.selected);
  $("empty").classList.toggle("hidden", !!a); $("detail").classList.toggle("hidden", !a);
  if (!a) return;
  $("subject").textContent = a.subject_name + "  (" + a.subject_id + ")";
  $("category").textContent = a.category;
  $("score").textContent = fmtScore(a.score);
  $("reason").textContent = a.reason;
  $("time").textContent = fmtTime(a.t_wall);
  $("camera").textContent = `${a.camera} (track ${a.track_id})`;
  $("alert-no").textContent = "#" + a.seq;
  for (const which of ["probe", "reference"]) {
    const img = $(which), has = a["has_" + which];
    img.classList.toggle("hidden", !has); img.nextElementSibling.classList.toggle("hidden", has);
    const src = `/api/alerts/${a.id}/${which}.jpg`;
    if (has && img.getAttribute("src") !== src) img.src = src;
  }
  const st = $("state");
  st.className = "state " + (a.state === "pending" ? (a.refusal ? "refused" : "") : a.state);
  st.textContent = a.state === "decided" ? "Decided: " + stateText(a) + (a.note ? " — " + a.note : "")
                 : a.state === "sending" ? "Sending decision: " + (state.outcomes[a.outcome] || a.outcome) + " …"
                 : a.refusal ? "Refused by the appliance: " + a.refusal : "Awaiting your decision";
  document.querySelectorAll(".buttons button").forEach((b) => { b.disabled = a.state !== "pending"; });
  $("note").disabled = a.state !== "pending";
}

function selectNextPending() {
  const pending = state.order.filter((id) => state.alerts.get(id).state === "pending");
  if (pending.length) select(pending[pending.length - 1]);  // oldest pending first
}

function move(step) {
  const i = state.order.indexOf(state.selected);
  const j = Math.max(0, Math.min(state.order.length - 1, (i < 0 ? 0 : i + step)));
  if (state.order.length) select(state.order[j]);
}

// -- decisions -------------------------------------------------------------------------------------------
function decide(outcome) {
  const a = state.alerts.get(state.selected);
  if (!a || a.state !== "pending" || !state.socket) return;
  state.socket.send(JSON.stringify({ type: "decide", alert_id: a.id, outcome, note: $("note").value }));
  $("note").value = "";
}
document.querySelectorAll(".buttons button").forEach((b) => { b.onclick = () => decide(b.dataset.outcome); });
document.addEventListener("keydown", (ev) => {
  if (ev.target === $("note")) { if (ev.key === "Enter" || ev.key === "Escape") $("note").blur(); return; }
  if (ev.target.tagName === "SELECT" || ev.ctrlKey || ev.altKey || ev.metaKey) return;
  const k = ev.key.toLowerCase();
  if (KEYS[k]) { ev.preventDefault(); decide(KEYS[k]); }
  else if (k === "j" || ev.key === "ArrowDown") { ev.preventDefault(); move(1); }
  else if (k === "k" || ev.key === "ArrowUp") { ev.preventDefault(); move(-1); }
  else if (ev.key === "/") { ev.preventDefault(); $("note").focus(); }
});

// -- status, counts, preview, history ---------------------------------------------------------------------
function renderStatus(s) {
  state.link = s.link_up;
  const link = $("link"); link.className = "pill " + (s.link_up ? "up" : "down");
  link.textContent = s.link_up ? "LINK UP" : "LINK DOWN";
  const h = s.health, box = $("health"); box.replaceChildren();
  if (!h) { box.textContent = "no appliance health yet"; }
  else {
    const fps = Object.entries(h.cameras_fps).map(([c, f]) => `${c} ${f.toFixed(1)} fps`).join(", ") || "no camera";
    const parts = [["Cameras", fps], ["Accel", h.accelerator],
      ["Temp", h.temperature_c == null ? "–" : h.temperature_c.toFixed(0) + " °C", h.temperature_c > 80],
      ["Disk", (h.disk_free_mb == null ? "–" : (h.disk_free_mb / 1024).toFixed(1) + " GB free") +
        (h.disk_low ? " — DISK FULL: no probe crops kept on the van" : ""), h.disk_low || h.disk_free_mb < 1024],
      ["Watchlist", h.watchlist_size + (h.watchlist_expires ? " until " + fmtTime(h.watchlist_expires) : ""), h.watchlist_size === 0]];
    parts.forEach(([k, v, warn], i) => { if (i) box.append(" · "); box.append(k + " "); box.append(el("b", warn ? "warn" : "", v)); });
    if (!s.link_up) box.append(el("span", "warn", " (stale)"));
  }
  $("deployment").textContent = s.deployment ? "Deployment: " + s.deployment : "";
  renderImport(h);
  if (s.counts) renderCounts(s.counts);
}

// The newest watchlist import (health version 2; absent from a version 1 appliance): a refusal in amber.
function importText(h) {
  const d = new Date(h.import_time * 1000), today = new Date().toDateString() === d.toDateString();
  const when = today ? `${pad(d.getHours())}:${pad(d.getMinutes())}` : fmtTime(h.import_time).slice(0, 16);
  if (h.import_outcome === "refused") return `Watchlist: refused — ${h.import_reason || h.import_code} (${when})`;
  const ref = h.import_deployment_ref ? " " + h.import_deployment_ref : "";
  return `Watchlist${ref}: ${h.import_accepted ?? "?"} accepted, ${h.import_rejected ?? "?"} rejected (${when})`;
}
function renderImport(h) {
  const box = $("import"), shown = !!(h && h.import_outcome && h.import_time);
  box.classList.toggle("hidden", !shown);
  box.classList.toggle("refused", shown && h.import_outcome === "refused");
  box.textContent = shown ? importText(h) : "";
  if (shown) box.title = h.import_outcome === "refused" ? `refusal code ${h.import_code}; details: lfr watchlist status / audit log on the van` : "";
}

function renderCounts(c) {
  const rows = [["Alerts", c.alerts], ["Pending", c.pending]];
  for (const [k, label] of Object.entries(state.outcomes)) rows.push([label, c[k]]);
  $("counts").replaceChildren(...rows.map(([k, v]) => { const tr = el("tr"); tr.append(el("td", "", k), el("td", "", String(v))); return tr; }));
}

let previewBusy = false, previewWanted = null;
function showPreview(n) {
  if (previewBusy) { previewWanted = n; return; }
  previewBusy = true;
  const img = $("preview");
  img.onload = img.onerror = () => { previewBusy = false; $("no-preview").classList.add("hidden");
    if (previewWanted !== null) { const m = previewWanted; previewWanted = null; showPreview(m); } };
  img.src = "/api/preview.jpg?n=" + n;
}

function fillSelect(id, values) {
  const sel = $(id), keep = sel.value, first = sel.options[0];
  sel.replaceChildren(first, ...values.map((v) => { const o = el("option", "", v); o.value = v; return o; }));
  sel.value = values.includes(keep) ? keep : "";
}

async function loadHistory() {
  const q = new URLSearchParams(Object.entries(state.filters).filter(([, v]) => v));
  const res = await fetch("/api/alerts?" + q.toString());
  if (!res.ok) return;
  const { alerts } = await res.json();
  $("history").replaceChildren(...alerts.map((a) => {
    const tr = el("tr"); tr.dataset.id = a.id;
    [String(a.seq), fmtTime(a.t_wall), a.camera, a.subject_name, a.category, fmtScore(a.score), stateText(a), a.note || ""]
      .forEach((t) => tr.append(el("td", "", t)));
    tr.onclick = () => { if (state.alerts.has(a.id)) select(a.id); };
    return tr;
  }));
}
for (const f of ["outcome", "camera", "category"]) {
  $("f-" + f).onchange = () => { state.filters[f] = $("f-" + f).value; loadHistory(); };
}
let historyTimer = null;
function refreshHistory() { clearTimeout(historyTimer); historyTimer = setTimeout(loadHistory, 150); }

// -- the WebSocket ---------------------------------------------------------------------------------------
async function rendered(id) {
  // Report when the alert is on screen: its queue entry, and when selected, both images decoded.
  if (id === state.selected)
    await Promise.all(["probe", "reference"].map((w) => $(w).decode().catch(() => null)));
  requestAnimationFrame(() => {
    const t = (performance.timeOrigin + performance.now()) / 1000;
    if (state.socket && state.socket.readyState === WebSocket.OPEN)
      state.socket.send(JSON.stringify({ type: "rendered", alert_id: id, t_wall: t }));
  });
}

function onMessage(msg) {
  switch (msg.type) {
    case "hello": {
      state.outcomes = msg.outcomes; state.sound = msg.sound;
      const f = $("f-outcome"); f.replaceChildren(f.options[0], f.options[1]);
      for (const [k, label] of Object.entries(msg.outcomes)) { const o = el("option", "", label); o.value = k; f.append(o); }
      f.value = state.filters.outcome;
      state.alerts.clear(); state.order = [];
      msg.alerts.forEach(upsert);
      fillSelect("f-camera", msg.choices.camera); fillSelect("f-category", msg.choices.category);
      renderStatus(msg);
      if (!state.alerts.has(state.selected)) { state.selected = null; selectNextPending(); }
      renderQueue(); renderDetail(); loadHistory();
      if (msg.preview) showPreview(msg.preview);
      break;
    }
    case "alert": {
      const a = msg.alert; upsert(a);
      fillSelect("f-camera", msg.choices.camera); fillSelect("f-category", msg.choices.category);
      const cur = state.alerts.get(state.selected);
      if (!cur || cur.state !== "pending") state.selected = a.id;
      renderQueue(a.id); renderDetail(); renderCounts(msg.counts); refreshHistory();
      const banner = $("banner"); banner.classList.remove("hidden");
      banner.textContent = `NEW ALERT · ${a.subject_name} · ${a.camera}`;
      clearTimeout(state.bannerTimer); state.bannerTimer = setTimeout(() => banner.classList.add("hidden"), 6000);
      beep(); rendered(a.id);
      break;
    }
    case "decision": {
      upsert(msg.alert);
      if (msg.counts) renderStatus(msg);
      const wasSelected = msg.alert.id === state.selected;
      if (wasSelected && msg.accepted === true) selectNextPending();
      renderQueue(); renderDetail(); refreshHistory();
      break;
    }
    case "refused": {
      const a = state.alerts.get(msg.alert_id);
      const st = $("state"); st.className = "state refused"; st.textContent = "Not sent: " + msg.reason;
      if (a) renderQueue();
      break;
    }
    case "status": renderStatus(msg); break;
    case "preview": showPreview(msg.n); break;
  }
}

function connect() {
  const ws = new WebSocket(`ws://${location.host}/ws`);
  state.socket = ws;
  ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
  ws.onclose = () => {
    state.socket = null;
    renderStatus({ link_up: false, health: null, deployment: "viewer process not answering: reconnecting…" });
    setTimeout(connect, 1000);
  };
}
connect();
