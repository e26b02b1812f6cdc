package sip

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// isupIAM is an ISUP Initial Address Message as a SIP-I gateway
// encapsulates it (RFC 3204: from the message type code on): binary, with
// a NUL and bytes above 0x7f.
const isupIAM = "\x01\x00\x60\x01\x0a\x00\x02\x09\x07\x03\x90\x21\x43\x65\x87\x09\x0a\x07\x03\x13\x09\x21\x43\x65\x00"

// multipartBody joins parts (each its headers, a blank line and its content)
// with boundary, as RFC 2046 §5.1.1 writes them.
func multipartBody(boundary string, parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString("--" + boundary + "\r\n" + p + "\r\n")
	}
	b.WriteString("--" + boundary + "--\r\n")
	return b.String()
}

// sipI is a SIP-I body: the SDP, then the ISUP IAM with the given
// Content-Disposition ("" for none).
func sipI(sdp, disposition string) string {
	isup := "Content-Type: application/ISUP; version=itu-t92+; base=itu-t92+\r\nContent-Transfer-Encoding: binary\r\n"
	if disposition != "" {
		isup += "Content-Disposition: " + disposition + "\r\n"
	}
	return multipartBody("unique-boundary-1", "Content-Type: application/sdp\r\n\r\n"+sdp, isup+"\r\n"+isupIAM)
}

func bodiedRequest(contentType, disposition, body string) *sip.Request {
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "2000", Host: "127.0.0.1"})
	if contentType != "" {
		req.AppendHeader(sip.NewHeader("Content-Type", contentType))
	}
	if disposition != "" {
		req.AppendHeader(sip.NewHeader("Content-Disposition", disposition))
	}
	req.SetBody([]byte(body))
	return req
}

