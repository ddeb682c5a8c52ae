// The operator viewer page: one WebSocket to the local viewer process; no framework, no build step.
"use strict";

const PAGE = 50;   // history rows per page
const state = { alerts: new Map(), order: [], selected: null, outcomes: {}, sound: true, link: false,
                socket: null, audio: null, deployment: null, handhelds: false, health: null,
                filters: { outcome: "", camera: "", category: "", deployment: "", since: "", until: "", min_score: "" },
                offset: 0, total: 0, busyUntil: 0 };
const $ = (id) => document.getElementById(id);
const KEYS = { s: "confirmed_stopped", n: "confirmed_not_stopped", f: "false_alert" };
const WORK_MS = 15000;   // after the operator touches an alert, a new one does not take the selection for this long

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
function nameOf(a) { return a.subject_name || (a.state === "archived" ? "(archived: name removed)" : a.subject_id); }

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
  if (a.state === "archived") return "archived (deployment closed)";
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
    li.append(el("span", "who", nameOf(a)), el("span", "sc", fmtScore(a.score)),
              el("span", "when", `${fmtClock(a.t_wall)} · ${a.camera} · #${a.seq}`), el("span", "st", stateText(a)));
    li.onclick = () => { touch(); select(id); };
    ol.append(li);
  }
}

function select(id) {
  state.selected = id;
  renderQueue(); renderDetail();
  const li = document.querySelector(`#queue li[data-id="${id}"]`);
  if (li) li.scrollIntoView({ block: "nearest" });
}

function touch() { state.busyUntil = Date.now() + WORK_MS; }

function renderDetail() {
  const a = state.alerts.get(state.selected);
  $("empty").classList.toggle("hidden", !!a); $("detail").classList.toggle("hidden", !a);
  if (!a) return;
  $("subject").textContent = nameOf(a) + (a.subject_name ? "  (" + a.subject_id + ")" : "");
  $("category").textContent = a.category;
  $("score").textContent = fmtScore(a.score);
  $("reason").textContent = a.reason + (a.persisted === false ? "  — NOT RECORDED ON THE VAN (disk full)" : "");
  $("time").textContent = fmtTime(a.t_wall);
  $("camera").textContent = `${a.camera} (track ${a.track_id})`;
  $("alert-no").textContent = "alert #" + a.seq;
  $("alert-deployment").textContent = a.deployment ? "· deployment " + a.deployment : "";
  const ctx = $("context"), ctxSrc = `/api/alerts/${a.id}/context.jpg`;
  $("context-panel").classList.toggle("hidden", !a.has_context);
  if (a.has_context && ctx.getAttribute("src") !== ctxSrc) ctx.src = ctxSrc;
  for (const which of ["probe", "reference"]) {
    const img = $(which), has = a["has_" + which];
    img.classList.toggle("hidden", !has); img.nextElementSibling.classList.toggle("hidden", has);
    const src = `/api/alerts/${a.id}/${which}.jpg`;
    if (has && img.getAttribute("src") !== src) img.src = src;
    if (!has) img.removeAttribute("src");
  }
  const st = $("state");
  st.className = "state " + (a.state === "pending" ? (a.refusal ? "refused" : "") : a.state);
  st.textContent = a.state === "archived" ? "Archived: its deployment was closed before a decision; it cannot be decided"
                 : a.state === "decided" ? "Decided: " + stateText(a) + (a.note ? " — " + a.note : "")
                 : a.state === "sending" ? "Sending decision: " + (state.outcomes[a.outcome] || a.outcome) + " …"
                 : a.refusal ? "Refused by the appliance: " + a.refusal : "Awaiting your decision";
  document.querySelectorAll(".buttons button").forEach((b) => { b.disabled = a.state !== "pending"; });
  $("note").disabled = a.state !== "pending";
  $("decide").classList.toggle("hidden", a.state === "archived");
  if (typeof hhRenderDispatch === "function") hhRenderDispatch();
}

function selectNextPending() {
  // The oldest pending alert of the deployment in progress (alerts of closed deployments are archived).
  const pending = state.order.filter((id) => state.alerts.get(id).state === "pending");
  if (pending.length) select(pending[pending.length - 1]);
}

