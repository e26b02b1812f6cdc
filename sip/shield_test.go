package sip

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestShield(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	var bans []string
	s := newShield(ShieldConfig{Rate: 10, Failures: 3, BanFor: time.Minute}, func() time.Time { return now },
		func(a netip.Addr, reason string) { bans = append(bans, a.String()+" "+reason) })
	flood, scanner, trunk := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("::ffff:192.0.2.3")

	admitted := 0
	for range 25 {
		if s.admit(flood) {
			admitted++
		}
	}
	if admitted != 20 {
		t.Errorf("a burst of 25 let %d in, want the bucket's 20", admitted)
	}
	now = now.Add(500 * time.Millisecond)
	if admitted = 0; true {
		for range 10 {
			if s.admit(flood) {
				admitted++
			}
		}
	}
	if admitted != 5 {
		t.Errorf("half a second later %d let in, want 5 at 10/s", admitted)
	}
	for range floodDrops {
		s.admit(flood)
	}
	if len(bans) != 1 || bans[0] != "192.0.2.1 flood" || s.banned() != 1 {
		t.Fatalf("after a flood: bans %v, %d banned", bans, s.banned())
	}
	now = now.Add(10 * time.Second)
	if s.admit(flood) {
		t.Error("a banned source was let in")
	}

	for range 2 {
		s.failed(scanner)
	}
	if !s.admit(scanner) {
		t.Error("two failures banned the source")
	}
	s.failed(scanner)
	if s.admit(scanner) || len(bans) != 2 {
		t.Errorf("three failures in a minute did not ban: %v", bans)
	}

	s.trust(trunk)
	for range 500 {
		if !s.admit(trunk.Unmap()) {
			t.Fatal("a trusted trunk was rate-limited")
		}
	}
	for range 5 {
		s.failed(trunk)
	}
	if !s.admit(trunk) {
		t.Error("a trusted trunk's wrong passwords banned it")
	}

	now = now.Add(2 * time.Minute)
	if !s.admit(flood) || !s.admit(scanner) || s.banned() != 0 {
		t.Errorf("bans outlived their minute: %d banned", s.banned())
	}
	if d := s.dropped.Load(); d < floodDrops {
		t.Errorf("%d dropped counted", d)
	}
}

// options is an OPTIONS request, n-th on its connection.
func options(local string, n int) string {
	return fmt.Sprintf("OPTIONS sip:probe@h SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bKopt%d\r\nFrom: <sip:probe@%s>;tag=%d\r\n"+
		"To: <sip:probe@h>\r\nCall-ID: opt-%d\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", local, n, local, n, n)
}

// The shield's rate applies to every message on an open TCP connection,
// not only to opening it: a flood down one connection is cut off.
func TestShieldLimitsMessagesOnAConnection(t *testing.T) {
	ts := mustServer(t, nil, Config{Shield: &ShieldConfig{Rate: 5, BanFor: time.Minute}})
	conn, err := net.Dial("tcp", ts.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var flood strings.Builder
	for i := range 50 {
		flood.WriteString(options(conn.LocalAddr().String(), i))
	}
	if _, err := conn.Write([]byte(flood.String())); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	answers, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Error("the flooding connection was left open")
	}
	if n := strings.Count(string(answers), "SIP/2.0 200"); n > 10 {
		t.Errorf("%d of 50 messages down one connection were answered, want at most the burst of 10", n)
	}
}

// A ban closes the banned source's open connections: it cannot go on
// down a connection opened before.
func TestBanClosesOpenConnections(t *testing.T) {
	ts := mustServer(t, nil, Config{Shield: &ShieldConfig{Failures: 2, BanFor: time.Minute}})
	src := &net.TCPAddr{IP: net.ParseIP("127.0.0.5")}
	conn, err := (&net.Dialer{LocalAddr: src}).Dial("tcp", ts.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The source fails twice over UDP: an unknown source's INVITEs.
	scanner, err := net.DialUDP("udp", &net.UDPAddr{IP: src.IP}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(ts.udp)))
	if err != nil {
		t.Fatal(err)
	}
	defer scanner.Close()
	ua := &rawUA{tb: t, conn: scanner}
	for range 2 {
		if code, _ := ua.invite("sip:2000@"+ts.udp, ""); code != 403 {
			t.Fatalf("an unknown source's INVITE was answered %d", code)
		}
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil || func() bool { var ne net.Error; return errors.As(err, &ne) && ne.Timeout() }() {
		t.Errorf("the banned source's connection is still open: %v", err)
	}
}

// A message on a stream whose end is not clear, two Content-Length
// headers the parser may read otherwise than the shield, closes the
// connection: nothing behind it is read unchecked.
func TestTwoContentLengthsCloseTheStream(t *testing.T) {
	ts := mustServer(t, nil, Config{Shield: &ShieldConfig{Rate: 50, Failures: 10, BanFor: time.Minute}})
	conn, err := net.Dial("tcp", ts.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := "OPTIONS sip:2000@" + ts.tcp + " SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-two\r\n" +
		"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:2000@127.0.0.1>\r\nCall-ID: two-lengths\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n" +
		"Content-Length: 200000\r\nContent-Length: 0\r\n\r\n"
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err == nil {
		t.Errorf("the stream stayed open and answered %q", buf[:n])
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("the stream stayed open")
	}
}
