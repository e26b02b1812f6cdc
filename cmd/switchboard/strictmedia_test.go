package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// freeRTPRange is a range of 16 UDP ports that were free a moment ago, for
// a service whose whole media range a test sprays.
func freeRTPRange(t *testing.T) (lo, hi uint16) {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := c.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	c.Close()
	if p > 65535-16 {
		p -= 16
	}
	return p, p + 15
}

// A stranger on another address spraying the service's RTP port range,
// while the call rings and once it is answered, is never heard by the
// operator, hears nothing of the call, and does not silence the caller;
// /metrics counts what it sent to the call's port.
func TestStrangerMediaNeverReachesTheOperator(t *testing.T) {
	lo, hi := freeRTPRange(t)
	m := mustStartService(t, map[string]string{"rtp-ports": fmt.Sprintf("%d-%d", lo, hi)})
	f := mustProvision(t, m, "Acme", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp", Codec: sb.PCMU})

	stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	var heard atomic.Int64
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 1500)
		for {
			if _, _, err := stranger.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
			heard.Add(1)
		}
	}()
	t.Cleanup(func() { stranger.Close(); <-readDone })
	noise := bytes.Repeat([]byte{0x5a}, 160)
	seq := uint16(100)
	spray := func() {
		for port := int(lo); port <= int(hi); port++ {
			to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
			for i := 0; i < 10; i++ {
				pkt := append(media.AppendHeader(nil, false, 0, seq+uint16(i), uint32(seq+uint16(i))*160, 0xbad5eed), noise...)
				if _, err := stranger.WriteToUDPAddrPort(pkt, to); err != nil {
					t.Fatal(err)
				}
			}
		}
		seq += 10
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call, err := phone.InviteAsync(ctx, m.SIPAddr(), "3000", "2000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { call.Close() })
	in := waitIncoming(t, op)
	spray() // while it rings: the call's port is open
	if err := op.Accept(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	if err := call.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := op.WaitConnected(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	var noiseHeard atomic.Int64
	op.SetAudioSink(func(p *rtp.Packet) {
		if bytes.Equal(p.Payload, noise) {
			noiseHeard.Add(1)
		}
	})
	spray()
	talkBothWays(t, call, op)
	if n := noiseHeard.Load(); n != 0 {
		t.Errorf("the operator heard %d of the stranger's packets", n)
	}
	if n := heard.Load(); n != 0 {
		t.Errorf("the stranger received %d packets", n)
	}
	if got := scrape(t, m)[`switchboard_rtp_dropped_packets_total{reason="foreign_source"}`]; got != 20 {
		t.Errorf("switchboard_rtp_dropped_packets_total{reason=\"foreign_source\"} = %v, want the 20 sent to the call's port", got)
	}
}
