// switchboard operator page: one WebSocket and one PeerConnection for the
// whole shift (docs/operator-protocol.md). No build step, no dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const sb = (window.switchboard = { pc: null, ws: null, state: { available: false }, call: null, canDial: false, notification: null });
const takesCalls = ["operator", "supervisor", "admin"];
const baseTitle = document.title;
let localStream = null;
let retryDelay = 1000;
let timerHandle = null;
let statsHandle = null;
let loggedIn = false;
let wantAvailable = false; // go available again after a reconnect
let pendingDial = ""; // the number being called back, as the page knows it
let inbox = Promise.resolve(); // server messages are handled one at a time, in order

function show(el, visible) { el.hidden = !visible; }
function setError(msg) { $("console-error").textContent = msg || ""; }

// showChannel labels a call from or to a messenger ("WhatsApp"); a phone
// call has no label.
const channelNames = { whatsapp: "WhatsApp" };
function showChannel(channel) {
  $("channel").textContent = channelNames[channel] || channel || "";
  $("channel").hidden = !channel;
}

async function api(path, opts = {}) {
  const res = await fetch(path, { credentials: "same-origin", ...opts });
  const body = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    const err = new Error((body && body.message) || res.statusText);
    err.status = res.status;
    throw err;
  }
  return body;
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  askToNotify(); // a click: the browser lets the page ask now
  try {
    const body = await api("/v1/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: $("email").value, password: $("password").value }),
    });
    $("password").value = "";
    startConsole(body.user);
  } catch (e) {
    $("login-error").textContent = e.message;
  }
});

async function logout() {
  loggedIn = false;
  wantAvailable = false;
  try { await api("/v1/logout", { method: "POST" }); } catch (e) { /* already gone */ }
  location.reload();
}
$("logout").addEventListener("click", logout);
$("norole-logout").addEventListener("click", logout);

async function startConsole(user) {
  $("whoami").textContent = user.name ? `${user.name} <${user.email}>` : user.email;
  show($("login-view"), false);
  if (!takesCalls.includes(user.role)) {
    showNoRole(user);
    return;
  }
  loggedIn = true;
  show($("console-view"), true);
  try {
    localStream = await openMicrophone(localStorage.getItem("sb.mic"));
  } catch (e) {
    setError("No microphone: " + e.message);
    return;
  }
  await listDevices();
  connect();
}

// showNoRole tells a person whose role takes no calls why this page does
// nothing for them, and stops there: no socket, no retries.
function showNoRole(user) {
  loggedIn = false;
  wantAvailable = false;
  show($("console-view"), false);
  show($("login-view"), false);
  show($("norole-view"), true);
  $("norole-text").textContent = `You are logged in as ${user.email}, whose role (${user.role}) does not take calls: ` +
    "only operators, supervisors and admins do. Ask an admin of your organisation for the operator role, or use the console.";
}

function send(msg) {
  if (sb.ws && sb.ws.readyState === WebSocket.OPEN) sb.ws.send(JSON.stringify(msg));
}

function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/operator/ws");
  sb.ws = ws;
  $("status").textContent = "connecting…";
  ws.onmessage = (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch (e) { console.warn("bad message", e); return; }
    // Handling is async (SDP, candidates); keep the server's order.
    inbox = inbox.then(() => ws === sb.ws && handle(msg)).catch((e) => console.warn(msg.type, e));
  };
  ws.onopen = () => { retryDelay = 1000; };
  ws.onclose = async (ev) => {
    if (ws !== sb.ws) return;
    if (sb.pc) { sb.pc.close(); sb.pc = null; }
    sb.state = { available: false };
    $("available").disabled = true;
    $("available").textContent = "Go available";
    endCall(null, "connection lost");
    if (!loggedIn) return;
    if (ev.code === 4000) { $("status").textContent = "opened in another tab"; return; }
    // 1012: this instance is draining; the next connection goes to another.
    $("status").textContent = ev.code === 1012 ? "moving to another server…" : "reconnecting…";
    const delay = retryDelay + Math.random() * 500;
    retryDelay = Math.min(retryDelay * 2, 30000);
    await new Promise((r) => setTimeout(r, delay));
    // A socket refused at its opening says nothing to the page: ask who
    // the session is now (signed out, or no longer a role that takes calls).
    try {
      const body = await api("/v1/session");
      if (!body.user) { showLogin("Your session has ended; log in again."); return; }
      if (!takesCalls.includes(body.user.role)) { showNoRole(body.user); return; }
    } catch (e) { /* the server is unreachable: try again */ }
    if (loggedIn) connect();
  };
}