function move(step) {
  const i = state.order.indexOf(state.selected);
  const j = Math.max(0, Math.min(state.order.length - 1, (i < 0 ? 0 : i + step)));
  if (state.order.length) select(state.order[j]);
}

// -- decisions -------------------------------------------------------------------------------------------
let toastTimer = null;
function toast(text) {
  const t = $("toast"); t.textContent = text; t.classList.remove("hidden");
  clearTimeout(toastTimer); toastTimer = setTimeout(() => t.classList.add("hidden"), 4000);
}

function decide(outcome, byKey) {
  const a = state.alerts.get(state.selected);
  if (!a || a.state !== "pending" || !state.socket) return;
  touch();
  state.socket.send(JSON.stringify({ type: "decide", alert_id: a.id, outcome, note: $("note").value }));
  $("note").value = "";
  if (byKey) toast(`${state.outcomes[outcome] || outcome} → alert #${a.seq} ${nameOf(a)} (${fmtClock(a.t_wall)}, ${a.camera})`);
}
document.querySelectorAll(".buttons button").forEach((b) => { b.onclick = () => decide(b.dataset.outcome, false); });

// Keys act only when the focus is on the alert: the page itself, the alert panel or the queue, never a field
// where the operator types (a callsign containing S, N or F must not decide anything).
function isTyping(t) {
  return !!t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
}
function onAlert(t) {
  return t === document.body || t === document.documentElement || !!(t && t.closest && t.closest("#alert-panel, #queue-panel"));
}
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape" && !$("zoom").classList.contains("hidden")) { closeZoom(); return; }
  if (ev.target === $("note")) { if (ev.key === "Enter" || ev.key === "Escape") $("note").blur(); return; }
  if (isTyping(ev.target) || !onAlert(ev.target) || ev.ctrlKey || ev.altKey || ev.metaKey) return;
  const k = ev.key.toLowerCase();
  if (KEYS[k]) { ev.preventDefault(); decide(KEYS[k], true); }
  else if (k === "j" || ev.key === "ArrowDown") { ev.preventDefault(); touch(); move(1); }
  else if (k === "k" || ev.key === "ArrowUp") { ev.preventDefault(); touch(); move(-1); }
  else if (ev.key === "/") { ev.preventDefault(); $("note").focus(); }
});

// -- enlarge an image --------------------------------------------------------------------------------------
function openZoom(src) { $("zoom-img").src = src; $("zoom").classList.remove("hidden"); }
function closeZoom() { $("zoom").classList.add("hidden"); $("zoom-img").removeAttribute("src"); }
document.addEventListener("click", (ev) => {
  const t = ev.target;
  if (t.classList && t.classList.contains("zoomable") && t.getAttribute("src")) openZoom(t.getAttribute("src"));
});
$("zoom").onclick = closeZoom;

// -- status, counts, preview, history ---------------------------------------------------------------------
function healthParts(h) {
  const fps = Object.entries(h.cameras_fps).map(([c, f]) => `${c} ${f.toFixed(1)} fps`).join(", ") || "no camera";
  return [["Cameras", fps, Object.keys(h.cameras_fps).length === 0],
    ["Accelerator", h.accelerator],
    ["Temperature", h.temperature_c == null ? "–" : h.temperature_c.toFixed(0) + " °C", h.temperature_c > 80],
    ["Disk", (h.disk_free_mb == null ? "–" : (h.disk_free_mb / 1024).toFixed(1) + " GB free") +
      (h.disk_low ? " — DISK FULL: no probe crops kept on the van" : "") +
      (h.alerts_not_recorded ? " — ALERTS NOT BEING RECORDED on the van (sent from memory)" : ""),
      h.disk_low || h.alerts_not_recorded || h.disk_free_mb < 1024],
    ["Watchlist", h.watchlist_size + " entries" + (h.watchlist_expires ? " until " + fmtTime(h.watchlist_expires) : ""), h.watchlist_size === 0]];
}

