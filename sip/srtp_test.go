package sip

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// key30 is a 30-byte AES_CM_128 master key and salt, base64.
var key30 = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 30))

func savpOffer(proto string, crypto ...string) string {
	var b strings.Builder
	b.WriteString("v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n")
	fmt.Fprintf(&b, "m=audio 5004 %s 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n", proto)
	for _, c := range crypto {
		b.WriteString("a=crypto:" + c + "\r\n")
	}
	b.WriteString("a=sendrecv\r\n")
	return b.String()
}

// srtpAnswer is our answer to an SDES offer, with a key of our own.
func srtpAnswer(t *testing.T, o *offer) string {
	t.Helper()
	sec, err := newSRTPSession(*o.Crypto)
	if err != nil {
		t.Fatal(err)
	}
	return string(buildAnswer(1, 1, netip.MustParseAddr("198.51.100.1"), 10000, o.Codec, "sendrecv", sec, mlines{}))
}

// An SDES offer: the first crypto line we can use is taken; lines we
// cannot use (unknown suite, MKI, session parameters, short keys) are
// passed over; an SRTP offer with none, or a transport we do not speak,
// is refused as not acceptable; crypto lines on plain RTP are ignored.
func TestParseOfferSRTP(t *testing.T) {
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	cases := []struct {
		name  string
		sdp   string
		suite string // "" for plain RTP
		tag   int
		nope  string // part of the refusal
	}{
		{"AES_CM_128_HMAC_SHA1_80", savpOffer("RTP/SAVP", "1 AES_CM_128_HMAC_SHA1_80 inline:"+key30), "AES_CM_128_HMAC_SHA1_80", 1, ""},
		{"lifetime is fine", savpOffer("RTP/SAVP", "3 AES_CM_128_HMAC_SHA1_32 inline:"+key30+"|2^31"), "AES_CM_128_HMAC_SHA1_32", 3, ""},
		{"unusable lines passed over", savpOffer("RTP/SAVP",
			"1 F8_128_HMAC_SHA1_80 inline:"+key30,
			"2 AES_CM_128_HMAC_SHA1_80 inline:"+key30+"|2^20|1:4",
			"3 AES_CM_128_HMAC_SHA1_80 inline:"+key30+" UNENCRYPTED_SRTP",
			"4 AES_CM_128_HMAC_SHA1_80 inline:"+short,
			"5 AES_CM_128_HMAC_SHA1_80 inline:"+key30), "AES_CM_128_HMAC_SHA1_80", 5, ""},
		{"SAVPF", savpOffer("RTP/SAVPF", "1 AES_CM_128_HMAC_SHA1_80 inline:"+key30), "AES_CM_128_HMAC_SHA1_80", 1, ""},
		{"crypto on plain RTP is ignored", savpOffer("RTP/AVP", "1 AES_CM_128_HMAC_SHA1_80 inline:"+key30), "", 0, ""},
		{"SRTP without crypto", savpOffer("RTP/SAVP"), "", 0, "without a crypto attribute"},
		{"nothing usable", savpOffer("RTP/SAVP", "1 F8_128_HMAC_SHA1_80 inline:"+key30), "", 0, "F8_128_HMAC_SHA1_80 is not supported"},
		{"DTLS-SRTP without ICE", savpOffer("UDP/TLS/RTP/SAVP"), "", 0, "a=ice-ufrag (ICE is required)"},
		{"another transport", savpOffer("TCP/TLS/RTP/SAVP"), "", 0, "TCP/TLS/RTP/SAVP is not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := parseOffer([]byte(c.sdp))
			if c.nope != "" {
				if !notAcceptable(err) || !strings.Contains(err.Error(), c.nope) {
					t.Fatalf("err %v, want not acceptable: %s", err, c.nope)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case c.suite == "" && o.Crypto != nil:
				t.Errorf("plain offer read as SRTP %+v", o.Crypto)
			case c.suite != "" && (o.Crypto == nil || o.Crypto.Suite != c.suite || o.Crypto.Tag != c.tag || len(o.Crypto.KeySalt) != 30):
				t.Errorf("crypto %+v, want %s tag %d with a 30-byte key", o.Crypto, c.suite, c.tag)
			}
		})
	}
}

