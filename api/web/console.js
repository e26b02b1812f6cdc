// switchboard console: call search, a call's record and timeline, diagnostic
// access to recordings through grants, approvals, people, and the audit log.
// Everything the server sends is put on the page as text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = (window.sbconsole = { me: null, tenant: sessionStorage.getItem("sb-tenant") || "", call: null, timers: [], names: {}, next: "" });

function setError(msg) { $("error").textContent = msg || ""; }

// el builds an element; strings become text nodes.
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c ?? ""));
  return e;
}

async function api(path, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (state.tenant) headers["X-Switchboard-Tenant"] = state.tenant;
  if (opts.body) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { credentials: "same-origin", ...opts, headers });
  const body = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    const err = new Error((body && body.message) || res.statusText);
    err.status = res.status;
    throw err;
  }
  return body;
}

// guard runs an action and shows its failure.
function guard(fn) {
  return async (ev) => {
    if (ev && ev.preventDefault) ev.preventDefault();
    setError("");
    try { await fn(ev); } catch (e) { setError(e.message); }
  };
}

const when = (t) => (t ? new Date(t).toLocaleString() : "–");
const seconds = (ms) => `${Math.round((ms || 0) / 1000)} s`;

// Names, never bare IDs: the API answers names with the IDs; an ID it
// could not name is one deleted (or revoked) since, or of another tenant.
const uuidRE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
const isID = (s) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s || "");
const person = (name, id) => name || (id ? "deleted person" : "–");
const trunkName = (c) => c.trunk_name || (c.trunk_id ? "deleted trunk" : c.direction === "inbound" ? "web" : "–");
// byName names who a timeline or a consent says did something: "user
// <id>", "operator <id>", "api key <id>", or words ("trunk Berlin PBX").
function byName(by, names = state.names) {
  const m = /^(user|operator|api key) ([0-9a-f-]{36})$/i.exec(by || "");
  if (!m) return named(by || "", names);
  return names[m[2]] || (m[1] === "api key" ? "a revoked API key" : "a deleted person");
}
// named replaces any ID in text with its name.
const named = (text, names = state.names) => String(text).replace(uuidRE, (id) => names[id.toLowerCase()] || "…");

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  try {
    await api("/v1/login", { method: "POST", body: JSON.stringify({ email: $("email").value, password: $("password").value }) });
    $("password").value = "";
    await start(await api("/v1/me"));
  } catch (e) {
    $("login-error").textContent = e.message;
  }
});

$("logout").addEventListener("click", async () => {
  try { await api("/v1/logout", { method: "POST" }); } catch (e) { /* already gone */ }
  sessionStorage.removeItem("sb-tenant");
  location.reload();
});

async function start(me) {
  state.me = me.user;
  $("whoami").textContent = `${me.user.email} · ${me.user.role}`;
  $("login-view").hidden = true;
  $("app").hidden = false;
  for (const e of document.querySelectorAll("[data-roles]")) {
    e.hidden = !e.dataset.roles.split(" ").includes(me.user.role);
  }
  $("tenant").value = state.tenant;
  await loadOperatorChoices();
  await showView("calls-view");
}

for (const b of document.querySelectorAll("nav [data-view]")) {
  b.addEventListener("click", guard(() => showView(b.dataset.view)));
}

async function showView(id) {
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== id;
  for (const b of document.querySelectorAll("nav [data-view]")) {
    if (b.dataset.view === id) b.setAttribute("aria-current", "page"); else b.removeAttribute("aria-current");
  }
  stopTimers();
  if (id === "calls-view") await searchCalls();
  if (id === "live-view") await startLive(); // live.js
  if (id === "grants-view") await loadGrants();
  if (id === "admin-view") await loadAdmin();
  if (id === "setup-view") await loadSetup(); // setup.js
  if (id === "keys-view") await loadKeys();
  if (id === "audit-view") await loadAudit();
}

$("tenant-form").addEventListener("submit", guard(async () => {
  state.tenant = $("tenant").value.trim();
  sessionStorage.setItem("sb-tenant", state.tenant);
  await loadOperatorChoices();
  await showView("calls-view");
}));