function renderStatus(s) {
  state.link = s.link_up; state.deployment = s.deployment || null; state.health = s.health || null;
  const link = $("link"); link.className = "pill " + (s.link_up ? "up" : "down");
  link.textContent = s.link_up ? "LINK UP" : "LINK DOWN";
  const h = s.health, box = $("health"); box.replaceChildren();
  const details = el("dl");
  if (!h) { box.textContent = s.link_up ? "no appliance health yet" : ""; }
  else {
    // the bar: short figures only; every figure in full in Details (and on hover)
    const fpsAll = Object.values(h.cameras_fps);
    const short = [[fpsAll.length ? fpsAll.map((f) => f.toFixed(0)).join("/") + " fps" : "no camera", fpsAll.length === 0],
      [h.temperature_c == null ? "–°C" : h.temperature_c.toFixed(0) + "°C", h.temperature_c > 80],
      [h.disk_low ? "DISK FULL" : h.disk_free_mb == null ? "disk –" : (h.disk_free_mb / 1024).toFixed(0) + " GB",
        h.disk_low || h.disk_free_mb < 1024],
      ...(h.alerts_not_recorded ? [["ALERTS NOT RECORDED", true]] : []),
      ["WL " + h.watchlist_size, h.watchlist_size === 0]];
    short.forEach(([v, warn], i) => { if (i) box.append(" · "); box.append(el("b", warn ? "warn" : "", v)); });
    if (!s.link_up) box.append(el("span", "warn", " (stale)"));
    for (const [k, v, warn] of healthParts(h)) details.append(el("dt", "", k), el("dd", warn ? "warn" : "", v));
    box.title = healthParts(h).map(([k, v]) => `${k}: ${v}`).join("\n");
  }
  const dep = s.deployment ? "Deployment " + s.deployment : (s.link_up ? "no deployment open" : (s.note || ""));
  $("deployment").textContent = dep;
  details.append(el("dt", "", "Deployment"), el("dd", "", s.deployment || "none open"));
  const imp = renderImport(h);
  renderOperatingPoint(h);
  if (imp) details.append(el("dt", "", "Last import"), el("dd", "", imp));
  for (const [dep, c] of Object.entries(s.by_deployment || {})) {  // every deployment this laptop holds
    const parts = [`${c.alerts} alerts`, `${c.pending} pending`];
    if (c.archived) parts.push(`${c.archived} archived`);
    for (const [k, label] of Object.entries(state.outcomes)) if (c[k]) parts.push(`${c[k]} ${label.toLowerCase()}`);
    details.append(el("dt", "", dep), el("dd", "by-deployment", parts.join(", ")));
  }
  $("details").replaceChildren(details);
  if ("counts" in s) renderCounts(s.counts, s.deployment);
}
$("details-toggle").onclick = () => {
  const open = $("details").classList.toggle("hidden") === false;
  $("details-toggle").setAttribute("aria-expanded", String(open));
};

// The newest watchlist import (health version 2; absent from a version 1 appliance). A refusal shows in amber
// while no list is active or for 3 minutes (as the van's light does); after that, with a good list active, it
// is a plain note, so an old refused stick does not look like the present state.
const REFUSED_AMBER_S = 180;
function importWhen(h) {
  const d = new Date(h.import_time * 1000), today = new Date().toDateString() === d.toDateString();
  return today ? `${pad(d.getHours())}:${pad(d.getMinutes())}` : fmtTime(h.import_time).slice(0, 16);
}
function importText(h, long) {
  const when = importWhen(h);
  if (h.import_outcome === "refused")
    return long ? `refused — ${h.import_reason || h.import_code} (${when})` : `Watchlist: refused — ${h.import_reason || h.import_code} (${when})`;
  const ref = h.import_deployment_ref ? " " + h.import_deployment_ref : "";
  return `Watchlist${ref}: ${h.import_accepted ?? "?"} accepted, ${h.import_rejected ?? "?"} rejected (${when})`;
}
function renderImport(h) {
  const box = $("import"), shown = !!(h && h.import_outcome && h.import_time);
  const refused = shown && h.import_outcome === "refused";
  const fresh = refused && (h.watchlist_size === 0 || Date.now() / 1000 - h.import_time < REFUSED_AMBER_S);
  box.classList.toggle("hidden", !shown);
  box.classList.toggle("refused", fresh);
  if (!shown) { box.textContent = ""; return ""; }
  box.textContent = refused && !fresh ? `Last stick refused at ${importWhen(h)}; list of ${h.watchlist_size} active`
                                      : importText(h, false);
  box.title = refused ? `${importText(h, false)}\nrefusal code ${h.import_code}; details: lfr watchlist status / audit log on the van` : "";
  return importText(h, false);
}