// The answer to an SDES offer is RTP/SAVP with one crypto line: the same
// tag and suite, and a key of our own, not the caller's.
func TestAnswerSRTP(t *testing.T) {
	o, err := parseOffer([]byte(savpOffer("RTP/SAVP", "7 AES_CM_128_HMAC_SHA1_80 inline:"+key30)))
	if err != nil {
		t.Fatal(err)
	}
	ans := srtpAnswer(t, o)
	a, err := parseOffer([]byte(ans))
	if err != nil {
		t.Fatalf("our answer does not parse: %v\n%s", err, ans)
	}
	if !strings.Contains(ans, "m=audio 10000 RTP/SAVP 0 101") || strings.Count(ans, "a=crypto:") != 1 {
		t.Errorf("answer:\n%s", ans)
	}
	if a.Crypto == nil || a.Crypto.Tag != 7 || a.Crypto.Suite != "AES_CM_128_HMAC_SHA1_80" || bytes.Equal(a.Crypto.KeySalt, o.Crypto.KeySalt) {
		t.Errorf("answer's crypto %+v: want tag 7, the same suite, our own key", a.Crypto)
	}
}

// A trunk calling with SRTP: the call is answered with SRTP, audio both
// ways is encrypted with each side's key and arrives intact; plain RTP
// from the caller's own address never reaches call control; a re-INVITE
// (hold, resume) keeps the keys.
func TestSRTPCall(t *testing.T) {
	for _, suite := range []string{"AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"} {
		t.Run(suite, func(t *testing.T) {
			ts := mustServer(t, nil, Config{})
			phone := mustPhone(t, siptest.Options{Codec: sb.PCMU, SRTP: suite})
			in, call := answer(t, ts, phone, "udp")
			if in.SRTP != suite {
				t.Errorf("dispatched with SRTP %q, want %s", in.SRTP, suite)
			}

			got := legSink(in.Leg)
			frame := media.PatternFrame(make([]byte, 160), 7, time.Now())
			if err := call.SendRTP(frame, true); err != nil {
				t.Fatal(err)
			}
			got.expect(t, "first frame", frame)

			// Plain RTP from the caller's own address is dropped.
			forged := append(media.AppendHeader(nil, false, 0, 999, 999*160, 1234), bytes.Repeat([]byte{0x55}, 160)...)
			if err := call.WriteUnprotected(forged); err != nil {
				t.Fatal(err)
			}
			select {
			case pkt := <-got:
				t.Fatalf("plain RTP reached the leg of an SRTP call: %x", pkt)
			case <-time.After(300 * time.Millisecond):
			}
			if n, d := in.Leg.Media().(*rtpPort).forged.Load(), ts.RTPDrops(); n != 1 || d["unauthenticated"] != 1 || d["foreign_source"] != 0 {
				t.Errorf("%d packets counted as failing SRTP (server: %v), want 1 unauthenticated", n, d)
			}

			sendToPhone(t, in.Leg, call, 0, frame)

			holdAndResume(t, in.Leg, call)
			next := media.PatternFrame(make([]byte, 160), 8, time.Now())
			if err := call.SendRTP(next, false); err != nil {
				t.Fatal(err)
			}
			got.expect(t, "after resume", next)

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := call.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			nextEvent(t, in.Leg, sb.LegHungUp)
		})
	}
}

// An INVITE offering only SRTP suites we do not take is refused with 488
// and a Warning saying why, not answered in the clear.
func TestSRTPWithoutCommonSuiteIsRefused(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	conn, err := net.Dial("udp", ts.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	body := savpOffer("RTP/SAVP", "1 F8_128_HMAC_SHA1_80 inline:"+key30)
	fmt.Fprintf(conn, "INVITE sip:2000@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKsrtp1\r\nFrom: <sip:3000@%s>;tag=s1\r\n"+
		"To: <sip:2000@%s>\r\nCall-ID: srtp-refused\r\nCSeq: 1 INVITE\r\nContact: <sip:3000@%s>\r\nMax-Forwards: 70\r\n"+
		"Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", ts.udp, local, local, ts.udp, local, len(body), body)
	buf := make([]byte, 8192)
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn.SetReadDeadline(deadline)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no final answer: %v", err)
		}
		res := string(buf[:n])
		if strings.HasPrefix(res, "SIP/2.0 100") {
			continue
		}
		if !strings.HasPrefix(res, "SIP/2.0 488") || !strings.Contains(res, "F8_128_HMAC_SHA1_80 is not supported") {
			t.Fatalf("answer:\n%s", res)
		}
		break
	}
	select {
	case c := <-ts.calls:
		t.Fatalf("a call was dispatched: %+v", c)
	case r := <-ts.refused:
		if r.Code != 488 || r.Stage != sb.StageOffer {
			t.Errorf("refusal recorded as %d at %q", r.Code, r.Stage)
		}
	case <-time.After(3 * time.Second):
		t.Error("the refusal was not recorded")
	}
}