// Calls.

$("search").addEventListener("submit", guard(searchCalls));

// callQuery is the search's filters as a query.
function callQuery() {
  const q = new URLSearchParams();
  for (const [name, id] of [["since", "since"], ["until", "until"]]) {
    if ($(id).value) q.set(name, new Date($(id).value).toISOString());
  }
  for (const [name, id] of [["number", "number"], ["external_ref", "external-ref"], ["label", "label"]]) {
    if ($(id).value.trim()) q.set(name, $(id).value.trim());
  }
  if ($("operator").value) q.set("operator_id", $("operator").value);
  if ($("status").value) q.set("status", $("status").value);
  if ($("failed").checked) q.set("failed", "true");
  if ($("tag").value) q.set("tag", $("tag").value);
  return q;
}

// searchCalls lists the first 100 calls of the search; "Show more" reads
// the next 100, following the API's cursor.
async function searchCalls() {
  state.next = "";
  $("calls").replaceChildren();
  await moreCalls();
}

async function moreCalls() {
  const q = callQuery();
  q.set("limit", "100");
  if (state.next) q.set("after", state.next);
  const body = await api("/v1/calls?" + q);
  $("calls").append(...body.calls.map(callRow));
  state.next = body.next;
  const n = $("calls").children.length;
  $("calls-count").textContent = `${n} call${n === 1 ? "" : "s"}${body.next ? ", more below" : ""}`;
  $("more-calls").hidden = !body.next;
  rememberOperators(body.calls);
}
$("more-calls").addEventListener("click", guard(moreCalls));

function callRow(c) {
  return el("tr", { "data-call": c.id },
    el("td", {}, when(c.created_at)), el("td", {}, c.from), el("td", {}, c.to), el("td", {}, c.status),
    el("td", { class: "operator" }, c.operator_id ? person(c.operator_name, c.operator_id) : "–"),
    el("td", { class: "trunk" }, trunkName(c)),
    el("td", {}, seconds(c.duration_ms)),
    el("td", {}, el("button", { type: "button", class: "open-call", "data-id": c.id, onclick: guard(() => openCall(c.id)) }, "Open")));
}

// The operator filter picks from the tenant's people (supervisors and
// admins may list them); a support engineer picks from the operators of
// the calls listed so far.
async function loadOperatorChoices() {
  state.operators = new Map();
  if (["supervisor", "admin"].includes(state.me.role)) {
    for (const u of await apiAll("/v1/users", "users")) state.operators.set(u.id, u.name || u.email);
  }
  drawOperatorChoices();
}

function rememberOperators(calls) {
  let added = false;
  for (const c of calls) {
    if (c.operator_id && c.operator_name && !state.operators.has(c.operator_id)) {
      state.operators.set(c.operator_id, c.operator_name);
      added = true;
    }
  }
  if (added) drawOperatorChoices();
}

function drawOperatorChoices() {
  const chosen = $("operator").value;
  const people = [...state.operators].sort((a, b) => a[1].localeCompare(b[1]));
  $("operator").replaceChildren(el("option", { value: "" }, "anyone"),
    ...people.map(([id, name]) => el("option", { value: id, selected: id === chosen }, name)));
}

// The export is the search's filters, every page, as a CSV download.
$("export").addEventListener("click", () => {
  const q = callQuery();
  q.set("format", "csv");
  if (state.tenant) q.set("tenant", state.tenant);
  const a = el("a", { href: "/v1/calls?" + q, download: "" });
  document.body.append(a);
  a.click();
  a.remove();
});

