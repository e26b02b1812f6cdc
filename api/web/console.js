// switchboard console: call search, a call's record and timeline, diagnostic
// access to recordings through grants, approvals, people, and the audit log.
// Everything the server sends is put on the page as text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = (window.sbconsole = { me: null, tenant: sessionStorage.getItem("sb-tenant") || "", call: null, timers: [] });

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

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  try {
    await api("/v1/login", { method: "POST", body: JSON.stringify({ email: $("email").value, password: $("password").value }) });
    $("password").value = "";
    await start();
  } catch (e) {
    $("login-error").textContent = e.message;
  }
});

$("logout").addEventListener("click", async () => {
  try { await api("/v1/logout", { method: "POST" }); } catch (e) { /* already gone */ }
  sessionStorage.removeItem("sb-tenant");
  location.reload();
});

async function start() {
  const me = await api("/v1/me");
  state.me = me.user;
  $("whoami").textContent = `${me.user.email} · ${me.user.role}`;
  $("login-view").hidden = true;
  $("app").hidden = false;
  for (const e of document.querySelectorAll("[data-roles]")) {
    e.hidden = !e.dataset.roles.split(" ").includes(me.user.role);
  }
  $("tenant").value = state.tenant;
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
  if (id === "grants-view") await loadGrants();
  if (id === "admin-view") await loadAdmin();
  if (id === "audit-view") await loadAudit();
}

$("tenant-form").addEventListener("submit", guard(async () => {
  state.tenant = $("tenant").value.trim();
  sessionStorage.setItem("sb-tenant", state.tenant);
  await showView("calls-view");
}));

// Calls.

$("search").addEventListener("submit", guard(searchCalls));

async function searchCalls() {
  const q = new URLSearchParams({ limit: "100" });
  for (const [name, id] of [["since", "since"], ["until", "until"]]) {
    if ($(id).value) q.set(name, new Date($(id).value).toISOString());
  }
  if ($("number").value.trim()) q.set("number", $("number").value.trim());
  if ($("operator").value.trim()) q.set("operator_id", $("operator").value.trim());
  if ($("status").value) q.set("status", $("status").value);
  if ($("failed").checked) q.set("failed", "true");
  if ($("tag").value) q.set("tag", $("tag").value);
  const body = await api("/v1/calls?" + q);
  $("calls").replaceChildren(...body.calls.map((c) => el("tr", {},
    el("td", {}, when(c.created_at)), el("td", {}, c.from), el("td", {}, c.to), el("td", {}, c.status),
    el("td", {}, seconds(c.duration_ms)),
    el("td", {}, el("button", { type: "button", class: "open-call", "data-id": c.id, onclick: guard(() => openCall(c.id)) }, "Open")))));
}