// What sessionSDP takes from a body, and when it refuses the message: RFC
// 5621 and RFC 3261 §20.11 (a part without handling=optional must be
// understood, whatever its disposition).
func TestSessionSDP(t *testing.T) {
	other := strings.Replace(sampleOffer, "o=pbx 1 1", "o=pbx 1 2", 1)
	for _, c := range []struct {
		name, contentType, disposition, body string
		want                                 string // the SDP taken; "" for none
		code                                 int    // the refusal's code
	}{
		{"SDP", "application/sdp", "", sampleOffer, sampleOffer, 0},
		{"SDP with parameters and capitals", "Application/SDP; charset=utf-8", "session", sampleOffer, sampleOffer, 0},
		{"no body", "", "", "", "", 0},
		{"SIP-I, the ISUP optional", "multipart/mixed;boundary=unique-boundary-1", "", sipI(sampleOffer, "signal;handling=optional"), sampleOffer, 0},
		{"SIP-I, the ISUP optional, spaced", "multipart/mixed; boundary=\"unique-boundary-1\"", "", sipI(sampleOffer, "signal; handling=Optional"), sampleOffer, 0},
		{"SIP-I, the ISUP required", "multipart/mixed;boundary=unique-boundary-1", "", sipI(sampleOffer, "signal;handling=required"), "", 415},
		{"SIP-I, the ISUP's handling left out (required)", "multipart/mixed;boundary=unique-boundary-1", "", sipI(sampleOffer, "signal"), "", 415},
		{"SIP-I, no disposition at all (render, required)", "multipart/mixed;boundary=unique-boundary-1", "", sipI(sampleOffer, ""), "", 415},
		{"an unknown disposition, optional", "multipart/mixed;boundary=unique-boundary-1", "", sipI(sampleOffer, "x-carrier;handling=optional"), sampleOffer, 0},
		{"the ISUP alone, optional: no SDP", "multipart/mixed;boundary=b", "",
			multipartBody("b", "Content-Type: application/ISUP;version=itu-t92+\r\nContent-Disposition: signal;handling=optional\r\n\r\n"+isupIAM), "", 0},
		{"SDP with no line break before the boundary", "multipart/mixed;boundary=b", "", "--b\r\nContent-Type: application/sdp\r\n\r\n" + sampleOffer + "--b--\r\n", sampleOffer, 0},
		{"two SDPs", "multipart/mixed;boundary=b", "", multipartBody("b", "Content-Type: application/sdp\r\n\r\n"+sampleOffer, "Content-Type: application/sdp\r\n\r\n"+other), "", 400},
		{"SDP in base64", "multipart/mixed;boundary=b", "", multipartBody("b", "Content-Type: application/sdp\r\nContent-Transfer-Encoding: base64\r\n\r\ndj0w"), "", 415},
		{"an early-session SDP (RFC 3959), required", "multipart/mixed;boundary=b", "",
			multipartBody("b", "Content-Type: application/sdp\r\n\r\n"+sampleOffer, "Content-Type: application/sdp\r\nContent-Disposition: early-session\r\n\r\n"+other), "", 415},
		{"alternative: text, then SDP", "multipart/alternative;boundary=b", "",
			multipartBody("b", "Content-Type: text/plain\r\n\r\nA call.", "Content-Type: application/sdp\r\n\r\n"+sampleOffer), sampleOffer, 0},
		{"alternative: the last SDP, the preferred", "multipart/alternative;boundary=b", "",
			multipartBody("b", "Content-Type: application/sdp\r\n\r\n"+sampleOffer, "Content-Type: application/sdp\r\n\r\n"+other), other, 0},
		{"alternative without SDP", "multipart/alternative;boundary=b", "", multipartBody("b", "Content-Type: text/plain\r\n\r\nA call."), "", 415},
		{"alternative without SDP, optional", "multipart/alternative;boundary=b", "render;handling=optional", multipartBody("b", "Content-Type: text/plain\r\n\r\nA call."), "", 0},
		{"SIP-I inside an alternative", "multipart/alternative;boundary=outer", "",
			multipartBody("outer", "Content-Type: text/plain\r\n\r\nA call.", "Content-Type: multipart/mixed;boundary=unique-boundary-1\r\n\r\n"+sipI(sampleOffer, "signal;handling=optional")), sampleOffer, 0},
		{"multipart without a boundary", "multipart/mixed", "", sipI(sampleOffer, ""), "", 400},
		{"multipart cut short", "multipart/mixed;boundary=b", "", "--b\r\nContent-Type: application/sdp\r\n\r\n" + sampleOffer, "", 400},
		{"multipart without parts", "multipart/mixed;boundary=b", "", "--b--\r\n", "", 400},
		{"a body of another type", "text/plain", "", "hello", "", 415},
		{"a body of another type, optional", "text/plain", "render;handling=optional", "hello", "", 0},
		{"a body without Content-Type", "", "", sampleOffer, "", 415},
		{"an unreadable Content-Type", "multipart/;boundary=b", "", "x", "", 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, be := sessionSDP(bodiedRequest(c.contentType, c.disposition, c.body))
			switch {
			case c.code != 0 && (be == nil || be.code != c.code):
				t.Fatalf("got %q, %v; want a %d", got, be, c.code)
			case c.code == 0 && be != nil:
				t.Fatalf("refused: %d %s", be.code, be.reason)
			case c.code == 0 && !bytes.Equal(got, []byte(c.want)):
				t.Fatalf("got %q, want %q", got, c.want)
			case c.code == 0 && c.want == "" && got != nil:
				t.Fatalf("got %q, want nothing", got)
			}
		})
	}
	// A 415 says what we take (RFC 3261 §21.4.13).
	req := bodiedRequest("text/plain", "", "hello")
	req.AppendHeader(sip.NewHeader("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx"))
	_, be := sessionSDP(req)
	if res := be.response(req); res.StatusCode != 415 || headerOf(res, "Accept") != "application/sdp, multipart/mixed, multipart/alternative" {
		t.Errorf("the 415: %d, Accept %q", res.StatusCode, headerOf(res, "Accept"))
	}
}