async function openCall(id) {
  const [call, events] = await Promise.all([api(`/v1/calls/${id}`), api(`/v1/calls/${id}/events`)]);
  state.call = call;
  state.names = events.names || {};
  stopTimers();
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== "call-view";
  $("call-title").textContent = `Call from ${call.from || "unknown"} to ${call.to || "unknown"}, ${when(call.created_at)}`;
  $("call-record").replaceChildren(...record({
    From: call.from, To: call.to, Direction: call.direction, Status: call.status, "Hung up by": call.hangup_by, "SIP code": call.sip_code,
    Reason: call.reason, Codec: call.codec, Started: when(call.created_at), Answered: when(call.answered_at),
    Ended: when(call.ended_at), Talk: seconds(call.duration_ms),
    Operator: call.operator_id ? person(call.operator_name, call.operator_id) : "", Trunk: trunkName(call),
    Reference: call.external_ref, Labels: (call.labels || []).join(", "),
  }));
  $("call-events").replaceChildren(...events.events.map(timelineItem)); // timeline.js
  // A call was recorded only if its timeline says so: asking for the
  // recording of every call would log a 404 in the browser for most.
  let rec = null;
  if (events.events.some((e) => e.type.startsWith("recording_"))) {
    try { rec = await api(`/v1/calls/${id}/recording`); } catch (e) { if (e.status !== 404) throw e; }
  }
  $("call-recording").replaceChildren(...(rec ? record({
    Status: rec.status, Length: seconds(rec.duration_ms), Size: `${rec.size_bytes} bytes`, Codec: rec.codec,
    Consent: `${rec.consent.given ? "given" : "refused"} ${consentHow(rec.consent.mechanism)}${rec.consent.by ? " (" + byName(rec.consent.by) + ")" : ""} at ${when(rec.consent.at)}`,
    "Tenant policy": rec.consent.policy, "Kept until": when(rec.retention_until),
  }) : [el("dt", {}, "None"), el("dd", {}, "this call has no recording")]));
  $("diagnosis").hidden = state.me.role === "operator";
  if (!$("diagnosis").hidden) await loadDiagnosis(call);
  const canAsk = ["support", "admin"].includes(state.me.role);
  $("access").hidden = !(rec && rec.status !== "destroyed" && (canAsk || state.me.role === "supervisor"));
  $("grant-form").hidden = !canAsk;
  $("player").removeAttribute("src");
  await loadCallGrants();
}

// Diagnosis: the SIP ladder, and the call's quality over time.

const svgNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : String(c));
  return e;
}

async function loadDiagnosis(call) {
  const q = state.tenant ? "?tenant=" + encodeURIComponent(state.tenant) : "";
  $("pcap").href = `/v1/calls/${call.id}/pcap${q}`;
  const [trace, quality] = await Promise.all([api(`/v1/calls/${call.id}/trace`), api(`/v1/calls/${call.id}/quality`)]);
  drawLadder(trace);
  $("quality-summary").replaceChildren(...record({
    "Caller → operator": direction(quality.from_caller), "Operator → caller": direction(quality.to_caller),
    Tags: quality.tags.join(", ") || "none", "Failed on": call.failure_leg ? `${call.failure_leg} at ${call.failure_stage}` : "",
    "Q.850 cause": call.q850_cause, "Post-dial delay": call.post_dial_delay_ms ? `${call.post_dial_delay_ms} ms` : "",
    "Time to answer": call.time_to_answer_ms ? `${call.time_to_answer_ms} ms` : "",
  }));
  drawCharts(quality.samples);
}

function direction(d) {
  const mos = d.mos ? `, MOS ${d.mos.toFixed(2)}` : "";
  return `${d.packets} packets, ${d.lost} lost, jitter ${d.jitter_ms.toFixed(1)} ms${mos}`;
}