async function openCall(id) {
  const [call, events] = await Promise.all([api(`/v1/calls/${id}`), api(`/v1/calls/${id}/events`)]);
  state.call = call;
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== "call-view";
  $("call-id").textContent = call.id;
  $("call-record").replaceChildren(...record({
    From: call.from, To: call.to, Status: call.status, "Hung up by": call.hangup_by, "SIP code": call.sip_code,
    Reason: call.reason, Codec: call.codec, Started: when(call.created_at), Answered: when(call.answered_at),
    Ended: when(call.ended_at), Talk: seconds(call.duration_ms), Operator: call.operator_id,
  }));
  $("call-events").replaceChildren(...events.events.map((e) =>
    el("li", {}, `${new Date(e.at).toLocaleTimeString()} ${e.type}`, e.detail ? ` ${JSON.stringify(e.detail)}` : "")));
  let rec = null;
  try { rec = await api(`/v1/calls/${id}/recording`); } catch (e) { if (e.status !== 404) throw e; }
  $("call-recording").replaceChildren(...(rec ? record({
    Status: rec.status, Length: seconds(rec.duration_ms), Size: `${rec.size_bytes} bytes`, Codec: rec.codec,
    Consent: `${rec.consent.given ? "given" : "refused"} by ${rec.consent.mechanism}${rec.consent.by ? " (" + rec.consent.by + ")" : ""} at ${when(rec.consent.at)}`,
    "Tenant policy": rec.consent.policy, "Kept until": when(rec.retention_until),
  }) : [el("dt", {}, "None"), el("dd", {}, "this call has no recording")]));
  const canAsk = ["support", "admin"].includes(state.me.role);
  $("access").hidden = !(rec && rec.status !== "destroyed" && (canAsk || state.me.role === "supervisor"));
  $("grant-form").hidden = !canAsk;
  $("player").removeAttribute("src");
  await loadCallGrants();
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
    el("td", {}, when(g.requested_at)), el("td", { class: `status-${g.status}` }, g.status), el("td", {}, g.reason),
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
    el("td", {}, el("button", { type: "button", onclick: guard(() => openCall(g.call_id)) }, g.call_id.slice(-8))),
    el("td", {}, `${g.requester_role} ${g.requested_by.slice(-8)}`), el("td", { class: `status-${g.status}` }, g.status),
    el("td", {}, g.reason), el("td", {}, g.ticket), el("td", {}, countdown(g)), el("td", {}, ...grantActions(g, loadGrants)))));
}

// People, trunks, keys.

async function loadAdmin() {
  const admin = state.me.role === "admin";
  const roles = ["operator", "supervisor", "support", "admin"];
  const users = await api("/v1/users");
  $("users").replaceChildren(...users.users.map((u) => {
    const select = el("select", { "aria-label": `Role of ${u.email}`, disabled: !admin || u.id === state.me.id },
      ...roles.map((r) => el("option", { selected: r === u.role }, r)));
    const save = el("button", { type: "button", hidden: !admin || u.id === state.me.id, onclick: guard(async () => {
      await api(`/v1/users/${u.id}`, { method: "PATCH", body: JSON.stringify({ role: select.value }) });
      await loadAdmin();
    }) }, "Save");
    return el("tr", {}, el("td", {}, u.email), el("td", {}, u.name), el("td", {}, select), el("td", {}, save));
  }));
  if (!admin) return;
  const [trunks, keys] = await Promise.all([api("/v1/trunks"), api("/v1/apikeys")]);
  $("trunks").replaceChildren(...trunks.trunks.map((t) => el("tr", {}, el("td", {}, t.name),
    el("td", {}, (t.numbers || []).join(", ")), el("td", {}, (t.allow || []).join(", ")), el("td", {}, t.username || "–"))));
  $("keys").replaceChildren(...keys.api_keys.map((k) => el("tr", {}, el("td", {}, k.prefix + "…"), el("td", {}, k.role),
    el("td", {}, when(k.created_at)))));
}

// Audit log.

async function loadAudit() {
  const body = await api("/v1/audit?limit=200");
  $("audit").replaceChildren(...body.entries.map((e) => el("tr", { "data-action": e.action },
    el("td", {}, e.seq), el("td", {}, when(e.at)), el("td", { class: "action" }, e.action),
    el("td", {}, `${e.actor_role || "system"} ${(e.actor_user_id || e.actor_api_key_id || "").slice(-8)}`),
    el("td", {}, `${e.resource_type || ""} ${(e.resource_id || "").slice(-8)}`), el("td", {}, e.reason || ""),
    el("td", {}, e.ticket || ""), el("td", {}, e.detail || ""), el("td", {}, e.ip || ""),
    el("td", { class: `outcome-${e.outcome}` }, e.outcome))));
}

$("verify").addEventListener("click", guard(async () => {
  $("verify-result").textContent = "checking…";
  const r = await api("/v1/audit/verify", { method: "POST" });
  $("verify-result").textContent = r.whole ? "The chain is whole." : `The chain is broken at entry ${r.first_broken}.`;
}));

// A page reloaded while logged in picks up where it was.
api("/v1/me").then(start, () => {});
