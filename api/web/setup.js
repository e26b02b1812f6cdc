// switchboard console, setup (admins): trunks and their outbound routes,
// queues, webhooks and their recent deliveries, and where each number
// leads. Uses console.js's el, api, apiAll, guard and when. Everything the server
// sends is put on the page as text, never as HTML.
"use strict";

const list = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);

// form reads the named fields of a form into an object of strings and
// booleans.
function formValues(form) {
  const out = {};
  for (const f of form.elements) {
    if (!f.name) continue;
    out[f.name] = f.type === "checkbox" ? f.checked : f.value.trim();
  }
  return out;
}

// button is a small action button.
const button = (label, onclick, attrs = {}) => el("button", { type: "button", onclick: guard(onclick), ...attrs }, label);

// confirmDelete asks before a delete: deletes cannot be undone.
const confirmDelete = (what) => window.confirm(`Delete ${what}? This cannot be undone.`);

async function loadSetup() {
  // Every page of each list; the numbers come whole, unpaged.
  const [trunks, routes, queues, webhooks, numbers, users] = await Promise.all([
    apiAll("/v1/trunks", "trunks"), apiAll("/v1/routes", "routes"), apiAll("/v1/queues", "queues"),
    apiAll("/v1/webhooks", "webhooks"), api("/v1/numbers"), apiAll("/v1/users", "users")]);
  const routeOf = new Map(routes.map((r) => [r.trunk_id, r]));
  const emailOf = new Map(users.map((u) => [u.id, u.email]));
  const idOf = new Map(users.map((u) => [u.email, u.id]));

  $("setup-trunks").replaceChildren(...trunks.map((t) => {
    const r = routeOf.get(t.id);
    return el("tr", { "data-trunk": t.name },
      el("td", {}, t.name), el("td", {}, (t.numbers || []).join(", ")), el("td", {}, (t.allow || []).join(", ") || "–"),
      el("td", {}, t.username || "–"), el("td", {}, t.recording_consent ? "yes" : "no"),
      el("td", {}, r ? `${r.target} (${r.transport}${r.media === "dtls" ? ", DTLS-SRTP" : ""}, priority ${r.priority}${r.register ? ", registers" : ""})` : "–"),
      el("td", {},
        button("Edit", () => editTrunk(t, r), { "aria-label": `Edit ${t.name}` }),
        button("Delete", async () => {
          if (!confirmDelete(`trunk ${t.name}`)) return;
          await api(`/v1/trunks/${t.id}`, { method: "DELETE" });
          await loadSetup();
        }, { "aria-label": `Delete ${t.name}` })));
  }));

  $("setup-queues").replaceChildren(...queues.map((q) => el("tr", { "data-queue": q.name },
    el("td", {}, q.name), el("td", {}, (q.numbers || []).join(", ") || "–"),
    el("td", {}, (q.members || []).map((id) => emailOf.get(id) || "deleted person").join(", ") || "every operator"),
    el("td", {}, `${q.max_wait_seconds} s`), el("td", {}, q.overflow.kind + (q.overflow.uri ? ` ${q.overflow.uri}` : "")),
    el("td", {},
      button("Edit", () => editQueue(q, emailOf), { "aria-label": `Edit ${q.name}` }),
      button("Delete", async () => {
        if (!confirmDelete(`queue ${q.name}`)) return;
        await api(`/v1/queues/${q.id}`, { method: "DELETE" });
        await loadSetup();
      }, { "aria-label": `Delete ${q.name}` })))));
  state.memberIDs = idOf;

  $("setup-webhooks").replaceChildren(...webhooks.map((h) => el("tr", { "data-webhook": h.url },
    el("td", {}, h.url), el("td", {}, h.events.join(", ")), el("td", {}, when(h.created_at)),
    el("td", {},
      button("Deliveries", () => showDeliveries(h)),
      button("Edit", () => editWebhook(h)),
      button("Delete", async () => {
        if (!confirmDelete(`the webhook to ${h.url}`)) return;
        await api(`/v1/webhooks/${h.id}`, { method: "DELETE" });
        await loadSetup();
      })))));

  $("setup-numbers").replaceChildren(...numbers.numbers.map((n) => el("tr", {},
    el("td", {}, n.number), el("td", {}, n.trunk_name), el("td", {}, n.queue_name || "every operator"))));
}

// Trunks: one form creates, or changes the trunk it was opened for.