// drawLadder puts each SIP message as an arrow between the trunk and
// switchboard, and the call's operator-side events between switchboard
// and the operator, in time order.
function drawLadder(trace) {
  const rows = [];
  for (const m of trace.sip) {
    const first = m.message.split("\r\n", 1)[0];
    const label = first.startsWith("SIP/2.0 ") ? first.slice(8) : first.split(" ")[0];
    rows.push({ at: new Date(m.at), from: m.inbound ? 0 : 1, to: m.inbound ? 1 : 0, label, message: m });
  }
  const toOperator = { offered: "offer", answered: "answered", ended: "ended", connected: "connected" };
  for (const e of trace.events) {
    if (toOperator[e.type]) rows.push({ at: new Date(e.at), from: 1, to: 2, label: toOperator[e.type] });
  }
  rows.sort((a, b) => a.at - b.at);
  const cols = [80, 380, 680], rowH = 26, top = 40;
  const t0 = rows.length ? rows[0].at : new Date();
  const trunk = trace.sip.length ? (trace.sip[0].inbound ? trace.sip[0].src : trace.sip[0].dst) : "trunk";
  const g = svg("svg", { viewBox: `0 0 760 ${top + rows.length * rowH + 20}`, role: "img", "aria-label": "SIP ladder diagram" });
  ["trunk " + trunk, "switchboard", "operator"].forEach((name, i) => {
    g.append(svg("text", { x: cols[i], y: 16, "text-anchor": "middle" }, name));
    g.append(svg("line", { x1: cols[i], y1: 24, x2: cols[i], y2: top + rows.length * rowH, stroke: "#8a93a6" }));
  });
  rows.forEach((r, i) => {
    const y = top + i * rowH + 10, x1 = cols[r.from], x2 = cols[r.to], dir = x2 > x1 ? 1 : -1;
    const a = svg("g", { class: "arrow", tabindex: r.message ? "0" : "-1" },
      svg("line", { x1, y1: y, x2: x2 - dir * 6, y2: y, stroke: r.message ? "#1d2330" : "#1f8a4c", "stroke-width": 1.5 }),
      svg("polygon", { points: `${x2},${y} ${x2 - dir * 8},${y - 4} ${x2 - dir * 8},${y + 4}`, fill: r.message ? "#1d2330" : "#1f8a4c" }),
      svg("text", { x: (x1 + x2) / 2, y: y - 4, "text-anchor": "middle" }, r.label),
      svg("text", { x: 4, y: y + 4 }, `+${((r.at - t0) / 1000).toFixed(3)}s`));
    if (r.message) {
      const open = () => {
        for (const s of g.querySelectorAll(".selected")) s.classList.remove("selected");
        a.classList.add("selected");
        const m = r.message;
        $("sip-message").textContent = `${m.inbound ? "received" : "sent"} ${m.transport} ${m.src} → ${m.dst} at ${m.at}\n\n${m.message}`;
        $("sip-message").hidden = false;
      };
      a.addEventListener("click", open);
      a.addEventListener("keydown", (ev) => { if (ev.key === "Enter") open(); });
    }
    g.append(a);
  });
  $("ladder").replaceChildren(g);
  $("sip-message").hidden = true;
}

// drawCharts plots each series' loss (per interval) and jitter over the
// call, and MOS where the service scored the intervals.
function drawCharts(samples) {
  const series = {};
  for (const s of samples) (series[`${s.leg}/${s.source}`] ||= []).push(s);
  const names = { "trunk/switchboard": "caller's audio at switchboard", "browser/switchboard": "operator's audio at switchboard",
    "browser/browser": "caller's audio at the operator's browser" };
  const points = {};
  for (const [key, list] of Object.entries(series)) {
    points[key] = list.slice(1).map((s, i) => {
      const prev = list[i], got = s.packets - prev.packets, lost = s.lost - prev.lost;
      return { at: new Date(s.at), loss: got + lost > 0 ? (100 * Math.max(0, lost)) / (got + lost) : 0, jitter: s.jitter_ms, rtt: s.rtt_ms, mos: s.mos };
    });
  }
  const charts = [["loss", "loss %"], ["jitter", "jitter ms"], ["mos", "MOS"]];
  $("charts").replaceChildren(...charts.map(([field, title]) => chart(title, field, points, names)));
}

// Each series keeps its colour in every chart, and the legend shows it: a
// swatch of the line's colour beside the series' name.
const seriesColors = ["#1d6fb8", "#c0392b", "#1f8a4c", "#8e44ad"];