// useCodec makes the microphone's sender send the call's codec. The
// shift's PeerConnection negotiated G.711 and Opus once; each call is
// carried in its caller's codec, unchanged, so the page switches with it.
async function useCodec(name) {
  const sender = audioSender();
  if (!name || !sender) return;
  const params = sender.getParameters();
  const codec = (params.codecs || []).find((c) => c.mimeType.toLowerCase() === "audio/" + name.toLowerCase());
  if (!codec || !params.encodings || params.encodings.length === 0) {
    console.warn("the call's codec was not negotiated", name);
    return;
  }
  const { payloadType, ...wanted } = codec;
  params.encodings[0].codec = wanted;
  try {
    await sender.setParameters(params);
  } catch (e) {
    console.warn("could not switch to", name, e);
  }
}

function audioSender() {
  return sb.pc && sb.pc.getSenders().find((s) => s.track && s.track.kind === "audio");
}

function showLogin(msg) {
  loggedIn = false;
  wantAvailable = false;
  show($("console-view"), false);
  show($("norole-view"), false);
  show($("login-view"), true);
  $("login-error").textContent = msg || "";
  $("whoami").textContent = "";
}

async function handle(msg) {
  switch (msg.type) {
    case "hello": {
      sb.canDial = !!msg.can_dial;
      show($("dial-form"), sb.canDial && !sb.call);
      const pc = new RTCPeerConnection({ iceServers: msg.ice_servers || [] });
      sb.pc = pc;
      for (const t of localStream.getAudioTracks()) pc.addTrack(t, localStream);
      pc.ontrack = (ev) => { $("remote-audio").srcObject = ev.streams[0] || new MediaStream([ev.track]); };
      pc.onicecandidate = (ev) => { if (ev.candidate) send({ type: "candidate", candidate: ev.candidate.toJSON() }); };
      pc.onconnectionstatechange = () => {
        if (pc !== sb.pc) return;
        if (pc.connectionState === "connected") {
          $("available").disabled = false;
          setError("");
          showStatus();
        } else if (pc.connectionState === "failed") {
          setError("Audio connection failed; reconnecting.");
          sb.ws.close();
        }
      };
      send({ type: "recent" });
      break;
    }
    case "offer": {
      // The microphone track is on the PeerConnection before answering.
      await sb.pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
      const answer = await sb.pc.createAnswer();
      await sb.pc.setLocalDescription(answer);
      send({ type: "answer", sdp: sb.pc.localDescription.sdp });
      // Back to work after a reconnect; the server waits for the audio.
      if (wantAvailable) send({ type: "available" });
      break;
    }
    case "candidate":
      if (sb.pc) await sb.pc.addIceCandidate(msg.candidate).catch((e) => console.warn("candidate", e));
      break;
    case "moving":
      // The socket closes next; onclose reconnects, to an instance that
      // takes calls, and goes available again if the operator was.
      wantAvailable = wantAvailable || sb.state.available;
      break;
    case "state":
      sb.state = { available: msg.available, reason: msg.reason };
      if (msg.reason) wantAvailable = msg.available; // the service set it (a missed call)
      $("available").textContent = msg.available ? "Go away" : "Go available";
      showStatus();
      break;
    case "incoming":
      sb.call = { id: msg.call.call_id, from: msg.call.from, channel: msg.call.channel || "" };
      showCaller(msg.call.from);
      showChannel(sb.call.channel);
      setCallState("ringing");
      startRinging(msg.call.from || "unknown caller");
      send({ type: "caller", call_id: msg.call.call_id });
      break;
    case "revoked":
      if (sb.call && sb.call.id === msg.call_id) endCall(msg.call_id, msg.reason || "missed");
      send({ type: "recent" });
      break;
    case "dialing":
      sb.call = { id: msg.call_id, from: pendingDial || $("dial-number").value, outbound: true };
      pendingDial = "";
      showCaller(sb.call.from);
      showChannel("");
      setCallState("calling");
      send({ type: "caller", call_id: msg.call_id });
      break;
    case "resumed":
      // Back on the call we were on when the connection dropped.
      sb.call = { id: msg.call.call_id, from: msg.call.from, channel: msg.call.channel || "" };
      showCaller(msg.call.from);
      showChannel(sb.call.channel);
      setError("");
      setCallState("connected");
      send({ type: "caller", call_id: msg.call.call_id });
      break;
    case "connected":
      transferPicked = false;
      await useCodec(msg.codec);
      setCallState("connected");
      send({ type: "directory" });
      // Again: an integration may have labelled the call while it rang.
      if (sb.call) send({ type: "caller", call_id: sb.call.id });
      break;
    case "ended":
      endCall(msg.call_id, msg.reason);
      send({ type: "recent" });
      break;
    case "muted":
      if (sb.call && sb.call.id === msg.call_id) setMuted(msg.muted);
      break;
    case "held":
      if (sb.call && sb.call.id === msg.call_id) {
        $("hold").setAttribute("aria-pressed", String(msg.held));
        $("hold").textContent = msg.held ? "Resume" : "Hold";
      }
      break;
    case "recording":
      if (sb.call && sb.call.id === msg.call_id) showRecording(msg);
      break;
    case "caller":
      if (sb.call && msg.caller && sb.call.id === msg.caller.call_id) showCallerInfo(msg.caller);
      break;
    case "recent":
      showRecent(msg.calls || []);
      break;
    case "directory":
      showDirectory(msg.operators || [], msg.queues || []);
      break;
    case "error":
      setError(msg.message);
      break;
  }
}

