// The operator's handheld controls: pair (QR code), revoke, and send a confirmed alert to chosen handhelds.
// Reads the selected alert from viewer.js's `state`. Started by viewer.js only when the viewer runs with
// handhelds (the page's snapshot says so): without them the page never asks for /api/handhelds.
"use strict";

const hh = { devices: [], open: [], answers: [], offers: [], enabled: false, offer: null, timer: null };

function hhStart() {
  if (hh.timer !== null) return;
  hhRefresh();
  hh.timer = setInterval(hhRefresh, 1500);
}

async function hhRefresh() {
  const r = await fetch("/api/handhelds", { cache: "no-store" });
  if (!r.ok) return;
  const data = await r.json();
  hh.enabled = true; hh.devices = data.devices; hh.open = data.open; hh.answers = data.answers;
  hh.offers = data.offers_open || [];
  $("handhelds").classList.remove("hidden");
  $("hh-fp").textContent = data.fingerprint;
  // a pairing code is shown only while it can still be used: gone once the phone paired, or when it lapsed
  if (hh.offer !== null && !hh.offers.includes(hh.offer)) hhHideOffer();
  const ul = $("hh-devices"); ul.replaceChildren();
  for (const d of hh.devices) {
    const li = el("li", "", d.callsign + " ");
    li.dataset.id = d.id;
    const b = el("button", "revoke", "Revoke");
    b.onclick = async () => { if (confirm(`Revoke ${d.callsign}?`)) {
      await fetch(`/api/handhelds/${d.id}/revoke`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" }); hhRefresh(); } };
    li.append(b); ul.append(li);
  }
  hhRenderDispatch();
}

function hhHideOffer() {
  hh.offer = null;
  $("hh-offer").classList.add("hidden"); $("hh-qr").replaceChildren(); $("hh-link").textContent = "";
  $("hh-link").removeAttribute("href");
}

function hhRenderDispatch() {
  const a = state.alerts.get(state.selected);
  const confirmed = hh.enabled && a && a.state === "decided" && String(a.outcome).startsWith("confirmed");
  $("dispatch").classList.toggle("hidden", !confirmed);
  if (!confirmed) return;
  const box = $("hh-choices");
  if (box.dataset.alert !== a.id || box.childElementCount !== hh.devices.length) {
    box.replaceChildren(); box.dataset.alert = a.id; $("hh-sent").textContent = "";
    for (const d of hh.devices) {
      const label = el("label", "");
      const cb = el("input"); cb.type = "checkbox"; cb.value = d.id;
      label.append(cb, " " + d.callsign); box.append(label);
    }
  }
  const sentTo = hh.open.filter((o) => o.alert_id === a.id).map((o) => (hh.devices.find((d) => d.id === o.device_id) || {}).callsign);
  const answers = hh.answers.filter((x) => x.alert_id === a.id).map((x) => `${x.callsign}: ${x.answer.replace("_", " ")}`);
  if (sentTo.length || answers.length) $("hh-sent").textContent = [sentTo.length ? "on: " + sentTo.join(", ") : "", ...answers].filter(Boolean).join(" · ");
}

async function hhSend(all) {
  const a = state.alerts.get(state.selected); if (!a) return;
  touch();
  const devices = [...$("hh-choices").querySelectorAll("input:checked")].map((c) => c.value);
  const r = await fetch(`/api/alerts/${a.id}/dispatch`, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(all ? { all: true } : { devices }) });
  const body = await r.json().catch(() => ({}));
  $("hh-sent").textContent = r.ok ? "sent to " + body.sent_to.join(", ") : (body.error || "not sent");
  hhRefresh();
}

$("hh-pair").onsubmit = async (e) => {
  e.preventDefault();
  const r = await fetch("/api/handhelds/pair", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ callsign: $("hh-callsign").value }) });
  const body = await r.json();
  if (!r.ok) { alert(body.error); return; }
  hh.offer = body.offer;
  $("hh-qr").innerHTML = body.qr_svg;   // SVG made on this laptop by segno from the pairing address
  $("hh-link").textContent = body.url; $("hh-link").href = body.url;
  $("hh-offer").classList.remove("hidden"); $("hh-callsign").value = "";
};
$("hh-send").onclick = () => hhSend(false);
$("hh-send-all").onclick = () => hhSend(true);
document.addEventListener("click", () => setTimeout(hhRenderDispatch, 0));