function chart(title, field, points, names) {
  const all = Object.values(points).flat().filter((p) => typeof p[field] === "number");
  const box = svg("svg", { class: "chart", viewBox: "0 0 700 160", role: "img", "aria-label": title });
  box.append(svg("text", { x: 8, y: 14 }, title));
  if (all.length === 0) {
    box.append(svg("text", { x: 350, y: 85, "text-anchor": "middle" }, "no samples yet: quality is sampled every 5 s"));
    return box;
  }
  const t0 = Math.min(...all.map((p) => p.at)), t1 = Math.max(...all.map((p) => p.at), t0 + 1);
  const top = Math.max(field === "mos" ? 4.5 : 1, ...all.map((p) => p[field]));
  const x = (t) => 40 + ((t - t0) / (t1 - t0)) * 640, y = (v) => 145 - (v / top) * 120;
  box.append(svg("text", { x: 8, y: 30 }, top.toFixed(1)), svg("text", { x: 8, y: 148 }, "0"));
  let row = 0;
  Object.entries(points).forEach(([key, list], i) => {
    const pts = list.filter((p) => typeof p[field] === "number");
    if (!pts.length) return;
    const color = seriesColors[i % seriesColors.length];
    box.append(svg("polyline", { class: "series", "data-series": key, fill: "none", stroke: color, "stroke-width": 2,
      points: pts.map((p) => `${x(p.at).toFixed(1)},${y(p[field]).toFixed(1)}`).join(" ") }));
    const ly = 6 + row++ * 13;
    const label = svg("text", { class: "legend", x: 434, y: ly + 8 }, names[key] || key);
    label.style.fill = color; // CSSOM, which the page's CSP allows; the stylesheet greys other chart text
    box.append(svg("rect", { class: "swatch", "data-series": key, x: 420, y: ly, width: 10, height: 10, fill: color }), label);
  });
  return box;
}

function record(fields) {
  const out = [];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined || v === null || v === "" || v === 0) continue;
    out.push(el("dt", {}, k), el("dd", {}, v));
  }
  return out;
}

$("grant-form").addEventListener("submit", guard(async () => {
  await api(`/v1/calls/${state.call.id}/grants`, { method: "POST", body: JSON.stringify({
    reason: $("reason").value, ticket: $("ticket").value,
    ttl_seconds: Math.round(Number($("minutes").value) * 60), download: $("want-download").checked,
  }) });
  $("reason").value = "";
  await loadCallGrants();
}));

async function loadCallGrants() {
  stopTimers();
  const body = await api(`/v1/grants?call_id=${state.call.id}`);
  $("call-grants").replaceChildren(...body.grants.map((g) => el("tr", { "data-grant": g.id },
    el("td", {}, when(g.requested_at)), el("td", { class: "by" }, person(g.requested_by_name, g.requested_by)),
    el("td", { class: `status-${g.status}` }, g.status), el("td", {}, g.reason),
    el("td", {}, g.ticket), el("td", {}, countdown(g)), el("td", {}, ...grantActions(g, loadCallGrants)))));
}

// countdown shows, second by second, how long a grant has left; at zero
// the player lets go of the recording.
function countdown(g) {
  const span = el("span", { class: "countdown" });
  if (g.status !== "approved") return span;
  const end = new Date(g.expires_at).getTime();
  const tick = () => {
    const left = Math.max(0, Math.round((end - Date.now()) / 1000));
    span.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    if (left === 0 && $("player").dataset.grant === g.id) {
      $("player").pause();
      $("player").removeAttribute("src");
      setError("The grant expired.");
    }
  };
  tick();
  state.timers.push(setInterval(tick, 1000));
  return span;
}

function stopTimers() {
  state.timers.forEach(clearInterval);
  state.timers = [];
}

// audioURL is the grant's audio, of the chosen window if any.
function audioURL(g, download) {
  const q = new URLSearchParams();
  if (state.tenant) q.set("tenant", state.tenant);
  if (download) q.set("download", "1");
  if ($("window-from").value) q.set("from", $("window-from").value);
  if ($("window-to").value) q.set("to", $("window-to").value);
  const s = q.toString();
  return `/v1/grants/${g.id}/audio${s ? "?" + s : ""}`;
}

