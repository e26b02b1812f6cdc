package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/switchboard-voice/switchboard/media"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// endToEnd sums the delays of the pattern frames one side received.
type endToEnd struct {
	mu  sync.Mutex
	n   int
	sum time.Duration
}

func (e *endToEnd) add(payload []byte) {
	if _, sentAt, ok := media.CheckPatternFrame(payload); ok {
		d := time.Since(sentAt)
		e.mu.Lock()
		e.n++
		e.sum += d
		e.mu.Unlock()
	}
}

func (e *endToEnd) get() (int, time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n, e.sum
}

// switchboard_media_relay_delay_seconds is filled by the packets a call
// really relays, both ways: every frame that crossed was measured, and
// what the service added is above zero and below what the frames took
// from sender to receiver (which includes it, and both peers' own work).
func TestRelayDelayMeasuresRelayedPackets(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	call, _ := answeredCall(t, m, phone, op, "+15550001111", "2000")
	var toOperator, toCaller endToEnd
	op.SetAudioSink(func(p *rtp.Packet) { toOperator.add(p.Payload) })
	call.SetSink(func(pkt []byte) {
		if h, ok := media.ParseHeader(pkt); ok {
			toCaller.add(pkt[h.PayloadOffset:h.PayloadEnd])
		}
	})
	before := scrape(t, m)
	const frames = 50
	sendPattern(t, frames, func(p []byte) error { // both ways at once
		if err := call.SendRTP(p, false); err != nil {
			return err
		}
		return op.SendAudio(p)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		n1, _ := toOperator.get()
		n2, _ := toCaller.get()
		if n1 >= frames*9/10 && n2 >= frames*9/10 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("frames received: %d by the operator, %d by the caller, of %d each", n1, n2, frames)
		case <-time.After(20 * time.Millisecond):
		}
	}
	after := scrape(t, m)
	for _, c := range []struct {
		direction string
		e2e       *endToEnd
	}{{"from_caller", &toOperator}, {"to_caller", &toCaller}} {
		series := func(s string) string {
			return `switchboard_media_relay_delay_seconds_` + s + `{direction="` + c.direction + `"}`
		}
		count := after[series("count")] - before[series("count")]
		sum := after[series("sum")] - before[series("sum")]
		n, e2eSum := c.e2e.get()
		if count < float64(n) {
			t.Errorf("%s: %v packets measured, but %d frames crossed", c.direction, count, n)
			continue
		}
		mean, e2eMean := sum/count, e2eSum.Seconds()/float64(n)
		if mean <= 0 || mean >= e2eMean {
			t.Errorf("%s: the service added %.6f s a packet on average; want above zero and below the end-to-end %.6f s", c.direction, mean, e2eMean)
		}
		t.Logf("%s: %v packets, in the service %.1f µs, end to end %.1f µs on average", c.direction, count, mean*1e6, e2eMean*1e6)
	}
}
