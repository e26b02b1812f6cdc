// switchboard console: the supervisors' live view. It polls GET /v1/live
// every 3 seconds while the view is open (the interval is one of
// console.js's timers, stopped when another view opens): calls in
// progress, where each operator stands, and who waits in which queue and
// for how long. Uses console.js's el, api, guard, when, person, trunkName,
// openCall and state. Text only, never HTML.
"use strict";

const livePoll = 3000;

// ago is how long since t, as "1 min 5 s".
function ago(t, now = Date.now()) {
  if (!t || t.startsWith("0001-")) return "–";
  const s = Math.max(0, Math.round((now - new Date(t).getTime()) / 1000));
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

const waited = (s) => (s >= 60 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${Math.round(s)} s`);

async function startLive() {
  await drawLive();
  state.timers.push(setInterval(() => drawLive().catch((e) => setError(e.message)), livePoll));
}

async function drawLive() {
  const live = await api("/v1/live");
  if ($("live-view").hidden) return; // another view opened meanwhile
  const callByID = new Map(live.calls.map((c) => [c.id, c]));
  $("live-at").textContent = `As of ${new Date(live.at).toLocaleTimeString()}.`;
  const open = (id) => el("button", { type: "button", class: "open-call", onclick: guard(() => openCall(id)) }, "Open");
  $("live-calls").replaceChildren(...(live.calls.length ? live.calls.map((c) => el("tr", { "data-call": c.id },
    el("td", {}, when(c.created_at)), el("td", {}, c.from), el("td", {}, c.to), el("td", { class: "status" }, c.status),
    el("td", { class: "operator" }, c.operator_id ? person(c.operator_name, c.operator_id) : "–"),
    el("td", {}, trunkName(c)), el("td", {}, ago(c.answered_at || c.created_at)), el("td", {}, open(c.id))))
    : [el("tr", {}, el("td", { colspan: 8 }, "No call in progress."))]));
  $("live-operators").replaceChildren(...(live.operators.length ? live.operators.map((o) => {
    const c = o.call_id && callByID.get(o.call_id);
    return el("tr", { "data-operator": o.name || "" },
      el("td", {}, person(o.name, o.operator_id)),
      el("td", { class: "state" }, o.reconnecting ? "reconnecting" : o.state),
      el("td", {}, o.state === "available" ? ago(o.since) : "–"),
      el("td", {}, c ? `${c.from} → ${c.to}` : o.call_id ? "a call" : "–"));
  }) : [el("tr", {}, el("td", { colspan: 4 }, "No operator connected."))]));
  $("live-waiting").replaceChildren(...(live.waiting.length ? live.waiting.map((w) => {
    const c = callByID.get(w.call_id);
    return el("tr", { "data-queue": w.queue_name || "" },
      el("td", {}, w.queue_name || "a deleted queue"), el("td", {}, c ? c.from : "–"),
      el("td", { class: "waited" }, waited(w.waited_seconds)), el("td", {}, open(w.call_id)));
  }) : [el("tr", {}, el("td", { colspan: 4 }, "Nobody is waiting."))]));
}
