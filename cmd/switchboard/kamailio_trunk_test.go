package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// Behind Kamailio (deploy/kamailio/dispatcher.cfg), listed in
// -sip-trusted-proxies, trunks are recognised by the address the call came
// to the proxy from: a trunk's own address is answered, any other refused,
// also for a trunk that still lists the proxy's address as the old docs
// asked; the call records the original source; failures ban that source,
// not the proxy; and the header is believed from the proxy only.
func TestKamailioTrunksBySource(t *testing.T) {
	m := mustStartService(t, map[string]string{"sip-trusted-proxies": "127.0.0.1", "sip-ban-failures": "3"})
	f := mustProvision(t, m, "Acme", "2000", 1, "127.0.0.7/32")
	// A trunk set up as the front-end's docs said before: its own address
	// and the proxy's.
	mustProvision(t, m, "Bravo", "3000", 1, "127.0.0.7/32", "127.0.0.1/32")
	op := mustOperator(t, m, f.Operators[0])
	autoAnswer(t, op)
	proxy := mustKamailio(t, m.SIPAddr())
	listed := mustPhone(t, siptest.Options{LocalIP: "127.0.0.7"})
	stranger := mustPhone(t, siptest.Options{LocalIP: "127.0.0.8"})

	call := func(p *siptest.Phone, server, number string) (*siptest.Call, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return p.Invite(ctx, server, "+15550001111", number)
	}
	refused403 := func(t *testing.T, what string, c *siptest.Call, err error) {
		t.Helper()
		if se := (*siptest.StatusError)(nil); !errors.As(err, &se) || se.Code != 403 {
			if c != nil {
				c.Hangup(context.Background())
				c.Close()
			}
			t.Errorf("%s: %v, want 403", what, err)
		}
	}
	answered := func(t *testing.T, what string) {
		t.Helper()
		c, err := call(listed, proxy, "2000")
		if err != nil {
			t.Fatalf("%s: %v, want it answered", what, err)
		}
		defer c.Close()
		var source string
		if err := dbConn(t, m).QueryRow(context.Background(), `SELECT source FROM calls WHERE sip_call_id = $1`, c.ID).Scan(&source); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(source, "udp:127.0.0.7:") {
			t.Errorf("%s: the call's source is %q, want the trunk's udp:127.0.0.7:…", what, source)
		}
		if err := c.Hangup(context.Background()); err != nil {
			t.Error(err)
		}
	}

	t.Run("ForgedHeaderDirect", func(t *testing.T) {
		forger := mustPhone(t, siptest.Options{LocalIP: "127.0.0.10", Headers: map[string]string{"X-Switchboard-Source": "udp:127.0.0.7:5060"}})
		c, err := call(forger, m.SIPAddr(), "2000")
		refused403(t, "a call claiming to be 127.0.0.7, sent by 127.0.0.10 straight to the instance", c, err)
	})
	t.Run("ListedSourceThroughProxy", func(t *testing.T) {
		answered(t, "the trunk's call through the proxy")
	})
	t.Run("UnlistedSourceThroughProxy", func(t *testing.T) {
		c, err := call(stranger, proxy, "3000")
		refused403(t, "a call from 127.0.0.8 through the proxy to a trunk that lists the proxy", c, err)
		for i := range 2 {
			c, err := call(stranger, proxy, "2000")
			refused403(t, fmt.Sprintf("call %d from 127.0.0.8 through the proxy", i+2), c, err)
		}
	})
	t.Run("BanFollowsSource", func(t *testing.T) {
		// 127.0.0.8 failed three times: it is banned, the proxy is not.
		if c, err := call(stranger, proxy, "2000"); err == nil {
			c.Hangup(context.Background())
			c.Close()
			t.Error("the banned source's call was answered")
		}
		answered(t, "the trunk's call after another source behind the proxy was banned")
	})
}

// The front-end relays in-dialog requests to the instances only: an
// INVITE with an invented To tag naming another host is refused and
// never reaches that host.
func TestKamailioIsNoOpenRelay(t *testing.T) {
	m := mustStartService(t, map[string]string{"sip-trusted-proxies": "127.0.0.1"})
	proxy := mustKamailio(t, m.SIPAddr())
	target, err := net.ListenPacket("udp", "127.0.0.9:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	reached := make(chan string, 10)
	go func() {
		buf := make([]byte, 65535)
		for {
			n, _, err := target.ReadFrom(buf)
			if err != nil {
				return
			}
			reached <- string(buf[:n])
		}
	}()

	conn, err := net.ListenPacket("udp", "127.0.0.11:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dst, err := net.ResolveUDPAddr("udp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	local, id := conn.LocalAddr().String(), sb.NewID().String()
	body := "v=0\r\no=- 1 1 IN IP4 127.0.0.11\r\ns=-\r\nc=IN IP4 127.0.0.11\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	invite := fmt.Sprintf("INVITE sip:x@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s\r\nFrom: <sip:caller@%s>;tag=a1\r\n"+
		"To: <sip:x@%s>;tag=invented\r\nCall-ID: %s\r\nCSeq: 2 INVITE\r\nContact: <sip:caller@%s>\r\nMax-Forwards: 70\r\n"+
		"Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		target.LocalAddr(), local, id, local, target.LocalAddr(), id, local, len(body), body)
	if _, err := conn.WriteTo([]byte(invite), dst); err != nil {
		t.Fatal(err)
	}
	var final string
	deadline := time.Now().Add(3 * time.Second)
	buf := make([]byte, 65535)
	for final == "" && time.Now().Before(deadline) {
		conn.SetReadDeadline(deadline)
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			break
		}
		if res := string(buf[:n]); !strings.HasPrefix(res, "SIP/2.0 1") {
			final = strings.SplitN(res, "\r\n", 2)[0]
		}
	}
	if !strings.HasPrefix(final, "SIP/2.0 403") {
		t.Errorf("an in-dialog INVITE to a foreign Request-URI through the proxy got %q, want 403", final)
	}
	select {
	case msg := <-reached:
		t.Errorf("the proxy relayed an in-dialog request to a foreign host:\n%s", strings.SplitN(msg, "\r\n", 2)[0])
	case <-time.After(500 * time.Millisecond):
	}
}