// BenchmarkSRTPRoundTrip is the trunk leg's SRTP cost per 20 ms G.711
// packet: protect one (as WriteRTP does) and authenticate and decrypt one
// (as the read loop does).
func BenchmarkSRTPRoundTrip(b *testing.B) {
	o, err := parseOffer([]byte(savpOffer("RTP/SAVP", "1 AES_CM_128_HMAC_SHA1_80 inline:"+key30)))
	if err != nil {
		b.Fatal(err)
	}
	ours, err := newSRTPSession(*o.Crypto)
	if err != nil {
		b.Fatal(err)
	}
	theirs, err := newSRTPSession(ours.local) // keyed the other way round
	if err != nil {
		b.Fatal(err)
	}
	if err := theirs.setRemote(ours.local); err != nil {
		b.Fatal(err)
	}
	if err := ours.setRemote(theirs.local); err != nil {
		b.Fatal(err)
	}
	pkt := append(media.AppendHeader(nil, false, 0, 0, 0, 42), make([]byte, 160)...)
	plain := make([]byte, 0, 1500)
	wire := make([]byte, 0, 1500)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		pkt[2], pkt[3] = byte(i>>8), byte(i)
		if err := theirs.encrypt(pkt, func(p []byte) error { wire = append(wire[:0], p...); return nil }); err != nil {
			b.Fatal(err)
		}
		if _, err := ours.decrypt(plain[:0], wire); err != nil {
			b.Fatal(err)
		}
	}
}

// Opus is taken where the caller prefers it and the stream is SRTP, with
// telephone-event at its clock rate; in the clear it is passed over for
// G.711, or refused when nothing else is offered. Our answer names Opus
// the way RFC 7587 writes it.
func TestParseOfferOpus(t *testing.T) {
	offer := func(proto, formats string, rtpmaps ...string) []byte {
		var b strings.Builder
		b.WriteString("v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n")
		fmt.Fprintf(&b, "m=audio 5004 %s %s\r\n", proto, formats)
		for _, m := range rtpmaps {
			b.WriteString("a=rtpmap:" + m + "\r\n")
		}
		if proto == "RTP/SAVP" {
			b.WriteString("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "\r\n")
		}
		return []byte(b.String())
	}
	maps := []string{"109 opus/48000/2", "0 PCMU/8000", "101 telephone-event/8000", "110 telephone-event/48000"}
	cases := []struct {
		name, proto, formats string
		want                 sb.Codec // Name "" for refused
	}{
		{"Opus first over SRTP", "RTP/SAVP", "109 0 101 110", sb.Codec{Name: "opus", PayloadType: 109, ClockRate: 48000, DTMFType: 110}},
		{"G.711 first over SRTP", "RTP/SAVP", "0 109 101 110", sb.Codec{Name: "PCMU", PayloadType: 0, ClockRate: 8000, DTMFType: 101}},
		{"Opus in the clear passed over", "RTP/AVP", "109 0 101 110", sb.Codec{Name: "PCMU", PayloadType: 0, ClockRate: 8000, DTMFType: 101}},
		{"only Opus in the clear", "RTP/AVP", "109 110", sb.Codec{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := parseOffer(offer(c.proto, c.formats, maps...))
			if c.want.Name == "" {
				if !notAcceptable(err) || !strings.Contains(err.Error(), "Opus over SRTP") {
					t.Fatalf("err %v, want not acceptable, saying Opus needs SRTP", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Codec != c.want {
				t.Errorf("codec %+v, want %+v", o.Codec, c.want)
			}
		})
	}
	o, err := parseOffer(offer("RTP/SAVP", "109 110", maps...))
	if err != nil {
		t.Fatal(err)
	}
	ans := srtpAnswer(t, o)
	for _, want := range []string{"m=audio 10000 RTP/SAVP 109 110\r\n", "a=rtpmap:109 opus/48000/2\r\n", "a=rtpmap:110 telephone-event/48000\r\n", "a=fmtp:109 "} {
		if !strings.Contains(ans, want) {
			t.Errorf("answer lacks %q:\n%s", want, ans)
		}
	}
	if back, err := parseOffer([]byte(ans)); err != nil || back.Codec != o.Codec {
		t.Errorf("our answer reads back as %+v, %v", back, err)
	}
}