// The loaded list's operating point (health version 4): threshold in force and what it is expected to do;
// amber with the warning when the list is too large for the false-alert budget.
function renderOperatingPoint(h) {
  const box = $("oppoint"), shown = !!(h && h.op_threshold_score != null);
  box.classList.toggle("hidden", !shown);
  box.classList.toggle("refused", shown && !!h.op_warning);
  if (!shown) { box.textContent = ""; return; }
  const fa = h.op_false_alerts_per_10k != null ? h.op_false_alerts_per_10k.toFixed(2) : "?";
  const tp = h.op_expected_tpir != null ? Math.round(h.op_expected_tpir * 100) + " %" : "?";
  box.textContent = `Operating point: ${h.op_list_size ?? "?"} entries × ${(h.op_templates_per_entry ?? 0).toFixed(1)} photos, ` +
    `threshold ${h.op_threshold_score.toFixed(3)}, expected ${fa} false alerts per 10,000 tracks, ${tp} found` +
    (h.op_warning ? ` — ${h.op_warning}` : "");
}

function renderCounts(c, deployment) {
  $("counts-of").textContent = deployment || "";
  if (!c) { const tr = el("tr"); tr.append(el("td", "dim", "no deployment open")); $("counts").replaceChildren(tr); return; }
  const rows = [["Alerts", c.alerts], ["Pending", c.pending]];
  for (const [k, label] of Object.entries(state.outcomes)) rows.push([label, c[k]]);
  $("counts").replaceChildren(...rows.map(([k, v]) => { const tr = el("tr"); tr.append(el("td", "", k), el("td", "", String(v))); return tr; }));
}

let previewBusy = false, previewWanted = null;
function showPreview(n) {
  if (previewBusy) { previewWanted = n; return; }
  previewBusy = true;
  const img = $("preview");
  img.onload = img.onerror = () => { previewBusy = false; $("no-preview").classList.add("hidden"); img.classList.remove("hidden");
    if (previewWanted !== null) { const m = previewWanted; previewWanted = null; showPreview(m); } };
  img.src = "/api/preview.jpg?n=" + n;
}
function clearPreview() {
  // no frame is coming (link down, or no deployment): a blank box rather than the last frame frozen
  $("preview").removeAttribute("src"); $("preview").classList.add("hidden"); $("no-preview").classList.remove("hidden");
}

function fillSelect(id, values) {
  const sel = $(id), keep = sel.value, first = sel.options[0];
  sel.replaceChildren(first, ...values.map((v) => { const o = el("option", "", v); o.value = v; return o; }));
  sel.value = values.includes(keep) ? keep : "";
}
function fillChoices(choices) {
  fillSelect("f-camera", choices.camera); fillSelect("f-category", choices.category);
  fillSelect("f-deployment", choices.deployment || []);
}

function historyQuery() {
  const f = state.filters, q = new URLSearchParams();
  for (const k of ["outcome", "camera", "category", "deployment", "min_score"]) if (f[k] !== "") q.set(k, f[k]);
  for (const k of ["since", "until"]) if (f[k]) q.set(k, String(new Date(f[k]).getTime() / 1000));
  q.set("offset", String(state.offset)); q.set("limit", String(PAGE));
  return q;
}

async function loadHistory() {
  const res = await fetch("/api/alerts?" + historyQuery().toString());
  if (!res.ok) { const b = await res.json().catch(() => ({})); $("h-page").textContent = b.error || "history unavailable"; return; }
  const { alerts, total } = await res.json();
  state.total = total;
  const last = Math.min(state.offset + alerts.length, total);
  $("h-page").textContent = total ? `${state.offset + 1}–${last} of ${total}` : "no alerts";
  $("h-newer").disabled = state.offset === 0; $("h-older").disabled = last >= total;
  $("history").replaceChildren(...alerts.map((a) => {
    const tr = el("tr"); tr.dataset.id = a.id;
    [String(a.seq), fmtTime(a.t_wall), a.camera, nameOf(a), a.category, fmtScore(a.score), stateText(a), a.note || ""]
      .forEach((t) => tr.append(el("td", "", t)));
    tr.onclick = () => { touch(); if (!state.alerts.has(a.id)) upsert(a); select(a.id); window.scrollTo(0, 0); };
    return tr;
  }));
}
for (const f of ["outcome", "camera", "category", "deployment", "since", "until", "min_score"]) {
  const input = $("f-" + f.replace("_", "-"));
  input.onchange = () => { state.filters[f] = input.value; state.offset = 0; loadHistory(); };
}
$("filters").onsubmit = (e) => e.preventDefault();
$("h-newer").onclick = () => { state.offset = Math.max(0, state.offset - PAGE); loadHistory(); };
$("h-older").onclick = () => { state.offset += PAGE; loadHistory(); };
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