// showStatus says where the operator stands: on a call, available, away.
function showStatus() {
  let text = sb.state.available ? "available" : "away" + (sb.state.reason ? ` (${sb.state.reason})` : "");
  if (sb.call && (sb.call.state === "connected" || sb.call.state === "calling")) text = "on a call";
  else if (sb.call && sb.call.state === "ringing") text = "ringing";
  $("status").textContent = text;
}

function setCallState(state) {
  if (sb.call) sb.call.state = state;
  $("call-state").textContent = state;
  $("call").classList.toggle("ringing", state === "ringing");
  if (state !== "ringing") stopRinging();
  const onCall = state === "connected" || state === "calling";
  show($("answer"), state === "ringing");
  show($("decline"), state === "ringing");
  show($("hangup"), onCall);
  show($("dial-form"), sb.canDial && state !== "ringing" && !onCall);
  show($("mute"), state === "connected");
  show($("hold"), state === "connected");
  show($("keypad"), state === "connected");
  show($("transfer-form"), state === "connected");
  show($("recording"), state === "connected");
  clearInterval(timerHandle);
  clearInterval(statsHandle);
  $("timer").textContent = "";
  if (state === "connected") {
    const start = Date.now();
    timerHandle = setInterval(() => {
      const s = Math.floor((Date.now() - start) / 1000);
      $("timer").textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
    }, 1000);
    statsHandle = setInterval(reportStats, 5000);
  }
  showStatus();
}

// reportStats tells switchboard how the caller's audio reaches this
// browser, for the call's quality record: what only the browser knows.
async function reportStats() {
  if (!sb.call || !sb.pc) return;
  const id = sb.call.id;
  const report = await sb.pc.getStats().catch(() => null);
  if (!report || !sb.call || sb.call.id !== id) return;
  const stats = { packets_received: 0, packets_lost: 0, jitter_ms: 0, rtt_ms: 0 };
  for (const s of report.values()) {
    if (s.type === "inbound-rtp" && s.kind === "audio") {
      stats.packets_received = s.packetsReceived || 0;
      stats.packets_lost = s.packetsLost || 0;
      stats.jitter_ms = (s.jitter || 0) * 1000;
    }
    if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) {
      stats.rtt_ms = s.currentRoundTripTime * 1000;
    }
  }
  send({ type: "stats", call_id: id, stats });
}

function endCall(id, reason) {
  if (!sb.call || (id && sb.call.id !== id)) return;
  sb.call = null;
  setMuted(false);
  $("hold").setAttribute("aria-pressed", "false");
  $("hold").textContent = "Hold";
  // Until the service says (it does not for a call another instance
  // handed over, whose recording is kept there).
  showRecording({ state: "not known here", consent: "", paused: false });
  setCallState("ended" + (reason ? ` (${reason})` : ""));
  show($("hangup"), false);
}

function setMuted(muted) {
  if (localStream) for (const t of localStream.getAudioTracks()) t.enabled = !muted;
  $("mute").setAttribute("aria-pressed", String(muted));
  $("mute").textContent = muted ? "Unmute" : "Mute";
}

// --- Noticing a call: ring tone, title, desktop notification ---

