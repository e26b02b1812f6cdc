package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/sdp/v3"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

const (
	testUfrag = "F7gI"
	testPwd   = "x9cml/YzichV2+XlhiMu8g"
	testFP    = "sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F"
)

// webrtcOffer is an offer as a WebRTC endpoint (or an SBC speaking like
// one) writes it: c=0.0.0.0 and port 9 with the addresses in candidates,
// media-level ICE and DTLS attributes, mid and BUNDLE, rtcp-mux, Opus
// and telephone-event at 48 kHz.
func webrtcOffer(extra ...string) string {
	return "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=msid-semantic: WMS\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111 110\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n" +
		"a=ice-ufrag:" + testUfrag + "\r\na=ice-pwd:" + testPwd + "\r\na=ice-options:trickle\r\n" +
		"a=fingerprint:" + testFP + "\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\n" +
		"a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:110 telephone-event/48000\r\n" +
		"a=candidate:1 1 udp 2130706431 198.51.100.7 50000 typ host\r\n" +
		"a=candidate:1 2 udp 2130706430 198.51.100.7 50001 typ host\r\n" +
		"a=candidate:2 1 tcp 1518280447 198.51.100.7 9 typ host tcptype active\r\n" +
		"a=candidate:3 1 udp 1694498815 203.0.113.9 40000 typ srflx raddr 198.51.100.7 rport 50000\r\n" +
		strings.Join(extra, "")
}

// sipOffer is one as a SIP server offering DTLS-SRTP writes it: a real
// address, session-level ICE credentials and fingerprint, ICE-lite,
// setup:active, G.711 too, no mid.
const sipOffer = "v=0\r\no=msrv 1 1 IN IP4 203.0.113.20\r\ns=-\r\nc=IN IP4 203.0.113.20\r\nt=0 0\r\na=ice-lite\r\n" +
	"a=ice-ufrag:" + testUfrag + "\r\na=ice-pwd:" + testPwd + "\r\na=fingerprint:SHA-256 d2:fa:0e:c3:22:59:5e:14:95:69:92:3d:13:b4:84:24:2c:c2:a2:c0:3e:fd:34:8e:5e:ea:6f:af:52:ce:e6:0f\r\n" +
	"m=audio 30000 UDP/TLS/RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=setup:active\r\na=rtcp-mux\r\n" +
	"a=candidate:0 1 UDP 2130706431 203.0.113.20 30000 typ host\r\na=sendrecv\r\n"