function operatorBusy() {
  // The operator is working on the selected alert: it is pending, they typed a note, or just acted on it.
  const cur = state.alerts.get(state.selected);
  if (!cur) return false;
  return cur.state === "pending" || cur.state === "sending" || document.activeElement === $("note")
         || Date.now() < state.busyUntil || $("dispatch").contains(document.activeElement);
}

function showBanner(a) {
  const banner = $("banner"); banner.classList.remove("hidden");
  banner.dataset.id = a.id;
  banner.textContent = `NEW ALERT #${a.seq} · ${nameOf(a)} · ${a.camera}` + (a.id === state.selected ? "" : " — show");
  clearTimeout(state.bannerTimer); state.bannerTimer = setTimeout(() => banner.classList.add("hidden"), 8000);
}
$("banner").onclick = () => {
  const id = $("banner").dataset.id;
  if (id && state.alerts.has(id)) { touch(); select(id); }
  $("banner").classList.add("hidden");
};

function onMessage(msg) {
  switch (msg.type) {
    case "hello": {
      state.outcomes = msg.outcomes; state.sound = msg.sound; state.handhelds = !!msg.handhelds;
      const f = $("f-outcome"); f.replaceChildren(f.options[0], f.options[1], f.options[2]);
      for (const [k, label] of Object.entries(msg.outcomes)) { const o = el("option", "", label); o.value = k; f.append(o); }
      f.value = state.filters.outcome;
      state.alerts.clear(); state.order = [];
      msg.alerts.forEach(upsert);
      fillChoices(msg.choices);
      renderStatus(msg);
      if (!state.alerts.has(state.selected)) { state.selected = null; selectNextPending(); }
      renderQueue(); renderDetail(); loadHistory();
      if (msg.preview) showPreview(msg.preview); else clearPreview();
      if (state.handhelds && typeof hhStart === "function") hhStart();
      break;
    }
    case "alert": {
      const a = msg.alert; upsert(a);
      fillChoices(msg.choices);
      if (!operatorBusy()) state.selected = a.id;
      renderQueue(a.id); renderDetail(); renderCounts(msg.counts, state.deployment); refreshHistory();
      showBanner(a);
      beep(); rendered(a.id);
      break;
    }
    case "decision": {
      upsert(msg.alert);
      if ("counts" in msg) renderStatus(msg);
      const a = msg.alert;
      const keep = state.handhelds && a.state === "decided" && String(a.outcome).startsWith("confirmed");
      if (a.id === state.selected && msg.accepted === true && !keep) selectNextPending();
      renderQueue(); renderDetail(); refreshHistory();
      break;
    }
    case "archived": {
      msg.alerts.forEach(upsert);
      if ("counts" in msg) renderStatus(msg);
      renderQueue(); renderDetail(); refreshHistory();
      break;
    }
    case "refused": {
      const a = state.alerts.get(msg.alert_id);
      const st = $("state"); st.className = "state refused"; st.textContent = "Not sent: " + msg.reason;
      if (a) renderQueue();
      break;
    }
    case "status": {
      const before = state.deployment;
      renderStatus(msg);
      if (!msg.link_up || !msg.deployment) clearPreview();
      if (before !== state.deployment) refreshHistory();
      break;
    }
    case "preview": showPreview(msg.n); break;
  }
}

function connect() {
  const ws = new WebSocket(`ws://${location.host}/ws`);
  state.socket = ws;
  ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
  ws.onclose = () => {
    state.socket = null;
    renderStatus({ link_up: false, health: null, deployment: null, note: "viewer process not answering: reconnecting…" });
    setTimeout(connect, 1000);
  };
}
connect();
