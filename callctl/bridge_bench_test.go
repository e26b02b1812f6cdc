package callctl_test

import (
	"testing"

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
	pkt := append(media.AppendHeader(nil, false, 0, 0, 0, 1), make([]byte, 160)...)
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for i := 0; b.Loop(); i++ {
		media.SetSeq(pkt, uint16(i))
		media.SetTimestamp(pkt, uint32(i*160))
		media.SetSSRC(pkt, 1)
		caller.deliver(pkt)
	}
}