// ringTone makes the ring as a WAV file (two bursts of 400 + 450 Hz, then
// a pause), played in a loop through the ringer <audio> element, so that
// it goes to the speaker the operator chose.
function ringTone() {
  const rate = 8000, seconds = 3;
  const n = rate * seconds;
  const buf = new DataView(new ArrayBuffer(44 + n * 2));
  const text = (o, s) => { for (let i = 0; i < s.length; i++) buf.setUint8(o + i, s.charCodeAt(i)); };
  text(0, "RIFF"); buf.setUint32(4, 36 + n * 2, true); text(8, "WAVE");
  text(12, "fmt "); buf.setUint32(16, 16, true); buf.setUint16(20, 1, true); buf.setUint16(22, 1, true);
  buf.setUint32(24, rate, true); buf.setUint32(28, rate * 2, true); buf.setUint16(32, 2, true); buf.setUint16(34, 16, true);
  text(36, "data"); buf.setUint32(40, n * 2, true);
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    const on = t < 0.4 || (t >= 0.6 && t < 1.0);
    const v = on ? 0.25 * (Math.sin(2 * Math.PI * 400 * t) + Math.sin(2 * Math.PI * 450 * t)) : 0;
    buf.setInt16(44 + i * 2, Math.round(v * 32767), true);
  }
  return new Blob([buf], { type: "audio/wav" });
}

function startRinging(from) {
  const ringer = $("ringer");
  if (!ringer.src) ringer.src = URL.createObjectURL(ringTone());
  ringer.currentTime = 0;
  ringer.play().catch((e) => console.warn("the ring tone could not play:", e.message));
  document.title = `Incoming call: ${from} · switchboard`;
  if (document.hidden) notify(from);
}

function stopRinging() {
  $("ringer").pause();
  document.title = baseTitle;
  if (sb.notification) { sb.notification.close(); sb.notification = null; }
}

// askToNotify asks once for leave to show desktop notifications; the
// browser allows asking only on a click.
function askToNotify() {
  if ("Notification" in window && Notification.permission === "default") {
    Notification.requestPermission().catch(() => {});
  }
}

// notify shows a desktop notification of the call, when the tab is in the
// background and the operator allowed them; a click brings the tab up.
function notify(from) {
  if (!("Notification" in window) || Notification.permission !== "granted" || sb.notification) return;
  try {
    const n = new Notification("Incoming call", { body: from, tag: "switchboard-call", requireInteraction: true });
    n.onclick = () => { window.focus(); n.close(); };
    sb.notification = n;
  } catch (e) {
    console.warn("no notification:", e.message);
  }
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden && sb.call && sb.call.state === "ringing") notify(sb.call.from || "unknown caller");
});

// --- Who calls ---

function showCaller(from) {
  $("caller").textContent = from || "unknown";
  show($("caller-info"), false);
}

function showCallerInfo(c) {
  $("caller").textContent = c.from || (c.channel === "web" ? "a web visitor" : "unknown");
  $("caller-via").textContent = c.channel === "web" ? `from the website, through ${c.via || "a widget"}`
    : c.channel === "whatsapp" ? `on WhatsApp, through ${c.via || "a business number"}`
    : `by phone, through ${c.via || "a trunk"}`;
  $("caller-to").textContent = c.to || "–";
  $("caller-ref").textContent = c.external_ref || "";
  show($("caller-ref"), !!c.external_ref);
  show($("caller-ref-label"), !!c.external_ref);
  $("caller-labels").textContent = (c.labels || []).join(", ");
  show($("caller-labels"), (c.labels || []).length > 0);
  show($("caller-labels-label"), (c.labels || []).length > 0);
  const earlier = (c.earlier || []).map((e) => {
    const li = document.createElement("li");
    const secs = Math.round(e.duration_ms / 1000);
    li.textContent = `${new Date(e.at).toLocaleString()} · ${e.direction === "outbound" ? "called back" : "called"} · ${e.status}` +
      (secs ? ` · ${secs}s` : "") + (e.external_ref ? ` · ${e.external_ref}` : "");
    return li;
  });
  if (earlier.length === 0) {
    const li = document.createElement("li");
    li.textContent = c.channel === "web" ? "not known (web visitors have no number)" : "none";
    earlier.push(li);
  }
  $("caller-earlier").replaceChildren(...earlier);
  show($("caller-info"), true);
}

// --- Recording: consent and pause, the state always shown ---

