package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/opclient"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// A messenger platform's SIP servers (Meta's for WhatsApp) and WebRTC-capable
// SBCs connect over TLS, answer a digest challenge, and offer Opus over
// DTLS-SRTP with ICE. The peer here is a sipgo phone whose media is a pion
// PeerConnection: its offer is WebRTC's own (UDP/TLS/RTP/SAVPF, a=mid,
// BUNDLE, rtcp-mux, a=setup:actpass, host candidates).

// dtlsTrunkPhone is a phone calling over TLS as the digest trunk
// "meta-sip" of number 2100, with Opus under payload type 111.
func dtlsTrunkPhone(t *testing.T, roots *x509.CertPool, opts siptest.Options) *siptest.Phone {
	t.Helper()
	opts.Transport, opts.LocalIP = "tls", "127.0.0.4" // not the IP trunk's address: digest is the way in
	opts.TLSConfig = &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
	opts.Username, opts.Password = "meta-sip", "s3cret-digest"
	opts.Codec = metaOpus
	return mustPhone(t, opts)
}

var metaOpus = sb.Codec{Name: "opus", PayloadType: 111, ClockRate: 48000}

// tlsSettings are the service's settings for a SIP TLS listener with a
// certificate for 127.0.0.1, and the roots that trust it.
func tlsSettings(t *testing.T) (map[string]string, *x509.CertPool) {
	certFile, keyFile, roots := mustCertificate(t)
	return map[string]string{"sip-tls-addr": "127.0.0.1:0", "tls-cert": certFile, "tls-key": keyFile}, roots
}

// The DTLS-SRTP peer is answered by an operator, audio crosses both ways
// unchanged, a hold and resume by re-INVITE keep the association (audio
// flows again with no new handshake), and the call, recorded with the
// caller's consent, plays back as Ogg Opus holding what both sides said.
// The same peer offering SDES instead still gets its call.
func TestDTLSSRTPTrunkOverTLSWithDigest(t *testing.T) {
	settings, roots := tlsSettings(t)
	x := mustRecordingFixtureWith(t, settings)
	mustDigestTrunk(t, x.m, x.f.Tenant.ID, "meta-sip", "2100")
	admin := mustLogin(t, x.m, mustUser(t, x.m, x.f.Tenant.ID, "admin@acme.test", sb.RoleAdmin))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	phone := dtlsTrunkPhone(t, roots, siptest.Options{DTLS: true, Headers: map[string]string{"X-Recording-Consent": "yes"}})
	call, in := answeredAt(t, x.m.SIPTLSAddr(), phone, x.op, "+15550001111", "2100")
	if err := call.WaitMedia(ctx); err != nil {
		t.Fatal(err)
	}
	if got := x.op.Codec(); got != "opus" {
		t.Fatalf("the operator was told to send %q, want opus", got)
	}
	talkBothWaysIn(t, call, x.op, metaOpus.PayloadType, sb.Opus.PayloadType)

	// Hold and resume, each a re-INVITE with the same ICE credentials and
	// fingerprint: answered on the same association.
	if err := call.Hold(ctx); err != nil {
		t.Fatalf("hold: %v", err)
	}
	if err := call.Resume(ctx); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if got := call.MediaState(); got != "connected" {
		t.Errorf("after hold and resume the phone's PeerConnection is %s", got)
	}
	talkBothWaysIn(t, call, x.op, metaOpus.PayloadType, sb.Opus.PayloadType)

	// What the recording is to hold: Opus frames from both sides.
	const frames = 50
	exchangeOpus(ctx, t, call, x.op, metaOpus.PayloadType, frames)
	rec := callerHangsUp(ctx, t, x.m, x.f.APIKey, call, in.CallID)
	if rec.Status != sb.CallCompleted || rec.Codec != "opus" || !strings.HasPrefix(rec.Source, "tls:") {
		t.Errorf("record %q, codec %q, source %q: want completed in opus over tls", rec.Status, rec.Codec, rec.Source)
	}
	if ev := timelineEvent(t, x.m, x.f.APIKey, in.CallID, sb.EventReceived); ev == nil || ev.Detail["srtp"] != "DTLS-SRTP" {
		t.Errorf("the received event says %v, want srtp DTLS-SRTP", ev)
	}

	// The call's trace shows the ICE credentials' names, never a password.
	var tr traceBody
	if code := apiGet(t, x.m, x.f.APIKey, "/v1/calls/"+in.CallID.String()+"/trace", &tr); code != http.StatusOK {
		t.Fatalf("trace: %d", code)
	}
	masked := 0
	for _, msg := range tr.SIP {
		if l := regexp.MustCompile(`a=ice-pwd:[^*\r]`).FindString(msg.Message); l != "" {
			t.Errorf("the trace keeps an ICE password: %q", l)
		}
		masked += strings.Count(msg.Message, "a=ice-pwd:****")
	}
	if masked < 2 {
		t.Errorf("%d masked ICE passwords in the trace, want the offer's and the answer's", masked)
	}

	head, audio, _ := playOggOpus(t, admin, in.CallID)
	if head.Channels != 2 || head.SampleRate != 48000 {
		t.Errorf("OpusHead %+v: want 2 channels at 48 kHz", head)
	}
	if heard := heardFrames(audio, frames); heard['c'] < frames*9/10 || heard['o'] < frames*9/10 {
		t.Errorf("the recording holds %d of the caller's %d frames and %d of the operator's", heard['c'], frames, heard['o'])
	}

	// The same peer keyed with SDES.
	sdes := dtlsTrunkPhone(t, roots, siptest.Options{SRTP: "AES_CM_128_HMAC_SHA1_80"})
	call, in = answeredAt(t, x.m.SIPTLSAddr(), sdes, x.op, "+15550001111", "2100")
	talkBothWaysIn(t, call, x.op, metaOpus.PayloadType, sb.Opus.PayloadType)
	if rec := callerHangsUp(ctx, t, x.m, x.f.APIKey, call, in.CallID); rec.Status != sb.CallCompleted || rec.Codec != "opus" {
		t.Errorf("SDES call: record %q, codec %q", rec.Status, rec.Codec)
	}
}