function grantActions(g, reload) {
  const mine = state.me && g.requested_by === state.me.id;
  const live = g.status === "approved" || g.status === "pending";
  const out = [];
  if (mine && g.status === "approved") {
    out.push(el("button", { type: "button", class: "play", onclick: guard(async () => {
      const p = $("player");
      p.dataset.grant = g.id;
      p.src = audioURL(g, false);
      await p.play();
    }) }, "Play"));
    if (g.download) out.push(" ", el("a", { href: audioURL(g, true), class: "download" }, "Download"));
  }
  const decider = ["supervisor", "admin"].includes(state.me.role) && !mine;
  if (decider && g.status === "pending") {
    out.push(el("button", { type: "button", class: "approve", onclick: guard(async () => {
      await api(`/v1/grants/${g.id}/approve`, { method: "POST" });
      await reload();
    }) }, "Approve"), " ", el("button", { type: "button", class: "deny", onclick: guard(async () => {
      await api(`/v1/grants/${g.id}/deny`, { method: "POST" });
      await reload();
    }) }, "Deny"));
  }
  if (live && (mine || decider)) {
    out.push(" ", el("button", { type: "button", class: "revoke", onclick: guard(async () => {
      await api(`/v1/grants/${g.id}/revoke`, { method: "POST" });
      if ($("player").dataset.grant === g.id) { $("player").pause(); $("player").removeAttribute("src"); }
      await reload();
    }) }, "Revoke"));
  }
  return out;
}

async function loadGrants() {
  const body = await api("/v1/grants");
  $("grants").replaceChildren(...body.grants.map((g) => el("tr", { "data-grant": g.id },
    el("td", {}, when(g.requested_at)),
    el("td", {}, el("button", { type: "button", class: "open-call", onclick: guard(() => openCall(g.call_id)) }, "Open call")),
    el("td", { class: "by" }, `${person(g.requested_by_name, g.requested_by)} (${g.requester_role})`), el("td", { class: `status-${g.status}` }, g.status),
    el("td", {}, g.reason), el("td", {}, g.ticket), el("td", {}, countdown(g)), el("td", {}, ...grantActions(g, loadGrants)))));
}

// apiAll reads every page of a list, following next.
async function apiAll(path, name) {
  const items = [];
  let next = "";
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(`${path}${sep}limit=500${next ? `&after=${encodeURIComponent(next)}` : ""}`);
    items.push(...page[name]);
    next = page.next;
  } while (next);
  return items;
}

// People (trunks are in Setup).

const roles = ["operator", "supervisor", "support", "admin"];

async function loadAdmin() {
  const admin = state.me.role === "admin";
  const users = await apiAll("/v1/users", "users");
  $("users").replaceChildren(...users.map((u) => {
    const self = u.id === state.me.id;
    const patch = (body) => guard(async () => {
      await api(`/v1/users/${u.id}`, { method: "PATCH", body: JSON.stringify(body()) });
      await loadAdmin();
    });
    const select = el("select", { class: "role", "aria-label": `Role of ${u.email}`, disabled: !admin || self },
      ...roles.map((r) => el("option", { selected: r === u.role }, r)));
    const actions = admin && !self ? [
      el("button", { type: "button", class: "save-role", onclick: patch(() => ({ role: select.value })) }, "Save role"),
      el("button", { type: "button", class: u.disabled ? "enable" : "disable", onclick: patch(() => ({ disabled: !u.disabled })) },
        u.disabled ? "Enable" : "Disable"),
      el("button", { type: "button", class: "reset", onclick: guard(async () => {
        const r = await api(`/v1/users/${u.id}/password`, { method: "POST", body: "{}" });
        showLink(r.password_link, `A reset link for ${u.email}; it works once, for 24 hours, and is not shown again:`);
      }) }, "Reset password"),
    ] : [];
    return el("tr", { "data-email": u.email }, el("td", {}, u.email), el("td", {}, u.name), el("td", {}, select),
      el("td", { class: "status" }, u.disabled ? "disabled" : "active"), el("td", {}, ...actions));
  }));
}

// showLink shows a one-time password link, whole, once.
function showLink(link, text) {
  $("invite-result").firstChild.textContent = text + " ";
  $("invite-link").textContent = location.origin + link;
  $("invite-result").hidden = false;
}

