package sip

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// A body in a content coding we do not decode (gzip) is refused with 415
// listing the codings we take (RFC 3261 §8.2.3), in either header form,
// before anything reads it; identity is taken as no coding.
func TestEncodedBodyRefused(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	conn, err := net.Dial("udp", ts.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	for i, c := range []struct{ header, want string }{
		{"Content-Encoding: gzip", "SIP/2.0 415"},
		{"e: identity, gzip", "SIP/2.0 415"},
		{"Content-Encoding: identity", "SIP/2.0 100"},
	} {
		msg := "INVITE sip:2000@" + ts.udp + " SIP/2.0\r\nVia: SIP/2.0/UDP " + local + ";branch=z9hG4bKenc" + fmt.Sprint(i) + "\r\n" +
			"From: <sip:3000@" + local + ">;tag=1\r\nTo: <sip:2000@" + ts.udp + ">\r\nCall-ID: enc" + fmt.Sprint(i) + "\r\nCSeq: 1 INVITE\r\n" +
			"Contact: <sip:3000@" + local + ">\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\n" + c.header + "\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n", len(sampleOffer)) + sampleOffer
		if _, err := conn.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("%s: %v", c.header, err)
		}
		res := string(buf[:n])
		if !strings.HasPrefix(res, c.want) || (c.want == "SIP/2.0 415" && !strings.Contains(res, "\r\nAccept-Encoding: identity\r\n")) {
			t.Errorf("%s: answered\n%s\nwant %s", c.header, res, c.want)
		}
	}
}