// A peer whose DTLS certificate is not the one its SDP's a=fingerprint
// names (a stranger holding the media path, or a broken SBC) gets no
// media: the handshake is refused, the call ends with a BYE that says
// why, and the record says the media setup failed on the trunk side.
func TestDTLSFingerprintMismatchGetsNoMedia(t *testing.T) {
	settings, roots := tlsSettings(t)
	m := mustStartService(t, settings)
	f := mustProvision(t, m, "Acme", "2000", 1)
	mustDigestTrunk(t, m, f.Tenant.ID, "meta-sip", "2100")
	op := mustOperator(t, m, f.Operators[0])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	stranger := "sha-256 " + strings.TrimSuffix(strings.Repeat("AB:", 32), ":")
	phone := dtlsTrunkPhone(t, roots, siptest.Options{DTLS: true, DTLSFingerprint: stranger})
	call, in := answeredAt(t, m.SIPTLSAddr(), phone, op, "+15550001111", "2100")
	heard := make(chan struct{}, 1)
	op.SetAudioSink(func(*rtp.Packet) {
		select {
		case heard <- struct{}{}:
		default:
		}
	})
	select {
	case <-call.Ended():
	case <-ctx.Done():
		t.Fatalf("the call with a mismatched certificate was not ended (phone media %s)", call.MediaState())
	}
	if reason := call.EndReason(); !strings.Contains(reason, "media failed") {
		t.Errorf("BYE Reason %q, want media failed", reason)
	}
	// The handshake needs our Finished, which never went: the phone's
	// DTLS cannot have come up.
	if got := call.MediaState(); got == "connected" {
		t.Error("the phone's DTLS-SRTP came up with a certificate that does not match its fingerprint")
	}
	select {
	case <-heard:
		t.Error("the operator heard media from the stranger")
	default:
	}
	rec := waitCallEnded(t, m, f.APIKey, in.CallID)
	if rec.Status != sb.CallFailed || rec.FailureLeg != sb.FailedOnTrunk || rec.FailureStage != sb.StageMediaSetup ||
		!strings.Contains(rec.Reason, "does not match the a=fingerprint") {
		t.Errorf("record %q on %q at %q: %q; want failed on the trunk at media setup, the fingerprint named", rec.Status, rec.FailureLeg, rec.FailureStage, rec.Reason)
	}
	if ev := timelineEvent(t, m, f.APIKey, in.CallID, sb.EventMediaFailed); ev == nil {
		t.Error("no media_failed event on the timeline")
	}
}

// timelineEvent is the call's first event of type typ, or nil.
func timelineEvent(t *testing.T, m *Main, key string, id sb.ID, typ sb.EventType) *sb.CallEvent {
	t.Helper()
	var body struct {
		Events []*sb.CallEvent `json:"events"`
	}
	if code := apiGet(t, m, key, "/v1/calls/"+id.String()+"/events", &body); code != http.StatusOK {
		t.Fatalf("events: status %d", code)
	}
	for _, e := range body.Events {
		if e.Type == typ {
			return e
		}
	}
	return nil
}