function showRecording(r) {
  $("recording-state").textContent = r.state;
  $("recording").dataset.state = r.state;
  show($("consent-give"), r.consent !== "given");
  show($("consent-withdraw"), r.consent === "given");
  $("pause").setAttribute("aria-pressed", String(!!r.paused));
  $("pause").textContent = r.paused ? "Resume recording" : "Pause recording";
}

$("consent-give").addEventListener("click", () => sb.call && send({ type: "consent", call_id: sb.call.id, given: true }));
$("consent-withdraw").addEventListener("click", () => sb.call && send({ type: "consent", call_id: sb.call.id, given: false }));
$("pause").addEventListener("click", () => {
  if (!sb.call) return;
  send({ type: "recording", call_id: sb.call.id, paused: $("pause").getAttribute("aria-pressed") !== "true" });
});

// --- Call controls ---

$("available").addEventListener("click", () => {
  askToNotify();
  wantAvailable = !sb.state.available;
  send({ type: wantAvailable ? "available" : "away" });
});
$("answer").addEventListener("click", () => { if (sb.call) { stopRinging(); send({ type: "accept", call_id: sb.call.id }); } });
$("decline").addEventListener("click", () => { if (sb.call) { stopRinging(); send({ type: "decline", call_id: sb.call.id }); } });
$("hangup").addEventListener("click", () => sb.call && send({ type: "hangup", call_id: sb.call.id }));
$("hold").addEventListener("click", () => {
  if (!sb.call) return;
  send({ type: "hold", call_id: sb.call.id, held: $("hold").getAttribute("aria-pressed") !== "true" });
});
$("mute").addEventListener("click", () => {
  if (!sb.call) return;
  const muted = $("mute").getAttribute("aria-pressed") !== "true";
  setMuted(muted);
  send({ type: "mute", call_id: sb.call.id, muted });
});
for (const b of $("keypad").querySelectorAll("button")) {
  b.addEventListener("click", () => {
    const sender = audioSender();
    if (sender && sender.dtmf) sender.dtmf.insertDTMF(b.textContent, 120, 70);
  });
}

// Keyboard shortcuts (listed on the page): Alt with a letter, by key
// position so that they work whatever the keyboard layout types.
const shortcuts = { KeyA: "answer", KeyD: "decline", KeyE: "hangup", KeyM: "mute", KeyH: "hold" };
document.addEventListener("keydown", (ev) => {
  if (!ev.altKey || ev.ctrlKey || ev.metaKey || !loggedIn) return;
  const button = shortcuts[ev.code] && $(shortcuts[ev.code]);
  if (!button || button.hidden || button.disabled) return;
  ev.preventDefault();
  button.click();
});

// --- Transfer: to a colleague or a queue from the list, or a SIP address ---

let transferPicked = false; // the operator chose a target on this call: keep it while it can take the call

function showDirectory(operators, queues) {
  const chosen = transferPicked ? $("transfer-target").value : "";
  const free = (o) => o.state === "available";
  const ops = [...operators].sort((a, b) => free(b) - free(a) || a.name.localeCompare(b.name)).map((o) => {
    const opt = new Option(`${o.name} — ${o.state === "busy" ? "on a call" : o.state}`, "op:" + o.id);
    opt.disabled = !free(o);
    return opt;
  });
  const qs = queues.map((q) => new Option(`${q.name} (${q.waiting} waiting)`, "q:" + q.id));
  $("transfer-operators").replaceChildren(...ops);
  $("transfer-queues").replaceChildren(...qs);
  const options = [...$("transfer-target").options];
  const keep = options.find((o) => o.value === chosen && !o.disabled);
  const first = options.find((o) => !o.disabled);
  $("transfer-target").value = keep ? chosen : first.value;
  showTransferURI();
}

function showTransferURI() {
  const uri = $("transfer-target").value === "uri";
  show($("transfer-to"), uri);
  $("transfer-to").required = uri;
}

$("transfer-target").addEventListener("change", () => { transferPicked = true; showTransferURI(); });
$("transfer-target").addEventListener("focus", () => send({ type: "directory" })); // who is free now

// Blind transfer: the call is ended for this operator once it is handed
// over.
$("transfer-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (!sb.call) return;
  setError("");
  const target = $("transfer-target").value;
  const msg = { type: "transfer", call_id: sb.call.id };
  if (target.startsWith("op:")) msg.to_operator_id = target.slice(3);
  else if (target.startsWith("q:")) msg.to_queue_id = target.slice(2);
  else {
    const to = $("transfer-to").value.trim();
    msg.to_uri = to.startsWith("sip:") ? to : "sip:" + to;
    $("transfer-to").value = "";
  }
  send(msg);
});

