// The visitor's side of a browser call: WHIP (RFC 9725) with the token the
// embedding site gave us. Our offer carries its ICE candidates (no
// trickle); the session URL in the answer's Location is polled for where
// the call stands and deleted to hang up.
'use strict';

const statusEl = document.getElementById('status');
const callBtn = document.getElementById('call');
const hangupBtn = document.getElementById('hangup');
const remote = document.getElementById('remote');

let token = new URLSearchParams(location.hash.slice(1)).get('token') || '';
let spent = ''; // the token of the call in progress: given back if nobody answers
let pc = null;
let session = '';
let poll = 0;
let stream = null;

// A token comes only from the page that embeds the widget: another frame
// of that page (an ad, a chat) must not swap in a token of its own and
// send the visitor's microphone to another number.
window.addEventListener('message', (e) => {
  if (window.parent === window || e.source !== window.parent) return;
  if (e.data && e.data.type === 'switchboard-token' && typeof e.data.token === 'string') {
    token = e.data.token;
    if (!session) {
      callBtn.textContent = 'Call us';
      callBtn.disabled = false;
      say('Ready to call.');
    }
  }
});

function say(text) { statusEl.textContent = text; }

const noLink = 'This page has no call link. Go back to the site you came from and press its call button.';
const badLink = 'This call link has expired or has already been used. ' +
  'Go back to the site you came from and press its call button again for a new one.';

// needToken asks the site that embeds the widget for a new token (it
// answers with a switchboard-token message); opened on its own, the
// visitor is told what to do.
function needToken(text) {
  token = '';
  callBtn.disabled = true;
  say(text);
  if (window.parent !== window) window.parent.postMessage({ type: 'switchboard-token-needed' }, '*');
}

const words = {
  waiting: 'Connecting you to the next free person…',
  answered: 'Connected.',
};

async function call() {
  if (!token) { needToken(noLink); return; }
  callBtn.disabled = true;
  say('Asking for your microphone…');
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (e) {
    say('The microphone is needed to call.');
    callBtn.disabled = false;
    return;
  }
  pc = new RTCPeerConnection();
  stream.getTracks().forEach((t) => pc.addTrack(t, stream));
  pc.ontrack = (e) => { remote.srcObject = e.streams[0] || new MediaStream([e.track]); };
  pc.onconnectionstatechange = () => {
    if (pc && pc.connectionState === 'failed') { end('The connection was lost.'); }
  };
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  say('Calling…');
  let res;
  try {
    res = await fetch('/v1/whip', {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + token },
      body: pc.localDescription.sdp,
    });
  } catch (e) {
    end('The call could not be placed.');
    return;
  }
  spent = token;
  token = '';
  if (res.status === 401) {
    end('');
    needToken(badLink);
    return;
  }
  if (res.status !== 201) {
    let msg = 'The call could not be placed.';
    try { msg = (await res.json()).message || msg; } catch (e) { /* not JSON */ }
    token = spent; // refused before it was placed: the token was not used
    end(msg + ' You can try again.');
    return;
  }
  session = res.headers.get('Location');
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  hangupBtn.hidden = false;
  say(words.waiting);
  poll = setInterval(check, 1000);
}

// gathered resolves when ICE gathering completes, or after 3 s with what
// has been gathered by then.
function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') { resolve(); return; }
    const done = () => { if (pc.iceGatheringState === 'complete') resolve(); };
    pc.addEventListener('icegatheringstatechange', done);
    setTimeout(resolve, 3000);
  });
}

async function check() {
  if (!session) return;
  try {
    const res = await fetch(session, { cache: 'no-store' });
    if (!res.ok) { end('The call has ended.'); return; }
    const s = await res.json();
    if (s.state === 'ended') {
      let text = s.reason ? 'The call has ended: ' + s.reason + '.' : 'The call has ended.';
      if (s.retry) {
        // Nobody took the call: the same link may call again.
        token = spent;
        text += ' You can try again.';
      }
      end(text);
      return;
    }
    say(words[s.state] || s.state);
  } catch (e) { /* try again on the next tick */ }
}

function end(text) {
  clearInterval(poll);
  poll = 0;
  if (pc) { pc.close(); pc = null; }
  if (stream) { stream.getTracks().forEach((t) => t.stop()); stream = null; }
  session = '';
  spent = '';
  hangupBtn.hidden = true;
  callBtn.disabled = !token;
  callBtn.textContent = token ? 'Try again' : 'Call us';
  if (text) say(text);
}

async function hangup() {
  const s = session;
  session = '';
  if (s) {
    try { await fetch(s, { method: 'DELETE' }); } catch (e) { /* the server ends it when media stops */ }
  }
  end('You hung up.');
}

callBtn.addEventListener('click', call);
hangupBtn.addEventListener('click', hangup);

if (!token) needToken(noLink);