// A trunk whose outbound route says media dtls (a messenger platform's
// SIP servers for the calls a business places) gets our DTLS-SRTP offer
// (UDP/TLS/RTP/SAVPF, a=setup:actpass, our candidates): the far end, a
// pion PeerConnection answering, takes the DTLS client's role, so ours is
// the server's, and we are ICE-controlling. An operator who takes Opus
// has Opus offered first, and a G.711 answer is taken as ever; an
// operator whose connection has no Opus has G.711 alone offered. Audio
// crosses both ways; the operator hangs up.
func TestOutboundCallToDTLSTrunk(t *testing.T) {
	m := mustStartService(t, map[string]string{"keyring": testKeyring})
	f := mustProvision(t, m, "Acme", "2000", 2)
	op := mustOperator(t, m, f.Operators[0])
	plain := mustOperator(t, m, f.Operators[1], opclient.WithoutOpus())
	carrier := mustPhone(t, siptest.Options{DTLS: true})
	addr, calls, err := carrier.AnswerDTLS()
	if err != nil {
		t.Fatal(err)
	}
	trunkID := outboundTrunk(t, m, f, "messenger", addr, 1, "-media", "dtls")
	for _, c := range []struct {
		op    *opclient.Client
		offer string // the m= line's transport and formats
		opus  bool
	}{
		{op, " UDP/TLS/RTP/SAVPF 111 0 8 110 101\r\n", true},
		{plain, " UDP/TLS/RTP/SAVPF 0 8 101\r\n", false},
	} {
		id, rec := placeDTLSCall(t, m, f, c.op, calls, 0, 0)
		if rec.Direction != sb.Outbound || rec.Status != sb.CallCompleted || rec.Codec != "PCMU" || rec.TrunkID == nil || *rec.TrunkID != trunkID {
			t.Errorf("record %+v", rec)
		}
		invite := placedInvite(t, m, f.APIKey, id)
		for _, want := range []string{c.offer, "a=setup:actpass", "a=fingerprint:sha-256 ", "a=ice-ufrag:", "a=rtcp-mux", "a=rtpmap:101 telephone-event/8000"} {
			if !strings.Contains(invite, want) {
				t.Errorf("our INVITE's offer lacks %q:\n%s", want, invite)
			}
		}
		if got := strings.Contains(invite, "opus/48000/2"); got != c.opus {
			t.Errorf("Opus offered: %v, want %v:\n%s", got, c.opus, invite)
		}
	}
}

// A call placed through a dtls route to a far end that speaks Opus (Meta's
// SIP servers calling a WhatsApp user): the answer takes Opus, the
// operator is switched to Opus for the call, the frames cross both ways
// unchanged, and the record's codec is opus. The offer had Opus first,
// with telephone-event at 48 kHz and at 8 kHz.
func TestOutboundOpusCallToDTLSTrunk(t *testing.T) {
	m, f, op := mustOutboundService(t)
	carrier := mustPhone(t, siptest.Options{DTLS: true, Codec: metaOpus})
	addr, calls, err := carrier.AnswerDTLS()
	if err != nil {
		t.Fatal(err)
	}
	outboundTrunk(t, m, f, "messenger", addr, 1, "-media", "dtls")
	id, rec := placeDTLSCall(t, m, f, op, calls, metaOpus.PayloadType, sb.Opus.PayloadType)
	if rec.Status != sb.CallCompleted || rec.Codec != "opus" {
		t.Errorf("record %q, codec %q: want completed in opus", rec.Status, rec.Codec)
	}
	invite := placedInvite(t, m, f.APIKey, id)
	for _, want := range []string{" UDP/TLS/RTP/SAVPF 111 0 8 110 101\r\n", "a=rtpmap:111 opus/48000/2\r\n",
		"a=rtpmap:110 telephone-event/48000\r\n", "a=rtpmap:101 telephone-event/8000\r\n"} {
		if !strings.Contains(invite, want) {
			t.Errorf("our INVITE's offer lacks %q:\n%s", want, invite)
		}
	}
}

// placeDTLSCall has op call a number through the tenant's dtls route,
// whose far end is the phone answering on calls; once connected, audio
// crosses both ways in the payload types given (the caller's leg's and
// the operator's), then op hangs up. It returns the call's ID and record.
func placeDTLSCall(t *testing.T, m *Main, f *tenantFixture, op *opclient.Client, calls <-chan *siptest.Call, callerPT, operatorPT uint8) (sb.ID, *sb.Call) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id, err := op.Dial(ctx, "+1 (555) 000-1111")
	if err != nil {
		t.Fatal(err)
	}
	var call *siptest.Call
	select {
	case call = <-calls:
	case <-ctx.Done():
		t.Fatal("the carrier was not called")
	}
	if err := op.WaitConnected(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := call.WaitMedia(ctx); err != nil {
		t.Fatal(err)
	}
	want := "PCMU"
	if operatorPT == sb.Opus.PayloadType {
		want = "opus"
	}
	if got := op.Codec(); got != want {
		t.Errorf("the operator was told to send %q, want %q", got, want)
	}
	talkBothWaysIn(t, call, op, callerPT, operatorPT)
	if err := op.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	select {
	case <-call.Ended():
	case <-ctx.Done():
		t.Fatal("no BYE reached the carrier")
	}
	return id, waitCallEnded(t, m, f.APIKey, id)
}

// placedInvite is the INVITE of call id, as its SIP trace has it.
func placedInvite(t *testing.T, m *Main, apiKey string, id sb.ID) string {
	t.Helper()
	var tr traceBody
	if code := apiGet(t, m, apiKey, "/v1/calls/"+id.String()+"/trace", &tr); code != http.StatusOK {
		t.Fatalf("trace: %d", code)
	}
	var invite string
	for _, msg := range tr.SIP {
		if strings.HasPrefix(msg.Message, "INVITE ") {
			invite = msg.Message
		}
	}
	return invite
}