$("dial-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  setError("");
  pendingDial = "";
  if (!sb.call) send({ type: "dial", number: $("dial-number").value });
});

// --- Recent calls ---

const outcomes = { answered: "answered", missed: "missed", declined: "declined", canceled: "cancelled by the caller", ringing: "ringing" };

function showRecent(calls) {
  if (calls.length === 0) {
    const li = document.createElement("li");
    li.className = "none";
    li.textContent = "No calls yet.";
    $("recent").replaceChildren(li);
    return;
  }
  $("recent").replaceChildren(...calls.map((c) => {
    const li = document.createElement("li");
    li.className = "outcome-" + c.outcome;
    const when = new Date(c.at).toLocaleTimeString();
    const secs = Math.round(c.duration_ms / 1000);
    const other = c.number || (c.channel === "web" ? "web visitor" : "unknown");
    const what = outcomes[c.outcome] || c.outcome;
    li.textContent = `${when} · ${c.direction === "outbound" ? "→ " : ""}${other} · ${what}${secs ? ` · ${secs}s` : ""}`;
    // Only a phone number can be called back, and only with a way out; a
    // WhatsApp user through the business number they called.
    if (c.number && ((sb.canDial && c.channel === "phone") || c.channel === "whatsapp")) {
      const back = document.createElement("button");
      back.type = "button";
      back.textContent = "Call back";
      back.addEventListener("click", () => {
        if (sb.call) return;
        setError("");
        pendingDial = c.number;
        send({ type: "dial", call_id: c.call_id });
      });
      li.append(back);
    }
    return li;
  }));
}

// --- Devices: microphone and speaker, remembered in this browser ---

// openMicrophone opens the microphone chosen before, or the default one
// when there is none or it is gone.
async function openMicrophone(deviceId) {
  if (deviceId) {
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: { deviceId: { exact: deviceId } } });
    } catch (e) {
      console.warn("the microphone chosen before is not there:", e.name);
    }
  }
  return navigator.mediaDevices.getUserMedia({ audio: true });
}

async function listDevices() {
  let devices = [];
  try { devices = await navigator.mediaDevices.enumerateDevices(); } catch (e) { console.warn("devices", e); }
  const fill = (select, kind, current) => {
    const list = devices.filter((d) => d.kind === kind);
    select.replaceChildren(...list.map((d, i) => new Option(d.label || `${kind === "audioinput" ? "Microphone" : "Speaker"} ${i + 1}`, d.deviceId)));
    if (list.some((d) => d.deviceId === current)) select.value = current;
    select.disabled = list.length === 0;
  };
  const track = localStream && localStream.getAudioTracks()[0];
  fill($("mic"), "audioinput", track && track.getSettings().deviceId);
  const speaker = localStorage.getItem("sb.speaker") || "default";
  fill($("speaker"), "audiooutput", speaker);
  if (!("setSinkId" in HTMLMediaElement.prototype)) {
    $("speaker").disabled = true;
    $("speaker").replaceChildren(new Option("the system's (this browser cannot choose)", ""));
  } else if (localStorage.getItem("sb.speaker")) {
    await useSpeaker(speaker).catch((e) => console.warn("speaker", e.message));
  }
}

async function useSpeaker(id) {
  await Promise.all([$("remote-audio").setSinkId(id), $("ringer").setSinkId(id)]);
}

$("mic").addEventListener("change", async () => {
  const id = $("mic").value;
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: { deviceId: { exact: id } } });
    const track = stream.getAudioTracks()[0];
    const muted = $("mute").getAttribute("aria-pressed") === "true";
    track.enabled = !muted;
    const sender = audioSender();
    if (sender) await sender.replaceTrack(track);
    if (localStream) for (const t of localStream.getTracks()) t.stop();
    localStream = stream;
    localStorage.setItem("sb.mic", id);
    setError("");
  } catch (e) {
    setError("That microphone cannot be used: " + e.message);
  }
});

$("speaker").addEventListener("change", async () => {
  const id = $("speaker").value;
  try {
    await useSpeaker(id);
    localStorage.setItem("sb.speaker", id);
    setError("");
  } catch (e) {
    setError("That speaker cannot be used: " + e.message);
  }
});

// Already logged in (page reload): go straight to the console. The
// session route answers 200 either way: no 401 in the console on a first
// visit.
api("/v1/session").then((body) => body.user && startConsole(body.user)).catch((e) => console.warn("session", e.message));