// DTLS-SRTP offers: the transport, ICE credentials, fingerprints (media
// level, else the session's), setup roles (RFC 4145's default when
// absent), UDP candidates of component 1 only, mid and BUNDLE, ICE-lite;
// an offer missing what the association needs is refused as not
// acceptable (488), saying what.
func TestParseOfferDTLS(t *testing.T) {
	o, err := parseOffer([]byte(webrtcOffer()))
	if err != nil {
		t.Fatal(err)
	}
	want := iceParams{Ufrag: testUfrag, Pwd: testPwd, Setup: setupActpass, Mid: "0", Bundle: true,
		Fingerprints: []fingerprint{{Hash: "sha-256", Value: strings.TrimPrefix(testFP, "sha-256 ")}},
		Candidates:   []string{"1 1 udp 2130706431 198.51.100.7 50000 typ host", "3 1 udp 1694498815 203.0.113.9 40000 typ srflx raddr 198.51.100.7 rport 50000"}}
	if o.ICE == nil || o.ICE.Ufrag != want.Ufrag || o.ICE.Pwd != want.Pwd || o.ICE.Setup != want.Setup || o.ICE.Mid != "0" || !o.ICE.Bundle || o.ICE.Lite ||
		len(o.ICE.Fingerprints) != 1 || o.ICE.Fingerprints[0] != want.Fingerprints[0] || strings.Join(o.ICE.Candidates, "|") != strings.Join(want.Candidates, "|") {
		t.Errorf("ICE %+v, want %+v", o.ICE, want)
	}
	if o.Proto != "UDP/TLS/RTP/SAVPF" || o.Codec.Name != "opus" || o.Codec.PayloadType != 111 || o.Codec.DTMFType != 110 {
		t.Errorf("proto %s, codec %+v: want SAVPF, Opus 111 with telephone-event 110", o.Proto, o.Codec)
	}
	if o.held() {
		t.Error("c=0.0.0.0 on an ICE stream was taken for a hold")
	}

	o, err = parseOffer([]byte(sipOffer))
	if err != nil {
		t.Fatal(err)
	}
	if !o.ICE.Lite || o.ICE.Setup != setupActive || o.ICE.Mid != "" || o.Proto != "UDP/TLS/RTP/SAVP" || o.Codec != (sb.Codec{Name: "PCMU", PayloadType: 0, ClockRate: 8000, DTMFType: 101}) ||
		o.ICE.Fingerprints[0].Value != strings.TrimPrefix(testFP, "sha-256 ") {
		t.Errorf("SIP-style offer: %+v %+v", o, o.ICE)
	}
	if got := answerSetup(o.ICE.Setup); got != setupPassive {
		t.Errorf("an offer that is active gets %s, want passive", got)
	}
	if got := answerSetup(setupActpass); got != setupActive {
		t.Errorf("an actpass offer gets %s, want active (what browsers answer)", got)
	}
	noSetup, err := parseOffer([]byte(strings.Replace(sipOffer, "a=setup:active\r\n", "", 1)))
	if err != nil || noSetup.ICE.Setup != setupActive {
		t.Errorf("no a=setup: %v, %+v; want active (RFC 4145)", err, noSetup)
	}

	refused := []struct{ name, sdp, why string }{
		{"no ufrag", strings.Replace(webrtcOffer(), "a=ice-ufrag:"+testUfrag+"\r\n", "", 1), "a=ice-ufrag"},
		{"short password", strings.Replace(webrtcOffer(), testPwd, "short", 1), "a=ice-pwd"},
		{"no fingerprint", strings.Replace(webrtcOffer(), "a=fingerprint:"+testFP+"\r\n", "", 1), "fingerprint"},
		{"md5 fingerprint", strings.Replace(webrtcOffer(), "a=fingerprint:sha-256", "a=fingerprint:md5", 1), "fingerprint"},
		{"holdconn", strings.Replace(webrtcOffer(), "a=setup:actpass", "a=setup:holdconn", 1), "a=setup:holdconn"},
		{"no rtcp-mux", strings.Replace(webrtcOffer(), "a=rtcp-mux\r\n", "", 1), "rtcp-mux"},
		{"G.722 only", strings.Replace(webrtcOffer(), "SAVPF 111 110", "SAVPF 9", 1), "no common codec"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseOffer([]byte(c.sdp))
			if !notAcceptable(err) || !strings.Contains(err.Error(), c.why) {
				t.Errorf("err %v, want 488 naming %s", err, c.why)
			}
		})
	}
}

// A far end's description cannot crash us or make us check without end:
// a bare a=group (a 183 or 200 to a call we place is parsed off any
// handler's guard) is no bundle, and only the first maxCandidates
// candidates are checked.
func TestParseOfferDTLSBounds(t *testing.T) {
	for _, group := range []string{"a=group\r\n", "a=group:\r\n", "a=group:BUNDLE\r\n"} {
		o, err := parseOffer([]byte(strings.Replace(webrtcOffer(), "a=group:BUNDLE 0\r\n", group, 1)))
		if err != nil || o.ICE.Bundle {
			t.Errorf("%q: %v, bundle %v; want taken, not bundled", group, err, o != nil && o.ICE.Bundle)
		}
	}
	var many []string
	for i := range 1000 {
		many = append(many, fmt.Sprintf("a=candidate:%d 1 udp 2130706431 10.0.%d.%d 5000 typ host\r\n", i+10, i/256, i%256))
	}
	o, err := parseOffer([]byte(webrtcOffer(many...)))
	if err != nil || len(o.ICE.Candidates) != maxCandidates {
		t.Errorf("1,002 candidates offered: %v, %d kept; want %d", err, len(o.ICE.Candidates), maxCandidates)
	}
}