function editTrunk(t, r) {
  const f = $("trunk-form");
  f.dataset.id = t ? t.id : "";
  f.elements.name.value = t ? t.name : "";
  f.elements.numbers.value = t ? (t.numbers || []).join(", ") : "";
  f.elements.allow.value = t ? (t.allow || []).join(", ") : "";
  f.elements.username.value = t ? t.username || "" : "";
  f.elements.password.value = "";
  f.elements.consent.checked = !!(t && t.recording_consent);
  f.elements.target.value = r ? r.target : "";
  f.elements.transport.value = r ? r.transport : "udp";
  f.elements.media.value = r ? r.media : "rtp";
  f.elements.priority.value = r ? r.priority : 100;
  $("trunk-form-title").textContent = t ? `Change trunk ${t.name}` : "New trunk";
}

$("trunk-form").addEventListener("submit", guard(async (ev) => {
  const f = ev.target;
  const v = formValues(f);
  const body = { name: v.name, numbers: list(v.numbers), allow: list(v.allow), recording_consent: v.consent };
  if (v.password || !f.dataset.id) Object.assign(body, { username: v.username, password: v.password });
  const t = f.dataset.id
    ? await api(`/v1/trunks/${f.dataset.id}`, { method: "PATCH", body: JSON.stringify(body) })
    : await api("/v1/trunks", { method: "POST", body: JSON.stringify(body) });
  if (v.target) {
    await api(`/v1/routes/${t.id}`, { method: "PUT",
      body: JSON.stringify({ target: v.target, transport: v.transport, media: v.media, priority: Number(v.priority) || 0 }) });
  }
  editTrunk(null, null);
  await loadSetup();
}));

// Queues.

function editQueue(q, emailOf) {
  const f = $("queue-form");
  f.dataset.id = q ? q.id : "";
  f.elements.name.value = q ? q.name : "";
  f.elements.numbers.value = q ? (q.numbers || []).join(", ") : "";
  f.elements.members.value = q ? (q.members || []).map((id) => emailOf.get(id) || id).join(", ") : "";
  f.elements.wait.value = q ? q.max_wait_seconds : 60;
  $("queue-form-title").textContent = q ? `Change queue ${q.name}` : "New queue";
}

$("queue-form").addEventListener("submit", guard(async (ev) => {
  const f = ev.target;
  const v = formValues(f);
  const members = list(v.members).map((m) => {
    const id = state.memberIDs.get(m);
    if (!id) throw new Error(`${m} is nobody in this tenant`);
    return id;
  });
  const body = { name: v.name, numbers: list(v.numbers), members, max_wait_seconds: Number(v.wait) || 0 };
  if (f.dataset.id) await api(`/v1/queues/${f.dataset.id}`, { method: "PATCH", body: JSON.stringify(body) });
  else await api("/v1/queues", { method: "POST", body: JSON.stringify({ ...body, overflow: { kind: "reject" } }) });
  editQueue(null, null);
  await loadSetup();
}));

// Webhooks: the secret is shown once, when the webhook is made.

function editWebhook(h) {
  const f = $("webhook-form");
  f.dataset.id = h ? h.id : "";
  f.elements.url.value = h ? h.url : "";
  f.elements.events.value = h ? h.events.join(", ") : "call.ended";
  $("webhook-form-title").textContent = h ? "Change webhook" : "New webhook";
}

$("webhook-form").addEventListener("submit", guard(async (ev) => {
  const f = ev.target;
  const v = formValues(f);
  const body = JSON.stringify({ url: v.url, events: list(v.events) });
  $("webhook-secret").textContent = "";
  if (f.dataset.id) {
    await api(`/v1/webhooks/${f.dataset.id}`, { method: "PATCH", body });
  } else {
    const made = await api("/v1/webhooks", { method: "POST", body });
    $("webhook-secret").textContent = `Signing secret, shown once: ${made.secret}`;
  }
  editWebhook(null);
  await loadSetup();
}));

async function showDeliveries(h) {
  const body = await api(`/v1/webhooks/${h.id}/deliveries`);
  $("deliveries-title").textContent = `Recent deliveries to ${h.url}`;
  $("setup-deliveries").replaceChildren(...body.deliveries.map((d) => el("tr", {},
    el("td", {}, when(d.created_at)), el("td", {}, d.event), el("td", {}, d.status),
    el("td", {}, d.attempts), el("td", {}, d.last_status || "–"), el("td", {}, d.last_error || ""))));
}

for (const [id, reset] of [["trunk-new", () => editTrunk(null, null)], ["queue-new", () => editQueue(null, null)], ["webhook-new", () => editWebhook(null)]]) {
  $(id).addEventListener("click", reset);
}
