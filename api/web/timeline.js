// switchboard console: a call's timeline read as sentences ("Ringing Ann
// Lee", "Consent given by the PBX header"), each with its raw event one
// click away. Covers every event kind call control, the SIP side and the
// recordings write (the EventType constants of the root package); a kind
// this page does not know yet reads as its name. Uses console.js's el,
// byName, named and state.names. Text only, never HTML.
"use strict";

// consentHow says how consent was stated, by its mechanism.
function consentHow(mechanism) {
  return {
    trunk_policy: "by the trunk's policy", sip_header: "by the PBX header", api: "through the API",
    operator: "by the operator", dtmf: "by the caller's key press",
  }[mechanism] || (mechanism ? `by ${mechanism}` : "");
}

// sentence is one event as a sentence.
function sentence(e) {
  const d = e.detail || {};
  const who = (id) => (id ? state.names[id] || "a deleted person" : "the operator");
  const thing = (id, kind) => (id && state.names[id]) || `a deleted ${kind}`;
  const why = d.reason ? ` (${named(d.reason)})` : "";
  const code = d.sip_code ? ` ${d.sip_code}` : "";
  const secs = (ms) => `${Math.round((ms || 0) / 1000)} s`;
  const party = { caller: "the caller", operator: "the operator", system: "switchboard", switchboard: "switchboard", forwarded: "the forwarded party" };
  const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);
  switch (e.type) {
    case "received": return `Call received${d.source ? ` from ${d.source}` : ""}${d.handed_over_by ? `, handed over by instance ${d.handed_over_by}` : ""}`;
    case "trying": return "Trying sent to the caller (100)";
    case "offered":
      if (d.click_to_call) return `Click-to-call: ringing ${who(d.operator_id)} first`;
      return `Ringing ${who(d.operator_id)}${d.transfer ? " for the transfer" : ""}`;
    case "ringing": return "The caller hears ringing (180)";
    case "declined":
      if (d.handed_over) return `The other instance refused the hand-over:${code}${why}`;
      return `Declined by ${who(d.operator_id)}${why}`;
    case "ring_timeout": return `${cap(who(d.operator_id))} did not answer in time`;
    case "answered": {
      const codec = d.codec ? `, ${d.codec}` : "";
      if (d.transferred_to) return `Answered at ${d.transferred_to} (the transfer)`;
      if (d.forwarded_to) return `Answered at ${d.forwarded_to} (forwarded${codec})`;
      if (d.operator_id) return `Answered by ${who(d.operator_id)}${d.transfer ? " after the transfer" : ""}${d.instance ? ` on instance ${d.instance}` : ""}${codec}`;
      return `Answered${codec}`;
    }
    case "held": return d.by === "operator" ? "The operator put the caller on hold" : "The caller put the call on hold";
    case "resumed": return `${cap(party[d.by] || "the caller")} took the call off hold`;
    case "hold_failed": return `The PBX refused to ${d.held ? "hold" : "resume"} the call${why}`;
    case "dtmf": return `${cap(party[d.from] || "the caller")} pressed ${d.masked ? "a key (hidden: the recording was paused)" : d.digit}`;
    case "muted": return `${cap(who(d.operator_id))} muted their microphone`;
    case "unmuted": return `${cap(who(d.operator_id))} unmuted their microphone`;
    case "media_timeout": return "No audio from the caller for too long";
    case "hung_up": return `${cap(d.operator_id ? who(d.operator_id) : party[d.by] || "someone")} hung up${why}`;
    case "canceled": return `The caller hung up before an answer${d.waited_ms ? `, after ${secs(d.waited_ms)}` : ""}`;
    case "rejected": return `${d.transfer ? "The transfer was refused" : d.forwarded ? "The forward was refused" : "The call was refused"}:${code}${why}`;
    case "ended": return `Call ended: ${d.status || "?"}${d.hangup_by ? `, hung up by ${party[d.hangup_by] || d.hangup_by}` : ""}${why}`;
    case "webrtc": {
      const l = d.webrtc || {};
      return `The operator's connection: ICE ${l.ice || "?"}, DTLS ${l.dtls || "?"}${l.pair ? ` (${l.pair})` : ""}`;
    }
    case "dialing": return `${cap(who(d.operator_id))} dials out`;
    case "early_media": return "Early media (183): the far end's ringback or announcement plays";
    case "trunk_failed": return `Trunk ${thing(d.trunk_id, "trunk")} did not take the call${code}${why}; trying the next`;
    case "transferred": {
      const to = d.to_operator_id ? who(d.to_operator_id) : d.to_queue_id ? `queue ${thing(d.to_queue_id, "queue")}` : d.to_uri;
      return `${cap(who(d.from_operator_id))} transferred the call to ${to}`;
    }
    case "operator_lost": return `${cap(who(d.operator_id))}'s connection dropped; the call waits ${secs(d.grace_ms)} for them`;
    case "operator_back": return `${cap(who(d.operator_id))} is back on the call`;
    case "queued": return `Waiting in queue ${d.queue || thing(d.queue_id, "queue")}${d.overflow_from ? `, overflowed from ${thing(d.overflow_from, "queue")}` : ""}${d.transfer ? " (transfer)" : ""}`;
    case "queue_timeout": return `The queue's longest wait passed; it overflows: ${d.overflow || "?"}`;
    case "forwarded": return `Forwarded to ${d.uri}${why}`;
    case "referred": return `The caller's PBX took the transfer to ${d.uri} (REFER); switchboard left the call`;
    case "handed_over": return `Offered to ${who(d.operator_id)} on instance ${d.instance}`;
    case "media_failed": return `The caller's media could not be set up${d.reason ? ` (${d.reason})` : ""}: the call was ended`;
    case "session_expired": return `The ${d.leg === "forwarded" ? "forwarded party's" : "caller's"} session refresh never came (RFC 4028): the call was ended`;
    case "consent": {
      const by = d.by && d.mechanism !== "dtmf" ? ` (${byName(d.by)})` : "";
      return `Consent ${d.given ? "given" : "refused"} ${consentHow(d.mechanism)}${by}`;
    }
    case "recording_started": return `Recording started${d.mechanism ? `, consent ${consentHow(d.mechanism)}` : ""}`;
    case "recording_stored": return `Recording stored${d.size_bytes ? ` (${Math.round(d.size_bytes / 1024)} KiB${d.dropped_packets ? `, ${d.dropped_packets} packets dropped` : ""})` : ""}`;
    case "recording_failed": return `The recording failed${d.stage ? ` to ${d.stage}` : ""}`;
    case "recording_destroyed": return `Recording destroyed${why}`;
    case "recording_paused": return `Recording paused${d.by ? ` by ${byName(d.by)}` : ""}${d.recording === false ? " (nothing is recorded yet: a recording that starts later starts paused)" : ""}`;
    case "recording_resumed": return `Recording resumed${d.by ? ` by ${byName(d.by)}` : ""}`;
  }
  return cap(String(e.type).replace(/_/g, " "));
}

// timelineItem is one event: its time, its sentence, and the raw event
// behind a <details>.
function timelineItem(e) {
  return el("li", { "data-type": e.type },
    el("time", { datetime: e.at }, new Date(e.at).toLocaleTimeString()), " ",
    el("span", { class: "sentence" }, sentence(e)), " ",
    el("details", { class: "raw" }, el("summary", {}, "raw"), el("pre", {}, JSON.stringify(e, null, 2))));
}