// mustICE is an ICE transport on a loopback socket, as an INVITE's leg
// gets one.
func mustICE(t *testing.T) (*iceTransport, *net.UDPConn) {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	id, err := newDTLSIdentity()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := newICETransport(conn, id, netip.Addr{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tr.close()
		conn.Close()
	})
	return tr, conn
}

// Our answer to a DTLS-SRTP offer: the transport offered, the offer's mid
// and BUNDLE group echoed, our ICE credentials and a candidate on the
// leg's own socket (also the m= line's port), our certificate's
// fingerprint, rtcp-mux, and a=setup:active to actpass, passive to
// active. Later descriptions keep all of it, and the role.
func TestDTLSAnswer(t *testing.T) {
	tr, conn := mustICE(t)
	o, err := parseOffer([]byte(webrtcOffer()))
	if err != nil {
		t.Fatal(err)
	}
	tr.answering(o.ICE, o.Proto)
	port := uint16(conn.LocalAddr().(*net.UDPAddr).Port)
	body := buildAnswer(7, 1, netip.MustParseAddr("127.0.0.1"), port, o.Codec, "sendrecv", tr, mlines{})
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(body)); err != nil {
		t.Fatalf("our answer does not parse: %v\n%s", err, body)
	}
	for _, want := range []string{
		"a=group:BUNDLE 0\r\n", "m=audio " + itoa(port) + " UDP/TLS/RTP/SAVPF 111 110\r\n", "a=mid:0\r\n",
		"a=ice-ufrag:" + tr.ufrag + "\r\n", "a=ice-pwd:" + tr.pwd + "\r\n", "a=fingerprint:" + tr.id.fingerprint.String() + "\r\n",
		"a=setup:active\r\n", "a=rtcp-mux\r\n", "a=rtpmap:111 opus/48000/2\r\n", "a=rtpmap:110 telephone-event/48000\r\n",
		"a=end-of-candidates\r\n", "a=sendrecv\r\n",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("answer lacks %q:\n%s", want, body)
		}
	}
	if !regexp.MustCompile(`a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 ` + itoa(port) + ` typ host`).Match(body) {
		t.Errorf("no host candidate on the leg's socket %d:\n%s", port, body)
	}
	if strings.Contains(string(body), "a=crypto") {
		t.Error("a DTLS-SRTP answer carries an SDES key")
	}
	// Our answer is itself a DTLS-SRTP description we would take.
	back, err := parseOffer(body)
	if err != nil || back.ICE.Ufrag != tr.ufrag || back.ICE.Fingerprints[0] != tr.id.fingerprint || back.ICE.Setup != setupActive {
		t.Errorf("our answer read back: %v %+v", err, back)
	}
	again := buildAnswer(7, 2, netip.MustParseAddr("127.0.0.1"), port, o.Codec, "recvonly", tr, mlines{})
	if !sameSession(body, []byte(strings.Replace(string(again), "a=recvonly", "a=sendrecv", 1))) {
		t.Errorf("a later description changed more than the direction:\n%s\n%s", body, again)
	}

	active, _ := mustICE(t)
	a, err := parseOffer([]byte(sipOffer))
	if err != nil {
		t.Fatal(err)
	}
	active.answering(a.ICE, a.Proto)
	body = buildAnswer(7, 1, netip.MustParseAddr("127.0.0.1"), port, a.Codec, "sendrecv", active, mlines{})
	if !strings.Contains(string(body), "a=setup:passive\r\n") || !strings.Contains(string(body), " UDP/TLS/RTP/SAVP 0 101\r\n") ||
		strings.Contains(string(body), "a=group") || strings.Contains(string(body), "a=mid") {
		t.Errorf("answer to an active offer without mid:\n%s", body)
	}

	// Our own offer (a call we place): actpass, a mid in a BUNDLE group,
	// before the answer chooses.
	offerer, _ := mustICE(t)
	body = buildOffer(9, 1, netip.MustParseAddr("127.0.0.1"), port, offerer, false)
	if !strings.Contains(string(body), "m=audio "+itoa(port)+" UDP/TLS/RTP/SAVPF 0 8 101\r\n") || !strings.Contains(string(body), "a=setup:actpass\r\n") ||
		!strings.Contains(string(body), "a=mid:0\r\n") || !strings.Contains(string(body), "a=group:BUNDLE 0\r\n") {
		t.Errorf("our DTLS-SRTP offer:\n%s", body)
	}
	// With Opus (the operator placing the call takes it): Opus first, and
	// telephone-event at its clock rate beside the one at G.711's.
	body = buildOffer(9, 1, netip.MustParseAddr("127.0.0.1"), port, offerer, true)
	if !strings.Contains(string(body), "m=audio "+itoa(port)+" UDP/TLS/RTP/SAVPF 111 0 8 110 101\r\n") ||
		!strings.Contains(string(body), "a=rtpmap:111 opus/48000/2\r\n") || !strings.Contains(string(body), "a=rtpmap:110 telephone-event/48000\r\n") ||
		!strings.Contains(string(body), "a=rtpmap:101 telephone-event/8000\r\n") {
		t.Errorf("our DTLS-SRTP offer with Opus:\n%s", body)
	}
	if o, err := parseOffer(body); err != nil || o.Codec != (sb.Codec{Name: "opus", PayloadType: 111, ClockRate: 48000, DTMFType: 110}) {
		t.Errorf("our Opus offer read back: %+v, %v", o, err)
	}
	ans, err := parseOffer([]byte(strings.Replace(sipOffer, "a=setup:active", "a=setup:actpass", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := offerer.answered(ans.ICE); err == nil {
		t.Error("an answer with a=setup:actpass was taken")
	}
	ans.ICE.Setup = setupPassive
	if err := offerer.answered(ans.ICE); err != nil || offerer.role != setupActive {
		t.Errorf("a passive answer: %v, our role %q; want active", err, offerer.role)
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

// A later offer or answer on the association keeps it: a fingerprint in
// common, a role that fits ours (actpass, or the other one); new ICE
// credentials in an offer restart ICE on it (in an answer they are
// refused: we never asked for a restart). Another certificate, or a role that
// would make both ends clients, is refused: the call stays as it was.
func TestDTLSLaterDescriptions(t *testing.T) {
	tr, _ := mustICE(t)
	o, err := parseOffer([]byte(webrtcOffer()))
	if err != nil {
		t.Fatal(err)
	}
	tr.answering(o.ICE, o.Proto) // we are active
	for _, c := range []struct {
		name, sdp, why string
	}{
		{"the same", webrtcOffer(), ""},
		{"passive", strings.Replace(webrtcOffer(), "a=setup:actpass", "a=setup:passive", 1), ""},
		{"ICE restart", strings.Replace(webrtcOffer(), testPwd, "y9cml/YzichV2+XlhiMu8g", 1), ""},
		{"another certificate", strings.Replace(webrtcOffer(), "D2:FA", "D3:FA", 1), "new DTLS association"},
		{"both clients", strings.Replace(webrtcOffer(), "a=setup:actpass", "a=setup:active", 1), "both ends DTLS clients"},
		{"restart in an answer", strings.Replace(webrtcOffer(), testPwd, "Kq2b8v/5tRwXmZ0pLc3d9A", 1), "cannot restart ICE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			later, err := parseOffer([]byte(c.sdp))
			if err != nil {
				t.Fatal(err)
			}
			ufrag := tr.ufrag
			err = tr.later(later.ICE, c.name != "restart in an answer")
			if c.why == "" && err != nil || c.why != "" && (err == nil || !strings.Contains(err.Error(), c.why)) {
				t.Errorf("err %v, want %q", err, c.why)
			}
			if restarted := tr.ufrag != ufrag; restarted != (c.name == "ICE restart") {
				t.Errorf("our credentials changed: %v", restarted)
			}
		})
	}
}

// A DTLS-SRTP call over SIP with a real WebRTC stack on the far end (the
// test phone's pion PeerConnection): answered, keyed, audio both ways;
// a hold by re-INVITE is answered with the same credentials, certificate
// and role; an ICE restart by re-INVITE (the phone's WebRTC stack's own)
// is answered with new credentials of ours, the same certificate and
// role, and audio goes on over the same DTLS association.
func TestDTLSCallOverSIP(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	opus := sb.Codec{Name: "opus", PayloadType: 111, ClockRate: 48000}
	phone := mustPhone(t, siptest.Options{Transport: "tcp", Codec: opus, DTLS: true})
	in, call := answer(t, ts, phone, "tcp")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := call.WaitMedia(ctx); err != nil {
		t.Fatal(err)
	}
	if in.SRTP != "DTLS-SRTP" || in.Leg.Media().Codec().Name != "opus" {
		t.Errorf("dispatched SRTP %q codec %+v", in.SRTP, in.Leg.Media().Codec())
	}
	exchange(t, ctx, in, call)

	// A stranger spraying the leg's port (RTP, a DTLS ClientHello, a STUN
	// binding request without the credentials) gets nothing through:
	// only the pair ICE selected carries media, and only SRTP under the
	// handshake's keys reaches the leg.
	var foreign, fromPhone atomic.Int32
	in.Leg.Media().SetSink(func(pkt []byte) {
		if h, ok := media.ParseHeader(pkt); ok && h.SSRC == 0xbadbad {
			foreign.Add(1)
		} else {
			fromPhone.Add(1)
		}
	})
	stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	to := in.Leg.(*leg).port.LocalAddr()
	for seq := range uint16(20) {
		for _, pkt := range [][]byte{
			append(media.AppendHeader(nil, false, 111, seq, uint32(seq)*960, 0xbadbad), 0x48, 1, 2, 3),
			{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1},                           // a DTLS handshake record
			{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, // a STUN binding request
		} {
			if _, err := stranger.WriteToUDPAddrPort(pkt, to); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The phone's packets come to the socket after the stranger's and are
	// read after them.
	for fromPhone.Load() < 5 {
		if ctx.Err() != nil {
			t.Fatal("the phone's media stopped after the stranger's")
		}
		if err := call.SendRTP([]byte{0x48, 1, 2, 3}, false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := foreign.Load(); n != 0 {
		t.Errorf("%d of the stranger's packets reached the leg", n)
	}

	answerOf := func(res []byte) *iceParams {
		o, err := parseOffer(res)
		if err != nil {
			t.Fatalf("answer: %v\n%s", err, res)
		}
		return o.ICE
	}
	invited := answerOf(inviteAnswer(t, call))
	res, err := call.Reinvite(ctx, call.SDP("sendonly"), nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("hold: %v %v", err, res)
	}
	held := answerOf(res.Body())
	if held.Ufrag != invited.Ufrag || held.Pwd != invited.Pwd || held.Fingerprints[0] != invited.Fingerprints[0] || held.Setup != setupActive ||
		!strings.Contains(string(res.Body()), "a=recvonly") {
		t.Errorf("the hold's answer %+v does not keep the association %+v:\n%s", held, invited, res.Body())
	}
	if res, err = call.Reinvite(ctx, call.SDP("sendrecv"), nil); err != nil || res.StatusCode != 200 {
		t.Fatalf("resume: %v %v", err, res)
	}
	body, err := call.RestartICE(ctx)
	if err != nil {
		t.Fatalf("ICE restart: %v\n%s", err, call.AnswerSDP())
	}
	restarted := answerOf(body)
	if restarted.Ufrag == invited.Ufrag || restarted.Pwd == invited.Pwd || restarted.Fingerprints[0] != invited.Fingerprints[0] || restarted.Setup != setupActive {
		t.Errorf("the ICE restart's answer %+v, want new credentials on the association %+v", restarted, invited)
	}
	exchange(t, ctx, in, call)

	// Our hold and resume: our re-INVITEs offer the same credentials,
	// certificate and role, and the phone's WebRTC stack answers on the
	// association it has.
	for _, held := range []bool{true, false} {
		if err := in.Leg.Hold(ctx, held); err != nil {
			t.Fatalf("hold %v: %v", held, err)
		}
	}
	if got := call.MediaState(); got != "connected" {
		t.Errorf("after our hold and resume the phone's PeerConnection is %s", got)
	}
	exchange(t, ctx, in, call)
}

// An ICE-lite caller (a=ice-lite: it answers checks, never makes them)
// gets a controlling agent from us, and the call is keyed and carries
// audio both ways.
func TestDTLSCallFromICELite(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	phone := mustPhone(t, siptest.Options{Transport: "tcp", Codec: sb.Codec{Name: "opus", PayloadType: 111, ClockRate: 48000}, DTLS: true, ICELite: true})
	in, call := answer(t, ts, phone, "tcp")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if !strings.Contains(string(call.SDP("sendrecv")), "a=ice-lite") {
		t.Fatal("the phone's offer does not say a=ice-lite")
	}
	if err := call.WaitMedia(ctx); err != nil {
		t.Fatal(err)
	}
	exchange(t, ctx, in, call)
}

// A DTLS-SRTP caller whose media never comes (no ICE, so no handshake)
// is reported at the media timeout as a media path that was never set
// up, not as RTP that stopped.
func TestDTLSNeverUpIsMediaFailure(t *testing.T) {
	ts := mustServer(t, nil, Config{MediaTimeout: time.Second})
	phone := mustPhone(t, siptest.Options{Transport: "tcp", DTLS: true, DTLSSilent: true})
	in, _ := answer(t, ts, phone, "tcp")
	ev := nextEvent(t, in.Leg, sb.LegMediaFailed)
	if !strings.Contains(ev.Reason, "DTLS-SRTP not set up") {
		t.Errorf("reason %q", ev.Reason)
	}
}

// inviteAnswer is the service's answer to the phone's INVITE.
func inviteAnswer(t *testing.T, call *siptest.Call) []byte {
	t.Helper()
	body := call.AnswerSDP()
	if len(body) == 0 {
		t.Fatal("no SDP answer")
	}
	return body
}

// exchange sends frames each way until some arrive: the leg's SRTP is
// keyed on both sides.
func exchange(t *testing.T, ctx context.Context, in *sb.InboundCall, call *siptest.Call) {
	t.Helper()
	var toLeg, toPhone atomic.Int32
	in.Leg.Media().SetSink(func([]byte) { toLeg.Add(1) })
	call.SetSink(func([]byte) { toPhone.Add(1) })
	pkt := media.AppendHeader(nil, false, 111, 1, 960, 0x5eed)
	for seq := uint16(1); toLeg.Load() < 5 || toPhone.Load() < 5; seq++ {
		if ctx.Err() != nil {
			t.Fatalf("media did not cross: %d to the leg, %d to the phone", toLeg.Load(), toPhone.Load())
		}
		if err := call.SendRTP([]byte{0x48, 1, 2, 3}, false); err != nil {
			t.Fatal(err)
		}
		pkt = media.AppendHeader(pkt[:0], false, 111, seq, uint32(seq)*960, 0x5eed)
		if err := in.Leg.Media().WriteRTP(append(pkt, 0x48, 4, 5, 6)); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Closing a DTLS-SRTP leg ends every goroutine its ICE agent, DTLS
// connection and read loops started: none of ours or pion's ICE and DTLS
// stays behind once the leg is closed (awaited: they end as their
// sockets close).
func TestDTLSLegLeavesNoGoroutine(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	phone := mustPhone(t, siptest.Options{Transport: "tcp", Codec: sb.Codec{Name: "opus", PayloadType: 111, ClockRate: 48000}, DTLS: true})
	in, call := answer(t, ts, phone, "tcp")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := call.WaitMedia(ctx); err != nil {
		t.Fatal(err)
	}
	exchange(t, ctx, in, call)
	call.Close()
	phone.Close() // the phone's own pion goroutines go too
	in.Leg.Close()
	ours := func() string {
		buf := make([]byte, 1<<20)
		var left []string
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "pion/ice") || strings.Contains(g, "pion/dtls") || strings.Contains(g, "(*iceTransport)") {
				left = append(left, g)
			}
		}
		return strings.Join(left, "\n\n")
	}
	for ours() != "" {
		if ctx.Err() != nil {
			t.Fatalf("goroutines left after the leg closed:\n%s", ours())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