$("invite-form").addEventListener("submit", guard(async () => {
  $("invite-result").hidden = true;
  const body = { email: $("invite-email").value, name: $("invite-name").value, role: $("invite-role").value };
  if ($("invite-password").value) body.password = $("invite-password").value;
  const r = await api("/v1/users", { method: "POST", body: JSON.stringify(body) });
  $("invite-form").reset();
  if (r.password_link) showLink(r.password_link, `Send this link to ${r.user.email}; it works once, for 7 days, and is not shown again:`);
  await loadAdmin();
}));

// API keys.

async function loadKeys() {
  const keys = await apiAll("/v1/apikeys", "api_keys");
  $("keys").replaceChildren(...keys.map((k) => el("tr", { "data-key": k.id, "data-label": k.label },
    el("td", {}, k.prefix + "…"), el("td", {}, k.label), el("td", {}, k.role), el("td", {}, when(k.created_at)),
    el("td", { class: "last-used" }, k.last_used_at ? when(k.last_used_at) : "never"),
    el("td", {}, k.expires_at ? when(k.expires_at) : "never"),
    el("td", {}, el("button", { type: "button", class: "revoke", onclick: guard(async () => {
      await api(`/v1/apikeys/${k.id}`, { method: "DELETE" });
      $("key-result").hidden = true;
      await loadKeys();
    }) }, "Revoke")))));
}

$("key-form").addEventListener("submit", guard(async () => {
  const body = { role: $("key-role").value, label: $("key-label").value };
  if ($("key-expires").value) body.expires_at = new Date($("key-expires").value).toISOString();
  const r = await api("/v1/apikeys", { method: "POST", body: JSON.stringify(body) });
  $("key-form").reset();
  $("key-secret").textContent = r.secret;
  $("key-result").hidden = false;
  await loadKeys();
}));

// Audit log.

async function loadAudit() {
  const body = await api("/v1/audit?limit=200");
  $("audit").replaceChildren(...body.entries.map((e) => el("tr", { "data-action": e.action },
    el("td", {}, e.seq), el("td", {}, when(e.at)), el("td", { class: "action" }, e.action),
    el("td", { class: "who" }, auditActor(e)), el("td", { class: "resource" }, ...auditResource(e)), el("td", {}, named(e.reason || "")),
    el("td", {}, e.ticket || ""), el("td", {}, named(e.detail || "")), el("td", {}, e.ip || ""),
    el("td", { class: `outcome-${e.outcome}` }, e.outcome))));
}

// auditActor names who acted: a person or key of the tenant, the service
// desk (people of another tenant, unnamed here), or the system.
function auditActor(e) {
  const role = e.actor_role ? ` (${e.actor_role})` : "";
  if (e.actor_name) return e.actor_name + role;
  if (e.actor_user_id) return (e.action === "service_desk.visit" ? "a service desk engineer" : "deleted person") + role;
  if (e.actor_api_key_id) return "a revoked API key" + role;
  return "system";
}

// auditResource names what the entry is about; a call opens.
function auditResource(e) {
  const type = (e.resource_type || "").replace(/_/g, " ");
  if (e.resource_name) return [`${type} ${e.resource_name}`];
  if (e.resource_type === "call" && isID(e.resource_id)) {
    return [`${type} `, el("button", { type: "button", class: "open-call", onclick: guard(() => openCall(e.resource_id)) }, "Open")];
  }
  if (isID(e.resource_id)) return [type || "–"];
  return [`${type} ${named(e.resource_id || "", {})}`.trim()];
}

$("verify").addEventListener("click", guard(async () => {
  $("verify-result").textContent = "checking…";
  const r = await api("/v1/audit/verify", { method: "POST" });
  $("verify-result").textContent = r.whole ? "The chain is whole."
    : r.first_broken ? `The chain is broken at entry ${r.first_broken}.`
    : "The log is broken at an entry not of this tenant: the entries before it cannot be vouched for.";
}));

// A page reloaded while logged in picks up where it was. /v1/session
// answers 200 either way, so a first visit logs no error.
api("/v1/session").then((s) => (s.user ? start(s) : null)).catch((e) => setError(e.message));
