package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/opclient"
)

// visitor is a browser caller in a test: a pion PeerConnection offering
// what browsers offer (Opus first, then G.711), on loopback.
type visitor struct {
	pc      *webrtc.PeerConnection
	track   *webrtc.TrackLocalStaticRTP
	heard   atomic.Int64  // packets of the operator's pattern
	heardPT atomic.Uint32 // their payload type
}

func newVisitor(t *testing.T, codecs ...webrtc.RTPCodecParameters) *visitor {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if len(codecs) == 0 {
		if err := m.RegisterDefaultCodecs(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range codecs {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	capability := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	if len(codecs) > 0 {
		capability = codecs[0].RTPCodecCapability
	}
	v := &visitor{pc: pc}
	v.track, err = webrtc.NewTrackLocalStaticRTP(capability, "audio", "visitor")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTrack(v.track); err != nil {
		t.Fatal(err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if len(p.Payload) > 0 && bytes.Count(p.Payload, []byte{0x5a}) == len(p.Payload) {
				v.heardPT.Store(uint32(p.PayloadType))
				v.heard.Add(1)
			}
		}
	})
	return v
}

// offer makes the visitor's offer with all its candidates.
func (v *visitor) offer(t *testing.T) string {
	t.Helper()
	o, err := v.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(v.pc)
	if err := v.pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return v.pc.LocalDescription().SDP
}

// whip posts an offer with a token through the API client; it returns the
// status, the session URL and the body.
func whip(t *testing.T, m *Main, token, offer string) (int, string, string) {
	t.Helper()
	res, err := apiClient(t, m, token).StartWHIPCallWithBodyWithResponse(apiCtx(t), "application/sdp", strings.NewReader(offer),
		func(_ context.Context, r *http.Request) error {
			r.Header.Set("Origin", "https://shop.example") // the site embedding the widget
			// The visitor's address as a reverse proxy in front tells it:
			// taken only where the proxy is trusted.
			r.Header.Set("X-Forwarded-For", "198.51.100.7")
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode(), res.HTTPResponse.Header.Get("Location"), string(res.Body)
}

// issueToken asks for a browser caller's token as the tenant's backend.
func issueToken(t *testing.T, m *Main, key string, body string) string {
	t.Helper()
	res, err := apiClient(t, m, key).CreateWebRTCTokenWithBodyWithResponse(apiCtx(t), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if res.JSON201 == nil || res.JSON201.Token == "" {
		t.Fatalf("token: %s %s", res.Status(), res.Body)
	}
	return res.JSON201.Token
}

// whipState reads where a browser call stands.
func whipState(t *testing.T, m *Main, session string) string {
	t.Helper()
	res, err := apiClient(t, m, "").GetWHIPCallWithResponse(apiCtx(t), strings.TrimPrefix(session, "/v1/whip/"))
	if err != nil {
		t.Fatal(err)
	}
	if res.JSON200 == nil {
		return ""
	}
	return string(res.JSON200.State)
}

// talk sends a second of Opus each way between a WebRTC caller (a browser
// visitor, a WhatsApp user) and the operator, and checks both heard it,
// unchanged.
func talk(t *testing.T, user *visitor, op *opclient.Client) {
	t.Helper()
	var fromUser atomic.Int64
	op.SetAudioSink(func(p *rtp.Packet) {
		if p.PayloadType == sb.Opus.PayloadType && len(p.Payload) == 160 && bytes.Count(p.Payload, []byte{0xa5}) == len(p.Payload) {
			fromUser.Add(1)
		}
	})
	for i := range 50 {
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: uint16(i), Timestamp: uint32(960 * i), SSRC: 77},
			Payload: bytes.Repeat([]byte{0xa5}, 160)}
		if err := user.track.WriteRTP(p); err != nil {
			t.Fatal(err)
		}
		if err := op.SendAudio(bytes.Repeat([]byte{0x5a}, 160)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for deadline := time.Now().Add(3 * time.Second); (fromUser.Load() < 45 || user.heard.Load() < 45) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if fromUser.Load() < 45 || user.heard.Load() < 45 {
		t.Errorf("the operator heard %d of the caller's 50 packets, the caller %d of the operator's", fromUser.Load(), user.heard.Load())
	}
	if op.Codec() != "opus" || user.heardPT.Load() != uint32(sb.Opus.PayloadType) {
		t.Errorf("the operator sent %s, the caller heard payload type %d: want Opus both ways", op.Codec(), user.heardPT.Load())
	}
}

// A website visitor calls from the browser with a token the tenant's
// backend issued, through a trusted reverse proxy that names them: the
// call reaches the operator like a trunk's, its source is the visitor's
// address, not the proxy's; audio flows both ways, the visitor hangs up
// by deleting the session, and the record carries the visitor's name and the chat's reference. The
// visitor's Opus reaches the operator unchanged, and the operator's Opus
// the visitor. Forged, spent and expired tokens, and offers that do not
// parse or have neither Opus nor G.711, are refused; a refused offer does
// not spend the token.
func TestBrowserCallerThroughWHIP(t *testing.T) {
	m := mustStartService(t, map[string]string{"http-trusted-proxies": "127.0.0.1"})
	f := mustProvision(t, m, "Acme", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])

	token := issueToken(t, m, f.APIKey, `{"number": "2000", "from": "web:chat-42", "external_ref": "chat-42"}`)
	v := newVisitor(t)
	offer := v.offer(t)

	if code, _, body := whip(t, m, "sbw_forged"+token[10:], offer); code != http.StatusUnauthorized {
		t.Errorf("a forged token: %d %s", code, body)
	}
	// An offer that does not parse leaves the token to the good one.
	if code, _, body := whip(t, m, token, "v=0 garbage"); code != http.StatusBadRequest {
		t.Errorf("an offer that does not parse: %d %s", code, body)
	}
	code, session, answer := whip(t, m, token, offer)
	if code != http.StatusCreated || !strings.HasPrefix(session, "/v1/whip/") {
		t.Fatalf("WHIP: %d %q %s", code, session, answer)
	}
	if err := v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	if got := whipState(t, m, session); got != "waiting" {
		t.Errorf("state before the operator answered: %q", got)
	}

	in := waitIncoming(t, op)
	if in.From != "web:chat-42" {
		t.Errorf("operator offered a call from %q", in.From)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := op.Accept(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	if err := op.WaitConnected(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	for whipState(t, m, session) != "answered" {
		if ctx.Err() != nil {
			t.Fatal("the visitor's session never said answered")
		}
		time.Sleep(50 * time.Millisecond)
	}

	talk(t, v, op) // a second of audio each way

	req, _ := http.NewRequest(http.MethodDelete, m.HTTPURL()+session, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("hang up: %v %v", resp, err)
	}
	resp.Body.Close()
	rec := waitCallEnded(t, m, f.APIKey, in.CallID)
	if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyCaller || rec.From != "web:chat-42" || rec.To != "2000" ||
		rec.ExternalRef != "chat-42" || rec.Source != "webrtc:198.51.100.7" || rec.Codec != "opus" || rec.FromCaller.Packets < 45 {
		t.Errorf("record: %q by %q, from %q to %q, ref %q, source %q, codec %q, %d packets from the visitor",
			rec.Status, rec.HangupBy, rec.From, rec.To, rec.ExternalRef, rec.Source, rec.Codec, rec.FromCaller.Packets)
	}
	if got := whipState(t, m, session); got != "ended" {
		t.Errorf("state after hanging up: %q", got)
	}

	if code, _, body := whip(t, m, token, newVisitor(t).offer(t)); code != http.StatusUnauthorized {
		t.Errorf("a spent token: %d %s", code, body)
	}
	short := issueToken(t, m, f.APIKey, `{"number": "2000", "from": "web:late", "ttl_seconds": 1}`)
	time.Sleep(1100 * time.Millisecond)
	if code, _, body := whip(t, m, short, newVisitor(t).offer(t)); code != http.StatusUnauthorized {
		t.Errorf("an expired token: %d %s", code, body)
	}
	g722 := newVisitor(t, webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeG722, ClockRate: 8000}, PayloadType: 9})
	code, _, body := whip(t, m, issueToken(t, m, f.APIKey, `{"number": "2000", "from": "web:g722"}`), g722.offer(t))
	if code != http.StatusBadRequest || !strings.Contains(body, "no common codec") {
		t.Errorf("a G.722-only offer: %d %s", code, body)
	}
	select {
	case in := <-op.Incoming():
		t.Errorf("a refused browser call reached the operator: %+v", in)
	default:
	}
}

// A visitor whose call nobody could take gets their token back, once, to

// whipEnded waits until the browser call of session has ended, and
// returns what its session says then.
func whipEnded(t *testing.T, m *Main, session string) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(m.HTTPURL() + session)
		if err != nil {
			t.Fatal(err)
		}
		var s map[string]any
		err = json.NewDecoder(resp.Body).Decode(&s)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if s["state"] == "ended" {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the browser call did not end: %v", s)
		}
	}
}

// A token is given back only for calls nobody could take, and not without
// end: a visitor who hangs up has spent it, and a link that keeps finding
// nobody gets maxRetries tries more, not a ringing line at will.
func TestVisitorTokenRetriesAreBounded(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	token := issueToken(t, m, f.APIKey, `{"number": "2000", "from": "web:chat-8"}`)
	for try := 1; ; try++ {
		code, session, body := whip(t, m, token, newVisitor(t).offer(t))
		if code != http.StatusCreated {
			t.Fatalf("try %d: WHIP %d %s", try, code, body)
		}
		s := whipEnded(t, m, session)
		if try <= 3 {
			if s["retry"] != true {
				t.Fatalf("try %d: %v, want the token given back", try, s)
			}
			continue
		}
		if s["retry"] != nil {
			t.Fatalf("try %d: %v, want the token spent after three give-backs", try, s)
		}
		if code, _, _ := whip(t, m, token, newVisitor(t).offer(t)); code != http.StatusUnauthorized {
			t.Errorf("the spent token placed another call: %d", code)
		}
		break
	}

	// The visitor hangs up while it rings: their token is spent.
	mustOperator(t, m, f.Operators[0])
	token = issueToken(t, m, f.APIKey, `{"number": "2000", "from": "web:chat-9"}`)
	v := newVisitor(t)
	code, session, body := whip(t, m, token, v.offer(t))
	if code != http.StatusCreated {
		t.Fatalf("WHIP: %d %s", code, body)
	}
	req, _ := http.NewRequest(http.MethodDelete, m.HTTPURL()+session, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s := whipEnded(t, m, session); s["retry"] != nil {
		t.Errorf("after the visitor hung up the session says %v, want no retry", s)
	}
	if code, _, _ := whip(t, m, token, newVisitor(t).offer(t)); code != http.StatusUnauthorized {
		t.Errorf("the token of a visitor who hung up placed another call: %d", code)
	}
}

// try again; a call that was answered spends it for good.
func TestUnansweredVisitorMayTryAgain(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	token := issueToken(t, m, f.APIKey, `{"number": "2000", "from": "web:chat-7"}`)
	ended := func(session string) map[string]any { t.Helper(); return whipEnded(t, m, session) }

	// Nobody is connected: refused, and the token given back.
	code, session, body := whip(t, m, token, newVisitor(t).offer(t))
	if code != http.StatusCreated {
		t.Fatalf("WHIP: %d %s", code, body)
	}
	if s := ended(session); s["retry"] != true {
		t.Fatalf("the unanswered call's session says %v, want retry: true", s)
	}
	if s := ended(session); s["retry"] != nil {
		t.Errorf("asked again, the session says %v: the token is given back once", s)
	}

	// The same token again, answered this time: then it is spent.
	op := mustOperator(t, m, f.Operators[0])
	v := newVisitor(t)
	code, session, body = whip(t, m, token, v.offer(t))
	if code != http.StatusCreated {
		t.Fatalf("WHIP with the token given back: %d %s", code, body)
	}
	if err := v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		t.Fatal(err)
	}
	in := waitIncoming(t, op)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := op.Accept(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	if err := op.WaitConnected(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodDelete, m.HTTPURL()+session, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s := ended(session); s["retry"] != nil {
		t.Errorf("the answered call's session says %v, want no retry", s)
	}
	if code, _, _ := whip(t, m, token, newVisitor(t).offer(t)); code != http.StatusUnauthorized {
		t.Errorf("the token of an answered call placed another: %d, want 401", code)
	}
}

// A browser caller's address names them as a number does: where the tenant
// shows its operators numbers masked, the operator who took the visitor's
// call finds the address nowhere (the call, the list, the timeline, the
// socket's caller), while an admin, who sees numbers whole, sees it.
func TestVisitorsAddressIsMaskedWhereNumbersAre(t *testing.T) {
	const address = "198.51.100.7" // what whip's trusted proxy names
	m := mustStartService(t, map[string]string{"http-trusted-proxies": "127.0.0.1"})
	f := mustProvision(t, m, "Acme", "2000", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := metadata.NewTenantService(m.DB).SetPrivacyPolicy(ctx, f.Tenant.ID,
		sb.PrivacyPolicy{CallRetentionDays: 30, QualityRetentionDays: 30, MaskOperatorNumbers: true}); err != nil {
		t.Fatal(err)
	}
	op := mustOperator(t, m, f.Operators[0])
	v := newVisitor(t)
	code, _, answer := whip(t, m, issueToken(t, m, f.APIKey, `{"number": "2000", "from": "web:chat-42"}`), v.offer(t))
	if code != http.StatusCreated {
		t.Fatalf("WHIP: %d %s", code, answer)
	}
	if err := v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	in := waitIncoming(t, op)
	if err := op.Accept(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	if err := op.WaitConnected(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	caller, err := op.Caller(ctx, in.CallID)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(caller); strings.Contains(string(b), address) {
		t.Errorf("the socket's caller names the visitor's address: %s", b)
	}
	if err := op.Hangup(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	if rec := waitCallEnded(t, m, f.APIKey, in.CallID); rec.Source != "webrtc:"+address {
		t.Fatalf("the record's source is %q", rec.Source)
	}

	operator := mustLogin(t, m, f.Operators[0])
	admin := mustLogin(t, m, mustUser(t, m, f.Tenant.ID, "admin@acme.test", sb.RoleAdmin))
	for _, path := range []string{"/v1/calls", "/v1/calls/" + in.CallID.String(), "/v1/calls/" + in.CallID.String() + "/events"} {
		code, body := operator.do(http.MethodGet, path, "", nil)
		if code != http.StatusOK || strings.Contains(body, address) {
			t.Errorf("the operator's %s: %d %s", path, code, body)
		}
		if !strings.Contains(body, `"webrtc:`) {
			t.Errorf("the operator's %s no longer says the call came from a browser: %s", path, body)
		}
		if code, body := admin.do(http.MethodGet, path, "", nil); code != http.StatusOK || !strings.Contains(body, `"webrtc:`+address+`"`) {
			t.Errorf("the admin's %s: %d %s", path, code, body)
		}
	}
}