func FuzzSessionSDP(f *testing.F) {
	f.Add("application/sdp", "", []byte(sampleOffer))
	f.Add("multipart/mixed;boundary=unique-boundary-1", "", []byte(sipI(sampleOffer, "signal;handling=optional")))
	f.Add("multipart/alternative;boundary=b", "render;handling=optional", []byte(multipartBody("b", "Content-Type: text/plain\r\n\r\nx", "Content-Type: application/sdp\r\n\r\n"+sampleOffer)))
	f.Fuzz(func(t *testing.T, contentType, disposition string, body []byte) {
		got, be := sessionSDP(bodiedRequest(contentType, disposition, string(body)))
		if be != nil && got != nil {
			t.Fatalf("both an SDP and a refusal: %q, %v", got, be)
		}
		if be != nil && be.code != 400 && be.code != 415 {
			t.Fatalf("refused with %d", be.code)
		}
		if got != nil && !bytes.Contains(body, bytes.TrimRight(got, "\r\n")) {
			t.Fatalf("an SDP that is not in the body: %q", got)
		}
	})
}

// A carrier's SIP-I INVITE (RFC 5621, RFC 3204): multipart/mixed, the SDP
// beside the ISUP IAM it was made from, marked handling=optional. The call
// is taken with the SDP's codec and address; the ISUP is passed over. Had
// the carrier marked its ISUP required (or left handling out, which means
// required), the INVITE is refused with 415 listing what we take: the
// carrier may send it again without the ISUP. A multipart/alternative
// offers the SDP among other renderings of the call.
func TestMultipartInvite(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	ua := mustRawUA(t, ts.udp)
	ruri := "sip:2000@" + ts.udp
	// invite returns the INVITE's first answer: 100 for a call taken; for
	// one refused, the refusal (after sipgo's own 100 on a slow machine).
	invite := func(contentType, body string, taken bool) (int, map[string]string, string) {
		t.Helper()
		callID := fmt.Sprintf("multipart-%d@test", time.Now().UnixNano())
		code, h := ua.inviteWith(ruri, callID, contentType, body)
		for code == 100 && !taken {
			code, h = ua.next(t, callID)
		}
		return code, h, callID
	}

	code, _, callID := invite("multipart/mixed;boundary=unique-boundary-1", sipI(sampleOffer, "signal;handling=optional"), true)
	if code != 100 {
		t.Fatalf("a SIP-I INVITE was answered %d", code)
	}
	in := nextCall(t, ts)
	if in.SIPCallID != callID {
		t.Fatalf("call %q dispatched", in.SIPCallID)
	}
	if c := in.Leg.Media().Codec(); c.Name != "PCMA" || c.DTMFType != 101 {
		t.Errorf("codec %+v, want the SDP part's first, PCMA, with telephone-event 101", c)
	}
	if got := in.Leg.Media().(*rtpPort).remote.Load(); got == nil || *got != netip.MustParseAddrPort("192.0.2.10:40000") {
		t.Errorf("RTP goes to %v, want the SDP part's 192.0.2.10:40000", got)
	}
	in.Leg.Close()

	for _, disposition := range []string{"signal;handling=required", "signal"} {
		code, h, _ := invite("multipart/mixed;boundary=unique-boundary-2", strings.ReplaceAll(sipI(sampleOffer, disposition), "unique-boundary-1", "unique-boundary-2"), false)
		if code != 415 || !strings.Contains(h["accept"], "application/sdp") || !strings.Contains(h["accept"], "multipart/mixed") {
			t.Errorf("ISUP with %q: %d, Accept %q; want 415 listing application/sdp and multipart/mixed", disposition, code, h["accept"])
		}
	}

	code, _, callID = invite("multipart/alternative;boundary=alt", multipartBody("alt", "Content-Type: text/plain\r\n\r\nA call from the PSTN.", "Content-Type: application/sdp\r\n\r\n"+sampleOffer), true)
	if code != 100 {
		t.Fatalf("a multipart/alternative INVITE was answered %d", code)
	}
	if in = nextCall(t, ts); in.SIPCallID != callID || in.Leg.Media().Codec().Name != "PCMA" {
		t.Errorf("the multipart/alternative call: %q, %+v", in.SIPCallID, in.Leg.Media().Codec())
	}
}

