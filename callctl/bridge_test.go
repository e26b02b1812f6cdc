package callctl_test

import (
	"bytes"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/callctl"
	"github.com/switchboard-voice/switchboard/media"
)

// A tap sees each direction's audio as it arrived, before the bridge
// converts μ-law to A-law for the other side, and can come and go mid-call.
func TestBridgeTapSeesAudioAsItArrived(t *testing.T) {
	caller := &port{codec: sb.PCMA}
	operator := &port{codec: sb.Codec{Name: "PCMU", PayloadType: 0, ClockRate: 8000, DTMFType: 101}}
	b := callctl.NewBridge(caller, operator)
	b.Start()
	defer b.Stop()

	type tapped struct {
		fromCaller bool
		payload    []byte
	}
	var mu sync.Mutex
	var got []tapped
	b.SetTap(func(fromCaller bool, p []byte, _ time.Time) {
		mu.Lock()
		got = append(got, tapped{fromCaller, append([]byte(nil), p...)})
		mu.Unlock()
	})
	alaw := bytes.Repeat([]byte{0xD5}, 160)
	ulaw := bytes.Repeat([]byte{0xFF}, 160)
	caller.deliver(append(media.AppendHeader(nil, false, 8, 1, 160, 5), alaw...))
	operator.deliver(append(media.AppendHeader(nil, false, 0, 1, 160, 6), ulaw...))
	operator.deliver(append(media.AppendHeader(nil, false, 101, 2, 320, 6), 5, 0x8a, 0, 160)) // DTMF: not audio

	b.SetTap(nil)
	caller.deliver(append(media.AppendHeader(nil, false, 8, 2, 320, 5), alaw...))

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("tap saw %d payloads, want 2 (audio only, none after detaching)", len(got))
	}
	if !got[0].fromCaller || !bytes.Equal(got[0].payload, alaw) {
		t.Errorf("caller's audio tapped as %v %x, want A-law as sent", got[0].fromCaller, got[0].payload[:4])
	}
	if got[1].fromCaller || !bytes.Equal(got[1].payload, ulaw) {
		t.Errorf("operator's audio tapped as %v %x, want μ-law as sent", got[1].fromCaller, got[1].payload[:4])
	}
	// The operator still heard the caller converted to μ-law.
	if p := operator.packets(); len(p) != 2 || bytes.Equal(p[0][12:], alaw) {
		t.Errorf("operator got %d packets, first unconverted: %v", len(p), len(p) > 0 && bytes.Equal(p[0][12:], alaw))
	}
}

// A direction whose every frame is silence is reported silent; one loud
// frame is enough to clear it for the rest of the call.
func TestBridgeNoticesSilence(t *testing.T) {
	caller := &port{codec: sb.PCMA}
	operator := &port{codec: sb.PCMU}
	b := callctl.NewBridge(caller, operator)
	b.Start()
	defer b.Stop()

	quiet := bytes.Repeat([]byte{0xD5}, 160) // A-law zero
	for i := range 5 {
		caller.deliver(append(media.AppendHeader(nil, false, 8, uint16(i), uint32(160*i), 5), quiet...))
	}
	operator.deliver(append(media.AppendHeader(nil, false, 0, 1, 0, 6), bytes.Repeat([]byte{0xFF}, 160)...))
	from, to := b.Stats()
	if from.Packets != 5 || !from.Silent {
		t.Errorf("caller's silence: %+v, want 5 packets, silent", from)
	}
	if !to.Silent {
		t.Errorf("operator's μ-law zero not counted as silence: %+v", to)
	}
	loud := bytes.Repeat([]byte{media.LinearToUlaw(3000)}, 160)
	operator.deliver(append(media.AppendHeader(nil, false, 0, 2, 160, 6), loud...))
	operator.deliver(append(media.AppendHeader(nil, false, 0, 3, 320, 6), bytes.Repeat([]byte{0xFF}, 160)...))
	if _, to := b.Stats(); to.Silent {
		t.Errorf("operator spoke once but is still reported silent: %+v", to)
	}
}

// Opus crosses the bridge byte for byte, from the caller's payload type to
// the operator's; Opus and G.711 are not bridgeable (nothing transcodes),
// the two G.711 laws are.
func TestBridgeCarriesOpusUnchanged(t *testing.T) {
	caller := &port{codec: sb.Codec{Name: "opus", PayloadType: 109, ClockRate: 48000}}
	operator := &port{codec: sb.Opus}
	b := callctl.NewBridge(caller, operator)
	b.Start()
	defer b.Stop()
	frame := []byte{0x48, 0xde, 0xad, 0xbe, 0xef}
	caller.deliver(append(media.AppendHeader(nil, false, 109, 1, 960, 42), frame...))
	got := operator.packets()
	if len(got) != 1 {
		t.Fatalf("operator got %d packets", len(got))
	}
	h, ok := media.ParseHeader(got[0])
	if !ok || h.PayloadType != 111 || !bytes.Equal(got[0][h.PayloadOffset:h.PayloadEnd], frame) {
		t.Errorf("operator got PT %d % x, want PT 111 and the frame unchanged", h.PayloadType, got[0][h.PayloadOffset:h.PayloadEnd])
	}
	for _, c := range []struct {
		a, b sb.Codec
		want bool
	}{{sb.Opus, sb.Opus, true}, {sb.PCMU, sb.PCMA, true}, {sb.Opus, sb.PCMU, false}, {sb.PCMA, sb.Opus, false}} {
		if got := sb.Bridgeable(c.a, c.b); got != c.want {
			t.Errorf("Bridgeable(%s, %s) = %v", c.a.Name, c.b.Name, got)
		}
	}
}

// The bridge measures each relayed packet from the input port's receive
// time to the moment the output port's WriteRTP returned, per direction;
// a port that cannot tell, or a packet with no time, is not measured.
func TestBridgeMeasuresRelayDelay(t *testing.T) {
	caller := &stamped{port: &port{codec: sb.PCMU}}
	operator := &port{codec: sb.PCMU} // no receive clock
	type obs struct {
		fromCaller bool
		d          time.Duration
	}
	var got []obs
	b := callctl.NewBridge(caller, operator, callctl.WithDelay(func(fromCaller bool, d time.Duration) { got = append(got, obs{fromCaller, d}) }))
	b.Start()
	pkt := func(seq uint16) []byte {
		return append(media.AppendHeader(nil, false, 0, seq, uint32(seq)*160, 7), make([]byte, 160)...)
	}
	before := time.Now()
	caller.at = before.Add(-3 * time.Millisecond).UnixNano()
	caller.deliver(pkt(1))
	elapsed := time.Since(before)
	caller.at = 0 // unknown: not measured
	caller.deliver(pkt(2))
	operator.deliver(pkt(1)) // the operator's port has no clock
	if len(got) != 1 {
		t.Fatalf("measured %d packets (%v), want the one with a receive time", len(got), got)
	}
	if !got[0].fromCaller || got[0].d < 3*time.Millisecond || got[0].d > 3*time.Millisecond+elapsed {
		t.Errorf("measured %+v, want from the caller, between 3 ms and 3 ms + %v", got[0], elapsed)
	}
}
