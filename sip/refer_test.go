package sip

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestSipfragStatus(t *testing.T) {
	for body, want := range map[string]int{
		"SIP/2.0 200 OK\r\n":                200,
		"SIP/2.0 100 Trying":                100,
		"SIP/2.0 486 Busy Here\r\nX: y\r\n": 486,
		"SIP/2.0 99 Odd":                    0,
		"HTTP/1.1 200 OK":                   0,
		"":                                  0,
		"SIP/2.0 abc":                       0,
	} {
		got, ok := sipfragStatus([]byte(body))
		if got != want || ok != (want != 0) {
			t.Errorf("%q: %d %v, want %d", body, got, ok, want)
		}
	}
}

func TestAllowsRefer(t *testing.T) {
	req := sip.NewRequest(sip.INVITE, sip.Uri{User: "2000", Host: "127.0.0.1"})
	if allowsRefer(req) {
		t.Error("an INVITE without Allow takes REFER")
	}
	req.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, BYE"))
	if allowsRefer(req) {
		t.Error("Allow without REFER")
	}
	req.AppendHeader(sip.NewHeader("Allow", "NOTIFY, refer"))
	if !allowsRefer(req) {
		t.Error("a second Allow header naming refer is not seen")
	}
}

// NOTIFY bodies and INFO digits come from the far end: never a panic, and
// only well-formed values come out.
func FuzzSipfragAndInfo(f *testing.F) {
	f.Add([]byte("SIP/2.0 200 OK\r\n"), "application/dtmf-relay", []byte("Signal=5\r\nDuration=160\r\n"))
	f.Add([]byte("SIP/2.0 1"), "application/dtmf", []byte("#"))
	f.Fuzz(func(t *testing.T, frag []byte, ct string, info []byte) {
		if code, ok := sipfragStatus(frag); ok && (code < 100 || code > 699) {
			t.Fatalf("status %d from %q", code, frag)
		}
		req := sip.NewRequest(sip.INFO, sip.Uri{User: "2000", Host: "127.0.0.1"})
		req.AppendHeader(sip.NewHeader("Content-Type", ct))
		req.SetBody(info)
		if d, ok := infoDigit(req); ok && (len(d) != 1 || !strings.Contains("0123456789*#ABCD", d)) {
			t.Fatalf("digit %q from %q", d, info)
		}
	})
}
