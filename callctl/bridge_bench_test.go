package callctl_test

import (
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/callctl"
	"github.com/switchboard-voice/switchboard/media"
)

type discard struct{ codec sb.Codec }

func (d discard) Codec() sb.Codec         { return d.codec }
func (discard) SetSink(func([]byte))      {}
func (discard) WriteRTP(pkt []byte) error { return nil }

// BenchmarkBridgeRelay measures one relayed 20 ms G.711 packet: parse,
// statistics, payload type mapping, rewrite. Goal: zero allocations.
func BenchmarkBridgeRelay(b *testing.B) {
	caller := &port{codec: sb.PCMU}
	b2 := callctl.NewBridge(caller, discard{codec: sb.PCMU})
	b2.Start()
	relayEach(b, caller.deliver)
}

// relayEach hands deliver one 20 ms PCMU packet after another.
func relayEach(b *testing.B, deliver func([]byte)) {
	pkt := append(media.AppendHeader(nil, false, 0, 0, 0, 1), make([]byte, 160)...)
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for i := 0; b.Loop(); i++ {
		media.SetSeq(pkt, uint16(i))
		media.SetTimestamp(pkt, uint32(i*160))
		media.SetSSRC(pkt, 1)
		deliver(pkt)
	}
}

// stamped is a port that knows when each packet it delivers arrived.
type stamped struct {
	*port
	at int64
}

func (s *stamped) ReceivedAt() int64 { return s.at }

// BenchmarkBridgeRelayMeasured is BenchmarkBridgeRelay with the delay the
// relay adds measured for each packet, as the service runs it. Goal: zero
// allocations.
func BenchmarkBridgeRelayMeasured(b *testing.B) {
	caller := &stamped{port: &port{codec: sb.PCMU}}
	var total time.Duration
	b2 := callctl.NewBridge(caller, discard{codec: sb.PCMU}, callctl.WithDelay(func(_ bool, d time.Duration) { total += d }))
	b2.Start()
	relayEach(b, func(pkt []byte) {
		caller.at = time.Now().UnixNano()
		caller.deliver(pkt)
	})
	if total <= 0 {
		b.Fatal("no delay measured")
	}
}
