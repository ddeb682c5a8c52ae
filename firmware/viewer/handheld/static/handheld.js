// The officers' handheld page: polls its feed with a cursor; shows only what the laptop sends this device.
"use strict";

let pollMs = 2000;   // the laptop says how often in every feed
const LABELS = { engaged: "Engaged", not_located: "Not located", arrested: "Outcome: arrested",
                 advised: "Outcome: advised", no_action: "Outcome: no action" };
const $ = (id) => document.getElementById(id);
const cards = new Map();   // alert_id -> {el, item}
let cursor = 0, offset = 0, timer = null, paired = false;

const pad = (n) => String(n).padStart(2, "0");
function clock(t) { const d = new Date(t * 1000); return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`; }

function clearAll() {
  for (const { el } of cards.values()) el.remove();
  cards.clear(); cursor = 0;
}

function show(which) {
  for (const id of ["unpaired", "pairing", "idle"]) $(id).classList.toggle("hidden", id !== which);
}

function render(item) {
  let entry = cards.get(item.alert_id);
  if (!entry) {
    const el = $("card").content.firstElementChild.cloneNode(true);
    el.dataset.alertId = item.alert_id;
    el.querySelectorAll("button").forEach((b) => { b.onclick = () => answer(item.alert_id, b.dataset.answer, el); });
    el.querySelector(".probe").src = `/api/alerts/${item.alert_id}/probe.jpg`;
    el.querySelector(".reference").src = `/api/alerts/${item.alert_id}/reference.jpg`;
    if (item.has_context) el.querySelector(".context").src = `/api/alerts/${item.alert_id}/context.jpg`;
    else el.querySelector(".context-box").remove();
    el.querySelectorAll("img").forEach((img) => { img.onclick = () => zoom(img.src); });
    $("cards").prepend(el);
    entry = { el, item }; cards.set(item.alert_id, entry);
  }
  entry.item = item;
  const el = entry.el;
  el.querySelector(".category").textContent = item.category;
  el.querySelector(".time").textContent = clock(item.t_wall);
  el.querySelector(".reason").textContent = item.reason;
  el.querySelector(".where").textContent = `Camera ${item.camera}` + (item.deployment ? ` · ${item.deployment}` : "");
  el.querySelector(".answer").textContent = item.answer ? `Reported: ${LABELS[item.answer]}` : "";
}

function expire() {
  const now = Date.now() / 1000 + offset;
  for (const [id, { el, item }] of cards) if (item.expires <= now) { el.remove(); cards.delete(id); }
  if (paired) $("idle").classList.toggle("hidden", cards.size > 0);
}

async function poll() {
  clearTimeout(timer);
  try {
    const r = await fetch(`/api/feed?after=${cursor}`, { credentials: "same-origin", cache: "no-store" });
    if (r.status === 401) { paired = false; clearAll(); $("callsign").textContent = ""; show("unpaired"); }
    else if (r.ok) {
      const feed = await r.json();
      paired = true; offset = feed.now - Date.now() / 1000; pollMs = feed.poll_s * 1000;
      $("callsign").textContent = feed.callsign;
      const open = new Set(feed.open);
      for (const [id, { el }] of cards) if (!open.has(id)) { el.remove(); cards.delete(id); }
      for (const item of feed.alerts) render(item);
      cursor = feed.cursor; show(cards.size ? null : "idle");
    }
    $("net").textContent = ""; $("net").classList.remove("down");
  } catch (e) {
    $("net").textContent = "no connection – retrying"; $("net").classList.add("down");
  }
  expire();
  timer = setTimeout(poll, pollMs);
}

async function answer(alertId, kind, el) {
  const r = await fetch(`/api/alerts/${alertId}/answer`, { method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify({ answer: kind }) });
  const body = await r.json().catch(() => ({}));
  el.querySelector(".answer").textContent = r.ok ? `Reported: ${LABELS[kind]}` : (body.error || "not sent");
  poll();
}

async function pairFromFragment() {
  const m = /pair=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (!m) return;
  history.replaceState(null, "", location.pathname);   // the one-time code leaves the address bar
  show("pairing");
  const r = await fetch("/api/pair", { method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: m[1] }) });
  if (!r.ok) { const b = await r.json().catch(() => ({})); $("pairing").textContent = b.error || "pairing failed"; }
}

document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });
window.addEventListener("online", poll);
setInterval(expire, 1000);
pairFromFragment().then(poll);

// Enlarge an image of a card (tap again to close); the image stays the page's own, nothing is copied.
function zoom(src) { $("zoom-img").src = src; $("zoom").classList.remove("hidden"); }
$("zoom").onclick = () => { $("zoom").classList.add("hidden"); $("zoom-img").removeAttribute("src"); };