// Inside the call, a carrier's re-INVITE and UPDATE come as SIP-I too (the
// ISUP of a hold, a resume): their SDP part is the offer. One whose ISUP
// must be understood is refused with 415, and the call goes on.
func TestMultipartInDialog(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	phone := mustPhone(t, siptest.Options{})
	in, call := answer(t, ts, phone, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sipIType := sip.NewHeader("Content-Type", "multipart/mixed;boundary=unique-boundary-1")
	res, err := call.Update(ctx, []byte(sipI(string(call.SDP("sendonly")), "signal;handling=optional")), sipIType)
	if err != nil || res.StatusCode != 200 || !strings.Contains(string(res.Body()), "a=recvonly") {
		t.Fatalf("a SIP-I UPDATE holding: %v %v", res, err)
	}
	nextEvent(t, in.Leg, sb.LegHeld)
	res, err = call.Reinvite(ctx, []byte(sipI(string(call.SDP("sendrecv")), "signal;handling=optional")), nil, sipIType)
	if err != nil || res.StatusCode != 200 || !strings.Contains(string(res.Body()), "a=sendrecv") {
		t.Fatalf("a SIP-I re-INVITE resuming: %v %v", res, err)
	}
	nextEvent(t, in.Leg, sb.LegResumed)
	res, err = call.Update(ctx, []byte(sipI(string(call.SDP("sendonly")), "signal;handling=required")), sipIType)
	if err != nil || res.StatusCode != 415 || headerOf(res, "Accept") != accepted {
		t.Errorf("an UPDATE whose ISUP is required: %v %v, want 415 with Accept: %s", res, err, accepted)
	}
	noEvent(t, in.Leg, 50*time.Millisecond)
}

// The answer to our late offer may come in a multipart ACK.
func TestLateOfferAnsweredInAMultipartAck(t *testing.T) {
	answer := strings.Replace(sampleOffer, "RTP/AVP 18 8 0 101", "RTP/AVP 8 101", 1)
	_, in, err := lateOfferWith(t, "multipart/mixed;boundary=unique-boundary-1", sipI(answer, "signal;handling=optional"))
	if err != nil {
		t.Fatalf("answer: %v", err)
	}
	if c := in.Leg.Media().Codec(); c.Name != "PCMA" {
		t.Errorf("codec %s, want the ACK's SDP part's PCMA", c.Name)
	}
}

// A carrier's 183 and 200 to a call we place may be SIP-I as well: the
// early media and the answer are their SDP parts.
func TestDialMultipartAnswer(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	early := make(chan struct{}) // the 183 was taken: the 200 may follow
	c := mustCarrier(t, func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		for _, code := range []int{sip.StatusSessionInProgress, sip.StatusOK} {
			res := sip.NewResponseFromRequest(req, code, "", []byte(sipI(string(c.sdp()), "signal;handling=optional")))
			res.AppendHeader(sip.NewHeader("Content-Type", "multipart/mixed;boundary=unique-boundary-1"))
			tx.Respond(res)
			<-early
		}
	})
	l, err := ts.Dial(context.Background(), route(c), "+15550001111")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ev := nextLegEvent(t, l)
	close(early)
	if ev.Kind != sb.LegEarlyMedia {
		t.Fatalf("event %v (%s), want early media", ev.Kind, ev.Reason)
	}
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegAnswered {
		t.Fatalf("event %v (%s), want answered", ev.Kind, ev.Reason)
	}
	if codec := l.Media().Codec(); codec.Name != "PCMA" {
		t.Errorf("codec %s, want the SDP part's PCMA", codec.Name)
	}
}
