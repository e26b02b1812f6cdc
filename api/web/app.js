// switchboard operator page: one WebSocket and one PeerConnection for the
// whole shift (docs/operator-protocol.md). No build step, no dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const sb = (window.switchboard = { pc: null, ws: null, state: { available: false }, call: null });
let localStream = null;
let retryDelay = 1000;
let timerHandle = null;
let statsHandle = null;
let loggedIn = false;
let wantAvailable = false; // go available again after a reconnect
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

$("logout").addEventListener("click", async () => {
  loggedIn = false;
  wantAvailable = false;
  try { await api("/v1/logout", { method: "POST" }); } catch (e) { /* already gone */ }
  location.reload();
});

async function startConsole(user) {
  loggedIn = true;
  $("whoami").textContent = user.name ? `${user.name} <${user.email}>` : user.email;
  show($("login-view"), false);
  show($("console-view"), true);
  try {
    localStream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (e) {
    setError("No microphone: " + e.message);
    return;
  }
  connect();
  loadRecent();
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
    try {
      await api("/v1/me");
    } catch (e) {
      if (e.status === 401) { showLogin("Your session has ended; log in again."); return; }
    }
    if (loggedIn) connect();
  };
}

// useCodec makes the microphone's sender send the call's codec. The
// shift's PeerConnection negotiated G.711 and Opus once; each call is
// carried in its caller's codec, unchanged, so the page switches with it.
async function useCodec(name) {
  const sender = sb.pc && sb.pc.getSenders().find((s) => s.track && s.track.kind === "audio");
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

function showLogin(msg) {
  loggedIn = false;
  wantAvailable = false;
  show($("console-view"), false);
  show($("login-view"), true);
  $("login-error").textContent = msg || "";
  $("whoami").textContent = "";
}

async function handle(msg) {
  switch (msg.type) {
    case "hello": {
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
          if (!sb.state.available) $("status").textContent = "away";
        } else if (pc.connectionState === "failed") {
          setError("Audio connection failed; reconnecting.");
          sb.ws.close();
        }
      };
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
      $("status").textContent = msg.available ? "available" : "away" + (msg.reason ? ` (${msg.reason})` : "");
      $("available").textContent = msg.available ? "Go away" : "Go available";
      break;
    case "incoming":
      sb.call = { id: msg.call.call_id, from: msg.call.from, channel: msg.call.channel || "" };
      $("caller").textContent = msg.call.from || "unknown";
      showChannel(sb.call.channel);
      setCallState("ringing");
      break;
    case "revoked":
      if (sb.call && sb.call.id === msg.call_id) endCall(msg.call_id, msg.reason || "missed");
      break;
    case "dialing":
      sb.call = { id: msg.call_id, from: $("dial-number").value, outbound: true };
      $("caller").textContent = $("dial-number").value;
      showChannel("");
      setCallState("calling");
      break;
    case "resumed":
      // Back on the call we were on when the connection dropped.
      sb.call = { id: msg.call.call_id, from: msg.call.from, channel: msg.call.channel || "" };
      $("caller").textContent = msg.call.from || "unknown";
      showChannel(sb.call.channel);
      setError("");
      setCallState("connected");
      break;
    case "connected":
      await useCodec(msg.codec);
      setCallState("connected");
      break;
    case "ended":
      endCall(msg.call_id, msg.reason);
      loadRecent();
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
    case "error":
      setError(msg.message);
      break;
  }
}

function setCallState(state) {
  $("call-state").textContent = state;
  $("call").classList.toggle("ringing", state === "ringing");
  show($("answer"), state === "ringing");
  show($("decline"), state === "ringing");
  show($("hangup"), state === "connected" || state === "calling");
  show($("dial-form"), !state.startsWith("ringing") && state !== "connected" && state !== "calling");
  show($("mute"), state === "connected");
  show($("hold"), state === "connected");
  show($("keypad"), state === "connected");
  show($("transfer-form"), state === "connected");
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
  setCallState("ended" + (reason ? ` (${reason})` : ""));
  show($("hangup"), false);
}

function setMuted(muted) {
  if (localStream) for (const t of localStream.getAudioTracks()) t.enabled = !muted;
  $("mute").setAttribute("aria-pressed", String(muted));
  $("mute").textContent = muted ? "Unmute" : "Mute";
}

$("available").addEventListener("click", () => {
  wantAvailable = !sb.state.available;
  send({ type: wantAvailable ? "available" : "away" });
});
$("answer").addEventListener("click", () => sb.call && send({ type: "accept", call_id: sb.call.id }));
$("decline").addEventListener("click", () => sb.call && send({ type: "decline", call_id: sb.call.id }));
$("hangup").addEventListener("click", () => sb.call && send({ type: "hangup", call_id: sb.call.id }));
$("hold").addEventListener("click", () => {
  if (!sb.call) return;
  send({ type: "hold", call_id: sb.call.id, held: $("hold").getAttribute("aria-pressed") !== "true" });
});

// Blind transfer to a SIP URI (a colleague's extension, another site);
// the call is ended for this operator once it is handed over.
$("transfer-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (!sb.call) return;
  const to = $("transfer-to").value.trim();
  send({ type: "transfer", call_id: sb.call.id, to_uri: to.startsWith("sip:") ? to : "sip:" + to });
  $("transfer-to").value = "";
});

$("dial-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  setError("");
  if (!sb.call) send({ type: "dial", number: $("dial-number").value });
});

$("mute").addEventListener("click", () => {
  if (!sb.call) return;
  const muted = $("mute").getAttribute("aria-pressed") !== "true";
  setMuted(muted);
  send({ type: "mute", call_id: sb.call.id, muted });
});
for (const b of $("keypad").querySelectorAll("button")) {
  b.addEventListener("click", () => {
    const sender = sb.pc && sb.pc.getSenders().find((s) => s.track && s.track.kind === "audio");
    if (sender && sender.dtmf) sender.dtmf.insertDTMF(b.textContent, 120, 70);
  });
}

async function loadRecent() {
  try {
    const body = await api("/v1/calls?limit=10");
    const list = $("recent");
    list.replaceChildren(...body.calls.map((c) => {
      const li = document.createElement("li");
      const when = new Date(c.created_at).toLocaleTimeString();
      const secs = Math.round(c.duration_ms / 1000);
      const other = c.direction === "outbound" ? c.to : c.from;
      li.textContent = `${when} · ${c.direction === "outbound" ? "→ " : ""}${other} · ${c.status}${secs ? ` · ${secs}s` : ""}`;
      if (other) {
        const back = document.createElement("button");
        back.type = "button";
        back.textContent = "Call back";
        back.addEventListener("click", () => { $("dial-number").value = other; $("dial-form").requestSubmit(); });
        li.append(back);
      }
      return li;
    }));
  } catch (e) {
    console.warn("recent calls", e);
  }
}

// Already logged in (page reload): go straight to the console.
api("/v1/me").then((body) => body.user && startConsole(body.user)).catch(() => {});
